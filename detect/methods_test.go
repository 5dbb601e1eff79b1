package detect

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

func minute(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestModelsHandComputed checks each method's expected value and score
// against numbers worked out by hand (comments show the arithmetic).
func TestModelsHandComputed(t *testing.T) {
	cases := []struct {
		name          string
		method        string
		params        map[string]any
		learn         []float64
		x             float64
		expected, got float64
	}{
		// mean 3, sample sd sqrt(10/4)=1.58114, (10-3)/1.58114
		{"zscore", "zscore", map[string]any{"min_samples": 2}, []float64{1, 2, 3, 4, 5}, 10, 3, 7 / math.Sqrt(2.5)},
		// median 3, |dev| = 2 1 0 1 97 → MAD 1, σ̂ = 1.4826, (10-3)/1.4826
		{"mad odd", "mad", map[string]any{"min_samples": 2}, []float64{1, 2, 3, 4, 100}, 10, 3, 7 / 1.4826},
		// median (2+3)/2 = 2.5, |dev| = 1.5 .5 .5 1.5 → MAD 1, (0-2.5)/1.4826
		{"mad even", "mad", map[string]any{"min_samples": 2}, []float64{4, 1, 3, 2}, 0, 2.5, -2.5 / 1.4826},
		// |dev| = 0 0 0 0 4 → MAD 0, mean |dev| 0.8 → σ̂ = 1.2533·0.8, (7-5)/1.00264
		{"mad zero", "mad", map[string]any{"min_samples": 2}, []float64{5, 5, 5, 5, 9}, 7, 5, 2 / (1.2533 * 0.8)},
		// alpha .5 with plain mean while n < 1/alpha:
		// 1 → m=1 v=0; 2 → m=1.5 v=.25; 3 → m=2.25 v=.5(.25+1.5·.75)=.6875
		{"ewma", "ewma", map[string]any{"alpha": 0.5, "min_samples": 2}, []float64{1, 2, 3}, 5, 2.25, 2.75 / math.Sqrt(0.6875)},
		// halflife 2m in event time, points at minutes 0 and 4 (see learnAt):
		// a = 1-2^(-4/2) = .75: m = 1+.75·2 = 2.5, v = .25·(0+2·1.5) = .75
		{"ewma time halflife", "ewma", map[string]any{"halflife": "2m", "min_samples": 2}, []float64{1, 3}, 5, 2.5, 2.5 / math.Sqrt(0.75)},
		// same baseline; z = 3.3166, S⁺ = max(0, 0 + 3.3166 - 1)
		{"cusum", "cusum", map[string]any{"alpha": 0.5, "min_samples": 2, "k": 1}, []float64{1, 2, 3}, 5, 2.25, 2.75/math.Sqrt(0.6875) - 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.method == "seasonal" {
				return // covered by TestSeasonalHandComputed
			}
			cfg, err := parse(c.method, c.params)
			if err != nil {
				t.Fatal(err)
			}
			m := newModel(&cfg)
			for i, v := range c.learn {
				if c.name == "ewma time halflife" {
					i *= 4
				}
				m.learn(minute(i), v)
			}
			exp, score, ready := split(m.observe(minute(len(c.learn)), c.x))
			if !ready || !near(exp, c.expected) || !near(score, c.got) {
				t.Fatalf("observe = %v, %v, %v; want %v, %v", exp, score, ready, c.expected, c.got)
			}
		})
	}
}

// TestWindowEventTime checks that the baseline holds points in (t-window, t].
func TestWindowEventTime(t *testing.T) {
	cfg, _ := parse("zscore", map[string]any{"window": "10m", "min_samples": 2})
	m := newModel(&cfg).(*zscore)
	for i, v := range []float64{100, 1, 2, 3} { // at minutes 0, 5, 6, 7
		m.learn(minute([]int{0, 5, 6, 7}[i]), v)
	}
	// at minute 10 the point at minute 0 is exactly 10m old: out
	exp, _, _ := split(m.observe(minute(10), 2))
	if !near(exp, 2) || m.win.n != 3 {
		t.Fatalf("expected %v over %d points; want 2 over 3", exp, m.win.n)
	}
	_, _, ready := split(m.observe(minute(17), 2)) // only minute 7 left... and it is 10m old too
	if ready || m.win.n != 0 {
		t.Fatalf("ready=%v n=%d after the window emptied", ready, m.win.n)
	}
}

