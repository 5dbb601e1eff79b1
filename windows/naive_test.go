package windows

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// This file holds a deliberately naive model of the operator: it keeps
// every event and recomputes every aggregate from scratch, so the property
// tests can check the incremental code against it.

// naiveAgg computes one aggregate over the events of a window.
func naiveAgg(a Agg, evs []*event.Event) any {
	type tv struct {
		t   time.Time
		seq uint64
		v   any
		f   float64
	}
	var xs []tv
	for _, ev := range evs {
		if a.Arg == nil {
			xs = append(xs, tv{t: ev.Time, seq: ev.Seq})
			continue
		}
		v, ok := a.Arg(ev)
		if !ok || v == nil {
			continue
		}
		f, isNum := toFloat(v)
		if fnNames[a.Func].numeric() && !isNum {
			continue
		}
		xs = append(xs, tv{ev.Time, ev.Seq, v, f})
	}
	n := float64(len(xs))
	switch a.Func {
	case "count":
		return n
	case "sum":
		s := 0.0
		for _, x := range xs {
			s += x.f
		}
		return s
	case "count_distinct":
		set := map[any]bool{}
		for _, x := range xs {
			set[distinctKey(x.v)] = true
		}
		return float64(len(set))
	}
	if len(xs) == 0 {
		return nil
	}
	mean := 0.0
	for _, x := range xs {
		mean += x.f
	}
	mean /= n
	switch a.Func {
	case "avg":
		return mean
	case "stddev":
		ss := 0.0
		for _, x := range xs {
			ss += (x.f - mean) * (x.f - mean)
		}
		return math.Sqrt(ss / n)
	case "min", "max":
		m := xs[0].f
		for _, x := range xs {
			if (a.Func == "min") == (x.f < m) && x.f != m {
				m = x.f
			}
		}
		return m
	case "first", "last":
		slices.SortStableFunc(xs, func(p, q tv) int {
			if c := p.t.Compare(q.t); c != 0 {
				return c
			}
			return int(p.seq) - int(q.seq)
		})
		if a.Func == "first" {
			return xs[0].v
		}
		return xs[len(xs)-1].v
	case "slope":
		t0 := xs[0].t
		mt := 0.0
		for _, x := range xs {
			mt += x.t.Sub(t0).Seconds()
		}
		mt /= n
		var num, den float64
		for _, x := range xs {
			dt := x.t.Sub(t0).Seconds() - mt
			num += dt * (x.f - mean)
			den += dt * dt
		}
		if den == 0 {
			return nil
		}
		return num / den
	case "percentile":
		fs := make([]float64, len(xs))
		for i, x := range xs {
			fs[i] = x.f
		}
		sort.Float64s(fs)
		return percentile(fs, a.P)
	}
	panic("unknown func " + a.Func)
}

func naiveValues(s Spec, evs []*event.Event) map[string]any {
	m := map[string]any{}
	for _, a := range s.Aggs {
		m[a.Name] = naiveAgg(a, evs)
	}
	return m
}

func lastOf(evs []*event.Event) *event.Event {
	var l *event.Event
	for _, ev := range evs {
		if l == nil || after(ev, l) {
			l = ev
		}
	}
	return l
}

// naive follows the operator protocol (Add, Advance, Flush) with raw event
// lists. Only what the property tests need: no key cap.
type naive struct {
	s       Spec
	closeAt time.Time
	set     bool
	late    int
	buf     []event.Item // sliding/count: waiting for closeAt
	hist    map[string][]*event.Event
	firing  map[string]bool
	fixed   map[string]map[int64][]*event.Event // key -> window start -> events
	open    map[string][]*event.Event           // session: open events per key
	closed  map[string]time.Time                // session: last event of the newest closed session
	cnt     map[string][]*event.Event
}

func newNaive(s Spec) *naive {
	return &naive{s: s, hist: map[string][]*event.Event{}, firing: map[string]bool{},
		fixed: map[string]map[int64][]*event.Event{}, open: map[string][]*event.Event{},
		closed: map[string]time.Time{}, cnt: map[string][]*event.Event{}}
}

func (n *naive) Add(key string, ev *event.Event) []event.Result {
	switch n.s.Kind {
	case Sliding, Count:
		if n.set && ev.Time.Before(n.closeAt) {
			n.late++
			return nil
		}
		n.buf = append(n.buf, event.Item{Key: key, Ev: ev})
		if n.set {
			return n.release(n.closeAt)
		}
	case Session:
		g := n.s.Size
		c, ok := n.closed[key]
		if (n.set && ev.Time.Add(g).Before(n.closeAt)) || (ok && !ev.Time.After(c.Add(g))) {
			n.late++
			return nil
		}
		n.open[key] = append(n.open[key], ev)
	default:
		every := n.s.Every
		if n.s.Kind == Tumbling {
			every = n.s.Size
		}
		placed := false
		t := ev.Time.UnixNano()
		for s := time.Unix(0, t-t%int64(every)); s.Add(n.s.Size).After(ev.Time); s = s.Add(-every) {
			if n.set && !s.Add(n.s.Size).After(n.closeAt) {
				continue
			}
			if n.fixed[key] == nil {
				n.fixed[key] = map[int64][]*event.Event{}
			}
			n.fixed[key][s.UnixNano()] = append(n.fixed[key][s.UnixNano()], ev)
			placed = true
		}
		if !placed {
			n.late++
		}
	}
	return nil
}

