// Package engine drives the rules over events: Process, the one way in,
// decodes a message (ingest), keeps the per-rule watermarks, routes events
// to tables, stateless rules and the window, pattern and detector
// operators, applies cooldowns and assembles alerts. It owns no goroutines
// and never reads the clock: `replay` and `run` drive the same code, `run`
// adding Tick with the gateway's clock. It knows no file format: rule
// files are rules', recorded messages replay's.
//
// It is the one place where rules, expr, windows, cep and detect meet.
package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"time"

	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/expr"
	"github.com/vigil-gw/vigil/ingest"
	"github.com/vigil-gw/vigil/rules"
)

// Operator is what the engine needs of a window, detector, pattern or
// absence operator (see docs/design.md for the full contract).
type Operator interface {
	Add(key string, ev *event.Event) []event.Result
	Advance(closeAt time.Time) []event.Result
	Flush() []event.Result
	Snapshot() ([]byte, error)
	Restore([]byte) error
	Stats() event.OpStats
}

// Message is one received MQTT message.
type Message struct {
	Topic    string
	Payload  []byte
	Received time.Time // gateway receive time; the event time when the payload has none
	Seq      uint64    // processing order (journal position, input line)
}

// Options configure an Engine; the zero value works.
type Options struct {
	Gateway      string
	DefaultTopic string // upstream topic template, default vigil/{gateway}/alerts/{rule}
	MaxKeys      int    // per rule and per table, default 10,000
	// Grace is how long past a window's end plus lateness the gateway clock
	// waits before closing it without newer events (Tick). Default 5s.
	Grace  time.Duration
	Logger *slog.Logger
	// MaxFuture drops an event whose time is more than this ahead of the
	// message's receive time (when known), counting it; 0 keeps everything.
	MaxFuture time.Duration
	// OnEvent, if set, sees every decoded event before the rules do (the
	// UI's live values). It must not change ev.Fields nor keep it past the
	// call: the decoder fills the same map with the next message.
	OnEvent func(ev *event.Event)
}

// Engine is not safe for concurrent use.
type Engine struct {
	opts       Options
	set        *rules.Set
	rules      []*ruleState
	tables     map[string]*tableState
	sources    []*sourceState
	scratch    map[string]any
	stats      Stats
	decErr     map[string]uint64 // per source filter ("" = no source)
	recv       time.Time         // receive time of the message in process
	recvSet    bool              // !recv.IsZero()
	seq        uint64            // events processed, the Seq of the last one
	routes     map[string]*route // per topic; see route.go
	tableNames []string          // the tables in a fixed order, for routes
	viewBuf    []*event.Event
	dec        *ingest.Decoder
	lookupFn   expr.LookupFunc // e.lookup, made once
}

// Stats are the engine-wide counters.
type Stats struct {
	Messages     uint64
	Events       uint64
	DecodeErrors uint64
	Duplicates   uint64
	Alerts       uint64
	Suppressed   uint64 // alerts held back by cooldown
	Future       uint64 // events dropped for a time too far ahead of their receipt
	LastEvent    time.Time
}

type sourceState struct {
	src    *rules.Source
	dedupe *ingest.Dedupe
}