// TestSeasonalHandComputed: period 4m, one bucket per minute, so points at
// minutes 0,4,8 share bucket 0 and 1,5,9 bucket 1.
func TestSeasonalHandComputed(t *testing.T) {
	cfg, err := parse("seasonal", map[string]any{"period": "4m", "resolution": "1m", "min_samples": 2, "alpha": 0.5, "phase_halflife": 1})
	if err != nil {
		t.Fatal(err)
	}
	m := newModel(&cfg)
	// bucket 0 sees 10, 12 (mean 11); bucket 1 sees 20, 21, 23.
	// residuals (learned when a bucket already had a value): 12-10=2 at
	// minute 4; 21-20=1 at minute 5; bucket 1 mean after 20,21 is 20.5
	// (plain mean while count < 1/alpha_season=2), after 23: alpha
	// max(0.5, 1/3) → 20.5+0.5·2.5 = 21.75; residual 23-20.5 = 2.5.
	// residual ewstat (alpha .5): 2 → m=2 v=0; 1 → m=1.5 v=.25;
	// 2.5 → d=1, m=2, v=.5(.25+.5)=.375.
	for _, p := range []struct {
		min int
		x   float64
	}{{0, 10}, {1, 20}, {4, 12}, {5, 21}, {9, 23}} {
		m.learn(minute(p.min), p.x)
	}
	exp, score, ready := split(m.observe(minute(13), 25)) // bucket 1
	if !ready || !near(exp, 21.75) || !near(score, 3.25/math.Sqrt(0.375)) {
		t.Fatalf("observe = %v, %v, %v; want 21.75, %v", exp, score, ready, 3.25/math.Sqrt(0.375))
	}
	if _, _, ready := split(m.observe(minute(14), 25)); ready { // bucket 2: never seen
		t.Fatal("scored a phase it has not seen twice")
	}
}

// TestMADMatchesNaive compares the sorted-window median and MAD with a
// sort-everything computation on random windows, including ties and
// expiry.
func TestMADMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 200; trial++ {
		n := 2 + r.IntN(40)
		cfg, _ := parse("mad", map[string]any{"window": "20m", "min_samples": 2})
		m := newModel(&cfg).(*mad)
		var xs []float64
		for i := 0; i < n; i++ {
			x := float64(r.IntN(8)) // many ties
			if trial%2 == 0 {
				x = r.NormFloat64()
			}
			xs = append(xs, x)
			m.learn(minute(i), x)
		}
		exp, _, ready := split(m.observe(minute(n), 0)) // keeps the last 19 points
		live := xs[max(0, n-19):]
		if len(live) < 2 {
			continue
		}
		srt := slices.Sorted(slices.Values(live))
		med := naiveMedian(srt)
		dev := make([]float64, len(srt))
		for i, v := range srt {
			dev[i] = math.Abs(v - med)
		}
		slices.Sort(dev)
		if !ready || exp != med || m.mad(med) != naiveMedian(dev) {
			t.Fatalf("trial %d: median %v mad %v, want %v %v (window %v)", trial, exp, m.mad(med), med, naiveMedian(dev), live)
		}
	}
}

