package engine

import (
	"fmt"
	"time"

	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/ingest"
	"github.com/vigil-gw/vigil/rules"
)

// The flat path: a message whose topic only stateless rules take is never
// turned into a map unless a rule fires. Its fields stay as the decoder
// left them (names and values in payload order), each view adds its
// captures beside them, and the rules' expressions read them in place
// (rules.Flat). That spares the map, its hashing and its garbage, the
// larger part of the cost of a message through filter rules.

// flatView is one view of a flat event.
type flatView struct {
	f rules.Flat
}

func (e *Engine) processFlat(rt *route, d ingest.Decoded, t time.Time, alerts []event.Alert) []event.Alert {
	e.stats.Events++
	e.flatEvents++
	if t.After(e.stats.LastEvent) {
		e.stats.LastEvent = t
	}
	for len(e.flatViews) < len(rt.views) {
		e.flatViews = append(e.flatViews, &flatView{})
	}
	for i, rv := range rt.views {
		fv := e.flatViews[i]
		fv.f.Reset()
		fv.f.Keys, fv.f.Vals = d.Keys, d.Vals
		fv.f.Topic, fv.f.Time = rt.topic, t
		for j, c := range rv.caps {
			fv.f.Push(c.Name, rv.vals[j])
		}
	}
	// The event's time and the alerts so far ride in the engine: a call
	// per rule with fewer arguments.
	e.flatT, e.flatAt, e.flatAlerts = t, instantOf(t), alerts
	views := e.flatViews
	for i, rs := range e.rules {
		if v := rt.rules[i]; v >= 0 {
			rs.processFlat(e, views[v])
		}
	}
	alerts, e.flatAlerts = e.flatAlerts, nil
	for _, fv := range e.flatViews[:len(rt.views)] {
		// The decoder's memory is reused by the next message.
		fv.f.Keys, fv.f.Vals = nil, nil
	}
	return alerts
}

// processFlat is process for a stateless rule on a flat event, at
// e.flatT, adding its alert to e.flatAlerts.
func (rs *ruleState) processFlat(e *Engine, fv *flatView) {
	if rs.r.Disabled() != "" {
		return
	}
	rs.observe(e, e.flatT, e.flatAt)
	if rs.r.Where != nil {
		b, err := rs.r.Where.BoolFlat(&fv.f)
		if err != nil {
			rs.fail(fmt.Errorf("where: %w", err))
		}
		if !b || err != nil {
			return
		}
	}
	e.flatAlerts = rs.fire(e, fv, e.flatT, e.flatAlerts)
}

// fire is processFlat for an event that passed the rule's where.
func (rs *ruleState) fire(e *Engine, fv *flatView, t time.Time, alerts []event.Alert) []event.Alert {
	key := ""
	if rs.r.Key == nil {
		key = fv.f.Topic.(string)
	} else {
		v, err := rs.r.Key.RunFlat(&fv.f)
		switch {
		case err != nil:
			rs.fail(fmt.Errorf("key: %w", err))
			return alerts
		case v == nil:
			rs.fail(ErrNoKey)
			return alerts
		}
		key = rules.KeyString(v)
	}
	rs.stats.Events++
	// emit for one stateless firing, reading the flat event: its values
	// are the fields (JSON has no NaN to sanitize), its message sees them
	// with key and rule.
	res := event.Result{Key: key, State: event.Firing, Time: t}
	if !rs.cool.allow(res, rs.r.Cooldown) {
		e.stats.Suppressed++
		return alerts
	}
	var msg string
	if rs.r.Message != nil {
		fv.f.Push("key", key)
		fv.f.Push("rule", rs.r.Name)
		var err error
		if msg, err = rs.r.Message.RenderFlat(&fv.f); err != nil {
			rs.fail(fmt.Errorf("message: %w", err))
		}
		fv.f.Pop(2)
	}
	return rs.alert(e, res, fv.f.Fields(), msg, alerts)
}