// New builds an engine for a valid rule set. Operator parameters the rule
// loader cannot judge (detector settings) are checked here and reported as
// rules.Errors.
func New(set *rules.Set, o Options) (*Engine, error) {
	if o.MaxKeys <= 0 {
		o.MaxKeys = 10000
	}
	if o.Grace <= 0 {
		o.Grace = 5 * time.Second
	}
	if o.DefaultTopic == "" {
		o.DefaultTopic = "vigil/{gateway}/alerts/{rule}"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{opts: o, set: set, tables: map[string]*tableState{}, scratch: map[string]any{}, decErr: map[string]uint64{},
		routes: map[string]*route{}, dec: ingest.NewDecoder()}
	e.lookupFn = e.lookup
	if n := len(set.Rules) + len(set.Tables); n > math.MaxInt16 {
		return nil, fmt.Errorf("%d rules and tables; at most %d", n, math.MaxInt16)
	}
	var errs rules.Errors
	for _, r := range set.Rules {
		rs, err := e.newRule(r)
		if err != nil {
			if es := rules.AsErrors(err); es != nil {
				errs = append(errs, es...)
			} else {
				errs = append(errs, rules.Error{Pos: r.Pos, Msg: fmt.Sprintf("rule %q: %v", r.Name, err)})
			}
			continue
		}
		e.rules = append(e.rules, rs)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	for _, t := range set.Tables {
		e.tables[t.Name] = newTable(t, o.MaxKeys)
		e.tableNames = append(e.tableNames, t.Name)
	}
	for _, s := range set.Sources {
		ss := &sourceState{src: s}
		if s.DedupeField != "" {
			ss.dedupe = ingest.NewDedupe(s.DedupeFor, 0)
		}
		e.sources = append(e.sources, ss)
	}
	return e, nil
}

// Check builds every operator of set and reports what is wrong, as
// rules.Errors.
func Check(set *rules.Set) error {
	_, err := New(set, Options{})
	return err
}

// Rules returns the rule set the engine runs.
func (e *Engine) Rules() *rules.Set { return e.set }

// Stats returns the engine-wide counters.
func (e *Engine) Stats() Stats { return e.stats }

// DecodeErrors returns decode errors per source filter ("" for topics no
// source covers).
func (e *Engine) DecodeErrors() map[string]uint64 {
	out := make(map[string]uint64, len(e.decErr))
	for k, v := range e.decErr {
		out[k] = v
	}
	return out
}

func (e *Engine) source(topic string) *sourceState {
	for _, s := range e.sources {
		if _, ok := s.src.Filter.Match(topic); ok {
			return s
		}
	}
	return nil
}

// DecodeError is a message that could not be decoded.
type DecodeError struct {
	Topic string
	Err   error
}

func (d *DecodeError) Error() string { return fmt.Sprintf("decode %s: %v", d.Topic, d.Err) }
func (d *DecodeError) Unwrap() error { return d.Err }

// Process runs one message through every table and rule and returns the
// alerts it caused: the one way in, for `run` and `replay` alike. A message
// that cannot be decoded returns a *DecodeError (counted); expression
// errors are counted per rule and do not stop the other rules.
func (e *Engine) Process(m Message) ([]event.Alert, error) {
	rt := e.route(m.Topic)
	src := rt.src
	var format ingest.Format
	var timeField, srcName string
	if src != nil {
		format, timeField, srcName = src.src.Format, src.src.TimeField, src.src.Filter.String()
	}
	decoded, err := e.dec.Decode(format, m.Payload, timeField, m.Received)
	e.stats.Messages++
	e.recv, e.recvSet = m.Received, !m.Received.IsZero()
	if err != nil {
		e.stats.DecodeErrors++
		e.decErr[srcName]++
		return nil, &DecodeError{Topic: m.Topic, Err: err}
	}
	var alerts []event.Alert
	for _, d := range decoded {
		// Every event gets its own place in processing order: the tie-break
		// between equal event times, also for the several events of one
		// message and for messages that have no journal position.
		e.seq++
		t := d.Time.UTC()
		if e.opts.MaxFuture > 0 && !m.Received.IsZero() && t.Sub(m.Received) > e.opts.MaxFuture {
			// A device clock far ahead would move the watermark past
			// everyone else's data and make it all late.
			e.stats.Future++
			e.decErr[srcName]++
			continue
		}
		ev := &event.Event{Topic: m.Topic, Time: t, Fields: d.Fields, Seq: e.seq}
		switch {
		case ev.Fields == nil:
			ev.Fields = map[string]any{}
		case rt.keeps:
			// The decoder fills this map again with the next message.
			ev.Fields = maps.Clone(ev.Fields)
		}
		if src != nil && src.dedupe != nil {
			if v, ok := ev.Fields[src.src.DedupeField]; ok && v != nil {
				if src.dedupe.Seen(expr.KeyString(v), ev.Time) {
					e.stats.Duplicates++
					continue
				}
			}
		}
		ev.Fields["topic"] = rt.topic
		ev.Fields["time"] = ev.Time
		e.stats.Events++
		if e.opts.OnEvent != nil {
			e.opts.OnEvent(ev)
		}
		if ev.Time.After(e.stats.LastEvent) {
			e.stats.LastEvent = ev.Time
		}
		views := e.views(rt, ev)
		for i, v := range rt.tables {
			if v >= 0 {
				e.tables[e.tableNames[i]].put(e, views[v])
			}
		}
		for i, v := range rt.rules {
			if v >= 0 {
				alerts = e.rules[i].process(e, views[v], alerts)
			}
		}
	}
	return alerts, nil
}

// Tick advances every rule on the gateway's clock: a rule whose newest event
// time has not moved for longer than Grace is treated as if its watermark
// moved on with the clock, so a sensor that falls silent still gets its last
// window and its absence alert.
func (e *Engine) Tick(now time.Time) []event.Alert {
	var alerts []event.Alert
	for _, rs := range e.rules {
		if rs.op == nil || rs.wm.IsZero() || rs.wmWall.IsZero() {
			continue
		}
		idle := now.Sub(rs.wmWall) - e.opts.Grace
		if idle <= 0 {
			continue
		}
		closeAt := rs.wm.Add(idle).Add(-rs.r.Lateness)
		if closeAt.After(rs.closeAt) {
			rs.closeAt = closeAt
			alerts = rs.emit(e, rs.op.Advance(closeAt), alerts)
		}
	}
	return alerts
}

// Flush closes every open window and fires every pending deadline: the end
// of a replay's input.
func (e *Engine) Flush() []event.Alert {
	var alerts []event.Alert
	for _, rs := range e.rules {
		if rs.op != nil {
			alerts = rs.emit(e, rs.op.Flush(), alerts)
		}
	}
	return alerts
}

// env is the environment expressions evaluate in: vars, and the tables
// for lookup.
func (e *Engine) env(vars map[string]any) expr.Env {
	return expr.Env{Vars: vars, Lookup: e.lookupFn}
}

// lookup serves lookup(table, key).
func (e *Engine) lookup(table, key string) map[string]any {
	t := e.tables[table]
	if t == nil {
		return nil
	}
	return t.get(key)
}

// sanitize makes values JSON-safe: NaN and ±Inf become nil.
func sanitize(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, y := range x {
			out[k] = sanitize(y)
		}
		return out
	}
	return v
}

// ErrNoKey is a key expression that evaluated to nil.
var ErrNoKey = errors.New("key evaluated to nil (missing field?)")

// RuleInfo is one rule's counters, operator included.
type RuleInfo struct {
	Name      string
	Kind      rules.Kind
	From      []string
	Severity  string
	File      string
	Line      int
	Events    uint64
	Alerts    uint64
	Errors    uint64
	LastError string
	Late      uint64
	Evicted   uint64
	Keys      int
	Pending   int
	Watermark time.Time
	// Disabled is why the rule was disabled at run time (an expression
	// over its budget), "" while it runs.
	Disabled string
}

// RuleStats returns every rule's counters, in rule order.
func (e *Engine) RuleStats() []RuleInfo {
	out := make([]RuleInfo, 0, len(e.rules))
	for _, rs := range e.rules {
		ri := RuleInfo{Name: rs.r.Name, Kind: rs.r.Kind, Severity: rs.r.Severity, File: rs.r.File, Line: rs.r.Pos.Line,
			Events: rs.stats.Events, Alerts: rs.stats.Alerts, Errors: rs.stats.Errors,
			LastError: rs.stats.LastError, Watermark: rs.wm, Disabled: rs.r.Disabled()}
		for _, f := range rs.r.From {
			ri.From = append(ri.From, f.String())
		}
		if rs.op != nil {
			os := rs.op.Stats()
			ri.Errors += os.Errors
			ri.Late, ri.Evicted, ri.Keys, ri.Pending = os.Late, os.Evicted, os.Keys, os.Pending
		}
		out = append(out, ri)
	}
	return out
}

// ResetClock restarts every rule's gateway-clock reference at now. Called
// after a restart, so the time the gateway was down does not count as
// silence: a backlog the broker kept for us arrives before windows close on
// the clock.
func (e *Engine) ResetClock(now time.Time) {
	for _, rs := range e.rules {
		if !rs.wm.IsZero() {
			rs.wmWall = now
		}
	}
}
