package windows

// ring is a FIFO (with pop at the back for the min/max deques) over one
// backing array. Sliding windows used to append at the back and reslice at
// the front: the array kept the dead front until the next append grew it,
// and growing doubled it, so a full window cost up to four times its values.
// A ring reuses its slots and grows by a quarter.
type ring[T any] struct {
	buf  []T
	head int // index of the oldest element
	n    int
}

func (r *ring[T]) len() int { return r.n }

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
		r.resize(max(8, r.n+r.n/4))
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
