package detect_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// TestAutoStuck: a sensor that has never repeated a value for long (noise
// at three decimals) and then repeats one: the default fires within ten
// points, says why, and stays quiet on the noise before.
func TestAutoStuck(t *testing.T) {
	xs := noise(5, 2000, 20, 0.5)
	for i := range xs {
		xs[i] = math.Round(xs[i]*1000) / 1000
	}
	for i := 1500; i < 1600; i++ {
		xs[i] = xs[1499]
	}
	rs := feed(mustNew(t, "", nil), "k", xs)
	if len(rs) == 0 || rs[0].State != event.Firing {
		t.Fatalf("no firing: %v", rs)
	}
	f := rs[0]
	if f.Time.Before(minute(1500)) || f.Time.After(minute(1510)) {
		t.Fatalf("fired at %v, want within 10 points of %v", f.Time, minute(1500))
	}
	if r := f.Values["reason"].(string); !strings.HasPrefix(r, "stuck:") || f.Values["method"] != "auto" {
		t.Fatalf("values %v", f.Values)
	}
}

// TestAutoDailyCycle: five-minute data with a daily cycle of ±5 and noise
// 0.3. After its first day the default must stay quiet (it learns the
// cycle and scores against it) and then catch a dip of 3 at the daily
// peak, which would be an ordinary value at another hour.
func TestAutoDailyCycle(t *testing.T) {
	const perDay = 24 * 12
	xs := noise(9, 6*perDay, 20, 0.3)
	dip := 5*perDay + 6*12 // day 5, 06:00, the peak
	for i := range xs {
		xs[i] += 5 * math.Sin(2*math.Pi*float64(i)/perDay)
	}
	xs[dip] -= 3
	d := mustNew(t, "", nil)
	var rs []event.Result
	for i, x := range xs {
		e := &event.Event{Time: t0.Add(time.Duration(i) * 5 * time.Minute), Seq: uint64(i), Fields: map[string]any{"v": x}}
		d.Add("k", e)
		for _, r := range d.Advance(e.Time) {
			if i >= perDay && r.State == event.Firing {
				rs = append(rs, r)
			}
		}
	}
	if len(rs) != 1 || !rs[0].Time.Equal(t0.Add(time.Duration(dip)*5*time.Minute)) {
		t.Fatalf("want one firing after day 1, at the dip; got %v", rs)
	}
	if v := rs[0].Values; v["low"].(float64) <= v["value"].(float64) || v["high"].(float64) <= v["expected"].(float64) {
		t.Fatalf("the dip is not below the band: %v", v)
	}
}

// TestAutoLevelShift: a sustained shift of 3σ (no point near the 5σ
// threshold) is caught by the level-shift test within the hour.
func TestAutoLevelShift(t *testing.T) {
	xs := noise(13, 3000, 50, 1)
	for i := 2000; i < 3000; i++ {
		xs[i] += 3
	}
	rs := feed(mustNew(t, "", nil), "k", xs)
	if len(rs) == 0 || rs[0].Time.Before(minute(2000)) || rs[0].Time.After(minute(2060)) {
		t.Fatalf("want a firing within 60 points of the shift at %v, got %v", minute(2000), rs)
	}
	if r := rs[0].Values["reason"].(string); !strings.HasPrefix(r, "level shift") && !strings.Contains(r, "σ above") {
		t.Fatalf("reason %q", r)
	}
}

