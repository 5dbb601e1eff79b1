package event

import (
	"reflect"
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
