package cep

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// refMatcher is a deliberately naive reference for Pattern: a partial match
// is only the list of events it consumed, and its state is derived from
// that list every time it is needed; deadlines are found by scanning every
// partial. It implements the documented semantics without heaps, lazy
// deletion, buffers, free lists or caps.
type refMatcher struct {
	steps []Step
	evs   []*event.Event // every event processed, in order
	keys  map[string][]*refPartial
	order []string // keys in first-seen order, for deterministic scans
	id    int
	out   []event.Result
}

type refPartial struct {
	id  int
	evs []int // indices into evs
}

type refState struct {
	step, count  int
	prev, first  time.Time
	bound        []*event.Event
	dead         time.Time
	hasDead      bool
	trailingWait bool
}

func (r *refMatcher) state(p *refPartial) refState {
	s := refState{bound: make([]*event.Event, len(r.steps))}
	for _, i := range p.evs {
		e := r.evs[i]
		ps := s.step
		if r.steps[ps].Not {
			ps++
		}
		s.bound[ps] = e
		s.count++
		if s.count == 1 {
			s.first = e.Time
		}
		if s.count == r.steps[ps].Times {
			s.count, s.prev, s.step = 0, e.Time, ps+1
		}
	}
	if s.step == len(r.steps) {
		return s
	}
	st := r.steps[s.step]
	if st.Not && s.step == len(r.steps)-1 {
		s.trailingWait, s.dead, s.hasDead = true, s.prev.Add(st.Within), true
		return s
	}
	ps := s.step
	if st.Not {
		ps++
	}
	if w := r.steps[ps].Within; w > 0 {
		if r.steps[ps].Times > 1 && s.count > 0 {
			s.dead, s.hasDead = s.first.Add(w), true
		} else if r.steps[ps].Times == 1 {
			s.dead, s.hasDead = s.prev.Add(w), true
		}
	}
	return s
}

func (r *refMatcher) cond(s Step, e *event.Event, bound []*event.Event) bool {
	if s.Where == nil {
		return true
	}
	ok, err := s.Where(e, bound)
	return ok && err == nil
}

func (r *refMatcher) emit(key string, p *refPartial, t time.Time, last *event.Event) {
	s := r.state(p)
	vals := map[string]any{}
	for i, st := range r.steps {
		if st.Not || st.Alias == "" || s.bound[i] == nil {
			continue
		}
		vals[st.Alias] = s.bound[i].Fields
		if st.Times > 1 {
			vals[st.Alias+"_count"] = st.Times
		}
	}
	if last == nil {
		last = r.evs[p.evs[len(p.evs)-1]]
	}
	r.out = append(r.out, event.Result{Key: key, State: event.Firing, Time: t, Values: vals, Event: last})
	var keep []*refPartial
	for _, q := range r.keys[key] {
		shared := false
		for _, i := range q.evs {
			shared = shared || slices.Contains(p.evs, i)
		}
		if q != p && !shared {
			keep = append(keep, q)
		}
	}
	r.keys[key] = keep
}

// deadlines fires every deadline before t (all when t is zero).
func (r *refMatcher) deadlines(t time.Time) {
	type due struct {
		key string
		p   *refPartial
		at  time.Time
	}
	var ds []due
	for _, k := range r.order {
		for _, p := range r.keys[k] {
			if s := r.state(p); s.hasDead && (t.IsZero() || s.dead.Before(t)) {
				ds = append(ds, due{k, p, s.dead})
			}
		}
	}
	sort.Slice(ds, func(i, j int) bool {
		if !ds[i].at.Equal(ds[j].at) {
			return ds[i].at.Before(ds[j].at)
		}
		return ds[i].p.id < ds[j].p.id
	})
	for _, d := range ds {
		if !slices.Contains(r.keys[d.key], d.p) {
			continue // removed by an earlier completion
		}
		if r.state(d.p).trailingWait {
			r.emit(d.key, d.p, d.at, nil)
		} else {
			r.keys[d.key] = slices.DeleteFunc(r.keys[d.key], func(q *refPartial) bool { return q == d.p })
		}
	}
}

