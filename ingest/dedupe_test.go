package ingest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

var t0 = utc("2026-01-05T10:00:00Z")

type seenStep struct {
	value string
	at    time.Duration // after t0
	dup   bool
}

func TestDedupeWindow(t *testing.T) {
	tests := []struct {
		name   string
		within time.Duration
		steps  []seenStep
	}{
		{"same time is a duplicate", time.Minute, []seenStep{
			{"a", 0, false}, {"a", 0, true}, {"b", 0, false}}},
		{"inside and at the edge", time.Minute, []seenStep{
			{"a", 0, false}, {"a", 30 * time.Second, true}, {"a", time.Minute, true}}},
		{"just past the edge is new", time.Minute, []seenStep{
			{"a", 0, false}, {"a", time.Minute + 1, false}, {"a", time.Minute + 2, true}}},
		{"a duplicate does not extend the window", time.Minute, []seenStep{
			{"a", 0, false}, {"a", 50 * time.Second, true}, {"a", 100 * time.Second, false}}},
		{"a late copy within the window is a duplicate", time.Minute, []seenStep{
			{"a", time.Minute, false}, {"a", 10 * time.Second, true}}},
		{"a copy earlier than the window is not", time.Minute, []seenStep{
			{"a", 2 * time.Minute, false}, {"a", 0, false}, {"a", 2 * time.Minute, true}}},
		{"within zero: only equal times", 0, []seenStep{
			{"a", 0, false}, {"a", 0, true}, {"a", 1, false}, {"a", 1, true}}},
		{"negative within acts as zero", -time.Minute, []seenStep{
			{"a", 0, false}, {"a", 0, true}, {"a", time.Second, false}}},
		{"before 1970", time.Minute, []seenStep{
			{"a", -60 * 365 * 24 * time.Hour, false}, {"a", -60 * 365 * 24 * time.Hour, true}}},
		{"pruned values are new again", time.Minute, []seenStep{
			{"a", 0, false}, {"b", 5 * time.Minute, false}, {"a", 5 * time.Minute, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDedupe(tc.within, 0)
			for i, s := range tc.steps {
				if got := d.Seen(s.value, t0.Add(s.at)); got != s.dup {
					t.Fatalf("step %d: Seen(%q, +%v) = %v, want %v", i, s.value, s.at, got, s.dup)
				}
			}
		})
	}
}

func TestDedupePrunes(t *testing.T) {
	for _, base := range []time.Time{t0, utc("1950-01-01T00:00:00Z")} {
		t.Run(base.Format("2006"), func(t *testing.T) {
			d := NewDedupe(time.Minute, 0)
			for i := 0; i < 1000; i++ {
				d.Seen(fmt.Sprint(i), base.Add(time.Duration(i)*time.Second))
			}
			// At +999s only values recorded at +939s..+999s remain.
			if got := d.Len(); got != 61 {
				t.Fatalf("Len() = %d, want 61", got)
			}
			if len(d.queue)-d.head != 61 || cap(d.queue) > 256 {
				t.Fatalf("queue holds %d entries (cap %d), want 61 and compacted", len(d.queue)-d.head, cap(d.queue))
			}
			if d.Evicted() != 0 {
				t.Fatalf("Evicted() = %d, want 0: pruning is not eviction", d.Evicted())
			}
		})
	}
}

func TestDedupeEvictsOldest(t *testing.T) {
	d := NewDedupe(time.Hour, 3)
	for _, v := range []string{"a", "b", "c", "d", "e"} {
		if d.Seen(v, t0) {
			t.Fatalf("Seen(%q) = true on first sight", v)
		}
	}
	if d.Len() != 3 || d.Evicted() != 2 {
		t.Fatalf("Len %d Evicted %d, want 3 and 2", d.Len(), d.Evicted())
	}
	for v, want := range map[string]bool{"c": true, "d": true, "e": true} {
		if got := d.Seen(v, t0); got != want {
			t.Errorf("Seen(%q) = %v, want %v", v, got, want)
		}
	}
	if d.Seen("a", t0) {
		t.Error("evicted value a still reported as seen")
	}
}

// TestDedupeStaleEntriesStayBounded re-records values while an out-of-order
// early entry holds pruning up: the queue must not grow without bound.
func TestDedupeStaleEntriesStayBounded(t *testing.T) {
	d := NewDedupe(time.Second, 10)
	d.Seen("blocker", t0.Add(time.Hour))
	for i := 0; i < 10000; i++ {
		d.Seen(fmt.Sprint(i%5), t0.Add(time.Duration(i)*2*time.Second))
	}
	if n := len(d.queue) - d.head; n > 2*d.Len()+65 {
		t.Fatalf("queue holds %d entries for %d values", n, d.Len())
	}
}

// TestDedupeSnapshotContinues checks that stopping after any step,
// snapshotting and restoring into a fresh set gives the same answers as a
// run that never stopped.
func TestDedupeSnapshotContinues(t *testing.T) {
	steps := make([]seenStep, 0, 300)
	for i := 0; i < 300; i++ {
		// ids repeat every 7 steps, time advances 10s a step with some
		// jitter back: duplicates, expiries, evictions and disorder.
		at := time.Duration(i)*10*time.Second - time.Duration(i%3)*25*time.Second
		steps = append(steps, seenStep{value: fmt.Sprint("id", i%7), at: at})
	}
	run := func(d *Dedupe, from, to int) []bool {
		var out []bool
		for _, s := range steps[from:to] {
			out = append(out, d.Seen(s.value, t0.Add(s.at)))
		}
		return out
	}
	for _, max := range []int{0, 4} {
		want := run(NewDedupe(45*time.Second, max), 0, len(steps))
		ref := NewDedupe(45*time.Second, max)
		run(ref, 0, len(steps))
		for _, cut := range []int{0, 1, 7, 50, 299} {
			t.Run(fmt.Sprintf("max %d cut %d", max, cut), func(t *testing.T) {
				a := NewDedupe(45*time.Second, max)
				got := run(a, 0, cut)
				b := NewDedupe(45*time.Second, max)
				if err := b.Restore(a.Snapshot()); err != nil {
					t.Fatal(err)
				}
				got = append(got, run(b, cut, len(steps))...)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("answers differ after restore at step %d:\n got %v\nwant %v", cut, got, want)
				}
				if b.Len() != ref.Len() || b.Evicted() != ref.Evicted() {
					t.Fatalf("Len/Evicted %d/%d, uninterrupted %d/%d", b.Len(), b.Evicted(), ref.Len(), ref.Evicted())
				}
			})
		}
	}
}

