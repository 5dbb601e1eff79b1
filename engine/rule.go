package engine

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/vigil-gw/vigil/cep"
	"github.com/vigil-gw/vigil/detect"
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/expr"
	"github.com/vigil-gw/vigil/rules"
	"github.com/vigil-gw/vigil/windows"
)

// ruleState is one rule's runtime: its operator, watermark, cooldowns and
// counters.
type ruleState struct {
	r       *rules.Rule
	op      Operator
	wm      time.Time // greatest event time seen on the rule's topics
	wmAt    instant   // wm, for observe (set both with setWM)
	wmWall  time.Time // gateway clock when wm last moved (run only)
	closeAt time.Time // what operators have been advanced to
	cool    *cooldowns
	stats   RuleStats
}

// RuleStats are one rule's counters.
type RuleStats struct {
	Events    uint64 // events that passed `where`
	Alerts    uint64
	Errors    uint64 // expression errors (where, key, message)
	LastError string
}

func (e *Engine) newRule(r *rules.Rule) (*ruleState, error) {
	rs := &ruleState{r: r, cool: newCooldowns(e.opts.MaxKeys)}
	r.Halt.SetLogger(e.opts.Logger)
	rs.setWM(time.Time{})
	var err error
	switch r.Kind {
	case rules.Window:
		rs.op, err = e.windowOp(r)
	case rules.Detect:
		rs.op, err = e.detectOp(r)
	case rules.Pattern:
		rs.op, err = e.patternOp(r)
	case rules.Absent:
		rs.op, err = cep.NewAbsent(cep.AbsentSpec{After: r.AbsentFor, MaxKeys: e.opts.MaxKeys,
			NoEvent: expr.ReadsOnly(r.Message.Names(), "key", "rule", "last_seen", "silent_for")})
	}
	if err != nil {
		return nil, err
	}
	return rs, nil
}

func (e *Engine) windowOp(r *rules.Rule) (Operator, error) {
	w := r.WindowSpec
	spec := windows.Spec{Kind: windows.Kind(w.Type), Size: w.Size, Every: w.Every, N: w.N, MaxKeys: e.opts.MaxKeys}
	var aggNames []string
	for _, a := range r.Aggregates {
		aggNames = append(aggNames, a.Name)
	}
	// A window keeps its last event only for a when or a message that
	// reads the event's fields (emit puts key and rule beside the values).
	spec.NoEvent = expr.ReadsOnly(r.When.Names(), aggNames...) &&
		expr.ReadsOnly(r.Message.Names(), append(aggNames, "key", "rule")...)
	for _, a := range r.Aggregates {
		agg := windows.Agg{Name: a.Name, Func: a.Func, P: a.P}
		if a.Arg != nil {
			prog := a.Arg
			agg.Arg = func(ev *event.Event) (any, bool) {
				v, err := prog.Run(e.env(ev.Fields))
				if err != nil || v == nil {
					return nil, false
				}
				return v, true
			}
		}
		spec.Aggs = append(spec.Aggs, agg)
	}
	if r.When != nil {
		when, scratch := r.When, map[string]any{}
		spec.When = func(values map[string]any, last *event.Event) (bool, error) {
			clear(scratch)
			if last != nil {
				for k, v := range last.Fields {
					scratch[k] = v
				}
			}
			for k, v := range values {
				scratch[k] = v
			}
			return when.Bool(e.env(scratch))
		}
	}
	op, err := windows.New(spec)
	if err != nil {
		return nil, rules.Errors{{Pos: w.Pos, Msg: fmt.Sprintf("rule %q: window: %v", r.Name, err)}}
	}
	return op, nil
}

