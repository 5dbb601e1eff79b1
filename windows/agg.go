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
	r := float64(p / 100 * float64(n-1)) // rounded: arm64 would fuse it into r-lo below
	lo := int(math.Floor(r))
	hi := int(math.Ceil(r))
	if hi >= n {
		hi = n - 1
	}
	return sorted[lo] + float64((sorted[hi]-sorted[lo])*(r-float64(lo)))
}

// state holds the running state of the one function an aggregate has: a
// ksum (sum, avg), a welford (stddev) or a cov (slope), and not all three.
type state [5]float64

func (s *state) sum() ksum         { return ksum{s[0], s[1]} }
func (s *state) setSum(k ksum)     { s[0], s[1] = k.s, k.c }
func (s *state) welf() welford     { return welford{s[0], s[1], s[2]} }
func (s *state) setWelf(w welford) { s[0], s[1], s[2] = w.n, w.mean, w.m2 }
func (s *state) cov() cov          { return cov{s[0], s[1], s[2], s[3], s[4]} }
func (s *state) setCov(v cov)      { *s = state{v.n, v.mt, v.my, v.c, v.m2t} }

// bagAgg accumulates one aggregate of an append-only window (tumbling,
// hopping, session, count). Values may arrive in any order; first and last
// go by (time, seq). Sessions merge bags when a late event bridges two.
//
// Every key holds one per aggregate and open window (five for a 5 m window
// hopping every minute), so it is kept small: the running state of the
// common functions lives in st, what only slope, first, last, percentile
// and count_distinct need in x.
type bagAgg struct {
	n  int64 // values taken
	st state // sum, avg: ksum; stddev: welford; slope: cov; min, max: st[0], the extreme
	x  *bagExtra
}

type bagExtra struct {
	ref        int64 // slope time reference, ns
	tmin, tmax int64 // slope: earliest and latest time with a value (slope needs two)
	first      any
	last       any
	ft, lt     int64
	fs, ls     uint64
	vals       []float64 // percentile; sorted lazily
	sorted     bool
	distinct   map[any]struct{}
}

func (b *bagAgg) extra() *bagExtra {
	if b.x == nil {
		b.x = &bagExtra{}
	}
	return b.x
}

func (b *bagAgg) add(f fn, num float64, v any, t int64, seq uint64) {
	switch f {
	case fnSum, fnAvg:
		s := b.st.sum()
		s.add(num)
		b.st.setSum(s)
	case fnStddev:
		w := b.st.welf()
		w.add(num)
		b.st.setWelf(w)
	case fnSlope:
		x := b.extra()
		if b.n == 0 || t < x.tmin {
			x.tmin = t
		}
		if b.n == 0 || t > x.tmax {
			x.tmax = t
		}
		cv := b.st.cov()
		cv.add(seconds(t-x.ref), num)
		b.st.setCov(cv)
	case fnMin:
		if b.n == 0 || num < b.st[0] {
			b.st[0] = num
		}
	case fnMax:
		if b.n == 0 || num > b.st[0] {
			b.st[0] = num
		}
	case fnFirst:
		x := b.extra()
		if b.n == 0 || t < x.ft || (t == x.ft && seq < x.fs) {
			x.first, x.ft, x.fs = v, t, seq
		}
	case fnLast:
		x := b.extra()
		if b.n == 0 || t > x.lt || (t == x.lt && seq > x.ls) {
			x.last, x.lt, x.ls = v, t, seq
		}
	case fnPercentile:
		x := b.extra()
		x.vals = append(x.vals, num)
		x.sorted = false
	case fnCountDistinct:
		x := b.extra()
		if x.distinct == nil {
			x.distinct = map[any]struct{}{}
		}
		x.distinct[v] = struct{}{}
	}
	b.n++
}

// merge folds o into b (sessions joined by an event that bridges them).
func (b *bagAgg) merge(f fn, o *bagAgg) {
	if o.n == 0 {
		return
	}
	if b.n == 0 {
		var ref int64
		if b.x != nil {
			ref = b.x.ref
		}
		*b = *o
		if o.x != nil {
			x := *o.x
			b.x = &x
		}
		if f == fnSlope {
			// keep b's reference so the caller's invariant holds
			b.x.ref = ref
			var cv cov
			cv.merge(o.st.cov(), seconds(o.x.ref-ref))
			b.st.setCov(cv)
		}
		return
	}
	switch f {
	case fnSum, fnAvg:
		s := b.st.sum()
		s.add(o.st[0])
		s.add(o.st[1])
		b.st.setSum(s)
	case fnStddev:
		w := b.st.welf()
		w.merge(o.st.welf())
		b.st.setWelf(w)
	case fnSlope:
		b.x.tmin, b.x.tmax = min(b.x.tmin, o.x.tmin), max(b.x.tmax, o.x.tmax)
		cv := b.st.cov()
		cv.merge(o.st.cov(), seconds(o.x.ref-b.x.ref))
		b.st.setCov(cv)
	case fnMin:
		b.st[0] = min(b.st[0], o.st[0])
	case fnMax:
		b.st[0] = max(b.st[0], o.st[0])
	case fnFirst:
		if o.x.ft < b.x.ft || (o.x.ft == b.x.ft && o.x.fs < b.x.fs) {
			b.x.first, b.x.ft, b.x.fs = o.x.first, o.x.ft, o.x.fs
		}
	case fnLast:
		if o.x.lt > b.x.lt || (o.x.lt == b.x.lt && o.x.ls > b.x.ls) {
			b.x.last, b.x.lt, b.x.ls = o.x.last, o.x.lt, o.x.ls
		}
	case fnPercentile:
		b.x.vals = append(b.x.vals, o.x.vals...)
		b.x.sorted = false
	case fnCountDistinct:
		for k := range o.x.distinct {
			b.x.distinct[k] = struct{}{}
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
		return b.st.sum().val()
	case fnCountDistinct:
		if b.x == nil {
			return float64(0)
		}
		return float64(len(b.x.distinct))
	}
	if b.n == 0 {
		return nil
	}
	switch a.f {
	case fnAvg:
		return b.st.sum().val() / float64(b.n)
	case fnStddev:
		return b.st.welf().stddev()
	case fnSlope:
		if b.x.tmin == b.x.tmax {
			return nil
		}
		return b.st.cov().slope()
	case fnMin, fnMax:
		return b.st[0]
	case fnFirst:
		return b.x.first
	case fnLast:
		return b.x.last
	case fnPercentile:
		if !b.x.sorted {
			sort.Float64s(b.x.vals)
			b.x.sorted = true
		}
		return percentile(b.x.vals, a.P)
	}
	return nil
}