func (n *naive) release(c time.Time) []event.Result {
	slices.SortStableFunc(n.buf, func(a, b event.Item) int {
		if x := a.Ev.Time.Compare(b.Ev.Time); x != 0 {
			return x
		}
		return int(a.Ev.Seq) - int(b.Ev.Seq)
	})
	var out []event.Result
	i := 0
	for ; i < len(n.buf) && !n.buf[i].Ev.Time.After(c); i++ {
		out = append(out, n.process(n.buf[i].Key, n.buf[i].Ev)...)
	}
	n.buf = n.buf[i:]
	return out
}

func (n *naive) process(key string, ev *event.Event) []event.Result {
	if n.s.Kind == Count {
		n.cnt[key] = append(n.cnt[key], ev)
		if len(n.cnt[key]) < n.s.N {
			return nil
		}
		evs := n.cnt[key]
		delete(n.cnt, key)
		return n.closeWin(key, evs, ev.Time, evs[0].Time, ev.Time)
	}
	n.hist[key] = append(n.hist[key], ev)
	var in []*event.Event
	for _, e := range n.hist[key] {
		if e.Time.After(ev.Time.Add(-n.s.Size)) {
			in = append(in, e)
		}
	}
	vals := naiveValues(n.s, in)
	var st event.State
	if n.s.When == nil {
		st = event.Firing
	} else {
		ok, err := n.s.When(vals, ev)
		ok = ok && err == nil
		switch {
		case ok && !n.firing[key]:
			st = event.Firing
		case !ok && n.firing[key]:
			st = event.Resolved
		default:
			return nil
		}
		n.firing[key] = ok
	}
	return []event.Result{{Key: key, State: st, Time: ev.Time, Values: vals,
		Window: &event.Window{Start: ev.Time.Add(-n.s.Size).UTC(), End: ev.Time.UTC()}, Event: ev}}
}

func (n *naive) closeWin(key string, evs []*event.Event, t, start, end time.Time) []event.Result {
	vals := naiveValues(n.s, evs)
	last := lastOf(evs)
	if n.s.When != nil {
		if ok, err := n.s.When(vals, last); !ok || err != nil {
			return nil
		}
	}
	return []event.Result{{Key: key, State: event.Firing, Time: t.UTC(), Values: vals,
		Window: &event.Window{Start: start.UTC(), End: end.UTC()}, Event: last}}
}

type pending struct {
	end  time.Time
	key  string
	emit func() []event.Result
}

func (n *naive) Advance(c time.Time) []event.Result {
	if n.set && c.Before(n.closeAt) {
		c = n.closeAt
	}
	n.closeAt, n.set = c, true
	if n.s.Kind == Sliding || n.s.Kind == Count {
		return n.release(c)
	}
	return n.closeDue(func(end time.Time) bool {
		if n.s.Kind == Session {
			return c.After(end)
		}
		return !c.Before(end)
	})
}

// closeDue emits the windows whose end satisfies due, by end then key.
func (n *naive) closeDue(due func(end time.Time) bool) []event.Result {
	var ps []pending
	if n.s.Kind == Session {
		for key, evs := range n.open {
			for _, grp := range sessions(evs, n.s.Size) {
				first, last := grp[0].Time, grp[len(grp)-1].Time
				if !due(last.Add(n.s.Size)) {
					continue
				}
				key, grp := key, grp
				ps = append(ps, pending{last.Add(n.s.Size), key, func() []event.Result {
					if c, ok := n.closed[key]; !ok || last.After(c) {
						n.closed[key] = last
					}
					n.open[key] = slices.DeleteFunc(n.open[key], func(e *event.Event) bool { return slices.Contains(grp, e) })
					return n.closeWin(key, grp, last.Add(n.s.Size), first, last.Add(n.s.Size))
				}})
			}
		}
	} else {
		for key, ws := range n.fixed {
			for s, evs := range ws {
				start := time.Unix(0, s)
				end := start.Add(n.s.Size)
				if !due(end) {
					continue
				}
				key, s, evs := key, s, evs
				ps = append(ps, pending{end, key, func() []event.Result {
					delete(n.fixed[key], s)
					return n.closeWin(key, evs, end, start, end)
				}})
			}
		}
	}
	slices.SortFunc(ps, func(a, b pending) int {
		if c := a.end.Compare(b.end); c != 0 {
			return c
		}
		return compareStr(a.key, b.key)
	})
	var out []event.Result
	for _, p := range ps {
		out = append(out, p.emit()...)
	}
	return out
}

// sessions splits events into groups separated by more than gap.
func sessions(evs []*event.Event, gap time.Duration) [][]*event.Event {
	s := slices.Clone(evs)
	slices.SortStableFunc(s, func(a, b *event.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return int(a.Seq) - int(b.Seq)
	})
	var out [][]*event.Event
	for i, ev := range s {
		if i == 0 || ev.Time.Sub(s[i-1].Time) > gap {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], ev)
	}
	return out
}

func (n *naive) Flush() []event.Result {
	switch n.s.Kind {
	case Sliding:
		return n.release(time.Unix(1<<40, 0))
	case Count:
		out := n.release(time.Unix(1<<40, 0))
		keys := make([]string, 0, len(n.cnt))
		for k := range n.cnt {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			ea, eb := n.cnt[a], n.cnt[b]
			if c := ea[len(ea)-1].Time.Compare(eb[len(eb)-1].Time); c != 0 {
				return c
			}
			return compareStr(a, b)
		})
		for _, k := range keys {
			evs := n.cnt[k]
			out = append(out, n.closeWin(k, evs, evs[len(evs)-1].Time, evs[0].Time, evs[len(evs)-1].Time)...)
		}
		clear(n.cnt)
		return out
	}
	return n.closeDue(func(time.Time) bool { return true })
}
