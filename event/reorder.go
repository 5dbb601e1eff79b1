package event

import (
	"container/heap"
	"time"
)

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

type evHeap []Item

func (h evHeap) Len() int { return len(h) }
func (h evHeap) Less(i, j int) bool {
	a, b := h[i].Ev, h[j].Ev
	if !a.Time.Equal(b.Time) {
		return a.Time.Before(b.Time)
	}
	return a.Seq < b.Seq
}
func (h evHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *evHeap) Push(x any)   { *h = append(*h, x.(Item)) }
func (h *evHeap) Pop() any {
	old := *h
	n := len(old)
	it := old[n-1]
	old[n-1] = Item{}
	*h = old[:n-1]
	return it
}

// Push buffers an event.
func (r *Reorder) Push(key string, ev *Event) { heap.Push(&r.h, Item{key, ev}) }

// Len is the number of buffered events.
func (r *Reorder) Len() int { return len(r.h) }

// Ready pops every buffered event with Time <= closeAt, in order, calling fn
// for each.
func (r *Reorder) Ready(closeAt time.Time, fn func(key string, ev *Event)) {
	for len(r.h) > 0 && !r.h[0].Ev.Time.After(closeAt) {
		it := heap.Pop(&r.h).(Item)
		fn(it.Key, it.Ev)
	}
}

// All pops every buffered event in order (end of input).
func (r *Reorder) All(fn func(key string, ev *Event)) {
	for len(r.h) > 0 {
		it := heap.Pop(&r.h).(Item)
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
	heap.Init(&r.h)
}
