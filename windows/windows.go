// Package windows owns the windowed aggregations of vigil's rules: sliding,
// tumbling, hopping, session and count windows, their aggregates (count, sum,
// avg, min, max, stddev, first, last, slope, percentile, count_distinct), the
// alert lifecycle of sliding windows, the per-rule key cap and the
// checkpoint encoding of all of it.
//
// An Op is a pure operator in event time: the engine hands it events and
// the closing time (watermark minus lateness) as arguments; it never reads
// a clock and owns no goroutines. It imports only the event package and the
// standard library; it must not import rules, cep, detect or engine.
package windows

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// Kind is a window type.
type Kind string

const (
	Sliding  Kind = "sliding"
	Tumbling Kind = "tumbling"
	Hopping  Kind = "hopping"
	Session  Kind = "session"
	Count    Kind = "count"
)

// DefaultMaxKeys is the key cap when Spec.MaxKeys is 0.
const DefaultMaxKeys = 10000

// maxHops caps the windows one hopping event falls into (size/every): each
// is a full set of aggregates.
const maxHops = 1000

// Agg is one aggregate of a rule's `aggregate:` map.
type Agg struct {
	Name string // result name, e.g. "total"
	Func string // count, sum, avg, min, max, stddev, first, last, slope, percentile, count_distinct
	// Arg yields the argument's value for an event; ok=false, nil, or (for
	// numeric functions) a value that is not a finite number leaves the
	// event out of this aggregate. nil for count(), which counts events.
	Arg func(ev *event.Event) (any, bool)
	P   float64 // percentile, 0..100
}

// Spec defines a window operator.
type Spec struct {
	Kind  Kind
	Size  time.Duration // sliding, tumbling, hopping size; session gap
	Every time.Duration // hopping step
	N     int           // count window size
	Aggs  []Agg
	// When decides whether a window's result fires; nil fires every result.
	// An error counts in Stats().Errors and reads as false. values is only
	// valid during the call: When must not keep it.
	When    func(values map[string]any, last *event.Event) (bool, error)
	MaxKeys int // per-rule key cap; 0 means DefaultMaxKeys
	// NoEvent: nothing reads a window's last event (neither When nor the
	// rule's message sees the event's fields), so windows do not keep one:
	// results carry no Event and When gets nil. That event is most of a
	// small window's memory and of its checkpoint bytes.
	NoEvent bool
}

// agg is an Agg with its function resolved.
type agg struct {
	Agg
	f fn
}

// Op is a window operator for one rule. It is not safe for concurrent use.
type Op struct {
	spec    Spec
	size    int64 // ns
	every   int64
	aggs    []agg
	maxKeys int

	keys map[string]*keyState
	lru  keyState // sentinel: lru.next is the most recently seen key
	due  dueHeap
	ro   event.Reorder // sliding and count: events waiting for closeAt

	closeAt  int64
	closeSet bool
	late     uint64
	evicted  uint64
	errs     uint64
	open     int // open windows (tumbling, hopping, session, count)
	held     int // events held by sliding windows

	// scratch for extraction and sliding evaluation, reused
	num     []float64
	anyv    []any
	scratch map[string]any

	// snapLen is the last snapshot's length: the next one starts at that
	// capacity instead of growing to it by copies (megabytes with many keys,
	// on the engine loop, every checkpoint).
	snapLen int
}

// keyState is one key's state; which fields are used depends on the kind.
type keyState struct {
	key        string
	prev, next *keyState

	sl       *slideKey
	firing   bool // sliding with when: the lifecycle's state
	expiring bool // sliding: an expiry entry is in the due heap

	wins []*win // tumbling/hopping (by start), session (by first event)

	closedLast int64 // session: last event time of the newest closed session
	hasClosed  bool

	cw *win // count: the window being filled
}

// win is one open window of the append-only kinds.
type win struct {
	ks     *keyState
	start  int64 // tumbling/hopping start; session and count: first event time
	end    int64 // tumbling/hopping end; session, count: last event time
	lastEv *event.Event
	n      int64 // events
	aggs   []bagAgg
	dead   bool // closed, merged away or evicted: its heap entries are stale
}

