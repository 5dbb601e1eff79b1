package event

import "time"

// Reorder buffers events that arrive out of order and releases them in
// event-time order (ties by Seq) once the closing time has reached them.
// Order-sensitive operators (sliding and count windows, detectors, patterns)
// use it so that out-of-order data within the allowed lateness gives the same
// answer as in-order data. It is not safe for concurrent use.
type Reorder struct {
	h evHeap
}

// Item is a buffered event with the key it belongs to.
type Item struct {
	Key string
	Ev  *Event
}

// evHeap is a binary min-heap by (Time, Seq). It is written out rather
// than driven through container/heap, whose interface boxes every Item:
// an allocation per event per order-sensitive operator.
type evHeap []Item

func less(a, b *Event) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.Before(b.Time)
	}
	return a.Seq < b.Seq
}

func (h evHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !less(h[j].Ev, h[i].Ev) {
			break
		}
		h[i], h[j] = h[j], h[i]
		j = i
	}
}

func (h evHeap) down(i int) {
	n := len(h)
	for {
		j := 2*i + 1
		if j >= n {
			return
		}
		if r := j + 1; r < n && less(h[r].Ev, h[j].Ev) {
			j = r
		}
		if !less(h[j].Ev, h[i].Ev) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

func (r *Reorder) pop() Item {
	h := r.h
	it := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = Item{}
	r.h = h[:n]
	r.h.down(0)
	return it
}

// Push buffers an event.
func (r *Reorder) Push(key string, ev *Event) {
	r.h = append(r.h, Item{key, ev})
	r.h.up(len(r.h) - 1)
}

// Len is the number of buffered events.
func (r *Reorder) Len() int { return len(r.h) }

// Ready pops every buffered event with Time <= closeAt, in order, calling fn
// for each.
func (r *Reorder) Ready(closeAt time.Time, fn func(key string, ev *Event)) {
	for len(r.h) > 0 && !r.h[0].Ev.Time.After(closeAt) {
		it := r.pop()
		fn(it.Key, it.Ev)
	}
}

// All pops every buffered event in order (end of input).
func (r *Reorder) All(fn func(key string, ev *Event)) {
	for len(r.h) > 0 {
		it := r.pop()
		fn(it.Key, it.Ev)
	}
}

// Items returns the buffered events in no particular order, for snapshots.
func (r *Reorder) Items() []Item { return r.h }

// Encode writes the buffer.
func (r *Reorder) Encode(e *Enc) {
	e.Uvarint(uint64(len(r.h)))
	for _, it := range r.h {
		e.String(it.Key)
		e.Event(it.Ev)
	}
}

// Decode replaces the buffer with what Encode wrote.
func (r *Reorder) Decode(d *Dec) {
	n := d.Len()
	r.h = r.h[:0]
	for i := 0; i < n && d.Err == nil; i++ {
		k := d.String()
		ev := d.Event()
		if ev == nil {
			d.fail()
			return
		}
		r.h = append(r.h, Item{k, ev})
	}
	for i := len(r.h)/2 - 1; i >= 0; i-- {
		r.h.down(i)
	}
}
