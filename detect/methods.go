package detect

import (
	"math"
	"sort"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// model is one key's baseline for one method. observe scores a point against
// the baseline without learning it (cusum also moves its sums, which are the
// detector's state, not the baseline); learn adds the point to the baseline.
// The split is what keeps anomalous points out of the baseline.
type model interface {
	observe(t time.Time, x float64) obs
	learn(t time.Time, x float64)
	reset()
	encode(e *event.Enc)
	decode(d *event.Dec)
}

// obs is a point's score and what lay behind it: the expected value, the
// spread the score is measured in, which test made it, and (stuck) the
// length of the run.
type obs struct {
	expected, score, sd float64
	ready               bool
	why                 cause
	run                 int
	ratio               float64 // unrest: the recent distance over the usual one
	// stuckStart: this point makes a run of equal values just long
	// enough to be called stuck (auto).
	stuckStart bool
	// auto, for a key scored by a level: that level now (level), and the
	// slow mean and its spread (base, baseSD), which a firing keeps to
	// hold itself open while the level stays away (autoHold). baseSD 0:
	// no hold.
	level, base, baseSD float64
}

func newModel(c *config) model {
	switch c.method {
	case "zscore":
		return &zscore{win: window{size: c.window}, min: c.minSamples}
	case "mad":
		return &mad{win: window{size: c.window}, min: c.minSamples}
	case "ewma":
		return &ewma{ew: ewstat{alpha: c.alpha, half: c.halflifeT}, min: c.minSamples}
	case "seasonal":
		return newSeasonal(c)
	case "auto":
		return newAuto(c)
	default:
		return &cusum{ew: ewstat{alpha: c.alpha, half: c.halflifeT}, min: c.minSamples, k: c.k, h: c.threshold}
	}
}

// sdFloor keeps a flat baseline from turning the smallest wobble into an
// infinite score: a deviation must exceed a millionth of the level's size.
func sdFloor(sd, level float64) float64 {
	return math.Max(sd, 1e-6*math.Max(1, math.Abs(level)))
}

// window is the baseline points with time in (t-size, t], oldest first, in a
// ring that grows by an eighth (see grow) to the most points the window has held (and
// shrinks again after a burst). A point costs 12 bytes: its value and its
// time as a millisecond offset from base while times are whole milliseconds
// within 49 days of it, which is what sensors send; the first time that is
// not turns the times into int64s (20 bytes a point) until the window
// empties.
type window struct {
	size time.Duration
	base int64    // ns
	ms   []uint32 // compact times; nil while wide
	ns   []int64  // wide times; nil while compact
	xs   []float64
	head int
	n    int
}

const msec = int64(time.Millisecond)

// grow is the ring's next capacity after n: it grows until it holds the
// window, then stays, so a small step wastes little (at most an eighth, a
// quarter below 64) for a few more copies while the window first fills.
func grow(n int) int {
	if n < 64 {
		return max(8, n+n/4)
	}
	return n + n/8
}

func (w *window) slot(i int) int {
	j := w.head + i
	if j >= len(w.xs) {
		j -= len(w.xs)
	}
	return j
}

// t returns the time of the i-th oldest point.
func (w *window) t(i int) int64 {
	j := w.slot(i)
	if w.ns != nil {
		return w.ns[j]
	}
	return w.base + int64(w.ms[j])*msec
}

func (w *window) at(i int) float64 { return w.xs[w.slot(i)] }

func (w *window) push(t time.Time, x float64) {
	if w.n == len(w.xs) {
		w.resize(grow(w.n))
	}
	ns := t.UnixNano()
	j := w.slot(w.n)
	if w.ns == nil {
		if w.n == 0 {
			w.base = ns - ns%msec
		}
		d, ok := w.offset(ns)
		if !ok {
			w.rebase()
			d, ok = w.offset(ns)
		}
		if ok {
			w.ms[j], w.xs[j] = d, x
			w.n++
			return
		}
		w.widen()
	}
	w.ns[j], w.xs[j] = ns, x
	w.n++
}

func (w *window) offset(ns int64) (uint32, bool) {
	d := ns - w.base
	if d < 0 || d%msec != 0 || d/msec > math.MaxUint32 {
		return 0, false
	}
	return uint32(d / msec), true
}

// rebase moves base to the oldest point's time.
func (w *window) rebase() {
	if w.n == 0 {
		return
	}
	shift := w.ms[w.head]
	for i := range w.n {
		w.ms[w.slot(i)] -= shift
	}
	w.base += int64(shift) * msec
}

func (w *window) widen() {
	w.ns = make([]int64, len(w.xs))
	for i := range w.n {
		w.ns[w.slot(i)] = w.base + int64(w.ms[w.slot(i)])*msec
	}
	w.ms = nil
}

// resize moves the points to a ring of c slots, oldest first.
func (w *window) resize(c int) {
	xs := make([]float64, c)
	var ms []uint32
	var ns []int64
	if w.ns != nil {
		ns = make([]int64, c)
	} else {
		ms = make([]uint32, c)
	}
	for i := range w.n {
		j := w.slot(i)
		xs[i] = w.xs[j]
		if ns != nil {
			ns[i] = w.ns[j]
		} else {
			ms[i] = w.ms[j]
		}
	}
	w.xs, w.ms, w.ns, w.head = xs, ms, ns, 0
}

// expire drops points at or before t-size and calls fn with each.
func (w *window) expire(t time.Time, fn func(x float64)) {
	cut := t.UnixNano() - int64(w.size)
	k := 0
	for w.n > 0 && w.t(0) <= cut {
		if fn != nil {
			fn(w.xs[w.head])
		}
		w.head = w.slot(1)
		w.n--
		k++
	}
	if k > 0 {
		w.shrink()
	}
}

// shrink gives back what a burst made the ring grow to, and turns an empty
// wide ring compact again.
func (w *window) shrink() {
	switch {
	case w.n == 0 && w.ns != nil:
		w.ns, w.ms, w.xs, w.head = nil, nil, nil, 0
	case len(w.xs) > 64 && w.n < len(w.xs)/4:
		w.resize(2 * w.n)
	}
}

func (w *window) reset() { w.head, w.n = 0, 0; w.shrink() }

func (w *window) encode(e *event.Enc) {
	e.Uvarint(uint64(w.n))
	for i := range w.n {
		e.Varint(w.t(i))
		e.Float(w.at(i))
	}
}

func (w *window) decode(d *event.Dec) {
	n := d.Len()
	w.reset()
	for i := 0; i < n && d.Err == nil; i++ {
		t := d.Varint()
		w.push(time.Unix(0, t), d.Float())
	}
}

// zscore: mean and standard deviation of the window, kept as running sums
// around a shift (the first point) so that large levels do not cancel.
type zscore struct {
	win          window
	min          int
	shift, s, ss float64
}

func (z *zscore) observe(t time.Time, x float64) obs {
	z.win.expire(t, func(y float64) { d := y - z.shift; z.s -= d; z.ss -= float64(d * d) })
	n := float64(z.win.n)
	if z.win.n == 0 {
		z.s, z.ss = 0, 0 // drop rounding residue
	}
	if z.win.n < z.min || z.win.n < 2 {
		return obs{}
	}
	m := z.s / n
	v := math.Max(0, (z.ss-float64(n*m*m))/(n-1))
	mean := z.shift + m
	sd := sdFloor(math.Sqrt(v), mean)
	return obs{expected: mean, score: (x - mean) / sd, sd: sd, ready: true}
}

func (z *zscore) learn(t time.Time, x float64) {
	if z.win.n == 0 {
		z.shift, z.s, z.ss = x, 0, 0
	}
	z.win.push(t, x)
	d := x - z.shift
	z.s += d
	z.ss += float64(d * d)
}

func (z *zscore) reset() { z.win.reset(); z.s, z.ss = 0, 0 }

// encode keeps the running sums as they are rather than recomputing them on
// decode: a restored detector then scores bit for bit as an uninterrupted one.
func (z *zscore) encode(e *event.Enc) {
	z.win.encode(e)
	e.Float(z.shift)
	e.Float(z.s)
	e.Float(z.ss)
}

func (z *zscore) decode(d *event.Dec) {
	z.win.decode(d)
	z.shift = d.Float()
	z.s = d.Float()
	z.ss = d.Float()
}

// mad: median and median absolute deviation of the window. Besides the ring
// it keeps the window's values sorted (insert and remove are a binary search
// and a memmove), so the median is a lookup and the MAD a merge walk of the
// distances on either side of it: O(window) per point without copying.
type mad struct {
	win    window
	min    int
	sorted []float64
}

func (m *mad) observe(t time.Time, x float64) obs {
	m.win.expire(t, m.remove)
	n := len(m.sorted)
	if n < m.min || n < 2 {
		return obs{}
	}
	s := m.sorted
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	// 1.4826·MAD estimates σ for normal data; on data with many equal
	// values MAD is 0 and the mean absolute deviation (·1.2533) stands in.
	sd := 1.4826 * m.mad(med)
	if sd == 0 {
		var sum float64
		for _, v := range s {
			sum += math.Abs(v - med)
		}
		sd = 1.2533 * sum / float64(n)
	}
	sd = sdFloor(sd, med)
	return obs{expected: med, score: (x - med) / sd, sd: sd, ready: true}
}

// mad returns the median of |v - med| over the sorted window by walking
// outward from med, taking the nearer side each step.
func (m *mad) mad(med float64) float64 {
	s := m.sorted
	n := len(s)
	r := sort.SearchFloat64s(s, med)
	l := r - 1
	var prev, cur float64
	for i := 0; i <= n/2; i++ {
		prev = cur
		if l >= 0 && (r >= n || med-s[l] <= s[r]-med) {
			cur = med - s[l]
			l--
		} else {
			cur = s[r] - med
			r++
		}
	}
	if n%2 == 0 {
		return (prev + cur) / 2
	}
	return cur
}

func (m *mad) learn(t time.Time, x float64) {
	m.win.push(t, x)
	i := sort.SearchFloat64s(m.sorted, x)
	if n := len(m.sorted); n == cap(m.sorted) {
		m.sorted = append(make([]float64, 0, grow(n)), m.sorted...) // as the ring grows
	}
	m.sorted = append(m.sorted, 0)
	copy(m.sorted[i+1:], m.sorted[i:])
	m.sorted[i] = x
}

func (m *mad) remove(x float64) {
	i := sort.SearchFloat64s(m.sorted, x)
	if i < len(m.sorted) && m.sorted[i] == x {
		m.sorted = append(m.sorted[:i], m.sorted[i+1:]...)
	}
}

func (m *mad) reset() { m.win.reset(); m.sorted = m.sorted[:0] }

func (m *mad) encode(e *event.Enc) { m.win.encode(e) }

func (m *mad) decode(d *event.Dec) {
	var w window
	w.size = m.win.size
	w.decode(d)
	m.reset()
	for i := 0; i < w.n; i++ {
		m.learn(time.Unix(0, w.t(i)), w.at(i))
	}
}

// ewstat is an exponentially weighted mean and variance. Until 1/alpha points
// have been seen it is the plain running mean, so early points are not
// over-weighted; with a time halflife the weight decays with the gap.
type ewstat struct {
	alpha   float64
	half    time.Duration
	n       int
	mean, v float64
	last    int64
}

func (s *ewstat) add(t time.Time, x float64) {
	a := s.alpha
	if s.half > 0 && s.n > 0 {
		dt := float64(t.UnixNano() - s.last)
		a = 1 - math.Exp2(-dt/float64(s.half))
	}
	s.n++
	a = math.Max(a, 1/float64(s.n))
	d := x - s.mean
	inc := a * d
	s.mean += inc
	s.v = (1 - a) * (s.v + float64(d*inc))
	s.last = t.UnixNano()
}

func (s *ewstat) encode(e *event.Enc) {
	e.Uvarint(uint64(s.n))
	e.Float(s.mean)
	e.Float(s.v)
	e.Varint(s.last)
}

func (s *ewstat) decode(d *event.Dec) {
	s.n = int(d.Uvarint())
	s.mean = d.Float()
	s.v = d.Float()
	s.last = d.Varint()
}

type ewma struct {
	ew  ewstat
	min int
}

func (m *ewma) observe(_ time.Time, x float64) obs {
	if m.ew.n < m.min || m.ew.n < 2 {
		return obs{}
	}
	sd := sdFloor(math.Sqrt(m.ew.v), m.ew.mean)
	return obs{expected: m.ew.mean, score: (x - m.ew.mean) / sd, sd: sd, ready: true}
}

func (m *ewma) learn(t time.Time, x float64) { m.ew.add(t, x) }
func (m *ewma) reset()                       { m.ew = ewstat{alpha: m.ew.alpha, half: m.ew.half} }
func (m *ewma) encode(e *event.Enc)          { m.ew.encode(e) }
func (m *ewma) decode(d *event.Dec)          { m.ew.decode(d) }

// cusum is the two-sided tabular CUSUM on points standardised by a slow
// exponentially weighted baseline: S⁺ = max(0, S⁺ + z − k), S⁻ = max(0, S⁻ − z − k).
// Its score is the larger sum (signed), compared with h.
type cusum struct {
	ew     ewstat
	min    int
	k, h   float64
	hi, lo float64
}

func (c *cusum) observe(_ time.Time, x float64) obs {
	if c.ew.n < c.min || c.ew.n < 2 {
		return obs{}
	}
	sd := sdFloor(math.Sqrt(c.ew.v), c.ew.mean)
	z := (x - c.ew.mean) / sd
	c.hi = math.Max(0, c.hi+z-c.k)
	c.lo = math.Max(0, c.lo-z-c.k)
	score := c.hi
	if c.lo > c.hi {
		score = -c.lo
	}
	// Restart after an alarm, as the textbook chart does: a shift that
	// persists crosses h again within h/(shift-k) points and keeps the key
	// firing, while one that ended lets it resolve.
	if math.Abs(score) >= c.h {
		c.hi, c.lo = 0, 0
	}
	return obs{expected: c.ew.mean, score: score, sd: sd, ready: true, why: causeCusum}
}

func (c *cusum) learn(t time.Time, x float64) { c.ew.add(t, x) }
func (c *cusum) reset() {
	c.ew = ewstat{alpha: c.ew.alpha, half: c.ew.half}
	c.hi, c.lo = 0, 0
}
func (c *cusum) encode(e *event.Enc) { c.ew.encode(e); e.Float(c.hi); e.Float(c.lo) }
func (c *cusum) decode(d *event.Dec) { c.ew.decode(d); c.hi = d.Float(); c.lo = d.Float() }

// seasonal scores a point against the same phase of earlier periods (a day,
// a week): one exponentially weighted mean per phase bucket, and one
// exponentially weighted variance of the residuals over all buckets. It is
// for series whose normal level follows the clock (heating, traffic,
// occupancy), where a plain baseline calls every evening peak an anomaly.
//
// A point far from its phase mean (|z| ≥ threshold) is a point anomaly. A
// level shift too small for that (no point 5σ out, but the residuals keep
// one sign) is caught by a two-sided CUSUM on the residuals of the other points:
// S⁺ = max(0, S⁺ + c − k), S⁻ = max(0, S⁻ − c − k), where c is the residual
// divided by the residuals' root mean square (about zero, so a series whose
// level habitually strays from its daily profile needs a larger shift).
// When a sum reaches h the point is anomalous with score ±threshold·S/h and
// the sums restart, as in the cusum method.
type seasonal struct {
	period, res time.Duration
	alpha       float64 // per point of a bucket, for the bucket means
	min         int
	means       []float64
	counts      []uint32
	resid       ewstat
	k, h, th    float64 // level-shift CUSUM: allowance, decision level (0: off); threshold
	hi, lo      float64 // its sums
}

func newSeasonal(c *config) *seasonal {
	return &seasonal{period: c.period, res: c.resolution, alpha: halflifeAlpha(c.phaseHalf), min: c.minSamples,
		resid: ewstat{alpha: c.alpha, half: c.halflifeT}, k: c.shiftK, h: c.shiftH, th: c.threshold}
}

func (s *seasonal) bucket(t time.Time) int {
	ph := t.UnixNano() % int64(s.period)
	if ph < 0 {
		ph += int64(s.period)
	}
	return int(ph / int64(s.res))
}

func (s *seasonal) observe(t time.Time, x float64) obs {
	if s.means == nil {
		return obs{}
	}
	b := s.bucket(t)
	if s.counts[b] < 2 || s.resid.n < s.min {
		return obs{}
	}
	m := s.means[b]
	sd := sdFloor(math.Sqrt(s.resid.v), m)
	z := (x - m) / sd
	if s.h <= 0 || math.Abs(z) >= s.th {
		return obs{expected: m, score: z, sd: sd, ready: true} // a point anomaly does not feed the level-shift sums
	}
	// The residuals' mean square is their variance plus their mean squared
	// (the exponentially weighted recursions keep this identity exactly).
	// As rms ≥ sd, |c| ≤ |z| < threshold: one point moves a sum by less
	// than threshold − k, so a lone outlier cannot raise the alarm.
	rms := sdFloor(math.Sqrt(s.resid.v+float64(s.resid.mean*s.resid.mean)), m)
	c := (x - m) / rms
	s.hi = math.Max(0, s.hi+c-s.k)
	s.lo = math.Max(0, s.lo-c-s.k)
	switch {
	case s.hi >= s.h:
		z = s.th * s.hi / s.h
	case s.lo >= s.h:
		z = -s.th * s.lo / s.h
	default:
		return obs{expected: m, score: z, sd: sd, ready: true}
	}
	s.hi, s.lo = 0, 0
	return obs{expected: m, score: z, sd: sd, ready: true, why: causeShift}
}

func (s *seasonal) learn(t time.Time, x float64) {
	if s.means == nil {
		n := int((s.period + s.res - 1) / s.res)
		s.means, s.counts = make([]float64, n), make([]uint32, n)
	}
	b := s.bucket(t)
	if s.counts[b] > 0 {
		// the residual against what this phase looked like before
		s.resid.add(t, x-s.means[b])
	}
	s.counts[b]++
	a := math.Max(s.alpha, 1/float64(s.counts[b]))
	s.means[b] += float64(a * (x - s.means[b]))
}

// learnAnomalous moves an anomalous point's phase mean toward it, clipped to
// the threshold (a winsorised update), and leaves the residual spread alone.
// A phase whose mean was learned from a fault would otherwise never learn
// again: every later normal point there scores as anomalous, and the key
// fires at that time every day.
func (s *seasonal) learnAnomalous(t time.Time, x, threshold float64) {
	if s.means == nil {
		return
	}
	b := s.bucket(t)
	m := s.means[b]
	bound := threshold * sdFloor(math.Sqrt(s.resid.v), m)
	x = math.Min(m+bound, math.Max(m-bound, x))
	s.counts[b]++
	s.means[b] += float64(math.Max(s.alpha, 1/float64(s.counts[b])) * (x - m))
}

func (s *seasonal) reset() {
	s.means, s.counts = nil, nil
	s.resid = ewstat{alpha: s.resid.alpha, half: s.resid.half}
	s.hi, s.lo = 0, 0
}

func (s *seasonal) encode(e *event.Enc) {
	e.Uvarint(uint64(len(s.means)))
	for i := range s.means {
		e.Float(s.means[i])
		e.Uvarint(uint64(s.counts[i]))
	}
	s.resid.encode(e)
	e.Float(s.hi)
	e.Float(s.lo)
}

func (s *seasonal) decode(d *event.Dec) {
	s.decodeV1(d)
	s.hi = d.Float()
	s.lo = d.Float()
}

// decodeV1 reads a snapshot of version 1, which had no level-shift sums:
// they restart from zero.
func (s *seasonal) decodeV1(d *event.Dec) {
	s.hi, s.lo = 0, 0
	n := d.Len()
	s.means, s.counts = nil, nil
	if n > 0 {
		if want := int((s.period + s.res - 1) / s.res); n != want {
			d.Err = event.ErrCorrupt
			return
		}
		s.means, s.counts = make([]float64, n), make([]uint32, n)
		for i := 0; i < n && d.Err == nil; i++ {
			s.means[i] = d.Float()
			s.counts[i] = uint32(d.Uvarint())
		}
	}
	s.resid.decode(d)
}