func naiveMedian(s []float64) float64 {
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestSeasonalShiftHandComputed: the level-shift CUSUM on residuals, on the
// baseline of TestSeasonalHandComputed (bucket 0 mean 11, bucket 1 mean
// 21.75; residual mean 2, variance .375, so sd = .61237 and
// rms = sqrt(.375 + 2²) = 2.09165), with k 0.5 and h 2.
func TestSeasonalShiftHandComputed(t *testing.T) {
	build := func(h float64) *seasonal {
		cfg, err := parse("seasonal", map[string]any{"period": "4m", "resolution": "1m", "min_samples": 2, "alpha": 0.5,
			"phase_halflife": 1, "shift_k": 0.5, "shift_h": h})
		if err != nil {
			t.Fatal(err)
		}
		m := newModel(&cfg).(*seasonal)
		for _, p := range []struct {
			min int
			x   float64
		}{{0, 10}, {1, 20}, {4, 12}, {5, 21}, {9, 23}} {
			m.learn(minute(p.min), p.x)
		}
		return m
	}
	sd, rms := math.Sqrt(0.375), math.Sqrt(4.375)
	m := build(2)
	// residual 3 in bucket 1: z = 3/sd = 4.899 < 5; c = 3/rms = 1.43427,
	// S⁺ = 1.43427 - .5 = .93427: no alarm, the score is z.
	if _, score, _ := split(m.observe(minute(13), 24.75)); !near(score, 3/sd) || !near(m.hi, 3/rms-0.5) || m.lo != 0 {
		t.Fatalf("first: score %v hi %v lo %v", score, m.hi, m.lo)
	}
	// a point anomaly (z = 20/sd) leaves the sums alone
	if _, score, _ := split(m.observe(minute(16), 31)); !near(score, 20/sd) || !near(m.hi, 3/rms-0.5) {
		t.Fatalf("spike: score %v hi %v", score, m.hi)
	}
	// residual 3 in bucket 0: S⁺ = 1.86854
	if _, score, _ := split(m.observe(minute(16), 14)); !near(score, 3/sd) || !near(m.hi, 2*(3/rms-0.5)) {
		t.Fatalf("second: score %v hi %v", score, m.hi)
	}
	// third: S⁺ = 2.80281 ≥ h 2: anomalous with score 5·2.80281/2 = 7.007,
	// and the sums restart
	if _, score, _ := split(m.observe(minute(17), 24.75)); !near(score, 5*3*(3/rms-0.5)/2) || m.hi != 0 || m.lo != 0 {
		t.Fatalf("alarm: score %v, want %v; hi %v lo %v", score, 5*3*(3/rms-0.5)/2, m.hi, m.lo)
	}
	// downward: residual -3 three times gives the negative score
	for i := 0; i < 2; i++ {
		m.observe(minute(17), 18.75)
	}
	if _, score, _ := split(m.observe(minute(17), 18.75)); !near(score, -5*3*(3/rms-0.5)/2) {
		t.Fatalf("down alarm: score %v", score)
	}
	// shift_h 0 turns the test off: the same points only ever score z
	off := build(0)
	for i := 0; i < 5; i++ {
		if _, score, _ := split(off.observe(minute(13), 24.75)); !near(score, 3/sd) || off.hi != 0 {
			t.Fatalf("off: score %v hi %v", score, off.hi)
		}
	}
}

// TestRestoreVersion1: a snapshot written before the level-shift sums
// existed (version 1: the same layout without seasonal's last two floats
// and auto's operating levels) restores, with the sums at zero and no
// levels; other methods' layout did not change.
func TestRestoreVersion1(t *testing.T) {
	for _, method := range Methods() {
		t.Run(method, func(t *testing.T) {
			p := map[string]any{"period": "4m", "resolution": "1m", "min_samples": 2, "shift_k": 0.1, "shift_h": 100}
			if method != "seasonal" {
				p = map[string]any{"min_samples": 2}
			}
			val := func(ev *event.Event) (float64, bool) { return ev.Fields["v"].(float64), true }
			d, err := New(Spec{Method: method, Params: p, Value: val})
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range []float64{10, 20, 12, 21, 11, 23, 12, 22, 13, 24} {
				e := &event.Event{Time: minute(i), Seq: uint64(i), Fields: map[string]any{"v": x}}
				d.Add("k", e)
				d.Advance(e.Time)
			}
			snap, _ := d.Snapshot()
			if snap[0] != snapVersion {
				t.Fatalf("snapshot version %d", snap[0])
			}
			v1 := append([]byte{1}, snap[1:]...)
			if method != "auto" { // auto's is cut with its version 8 section below
				v1 = dropHold(t, d, v1)
			}
			if method == "seasonal" {
				s := d.keys["k"].m.(*seasonal)
				if s.hi == 0 && s.lo == 0 {
					t.Fatal("the stream left no level-shift sum to drop")
				}
				v1 = v1[:len(v1)-16]
				s.hi, s.lo = 0, 0 // what the old snapshot restores to
			}
			if method == "auto" {
				v1 = dropModes(t, d, dropWeek(t, d, dropLong(t, d, dropDt(t, d, dropInBand(t, d, dropV8(t, d, v1))))))
			}
			r, _ := New(Spec{Method: method, Params: p, Value: val})
			if err := r.Restore(v1); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.keys["k"].m, d.keys["k"].m) {
				t.Fatalf("restored %+v, want %+v", r.keys["k"].m, d.keys["k"].m)
			}
			bad := append([]byte{snapVersion + 1}, snap[1:]...)
			if err := r.Restore(bad); err == nil {
				t.Fatalf("accepted snapshot version %d", snapVersion+1)
			}
		})
	}
}