// New validates s and builds its operator.
func New(s Spec) (*Op, error) {
	var errs []error
	switch s.Kind {
	case Sliding, Tumbling, Session:
		if s.Size <= 0 {
			errs = append(errs, fmt.Errorf("%s: size must be positive, got %v", s.Kind, s.Size))
		}
	case Hopping:
		if s.Size <= 0 {
			errs = append(errs, fmt.Errorf("hopping: size must be positive, got %v", s.Size))
		}
		if s.Every <= 0 {
			errs = append(errs, fmt.Errorf("hopping: every must be positive, got %v", s.Every))
		} else if s.Every > s.Size {
			errs = append(errs, fmt.Errorf("hopping: every (%v) must not exceed the size (%v)", s.Every, s.Size))
		} else if s.Size/s.Every > maxHops {
			// every event updates size/every windows
			errs = append(errs, fmt.Errorf("hopping: size/every must be at most %d, got %v/%v", maxHops, s.Size, s.Every))
		}
	case Count:
		if s.N <= 0 {
			errs = append(errs, fmt.Errorf("count: size must be positive, got %d", s.N))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown window type %q", s.Kind))
	}
	if s.MaxKeys < 0 {
		errs = append(errs, fmt.Errorf("max keys must not be negative, got %d", s.MaxKeys))
	}
	o := &Op{spec: s, size: int64(s.Size), every: int64(s.Every), maxKeys: s.MaxKeys, keys: map[string]*keyState{}}
	if o.maxKeys == 0 {
		o.maxKeys = DefaultMaxKeys
	}
	if s.Kind == Tumbling {
		o.every = o.size
	}
	seen := map[string]bool{}
	for _, a := range s.Aggs {
		f, ok := fnNames[a.Func]
		switch {
		case a.Name == "":
			errs = append(errs, errors.New("aggregate without a name"))
		case seen[a.Name]:
			errs = append(errs, fmt.Errorf("aggregate %q defined twice", a.Name))
		case !ok:
			errs = append(errs, fmt.Errorf("aggregate %q: unknown function %q", a.Name, a.Func))
		case f != fnCount && a.Arg == nil:
			errs = append(errs, fmt.Errorf("aggregate %q: %s needs an argument", a.Name, a.Func))
		case f == fnPercentile && (a.P < 0 || a.P > 100 || math.IsNaN(a.P)):
			errs = append(errs, fmt.Errorf("aggregate %q: percentile must be within 0..100, got %v", a.Name, a.P))
		}
		seen[a.Name] = true
		o.aggs = append(o.aggs, agg{Agg: a, f: f})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	o.lru.next, o.lru.prev = &o.lru, &o.lru
	o.num = make([]float64, len(o.aggs))
	o.anyv = make([]any, len(o.aggs))
	return o, nil
}

// Stats reports the operator's counters. Pending counts open windows plus
// events buffered for the watermark plus events held by sliding windows.
func (o *Op) Stats() event.OpStats {
	return event.OpStats{
		Keys: len(o.keys), Late: o.late, Evicted: o.evicted, Errors: o.errs,
		Pending: o.open + o.held + o.ro.Len(),
	}
}

// Add takes one event of key. Sliding and count windows buffer it until
// closeAt reaches its time; the other kinds place it at once.
func (o *Op) Add(key string, ev *event.Event) []event.Result {
	t := ev.Time.UnixNano()
	switch o.spec.Kind {
	case Sliding, Count:
		if o.closeSet && t < o.closeAt {
			o.late++
			return nil
		}
		o.ro.Push(key, ev)
		if !o.closeSet || t > o.closeAt {
			return nil
		}
		var out []event.Result
		o.ro.Ready(time.Unix(0, o.closeAt), func(k string, e *event.Event) { out = o.process(k, e, out) })
		return out
	case Session:
		o.addSession(key, ev, t)
	default:
		o.addFixed(key, ev, t)
	}
	return nil
}

// Advance emits everything due once no event before closeAt can arrive:
// tumbling and hopping windows with end <= closeAt, sessions with
// last+gap < closeAt, buffered events up to closeAt. When nothing is due it
// costs two heap peeks.
func (o *Op) Advance(closeAt time.Time) []event.Result {
	c := closeAt.UnixNano()
	if o.closeSet && c < o.closeAt {
		c = o.closeAt // closeAt never goes back
	}
	o.closeAt, o.closeSet = c, true
	var out []event.Result
	if o.ro.Len() > 0 {
		o.ro.Ready(time.Unix(0, c), func(k string, e *event.Event) { out = o.process(k, e, out) })
	}
	for len(o.due) > 0 && o.due[0].due <= c {
		out = o.pop(c, out)
	}
	return out
}

// Flush closes everything still open, in order of end time then key: the
// end of a replay's input. Sliding windows process their buffered events and
// keep their state; count windows emit their partial windows.
func (o *Op) Flush() []event.Result {
	var out []event.Result
	o.ro.All(func(k string, e *event.Event) { out = o.process(k, e, out) })
	for len(o.due) > 0 {
		out = o.pop(math.MaxInt64, out)
	}
	if o.spec.Kind == Count {
		out = o.flushCount(out)
	}
	return out
}

// process evaluates one in-order event of a sliding or count window.
func (o *Op) process(key string, ev *event.Event, out []event.Result) []event.Result {
	if o.spec.Kind == Count {
		return o.processCount(key, ev, out)
	}
	return o.processSliding(key, ev, out)
}

// extract evaluates every aggregate's argument for ev into o.num / o.anyv.
func (o *Op) extract(ev *event.Event) {
	for j := range o.aggs {
		a := &o.aggs[j]
		o.num[j], o.anyv[j] = math.NaN(), nil
		if a.Arg == nil {
			if a.f == fnCount {
				o.anyv[j] = true
			}
			continue
		}
		v, ok := a.Arg(ev)
		if !ok || v == nil {
			continue
		}
		switch {
		case a.f.numeric():
			if f, ok := toFloat(v); ok {
				o.num[j] = f
			}
		case a.f == fnCountDistinct:
			o.anyv[j] = distinctKey(v)
		default:
			o.anyv[j] = v
		}
	}
}

// holds evaluates when; errors count and read as false.
func (o *Op) holds(values map[string]any, last *event.Event) bool {
	if o.spec.When == nil {
		return true
	}
	ok, err := o.spec.When(values, last)
	if err != nil {
		o.errs++
		return false
	}
	return ok
}

func ts(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// --- keys and the least-recently-seen cap ---

// touch returns key's state, creating it (and evicting the least recently
// seen key beyond the cap) if needed, and marks it most recently seen.
func (o *Op) touch(key string) (ks *keyState, created bool) {
	ks = o.keys[key]
	if ks != nil {
		ks.prev.next, ks.next.prev = ks.next, ks.prev
	} else {
		if len(o.keys) >= o.maxKeys {
			o.evict(o.lru.prev)
		}
		ks = &keyState{key: key}
		o.keys[key] = ks
		created = true
	}
	ks.next, ks.prev = o.lru.next, &o.lru
	o.lru.next.prev = ks
	o.lru.next = ks
	return ks, created
}

func (o *Op) evict(ks *keyState) {
	o.drop(ks)
	o.evicted++
}

// drop forgets a key and its open windows; their heap entries go stale.
func (o *Op) drop(ks *keyState) {
	ks.prev.next, ks.next.prev = ks.next, ks.prev
	ks.prev, ks.next = nil, nil
	delete(o.keys, ks.key)
	for _, w := range ks.wins {
		w.dead = true
		o.open--
	}
	ks.wins = nil
	if ks.cw != nil {
		ks.cw.dead = true
		o.open--
		ks.cw = nil
	}
	if ks.sl != nil {
		o.held -= ks.sl.len()
		ks.sl = nil
	}
}

// --- the due heap: window ends, session gaps, sliding expiry ---

type dueKind uint8

const (
	dueWindow dueKind = iota // tumbling/hopping end, session last+gap+1
	dueForget                // session: forget a key's closed session
	dueExpire                // sliding: every event of the key has left
)

type dueItem struct {
	due  int64 // fires when closeAt >= due
	key  string
	kind dueKind
	w    *win
	ks   *keyState
}

// dueHeap orders by (due, key) so that windows closing together emit in
// key order.
type dueHeap []dueItem

func (h dueHeap) less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	if h[i].key != h[j].key {
		return h[i].key < h[j].key
	}
	return h[i].kind < h[j].kind
}

func (h *dueHeap) push(it dueItem) {
	*h = append(*h, it)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *dueHeap) popMin() dueItem {
	s := *h
	it := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = dueItem{}
	s = s[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && s.less(l, m) {
			m = l
		}
		if l+1 < n && s.less(l+1, m) {
			m = l + 1
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return it
}

// pop handles the earliest due item at closing time c.
func (o *Op) pop(c int64, out []event.Result) []event.Result {
	it := o.due.popMin()
	switch it.kind {
	case dueWindow:
		w := it.w
		if w.dead {
			return out
		}
		if o.spec.Kind == Session {
			if d := w.end + o.size + 1; d > it.due {
				// The session grew since this entry was pushed: queue it
				// again at its real end so that sessions closing together
				// still emit in (end, key) order.
				it.due = d
				o.due.push(it)
				return out
			}
			return o.closeSession(w, out)
		}
		return o.closeFixed(w, out)
	case dueForget:
		ks := it.ks
		if o.keys[ks.key] == ks && len(ks.wins) == 0 && ks.hasClosed && ks.closedLast+2*o.size+1 <= c {
			o.drop(ks)
		}
	case dueExpire:
		ks := it.ks
		if o.keys[ks.key] != ks || ks.sl == nil {
			return out
		}
		ks.expiring = false
		n := ks.sl.len()
		if n == 0 {
			return out
		}
		if d := ks.sl.last() + o.size; d > c {
			ks.expiring = true
			o.due.push(dueItem{due: d, key: ks.key, kind: dueExpire, ks: ks})
			return out
		}
		// Every event has left the window for good: no event at or after
		// closeAt can see them. A firing key keeps its lifecycle state.
		if ks.firing {
			o.held -= n
			ks.sl = nil
		} else {
			o.drop(ks)
		}
	}
	return out
}

// emit evaluates a closed window and appends its result when it fires.
func (o *Op) emit(out []event.Result, ks *keyState, w *win, t int64, win event.Window) []event.Result {
	values := make(map[string]any, len(o.aggs))
	for j := range o.aggs {
		values[o.aggs[j].Name] = w.aggs[j].value(&o.aggs[j], w.n)
	}
	if !o.holds(values, w.lastEv) {
		return out
	}
	return append(out, event.Result{Key: ks.key, State: event.Firing, Time: ts(t), Values: values, Window: &win, Event: w.lastEv})
}

// newWin opens a window of ks.
func (o *Op) newWin(ks *keyState, start, end int64) *win {
	w := &win{ks: ks, start: start, end: end, aggs: make([]bagAgg, len(o.aggs))}
	for j := range w.aggs {
		if o.aggs[j].f == fnSlope {
			w.aggs[j].x = &bagExtra{ref: start}
		}
	}
	o.open++
	return w
}

// put adds the extracted values of ev (time t) to w.
func (o *Op) put(w *win, ev *event.Event, t int64) {
	for j := range o.aggs {
		a := &o.aggs[j]
		if a.f.numeric() {
			if !math.IsNaN(o.num[j]) {
				w.aggs[j].add(a.f, o.num[j], nil, t, ev.Seq)
			}
		} else if o.anyv[j] != nil {
			w.aggs[j].add(a.f, 0, o.anyv[j], t, ev.Seq)
		}
	}
	w.n++
	if o.spec.NoEvent {
		return
	}
	if w.lastEv == nil || t > w.lastEv.Time.UnixNano() || (t == w.lastEv.Time.UnixNano() && ev.Seq > w.lastEv.Seq) {
		w.lastEv = ev
	}
}
