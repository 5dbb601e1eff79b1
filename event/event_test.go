package event

import (
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"
)

func TestAlertIDDeterministic(t *testing.T) {
	ts := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	a := AlertID("r", "k", Firing, ts)
	if a != AlertID("r", "k", Firing, ts.In(time.FixedZone("x", 3600))) {
		t.Fatal("same instant in another zone gave another id")
	}
	for _, other := range []string{
		AlertID("r2", "k", Firing, ts), AlertID("r", "k2", Firing, ts),
		AlertID("r", "k", Resolved, ts), AlertID("r", "k", Firing, ts.Add(time.Nanosecond)),
		AlertID("rk", "", Firing, ts),
	} {
		if other == a {
			t.Fatalf("id collision: %s", a)
		}
	}
	if len(a) != 32 {
		t.Fatalf("id length %d", len(a))
	}
}

func TestCodecRoundTrip(t *testing.T) {
	ts := time.Date(2026, 1, 5, 10, 0, 0, 123, time.UTC)
	ev := &Event{Topic: "a/b", Time: ts, Seq: 7, Fields: map[string]any{
		"f": 1.5, "s": "x", "b": true, "n": nil, "t": ts, "i": int64(-3),
		"m": map[string]any{"x": 2.0}, "l": []any{1.0, "y"},
	}}
	var e Enc
	e.Event(ev)
	e.Event(nil)
	e.Time(time.Time{})
	e.String("tail")
	d := Dec{B: e.B}
	got := d.Event()
	if d.Event() != nil || !d.Time().IsZero() || d.String() != "tail" || d.Err != nil || len(d.B) != 0 {
		t.Fatalf("trailer mismatch, err %v", d.Err)
	}
	if !reflect.DeepEqual(got, ev) {
		t.Fatalf("got %#v want %#v", got, ev)
	}
}

func TestCodecCorrupt(t *testing.T) {
	var e Enc
	e.Event(&Event{Topic: "x", Fields: map[string]any{"a": "bcdef"}})
	for i := 0; i < len(e.B); i++ {
		d := Dec{B: e.B[:i]}
		d.Event()
		if d.Err == nil {
			t.Fatalf("truncated at %d decoded without error", i)
		}
	}
	d := Dec{B: []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}}
	d.Event()
	if d.Err == nil {
		t.Fatal("huge length accepted")
	}
}

func TestReorder(t *testing.T) {
	base := time.Unix(1000, 0)
	var r Reorder
	for i, off := range []int{5, 1, 3, 1, 9} {
		r.Push("k", &Event{Time: base.Add(time.Duration(off) * time.Second), Seq: uint64(i)})
	}
	var got []uint64
	r.Ready(base.Add(3*time.Second), func(_ string, ev *Event) { got = append(got, ev.Seq) })
	if !reflect.DeepEqual(got, []uint64{1, 3, 2}) {
		t.Fatalf("ready order %v", got)
	}
	var e Enc
	r.Encode(&e)
	var r2 Reorder
	d := Dec{B: e.B}
	r2.Decode(&d)
	if d.Err != nil || r2.Len() != 2 {
		t.Fatalf("decode: %v len %d", d.Err, r2.Len())
	}
	got = nil
	r2.All(func(_ string, ev *Event) { got = append(got, ev.Seq) })
	if !reflect.DeepEqual(got, []uint64{0, 4}) {
		t.Fatalf("all order %v", got)
	}
}

// TestReorderRandom holds the buffer to a model: each release gives
// exactly the pushed events up to the close time, sorted by (time, seq),
// with pushes, releases and snapshot round trips interleaved at random.
func TestReorderRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	base := time.Unix(1000, 0)
	type item struct {
		t   time.Time
		seq uint64
	}
	for round := 0; round < 200; round++ {
		var r Reorder
		var model []item
		closeAt := base
		release := func(all bool) {
			var got []item
			fn := func(_ string, ev *Event) { got = append(got, item{ev.Time, ev.Seq}) }
			if all {
				r.All(fn)
			} else {
				r.Ready(closeAt, fn)
			}
			var want, keep []item
			for _, it := range model {
				if all || !it.t.After(closeAt) {
					want = append(want, it)
				} else {
					keep = append(keep, it)
				}
			}
			model = keep
			sort.Slice(want, func(i, j int) bool {
				if !want[i].t.Equal(want[j].t) {
					return want[i].t.Before(want[j].t)
				}
				return want[i].seq < want[j].seq
			})
			if len(got) != len(want) {
				t.Fatalf("round %d: released %d, want %d", round, len(got), len(want))
			}
			for i := range got {
				if !got[i].t.Equal(want[i].t) || got[i].seq != want[i].seq {
					t.Fatalf("round %d: release %d is %v, want %v", round, i, got[i], want[i])
				}
			}
		}
		for i := 0; i < 300; i++ {
			switch rng.IntN(10) {
			case 0:
				closeAt = closeAt.Add(time.Duration(rng.IntN(20)) * time.Second)
				release(false)
			case 1:
				var e Enc
				r.Encode(&e)
				r = Reorder{}
				d := Dec{B: e.B}
				if r.Decode(&d); d.Err != nil {
					t.Fatal(d.Err)
				}
			default:
				ev := &Event{Time: closeAt.Add(time.Duration(rng.IntN(30)-5) * time.Second), Seq: uint64(rng.IntN(1000))}
				r.Push("k", ev)
				model = append(model, item{ev.Time, ev.Seq})
			}
		}
		release(true)
	}
}