// TestRestoreVersion2: a version 2 snapshot of auto (no operating levels)
// restores with none; the key then learns them again.
func TestRestoreVersion2(t *testing.T) {
	val := func(ev *event.Event) (float64, bool) { return ev.Fields["v"].(float64), true }
	d, _ := New(Spec{Method: "auto", Params: map[string]any{"min_samples": 2}, Value: val})
	for i, x := range []float64{10, 20, 12, 21, 11, 23, 12, 22, 13, 24} {
		e := &event.Event{Time: minute(i), Seq: uint64(i), Fields: map[string]any{"v": x}}
		d.Add("k", e)
		d.Advance(e.Time)
	}
	snap, _ := d.Snapshot()
	v2 := dropModes(t, d, dropWeek(t, d, dropLong(t, d, dropDt(t, d, dropInBand(t, d, dropV8(t, d, append([]byte{2}, snap[1:]...)))))))
	restoresAs(t, d, v2, "version 2")
}

// TestRestoreVersion3: a version 3 snapshot of auto (no weekly
// correction) restores with none; a version 3 snapshot cannot pick the
// weekly predictor.
func TestRestoreVersion3(t *testing.T) {
	val := func(ev *event.Event) (float64, bool) { return ev.Fields["v"].(float64), true }
	d, _ := New(Spec{Method: "auto", Params: map[string]any{"min_samples": 2}, Value: val})
	for i, x := range []float64{10, 20, 12, 21, 11, 23, 12, 22, 13, 24} {
		e := &event.Event{Time: minute(i), Seq: uint64(i), Fields: map[string]any{"v": x}}
		d.Add("k", e)
		d.Advance(e.Time)
	}
	a := d.keys["k"].m.(*auto)
	a.week, a.wVis = make([]float32, autoWeekBkts), make([]uint8, autoWeekBkts)
	a.week[3], a.wVis[3], a.wCur, a.dwk = 1.5, 2, 3, 0.25
	snap, _ := d.Snapshot()
	r := restoresAs(t, d, snap, "version 4")
	v3 := dropWeek(t, d, dropLong(t, d, dropDt(t, d, dropInBand(t, d, dropV8(t, d, append([]byte{3}, snap[1:]...))))))
	restoresAs(t, d, v3, "version 3")
	a.pick = predWeek
	bad, _ := d.Snapshot()
	if err := r.Restore(dropWeek(t, d, dropLong(t, d, dropDt(t, d, dropInBand(t, d, dropV8(t, d, append([]byte{3}, bad[1:]...))))))); err == nil {
		t.Fatal("a version 3 snapshot that picks the weekly predictor restored")
	}
}