// TestAutoSwitchingSignal: a meter that switches between standby (4 W) and
// a load (1,500 W) every few minutes, at one reading a second. Each switch
// is far outside the band learned between switches, but it is what the
// meter does: once the key has seen it happen more than once per 1,000
// points, its band widens and the switching stops firing. A reading far
// beyond both levels still fires.
func TestAutoSwitchingSignal(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 1))
	xs := make([]float64, 30000)
	on := false
	for i := range xs {
		if r.Float64() < 1.0/200 {
			on = !on
		}
		xs[i] = 4 + 0.3*r.NormFloat64()
		if on {
			xs[i] = 1500 * (1 + 0.02*r.NormFloat64())
		}
		xs[i] = math.Round(xs[i]*10) / 10
	}
	xs[29000] = 9000
	d := mustNew(t, "", nil)
	var late []event.Result
	for i, x := range xs {
		e := &event.Event{Time: t0.Add(time.Duration(i) * time.Second), Seq: uint64(i), Fields: map[string]any{"v": x}}
		d.Add("k", e)
		for _, res := range d.Advance(e.Time) {
			if i >= 15000 && res.State == event.Firing {
				late = append(late, res)
			}
		}
	}
	spike := false
	for _, f := range late {
		spike = spike || f.Time.Equal(t0.Add(29000*time.Second))
	}
	if !spike {
		t.Fatalf("the 9,000 W reading did not fire: %v", late)
	}
	if len(late) > 3 {
		t.Errorf("%d firings in the second half, want the spike and at most two switches", len(late))
	}
}

// TestAutoRestingValue: a counter that sits at 0 between bursts, often for
// long stretches, is not stuck at 0; the same counter stuck at a burst's
// value is.
func TestAutoRestingValue(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	var xs []float64
	for len(xs) < 6000 {
		for range 20 + r.IntN(150) { // resting
			xs = append(xs, 0)
		}
		for range 5 + r.IntN(30) { // a burst
			xs = append(xs, math.Round(50+10*r.NormFloat64()))
		}
	}
	for range 100 {
		xs = append(xs, 57)
	}
	found := false
	for _, res := range feed(mustNew(t, "", nil), "k", xs) {
		if res.State != event.Firing {
			continue
		}
		reason := res.Values["reason"].(string)
		if strings.HasPrefix(reason, "stuck") && res.Values["value"] == 0.0 {
			t.Errorf("resting at 0 called stuck at %v: %s", res.Time, reason)
		}
		found = found || (res.Values["value"] == 57.0 && strings.HasPrefix(reason, "stuck"))
	}
	if !found {
		t.Error("stuck at 57 did not fire")
	}
}

// TestAutoSwitchingLevels: the meter of TestAutoSwitchingSignal, and a
// step of +300 W (ten of the load's standard deviations, a fifth of the
// band a mean over both levels would need) while it is on. The default
// scores the key against the level it is at, so it fires at the step's
// start, and the switching before stays quiet.
func TestAutoSwitchingLevels(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 1))
	xs := make([]float64, 26000)
	on := false
	for i := range xs {
		if r.Float64() < 1.0/200 {
			on = !on
		}
		if i >= 25000 {
			on = true
		}
		xs[i] = 4 + 0.3*r.NormFloat64()
		if on {
			xs[i] = 1500 * (1 + 0.02*r.NormFloat64())
		}
		if i >= 25500 && i < 25800 {
			xs[i] += 300
		}
		xs[i] = math.Round(xs[i]*10) / 10
	}
	var late []event.Result
	for _, res := range feed(mustNew(t, "", nil), "k", xs) {
		if res.State == event.Firing && !res.Time.Before(minute(15000)) {
			late = append(late, res)
		}
	}
	if len(late) == 0 || late[0].Time.Before(minute(25500)) || late[0].Time.After(minute(25510)) {
		t.Fatalf("want the first firing after warm-up within 10 points of the step at %v, got %v", minute(25500), late)
	}
	if v := late[0].Values; math.Abs(v["expected"].(float64)-1500) > 100 {
		t.Errorf("expected %v, want the load's level (1,500)", v["expected"])
	}
}