func (e *Engine) detectOp(r *rules.Rule) (Operator, error) {
	ds := r.DetectSpec
	prog := ds.Value
	spec := detect.Spec{Method: ds.Method, Params: ds.Params, MaxKeys: e.opts.MaxKeys,
		Value: func(ev *event.Event) (float64, bool) {
			v, err := prog.Run(e.env(ev.Fields))
			if err != nil {
				return 0, false
			}
			return toFloat(v)
		}}
	op, err := detect.New(spec)
	if err == nil {
		return op, nil
	}
	var errs rules.Errors
	for _, one := range unjoin(err) {
		pos := ds.Pos
		var pe *detect.ParamError
		if errors.As(one, &pe) {
			if p, ok := ds.ParamPos[pe.Param]; ok {
				pos = p
			}
		}
		errs = append(errs, rules.Error{Pos: pos, Msg: fmt.Sprintf("rule %q: detect: %v", r.Name, one)})
	}
	return nil, errs
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (e *Engine) patternOp(r *rules.Rule) (Operator, error) {
	spec := cep.PatternSpec{MaxKeys: e.opts.MaxKeys}
	steps := r.Steps
	for _, s := range steps {
		st := cep.Step{Alias: s.Alias, Within: s.Within, Times: s.Times, Not: s.Not}
		if s.Where != nil {
			st.Where = aliasCond(e, s.Where, steps)
		}
		spec.Steps = append(spec.Steps, st)
	}
	op, err := cep.NewPattern(spec)
	if err != nil {
		return nil, rules.Errors{{Pos: r.Pos, Msg: fmt.Sprintf("rule %q: pattern: %v", r.Name, err)}}
	}
	return op, nil
}

// aliasCond evaluates a step's where with the earlier steps' aliases bound.
// Rather than copying the event's fields into a new environment for every
// evaluation, it lends the aliases to the event's own map for the call and
// puts back what was there: the engine is single-threaded, so nothing else
// reads the map meanwhile.
func aliasCond(e *Engine, where *expr.Program, steps []rules.Step) cep.Cond {
	type saved struct {
		key string
		val any
		had bool
	}
	var undo []saved
	return func(ev *event.Event, bound []*event.Event) (bool, error) {
		env := ev.Fields
		undo = undo[:0]
		for i, b := range bound {
			if b == nil || i >= len(steps) || steps[i].Alias == "" {
				continue
			}
			a := steps[i].Alias
			old, had := env[a]
			undo = append(undo, saved{a, old, had})
			env[a] = b.Fields
		}
		ok, err := where.Bool(e.env(env))
		for j := len(undo) - 1; j >= 0; j-- {
			if u := undo[j]; u.had {
				env[u.key] = u.val
			} else {
				delete(env, u.key)
			}
		}
		return ok, err
	}
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float32:
		return float64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func (rs *ruleState) fail(err error) {
	rs.stats.Errors++
	rs.stats.LastError = err.Error()
}

// process runs ev, the event with the captures of the rule's filter,
// through the rule.
func (rs *ruleState) process(e *Engine, ev *event.Event, alerts []event.Alert) []event.Alert {
	if rs.r.Disabled() != "" { // over its expression budget (expr/budget.go)
		return alerts
	}
	rs.observe(e, ev.Time, instantOf(ev.Time))
	pass := true
	if rs.r.Where != nil {
		b, err := rs.r.Where.Bool(e.env(ev.Fields))
		if err != nil {
			rs.fail(fmt.Errorf("where: %w", err))
		}
		pass = b && err == nil
	}
	var key string
	if pass {
		if rs.r.Key == nil {
			key = ev.Topic
		} else {
			v, err := rs.r.Key.Run(e.env(ev.Fields))
			switch {
			case err != nil:
				rs.fail(fmt.Errorf("key: %w", err))
				pass = false
			case v == nil:
				rs.fail(ErrNoKey)
				pass = false
			default:
				key = expr.KeyString(v)
			}
		}
	}
	if pass {
		rs.stats.Events++
	}
	if rs.op == nil {
		if pass {
			res := event.Result{Key: key, State: event.Firing, Time: ev.Time, Values: eventValues(ev), Event: ev}
			alerts = rs.emit(e, []event.Result{res}, alerts)
		}
		return alerts
	}
	if pass {
		alerts = rs.emit(e, rs.op.Add(key, ev), alerts)
	}
	closeAt := rs.wm.Add(-rs.r.Lateness)
	if closeAt.After(rs.closeAt) || rs.closeAt.IsZero() {
		rs.closeAt = closeAt
		alerts = rs.emit(e, rs.op.Advance(closeAt), alerts)
	}
	return alerts
}

// observe moves the rule's watermark with an event's time t (at is
// instantOf(t)).
func (rs *ruleState) observe(e *Engine, t time.Time, at instant) {
	if at.after(rs.wmAt) {
		rs.wm, rs.wmAt = t, at
		if e.recvSet {
			rs.wmWall = e.recv
		}
	} else if e.recvSet && rs.wmWall.IsZero() {
		rs.wmWall = e.recv
	}
}

func (rs *ruleState) setWM(t time.Time) { rs.wm, rs.wmAt = t, instantOf(t) }

// instant is an event time reduced to what orders it, compared inline:
// the watermark check runs once per rule and event, and time.Time.After
// is a call (event times carry no monotonic reading, the one thing After
// would compare instead).
type instant struct {
	sec  int64
	nsec int32
}

func instantOf(t time.Time) instant { return instant{t.Unix(), int32(t.Nanosecond())} }

func (a instant) after(b instant) bool { return a.sec > b.sec || a.sec == b.sec && a.nsec > b.nsec }

// eventValues are a stateless alert's values: the event's fields without the
// environment's topic and time.
func eventValues(ev *event.Event) map[string]any {
	out := make(map[string]any, len(ev.Fields))
	for k, v := range ev.Fields {
		if k == "topic" || k == "time" {
			continue
		}
		out[k] = v
	}
	return out
}

// emit turns operator results into alerts, applying the cooldown.
func (rs *ruleState) emit(e *Engine, results []event.Result, alerts []event.Alert) []event.Alert {
	r := rs.r
	for _, res := range results {
		if !rs.cool.allow(res, r.Cooldown) {
			e.stats.Suppressed++
			continue
		}
		vals, _ := sanitize(res.Values).(map[string]any)
		var msg string
		if r.Message != nil {
			env := e.scratch
			clear(env)
			if res.Event != nil {
				for k, v := range res.Event.Fields {
					env[k] = v
				}
			}
			for k, v := range res.Values {
				env[k] = v
			}
			env["key"] = res.Key
			env["rule"] = r.Name
			var err error
			if msg, err = r.Message.Render(e.env(env)); err != nil {
				rs.fail(fmt.Errorf("message: %w", err))
			}
		}
		alerts = rs.alert(e, res, vals, msg, alerts)
	}
	return alerts
}

// alert appends the alert of a result the cooldown let through.
func (rs *ruleState) alert(e *Engine, res event.Result, vals map[string]any, msg string, alerts []event.Alert) []event.Alert {
	r := rs.r
	if vals == nil {
		vals = map[string]any{}
	}
	a := event.Alert{
		ID:       event.AlertID(r.Name, res.Key, res.State, res.Time),
		Rule:     r.Name,
		Key:      res.Key,
		State:    res.State,
		Severity: r.Severity,
		Time:     res.Time.UTC(),
		Message:  msg,
		Values:   vals,
		Window:   res.Window,
	}
	tmpl := r.Topic
	if tmpl == "" {
		tmpl = e.opts.DefaultTopic
	}
	a.Topic = rules.UpstreamTopic(tmpl, e.opts.Gateway, r.Name, res.Key, r.Severity)
	rs.stats.Alerts++
	e.stats.Alerts++
	return append(alerts, a)
}

// cooldowns remember, per key, when the rule last fired (event time), so a
// second firing within the cooldown is held back, and so is the resolution
// of a held-back firing.
type cooldowns struct {
	max  int
	last map[string]time.Time
	held map[string]bool
}

func newCooldowns(max int) *cooldowns {
	return &cooldowns{max: max, last: map[string]time.Time{}, held: map[string]bool{}}
}

func (c *cooldowns) allow(res event.Result, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	if res.State == event.Resolved {
		if c.held[res.Key] {
			delete(c.held, res.Key)
			return false
		}
		return true
	}
	if t, ok := c.last[res.Key]; ok {
		gap := res.Time.Sub(t)
		if gap < 0 {
			gap = -gap // an out-of-order firing is within the cooldown too
		}
		if gap < d {
			c.held[res.Key] = true
			return false
		}
		if res.Time.Before(t) {
			delete(c.held, res.Key)
			return true // long before the last one: sent, and last stays
		}
	}
	delete(c.held, res.Key)
	c.last[res.Key] = res.Time
	if len(c.last) > 2*c.max {
		c.prune(res.Time, d)
	}
	return true
}

// prune forgets keys whose cooldown has run out, then the oldest ones if
// still over the cap.
func (c *cooldowns) prune(now time.Time, d time.Duration) {
	for k, t := range c.last {
		if now.Sub(t) >= d {
			delete(c.last, k)
			delete(c.held, k)
		}
	}
	if len(c.last) <= c.max {
		return
	}
	type kt struct {
		k string
		t time.Time
	}
	all := make([]kt, 0, len(c.last))
	for k, t := range c.last {
		all = append(all, kt{k, t})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].t.Before(all[j].t) })
	for _, x := range all[:len(all)-c.max] {
		delete(c.last, x.k)
		delete(c.held, x.k)
	}
}

func (c *cooldowns) encode(enc *event.Enc) {
	keys := make([]string, 0, len(c.last))
	for k := range c.last {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	enc.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		enc.String(k)
		enc.Time(c.last[k])
		enc.Bool(c.held[k])
	}
}

func (c *cooldowns) decode(d *event.Dec) {
	n := d.Len()
	for i := 0; i < n && d.Err == nil; i++ {
		k := d.String()
		c.last[k] = d.Time()
		if d.Bool() {
			c.held[k] = true
		}
	}
}
