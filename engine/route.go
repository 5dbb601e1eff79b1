package engine

import (
	"slices"

	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/ingest"
)

// maxRoutes bounds the route cache: a flood of new topics (device ids)
// costs at most this many entries, a few hundred bytes each.
const maxRoutes = 16384

// route is what the engine works out once per topic rather than once per
// message: the source that decodes it, which rules and tables take it, and
// the captures each sees. Rules and tables whose filters capture the same
// names with the same values share one view of the event.
type route struct {
	src   *sourceState
	topic any // the topic, boxed once for the expression environment
	views []routeView
	// rules[i] and tables[i] index views, -1 when the filter does not match.
	rules  []int16
	tables []int16
	// keeps: a table or an operator (window, detector, pattern, absence)
	// takes the topic and keeps its events' maps, so each event needs a
	// map of its own rather than the decoder's (see ingest.Decoder.Decode).
	keeps bool
}

// routeView is one distinct set of captures. views[0] is the one most
// rules see: its captures are written into the decoded map itself; the
// others see a copy.
type routeView struct {
	caps []ingest.Capture
	vals []any // caps' values, boxed once
}

// route returns the topic's route, working it out on a miss.
func (e *Engine) route(topic string) *route {
	if rt, ok := e.routes[topic]; ok {
		return rt
	}
	rt := &route{src: e.source(topic), topic: topic}
	users := []int{} // per view: how many rules and tables see it
	view := func(caps []ingest.Capture) int {
		for i, v := range rt.views {
			if slices.Equal(v.caps, caps) {
				users[i]++
				return i
			}
		}
		v := routeView{caps: caps}
		for _, c := range caps {
			v.vals = append(v.vals, c.Value)
		}
		rt.views = append(rt.views, v)
		users = append(users, 1)
		return len(rt.views) - 1
	}
	match := func(fs []*ingest.Filter) int16 {
		for _, f := range fs {
			if caps, ok := f.Match(topic); ok {
				return int16(view(caps))
			}
		}
		return -1
	}
	for _, rs := range e.rules {
		rt.rules = append(rt.rules, match(rs.r.From))
	}
	for _, name := range e.tableNames {
		rt.tables = append(rt.tables, match(e.tables[name].t.From))
	}
	for i, v := range rt.rules {
		rt.keeps = rt.keeps || v >= 0 && e.rules[i].op != nil
	}
	for _, v := range rt.tables {
		rt.keeps = rt.keeps || v >= 0
	}
	// The view most rules share goes first: it needs no copy.
	best := 0
	for i, n := range users {
		if n > users[best] {
			best = i
		}
	}
	if best != 0 {
		rt.views[0], rt.views[best] = rt.views[best], rt.views[0]
		swap := func(xs []int16) {
			for i, x := range xs {
				switch int(x) {
				case 0:
					xs[i] = int16(best)
				case best:
					xs[i] = 0
				}
			}
		}
		swap(rt.rules)
		swap(rt.tables)
	}
	if len(e.routes) >= maxRoutes {
		for k := range e.routes { // an arbitrary entry: map order is random
			delete(e.routes, k)
			break
		}
	}
	e.routes[topic] = rt
	return rt
}

// views returns the event as each view of rt sees it. The first is ev
// itself, its map given the first view's captures; ev.Fields must be the
// engine's own, seen by nobody yet who keeps it.
func (e *Engine) views(rt *route, ev *event.Event) []*event.Event {
	out := append(e.viewBuf[:0], ev)
	for _, v := range rt.views[min(1, len(rt.views)):] {
		fields := make(map[string]any, len(ev.Fields)+len(v.caps))
		for k, x := range ev.Fields {
			fields[k] = x
		}
		for j, c := range v.caps {
			fields[c.Name] = v.vals[j]
		}
		cp := *ev
		cp.Fields = fields
		out = append(out, &cp)
	}
	// Only now, the copies made: the first view's captures into ev itself.
	if len(rt.views) > 0 {
		v := rt.views[0]
		for j, c := range v.caps {
			ev.Fields[c.Name] = v.vals[j]
		}
	}
	e.viewBuf = out
	return out
}
