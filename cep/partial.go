package cep

import (
	"github.com/vigil-gw/vigil/event"
)

// consume records that ev (the key's idx-th event) matched the positive
// step q awaits, and moves q on when that step has all its events.
func (p *Pattern) consume(q *partial, ev *event.Event, t int64, idx uint32) {
	ps := q.pos(p.steps)
	q.bound[ps] = ev
	q.idx = append(q.idx, idx)
	q.count++
	if q.count == 1 {
		q.first = t
	}
	if q.count == p.steps[ps].Times {
		q.count = 0
		q.prev = t
		q.step = ps + 1
	}
	p.gen++
	q.gen = p.gen
}

// schedule computes q's deadline, if its next step has one, and puts it in
// the heap. Older heap entries for q are recognised as stale by their gen.
func (p *Pattern) schedule(k *pkey, q *partial) {
	q.hasDead = false
	if q.step >= len(p.steps) {
		return
	}
	if s := p.steps[q.step]; s.Not && q.step == len(p.steps)-1 {
		q.dead, q.hasDead = q.prev+int64(s.Within), true
	} else if s = p.steps[q.pos(p.steps)]; s.Within > 0 {
		switch {
		case s.Times > 1 && q.count > 0:
			q.dead, q.hasDead = q.first+int64(s.Within), true
		case s.Times == 1:
			q.dead, q.hasDead = q.prev+int64(s.Within), true
		}
	}
	if !q.hasDead {
		return
	}
	p.dl.push(dlEntry{at: q.dead, id: q.id, gen: q.gen, k: k, p: q})
	if len(p.dl) > 4*p.partials+64 {
		p.compact()
	}
}

// compact drops stale heap entries so that lazy deletion cannot grow the
// heap without bound.
func (p *Pattern) compact() {
	n := 0
	for _, e := range p.dl {
		if e.gen == e.p.gen {
			p.dl[n] = e
			n++
		}
	}
	clear(p.dl[n:])
	p.dl = p.dl[:n]
	for i := n/2 - 1; i >= 0; i-- {
		p.dl.down(i)
	}
}

// start lets ev begin a new partial match at step 0.
func (p *Pattern) start(key string, k *pkey, ev *event.Event, t int64, idx uint32) {
	if !p.eval(&p.steps[0], ev, p.noBound) {
		return
	}
	q := p.newPartial()
	p.consume(q, ev, t, idx)
	if q.step == len(p.steps) {
		// A one-step pattern: complete at once, nothing to store.
		p.emit(key, q, t, ev)
		p.drop(q)
		return
	}
	if k == nil {
		k = p.addKey(key, idx+1)
	}
	if len(k.parts) >= p.maxPartials {
		p.drop(k.parts[0])
		k.parts = append(k.parts[:0], k.parts[1:]...)
		p.stats.Evicted++
	}
	k.parts = append(k.parts, q)
	p.schedule(k, q)
}

func (p *Pattern) newPartial() *partial {
	var q *partial
	if n := len(p.free); n > 0 {
		q = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		q = &partial{bound: make([]*event.Event, len(p.steps)), idx: make([]uint32, 0, min(p.perMatch, 8))}
	}
	p.nextID++
	q.id = p.nextID
	p.partials++
	return q
}

// drop forgets q; its heap entries become stale.
func (p *Pattern) drop(q *partial) {
	p.gen++
	q.gen = p.gen
	q.step, q.count, q.hasDead = 0, 0, false
	clear(q.bound)
	q.idx = q.idx[:0]
	p.partials--
	if len(p.free) < 1024 {
		p.free = append(p.free, q)
	}
}

// remove takes q out of k and forgets it.
func (p *Pattern) remove(k *pkey, q *partial) {
	for i, r := range k.parts {
		if r == q {
			copy(k.parts[i:], k.parts[i+1:])
			k.parts[len(k.parts)-1] = nil
			k.parts = k.parts[:len(k.parts)-1]
			break
		}
	}
	p.drop(q)
}