// TestRestoreVersion4: a version 4 snapshot of auto (no long-run error of
// the slow predictor) restores with that error starting from the recent one.
func TestRestoreVersion4(t *testing.T) {
	val := func(ev *event.Event) (float64, bool) { return ev.Fields["v"].(float64), true }
	d, _ := New(Spec{Method: "auto", Params: map[string]any{"min_samples": 2}, Value: val})
	for i := range 1000 {
		x := float64(i*7%13) + float64(i/300) // a noise whose level steps every 300 points
		e := &event.Event{Time: minute(i), Seq: uint64(i), Fields: map[string]any{"v": x}}
		d.Add("k", e)
		d.Advance(e.Time)
	}
	a := d.keys["k"].m.(*auto)
	if a.slowLong == a.mse[predSlow] {
		t.Fatal("the stream left the long-run error equal to the recent one")
	}
	snap, _ := d.Snapshot()
	v4 := dropLong(t, d, dropDt(t, d, dropInBand(t, d, dropV8(t, d, append([]byte{4}, snap[1:]...)))))
	restoresAs(t, d, v4, "version 4")
}

// TestRestoreVersion5: a version 5 snapshot of auto (no mean interval)
// restores with the interval not known: no widening for the key's rate
// until it has learned the interval again from its next points.
func TestRestoreVersion5(t *testing.T) {
	val := func(ev *event.Event) (float64, bool) { return ev.Fields["v"].(float64), true }
	d, _ := New(Spec{Method: "auto", Params: map[string]any{"min_samples": 2}, Value: val})
	sec := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	for i := range 100 {
		e := &event.Event{Time: sec(i), Seq: uint64(i), Fields: map[string]any{"v": float64(i * 7 % 13)}}
		d.Add("k", e)
		d.Advance(e.Time)
	}
	a := d.keys["k"].m.(*auto)
	if a.rateWiden() <= 1 {
		t.Fatal("a key at one point a second has no widening to lose")
	}
	snap, _ := d.Snapshot()
	v5 := dropDt(t, d, dropInBand(t, d, dropV8(t, d, append([]byte{5}, snap[1:]...))))
	r := restoresAs(t, d, v5, "version 5")
	ra := r.keys["k"].m.(*auto)
	if w := ra.rateWiden(); w != 1 {
		t.Fatalf("restored widening %v, want 1 until the interval is learned", w)
	}
	for i := 100; i < 102; i++ {
		e := &event.Event{Time: sec(i), Seq: uint64(i), Fields: map[string]any{"v": 1.0}}
		r.Add("k", e)
		r.Advance(e.Time)
	}
	if math.Abs(ra.lnDt) > 1e-9 {
		t.Fatalf("mean log interval %v after two points a second apart, want 0", ra.lnDt)
	}
}

// TestRestoreVersion6: a version 6 snapshot of auto (no count of the
// points inside the band) restores with that run taken as long enough:
// the next crossing counts, as it did before version 7.
func TestRestoreVersion6(t *testing.T) {
	val := func(ev *event.Event) (float64, bool) { return ev.Fields["v"].(float64), true }
	d, _ := New(Spec{Method: "auto", Params: map[string]any{"min_samples": 2}, Value: val})
	for i := range 200 {
		x := float64(i * 7 % 13)
		if i == 198 {
			x = 1e6 // leaves the band: the run inside it starts again
		}
		e := &event.Event{Time: minute(i), Seq: uint64(i), Fields: map[string]any{"v": x}}
		d.Add("k", e)
		d.Advance(e.Time)
	}
	a := d.keys["k"].m.(*auto)
	if a.inBand >= autoCrossGap {
		t.Fatalf("run inside the band %d just after a crossing", a.inBand)
	}
	snap, _ := d.Snapshot()
	restoresAs(t, d, snap, "version 8")
	v6 := dropInBand(t, d, dropV8(t, d, append([]byte{6}, snap[1:]...)))
	restoresAs(t, d, v6, "version 6")
}

// restoresAs restores snap into a new auto detector (min_samples 2, as
// the restore tests build theirs) and fails unless its key's state equals
// d's, which the caller has set to what that snapshot restores to.
func restoresAs(t *testing.T, d *Detector, snap []byte, what string) *Detector {
	t.Helper()
	val := func(ev *event.Event) (float64, bool) { return ev.Fields["v"].(float64), true }
	r, _ := New(Spec{Method: "auto", Params: map[string]any{"min_samples": 2}, Value: val})
	if err := r.Restore(snap); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !reflect.DeepEqual(r.keys["k"].m, d.keys["k"].m) {
		t.Fatalf("%s: restored %+v, want %+v", what, r.keys["k"].m, d.keys["k"].m)
	}
	return r
}

