package cep

import (
	"fmt"

	"github.com/vigil-gw/vigil/event"
)

const (
	patternVersion = 1
	absentVersion  = 1
)

// Snapshot writes the whole state: buffered events, every key's partial
// matches (oldest key first, so Restore rebuilds the LRU order) and the
// counters. Deadlines are not written; Restore recomputes them.
func (p *Pattern) Snapshot() ([]byte, error) {
	e := event.Enc{B: make([]byte, 0, p.snapLen+p.snapLen/8)}
	e.Byte(patternVersion)
	e.Uvarint(uint64(len(p.steps)))
	e.Bool(p.hasClosed)
	e.Varint(p.closed)
	e.Uvarint(p.nextID)
	e.Uvarint(p.stats.Late)
	e.Uvarint(p.stats.Evicted)
	e.Uvarint(p.stats.Errors)
	p.buf.encode(&e)
	e.Uvarint(uint64(len(p.keys)))
	for k := p.lru.next; k != &p.lru; k = k.next {
		e.String(k.key)
		e.Uvarint(uint64(k.nextIdx))
		e.Uvarint(uint64(len(k.parts)))
		for _, q := range k.parts {
			e.Uvarint(q.id)
			e.Uvarint(uint64(q.step))
			e.Uvarint(uint64(q.count))
			e.Varint(q.prev)
			e.Varint(q.first)
			for _, b := range q.bound {
				e.Event(b)
			}
			e.Uvarint(uint64(len(q.idx)))
			for _, i := range q.idx {
				e.Uvarint(uint64(i))
			}
		}
	}
	p.snapLen = len(e.B)
	return e.B, nil
}

// Restore replaces the state with a snapshot written by an operator built
// from the same spec.
func (p *Pattern) Restore(b []byte) error {
	fresh, _ := NewPattern(PatternSpec{Steps: p.steps, MaxKeys: p.maxKeys, MaxPartials: p.maxPartials})
	d := &event.Dec{B: b}
	if v := d.Byte(); d.Err == nil && v != patternVersion {
		return fmt.Errorf("restore pattern: unknown version %d", v)
	}
	if n := d.Uvarint(); d.Err == nil && n != uint64(len(p.steps)) {
		return fmt.Errorf("restore pattern: snapshot has %d steps, rule has %d", n, len(p.steps))
	}
	fresh.hasClosed = d.Bool()
	fresh.closed = d.Varint()
	fresh.nextID = d.Uvarint()
	fresh.stats.Late = d.Uvarint()
	fresh.stats.Evicted = d.Uvarint()
	fresh.stats.Errors = d.Uvarint()
	fresh.buf.decode(d)
	nextID := fresh.nextID
	nk := d.Len()
	for i := 0; i < nk && d.Err == nil; i++ {
		k := &pkey{key: d.String(), nextIdx: uint32(d.Uvarint())}
		np := d.Len()
		for j := 0; j < np && d.Err == nil; j++ {
			q := fresh.newPartial()
			q.id = d.Uvarint()
			q.step = int(d.Uvarint())
			q.count = int(d.Uvarint())
			q.prev = d.Varint()
			q.first = d.Varint()
			for s := range q.bound {
				q.bound[s] = d.Event()
			}
			ni := d.Len()
			for n := 0; n < ni && d.Err == nil; n++ {
				q.idx = append(q.idx, uint32(d.Uvarint()))
			}
			if d.Err == nil && !fresh.valid(q) {
				return fmt.Errorf("restore pattern: %w", event.ErrCorrupt)
			}
			k.parts = append(k.parts, q)
		}
		if _, dup := fresh.keys[k.key]; dup || len(k.parts) == 0 {
			return fmt.Errorf("restore pattern: %w", event.ErrCorrupt)
		}
		fresh.keys[k.key] = k
		fresh.link(k)
	}
	if d.Err == nil && len(d.B) != 0 {
		d.Err = event.ErrCorrupt
	}
	if d.Err != nil {
		return fmt.Errorf("restore pattern: %w", d.Err)
	}
	fresh.nextID = nextID
	for k := fresh.lru.next; k != &fresh.lru; k = k.next {
		for _, q := range k.parts {
			fresh.gen++
			q.gen = fresh.gen
			fresh.schedule(k, q)
		}
	}
	*p = *fresh
	if fresh.lru.next == &fresh.lru {
		p.lru.prev, p.lru.next = &p.lru, &p.lru
	} else {
		p.lru.prev.next, p.lru.next.prev = &p.lru, &p.lru
	}
	return nil
}

// valid checks a decoded partial against the spec, so a corrupt snapshot
// cannot index out of range later.
func (p *Pattern) valid(q *partial) bool {
	if q.step >= len(p.steps) || (q.step == 0 && q.count == 0) || len(q.idx) == 0 || len(q.idx) > p.perMatch {
		return false
	}
	if p.steps[q.step].Not && q.step == len(p.steps)-1 {
		return q.count == 0
	}
	return q.count < p.steps[q.pos(p.steps)].Times
}
