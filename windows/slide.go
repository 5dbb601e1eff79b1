package windows

import (
	"math"
	"sort"
)

// slideKey is one key's sliding window: its events' times and, per
// aggregate, a column of the events' values, oldest first, each in a ring.
// Events enter at the back in event-time order (the Reorder buffer sees to
// that) and leave at the front, so every aggregate updates in O(1)
// amortised (percentile in O(log n) plus a memmove), never rescanning the
// window.
//
// A buffered event costs 4 bytes of time (8 unless times are whole
// milliseconds) plus, per aggregate, 8 bytes
// (numeric functions), 16 (first, last, count_distinct), 1 (count(x)) or
// nothing (count()); min and max add their deque, which holds few entries
// unless the values are monotonic.
type slideKey struct {
	ref     int64 // slope's time reference (ns): the key's first event
	ts      times
	removed uint64 // events that have left; ts.at(i) is event number removed+i
	cols    []slideCol
}

// slideCol is one aggregate's column and running state. Which ring holds
// the column depends on the function (see colKind); a numeric column marks
// a missing value with NaN (toFloat never lets a NaN in), an any column
// with nil. Every sliding key has one per aggregate, so what only some
// functions need is behind x.
type slideCol struct {
	nums ring[float64]
	n    int   // values present in the window
	st   state // sum, avg: ksum; stddev: welford; slope: cov
	// slope, first, last: event numbers of the oldest and the newest event
	// with a value (valid while n > 0)
	oldest, newest uint64
	x              *slideExtra
}

type slideExtra struct {
	anys     ring[any]
	has      ring[bool]   // count(x): whether x had a value
	dq       ring[uint64] // min/max: monotonic deque of event numbers
	sorted   []float64
	distinct map[any]int
}

func (c *slideCol) extra() *slideExtra {
	if c.x == nil {
		c.x = &slideExtra{}
	}
	return c.x
}

// colKind is where a column keeps its values.
type colKind uint8

const (
	colNone colKind = iota // count(): counts events, keeps nothing per event
	colNum                 // numeric functions
	colHas                 // count(x): presence only
	colAny                 // first, last, count_distinct
)

func (a *agg) col() colKind {
	switch {
	case a.f.numeric():
		return colNum
	case a.f != fnCount:
		return colAny
	case a.Arg == nil:
		return colNone
	}
	return colHas
}

func newSlideKey(aggs []agg, ref int64) *slideKey {
	return &slideKey{ref: ref, cols: make([]slideCol, len(aggs))}
}

func (k *slideKey) len() int { return k.ts.len() }

// last is the time of the newest event; the window must not be empty.
func (k *slideKey) last() int64 { return k.ts.back() }

// push appends one event whose values were extracted into num/anyv.
func (k *slideKey) push(aggs []agg, t int64, num []float64, anyv []any) {
	abs := k.removed + uint64(k.ts.len())
	k.ts.push(t)
	for j := range aggs {
		c := &k.cols[j]
		switch aggs[j].col() {
		case colNone:
			continue
		case colNum:
			c.nums.push(num[j])
			if math.IsNaN(num[j]) {
				continue
			}
		case colHas:
			c.extra().has.push(anyv[j] != nil)
			if anyv[j] == nil {
				continue
			}
		default:
			c.extra().anys.push(anyv[j])
			if anyv[j] == nil {
				continue
			}
		}
		c.add(aggs[j].f, k, abs, t, num[j], anyv[j])
	}
}

func (c *slideCol) add(f fn, k *slideKey, abs uint64, t int64, x float64, v any) {
	if c.n == 0 {
		c.oldest = abs
	}
	c.newest = abs
	c.n++
	switch f {
	case fnSum, fnAvg:
		s := c.st.sum()
		s.add(x)
		c.st.setSum(s)
	case fnStddev:
		w := c.st.welf()
		w.add(x)
		c.st.setWelf(w)
	case fnSlope:
		cv := c.st.cov()
		cv.add(seconds(t-k.ref), x)
		c.st.setCov(cv)
	case fnMin:
		dq := &c.extra().dq
		for dq.len() > 0 && c.nums.at(int(dq.back()-k.removed)) >= x {
			dq.popBack()
		}
		dq.push(abs)
	case fnMax:
		dq := &c.extra().dq
		for dq.len() > 0 && c.nums.at(int(dq.back()-k.removed)) <= x {
			dq.popBack()
		}
		dq.push(abs)
	case fnPercentile:
		e := c.extra()
		i := sort.SearchFloat64s(e.sorted, x)
		e.sorted = append(e.sorted, 0)
		copy(e.sorted[i+1:], e.sorted[i:])
		e.sorted[i] = x
	case fnCountDistinct:
		e := c.extra()
		if e.distinct == nil {
			e.distinct = map[any]int{}
		}
		e.distinct[v]++
	}
}