// TestAutoMeterLevelsStayWhole: meters at one reading a second (on for
// 300 s and off for 180 s on average, as firmware-sim's), twenty of them
// for twelve hours each, with no fault. A load is one level with a spread
// of 2 %; learned in two halves, each half's spread was too narrow (the
// load fired at 3 of its true σ) and the halves crowded the standby level
// out (the meter then fired when it switched off): 55 firings after the
// first hour. Overlapping levels are merged: what is left is the Gaussian
// tail beyond 4.75 σ (about one in a million load readings).
func TestAutoMeterLevelsStayWhole(t *testing.T) {
	var late []string
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 3))
		level := 800 + 1200*r.Float64()
		on := r.IntN(2) == 0
		d := mustNew(t, "", nil)
		for i := range 12 * 3600 {
			if u := r.Float64(); (on && u < 1.0/300) || (!on && u < 1.0/180) {
				on = !on
			}
			x := max(0, 4+0.3*r.NormFloat64())
			if on {
				x = level * (1 + 0.02*r.NormFloat64())
			}
			e := &event.Event{Time: t0.Add(time.Duration(i) * time.Second), Seq: uint64(i), Fields: map[string]any{"v": math.Round(x*10) / 10}}
			d.Add("k", e)
			for _, res := range d.Advance(e.Time) {
				if i >= 3600 && res.State == event.Firing {
					late = append(late, res.Values["reason"].(string))
				}
			}
		}
	}
	if len(late) > 3 {
		t.Errorf("%d firings after the first hour on 20 clean meters, want at most 3: %q", len(late), late)
	}
}

// TestAutoWeeklyPattern: half-hourly data with a daily cycle on weekdays
// (a morning and an evening peak) and a flat, lower weekend: a taxi
// service's week. After four weeks a Wednesday that looks like a Sunday
// (a holiday) fires, while the weekends before it, which a daily profile
// alone would score against the weekdays, never do.
func TestAutoWeeklyPattern(t *testing.T) {
	const perDay = 48
	r := rand.New(rand.NewPCG(4, 4))
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday
	day := func(i int, weekend bool) float64 {
		h := float64(i%perDay) / 2
		if weekend {
			return 20 + 3*math.Sin(2*math.Pi*(h-9)/24)
		}
		return 30 + 15*math.Exp(-(h-8)*(h-8)/4) + 12*math.Exp(-(h-18)*(h-18)/6) - 10*math.Exp(-(h-3)*(h-3)/8)
	}
	holiday := 5*7 + 2 // the sixth Wednesday
	var fired []time.Time
	d := mustNew(t, "", nil)
	for i := range 6 * 7 * perDay {
		dn := i / perDay
		weekend := dn%7 >= 5 || dn == holiday
		x := day(i, weekend) + 0.8*r.NormFloat64()
		e := &event.Event{Time: start.Add(time.Duration(i) * 30 * time.Minute), Seq: uint64(i), Fields: map[string]any{"v": x}}
		d.Add("k", e)
		for _, res := range d.Advance(e.Time) {
			if dn >= 21 && res.State == event.Firing {
				fired = append(fired, res.Time)
			}
		}
	}
	if len(fired) != 1 || fired[0].Before(start.AddDate(0, 0, holiday)) || !fired[0].Before(start.AddDate(0, 0, holiday+1)) {
		t.Fatalf("want one firing after week 3, on the holiday (%s); got %v", start.AddDate(0, 0, holiday).Format("Mon 2 Jan"), fired)
	}
}

// TestAutoDailyOnlyStaysQuiet: five weeks of a daily cycle with no weekly
// pattern (five-minute data, the level jumping at 09:00 and 21:00, as
// NAB's art_daily files): the weekly correction must not make the key fire
// once it predicts. (With one week's visit it did: the first week's
// distances were from a daily profile still being learned.)
func TestAutoDailyOnlyStaysQuiet(t *testing.T) {
	const perDay = 24 * 12
	for seed := uint64(1); seed <= 3; seed++ {
		xs := noise(seed, 35*perDay, 20, 1)
		for i := range xs {
			if h := i % perDay / 12; h >= 9 && h < 21 {
				xs[i] += 60 // a day shift: the level jumps at 09:00 and 21:00
			}
		}
		d := mustNew(t, "", nil)
		for i, x := range xs {
			e := &event.Event{Time: t0.Add(time.Duration(i) * 5 * time.Minute), Seq: uint64(i), Fields: map[string]any{"v": x}}
			d.Add("k", e)
			for _, r := range d.Advance(e.Time) {
				if i >= 2*perDay && r.State == event.Firing {
					t.Errorf("seed %d: fired on day %d: %v", seed, i/perDay, r.Values["reason"])
				}
			}
		}
	}
}

