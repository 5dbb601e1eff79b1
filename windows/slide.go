package windows

import (
	"math"
	"sort"
)

// slideKey is one key's sliding window: its events' times and, per
// aggregate, a column of the events' values, oldest first. Events enter at
// the back in event-time order (the Reorder buffer sees to that) and leave
// at the front, so every aggregate updates in O(1) amortised (percentile in
// O(log n) plus a memmove), never rescanning the window.
type slideKey struct {
	ref     int64 // slope's time reference (ns): the key's first event
	ts      []int64
	removed uint64 // events that have left; ts[i] is event number removed+i
	cols    []slideCol
}

// slideCol is one aggregate's column and running state. A numeric column
// marks a missing value with NaN (toFloat never lets a NaN in); the other
// columns use nil.
type slideCol struct {
	nums     []float64
	anys     []any
	n        int // values present in the window
	sum      ksum
	w        welford
	cv       cov
	dq       []uint64 // min/max: monotonic deque; first/last/slope: events with a value
	sorted   []float64
	distinct map[any]int
}

func newSlideKey(aggs []agg, ref int64) *slideKey {
	return &slideKey{ref: ref, cols: make([]slideCol, len(aggs))}
}

// push appends one event whose values were extracted into num/anyv.
func (k *slideKey) push(aggs []agg, t int64, num []float64, anyv []any) {
	abs := k.removed + uint64(len(k.ts))
	k.ts = append(k.ts, t)
	for j := range aggs {
		c := &k.cols[j]
		if aggs[j].f.numeric() {
			c.nums = append(c.nums, num[j])
			if math.IsNaN(num[j]) {
				continue
			}
		} else {
			c.anys = append(c.anys, anyv[j])
			if anyv[j] == nil {
				continue
			}
		}
		c.add(aggs[j].f, k, abs, t, num[j], anyv[j])
	}
}

func (c *slideCol) add(f fn, k *slideKey, abs uint64, t int64, x float64, v any) {
	c.n++
	switch f {
	case fnSum, fnAvg:
		c.sum.add(x)
	case fnStddev:
		c.w.add(x)
	case fnSlope:
		c.cv.add(seconds(t-k.ref), x)
		c.dq = append(c.dq, abs)
	case fnMin:
		for len(c.dq) > 0 && c.nums[c.dq[len(c.dq)-1]-k.removed] >= x {
			c.dq = c.dq[:len(c.dq)-1]
		}
		c.dq = append(c.dq, abs)
	case fnMax:
		for len(c.dq) > 0 && c.nums[c.dq[len(c.dq)-1]-k.removed] <= x {
			c.dq = c.dq[:len(c.dq)-1]
		}
		c.dq = append(c.dq, abs)
	case fnFirst, fnLast:
		c.dq = append(c.dq, abs)
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
	for n < len(k.ts) && k.ts[n] <= edge {
		abs := k.removed + uint64(n)
		for j := range aggs {
			k.cols[j].remove(aggs[j].f, k, abs, n)
		}
		n++
	}
	if n == 0 {
		return
	}
	k.ts = k.ts[n:]
	for j := range k.cols {
		c := &k.cols[j]
		if c.nums != nil {
			c.nums = c.nums[n:]
		}
		if c.anys != nil {
			clear(c.anys[:n]) // let the values go
			c.anys = c.anys[n:]
		}
	}
	k.removed += uint64(n)
}

func (c *slideCol) remove(f fn, k *slideKey, abs uint64, i int) {
	var x float64
	var v any
	if f.numeric() {
		x = c.nums[i]
		if math.IsNaN(x) {
			return
		}
	} else {
		v = c.anys[i]
		if v == nil {
			return
		}
	}
	c.n--
	switch f {
	case fnSum, fnAvg:
		if c.n == 0 {
			c.sum = ksum{} // an empty window sums to exactly 0 again
		} else {
			c.sum.add(-x)
		}
	case fnStddev:
		c.w.remove(x)
	case fnSlope:
		c.cv.remove(seconds(k.ts[i]-k.ref), x)
		c.dq = c.dq[1:]
	case fnMin, fnMax:
		if len(c.dq) > 0 && c.dq[0] == abs {
			c.dq = c.dq[1:]
		}
	case fnFirst, fnLast:
		c.dq = c.dq[1:]
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

func (k *slideKey) value(j int, a *agg) any {
	c := &k.cols[j]
	switch a.f {
	case fnCount:
		if a.Arg == nil {
			return float64(len(k.ts))
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
		if k.ts[c.dq[0]-k.removed] == k.ts[c.dq[len(c.dq)-1]-k.removed] {
			return nil
		}
		return c.cv.slope()
	case fnMin, fnMax:
		return c.nums[c.dq[0]-k.removed]
	case fnFirst:
		return c.anys[c.dq[0]-k.removed]
	case fnLast:
		return c.anys[c.dq[len(c.dq)-1]-k.removed]
	case fnPercentile:
		return percentile(c.sorted, a.P)
	}
	return nil
}