func (r *refMatcher) add(key string, e *event.Event) {
	r.deadlines(e.Time)
	if _, ok := r.keys[key]; !ok {
		r.order = append(r.order, key)
	}
	r.evs = append(r.evs, e)
	ix := len(r.evs) - 1
	parts := r.keys[key]
	acts := make([]action, len(parts))
	for i, p := range parts {
		s := r.state(p)
		st := r.steps[s.step]
		if st.Not {
			if (st.Within == 0 || !e.Time.After(s.prev.Add(st.Within))) && r.cond(st, e, s.bound) {
				acts[i] = actKill
				continue
			}
			if s.trailingWait {
				continue
			}
			st = r.steps[s.step+1]
		}
		if s.hasDead && e.Time.After(s.dead) || !r.cond(st, e, s.bound) {
			continue
		}
		p.evs = append(p.evs, ix)
		if r.state(p).step == len(r.steps) {
			acts[i] = actComplete
		} else {
			acts[i] = actAdvance
		}
		p.evs = p.evs[:len(p.evs)-1]
	}
	if w := slices.Index(acts, actComplete); w >= 0 {
		parts[w].evs = append(parts[w].evs, ix)
		r.emit(key, parts[w], e.Time, e)
		return
	}
	var keep []*refPartial
	for i, p := range parts {
		switch acts[i] {
		case actKill:
			continue
		case actAdvance:
			p.evs = append(p.evs, ix)
		}
		keep = append(keep, p)
	}
	r.keys[key] = keep
	if r.cond(r.steps[0], e, make([]*event.Event, len(r.steps))) {
		r.id++
		p := &refPartial{id: r.id, evs: []int{ix}}
		if r.state(p).step == len(r.steps) {
			r.emit(key, p, e.Time, e)
			return
		}
		r.keys[key] = append(r.keys[key], p)
	}
}

// randomSpec draws a pattern over event types A, B, C with values v in 0..2.
func randomSpec(rng *rand.Rand) PatternSpec {
	n := 1 + rng.IntN(3)
	var steps []Step
	for i := 0; i < n; i++ {
		typ := []string{"A", "B", "C"}[rng.IntN(3)]
		s := Step{Alias: fmt.Sprintf("s%d", i), Within: time.Duration(rng.IntN(4)*5) * time.Minute}
		if rng.IntN(3) == 0 {
			s.Times = 2 + rng.IntN(2)
		}
		if i > 0 && rng.IntN(3) == 0 {
			s.Where = func(e *event.Event, b []*event.Event) (bool, error) {
				return e.Fields["type"] == typ && b[0] != nil && e.Fields["v"] == b[0].Fields["v"], nil
			}
		} else if rng.IntN(5) > 0 {
			s.Where = func(e *event.Event, _ []*event.Event) (bool, error) { return e.Fields["type"] == typ, nil }
		}
		steps = append(steps, s)
		last := i == n-1
		if rng.IntN(3) == 0 {
			nt := []string{"A", "B", "C"}[rng.IntN(3)]
			ns := Step{Not: true, Where: func(e *event.Event, _ []*event.Event) (bool, error) { return e.Fields["type"] == nt, nil }}
			ns.Within = time.Duration(rng.IntN(3)*5) * time.Minute
			if last && ns.Within == 0 {
				ns.Within = 7 * time.Minute
			}
			steps = append(steps, ns)
		}
	}
	return PatternSpec{Steps: steps, MaxPartials: 1 << 20, MaxKeys: 1 << 20}
}

type arrival struct {
	key string
	ev  *event.Event
}