// TestAutoUnrest: noise, then twenty points that each stray 3σ (below the
// band, so no point fires) but together far more than the key ever does:
// the key fires once, saying why. The noise before stays quiet.
func TestAutoUnrest(t *testing.T) {
	xs := noise(12, 4000, 50, 1)
	for i := 3000; i < 3020; i++ {
		xs[i] = 50 + 3*float64(1-2*(i%2)) + 0.1*xs[i] - 5
	}
	var fired []event.Result
	for _, r := range feed(mustNew(t, "", nil), "k", xs) {
		if r.State == event.Firing {
			fired = append(fired, r)
		}
	}
	if len(fired) != 1 || fired[0].Time.Before(minute(3000)) || fired[0].Time.After(minute(3020)) {
		t.Fatalf("want one firing within the 20 restless points at %v, got %v", minute(3000), fired)
	}
	if r := fired[0].Values["reason"].(string); !strings.HasPrefix(r, "unsettled: ") {
		t.Errorf("reason %q", r)
	}
}

// TestAutoUnrestHeavyTails: clean noise with heavy tails (log-normal,
// Student t with 3 degrees of freedom, counts with bursts over a daily
// cycle), five keys of 20,000 points each: the unrest test must not read
// the tails as unrest (reported as "unsettled", or as a level shift when
// one-sided; without the test no level shift fires here).
func TestAutoUnrestHeavyTails(t *testing.T) {
	gens := map[string]func(r *rand.Rand, i int) float64{
		"log-normal": func(r *rand.Rand, _ int) float64 { return math.Exp(1 + 0.8*r.NormFloat64()) },
		"t3": func(r *rand.Rand, _ int) float64 {
			c := 0.0
			for range 3 {
				n := r.NormFloat64()
				c += n * n
			}
			return 10 + r.NormFloat64()/math.Sqrt(c/3)
		},
		"bursty counts": func(r *rand.Rand, i int) float64 {
			lam := 20 + 10*math.Sin(2*math.Pi*float64(i)/288)
			if r.Float64() < 0.02 {
				lam *= 1 + 3*r.Float64()
			}
			return math.Round(lam + math.Sqrt(lam)*r.NormFloat64())
		},
	}
	for name, g := range gens {
		unsettled := 0
		for seed := uint64(1); seed <= 5; seed++ {
			r := rand.New(rand.NewPCG(seed, 9))
			xs := make([]float64, 20000)
			for i := range xs {
				xs[i] = g(r, i)
			}
			for _, res := range feed(mustNew(t, "", nil), "k", xs) {
				r := res.Values["reason"].(string)
				if res.State == event.Firing && (strings.HasPrefix(r, "unsettled") || strings.HasPrefix(r, "level shift")) {
					unsettled++
				}
			}
		}
		if unsettled > 3 {
			t.Errorf("%s: %d firings for unrest or a level shift on clean noise, want at most 3", name, unsettled)
		}
	}
}

