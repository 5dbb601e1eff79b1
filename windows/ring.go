package windows

import (
	"math"
	"time"
)

// ring is a FIFO (with pop at the back for the min/max deques) over one
// backing array. Sliding windows used to append at the back and reslice at
// the front: the array kept the dead front until the next append grew it,
// and growing doubled it, so a full window cost about twice its values plus
// the old arrays waiting for the GC. A ring reuses its slots and grows by an
// eighth once it is large.
type ring[T any] struct {
	buf  []T
	head int // index of the oldest element
	n    int
}

func (r *ring[T]) len() int { return r.n }

// grow is the next capacity after n: a window's ring grows until it holds
// the window, then stays, so a small step wastes little (at most an eighth,
// a quarter below 64) for a few more copies while the window first fills.
func grow(n int) int {
	if n < 64 {
		return max(8, n+n/4)
	}
	return n + n/8
}

// at returns the i-th oldest element.
func (r *ring[T]) at(i int) T {
	j := r.head + i
	if j >= len(r.buf) {
		j -= len(r.buf)
	}
	return r.buf[j]
}

func (r *ring[T]) back() T { return r.at(r.n - 1) }

func (r *ring[T]) push(x T) {
	if r.n == len(r.buf) {
		r.resize(grow(r.n))
	}
	j := r.head + r.n
	if j >= len(r.buf) {
		j -= len(r.buf)
	}
	r.buf[j] = x
	r.n++
}

// popFront drops the k oldest elements.
func (r *ring[T]) popFront(k int) {
	for ; k > 0; k-- {
		var zero T
		r.buf[r.head] = zero // let pointers go
		r.head++
		if r.head == len(r.buf) {
			r.head = 0
		}
		r.n--
	}
	switch {
	case r.n == 0:
		r.head = 0
		if len(r.buf) > 64 {
			r.buf = nil // an idle key keeps no large array
		}
	case len(r.buf) > 64 && r.n < len(r.buf)/4:
		r.resize(2 * r.n) // after a burst
	}
}

func (r *ring[T]) popBack() {
	j := r.head + r.n - 1
	if j >= len(r.buf) {
		j -= len(r.buf)
	}
	var zero T
	r.buf[j] = zero
	r.n--
}

func (r *ring[T]) resize(c int) {
	b := make([]T, c)
	for i := 0; i < r.n; i++ {
		b[i] = r.at(i)
	}
	r.buf, r.head = b, 0
}

// times is a ring of event times (ns) that stores 4 bytes a time instead of
// 8 while every time is a whole millisecond at most 2³²-1 ms (49 days)
// after base, which is what sensors send (RFC 3339 with milliseconds, Unix
// ms). The first time that does not fit turns it into a ring of int64s
// until it is empty again.
type times struct {
	base int64
	ms   ring[uint32]
	ns   ring[int64]
	wide bool
}

func (r *times) len() int {
	if r.wide {
		return r.ns.len()
	}
	return r.ms.len()
}

func (r *times) at(i int) int64 {
	if r.wide {
		return r.ns.at(i)
	}
	return r.base + int64(r.ms.at(i))*int64(time.Millisecond)
}

func (r *times) back() int64 { return r.at(r.len() - 1) }

func (r *times) push(t int64) {
	if !r.wide {
		if r.ms.len() == 0 {
			r.base = t - t%int64(time.Millisecond)
		}
		d, ok := r.offset(t)
		if !ok {
			r.rebase()
			d, ok = r.offset(t)
		}
		if ok {
			r.ms.push(d)
			return
		}
		r.widen()
	}
	r.ns.push(t)
}

func (r *times) offset(t int64) (uint32, bool) {
	d := t - r.base
	if d < 0 || d%int64(time.Millisecond) != 0 || d/int64(time.Millisecond) > math.MaxUint32 {
		return 0, false
	}
	return uint32(d / int64(time.Millisecond)), true
}

// rebase moves base to the oldest time, so that a window sliding for more
// than 49 days stays compact.
func (r *times) rebase() {
	if r.ms.len() == 0 {
		return
	}
	shift := r.ms.at(0)
	for i := range r.ms.n {
		j := (r.ms.head + i) % len(r.ms.buf)
		r.ms.buf[j] -= shift
	}
	r.base += int64(shift) * int64(time.Millisecond)
}

func (r *times) widen() {
	for i := range r.ms.len() {
		r.ns.push(r.at(i))
	}
	r.ms = ring[uint32]{}
	r.wide = true
}

func (r *times) popFront(k int) {
	if !r.wide {
		r.ms.popFront(k)
		return
	}
	r.ns.popFront(k)
	if r.ns.len() == 0 {
		r.ns, r.wide = ring[int64]{}, false
	}
}
