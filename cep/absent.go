package cep

import (
	"container/heap"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// AbsentSpec configures an Absent.
type AbsentSpec struct {
	After   time.Duration // silence that fires
	MaxKeys int           // default DefaultMaxKeys
	// NoEvent: nothing reads a result's Event (the rule's message does
	// not see the event's fields), so keys do not keep their last event,
	// most of a key's memory and checkpoint bytes.
	NoEvent bool
}

// Absent fires once when a key seen before sends nothing for After, and
// resolves when it sends again. Every key ever seen stays known (up to
// MaxKeys, least recently seen evicted) so that it can resolve later.
type Absent struct {
	after   int64
	maxKeys int
	noEvent bool

	keys      map[string]*akey
	lru       akey // sentinel: lru.next is the least recently seen key
	dl        adlHeap
	buf       queue
	closed    int64
	hasClosed bool
	stats     event.OpStats
	waiting   int // keys that have not fired: their silence is pending
	out       []event.Result
	snapLen   int // the last snapshot's length: the next one's capacity
}

type akey struct {
	key      string
	last     int64 // greatest event time seen (ns)
	ev       *event.Event
	fired    bool
	queued   bool // an entry for this key is in the heap
	prev, nx *akey
}

// NewAbsent validates s and returns an operator.
func NewAbsent(s AbsentSpec) (*Absent, error) {
	if s.After <= 0 {
		return nil, errors.New("absent: the duration must be positive")
	}
	a := &Absent{after: int64(s.After), maxKeys: s.MaxKeys, noEvent: s.NoEvent, keys: map[string]*akey{}}
	if a.maxKeys <= 0 {
		a.maxKeys = DefaultMaxKeys
	}
	a.lru.prev, a.lru.nx = &a.lru, &a.lru
	return a, nil
}

// Add buffers ev until the closing time reaches it; an event older than the
// last closing time is late.
func (a *Absent) Add(key string, ev *event.Event) []event.Result {
	if a.hasClosed && ns(ev.Time) < a.closed {
		a.stats.Late++
		return nil
	}
	a.buf.push(key, ev)
	if !a.hasClosed {
		return nil
	}
	return a.Advance(fromNs(a.closed))
}

// Advance processes buffered events up to closeAt and fires the silences
// that closeAt has passed (closeAt > last seen + After), in event-time
// order. O(1) when nothing is due.
func (a *Absent) Advance(closeAt time.Time) []event.Result {
	c := ns(closeAt)
	if a.hasClosed && c < a.closed {
		c = a.closed
	}
	a.closed, a.hasClosed = c, true
	a.out = nil
	a.buf.ready(c, a.step)
	a.fire(c, false)
	return a.out
}

// Flush processes what is buffered and fires every pending silence: at the
// end of replay input every known key that has not fired yet fires.
func (a *Absent) Flush() []event.Result {
	a.out = nil
	a.buf.all(a.step)
	a.fire(0, true)
	return a.out
}

func (a *Absent) step(key string, ev *event.Event) {
	t := ns(ev.Time)
	a.fire(t, false)
	k := a.keys[key]
	isNew := k == nil
	if isNew {
		k = &akey{key: key}
		a.keys[key] = k
		a.link(k)
		a.waiting++
		a.evict()
	} else {
		a.unlink(k)
		a.link(k)
	}
	if k.fired {
		k.fired = false
		a.waiting++
		a.out = append(a.out, event.Result{Key: key, State: event.Resolved, Time: ev.Time,
			Values: map[string]any{"last_seen": fromNs(k.last), "silent_for": time.Duration(t - k.last).Seconds()}, Event: ev})
	}
	if t >= k.last || isNew {
		k.last = t
		if !a.noEvent {
			k.ev = ev
		}
	}
	if !k.queued {
		k.queued = true
		heap.Push(&a.dl, adlEntry{at: k.last + a.after, k: k})
	}
}

// fire pops deadlines before `before`. The heap holds at most one entry per
// key; an entry whose key was seen since is pushed back with the key's
// current deadline instead of being updated on every event.
func (a *Absent) fire(before int64, all bool) {
	for len(a.dl) > 0 && (all || a.dl[0].at < before) {
		e := heap.Pop(&a.dl).(adlEntry)
		k := e.k
		k.queued = false
		if k.prev == nil || k.fired {
			continue // evicted, or already fired
		}
		if due := k.last + a.after; due != e.at {
			k.queued = true
			heap.Push(&a.dl, adlEntry{at: due, k: k})
			continue
		}
		k.fired = true
		a.waiting--
		a.out = append(a.out, event.Result{Key: k.key, State: event.Firing, Time: fromNs(e.at),
			Values: map[string]any{"last_seen": fromNs(k.last), "silent_for": time.Duration(a.after).Seconds()}, Event: k.ev})
	}
}

func (a *Absent) evict() {
	for len(a.keys) > a.maxKeys {
		old := a.lru.nx
		a.unlink(old)
		delete(a.keys, old.key)
		if !old.fired {
			a.waiting--
		}
		a.stats.Evicted++
	}
}

func (a *Absent) link(k *akey) {
	k.prev, k.nx = a.lru.prev, &a.lru
	a.lru.prev.nx = k
	a.lru.prev = k
}

func (a *Absent) unlink(k *akey) {
	k.prev.nx, k.nx.prev = k.nx, k.prev
	k.prev, k.nx = nil, nil
}

// Stats reports the counters; Pending counts keys waiting for their
// silence deadline plus buffered events.
func (a *Absent) Stats() event.OpStats {
	s := a.stats
	s.Keys = len(a.keys)
	s.Pending = a.waiting + a.buf.len()
	return s
}

// Snapshot writes the buffered events and every key, least recently seen
// first.
func (a *Absent) Snapshot() ([]byte, error) {
	e := event.Enc{B: make([]byte, 0, a.snapLen+a.snapLen/8)}
	e.Byte(absentVersion)
	e.Bool(a.hasClosed)
	e.Varint(a.closed)
	e.Uvarint(a.stats.Late)
	e.Uvarint(a.stats.Evicted)
	e.Uvarint(a.stats.Errors)
	a.buf.encode(&e)
	e.Uvarint(uint64(len(a.keys)))
	for k := a.lru.nx; k != &a.lru; k = k.nx {
		e.String(k.key)
		e.Varint(k.last)
		e.Bool(k.fired)
		e.Event(k.ev)
	}
	a.snapLen = len(e.B)
	return e.B, nil
}

// Restore replaces the state with what Snapshot wrote.
func (a *Absent) Restore(b []byte) error {
	fresh, _ := NewAbsent(AbsentSpec{After: time.Duration(a.after), MaxKeys: a.maxKeys, NoEvent: a.noEvent})
	d := &event.Dec{B: b}
	if v := d.Byte(); d.Err == nil && v != absentVersion {
		return fmt.Errorf("restore absent: unknown version %d", v)
	}
	fresh.hasClosed = d.Bool()
	fresh.closed = d.Varint()
	fresh.stats.Late = d.Uvarint()
	fresh.stats.Evicted = d.Uvarint()
	fresh.stats.Errors = d.Uvarint()
	fresh.buf.decode(d)
	n := d.Len()
	for i := 0; i < n && d.Err == nil; i++ {
		k := &akey{key: d.String(), last: d.Varint(), fired: d.Bool(), ev: d.Event()}
		if _, dup := fresh.keys[k.key]; dup || (d.Err == nil && k.ev == nil && !a.noEvent) {
			return fmt.Errorf("restore absent: %w", event.ErrCorrupt)
		}
		if a.noEvent {
			k.ev = nil // a snapshot of a version that kept it
		}
		fresh.keys[k.key] = k
		fresh.link(k)
		if !k.fired {
			fresh.waiting++
			k.queued = true
			fresh.dl = append(fresh.dl, adlEntry{at: k.last + fresh.after, k: k})
		}
	}
	if d.Err == nil && len(d.B) != 0 {
		d.Err = event.ErrCorrupt
	}
	if d.Err != nil {
		return fmt.Errorf("restore absent: %w", d.Err)
	}
	heap.Init(&fresh.dl)
	*a = *fresh
	if fresh.lru.nx == &fresh.lru {
		a.lru.prev, a.lru.nx = &a.lru, &a.lru
	} else {
		a.lru.prev.nx, a.lru.nx.prev = &a.lru, &a.lru
	}
	return nil
}

type adlEntry struct {
	at int64
	k  *akey
}

// adlHeap orders by deadline, then key, so the order of simultaneous
// firings does not depend on the heap's history.
type adlHeap []adlEntry

func (h adlHeap) Len() int { return len(h) }
func (h adlHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].k.key < h[j].k.key
}
func (h adlHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *adlHeap) Push(x any)   { *h = append(*h, x.(adlEntry)) }
func (h *adlHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = adlEntry{}
	*h = old[:n-1]
	return e
}