// expire drops the events with time <= edge from the front.
func (k *slideKey) expire(aggs []agg, edge int64) {
	n := 0
	for n < k.ts.len() && k.ts.at(n) <= edge {
		abs := k.removed + uint64(n)
		for j := range aggs {
			k.cols[j].remove(&aggs[j], k, abs, n)
		}
		n++
	}
	if n == 0 {
		return
	}
	k.ts.popFront(n)
	for j := range k.cols {
		c := &k.cols[j]
		switch aggs[j].col() {
		case colNum:
			c.nums.popFront(n)
		case colHas:
			c.x.has.popFront(n)
		case colAny:
			c.x.anys.popFront(n)
		}
	}
	k.removed += uint64(n)
}

// at returns the i-th oldest event's value in the column and whether it has
// one.
func (c *slideCol) at(a *agg, i int) (x float64, v any, ok bool) {
	switch a.col() {
	case colNum:
		x = c.nums.at(i)
		return x, nil, !math.IsNaN(x)
	case colHas:
		return 0, nil, c.x.has.at(i)
	case colAny:
		v = c.x.anys.at(i)
		return 0, v, v != nil
	}
	return 0, nil, true
}

func (c *slideCol) remove(a *agg, k *slideKey, abs uint64, i int) {
	if a.col() == colNone {
		return
	}
	x, v, ok := c.at(a, i)
	if !ok {
		return
	}
	c.n--
	switch a.f {
	case fnSum, fnAvg:
		s := c.st.sum()
		s.add(-x)
		c.st.setSum(s)
	case fnStddev:
		w := c.st.welf()
		w.remove(x)
		c.st.setWelf(w)
	case fnSlope:
		cv := c.st.cov()
		cv.remove(seconds(k.ts.at(i)-k.ref), x)
		c.st.setCov(cv)
		c.next(a, i)
	case fnMin, fnMax:
		if dq := &c.x.dq; dq.len() > 0 && dq.at(0) == abs {
			dq.popFront(1)
		}
	case fnFirst, fnLast:
		c.next(a, i)
	case fnPercentile:
		e := c.x
		j := sort.SearchFloat64s(e.sorted, x)
		e.sorted = append(e.sorted[:j], e.sorted[j+1:]...)
	case fnCountDistinct:
		if c.x.distinct[v] <= 1 {
			delete(c.x.distinct, v)
		} else {
			c.x.distinct[v]--
		}
	}
	if c.n == 0 {
		// an empty window sums to exactly 0 again, and forgets its
		// rounding residue
		c.st = state{}
	}
}

// next moves oldest past the event i that is leaving, which was the oldest
// with a value, to the next one with a value. Each event is stepped over
// once while it is in the window, so this is O(1) amortised.
func (c *slideCol) next(a *agg, i int) {
	if c.n == 0 {
		return
	}
	for m := i + 1; ; m++ {
		if _, _, ok := c.at(a, m); ok {
			c.oldest += uint64(m - i)
			return
		}
	}
}

func (k *slideKey) value(j int, a *agg) any {
	c := &k.cols[j]
	switch a.f {
	case fnCount:
		if a.Arg == nil {
			return float64(k.ts.len())
		}
		return float64(c.n)
	case fnSum:
		return c.st.sum().val()
	case fnCountDistinct:
		if c.x == nil {
			return float64(0)
		}
		return float64(len(c.x.distinct))
	}
	if c.n == 0 {
		return nil
	}
	switch a.f {
	case fnAvg:
		return c.st.sum().val() / float64(c.n)
	case fnStddev:
		return c.st.welf().stddev()
	case fnSlope:
		if k.ts.at(int(c.oldest-k.removed)) == k.ts.at(int(c.newest-k.removed)) {
			return nil
		}
		return c.st.cov().slope()
	case fnMin, fnMax:
		return c.nums.at(int(c.x.dq.at(0) - k.removed))
	case fnFirst:
		return c.x.anys.at(int(c.oldest - k.removed))
	case fnLast:
		return c.x.anys.at(int(c.newest - k.removed))
	case fnPercentile:
		return percentile(c.x.sorted, a.P)
	}
	return nil
}