// TestAutoStuckWhileFiring: a sensor that sticks while its key still fires
// for a spike is a new fault: the spike's firing is resolved (saying why)
// and a stuck one opens at the point the run is called stuck. A second
// stuck run during that stuck firing opens nothing new, and a restore in
// the middle of the stuck firing remembers it (else that second run would
// open one).
func TestAutoStuckWhileFiring(t *testing.T) {
	xs := noise(5, 2000, 20, 0.5)
	for i := range xs {
		xs[i] = math.Round(xs[i]*1000) / 1000
	}
	xs[1400] += 20
	for i := 1450; i < 1550; i++ {
		xs[i] = xs[1449]
	}
	for i := 1570; i < 1670; i++ {
		xs[i] = xs[1569]
	}
	rs := feed(mustNew(t, "", nil), "k", xs)
	if len(rs) != 4 {
		t.Fatalf("%d results, want firing, resolved, firing, resolved: %v", len(rs), rs)
	}
	want := []struct {
		st     event.State
		reason string
	}{{event.Firing, "σ above"}, {event.Resolved, "ended by a new anomaly: the sensor is stuck"}, {event.Firing, "stuck:"}, {event.Resolved, "back to normal"}}
	for i, w := range want {
		if rs[i].State != w.st || !strings.Contains(rs[i].Values["reason"].(string), w.reason) {
			t.Fatalf("result %d: %s %q, want %s %q…", i, rs[i].State, rs[i].Values["reason"], w.st, w.reason)
		}
	}
	if !rs[0].Time.Equal(minute(1400)) || rs[1].Time.Before(minute(1450)) || rs[1].Time.After(minute(1460)) || !rs[2].Time.Equal(rs[1].Time) {
		t.Fatalf("times %v %v %v", rs[0].Time, rs[1].Time, rs[2].Time)
	}
	if rs[3].Time.Before(minute(1670)) {
		t.Fatalf("resolved at %v, inside the second stuck run", rs[3].Time)
	}

	a := mustNew(t, "", nil)
	got := feed(a, "k", xs[:1500])
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b := mustNew(t, "", nil)
	if err := b.Restore(snap); err != nil {
		t.Fatal(err)
	}
	for i := 1500; i < len(xs); i++ {
		b.Add("k", ev(i, xs[i]))
		got = append(got, b.Advance(minute(i))...)
	}
	if len(got) != len(rs) {
		t.Fatalf("restored mid-firing: %d results, want %d", len(got), len(rs))
	}
}

// TestAutoSlowWanderStaysQuiet: a machine's heat output following its load
// with a lag (the load wanders with a half-hour time constant), read once a
// second with little noise. Its swings after quiet stretches are its
// ordinary wander: the level-shift test, scaled by the slow predictor's
// long-run spread (hours, not its last 500 points), calls few of them
// shifts: 5 in these 66 hours, against 15 with the recent spread alone and
// 9 with a long run of 1,500 points (25 minutes). Not yet none: the
// issue's target of one a device-week is not met at 1 Hz.
func TestAutoSlowWanderStaysQuiet(t *testing.T) {
	const n = 12 * 3600
	fired := 0
	for seed := uint64(1); seed <= 6; seed++ {
		heat := machineHeat(rand.New(rand.NewPCG(seed, 18)), 1)
		d := mustNew(t, "", nil)
		for i := range n {
			x := math.Round(heat()*100) / 100
			e := &event.Event{Time: t0.Add(time.Duration(i) * time.Second), Seq: uint64(i), Fields: map[string]any{"v": x}}
			d.Add("k", e)
			for _, res := range d.Advance(e.Time) {
				if res.State == event.Firing && i >= 3600 {
					fired++
					t.Logf("seed %d: %s at %ds: %s", seed, res.State, i, res.Values["reason"])
				}
			}
		}
	}
	if fired > 5 {
		t.Fatalf("%d firings on 66 hours of wandering heat, want at most 5", fired)
	}
}

