package windows

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

var base = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

type keyed struct {
	key string
	ev  *event.Event
}

func field(name string) func(*event.Event) (any, bool) {
	return func(ev *event.Event) (any, bool) {
		v, ok := ev.Fields[name]
		return v, ok
	}
}

// allAggs covers every function, with missing and non-numeric inputs.
func allAggs() []Agg {
	v := field("v")
	return []Agg{
		{Name: "n", Func: "count"},
		{Name: "nv", Func: "count", Arg: v},
		{Name: "sum", Func: "sum", Arg: v},
		{Name: "avg", Func: "avg", Arg: v},
		{Name: "min", Func: "min", Arg: v},
		{Name: "max", Func: "max", Arg: v},
		{Name: "sd", Func: "stddev", Arg: v},
		{Name: "first", Func: "first", Arg: field("c")},
		{Name: "last", Func: "last", Arg: v},
		{Name: "slope", Func: "slope", Arg: v},
		{Name: "p0", Func: "percentile", Arg: v, P: 0},
		{Name: "p50", Func: "percentile", Arg: v, P: 50},
		{Name: "p90", Func: "percentile", Arg: v, P: 90},
		{Name: "cd", Func: "count_distinct", Arg: field("c")},
		{Name: "sumc", Func: "sum", Arg: field("c")}, // strings are left out: always 0
	}
}

// genStream makes n events over a few keys. The gateway's clock moves in
// steps of 0-3 s (equal times are common); an event's time lags it by up to
// lateness, and one event in twenty lags further and is (usually) late.
func genStream(r *rand.Rand, n int, lateness time.Duration) []keyed {
	keys := []string{"a", "b", "c"}
	wall := base
	out := make([]keyed, 0, n)
	for i := range n {
		wall = wall.Add(time.Duration(r.IntN(4)) * time.Second)
		lag := time.Duration(0)
		if lateness > 0 {
			lag = time.Duration(r.Int64N(int64(lateness) + 1)).Truncate(time.Second)
		}
		if r.IntN(20) == 0 {
			lag += time.Duration(r.IntN(30)) * time.Second
		}
		f := map[string]any{"topic": "t"}
		if r.IntN(10) != 0 {
			f["v"] = float64(r.IntN(41)-20) / 2
		}
		if r.IntN(10) != 0 {
			f["c"] = fmt.Sprint("c", r.IntN(4))
		}
		if r.IntN(30) == 0 {
			f["v"] = "not a number"
		}
		out = append(out, keyed{keys[r.IntN(len(keys))], &event.Event{Topic: "t", Time: wall.Add(-lag), Fields: f, Seq: uint64(i)}})
	}
	return out
}

type operator interface {
	Add(key string, ev *event.Event) []event.Result
	Advance(closeAt time.Time) []event.Result
	Flush() []event.Result
}

// drive feeds events as the engine does: Add, then Advance to the rule's
// watermark minus lateness; Flush at the end. between, if set, runs after
// each event and may replace the operator (snapshot/restore).
func drive(o operator, evs []keyed, lateness time.Duration, between func(i int, o operator) operator) []event.Result {
	var out []event.Result
	var wm time.Time
	for i, k := range evs {
		out = append(out, o.Add(k.key, k.ev)...)
		if k.ev.Time.After(wm) {
			wm = k.ev.Time
		}
		out = append(out, o.Advance(wm.Add(-lateness))...)
		if between != nil {
			o = between(i, o)
		}
	}
	return append(out, o.Flush()...)
}

func close(a, b any) bool {
	fa, oka := a.(float64)
	fb, okb := b.(float64)
	if !oka || !okb {
		return reflect.DeepEqual(a, b)
	}
	return math.Abs(fa-fb) <= 1e-6*math.Max(1, math.Max(math.Abs(fa), math.Abs(fb)))
}

func sameResults(t *testing.T, got, want []event.Result) {
	t.Helper()
	for i := 0; i < len(got) || i < len(want); i++ {
		if i >= len(got) || i >= len(want) {
			t.Fatalf("got %d results, want %d; first extra: %s", len(got), len(want), show(append(got[min(i, len(got)):], want[min(i, len(want)):]...)[0]))
		}
		g, w := got[i], want[i]
		if g.Key != w.Key || g.State != w.State || !g.Time.Equal(w.Time) || g.Event != w.Event ||
			!g.Window.Start.Equal(w.Window.Start) || !g.Window.End.Equal(w.Window.End) || len(g.Values) != len(w.Values) {
			t.Fatalf("result %d:\n got %s\nwant %s", i, show(g), show(w))
		}
		for k, wv := range w.Values {
			if !close(g.Values[k], wv) {
				t.Fatalf("result %d (%s): %s = %v, want %v\n got %s\nwant %s", i, g.Key, k, g.Values[k], wv, show(g), show(w))
			}
		}
	}
}