// TestRestoreVersion7: a version 7 snapshot of auto (no fast level mean)
// restores with that mean at the local one and its error not yet learned;
// a key the fast mean predicted best is scored by the local one until the
// fast one has learned its error again. A version 7 snapshot cannot pick
// the fast predictor.
func TestRestoreVersion7(t *testing.T) {
	val := func(ev *event.Event) (float64, bool) { return ev.Fields["v"].(float64), true }
	d, _ := New(Spec{Method: "auto", Params: map[string]any{"min_samples": 2}, Value: val})
	for i := range 300 {
		// A smooth wander, as a machine's heat: the fast mean predicts it best.
		x := 10 + 3*math.Sin(float64(i)/15)
		e := &event.Event{Time: minute(i), Seq: uint64(i), Fields: map[string]any{"v": x}}
		d.Add("k", e)
		d.Advance(e.Time)
	}
	a := d.keys["k"].m.(*auto)
	if a.pick != predFast {
		t.Fatalf("a smooth wander picked predictor %d, want the fast mean (%d)", a.pick, predFast)
	}
	snap, _ := d.Snapshot()
	r := restoresAs(t, d, snap, "version 8")
	v7 := dropV8(t, d, append([]byte{7}, snap[1:]...))
	restoresAs(t, d, v7, "version 7")
	if a.pick != predLocal || a.mseN[predFast] != 0 {
		t.Fatalf("version 7 restored pick %d with %d points of the fast error, want the local mean and none", a.pick, a.mseN[predFast])
	}
	// Find the pick's byte: the one that differs between a snapshot that
	// picks the slow mean and one that picks the local mean.
	a.pick = predSlow
	s1, _ := d.Snapshot()
	a.pick = predLocal
	s2, _ := d.Snapshot()
	at := lastDiff(s1, s2)
	if at < 0 || s2[at] != predLocal {
		t.Fatal("no pick byte found")
	}
	forged := append([]byte(nil), v7...)
	forged[at] = predFast
	if err := r.Restore(forged); err == nil {
		t.Fatal("a version 7 snapshot that picks the fast predictor restored")
	}
}

// TestRestoreVersion7Methods: a version 7 snapshot of every method (no
// key's hold, and for auto no fast level mean) restores, with no hold;
// the methods whose state did not change read it as they wrote it.
func TestRestoreVersion7Methods(t *testing.T) {
	val := func(ev *event.Event) (float64, bool) { return ev.Fields["v"].(float64), true }
	for _, method := range []string{"zscore", "mad", "ewma", "cusum", "seasonal", "auto"} {
		t.Run(method, func(t *testing.T) {
			d, err := New(Spec{Method: method, Params: map[string]any{"min_samples": 2}, Value: val})
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range []float64{10, 20, 12, 21, 11, 23, 12, 22, 13, 24, 90} {
				e := &event.Event{Time: minute(i), Seq: uint64(i), Fields: map[string]any{"v": x}}
				d.Add("k", e)
				d.Advance(e.Time)
			}
			snap, _ := d.Snapshot()
			v7 := dropHold(t, d, append([]byte{7}, snap[1:]...))
			if method == "auto" {
				v7 = dropV8(t, d, append([]byte{7}, snap[1:]...))
			}
			r, _ := New(Spec{Method: method, Params: map[string]any{"min_samples": 2}, Value: val})
			if err := r.Restore(v7); err != nil {
				t.Fatalf("version 7: %v", err)
			}
			if !reflect.DeepEqual(r.keys["k"].m, d.keys["k"].m) {
				t.Fatalf("restored %+v, want %+v", r.keys["k"].m, d.keys["k"].m)
			}
			if k := r.keys["k"]; k.ref != 0 || k.refSD != 0 || k.held != 0 {
				t.Fatalf("version 7 restored a hold: %+v", k)
			}
		})
	}
}

