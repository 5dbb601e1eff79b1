package windows

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// TestNoEvent: an operator told that nothing reads its windows' last event
// gives the same results as one that keeps it, without the events of the
// window results (a sliding result still carries the event that made it),
// and keeps none; a snapshot taken with events restores without them.
func TestNoEvent(t *testing.T) {
	for name, spec := range propertySpecs() {
		t.Run(name, func(t *testing.T) {
			for seed := range seeds(10) {
				spec := spec
				spec.Aggs = allAggs()
				lateness := 4 * time.Second
				evs := genStream(rand.New(rand.NewPCG(seed, 13)), 300, lateness)
				keeping, _ := New(spec)
				want := drive(keeping, evs, lateness, nil)
				lean := spec
				lean.NoEvent = true
				if when := spec.When; when != nil && spec.Kind != Sliding {
					// A sliding window's when sees the event that moves it.
					lean.When = func(values map[string]any, last *event.Event) (bool, error) {
						if last != nil {
							t.Fatalf("when got an event")
						}
						return when(values, last)
					}
				}
				r := rand.New(rand.NewPCG(seed, 17))
				open := 0
				got := drive(mustNew(t, lean), evs, lateness, func(i int, o operator) operator {
					op := o.(*Op)
					for _, ks := range op.keys {
						for _, w := range append(ks.wins, ks.cw) {
							if w != nil {
								open++
								if w.lastEv != nil {
									t.Fatalf("seed %d: key %s keeps an event", seed, ks.key)
								}
							}
						}
					}
					if r.IntN(10) != 0 {
						return o
					}
					b, err := op.Snapshot()
					if err != nil {
						t.Fatal(err)
					}
					fresh := mustNew(t, lean)
					if err := fresh.Restore(b); err != nil {
						t.Fatal(err)
					}
					return fresh
				})
				if len(got) != len(want) {
					t.Fatalf("seed %d: %d results, want %d", seed, len(got), len(want))
				}
				for i := range got {
					w := want[i]
					if spec.Kind != Sliding {
						w.Event = nil
					}
					if !reflect.DeepEqual(got[i], w) {
						t.Fatalf("seed %d result %d:\n got %s\nwant %s", seed, i, show(got[i]), show(w))
					}
				}
				if open == 0 && spec.Kind != Sliding && spec.N != 1 {
					t.Fatalf("seed %d: no window was open: the test is vacuous", seed)
				}
			}
		})
	}
}

// TestNoEventRestoresOldSnapshot: a snapshot with events (an older version,
// or a rule that read them) restores into NoEvent without them, and its
// windows close as they would have.
func TestNoEventRestoresOldSnapshot(t *testing.T) {
	spec := Spec{Kind: Tumbling, Size: time.Minute, Aggs: countAgg}
	keeping := mustNew(t, spec)
	feed(keeping, evs(in{"a", 0, map[string]any{"v": 1.0}}, in{"b", time.Second, nil}), 0)
	b, err := keeping.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	spec.NoEvent = true
	lean := mustNew(t, spec)
	if err := lean.Restore(b); err != nil {
		t.Fatal(err)
	}
	b2, _ := lean.Snapshot()
	if len(b2) >= len(b) {
		t.Fatalf("snapshot without events %d bytes, with %d", len(b2), len(b))
	}
	got := lean.Flush()
	check(t, got, []brief{{"a", event.Firing, time.Minute, 0, time.Minute, n(1)}, {"b", event.Firing, time.Minute, 0, time.Minute, n(1)}}, "n")
	for _, r := range got {
		if r.Event != nil {
			t.Fatalf("result with an event: %s", show(r))
		}
	}
}