// TestAutoSpikeBurst: NAB's art_increase_spike_density, rebuilt: a key at
// rest (0) with a spike of 20 at points 0 and 6 of every 100, one every 5
// minutes, which the band-crossing guard learns to pass, then three more
// spikes in 11 points (2005, 2010, 2015). The unrest test measures the
// points against the band before the guard widens it, so the burst is
// called unsettled at every threshold from 4.75 to 5; measured against the
// widened band it was caught at 4.75 only.
func TestAutoSpikeBurst(t *testing.T) {
	start := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return start.Add(time.Duration(i) * 5 * time.Minute) }
	xs := make([]float64, 4032)
	for i := range xs {
		if i%100 == 0 || i%100 == 6 || i == 2005 || i == 2010 || i == 2015 {
			xs[i] = 20
		}
	}
	for _, th := range []float64{4.75, 4.9, 5} {
		d := mustNew(t, "", map[string]any{"threshold": th})
		var fired []event.Result
		for i, x := range xs {
			d.Add("k", &event.Event{Time: at(i), Seq: uint64(i), Fields: map[string]any{"v": x}})
			for _, r := range d.Advance(at(i)) {
				if r.State == event.Firing && i >= 1800 && i < 2100 {
					fired = append(fired, r)
				}
			}
		}
		if len(fired) != 1 || fired[0].Time.Before(at(2005)) || fired[0].Time.After(at(2020)) {
			t.Errorf("threshold %v: want one firing in the burst at %v, got %v", th, at(2005), fired)
		}
	}
}

// TestAutoFastCleanStaysQuiet: a week of Gaussian noise at one point a
// second (604,800 points), as a 1 Hz sensor sends it. With a minute key's
// band it fires every few hundred thousand points (a Gaussian tail beyond
// 4.75 σ); widened for its rate, at most once.
func TestAutoFastCleanStaysQuiet(t *testing.T) {
	if testing.Short() {
		t.Skip("a week at 1 Hz")
	}
	xs := noise(21, 7*24*3600, 20, 0.5)
	d := mustNew(t, "", nil)
	fired := 0
	for i, x := range xs {
		at := t0.Add(time.Duration(i) * time.Second)
		d.Add("k", &event.Event{Time: at, Seq: uint64(i), Fields: map[string]any{"v": x}})
		for _, r := range d.Advance(at) {
			if r.State == event.Firing {
				fired++
			}
		}
	}
	if fired > 1 {
		t.Errorf("%d firings on a clean week at 1 Hz, want at most 1", fired)
	}
}

// TestAutoShiftOnFaultyKey: a key with a 10 σ spike every 150 points (its
// band crossed far more often than once per 1,000 points, so the crossing
// guard widens the band about √(1,000/150) ≈ 2.6 times) then shifts by 4 of its noise's
// σ. The point test does not see the shift through that band, but the
// level-shift test, not damped by the guard, does within its first 100
// points.
func TestAutoShiftOnFaultyKey(t *testing.T) {
	xs := noise(8, 4000, 20, 0.5)
	for i := 75; i < len(xs); i += 150 {
		xs[i] += 5
	}
	for i := 3000; i < 3300; i++ {
		xs[i] += 2
	}
	var fired []event.Result
	for _, r := range feed(mustNew(t, "", nil), "k", xs) {
		if r.State == event.Firing && !r.Time.Before(minute(3000)) && r.Time.Before(minute(3100)) {
			fired = append(fired, r)
		}
	}
	if len(fired) == 0 {
		t.Fatalf("want a firing for the shift at %v", minute(3000))
	}
	if r := fired[0].Values["reason"].(string); !strings.HasPrefix(r, "level shift") {
		t.Errorf("reason %q, want a level shift", r)
	}
}

