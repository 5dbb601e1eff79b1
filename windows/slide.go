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
// with nil.
type slideCol struct {
	nums ring[float64]
	anys ring[any]
	has  ring[bool] // count(x): whether x had a value
	n    int        // values present in the window
	sum  ksum
	w    welford
	cv   cov
	dq   ring[uint64] // min/max: monotonic deque of event numbers
	// slope, first, last: event numbers of the oldest and the newest event
	// with a value (valid while n > 0)
	oldest, newest uint64
	sorted         []float64
	distinct       map[any]int
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
			c.has.push(anyv[j] != nil)
			if anyv[j] == nil {
				continue
			}
		default:
			c.anys.push(anyv[j])
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
		c.sum.add(x)
	case fnStddev:
		c.w.add(x)
	case fnSlope:
		c.cv.add(seconds(t-k.ref), x)
	case fnMin:
		for c.dq.len() > 0 && c.nums.at(int(c.dq.back()-k.removed)) >= x {
			c.dq.popBack()
		}
		c.dq.push(abs)
	case fnMax:
		for c.dq.len() > 0 && c.nums.at(int(c.dq.back()-k.removed)) <= x {
			c.dq.popBack()
		}
		c.dq.push(abs)
	case fnPercentile:
		i := sort.SearchFloat64s(c.sorted, x)
		c.sorted = append(c.sorted, 0)
		copy(c.sorted[i+1:], c.sorted[i:])
		c.sorted[i] = x
	case fnCountDistinct:
		if c.distinct == nil {
			c.distinct = map[any]int{}
		}
		c.distinct[v]++
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
			c.has.popFront(n)
		case colAny:
			c.anys.popFront(n)
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
		return 0, nil, c.has.at(i)
	case colAny:
		v = c.anys.at(i)
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
		if c.n == 0 {
			c.sum = ksum{} // an empty window sums to exactly 0 again
		} else {
			c.sum.add(-x)
		}
	case fnStddev:
		c.w.remove(x)
	case fnSlope:
		c.cv.remove(seconds(k.ts.at(i)-k.ref), x)
		c.next(a, i)
	case fnMin, fnMax:
		if c.dq.len() > 0 && c.dq.at(0) == abs {
			c.dq.popFront(1)
		}
	case fnFirst, fnLast:
		c.next(a, i)
	case fnPercentile:
		j := sort.SearchFloat64s(c.sorted, x)
		c.sorted = append(c.sorted[:j], c.sorted[j+1:]...)
	case fnCountDistinct:
		if c.distinct[v] <= 1 {
			delete(c.distinct, v)
		} else {
			c.distinct[v]--
		}
	}
	if c.n == 0 {
		c.w, c.cv = welford{}, cov{}
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
		return c.sum.val()
	case fnCountDistinct:
		return float64(len(c.distinct))
	}
	if c.n == 0 {
		return nil
	}
	switch a.f {
	case fnAvg:
		return c.sum.val() / float64(c.n)
	case fnStddev:
		return c.w.stddev()
	case fnSlope:
		if k.ts.at(int(c.oldest-k.removed)) == k.ts.at(int(c.newest-k.removed)) {
			return nil
		}
		return c.cv.slope()
	case fnMin, fnMax:
		return c.nums.at(int(c.dq.at(0) - k.removed))
	case fnFirst:
		return c.anys.at(int(c.oldest - k.removed))
	case fnLast:
		return c.anys.at(int(c.newest - k.removed))
	case fnPercentile:
		return percentile(c.sorted, a.P)
	}
	return nil
}
