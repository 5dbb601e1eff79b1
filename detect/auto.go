package detect

import (
	"math"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// auto is the default method: it needs no parameters and adapts per key.
//
// Six predictors of the next point run side by side, and the key is
// scored by the one that has predicted it best so far (lowest exponentially
// weighted mean square error over the last few hundred normal points):
//
//   - slow:   an exponentially weighted mean (halflife 240 points), for
//     noise around a steady level;
//   - local:  the same with a short halflife (8 points), for a level that
//     wanders (temperatures, slow processes);
//   - fast:   the same with a halflife of 4 points, for a smooth signal
//     that wanders faster than its noise (a machine's heat following its
//     load), where the local mean's lag is most of its error;
//   - cycle:  the same short mean, but of the point minus its phase of the
//     day (a profile of 96 quarter-hour means learned day over day), for
//     series that follow the clock;
//   - week:   the cycle's prediction plus the mean distance from the
//     daily profile at that hour of the week (learned week over week from
//     the fifth day, predicting after two visits), for series whose
//     weekends or Mondays differ from the other days; it exists only for
//     keys the daily profile has predicted best, and is taken only when it
//     predicts better still;
//   - modes:  the nearest of up to three operating levels the key has
//     dwelt at (each with its own mean and spread), for keys that switch
//     between levels (a power meter's standby and load). It is taken only
//     when its error is a tenth of the others', and then a point is scored
//     in the spread of the level it is nearest (at least the predictor's).
//
// A point is anomalous when its error is threshold times that predictor's
// root mean square error (the band). Three further tests catch what a
// point test misses: a stuck sensor (the same value repeated three times as
// long as the key has ever repeated one, and at least 10 points), a level
// shift (a two-sided CUSUM of the slow predictor's standardised errors, or
// the modes predictor's while that is in use; see autoShiftHalf), and
// unrest (the last 15 or so points strayed from the prediction far more
// than the key's points usually do, none beyond the band: more spikes than
// usual).
// An anomalous point moves the baseline by at most the band, so one fault
// does not hide the next, yet a level that has really moved is followed.
//
// Memory per key is fixed: 96 phase means and visit counts (960 B), three
// operating levels (96 B) and about 420 B of statistics; BenchmarkMemory
// measures 1,660 B a key with the detector's own bookkeeping. A key with a
// daily cycle also holds the weekly correction: 168 hourly means (float32)
// and visit counts, 840 B: BenchmarkMemoryDaily measures 2,551 B a key
// with a daily cycle. Work per point is O(1).
type auto struct {
	min       int
	thf       float64
	n         int     // points learned
	slow, loc float64 // the steady and the local level means
	fast      float64 // the fast level mean (version 8)
	scale     float64 // mean distance of the points (anomalous too) from slow
	dloc      float64 // local mean of the point minus its phase
	mse       [autoPreds]float64
	mseN      [autoPreds]int
	pick      int     // the predictor in use
	slowLong  float64 // the slow predictor's mean square error, halflife autoShiftHalf or autoShiftTime
	last      int64   // the time of the last point learned, in Unix nanoseconds

	// The operating levels (modes) the key switches between: a power
	// meter's standby and load, a valve's open and shut.
	modes [autoModes]mode

	// The daily profile: a mean per phase bucket, updated once per visit
	// with the visit's mean (so its memory is in days, whatever the rate).
	prof   []float64
	visits []uint16
	cur    int // bucket being visited (-1: none yet)
	vSum   float64
	vN     int

	// The weekly correction: per hour of the week, the mean of the points'
	// distance from their daily phase, updated once per visit (halflife
	// three weeks); allocated only once the daily profile predicts the key
	// best. dwk is the local mean of the point minus both.
	week []float32
	wVis []uint8
	wCur int
	wSum float64
	wN   int
	dwk  float64

	// Stuck: the current run of equal values and the longest one learned.
	prev   float64
	run    int
	ended  int // the length of the run before this one
	maxRun int
	// rest is a value the key often sits at (a counter's 0, a meter's
	// standby), restF the share of recent points at it: a long run there
	// is not a stuck sensor.
	rest, restF float64
	varied      int // points learned that differed from the one before
	hi, lo      float64

	// How often the band is crossed: an exponentially weighted rate of
	// points that leave it after one inside it.
	cross  float64
	out    bool
	inBand int // points in a row inside the band (counted up to autoCrossGap)

	// Unrest: a short mean of the points' bounded distance from the
	// expected (min(|z|, threshold) / threshold), the same of the signed
	// distance, and the long-run mean and variance of the first.
	unr, unrS, unrMu, unrVar float64

	// The mean log interval between points, in seconds (exponentially
	// weighted, halflife autoMSE points; +Inf: not known yet).
	lnDt float64
}

// cause says which test made the last score.
type cause uint8

const (
	causePoint cause = iota
	causeShift
	causeStuck
	causeCusum
	causeUnrest
)

const (
	autoPeriod = 24 * time.Hour
	autoRes    = 15 * time.Minute
	autoBkts   = int(autoPeriod / autoRes)
)

// Halflives, in points: the three level means, the predictors' error, and
// (in visits of a phase bucket, i.e. days) the daily profile.
var (
	autoFast  = halflifeAlpha(autoFastHalf)
	autoLocal = halflifeAlpha(8)
	autoSlow  = halflifeAlpha(240)
	autoMSE   = halflifeAlpha(500)
	autoDays  = halflifeAlpha(3)
)

const (
	predSlow = iota
	predLocal
	predCycle
	predModes
	predWeek
	predFast
	autoPreds
)

// autoFastHalf is the fast level mean's halflife, in points. On a smooth
// signal that wanders (the minute fleet's heat sensors: noise 0.05 on a
// level that follows the machine's load over half an hour) the local
// mean's error is mostly its lag, and the band it set hid a level shift of
// 2.5 wander deviations; a faster mean, taken where it predicts best,
// narrows that band to what the signal does in a few points. Chosen across
// groups (docs/detectors.md, seventh round): halflives of 2, 3, 4, 5 and 6
// points find 506, 496, 487, 482 and 476 of the minute fleet's 536 level
// shifts over eight seeds (466, 87 %, without, which is a halflife of 8)
// and score 71.0, 72.4, 73.3, 73.3 and 73.3 on NAB (73.3 without): below
// 4 NAB has more false firings (55 and 49 against 44) and the 1 Hz clean
// fleet fires 0.57 times a device-week against 0.19. A local linear trend (Holt's method)
// did no better than the same halflife without a slope.
const autoFastHalf = 4

// The weekly correction's resolution and buckets; the visits a phase of
// the daily profile needs before the distances from it are learned (five:
// a profile still being learned, its first days clipped at the band, made
// the correction wrong by as much as it moved), and the visits an hour of
// the week needs before it predicts (two: one week's distances are one
// sample). With one and one, a series with no weekly pattern fired a week
// after its warm-up (NAB 63.0); one and two, 66.1 but a day-shift series
// still fired in week three (TestAutoDailyOnlyStaysQuiet); five and two,
// 65.7; seven and two, 65.9.
const (
	autoWeekRes  = time.Hour
	autoWeekBkts = int(7 * 24 * time.Hour / autoWeekRes)
	autoWeekFrom = 5
	autoWeekMin  = 2
)

// mode is one operating level: its mean and mean square error (halflife
// autoSlow), its share of recent points (halflife autoMSE) and how many
// points it has taken (saturating).
type mode struct {
	mean, mse, share float64
	n                int
}

// autoRelearn is auto's default relearn: the anomalous points in a row
// after which a key starts from scratch. Its predictors follow a level that
// has moved (anomalous points move them by up to the band; a new operating
// level is learned after minSamples points), so a restart, which throws
// away the daily profile and the levels and leaves the key blind for its
// warm-up, is the last resort: for a change they cannot follow, such as a
// meter whose standby and load both moved (it has three level slots). With
// the common 120, a meter scored in its levels' spreads restarted during
// every three-hour fault at one reading a minute and then missed the next
// faults (spike recall 82 % against 90 %); from 200 to 1,440 points and
// with none at all every group scores the same (NAB 71.2).
const autoRelearn = 1440

// autoRefire and autoRefireScore: a key that fires, has been back within
// its band for autoRefire points in a row (waiting out clear) and then
// scores autoRefireScore times the threshold has a new fault: the open
// firing resolves and a new one fires at that point. Without it a fault
// that began within clear points of the last one's end went unreported
// (about 60 of the 200 misses left on the minute fleet's eight seeds).
// Chosen across groups (docs/detectors.md, sixth round): 45 to 75 points
// at 1.75 to 2.5 times the threshold score NAB 72.2–73.8 (22 windows,
// 42–49 false firings, against 71.2, 21 and 36) and find 94–95 % of the
// minute fleet's spikes (90 %), 94 % of its drifts (93 %) and 87 % of its
// level shifts (85 %); any anomaly after 60 points (NAB 68.7, 66 false
// firings) or 2 times the threshold after 30 (69.2, 63) fire too often,
// and from 100 points NAB is as without.
const (
	autoRefire      = 60
	autoRefireScore = 2.0
)

// autoHold: a firing of a key (but for one that switches between levels)
// stays open after clear normal points while that level (the fast
// mean) is still more than autoHold of the slow predictor's spread from
// where the slow mean was when the key fired, for at most relearn points
// more: the band follows a level that moved, so points soon read as
// normal again, but a sensor whose level has shifted and stays shifted (a
// valve partly shut, a pump's pressure down) has not gone back to normal.
// Without it a firing for a ten-minute level shift at one reading a second
// resolved after about four minutes. Chosen on the share of the faults'
// readings that fall within a firing, and of the firings' readings that
// fall within a fault (the 1 Hz fleet's point-wise F1; docs/detectors.md,
// seventh round): holds at 2, 2.5, 3, 3.5, 4 and 4.75 spreads score 0.52,
// 0.68, 0.73, 0.73, 0.72 and 0.66 (0.47 without; at 2 firings stay open
// long after their faults, a point precision of 0.37, and NAB loses a
// window, 69.4); from 2.5 NAB (73.3) and the clean fleets are as they were.
// The cost: a new fault that begins while a firing is held is reported
// only as the exceptions for a new fault allow (stuck, twice the
// threshold): the 1 Hz fleet's level recall 520 -> 514 of 528.
const autoHold = 3.5

// autoModes is how many operating levels the modes predictor keeps; a
// level is established (predicts) once it has taken minSamples points.
const autoModes = 3

// autoModesMargin: the modes predictor is taken (or left) only on a large
// margin in mean square error. Between a switching key's levels it is many
// times better than any mean; on skewed noise it is a little better only
// because its spare modes take the tails, and there it would narrow the
// band.
var autoModesMargin = 0.1

func newAuto(c *config) *auto {
	return &auto{thf: c.threshold, min: c.minSamples, cur: -1, wCur: -1, inBand: autoCrossGap}
}

func autoWeekBucket(t time.Time) int {
	const week = int64(7 * 24 * time.Hour)
	ph := t.UnixNano() % week
	if ph < 0 {
		ph += week
	}
	return int(ph / int64(autoWeekRes))
}

func autoBucket(t time.Time) int {
	ph := t.UnixNano() % int64(autoPeriod)
	if ph < 0 {
		ph += int64(autoPeriod)
	}
	return int(ph / int64(autoRes))
}

// predictions returns the predictors' expected values for a point x at t;
// cyc says whether the cycle predictor has a phase mean there yet. The
// modes predictor expects the established level nearest to x (or, with
// none yet, the slow mean).
func (a *auto) predictions(t time.Time, x float64) (p [autoPreds]float64, cyc, wk bool) {
	p[predSlow], p[predLocal], p[predFast] = a.slow, a.loc, a.fast
	p[predModes] = a.slow
	if j := a.nearest(x, true); j >= 0 {
		p[predModes] = a.modes[j].mean
	}
	if a.prof != nil {
		if b := autoBucket(t); a.visits[b] >= 1 {
			p[predCycle] = a.prof[b] + a.dloc
			cyc = true
			if h := autoWeekBucket(t); a.week != nil && int(a.wVis[h]) >= autoWeekMin {
				p[predWeek] = a.prof[b] + float64(a.week[h]) + a.dwk
				wk = true
			}
		}
	}
	return p, cyc, wk
}

func (a *auto) observe(t time.Time, x float64) obs {
	// Run length of equal values, counted on every point (normal or not).
	if a.n > 0 && x == a.prev {
		a.run++
	} else {
		a.ended, a.run = a.run, 1
		if a.n > 0 && a.ended >= 3 && a.restF < 0.05 {
			a.rest = a.prev
		}
	}
	a.prev = x
	at := 0.0
	if x == a.rest {
		at = 1
	}
	a.restF += autoMSE * (at - a.restF)
	if a.n < a.min || a.mseN[a.pick] < a.min {
		return obs{}
	}
	p, _, _ := a.predictions(t, x)
	exp := p[a.pick]
	sd := sdFloor(a.rms(a.pick), exp)
	if j := a.nearest(x, true); a.pick == predModes && j >= 0 {
		// A point is scored in the spread of the level it is nearest, not
		// in the predictor's own error: each level has its own spread (a
		// meter's load is noisier than its standby), and the predictor's
		// error also holds every fault it met, each clipped at the slow
		// predictor's wide band, so with a fault every day or so a load
		// spike of 25 of the load's σ read as 4 (docs/detectors.md, sixth
		// round: with autoRelearn, spike recall on the minute fleet 85 →
		// 90 %, drift 88 → 93 %, level 82 → 85 %; NAB 71.1 → 71.2).
		sd = a.modeSD(&a.modes[j])
	}
	z := (x - exp) / sd
	f := max(1, a.crossings(z))
	// The unrest test measures the points against the band before the
	// crossing guard widens it: a key whose ordinary spikes the guard has
	// learned to pass still shows a burst of them, at whatever threshold.
	zr := z
	rw := a.rateWiden()
	f *= rw
	sd, z = sd*f, z/f
	o := obs{expected: exp, score: z, sd: sd, ready: true}
	if a.pick != predModes {
		// Where the key's level is now, and where the slow mean says it
		// was, in the slow predictor's spread (see autoHold); not for a key
		// that switches between levels.
		o.level, o.base, o.baseSD = a.fast, a.slow, max(a.rms(predSlow), math.Sqrt(a.slowLong))
	}
	if lim := a.stuckLen(); a.varied >= a.min && a.run >= lim && !(x == a.rest && a.restF >= autoRestShare) {
		o.score, o.why, o.run, o.stuckStart = a.thf*float64(a.run)/float64(lim), causeStuck, a.run, a.run == lim
		return o
	}
	u := a.unrest(zr)
	if math.Abs(z) >= a.thf {
		return o
	}
	if u >= autoUnrest && a.n > autoUnrestFrom {
		// Strayed mostly to one side: that is a level shift, and says so.
		why := causeUnrest
		if math.Abs(a.unrS) >= 0.5*a.unr {
			why = causeShift
		}
		o.score, o.why, o.ratio = math.Copysign(a.thf*u/autoUnrest, a.unrS), why, a.unr/max(a.unrMu, 1e-9)
		return o
	}
	// Level shift: CUSUM of the slow predictor's standardised error,
	// measured against the larger of its recent and its long-run spread,
	// damped for the key's rate but not by the crossing guard: a key whose
	// faults cross its band often (a fault every few hours) has had that
	// spread widened by the faults already, and a level shift was lost
	// twice over (minute fleet: level recall 51 -> 53 of 67 without it).
	c := (x - p[predSlow]) / sdFloor(max(a.rms(predSlow), math.Sqrt(a.slowLong)), p[predSlow]) / rw
	if a.pick == predModes {
		// Between a switching key's levels the slow mean is nowhere: a
		// shift is a move away from the level the key is at.
		c = z
	}
	a.hi = math.Max(0, a.hi+c-autoShiftK)
	a.lo = math.Max(0, a.lo-c-autoShiftK)
	switch {
	case a.hi >= autoShiftH:
		o.score = a.thf * a.hi / autoShiftH
	case a.lo >= autoShiftH:
		o.score = -a.thf * a.lo / autoShiftH
	default:
		return o
	}
	a.hi, a.lo = 0, 0
	o.why = causeShift
	return o
}

// The level-shift CUSUM's allowance and decision level, in standard
// deviations of the slow predictor's error. Chosen across the simulator's
// fault types and NAB's folders (docs/detectors.md): 2 and 30 keep the
// clean fleet silent; 1.5 and 20 fired about once a device-week on it.
//
// That error's spread is the larger of its root mean square over the
// predictors' memory (autoMSE) and over a longer one, autoShiftHalf points
// or autoShiftTime, whichever is longer: a key whose level wanders slowly
// (a machine's heat following its load over half an hour, which at one
// reading a second is far longer than autoMSE's 500 points) has had quiet
// stretches and wide swings, and a swing after a quiet stretch is its
// ordinary wander, not a shift. Chosen across groups (docs/detectors.md):
// 700 to 2,000 points score 71.1–71.3 on NAB against 69.1 with none, the
// 1 Hz clean fleet fires 7.6 to 4.6 times a device-week against 9.2, and
// the minute fleet is unchanged; from 2,500 points NAB loses a window of
// machine_temperature (67.3, 65.3 at 3,000). The time, which only matters
// for keys faster than one point in 7 s (NAB's and the minute fleet's
// scores do not move), takes the 1 Hz clean fleet from 6.1 (1,500 points,
// 25 minutes) to 4.6 firings a device-week at 1 to 6 hours.
const (
	autoShiftK    = 2.0
	autoShiftH    = 30.0
	autoShiftHalf = 1500
	autoShiftTime = 3 * time.Hour
)

var autoShiftLong = halflifeAlpha(autoShiftHalf)

// Crossing the band should be rare: autoCrossRate is the most often (per
// point, halflife autoCrossHalf points) a key may leave it before its band
// widens by the square root of how much more often it does. A key whose
// ordinary behaviour crosses the band (a power meter switching between
// standby and a load, a counter that bursts) then stops firing on it
// (the level-shift test's input is not scaled down with it since the
// fifth round: NAB unchanged, more level shifts found; a meter's test runs
// on its levels' own spread, which is scaled),
// while one crossing a fault a day is untouched. Chosen across groups: at
// 1/2000 NAB lost 6 points and the simulator's recall fell; at 1/1000
// NAB and the minute fleet are unchanged and the 1 Hz meters' false
// firings fall from 183 to 27.
//
// A fault that flickers in and out of the band (a level shift or a drift
// near the band's edge, a spike of two readings with a normal one between)
// is one crossing, not many: a crossing counts only after autoCrossGap
// points in a row inside the band. Otherwise a fault a day on a key taught
// it that crossing was ordinary, and the band it widened hid the next one.
// Chosen across groups (docs/detectors.md; eight seeds of the minute
// fleet): a gap of 3 to 5 points finds more drifts and level shifts on
// every seed (4: spike 210 → 213, drift 218 → 227, level 428 → 437 of
// 252, 258 and 536) and leaves NAB at 71.1 (71.3 without); from 6 points
// NAB loses art_increase_spike_density's window (67.4), whose spikes a
// few points apart are its ordinary behaviour.
const (
	autoCrossRate = 0.001
	autoCrossHalf = 2000
	autoCrossGap  = 4
)

var autoCross = halflifeAlpha(autoCrossHalf)

// crossings counts z's crossing of the band and returns the factor by
// which the band must widen (≤ 1: none).
func (a *auto) crossings(z float64) float64 {
	out := math.Abs(z) >= a.thf
	c := 0.0
	if out && !a.out && a.inBand >= autoCrossGap {
		c = 1
	}
	a.out = out
	switch {
	case out:
		a.inBand = 0
	case a.inBand < autoCrossGap:
		a.inBand++
	}
	a.cross += autoCross * (c - a.cross)
	return math.Sqrt(a.cross / autoCrossRate)
}

// autoRateRef: the defaults were chosen on keys a minute apart and slower
// (the NAB subset's 5 minutes, the minute fleet). A faster key sees more
// points an hour, and with the same band a point test false alarms in
// proportion: at one point a second a clean fleet fired 4.6 times a
// device-week. rateWiden widens the band of a key whose points come
// faster than autoRateRef so that its Gaussian tail beyond the band holds
// the same share of a minute's points: threshold² + 2 ln(autoRateRef /
// interval) in place of threshold² (at 1 Hz and 4.75, 5.55). The
// level-shift test is damped alike. Keys a minute apart or slower are
// untouched. Chosen across groups (docs/detectors.md): at a reference of
// 20 s, 60 s or 120 s the 1 Hz clean fleet fires 0 times (4.6 before), its
// level recall 62 of 66 (63 before); NAB is unchanged; at 120 s the
// minute fleet's keys are widened too and lose a spike and a level
// shift, so a minute it is.
const autoRateRef = time.Minute

// rateWiden is the factor by which the band widens for the key's rate.
func (a *auto) rateWiden() float64 {
	d := math.Log(autoRateRef.Seconds()) - a.lnDt
	if a.n < 2 || d <= 0 { // a.lnDt +Inf: not known
		return 1
	}
	return math.Sqrt(a.thf*a.thf+2*d) / a.thf
}

// Unrest, in the spirit of HTM's anomaly likelihood: a key whose points
// have, for the last 15 or so (halflife autoUnrestHalf), strayed from
// what was expected far more than they usually do (autoUnrest standard
// deviations of that short mean above its long-run mean, both learned over
// every point with halflife autoCrossHalf), with no point beyond the band:
// more spikes than usual, a noisier sensor. It is scored once the key has
// autoUnrestFrom points, so the long-run statistics have settled.
//
// Chosen across groups (docs/detectors.md): at 6 deviations, halflives of
// 8, 10 and 15 points score 69.1–69.4 on NAB (65.7 without: it catches
// art_increase_spike_density's window; at 6.5 or more it does not), leave
// the simulator's faults and its 1 Hz clean fleet as they were, and fire
// 1–3 times on the clean minute fleet's 17 device-weeks. On heavy-tailed
// clean noise (TestAutoUnrestHeavyTails: 100,000 points of each of three
// kinds) a halflife of 10 stays within the test's bound of 3 firings; one
// of 5 fired 6–10 times and one of 3 (72.8 on NAB) 11–44 times, so the
// longer one was taken.
const (
	autoUnrest     = 6.0
	autoUnrestHalf = 10
	autoUnrestFrom = 1000
)

var autoUnrestAlpha = halflifeAlpha(autoUnrestHalf)

// unrest folds z into the short and long-run statistics and returns how
// many long-run standard deviations the short mean is above its mean.
func (a *auto) unrest(z float64) float64 {
	u := min(math.Abs(z), a.thf) / a.thf
	first := 1 / float64(a.n+1) // the first points count fully, not against a zero start
	a.unr += max(autoUnrestAlpha, first) * (u - a.unr)
	a.unrS += max(autoUnrestAlpha, first) * (math.Copysign(u, z) - a.unrS)
	d := a.unr - a.unrMu
	a.unrMu += max(autoCross, first) * d
	a.unrVar += max(autoCross, first) * (d*d - a.unrVar)
	if a.unrVar <= 0 {
		return 0
	}
	return d / math.Sqrt(a.unrVar)
}

// rms is predictor i's root mean square error, at least a hundredth of the
// series' typical distance from its slow level. Without that floor a
// series that is exactly flat for hours (a square wave, a quantised
// sensor) has a band of zero width: every change is anomalous, and the
// errors, clipped to the band, never teach the predictors anything.
func (a *auto) rms(i int) float64 { return math.Sqrt(max(a.mse[i], 1e-4*a.scale*a.scale)) }

// autoRestShare: a value that at least this share of recent points (halflife
// 500) sit at is a resting value (a counter's 0, a meter's standby), and a
// long run at it is not a stuck sensor. Any value is a candidate once a run
// of three ends at it while the current candidate holds under 5 %.
const autoRestShare = 0.1

// stuckLen is the run of equal values that is called stuck: three times the
// longest normal run, and at least 10 points.
func (a *auto) stuckLen() int { return max(10, 3*a.maxRun+1) }

func (a *auto) learn(t time.Time, x float64) { a.update(t, x, false) }

// learnAnomalous lets an anomalous point move the baseline by at most the
// band (a winsorised update): the predictors still pay for what they did
// not foresee, so a key with a daily jump comes to prefer the cycle, and a
// level that has truly moved is followed within a few points.
func (a *auto) learnAnomalous(t time.Time, x, _ float64) { a.update(t, x, true) }

func (a *auto) update(t time.Time, x float64, anomalous bool) {
	raw := x
	if a.n == 0 {
		a.slow, a.loc, a.fast, a.dloc = x, x, x, 0
		if b := autoBucket(t); a.prof != nil && a.visits[b] >= 1 {
			a.dloc = x - a.prof[b]
		}
	}
	if a.n > 0 && a.run == 1 { // observe saw it differ from the point before
		a.varied++
	}
	// A run that ended is normal if it was not long enough to be called
	// stuck: only those teach the key how long its values may repeat.
	if a.run == 1 && !anomalous && a.ended > a.maxRun && a.ended < a.stuckLen() {
		a.maxRun = a.ended
	}
	p, cyc, wk := a.predictions(t, x)
	for i := range p {
		if i == predCycle && !cyc || i == predWeek && !wk {
			continue
		}
		r := x - p[i]
		if a.mseN[i] >= a.min {
			// Errors are clipped at the band, but never tighter than the
			// slow predictor's: a predictor that is exact on flat stretches
			// must still pay for the daily jump it did not see.
			lim := a.thf * max(a.rms(i), a.rms(predSlow))
			r = math.Max(-lim, math.Min(lim, r))
		}
		a.mseN[i]++
		w := math.Max(autoMSE, 1/float64(a.mseN[i]))
		a.mse[i] += w * (r*r - a.mse[i])
		if i == predSlow {
			// The longer of autoShiftHalf points and autoShiftTime.
			w := min(autoShiftLong, 1-math.Exp2(-float64(t.UnixNano()-a.last)/float64(autoShiftTime)))
			a.slowLong += math.Max(w, 1/float64(a.mseN[i])) * (r*r - a.slowLong)
		}
	}
	// Pick the predictor with the least error, switching only on a clear
	// (20 %) margin so a key does not flip between two near equals.
	best := a.pick
	for i := range p {
		margin := 0.8
		if i == predModes || best == predModes {
			margin = autoModesMargin
		}
		if a.mseN[i] >= a.min && a.mse[i] < margin*a.mse[best] {
			best = i
		}
	}
	if a.mseN[best] >= a.min {
		a.pick = best
	}
	if a.n > 0 && a.last != 0 {
		dt := math.Log(min(max(float64(t.UnixNano()-a.last)/1e9, 1e-3), 86400))
		if a.n == 1 || math.IsInf(a.lnDt, 1) {
			a.lnDt = dt
		} else {
			a.lnDt += autoMSE * (dt - a.lnDt)
		}
	}
	a.n++
	a.last = t.UnixNano()
	if anomalous && a.mseN[a.pick] >= a.min {
		// Clip to the band around what the predictor in use expected.
		lim := a.thf * a.rms(a.pick)
		x = math.Max(p[a.pick]-lim, math.Min(p[a.pick]+lim, x))
	}
	a.scale += math.Max(autoSlow, 1/float64(a.n)) * (math.Abs(raw-a.slow) - a.scale)
	a.slow += math.Max(autoSlow, 1/float64(a.n)) * (x - a.slow)
	a.loc += autoLocal * (x - a.loc)
	a.fast += autoFast * (x - a.fast)
	a.profile(t, x)
	if a.pick == predCycle && a.week == nil {
		a.week, a.wVis = make([]float32, autoWeekBkts), make([]uint8, autoWeekBkts)
	}
	a.weekly(t, x)
	a.learnModes(raw)
}

// nearest is the mode nearest to x in its own standard deviations (floored
// like rms); established keeps to modes that have taken minSamples points.
// -1: none.
func (a *auto) nearest(x float64, established bool) int {
	j, best := -1, math.Inf(1)
	for i := range a.modes {
		m := &a.modes[i]
		if m.n == 0 || established && m.n < a.min {
			continue
		}
		if d := math.Abs(x-m.mean) / a.modeSD(m); d < best {
			j, best = i, d
		}
	}
	return j
}

func (a *auto) modeSD(m *mode) float64 { return math.Sqrt(max(m.mse, 1e-4*a.scale*a.scale, 1e-12)) }

// learnModes folds x into the nearest mode within the band, or else starts
// a new mode at x in place of the one with the least recent share. A fault
// that lasts becomes a level of its own only after minSamples points.
func (a *auto) learnModes(x float64) {
	j := a.nearest(x, false)
	if j < 0 || math.Abs(x-a.modes[j].mean) > a.thf*a.modeSD(&a.modes[j]) {
		old := j
		j = 0
		for i := range a.modes {
			if a.modes[i].share < a.modes[j].share {
				j = i
			}
		}
		mse := 0.0
		if old >= 0 {
			mse = a.modes[old].mse
		}
		a.modes[j] = mode{mean: x, mse: mse}
	}
	for i := range a.modes {
		m := &a.modes[i]
		hit := 0.0
		if i == j {
			hit = 1
		}
		m.share += autoMSE * (hit - m.share)
	}
	m := &a.modes[j]
	if m.n < math.MaxInt32 {
		m.n++
	}
	w := math.Max(autoSlow, 1/float64(m.n))
	r := x - m.mean
	if m.n > 1 {
		m.mse += w * (r*r - m.mse)
	}
	m.mean += w * r
	a.mergeModes(j)
}

// autoMergeSD: two modes whose means are closer than this many of the
// wider one's standard deviations are one level split in two (each half
// of a Gaussian has a spread of 0.6 of the whole and means 1.6 apart, i.e.
// 2.7 of its own spread); they are merged, which frees a slot. Left split,
// the halves' spreads are too narrow for the level (a meter at its load
// fired at 3 of its true σ) and they crowd out the key's other level (its
// standby, which then fired when the meter switched off).
const autoMergeSD = 3.0

// mergeModes merges mode j with any mode that overlaps it: the merged
// level's mean and mean square error are those of the mixture, weighted by
// the modes' shares.
func (a *auto) mergeModes(j int) {
	m := &a.modes[j]
	for i := range a.modes {
		o := &a.modes[i]
		if i == j || o.n == 0 || math.Abs(o.mean-m.mean) >= autoMergeSD*max(a.modeSD(m), a.modeSD(o)) {
			continue
		}
		wm, wo := m.share, o.share
		if wm+wo <= 0 {
			wm, wo = 1, 1
		}
		wm, wo = wm/(wm+wo), wo/(wm+wo)
		mean := wm*m.mean + wo*o.mean
		d := m.mean - o.mean
		m.mse = wm*m.mse + wo*o.mse + wm*wo*d*d
		m.mean = mean
		m.share += o.share
		m.n = min(m.n+o.n, math.MaxInt32)
		*o = mode{}
	}
}

// profile folds points into the daily profile: the mean of each visit of a
// bucket moves that bucket's mean (halflife three visits), and the local
// mean of the point minus its phase follows within a few points.
func (a *auto) profile(t time.Time, x float64) {
	if a.prof == nil {
		a.prof, a.visits = make([]float64, autoBkts), make([]uint16, autoBkts)
	}
	b := autoBucket(t)
	if b != a.cur {
		if a.cur >= 0 && a.vN > 0 {
			m := a.vSum / float64(a.vN)
			if a.visits[a.cur] < math.MaxUint16 {
				a.visits[a.cur]++
			}
			a.prof[a.cur] += math.Max(autoDays, 1/float64(a.visits[a.cur])) * (m - a.prof[a.cur])
		}
		a.cur, a.vSum, a.vN = b, 0, 0
	}
	a.vSum += x
	a.vN++
	if a.visits[b] >= 1 {
		a.dloc += autoLocal * (x - a.prof[b] - a.dloc)
	}
}

// weekly folds the point's distance from its daily phase into the weekly
// correction, as profile does for the daily profile.
func (a *auto) weekly(t time.Time, x float64) {
	b := autoBucket(t)
	if a.week == nil || int(a.visits[b]) < autoWeekFrom {
		return
	}
	r := x - a.prof[b]
	h := autoWeekBucket(t)
	if h != a.wCur {
		if a.wCur >= 0 && a.wN > 0 {
			m := a.wSum / float64(a.wN)
			if a.wVis[a.wCur] < math.MaxUint8 {
				a.wVis[a.wCur]++
			}
			w := math.Max(autoDays, 1/float64(a.wVis[a.wCur]))
			a.week[a.wCur] += float32(w * (m - float64(a.week[a.wCur])))
		}
		a.wCur, a.wSum, a.wN = h, 0, 0
	}
	a.wSum += r
	a.wN++
	if int(a.wVis[h]) >= autoWeekMin {
		a.dwk += autoLocal * (r - float64(a.week[h]) - a.dwk)
	}
}

// reset is relearn: the key has been anomalous for relearn points in a
// row, so it starts again from scratch. (Keeping the daily profile and the
// predictors' errors across a relearn was tried: NAB 41.0 against 50.0.)
func (a *auto) reset() { *a = auto{thf: a.thf, min: a.min, cur: -1, wCur: -1, inBand: autoCrossGap} }

func (a *auto) encode(e *event.Enc) {
	e.Uvarint(uint64(a.n))
	e.Float(a.slow)
	e.Float(a.loc)
	e.Float(a.dloc)
	e.Float(a.scale)
	for i := range predWeek { // the predictors of version 3
		e.Float(a.mse[i])
		e.Uvarint(uint64(a.mseN[i]))
	}
	e.Uvarint(uint64(a.pick7()))
	e.Uvarint(uint64(len(a.prof)))
	for i := range a.prof {
		e.Float(a.prof[i])
		e.Uvarint(uint64(a.visits[i]))
	}
	e.Varint(int64(a.cur))
	e.Float(a.vSum)
	e.Uvarint(uint64(a.vN))
	e.Float(a.prev)
	e.Uvarint(uint64(a.run))
	e.Uvarint(uint64(a.ended))
	e.Uvarint(uint64(a.maxRun))
	e.Uvarint(uint64(a.varied))
	e.Float(a.hi)
	e.Float(a.lo)
	e.Float(a.rest)
	e.Float(a.restF)
	e.Float(a.cross)
	e.Bool(a.out)
	a.encodeModes(e)
	a.encodeWeek(e)
	a.encodeLong(e)
	// Version 6: the mean log interval.
	e.Float(a.lnDt)
	a.encodeInBand(e)
	a.encodeFast(e)
}

// encodeInBand: version 7's run of points inside the band.
func (a *auto) encodeInBand(e *event.Enc) { e.Uvarint(uint64(a.inBand)) }

// encodeFast: version 8's fast level mean, its error, and whether it is
// the predictor in use (the pick written earlier is one version 7 knew).
func (a *auto) encodeFast(e *event.Enc) {
	e.Float(a.fast)
	e.Float(a.mse[predFast])
	e.Uvarint(uint64(a.mseN[predFast]))
	e.Bool(a.pick == predFast)
}

// pick7 is the predictor in use as version 7 knew them: the local mean
// stands for the fast one.
func (a *auto) pick7() int {
	if a.pick == predFast {
		return predLocal
	}
	return a.pick
}

// The snapshot's later sections, each added by one version (the tests cut
// them off to write the older layouts).

// encodeModes: version 3's operating levels.
func (a *auto) encodeModes(e *event.Enc) {
	for _, m := range a.modes {
		e.Float(m.mean)
		e.Float(m.mse)
		e.Float(m.share)
		e.Uvarint(uint64(m.n))
	}
}

// encodeWeek: version 4's weekly correction and unrest statistics.
func (a *auto) encodeWeek(e *event.Enc) {
	e.Float(a.mse[predWeek])
	e.Uvarint(uint64(a.mseN[predWeek]))
	e.Uvarint(uint64(len(a.week)))
	for i := range a.week {
		e.Float(float64(a.week[i]))
		e.Uvarint(uint64(a.wVis[i]))
	}
	e.Varint(int64(a.wCur))
	e.Float(a.wSum)
	e.Uvarint(uint64(a.wN))
	e.Float(a.dwk)
	e.Float(a.unr)
	e.Float(a.unrS)
	e.Float(a.unrMu)
	e.Float(a.unrVar)
}

// encodeLong: version 5's long-run error of the slow predictor and the
// time of the last point.
func (a *auto) encodeLong(e *event.Enc) {
	e.Float(a.slowLong)
	e.Varint(a.last)
}

func (a *auto) decode(d *event.Dec) {
	a.decodeV7(d)
	a.fast = d.Float()
	a.mse[predFast] = d.Float()
	a.mseN[predFast] = int(min(d.Uvarint(), math.MaxInt32))
	if d.Bool() {
		a.pick = predFast
	}
}

// decodeV7 reads a snapshot of version 7, which had no fast level mean: it
// starts at the local mean and predicts once it has learned its error over
// minSamples points.
func (a *auto) decodeV7(d *event.Dec) {
	a.decodeV6(d)
	a.inBand = int(min(d.Uvarint(), autoCrossGap))
}

// decodeV6 reads a snapshot of version 6, which did not count the points
// inside the band: the run is taken as long enough, so the next crossing
// counts, as it did then.
func (a *auto) decodeV6(d *event.Dec) {
	a.decodeV5(d)
	a.lnDt = d.Float()
	a.inBand = autoCrossGap
}

// decodeV5 reads a snapshot of version 5, which had no mean interval: it
// is learned again from the next interval.
func (a *auto) decodeV5(d *event.Dec) {
	a.decodeV4(d)
	a.slowLong = d.Float()
	a.last = d.Varint()
}

// decodeV4 reads a snapshot of version 4, which had no long-run error of
// the slow predictor: it starts from the recent one (and the time of the
// last point at zero, so the next point weighs by autoShiftHalf).
func (a *auto) decodeV4(d *event.Dec) {
	a.decodeBase(d)
	a.decodeModes(d)
	a.mse[predWeek] = d.Float()
	a.mseN[predWeek] = int(d.Uvarint())
	if n := d.Len(); n > 0 {
		if n != autoWeekBkts {
			d.Err = event.ErrCorrupt
			return
		}
		a.week, a.wVis = make([]float32, n), make([]uint8, n)
		for i := 0; i < n && d.Err == nil; i++ {
			a.week[i] = float32(d.Float())
			a.wVis[i] = uint8(min(d.Uvarint(), math.MaxUint8))
		}
	}
	a.wCur = int(d.Varint())
	if a.wCur < -1 || a.wCur >= autoWeekBkts || a.pick == predWeek && a.week == nil {
		d.Err = event.ErrCorrupt
		return
	}
	a.wSum = d.Float()
	a.wN = int(d.Uvarint())
	a.dwk = d.Float()
	a.unr = d.Float()
	a.unrS = d.Float()
	a.unrMu = d.Float()
	a.unrVar = d.Float()
}

// decodeV3 reads a snapshot of version 3, which had no weekly correction:
// it is learned again (allocated once the daily profile predicts best).
func (a *auto) decodeV3(d *event.Dec) {
	a.decodeBase(d)
	a.decodeModes(d)
	if a.pick == predWeek {
		d.Err = event.ErrCorrupt
	}
}

func (a *auto) decodeModes(d *event.Dec) {
	for i := range a.modes {
		m := &a.modes[i]
		m.mean = d.Float()
		m.mse = d.Float()
		m.share = d.Float()
		m.n = int(min(d.Uvarint(), math.MaxInt32))
	}
}

// decodeV2 reads a snapshot of version 2 (or 1), which had no operating
// levels: they are learned again from the next points.
func (a *auto) decodeV2(d *event.Dec) {
	a.decodeBase(d)
	if a.pick == predWeek {
		d.Err = event.ErrCorrupt
	}
}

// decodeBase reads what every version holds, and clears the rest.
func (a *auto) decodeBase(d *event.Dec) {
	a.modes = [autoModes]mode{}
	a.mse[predWeek], a.mseN[predWeek] = 0, 0
	a.mse[predFast], a.mseN[predFast] = 0, 0
	a.week, a.wVis, a.wCur, a.wSum, a.wN, a.dwk = nil, nil, -1, 0, 0, 0
	a.unr, a.unrS, a.unrMu, a.unrVar = 0, 0, 0, 0
	a.n = int(d.Uvarint())
	a.slow = d.Float()
	a.loc = d.Float()
	a.fast = a.loc
	a.dloc = d.Float()
	a.scale = d.Float()
	for i := range predWeek {
		a.mse[i] = d.Float()
		a.mseN[i] = int(d.Uvarint())
	}
	a.pick = int(d.Uvarint())
	a.slowLong, a.last, a.lnDt = a.mse[predSlow], 0, math.Inf(1)
	if a.pick >= predFast { // version 8 says the fast one in its own section
		d.Err = event.ErrCorrupt
		return
	}
	a.prof, a.visits = nil, nil
	if n := d.Len(); n > 0 {
		if n != autoBkts {
			d.Err = event.ErrCorrupt
			return
		}
		a.prof, a.visits = make([]float64, n), make([]uint16, n)
		for i := 0; i < n && d.Err == nil; i++ {
			a.prof[i] = d.Float()
			a.visits[i] = uint16(min(d.Uvarint(), math.MaxUint16))
		}
	}
	a.cur = int(d.Varint())
	if a.cur < -1 || a.cur >= autoBkts {
		d.Err = event.ErrCorrupt
		return
	}
	a.vSum = d.Float()
	a.vN = int(d.Uvarint())
	a.prev = d.Float()
	a.run = int(d.Uvarint())
	a.ended = int(d.Uvarint())
	a.maxRun = int(d.Uvarint())
	a.varied = int(d.Uvarint())
	a.hi = d.Float()
	a.lo = d.Float()
	a.rest = d.Float()
	a.restF = d.Float()
	a.cross = d.Float()
	a.out = d.Bool()
	a.inBand = autoCrossGap
}
