package cep

import (
	"strings"
	"testing"
	"time"
)

func TestAbsent(t *testing.T) {
	x := func(at time.Duration, key string) in { return ev(at, "r").on(key) }
	tests := []struct {
		name     string
		lateness time.Duration
		flush    bool
		ins      []in
		want     []string
	}{
		{"steady sensor never fires", 0, false, []in{x(0, "a"), x(4*minute, "a"), x(8*minute, "a"), x(12*minute, "a")}, nil},
		{"silence fires once at the deadline, then resolves", 0, false,
			[]in{x(0, "a"), x(1*minute, "b"), x(5*minute, "b"), x(9*minute, "b"), x(20*minute, "b"), x(21*minute, "a")},
			[]string{"a firing +5m0s ev1", "b firing +14m0s ev4", "b resolved +20m0s ev5", "a resolved +21m0s ev6"}},
		{"gap of exactly the duration does not fire", 0, false, []in{x(0, "a"), x(5*minute, "a"), x(9*minute, "a")}, nil},
		{"a gap one nanosecond longer fires", 0, false, []in{x(0, "a"), x(5*minute+1, "a")},
			[]string{"a firing +5m0s ev1", "a resolved +5m0.000000001s ev2"}},
		{"end of input fires what is pending", 0, true, []in{x(0, "a"), x(1*minute, "b"), x(2*minute, "a")},
			[]string{"b firing +6m0s ev2", "a firing +7m0s ev3"}},
		{"already fired keys do not fire again on flush", 0, true, []in{x(0, "a"), x(30*minute, "b")},
			[]string{"a firing +5m0s ev1", "b firing +35m0s ev2"}},
		{"out-of-order events inside the lateness fill the gap", 2 * minute, false,
			// a at 0, 6m, then 5m (out of order, within the lateness):
			// gaps of 5m and 1m, no silence until 11m.
			[]in{x(0, "a"), x(6*minute, "a"), x(5*minute, "a"), x(10*minute, "b"), x(20*minute, "b")},
			[]string{"a firing +11m0s ev2", "b firing +15m0s ev4"}},
		{"the same input without lateness fires early", 0, false,
			[]in{x(0, "a"), x(6*minute, "a"), x(5*minute, "a")},
			[]string{"a firing +5m0s ev1", "a resolved +6m0s ev2"}},
		{"a late event outside the lateness does not resolve", time.Minute, false,
			[]in{x(0, "a"), x(20*minute, "b"), x(4*minute, "a")},
			[]string{"a firing +5m0s ev1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAbsent(AbsentSpec{After: 5 * minute})
			if err != nil {
				t.Fatal(err)
			}
			eqLines(t, brief(drive(a, tc.ins, tc.lateness, tc.flush)), tc.want)

			// Without events kept: the same results, a firing one with
			// no event (a resolution carries the event that resolves).
			a, _ = NewAbsent(AbsentSpec{After: 5 * minute, NoEvent: true})
			var want []string
			for _, w := range tc.want {
				if strings.Contains(w, " firing ") {
					w = w[:strings.LastIndex(w, " ev")]
				}
				want = append(want, w)
			}
			eqLines(t, brief(drive(a, tc.ins, tc.lateness, tc.flush)), want)
			for _, k := range a.keys {
				if k.ev != nil {
					t.Fatalf("key %s keeps an event", k.key)
				}
			}
		})
	}
}

// TestAbsentNoEventRestore: a snapshot that holds events (an older version,
// or a rule that now needs none) restores without them, and one without
// events restores into NoEvent, resuming exactly.
func TestAbsentNoEventRestore(t *testing.T) {
	with, _ := NewAbsent(AbsentSpec{After: 5 * minute})
	drive(with, []in{ev(0, "r").on("a"), ev(time.Minute, "r").on("b")}, 0, false)
	b, err := with.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	without, _ := NewAbsent(AbsentSpec{After: 5 * minute, NoEvent: true})
	if err := without.Restore(b); err != nil {
		t.Fatal(err)
	}
	b2, err := without.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if len(b2) >= len(b) {
		t.Fatalf("snapshot without events %d bytes, with %d", len(b2), len(b))
	}
	again, _ := NewAbsent(AbsentSpec{After: 5 * minute, NoEvent: true})
	if err := again.Restore(b2); err != nil {
		t.Fatal(err)
	}
	eqLines(t, brief(again.Advance(t0.Add(10*minute))), []string{"a firing +5m0s", "b firing +6m0s"})
	// An operator that keeps events refuses a key without one.
	if err := with.Restore(b2); err == nil {
		t.Fatal("a snapshot without events restored into an operator that needs them")
	}
}

func TestAbsentValuesAndStats(t *testing.T) {
	a, _ := NewAbsent(AbsentSpec{After: 5 * minute, MaxKeys: 2})
	rs := drive(a, []in{ev(0, "r").on("a"), ev(10*minute, "r").on("a")}, 0, false)
	if len(rs) != 2 {
		t.Fatalf("results %v", brief(rs))
	}
	if v := rs[0].Values; v["silent_for"] != 300.0 || !v["last_seen"].(time.Time).Equal(t0) {
		t.Fatalf("firing values %v", v)
	}
	if v := rs[1].Values; v["silent_for"] != 600.0 || rs[1].Event.Seq != 2 {
		t.Fatalf("resolved values %v", v)
	}
	drive(a, []in{ev(11*minute, "r").on("b"), ev(12*minute, "r").on("c"), ev(13*minute, "r").on("b")}, 0, false)
	st := a.Stats()
	if st.Keys != 2 || st.Evicted != 1 || st.Pending != 2 || st.Late != 0 {
		t.Fatalf("stats %+v", st)
	}
	// a was evicted: it is a new key now and cannot resolve.
	if rs := drive(a, []in{ev(40*minute, "r").on("a")}, 0, false); len(rs) != 2 || rs[0].Key != "c" || rs[1].Key != "b" {
		t.Fatalf("after eviction %v", brief(rs))
	}
	if _, err := NewAbsent(AbsentSpec{}); err == nil {
		t.Fatal("zero duration accepted")
	}
}