// complete emits q's match at time t and drops q and every other partial
// of k holding one of its events: a match's events start no other match.
func (p *Pattern) complete(k *pkey, q *partial, t int64, ev *event.Event) {
	p.emit(k.key, q, t, ev)
	n := 0
	for _, r := range k.parts {
		if r == q || overlap(r.idx, q.idx) {
			if r != q {
				p.drop(r)
			}
			continue
		}
		k.parts[n] = r
		n++
	}
	clear(k.parts[n:])
	k.parts = k.parts[:n]
	p.drop(q)
}

// overlap reports whether two ascending index lists share an element.
func overlap(a, b []uint32) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			return true
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return false
}

// emit appends the Result of q's match. ev is the completing event, nil
// when a trailing not step's deadline completed the match; then the last
// matched event stands in.
func (p *Pattern) emit(key string, q *partial, t int64, ev *event.Event) {
	vals := make(map[string]any, len(p.steps))
	for i, s := range p.steps {
		b := q.bound[i]
		if s.Not || b == nil {
			continue
		}
		if s.Alias != "" {
			vals[s.Alias] = b.Fields
			if s.Times > 1 {
				vals[s.Alias+"_count"] = s.Times
			}
		}
	}
	if ev == nil {
		for i := len(p.steps) - 1; i >= 0 && ev == nil; i-- {
			ev = q.bound[i]
		}
	}
	p.out = append(p.out, event.Result{Key: key, State: event.Firing, Time: fromNs(t), Values: vals, Event: ev})
}

// addKey starts tracking key, evicting the least recently seen key when
// the cap is reached.
func (p *Pattern) addKey(key string, nextIdx uint32) *pkey {
	k := &pkey{key: key, nextIdx: nextIdx}
	p.keys[key] = k
	p.link(k)
	if len(p.keys) > p.maxKeys {
		old := p.lru.next
		for _, q := range old.parts {
			p.drop(q)
		}
		old.parts = nil
		p.unlink(old)
		delete(p.keys, old.key)
		p.stats.Evicted++
	}
	return k
}

// forgetIfEmpty drops a key with no partial matches: it holds no state
// worth its memory.
func (p *Pattern) forgetIfEmpty(k *pkey) {
	if len(k.parts) > 0 || k.prev == nil {
		return
	}
	p.unlink(k)
	delete(p.keys, k.key)
}

func (p *Pattern) link(k *pkey) {
	k.prev, k.next = p.lru.prev, &p.lru
	p.lru.prev.next = k
	p.lru.prev = k
}

func (p *Pattern) unlink(k *pkey) {
	k.prev.next, k.next.prev = k.next, k.prev
	k.prev, k.next = nil, nil
}

// touch marks k as the most recently seen key.
func (p *Pattern) touch(k *pkey) {
	if p.lru.prev == k {
		return
	}
	p.unlink(k)
	p.link(k)
}

// Stats reports the operator's counters; Pending counts partial matches
// plus buffered events.
func (p *Pattern) Stats() event.OpStats {
	s := p.stats
	s.Keys = len(p.keys)
	s.Pending = p.partials + p.buf.len()
	return s
}

// dlEntry is a deadline in the heap. It is stale when gen no longer equals
// the partial's gen.
type dlEntry struct {
	at  int64
	id  uint64
	gen uint64
	k   *pkey
	p   *partial
}

// dlHeap is a min-heap by (at, id), written out rather than through
// container/heap so that pushing an entry does not allocate.
type dlHeap []dlEntry

func (h dlHeap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].id < h[j].id
}

func (h *dlHeap) push(e dlEntry) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		up := (i - 1) / 2
		if !s.less(i, up) {
			break
		}
		s[i], s[up] = s[up], s[i]
		i = up
	}
}

func (h *dlHeap) pop() dlEntry {
	s := *h
	e := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = dlEntry{}
	*h = s[:n]
	h.down(0)
	return e
}

func (h dlHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