// dropHold cuts the key's hold of a firing from the end of snap (the
// layout before version 8) and sets it in d to what that restores to: none.
func dropHold(t *testing.T, d *Detector, snap []byte) []byte {
	t.Helper()
	k := d.keys["k"]
	var e event.Enc
	k.encodeHold(&e)
	k.ref, k.refSD, k.held = 0, 0, 0
	return snap[:len(snap)-len(e.B)]
}

// dropV8 cuts what version 8 added from the end of snap: the key's hold,
// and auto's fast level mean, which it sets in d to what that restores
// to: the mean at the local one, its error not learned, the local mean in
// use where the fast one was.
func dropV8(t *testing.T, d *Detector, snap []byte) []byte {
	t.Helper()
	snap = dropHold(t, d, snap)
	a := d.keys["k"].m.(*auto)
	var e event.Enc
	a.encodeFast(&e)
	a.fast, a.mse[predFast], a.mseN[predFast], a.pick = a.loc, 0, 0, a.pick7()
	return snap[:len(snap)-len(e.B)]
}

// dropInBand cuts auto's run of points inside the band from the end of
// snap (the layout before version 7) and sets it in d to what that
// restores to: long enough for the next crossing to count.
func dropInBand(t *testing.T, d *Detector, snap []byte) []byte {
	t.Helper()
	a := d.keys["k"].m.(*auto)
	var e event.Enc
	a.encodeInBand(&e)
	a.inBand = autoCrossGap
	return snap[:len(snap)-len(e.B)]
}

// dropDt cuts auto's mean log interval from the end of snap (the layout
// before version 6) and sets it in d to what that restores to: not known.
func dropDt(t *testing.T, d *Detector, snap []byte) []byte {
	t.Helper()
	a := d.keys["k"].m.(*auto)
	var e event.Enc
	e.Float(a.lnDt)
	a.lnDt = math.Inf(1)
	return snap[:len(snap)-len(e.B)]
}

// dropLong cuts auto's long-run error of the slow predictor from the end
// of snap (the layout before version 5), with the time of the last point,
// and sets them in d to what that restores to: the recent error, time 0.
func dropLong(t *testing.T, d *Detector, snap []byte) []byte {
	t.Helper()
	a := d.keys["k"].m.(*auto)
	var e event.Enc
	a.encodeLong(&e)
	a.slowLong, a.last = a.mse[predSlow], 0
	return snap[:len(snap)-len(e.B)]
}

// dropWeek cuts auto's weekly correction, its predictor's error and the
// unrest statistics from the end of snap (the layout before version 4) and
// clears them in d.
func dropWeek(t *testing.T, d *Detector, snap []byte) []byte {
	t.Helper()
	a := d.keys["k"].m.(*auto)
	var e event.Enc
	a.encodeWeek(&e)
	a.mse[predWeek], a.mseN[predWeek] = 0, 0
	a.week, a.wVis, a.wCur, a.wSum, a.wN, a.dwk = nil, nil, -1, 0, 0, 0
	a.unr, a.unrS, a.unrMu, a.unrVar = 0, 0, 0, 0
	return snap[:len(snap)-len(e.B)]
}

// dropModes cuts auto's operating levels from the end of snap (the layout
// before version 3) and clears them in d, which is what that restores to.
func dropModes(t *testing.T, d *Detector, snap []byte) []byte {
	t.Helper()
	a := d.keys["k"].m.(*auto)
	if a.modes[0].n == 0 {
		t.Fatal("the stream left no operating level to drop")
	}
	var e event.Enc
	a.encodeModes(&e)
	a.modes = [autoModes]mode{}
	return snap[:len(snap)-len(e.B)]
}

// split unpacks a score the way the tests check it.
func split(o obs) (expected, score float64, ready bool) { return o.expected, o.score, o.ready }

