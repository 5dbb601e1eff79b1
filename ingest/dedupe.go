package ingest

import (
	"fmt"
	"math"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// DefaultDedupeMax bounds a Dedupe built with max 0.
const DefaultDedupeMax = 100_000

// Dedupe remembers values (event ids) for a span of event time, so a
// source's `dedupe: {field, within}` can drop an event whose value was seen
// within that span: a QoS 1 redelivery, or a device that resends its
// backlog after a reconnect.
//
// Memory is bounded twice: entries older than `within` before the greatest
// event time seen are pruned, and beyond max entries the oldest recorded
// are evicted and counted. Both work off a queue in recording order, so
// each entry costs O(1) amortised. A Dedupe is not safe for concurrent use.
type Dedupe struct {
	within time.Duration
	max    int
	seen   map[string]int64 // value -> recorded event time, Unix ns
	queue  []entry          // recording order; may hold stale entries
	head   int              // queue[:head] is consumed
	latest int64            // greatest event time seen, Unix ns
	evict  uint64
}

type entry struct {
	value string
	at    int64
}

// NewDedupe returns a set that treats a value as a duplicate when it was
// recorded at an event time within `within` of the new one; max <= 0 means
// DefaultDedupeMax entries.
func NewDedupe(within time.Duration, max int) *Dedupe {
	if max <= 0 {
		max = DefaultDedupeMax
	}
	if within < 0 {
		within = 0
	}
	return &Dedupe{within: within, max: max, seen: make(map[string]int64), latest: math.MinInt64}
}

// Seen reports whether value was recorded at an event time within `within`
// of t and, if it was not, records it at t. A duplicate keeps the original
// time: a value resent every hour for days is not refreshed forever.
//
// The window is [t-within, t+within], not only the past: events can arrive
// out of event-time order, and when a copy with a later time came first
// the earlier one is the same event all the same.
func (d *Dedupe) Seen(value string, t time.Time) bool {
	at := t.UnixNano()
	if at > d.latest {
		d.latest = at
		d.prune()
	}
	if prev, ok := d.seen[value]; ok {
		if diff := at - prev; diff <= int64(d.within) && -diff <= int64(d.within) {
			return true
		}
		if prev > at {
			// A far later copy is already recorded; keep it, since the
			// pruning horizon only moves forward.
			return false
		}
	}
	d.seen[value] = at
	d.queue = append(d.queue, entry{value, at})
	for len(d.seen) > d.max {
		d.popOldest(true)
	}
	d.compact()
	return false
}

// prune drops entries recorded before latest-within from the queue front.
// Entries behind a newer one (out-of-order arrivals) wait for it to go:
// the max bound still holds meanwhile.
func (d *Dedupe) prune() {
	if d.latest < math.MinInt64+int64(d.within) {
		return // nothing seen yet; the subtraction would wrap
	}
	horizon := d.latest - int64(d.within)
	for d.head < len(d.queue) && d.queue[d.head].at < horizon {
		d.popOldest(false)
	}
}

// popOldest consumes the queue's front entry, deleting its value unless the
// value has since been recorded again (then the front entry is stale).
func (d *Dedupe) popOldest(counted bool) {
	for d.head < len(d.queue) {
		e := d.queue[d.head]
		d.queue[d.head] = entry{}
		d.head++
		if at, ok := d.seen[e.value]; ok && at == e.at {
			delete(d.seen, e.value)
			if counted {
				d.evict++
			}
			return
		}
	}
}

// compact reclaims the consumed front of the queue once it is half of it,
// and drops stale entries once they outnumber live ones (possible when
// out-of-order times hold pruning up while values are recorded again).
func (d *Dedupe) compact() {
	if n := len(d.queue) - d.head; n > 2*len(d.seen)+64 {
		kept := d.queue[:0]
		for _, e := range d.queue[d.head:] {
			if at, ok := d.seen[e.value]; ok && at == e.at {
				kept = append(kept, e)
			}
		}
		clear(d.queue[len(kept):])
		d.queue, d.head = kept, 0
		return
	}
	if d.head > 64 && d.head*2 >= len(d.queue) {
		n := copy(d.queue, d.queue[d.head:])
		clear(d.queue[n:])
		d.queue = d.queue[:n]
		d.head = 0
	}
}

// Len returns how many values are remembered.
func (d *Dedupe) Len() int { return len(d.seen) }

// Evicted returns how many values were forgotten early to stay within max.
func (d *Dedupe) Evicted() uint64 { return d.evict }

const dedupeVersion = 1

// Snapshot writes the remembered values, in recording order, and counters.
func (d *Dedupe) Snapshot() []byte {
	e := event.Enc{B: make([]byte, 0, 16+len(d.seen)*24)}
	e.Byte(dedupeVersion)
	e.Varint(d.latest)
	e.Uvarint(d.evict)
	e.Uvarint(uint64(len(d.seen)))
	for _, en := range d.queue[d.head:] {
		if at, ok := d.seen[en.value]; ok && at == en.at {
			e.String(en.value)
			e.Varint(en.at)
		}
	}
	return e.B
}

// Restore replaces the state with a snapshot. The set keeps its own
// within and max, so a changed rule file applies to restored state; if
// max shrank, the oldest values are evicted.
func (d *Dedupe) Restore(b []byte) error {
	dec := event.Dec{B: b}
	if v := dec.Byte(); dec.Err == nil && v != dedupeVersion {
		return fmt.Errorf("restore dedupe: unknown version %d", v)
	}
	latest := dec.Varint()
	evict := dec.Uvarint()
	n := dec.Len()
	seen := make(map[string]int64, n)
	queue := make([]entry, 0, n)
	for i := 0; i < n && dec.Err == nil; i++ {
		v := dec.String()
		at := dec.Varint()
		if _, dup := seen[v]; dup {
			return fmt.Errorf("restore dedupe: %w", event.ErrCorrupt)
		}
		seen[v] = at
		queue = append(queue, entry{v, at})
	}
	if dec.Err == nil && len(dec.B) != 0 {
		dec.Err = event.ErrCorrupt
	}
	if dec.Err != nil {
		return fmt.Errorf("restore dedupe: %w", dec.Err)
	}
	d.seen, d.queue, d.head, d.latest, d.evict = seen, queue, 0, latest, evict
	for len(d.seen) > d.max {
		d.popOldest(true)
	}
	d.prune()
	return nil
}
