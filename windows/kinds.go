package windows

import (
	"maps"
	"slices"

	"github.com/vigil-gw/vigil/event"
)

// processSliding evaluates the window (t-size, t] of key at ev, which comes
// in event-time order.
func (o *Op) processSliding(key string, ev *event.Event, out []event.Result) []event.Result {
	t := ev.Time.UnixNano()
	ks, _ := o.touch(key)
	if ks.sl == nil {
		ks.sl = newSlideKey(o.aggs, t)
	}
	sl := ks.sl
	before := sl.len()
	sl.expire(o.aggs, t-o.size)
	o.extract(ev)
	sl.push(o.aggs, t, o.num, o.anyv)
	o.held += sl.len() - before
	if !ks.expiring {
		ks.expiring = true
		o.due.push(dueItem{due: t + o.size, key: key, kind: dueExpire, ks: ks})
	}
	// Most evaluations of an alerting rule fire nothing: evaluate `when`
	// over a reused map and copy it only for a result.
	if o.scratch == nil {
		o.scratch = make(map[string]any, len(o.aggs))
	}
	values := o.scratch
	for j := range o.aggs {
		values[o.aggs[j].Name] = sl.value(j, &o.aggs[j])
	}
	var state event.State
	switch ok := o.holds(values, ev); {
	case o.spec.When == nil:
		state = event.Firing
	case ok && !ks.firing:
		ks.firing, state = true, event.Firing
	case !ok && ks.firing:
		ks.firing, state = false, event.Resolved
	default:
		return out
	}
	return append(out, event.Result{Key: key, State: state, Time: ts(t), Values: maps.Clone(values),
		Window: &event.Window{Start: ts(t - o.size), End: ts(t)}, Event: ev})
}

// floorDiv rounds towards minus infinity, so windows before 1970 align too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// addFixed places an event into every still-open tumbling or hopping window
// [start, start+size) containing t; it is late when all of them have closed.
func (o *Op) addFixed(key string, ev *event.Event, t int64) {
	last := floorDiv(t, o.every) * o.every // the latest window holding t
	first := last
	for first-o.every+o.size > t {
		first -= o.every
	}
	if o.closeSet && last+o.size <= o.closeAt {
		o.late++
		return
	}
	ks, _ := o.touch(key)
	o.extract(ev)
	for s := first; s <= last; s += o.every {
		if o.closeSet && s+o.size <= o.closeAt {
			continue // closed already; the event still counts in later ones
		}
		i, found := slices.BinarySearchFunc(ks.wins, s, func(w *win, s int64) int { return cmp64(w.start, s) })
		if !found {
			w := o.newWin(ks, s, s+o.size)
			ks.wins = slices.Insert(ks.wins, i, w)
			o.due.push(dueItem{due: w.end, key: key, kind: dueWindow, w: w})
		}
		o.put(ks.wins[i], ev, t)
	}
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// closeFixed emits a tumbling or hopping window and forgets it.
func (o *Op) closeFixed(w *win, out []event.Result) []event.Result {
	ks := w.ks
	w.dead = true
	o.open--
	ks.wins = slices.DeleteFunc(ks.wins, func(x *win) bool { return x == w })
	if len(ks.wins) == 0 {
		o.drop(ks)
	}
	return o.emit(out, ks, w, w.end, event.Window{Start: ts(w.start), End: ts(w.end)})
}

// addSession puts an event into the session it falls into (within the gap
// of its events, gap included), merging the sessions it bridges. It is late
// when its session would already have closed: when t+gap < closeAt, or when
// it is within the gap of the key's last closed session.
func (o *Op) addSession(key string, ev *event.Event, t int64) {
	gap := o.size
	if o.closeSet && t+gap < o.closeAt {
		o.late++
		return
	}
	if ks := o.keys[key]; ks != nil && ks.hasClosed && t <= ks.closedLast+gap {
		o.late++
		return
	}
	ks, _ := o.touch(key)
	o.extract(ev)
	// Sessions are sorted by start and more than a gap apart; the event
	// joins every one whose [start-gap, end+gap] holds t.
	var into *win
	kept := ks.wins[:0]
	for _, w := range ks.wins {
		if t < w.start-gap || t > w.end+gap {
			kept = append(kept, w)
			continue
		}
		if into == nil {
			into = w
			kept = append(kept, w)
			continue
		}
		// w bridges into an earlier session: merge it in.
		for j := range o.aggs {
			into.aggs[j].merge(o.aggs[j].f, &w.aggs[j])
		}
		into.n += w.n
		into.end = max(into.end, w.end)
		if w.lastEv != nil && (into.lastEv == nil || after(w.lastEv, into.lastEv)) {
			into.lastEv = w.lastEv
		}
		w.dead = true
		o.open--
	}
	clear(ks.wins[len(kept):])
	ks.wins = kept
	if into == nil {
		into = o.newWin(ks, t, t)
		i, _ := slices.BinarySearchFunc(ks.wins, t, func(w *win, s int64) int { return cmp64(w.start, s) })
		ks.wins = slices.Insert(ks.wins, i, into)
		o.due.push(dueItem{due: t + gap + 1, key: key, kind: dueWindow, w: into})
	}
	into.start = min(into.start, t)
	into.end = max(into.end, t)
	o.put(into, ev, t)
}

func after(a, b *event.Event) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	return a.Seq > b.Seq
}

// closeSession emits a session whose gap has passed. The key stays known
// (without state) until no event could fall into the closed session any
// more, so that such an event is counted late instead of opening a new one.
func (o *Op) closeSession(w *win, out []event.Result) []event.Result {
	ks := w.ks
	w.dead = true
	o.open--
	ks.wins = slices.DeleteFunc(ks.wins, func(x *win) bool { return x == w })
	if !ks.hasClosed || w.end > ks.closedLast {
		ks.closedLast, ks.hasClosed = w.end, true
		o.due.push(dueItem{due: w.end + 2*o.size + 1, key: ks.key, kind: dueForget, ks: ks})
	}
	return o.emit(out, ks, w, w.end+o.size, event.Window{Start: ts(w.start), End: ts(w.end + o.size)})
}

// processCount adds an in-order event to key's count window and emits the
// window when it holds N events.
func (o *Op) processCount(key string, ev *event.Event, out []event.Result) []event.Result {
	t := ev.Time.UnixNano()
	ks, _ := o.touch(key)
	if ks.cw == nil {
		ks.cw = o.newWin(ks, t, t)
	}
	w := ks.cw
	o.extract(ev)
	o.put(w, ev, t)
	w.end = t
	if w.n < int64(o.spec.N) {
		return out
	}
	ks.cw = nil
	o.open--
	return o.emit(out, ks, w, t, event.Window{Start: ts(w.start), End: ts(t)})
}

// flushCount emits the partial count windows at the end of input, in order
// of last event time, then key.
func (o *Op) flushCount(out []event.Result) []event.Result {
	var ws []*win
	for _, ks := range o.keys {
		if ks.cw != nil {
			ws = append(ws, ks.cw)
		}
	}
	slices.SortFunc(ws, func(a, b *win) int {
		if c := cmp64(a.end, b.end); c != 0 {
			return c
		}
		return compareStr(a.ks.key, b.ks.key)
	})
	for _, w := range ws {
		w.ks.cw = nil
		o.open--
		out = o.emit(out, w.ks, w, w.end, event.Window{Start: ts(w.start), End: ts(w.end)})
	}
	return out
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
