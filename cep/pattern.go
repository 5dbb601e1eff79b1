package cep

import (
	"errors"
	"fmt"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// Cond evaluates a step's `where` for ev. bound[i] is the (last) event
// matched by step i so far, nil for steps not yet matched and for not
// steps. Cond must not keep bound or modify it.
type Cond func(ev *event.Event, bound []*event.Event) (bool, error)

// Step is one step of a pattern.
type Step struct {
	Alias string // may be "" (no alias)
	Where Cond   // nil: any event of the key matches
	// Within is 0 for unlimited. For a normal step it bounds the time from
	// the previous matched step (meaningless for step 0); for a times step,
	// the N-th event's time from the first's; for a not step, the window
	// after the previous matched step in which a matching event is
	// forbidden.
	Within time.Duration
	Times  int // 0 or 1: one event
	Not    bool
}

// PatternSpec configures a Pattern.
type PatternSpec struct {
	Steps       []Step
	MaxKeys     int // keys holding partial matches; default DefaultMaxKeys
	MaxPartials int // partial matches per key; default DefaultMaxPartials
}

// Pattern matches a sequence of steps per key with skip-till-next-match
// semantics and relaxed contiguity. See rules.md for the user-facing
// definition; the comments below say how it is kept cheap.
type Pattern struct {
	steps       []Step
	maxKeys     int
	maxPartials int
	perMatch    int // events one complete match consumes

	keys      map[string]*pkey
	lru       pkey // sentinel: lru.next is the least recently seen key
	dl        dlHeap
	buf       queue
	closed    int64 // last closeAt (ns); valid when hasClosed
	hasClosed bool

	nextID   uint64 // creation order of partials: the oldest wins
	gen      uint64 // bumped on every change of a partial, for lazy heap deletion
	partials int    // live partial matches
	stats    event.OpStats

	noBound []*event.Event // all nil: what step 0 sees
	acts    []action
	out     []event.Result
	free    []*partial
	snapLen int // the last snapshot's length: the next one's capacity
}

// pkey is one key's partial matches, oldest first, and its place in the
// least-recently-seen list. A key without partial matches is forgotten.
type pkey struct {
	key        string
	parts      []*partial
	nextIdx    uint32 // index of the key's next processed event
	prev, next *pkey
}

// partial is one partial match. Times are Unix ns.
type partial struct {
	id      uint64
	gen     uint64
	step    int   // the step awaited next; may be a not step
	count   int   // events matched so far by a times step in progress
	prev    int64 // time of the last completed positive step
	first   int64 // time of the first event of the times step in progress
	dead    int64 // current deadline when hasDead
	hasDead bool
	bound   []*event.Event
	idx     []uint32 // per-key indices of the consumed events, ascending
}

type action uint8

const (
	actNone action = iota
	actKill
	actAdvance
	actComplete
)

// NewPattern validates s and returns an operator.
func NewPattern(s PatternSpec) (*Pattern, error) {
	if err := validate(s.Steps); err != nil {
		return nil, err
	}
	p := &Pattern{
		steps:       append([]Step(nil), s.Steps...),
		maxKeys:     s.MaxKeys,
		maxPartials: s.MaxPartials,
		keys:        map[string]*pkey{},
		noBound:     make([]*event.Event, len(s.Steps)),
	}
	if p.maxKeys <= 0 {
		p.maxKeys = DefaultMaxKeys
	}
	if p.maxPartials <= 0 {
		p.maxPartials = DefaultMaxPartials
	}
	for i := range p.steps {
		if p.steps[i].Times <= 0 {
			p.steps[i].Times = 1
		}
		if !p.steps[i].Not {
			p.perMatch += p.steps[i].Times
		}
	}
	p.lru.prev, p.lru.next = &p.lru, &p.lru
	return p, nil
}

func validate(steps []Step) error {
	if len(steps) == 0 {
		return errors.New("a pattern needs at least one step")
	}
	if steps[0].Not {
		return errors.New("the first step may not be a not step")
	}
	aliases := map[string]bool{}
	var errs []error
	for i, s := range steps {
		switch {
		case s.Times < 0:
			errs = append(errs, fmt.Errorf("step %d: times must be at least 1", i+1))
		case s.Not && s.Times > 1:
			errs = append(errs, fmt.Errorf("step %d: a not step cannot have times", i+1))
		case s.Within < 0:
			errs = append(errs, fmt.Errorf("step %d: within must not be negative", i+1))
		}
		if s.Not && i > 0 && steps[i-1].Not {
			errs = append(errs, fmt.Errorf("step %d: two not steps in a row", i+1))
		}
		if s.Not && i == len(steps)-1 && s.Within <= 0 {
			errs = append(errs, fmt.Errorf("step %d: a not step that ends a pattern needs within", i+1))
		}
		if s.Alias != "" {
			if aliases[s.Alias] {
				errs = append(errs, fmt.Errorf("step %d: alias %q used twice", i+1, s.Alias))
			}
			aliases[s.Alias] = true
		}
	}
	return errors.Join(errs...)
}

// Add hands the operator one event of key. It is buffered until the closing
// time reaches it, so out-of-order events within the lateness are matched in
// event-time order; an event older than the last closing time is late.
func (p *Pattern) Add(key string, ev *event.Event) []event.Result {
	if p.hasClosed && ns(ev.Time) < p.closed {
		p.stats.Late++
		return nil
	}
	p.buf.push(key, ev)
	if !p.hasClosed {
		return nil
	}
	return p.Advance(fromNs(p.closed))
}

// Advance processes the buffered events up to closeAt and the deadlines
// that closeAt has passed, in event-time order. It costs O(1) when nothing
// is due.
func (p *Pattern) Advance(closeAt time.Time) []event.Result {
	c := ns(closeAt)
	if p.hasClosed && c < p.closed {
		c = p.closed
	}
	p.closed, p.hasClosed = c, true
	p.out = nil
	p.buf.ready(c, p.step)
	p.fire(c, false)
	return p.out
}

// Flush processes everything buffered and fires every pending deadline:
// the end of replay input.
func (p *Pattern) Flush() []event.Result {
	p.out = nil
	p.buf.all(p.step)
	p.fire(0, true)
	return p.out
}

// step processes one event in order: first the deadlines before it (a
// deadline at exactly the event's time has not passed: within is
// inclusive), then the event itself.
func (p *Pattern) step(key string, ev *event.Event) {
	t := ns(ev.Time)
	p.fire(t, false)
	p.process(key, ev, t)
}

// fire handles the deadlines before `before` (all of them when all is set),
// in (deadline, partial id) order so the outcome does not depend on the
// heap's history.
func (p *Pattern) fire(before int64, all bool) {
	for len(p.dl) > 0 && (all || p.dl[0].at < before) {
		e := p.dl.pop()
		if e.p.gen != e.gen {
			continue // stale: the partial moved on or is gone
		}
		q := e.p
		if p.steps[q.step].Not && q.step == len(p.steps)-1 {
			p.complete(e.k, q, q.dead, nil)
		} else {
			p.remove(e.k, q)
		}
		p.forgetIfEmpty(e.k)
	}
}

func (p *Pattern) process(key string, ev *event.Event, t int64) {
	k := p.keys[key]
	var idx uint32
	if k != nil {
		idx = k.nextIdx
		k.nextIdx++
		p.touch(k)
		if p.offer(k, ev, t, idx) {
			p.forgetIfEmpty(k)
			return // the event completed a match: it starts nothing else
		}
	}
	p.start(key, k, ev, t, idx)
	if k != nil {
		p.forgetIfEmpty(k)
	}
}

// offer shows ev to k's partial matches. Every partial is evaluated first;
// if any completes, the oldest of those wins and ev does nothing else (it
// advances and kills no other partial). Otherwise kills and advances apply.
// It reports whether a match completed.
func (p *Pattern) offer(k *pkey, ev *event.Event, t int64, idx uint32) bool {
	p.acts = p.acts[:0]
	win := -1
	for i, q := range k.parts {
		a := p.judge(q, ev, t)
		p.acts = append(p.acts, a)
		if a == actComplete && win < 0 {
			win = i
		}
	}
	if win >= 0 {
		q := k.parts[win]
		p.consume(q, ev, t, idx)
		p.complete(k, q, t, ev)
		return true
	}
	n := 0
	for i, q := range k.parts {
		switch p.acts[i] {
		case actKill:
			p.drop(q)
			continue
		case actAdvance:
			p.consume(q, ev, t, idx)
			p.schedule(k, q)
		}
		k.parts[n] = q
		n++
	}
	clear(k.parts[n:])
	k.parts = k.parts[:n]
	return false
}

// judge decides what ev does to q without changing it.
func (p *Pattern) judge(q *partial, ev *event.Event, t int64) action {
	s := &p.steps[q.step]
	if s.Not {
		if (s.Within == 0 || t <= q.prev+int64(s.Within)) && p.eval(s, ev, q.bound) {
			return actKill
		}
		if q.step == len(p.steps)-1 {
			return actNone
		}
		s = &p.steps[q.step+1]
	}
	if q.hasDead && t > q.dead {
		return actNone // expired; fire removes it
	}
	if !p.eval(s, ev, q.bound) {
		return actNone
	}
	if q.count+1 == s.Times && q.pos(p.steps) == len(p.steps)-1 {
		return actComplete
	}
	return actAdvance
}

// pos is the positive step q awaits: the step after a middle not step.
func (q *partial) pos(steps []Step) int {
	if steps[q.step].Not {
		return q.step + 1
	}
	return q.step
}

func (p *Pattern) eval(s *Step, ev *event.Event, bound []*event.Event) bool {
	if s.Where == nil {
		return true
	}
	ok, err := s.Where(ev, bound)
	if err != nil {
		p.stats.Errors++
		return false
	}
	return ok
}