func TestDedupeRestoreSmallerMax(t *testing.T) {
	a := NewDedupe(time.Hour, 0)
	for _, v := range []string{"a", "b", "c"} {
		a.Seen(v, t0)
	}
	b := NewDedupe(time.Hour, 2)
	if err := b.Restore(a.Snapshot()); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 2 || b.Evicted() != 1 || b.Seen("a", t0) {
		t.Fatalf("Len %d Evicted %d: want the oldest value evicted", b.Len(), b.Evicted())
	}
}

func TestDedupeRestoreCorrupt(t *testing.T) {
	good := NewDedupe(time.Hour, 0)
	good.Seen("a", t0)
	good.Seen("b", t0)
	snap := good.Snapshot()
	dupEntry := func() []byte {
		e := event.Enc{}
		e.Byte(dedupeVersion)
		e.Varint(t0.UnixNano())
		e.Uvarint(0)
		e.Uvarint(2)
		for range 2 {
			e.String("a")
			e.Varint(t0.UnixNano())
		}
		return e.B
	}()
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bad version", append([]byte{9}, snap[1:]...)},
		{"truncated", snap[:len(snap)-1]},
		{"trailing bytes", append(append([]byte{}, snap...), 0)},
		{"huge count", []byte{dedupeVersion, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"duplicate value", dupEntry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDedupe(time.Hour, 0)
			d.Seen("keep", t0)
			err := d.Restore(tc.b)
			if err == nil {
				t.Fatal("Restore accepted a corrupt snapshot")
			}
			if tc.name != "bad version" && !errors.Is(err, event.ErrCorrupt) {
				t.Errorf("error %v does not wrap event.ErrCorrupt", err)
			}
			if d.Len() != 1 || !d.Seen("keep", t0) {
				t.Error("a failed Restore changed the state")
			}
		})
	}
}