// randomStream draws events with times on a coarse grid (many ties) and an
// arrival order that is out of order by at most lateness.
func randomStream(rng *rand.Rand, n int, lateness time.Duration) []arrival {
	type gen struct {
		a      arrival
		arrive time.Duration
	}
	var gs []gen
	for i := 0; i < n; i++ {
		at := time.Duration(rng.IntN(120)) * time.Minute
		f := map[string]any{"type": []string{"A", "B", "C"}[rng.IntN(3)], "v": float64(rng.IntN(3)), "id": float64(i)}
		jit := time.Duration(0)
		if lateness > 0 {
			jit = time.Duration(rng.Int64N(int64(lateness) + 1))
		}
		gs = append(gs, gen{arrival{[]string{"x", "y"}[rng.IntN(2)], &event.Event{Time: t0.Add(at), Fields: f}}, at + jit})
	}
	sort.SliceStable(gs, func(i, j int) bool { return gs[i].arrive < gs[j].arrive })
	out := make([]arrival, len(gs))
	for i, g := range gs {
		g.a.ev.Seq = uint64(i + 1)
		out[i] = g.a
	}
	return out
}

// runOp drives an operator like the engine, restoring it from a snapshot
// into a fresh operator before the events listed in cuts.
func runOp(t *testing.T, fresh func() operator, as []arrival, lateness time.Duration, cuts map[int]bool) []event.Result {
	t.Helper()
	op := fresh()
	var out []event.Result
	var newest time.Time
	for i, a := range as {
		if cuts[i] {
			b, err := op.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			op = fresh()
			if err := op.Restore(b); err != nil {
				t.Fatalf("restore at %d: %v", i, err)
			}
		}
		out = append(out, op.Add(a.key, a.ev)...)
		if a.ev.Time.After(newest) {
			newest = a.ev.Time
		}
		out = append(out, op.Advance(newest.Add(-lateness))...)
	}
	if st := op.Stats(); st.Late != 0 {
		t.Fatalf("late events in a stream built to have none: %+v", st)
	}
	return append(out, op.Flush()...)
}

func TestPatternMatchesReference(t *testing.T) {
	for seed := range uint64(400) {
		rng := rand.New(rand.NewPCG(seed, 5))
		spec := randomSpec(rng)
		lateness := time.Duration(rng.IntN(3)*7) * time.Minute
		as := randomStream(rng, 10+rng.IntN(60), lateness)

		ref := &refMatcher{steps: spec.Steps, keys: map[string][]*refPartial{}}
		for i := range ref.steps {
			if ref.steps[i].Times == 0 {
				ref.steps[i].Times = 1
			}
		}
		sorted := slices.Clone(as)
		sort.SliceStable(sorted, func(i, j int) bool {
			a, b := sorted[i].ev, sorted[j].ev
			return a.Time.Before(b.Time) || a.Time.Equal(b.Time) && a.Seq < b.Seq
		})
		for _, a := range sorted {
			ref.add(a.key, a.ev)
		}
		ref.deadlines(time.Time{})

		fresh := func() operator {
			p, err := NewPattern(spec)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			return p
		}
		got := runOp(t, fresh, as, lateness, nil)
		if !sameResults(got, ref.out) {
			t.Fatalf("seed %d: operator and reference differ\ngot  %v\nwant %v", seed, brief(got), brief(ref.out))
		}
		checkMatches(t, seed, spec, sorted, got)

		cuts := map[int]bool{}
		for range 3 {
			cuts[rng.IntN(len(as))] = true
		}
		if again := runOp(t, fresh, as, lateness, cuts); !sameResults(again, got) {
			t.Fatalf("seed %d: snapshot/restore at %v changed the results\ngot  %v\nwant %v", seed, cuts, brief(again), brief(got))
		}
	}
}

func sameResults(a, b []event.Result) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Key != y.Key || x.State != y.State || !x.Time.Equal(y.Time) || x.Event.Seq != y.Event.Seq || !reflect.DeepEqual(x.Values, y.Values) {
			return false
		}
	}
	return true
}