func show(r event.Result) string {
	seq := uint64(0)
	if r.Event != nil {
		seq = r.Event.Seq
	}
	return fmt.Sprintf("%s %s t=%s win=[%s,%s] ev#%d %v", r.Key, r.State, r.Time.Format("15:04:05"),
		r.Window.Start.Format("15:04:05"), r.Window.End.Format("15:04:05"), seq, r.Values)
}

func propertySpecs() map[string]Spec {
	return map[string]Spec{
		"sliding 20s":       {Kind: Sliding, Size: 20 * time.Second},
		"sliding 45s when":  {Kind: Sliding, Size: 45 * time.Second, When: sumAbove(10)},
		"tumbling 15s":      {Kind: Tumbling, Size: 15 * time.Second},
		"tumbling 30s when": {Kind: Tumbling, Size: 30 * time.Second, When: sumAbove(0)},
		"hopping 30s/10s":   {Kind: Hopping, Size: 30 * time.Second, Every: 10 * time.Second},
		"hopping 25s/10s":   {Kind: Hopping, Size: 25 * time.Second, Every: 10 * time.Second},
		"session 6s":        {Kind: Session, Size: 6 * time.Second},
		"session 3s when":   {Kind: Session, Size: 3 * time.Second, When: sumAbove(0)},
		"count 1":           {Kind: Count, N: 1},
		"count 4 when":      {Kind: Count, N: 4, When: sumAbove(0)},
	}
}

func sumAbove(x float64) func(map[string]any, *event.Event) (bool, error) {
	return func(v map[string]any, _ *event.Event) (bool, error) { return v["sum"].(float64) > x, nil }
}

// seeds is how many random streams a property test runs: n, or a fifth of
// it with -short (the ARM runs under qemu, where each costs 30× more; the
// native `make test` runs them all).
func seeds(n uint64) uint64 {
	if testing.Short() {
		return max(n/5, 2)
	}
	return n
}

// TestAgainstNaive compares every window kind and every aggregate with a
// from-scratch recomputation over random streams, in order and out of order
// within (and beyond) the lateness.
func TestAgainstNaive(t *testing.T) {
	for name, spec := range propertySpecs() {
		for _, lateness := range []time.Duration{0, 5 * time.Second} {
			t.Run(fmt.Sprintf("%s/lateness=%v", name, lateness), func(t *testing.T) {
				for seed := range seeds(25) {
					spec := spec
					spec.Aggs = allAggs()
					r := rand.New(rand.NewPCG(seed, 7))
					evs := genStream(r, 250, lateness)
					op, err := New(spec)
					if err != nil {
						t.Fatal(err)
					}
					nv := newNaive(spec)
					got := drive(op, evs, lateness, nil)
					want := drive(nv, evs, lateness, nil)
					if len(want) == 0 {
						t.Fatalf("seed %d: the model produced nothing; the test is vacuous", seed)
					}
					sameResults(t, got, want)
					if st := op.Stats(); int(st.Late) != nv.late {
						t.Fatalf("seed %d: late %d, want %d", seed, st.Late, nv.late)
					}
				}
			})
		}
	}
}

// TestSnapshotContinues snapshots at random points, restores into a fresh
// operator and checks the results are exactly those of an uninterrupted run.
func TestSnapshotContinues(t *testing.T) {
	for name, spec := range propertySpecs() {
		for _, maxKeys := range []int{0, 2} { // 2 of 3 keys: evictions all along
			t.Run(fmt.Sprintf("%s/maxkeys=%d", name, maxKeys), func(t *testing.T) {
				testSnapshotContinues(t, spec, maxKeys)
			})
		}
	}
}

func testSnapshotContinues(t *testing.T, spec Spec, maxKeys int) {
	for seed := range seeds(10) {
		spec := spec
		spec.Aggs = allAggs()
		spec.MaxKeys = maxKeys
		r := rand.New(rand.NewPCG(seed, 11))
		lateness := 4 * time.Second
		evs := genStream(r, 300, lateness)
		plain, _ := New(spec)
		want := drive(plain, evs, lateness, nil)
		first, _ := New(spec)
		got := drive(first, evs, lateness, func(i int, o operator) operator {
			if r.IntN(10) != 0 {
				return o
			}
			b, err := o.(*Op).Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			fresh, _ := New(spec)
			if err := fresh.Restore(b); err != nil {
				t.Fatalf("seed %d event %d: %v", seed, i, err)
			}
			if fresh.Stats() != o.(*Op).Stats() {
				t.Fatalf("stats after restore %+v, before %+v", fresh.Stats(), o.(*Op).Stats())
			}
			return fresh
		})
		if len(got) != len(want) {
			t.Fatalf("seed %d: %d results, want %d", seed, len(got), len(want))
		}
		for i := range got {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("seed %d result %d:\n got %s\nwant %s", seed, i, show(got[i]), show(want[i]))
			}
		}
		if maxKeys > 0 && plain.Stats().Evicted == 0 {
			t.Fatalf("seed %d: no eviction with a cap of %d", seed, maxKeys)
		}
	}
}