// TestAutoMeterFaultsAmongFaults: a power meter at one reading a minute
// (standby 4 W, a load of 1,500 W ± 2 %, switching every few minutes) with a
// fault every six hours for twelve days, alternating: a three-hour level
// shift of +500 W, then a two-reading spike of +1,000 W (33 of the load's
// σ). A spike is scored in the spread of the level it is nearest: scored in
// the modes predictor's own error, which every earlier fault had widened,
// most spikes read as 4 σ. And a three-hour shift must not restart the key
// (the common relearn, 120 points, did: the key then came back blind).
func TestAutoMeterFaultsAmongFaults(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 1))
	on := false
	d := mustNew(t, "", nil)
	const day = 24 * 60
	spikes, found := 0, 0
	for i := range 12 * day {
		if u := r.Float64(); (on && u < 0.18) || (!on && u < 0.28) {
			on = !on
		}
		x := max(0, 4+0.3*r.NormFloat64())
		if on {
			x = 1500 * (1 + 0.02*r.NormFloat64())
		}
		ph := i % (12 * 60) // a fault pair every twelve hours, from day two
		switch {
		case i >= 2*day && ph < 180:
			x += 500
		case i >= 2*day && ph >= 360 && ph < 362:
			if ph == 360 {
				spikes++
			}
			x += 1000
		}
		e := &event.Event{Time: minute(i), Seq: uint64(i), Fields: map[string]any{"v": math.Round(x*10) / 10}}
		d.Add("k", e)
		for _, res := range d.Advance(e.Time) {
			if res.State == event.Firing && i >= 2*day && ph >= 360 && ph < 372 {
				found++
			}
		}
	}
	if found < spikes*9/10 {
		t.Errorf("%d of %d spikes found, want at least 90 %%", found, spikes)
	}
}

// TestAutoRefiresForANewFault: a key fires for a spike and waits out
// clear (150 points) before it resolves. A second strong spike (twice the
// threshold) after 60 or more points back within the band is a new fault:
// the open firing resolves and a new one fires at that point. Sooner, or
// weaker, it is taken for the first fault flapping: no new firing.
func TestAutoRefiresForANewFault(t *testing.T) {
	cases := []struct {
		name   string
		gap    int     // normal points between the spikes
		size   float64 // the second spike, in the noise's σ
		refire bool
	}{
		{"strong, after 80 points", 80, 40, true},
		{"strong, after 60 points", 60, 40, true},
		{"strong, after 30 points", 30, 40, false},
		{"weak, after 80 points", 80, 7, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 5))
			d := mustNew(t, "", nil)
			first := 600
			second := first + 1 + c.gap
			var got []string
			for i := range second + 10 {
				x := 20 + r.NormFloat64()
				switch i {
				case first:
					x = 60
				case second:
					x = 20 + c.size
				}
				e := &event.Event{Time: minute(i), Seq: uint64(i), Fields: map[string]any{"v": x}}
				d.Add("k", e)
				for _, res := range d.Advance(e.Time) {
					got = append(got, fmt.Sprintf("%d %s", i, res.State))
				}
			}
			want := []string{fmt.Sprintf("%d firing", first)}
			if c.refire {
				want = append(want, fmt.Sprintf("%d resolved", second), fmt.Sprintf("%d firing", second))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("alerts %q, want %q", got, want)
			}
		})
	}
}

// TestAutoStepOnSmoothWander: a machine's heat at one reading a minute
// (noise 0.05 on a level that follows the load over half an hour, its
// wander's σ about 2), with a two-reading spike of +8 a day, and a level
// shift of +5 for three hours on days 6 and 8. The local mean's error on
// such a key is mostly its lag, and the spikes widen it further; the fast
// mean (halflife 4 points) predicts it best, and in its narrower band the
// shift stands out. Without the fast mean (its halflife set to the local
// mean's) 9 of these 12 shifts were found; with it, all.
func TestAutoStepOnSmoothWander(t *testing.T) {
	const day = 24 * 60
	found, shifts := 0, 0
	for seed := uint64(1); seed <= 6; seed++ {
		heat := machineHeat(rand.New(rand.NewPCG(seed, 60)), 60)
		d := mustNew(t, "", nil)
		shifted := func(i int) bool { return i >= 6*day && i < 6*day+180 || i >= 8*day && i < 8*day+180 }
		hit := map[int]bool{}
		for i := range 9 * day {
			x := heat()
			if i%day == 720 || i%day == 721 {
				x += 8
			}
			if shifted(i) {
				x += 5
			}
			x = math.Round(x*100) / 100
			e := &event.Event{Time: minute(i), Seq: uint64(i), Fields: map[string]any{"v": x}}
			d.Add("k", e)
			for _, res := range d.Advance(e.Time) {
				if res.State == event.Firing && shifted(i) {
					hit[i/day] = true
				}
			}
		}
		found += len(hit)
		shifts += 2
	}
	t.Logf("%d of %d level shifts found", found, shifts)
	if found < shifts {
		t.Fatalf("%d of %d level shifts on a smooth wandering key found, want all", found, shifts)
	}
}