// checkMatches verifies properties of the emitted matches that do not
// depend on how matching is implemented: the aliased events are in order,
// within the step limits, no two matches share an event, and a match that
// completed at a trailing not's deadline saw no forbidden event.
func checkMatches(t *testing.T, seed uint64, spec PatternSpec, sorted []arrival, rs []event.Result) {
	t.Helper()
	used := map[float64]bool{}
	for _, r := range rs {
		var prev *event.Event
		for i, s := range spec.Steps {
			if s.Not {
				continue
			}
			f, ok := r.Values[s.Alias].(map[string]any)
			if !ok {
				t.Fatalf("seed %d: alias %s missing in %v", seed, s.Alias, r.Values)
			}
			e := byID(sorted, f["id"].(float64))
			if used[f["id"].(float64)] {
				t.Fatalf("seed %d: event %v in two matches", seed, f["id"])
			}
			used[f["id"].(float64)] = true
			if prev != nil {
				if e.Time.Before(prev.Time) || e.Time.Equal(prev.Time) && e.Seq < prev.Seq {
					t.Fatalf("seed %d: step %d matched before step %d", seed, i, i-1)
				}
				if s.Times <= 1 && s.Within > 0 && e.Time.Sub(prev.Time) > s.Within {
					t.Fatalf("seed %d: step %d outside its within", seed, i)
				}
			}
			prev = e
		}
		if last := spec.Steps[len(spec.Steps)-1]; last.Not {
			if !r.Time.Equal(prev.Time.Add(last.Within)) {
				t.Fatalf("seed %d: trailing not fired at %v, want %v", seed, r.Time, prev.Time.Add(last.Within))
			}
			for _, a := range sorted {
				if a.key == r.Key && a.ev.Time.After(prev.Time) && !a.ev.Time.After(r.Time) && a.ev.Seq != prev.Seq {
					if ok, _ := last.Where(a.ev, nil); ok && (a.ev.Time.After(prev.Time) || a.ev.Seq > prev.Seq) {
						t.Fatalf("seed %d: forbidden event %v before the deadline", seed, a.ev.Fields)
					}
				}
			}
		}
	}
}

func byID(as []arrival, id float64) *event.Event {
	for _, a := range as {
		if a.ev.Fields["id"] == id {
			return a.ev
		}
	}
	return nil
}

// TestAbsentMatchesReference compares Absent with a direct computation
// over the sorted events: each gap longer than After fires at the
// deadline and resolves at the next event; the last event of every key
// fires at end of input. Snapshots at random points must not change it.
func TestAbsentMatchesReference(t *testing.T) {
	const after = 10 * time.Minute
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 9))
		lateness := time.Duration(rng.IntN(3)*4) * time.Minute
		as := randomStream(rng, 5+rng.IntN(40), lateness)
		sorted := slices.Clone(as)
		sort.SliceStable(sorted, func(i, j int) bool {
			a, b := sorted[i].ev, sorted[j].ev
			return a.Time.Before(b.Time) || a.Time.Equal(b.Time) && a.Seq < b.Seq
		})
		type rec struct {
			t   time.Time
			key string
			st  event.State
		}
		var want []rec
		last := map[string]time.Time{}
		for _, a := range sorted {
			if l, ok := last[a.key]; ok && a.ev.Time.Sub(l) > after {
				want = append(want, rec{l.Add(after), a.key, event.Firing}, rec{a.ev.Time, a.key, event.Resolved})
			}
			last[a.key] = a.ev.Time
		}
		for k, l := range last {
			want = append(want, rec{l.Add(after), k, event.Firing})
		}
		fresh := func() operator {
			a, _ := NewAbsent(AbsentSpec{After: after})
			return a
		}
		got := runOp(t, fresh, as, lateness, nil)
		var gotRecs []rec
		for _, r := range got {
			gotRecs = append(gotRecs, rec{r.Time, r.Key, r.State})
		}
		// Firing of different keys interleave by deadline; compare as sets
		// per key, in order within a key.
		perKey := func(rs []rec) map[string][]rec {
			m := map[string][]rec{}
			for _, r := range rs {
				m[r.key] = append(m[r.key], r)
			}
			return m
		}
		if !reflect.DeepEqual(perKey(gotRecs), perKey(want)) {
			t.Fatalf("seed %d: got %v want %v", seed, gotRecs, want)
		}
		cuts := map[int]bool{rng.IntN(len(as)): true, rng.IntN(len(as)): true}
		if again := runOp(t, fresh, as, lateness, cuts); !sameResults(again, got) {
			t.Fatalf("seed %d: snapshot/restore changed the results", seed)
		}
	}
}
