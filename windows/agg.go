package windows

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// fn is an aggregate function, resolved once in New.
type fn uint8

const (
	fnCount fn = iota
	fnSum
	fnAvg
	fnMin
	fnMax
	fnStddev
	fnFirst
	fnLast
	fnSlope
	fnPercentile
	fnCountDistinct
)

var fnNames = map[string]fn{
	"count": fnCount, "sum": fnSum, "avg": fnAvg, "min": fnMin, "max": fnMax,
	"stddev": fnStddev, "first": fnFirst, "last": fnLast, "slope": fnSlope,
	"percentile": fnPercentile, "count_distinct": fnCountDistinct,
}

// numeric reports whether the function needs a number: other values are
// left out of it, as a missing field is.
func (f fn) numeric() bool {
	switch f {
	case fnCount, fnFirst, fnLast, fnCountDistinct:
		return false
	}
	return true
}

// toFloat converts the numbers an expression can yield. NaN and ±Inf are
// refused: one of them would poison a running sum for as long as the window
// lasts (Inf - Inf is NaN when it leaves a sliding window).
func toFloat(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case int32:
		f = float64(x)
	case int16:
		f = float64(x)
	case int8:
		f = float64(x)
	case uint:
		f = float64(x)
	case uint64:
		f = float64(x)
	case uint32:
		f = float64(x)
	case uint16:
		f = float64(x)
	case uint8:
		f = float64(x)
	case json.Number:
		var err error
		if f, err = x.Float64(); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// distinctKey normalises a value for count_distinct: numbers compare by
// value (1 and 1.0 are one value), strings and booleans as themselves,
// anything else by its text. The result always survives the snapshot codec.
func distinctKey(v any) any {
	if f, ok := toFloat(v); ok {
		return f
	}
	switch x := v.(type) {
	case string, bool:
		return x
	}
	return fmt.Sprint(v)
}

// ksum is a Neumaier-compensated sum. Sliding windows subtract every value
// they once added; without compensation the error of a long-running key
// would grow with the number of events it has ever seen.
type ksum struct{ s, c float64 }

func (k *ksum) add(x float64) {
	t := k.s + x
	if math.Abs(k.s) >= math.Abs(x) {
		k.c += (k.s - t) + x
	} else {
		k.c += (x - t) + k.s
	}
	k.s = t
}

func (k ksum) val() float64 { return k.s + k.c }

// welford keeps mean and the sum of squared deviations (Welford), which add,
// remove and merge without the cancellation of sum-of-squares formulas.
type welford struct{ n, mean, m2 float64 }

func (w *welford) add(x float64) {
	w.n++
	d := x - w.mean
	w.mean += d / w.n
	w.m2 += float64(d * (x - w.mean))
}

func (w *welford) remove(x float64) {
	if w.n <= 1 {
		*w = welford{}
		return
	}
	w.n--
	d := x - w.mean
	w.mean -= d / w.n
	w.m2 -= float64(d * (x - w.mean))
	if w.m2 < 0 {
		w.m2 = 0
	}
}

func (w *welford) merge(o welford) {
	if o.n == 0 {
		return
	}
	if w.n == 0 {
		*w = o
		return
	}
	n := w.n + o.n
	d := o.mean - w.mean
	w.mean += d * o.n / n
	w.m2 += o.m2 + d*d*w.n*o.n/n
	w.n = n
}

// stddev is the population standard deviation (as Prometheus'
// stddev_over_time): 0 for one value.
func (w welford) stddev() float64 { return math.Sqrt(w.m2 / w.n) }

// cov is the online co-moment of (t, y) with t in seconds since a reference
// time: slope = cov(t,y)/var(t). Like welford it adds, removes and merges.
type cov struct{ n, mt, my, c, m2t float64 }

func (v *cov) add(t, y float64) {
	v.n++
	dt := t - v.mt
	v.mt += dt / v.n
	v.my += (y - v.my) / v.n
	v.c += float64(dt * (y - v.my))
	v.m2t += float64(dt * (t - v.mt))
}

func (v *cov) remove(t, y float64) {
	if v.n <= 1 {
		*v = cov{}
		return
	}
	v.n--
	dt, dy := t-v.mt, y-v.my
	mtOld, myOld := v.mt-dt/v.n, v.my-dy/v.n
	v.c -= float64((t - mtOld) * dy)
	v.m2t -= float64((t - mtOld) * dt)
	v.mt, v.my = mtOld, myOld
	if v.m2t < 0 {
		v.m2t = 0
	}
}

// merge adds o, whose times are shift seconds later than v's reference.
func (v *cov) merge(o cov, shift float64) {
	if o.n == 0 {
		return
	}
	o.mt += shift
	if v.n == 0 {
		*v = o
		return
	}
	n := v.n + o.n
	dx, dy := o.mt-v.mt, o.my-v.my
	v.mt += dx * o.n / n
	v.my += dy * o.n / n
	v.c += o.c + dx*dy*v.n*o.n/n
	v.m2t += o.m2t + dx*dx*v.n*o.n/n
	v.n = n
}

func (v cov) slope() any {
	if v.m2t <= 0 {
		return nil
	}
	return v.c / v.m2t
}

// seconds converts a nanosecond offset to seconds.
func seconds(ns int64) float64 { return float64(ns) / 1e9 }

// percentile interpolates linearly between the closest ranks of sorted
// values (numpy's default, Prometheus' quantile_over_time): rank
// p/100·(n-1), so p=0 is the minimum, p=100 the maximum and p=50 of an even
// count the mean of the middle two.
func percentile(sorted []float64, p float64) any {
	n := len(sorted)
	if n == 0 {
		return nil
	}
	r := p / 100 * float64(n-1)
	lo := int(math.Floor(r))
	hi := int(math.Ceil(r))
	if hi >= n {
		hi = n - 1
	}
	return sorted[lo] + float64((sorted[hi]-sorted[lo])*(r-float64(lo)))
}

// bagAgg accumulates one aggregate of an append-only window (tumbling,
// hopping, session, count). Values may arrive in any order; first and last
// go by (time, seq). Sessions merge bags when a late event bridges two.
type bagAgg struct {
	n        int64 // values taken
	sum      ksum
	w        welford
	cv       cov
	ref      int64 // slope time reference, ns
	min, max float64
	tmin     int64 // earliest and latest time with a value (slope needs two)
	tmax     int64
	first    any
	last     any
	ft, lt   int64
	fs, ls   uint64
	vals     []float64 // percentile; sorted lazily
	sorted   bool
	distinct map[any]struct{}
}

func (b *bagAgg) add(f fn, num float64, v any, t int64, seq uint64) {
	if b.n == 0 || t < b.tmin {
		b.tmin = t
	}
	if b.n == 0 || t > b.tmax {
		b.tmax = t
	}
	switch f {
	case fnSum, fnAvg:
		b.sum.add(num)
	case fnStddev:
		b.w.add(num)
	case fnSlope:
		b.cv.add(seconds(t-b.ref), num)
	case fnMin:
		if b.n == 0 || num < b.min {
			b.min = num
		}
	case fnMax:
		if b.n == 0 || num > b.max {
			b.max = num
		}
	case fnFirst:
		if b.n == 0 || t < b.ft || (t == b.ft && seq < b.fs) {
			b.first, b.ft, b.fs = v, t, seq
		}
	case fnLast:
		if b.n == 0 || t > b.lt || (t == b.lt && seq > b.ls) {
			b.last, b.lt, b.ls = v, t, seq
		}
	case fnPercentile:
		b.vals = append(b.vals, num)
		b.sorted = false
	case fnCountDistinct:
		if b.distinct == nil {
			b.distinct = map[any]struct{}{}
		}
		b.distinct[v] = struct{}{}
	}
	b.n++
}

// merge folds o into b (sessions joined by an event that bridges them).
func (b *bagAgg) merge(f fn, o *bagAgg) {
	if o.n == 0 {
		return
	}
	if b.n == 0 {
		ref := b.ref
		*b = *o
		if f == fnSlope {
			// keep b's reference so the caller's invariant holds
			b.cv = cov{}
			b.ref = ref
			b.cv.merge(o.cv, seconds(o.ref-ref))
		}
		return
	}
	b.tmin, b.tmax = min(b.tmin, o.tmin), max(b.tmax, o.tmax)
	switch f {
	case fnSum, fnAvg:
		b.sum.add(o.sum.s)
		b.sum.add(o.sum.c)
	case fnStddev:
		b.w.merge(o.w)
	case fnSlope:
		b.cv.merge(o.cv, seconds(o.ref-b.ref))
	case fnMin:
		b.min = min(b.min, o.min)
	case fnMax:
		b.max = max(b.max, o.max)
	case fnFirst:
		if o.ft < b.ft || (o.ft == b.ft && o.fs < b.fs) {
			b.first, b.ft, b.fs = o.first, o.ft, o.fs
		}
	case fnLast:
		if o.lt > b.lt || (o.lt == b.lt && o.ls > b.ls) {
			b.last, b.lt, b.ls = o.last, o.lt, o.ls
		}
	case fnPercentile:
		b.vals = append(b.vals, o.vals...)
		b.sorted = false
	case fnCountDistinct:
		for k := range o.distinct {
			b.distinct[k] = struct{}{}
		}
	}
	b.n += o.n
}

// value is the aggregate's result; events is the window's event count
// (count() without an argument counts events, not values).
func (b *bagAgg) value(a *agg, events int64) any {
	switch a.f {
	case fnCount:
		if a.Arg == nil {
			return float64(events)
		}
		return float64(b.n)
	case fnSum:
		return b.sum.val()
	case fnCountDistinct:
		return float64(len(b.distinct))
	}
	if b.n == 0 {
		return nil
	}
	switch a.f {
	case fnAvg:
		return b.sum.val() / float64(b.n)
	case fnStddev:
		return b.w.stddev()
	case fnSlope:
		if b.tmin == b.tmax {
			return nil
		}
		return b.cv.slope()
	case fnMin:
		return b.min
	case fnMax:
		return b.max
	case fnFirst:
		return b.first
	case fnLast:
		return b.last
	case fnPercentile:
		if !b.sorted {
			sort.Float64s(b.vals)
			b.sorted = true
		}
		return percentile(b.vals, a.P)
	}
	return nil
}