// TestRestoreStuckFiring: a key firing for a stuck run is written as
// firing byte 2 from version 5 on; a version 4 snapshot cannot hold it, and
// no version holds a byte above 2.
func TestRestoreStuckFiring(t *testing.T) {
	val := func(ev *event.Event) (float64, bool) { return ev.Fields["v"].(float64), true }
	d, _ := New(Spec{Params: map[string]any{"min_samples": 2}, Value: val})
	e := &event.Event{Time: minute(0), Fields: map[string]any{"v": 1.0}}
	d.Add("k", e)
	d.Advance(e.Time)
	k := d.keys["k"]
	k.firing = true
	firing, _ := d.Snapshot()
	k.stuck = true
	stuck, _ := d.Snapshot()
	at := lastDiff(stuck, firing)
	if at < 0 || stuck[at] != 2 || firing[at] != 1 {
		t.Fatalf("no firing byte 2 in the snapshot (at %d)", at)
	}
	r, _ := New(Spec{Params: map[string]any{"min_samples": 2}, Value: val})
	if err := r.Restore(stuck); err != nil || !r.keys["k"].stuck || !r.keys["k"].firing {
		t.Fatalf("restore: %v, stuck %v", err, r.keys["k"] != nil && r.keys["k"].stuck)
	}
	if err := r.Restore(append([]byte{4}, stuck[1:]...)); err == nil {
		t.Fatal("a version 4 snapshot with a stuck firing restored")
	}
	bad := slices.Clone(stuck)
	bad[at] = 3
	if err := r.Restore(bad); err == nil {
		t.Fatal("firing byte 3 restored")
	}
}

// TestAutoRateWiden: a key faster than a point a minute gets a band wide
// enough that its Gaussian tail beyond it holds the same share of a
// minute's points as a minute key's band (threshold² + 2 ln(60 s /
// interval)); a minute key or a slower one is untouched.
func TestAutoRateWiden(t *testing.T) {
	for _, tc := range []struct {
		every time.Duration
		want  float64
	}{
		{time.Second, math.Sqrt(4.75*4.75+2*math.Log(60)) / 4.75},
		{10 * time.Second, math.Sqrt(4.75*4.75+2*math.Log(6)) / 4.75},
		{time.Minute, 1},
		{5 * time.Minute, 1},
	} {
		d, _ := New(Spec{Method: "auto", Value: func(ev *event.Event) (float64, bool) { return ev.Fields["v"].(float64), true }})
		for i := range 50 {
			e := &event.Event{Time: t0.Add(time.Duration(i) * tc.every), Seq: uint64(i), Fields: map[string]any{"v": float64(i % 5)}}
			d.Add("k", e)
			d.Advance(e.Time)
		}
		if w := d.keys["k"].m.(*auto).rateWiden(); math.Abs(w-tc.want) > 1e-9 {
			t.Errorf("a point every %v: widening %v, want %v", tc.every, w, tc.want)
		}
	}
}

// TestAutoFlickerIsOneCrossing: points that leave the band, come back for
// fewer than autoCrossGap points and leave it again are one excursion, so
// the crossing guard counts one crossing; excursions autoCrossGap points
// apart count one each.
func TestAutoFlickerIsOneCrossing(t *testing.T) {
	cases := []struct {
		name string
		z    []float64
		want int
	}{
		{"one point out", []float64{0, 9, 0}, 1},
		{"flicker", []float64{0, 9, 0, 9, 0, 0, 9, 0, 0, 0, 9, 0}, 1},
		{"apart", []float64{0, 9, 0, 0, 0, 0, 9, 0, 0, 0, 0, 9}, 3},
		{"long stretch out", []float64{0, 9, 9, 9, 9, 9, 9, 0}, 1},
		{"both sides", []float64{0, 9, -9, 0, 0, 0, 0, -9}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAuto(&config{threshold: 5, minSamples: 2})
			prev := a.cross
			n := 0
			for _, z := range c.z {
				a.crossings(z)
				if a.cross > prev {
					n++
				}
				prev = a.cross
			}
			if n != c.want {
				t.Fatalf("%d crossings counted, want %d", n, c.want)
			}
		})
	}
}

// lastDiff is the last index at which two snapshots of one length differ
// (-1: none): the byte a test changed in the state.
func lastDiff(a, b []byte) int {
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
