package cep

import "github.com/vigil-gw/vigil/event"

// queue is an event.Reorder with a one-event fast path. With lateness 0
// every event is released by the Advance that follows its Add, and a
// round trip through the heap (which allocates per push) would be a large
// share of the operator's cost.
type queue struct {
	one event.Item
	has bool
	buf event.Reorder
}

func (q *queue) push(key string, ev *event.Event) {
	if !q.has && q.buf.Len() == 0 {
		q.one, q.has = event.Item{Key: key, Ev: ev}, true
		return
	}
	if q.has {
		q.buf.Push(q.one.Key, q.one.Ev)
		q.one, q.has = event.Item{}, false
	}
	q.buf.Push(key, ev)
}

// ready releases, in (Time, Seq) order, the events with Time <= closeAt.
func (q *queue) ready(closeAt int64, fn func(string, *event.Event)) {
	if q.has {
		if ns(q.one.Ev.Time) <= closeAt {
			it := q.one
			q.one, q.has = event.Item{}, false
			fn(it.Key, it.Ev)
		}
		return
	}
	if q.buf.Len() > 0 {
		q.buf.Ready(fromNs(closeAt), fn)
	}
}

func (q *queue) all(fn func(string, *event.Event)) {
	if q.has {
		it := q.one
		q.one, q.has = event.Item{}, false
		fn(it.Key, it.Ev)
		return
	}
	q.buf.All(fn)
}

func (q *queue) len() int {
	if q.has {
		return 1
	}
	return q.buf.Len()
}

// encode writes the format of event.Reorder.Encode, so decode can use
// Reorder.Decode.
func (q *queue) encode(e *event.Enc) {
	if !q.has {
		q.buf.Encode(e)
		return
	}
	e.Uvarint(1)
	e.String(q.one.Key)
	e.Event(q.one.Ev)
}

func (q *queue) decode(d *event.Dec) {
	q.one, q.has = event.Item{}, false
	q.buf.Decode(d)
}