// TestAutoHoldsAShiftedLevel: a key at 20 ± 0.5 whose level shifts by +5
// (10 σ) for 600 points and comes back, then shifts for good. The band
// follows the new level within a few points, so its points soon read as
// normal; the firing stays open while the level stays away from where it
// was (autoHold) and resolves once it is back. A shift that stays is taken
// as the new normal after relearn points more, and the alert says so.
// Without the hold the first firing resolved about 240 points into the
// shift.
func TestAutoHoldsAShiftedLevel(t *testing.T) {
	xs := noise(3, 8000, 20, 0.5)
	for i := 2000; i < 2600; i++ {
		xs[i] += 5
	}
	for i := 5600; i < len(xs); i++ {
		xs[i] += 5
	}
	rs := feed(mustNew(t, "", nil), "k", xs)
	if len(rs) != 4 {
		t.Fatalf("%d results, want firing, resolved for each shift: %v", len(rs), rs)
	}
	if rs[0].State != event.Firing || rs[0].Time.Before(minute(2000)) || rs[0].Time.After(minute(2010)) {
		t.Fatalf("first result %s at %v, want a firing at the shift (%v)", rs[0].State, rs[0].Time, minute(2000))
	}
	if r := rs[1]; r.State != event.Resolved || r.Time.Before(minute(2600)) || r.Time.After(minute(2600+150+50)) ||
		!strings.HasPrefix(r.Values["reason"].(string), "back to normal") {
		t.Fatalf("second result %s at %v (%v), want resolved back to normal after the level came back (%v) and clear points", r.State, r.Time, r.Values["reason"], minute(2600))
	}
	if rs[2].State != event.Firing || rs[2].Time.Before(minute(5600)) || rs[2].Time.After(minute(5610)) {
		t.Fatalf("third result %s at %v, want a firing at the second shift (%v)", rs[2].State, rs[2].Time, minute(5600))
	}
	// Held for relearn (1,440) points after clear (150) and the points
	// the band took to follow (about 100 here).
	if r := rs[3]; r.State != event.Resolved || r.Time.Before(minute(5600+150+1440)) || r.Time.After(minute(5600+150+1440+200)) ||
		!strings.HasPrefix(r.Values["reason"].(string), "taken as the new normal") {
		t.Fatalf("fourth result %s at %v (%v), want the new level taken as normal about %v", r.State, r.Time, r.Values["reason"], minute(5600+150+1440))
	}
}

// machineHeat returns a machine's heat output read every dt seconds, as the
// simulator's heat sensor: the load wanders (Ornstein–Uhlenbeck, a
// half-hour time constant, σ 0.2 around 0.6), the heat follows it with a
// five-minute lag, and each reading has noise of 0.05.
func machineHeat(r *rand.Rand, dt float64) func() float64 {
	keep := math.Exp(-dt / 1800)
	step, lag := math.Sqrt(1-keep*keep), 1-math.Exp(-dt/300)
	load, heat := 0.6, 10.0
	return func() float64 {
		load = min(1, max(0, 0.6+keep*(load-0.6)+step*0.2*r.NormFloat64()))
		heat += lag * (4 + 10*load - heat)
		return heat + 0.05*r.NormFloat64()
	}
}
