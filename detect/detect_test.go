package detect_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/detect"
	"github.com/vigil-gw/vigil/event"
)

var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

func minute(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

func value(ev *event.Event) (float64, bool) {
	v, ok := ev.Fields["v"].(float64)
	return v, ok
}

func mustNew(t testing.TB, method string, params map[string]any) *detect.Detector {
	t.Helper()
	d, err := detect.New(detect.Spec{Method: method, Params: params, Value: value})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func ev(i int, v float64) *event.Event {
	return &event.Event{Time: minute(i), Seq: uint64(i), Fields: map[string]any{"v": v}}
}

// feed drives d as the engine does with lateness 0 and returns every result.
func feed(d *detect.Detector, key string, xs []float64) []event.Result {
	var out []event.Result
	for i, x := range xs {
		d.Add(key, ev(i, x))
		out = append(out, d.Advance(minute(i))...)
	}
	return out
}

func noise(seed uint64, n int, mean, sd float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = mean + sd*r.NormFloat64()
	}
	return xs
}

// TestCleanNoiseStaysQuiet: a week of Gaussian noise at one point a minute
// must not fire with any method's defaults.
func TestCleanNoiseStaysQuiet(t *testing.T) {
	xs := noise(7, 7*24*60, 20, 0.5)
	for _, m := range detect.Methods() {
		t.Run(m, func(t *testing.T) {
			for _, r := range feed(mustNew(t, m, nil), "k", xs) {
				t.Errorf("fired on clean noise: %s at %v %v", r.State, r.Time, r.Values)
			}
		})
	}
}

// TestSpikeFiresAtItsTime: one spike of 10σ in three days of noise (one
// point a minute, enough for seasonal's two-period warm-up) fires at the
// spike's own time, with values that explain it, and resolves after the
// default 150 calm points.
func TestSpikeFiresAtItsTime(t *testing.T) {
	xs := noise(3, 4000, 20, 0.5)
	xs[3500] = 25
	for _, m := range detect.Methods() {
		t.Run(m, func(t *testing.T) {
			rs := feed(mustNew(t, m, nil), "k", xs)
			if len(rs) == 0 {
				t.Fatal("no result")
			}
			f := rs[0]
			if f.State != event.Firing || !f.Time.Equal(minute(3500)) || f.Key != "k" || f.Event == nil {
				t.Fatalf("first result %s at %v, want firing at %v", f.State, f.Time, minute(3500))
			}
			if f.Values["value"] != 25.0 || f.Values["method"] != m || f.Values["score"].(float64) < 5 ||
				math.Abs(f.Values["expected"].(float64)-20) > 0.5 {
				t.Fatalf("values %v", f.Values)
			}
			// Why it fired: the point lies above the band around what was expected.
			if lo, hi := f.Values["low"].(float64), f.Values["high"].(float64); !(lo < f.Values["expected"].(float64) && f.Values["expected"].(float64) < hi && hi < 25) ||
				!strings.Contains(f.Values["reason"].(string), "above the expected") {
				t.Fatalf("band or reason: %v", f.Values)
			}
			if len(rs) != 2 || rs[1].State != event.Resolved || !rs[1].Time.Equal(minute(3650)) {
				t.Fatalf("want one firing then resolved at %v, got %v", minute(3650), rs)
			}
		})
	}
}

// TestDailyPatternSeasonal: a daily cycle of ±5 with noise 0.3. Compared
// with the same time of day nothing is unusual, so seasonal must stay quiet
// for five days and then catch a dip of 3 (10σ) at the daily peak, a value
// that would be ordinary at another hour.
func TestDailyPatternSeasonal(t *testing.T) {
	xs := noise(9, 6*24*60, 20, 0.3)
	for i := range xs {
		xs[i] += 5 * math.Sin(2*math.Pi*float64(i)/(24*60))
		if xs[i] > 10 && i/(24*60) == 5 && i%(24*60) == 6*60 { // day 5, 06:00, near the daily peak
			xs[i] -= 3
		}
	}
	season := feed(mustNew(t, "seasonal", nil), "k", xs)
	if len(season) == 0 || season[0].State != event.Firing || !season[0].Time.Equal(minute(5*24*60+6*60)) {
		t.Fatalf("seasonal: want first firing at the dip, got %v", season)
	}
}

// TestCUSUMCatchesShiftAndDrift: sustained shifts too small for a
// single-point threshold, and a slow ramp, must be caught by cusum within
// the stated delays (points after the change). Theory (Siegmund's
// approximation of the average run length): 2σ with the defaults k=1, h=8
// ≈ 9 points; 1σ with k=0.5, h=10 ≈ 20 points.
func TestCUSUMCatchesShiftAndDrift(t *testing.T) {
	cases := []struct {
		name     string
		params   map[string]any
		shift    func(i int) float64 // added from point 500 on
		maxDelay int
	}{
		{"step 2σ, defaults", nil, func(int) float64 { return 2 }, 20},
		{"step -2σ, defaults", nil, func(int) float64 { return -2 }, 20},
		{"ramp 0.02σ per point, defaults", nil, func(i int) float64 { return 0.02 * float64(i) }, 120},
		{"step 1σ, k=0.5 h=10", map[string]any{"k": 0.5, "h": 10}, func(int) float64 { return 1 }, 40},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			xs := noise(11, 800, 0, 1)
			for i := 500; i < len(xs); i++ {
				xs[i] += c.shift(i - 500)
			}
			rs := feed(mustNew(t, "cusum", c.params), "k", xs)
			if len(rs) == 0 || rs[0].State != event.Firing {
				t.Fatalf("no firing: %v", rs)
			}
			delay := int(rs[0].Time.Sub(minute(500)) / time.Minute)
			if delay < 0 || delay > c.maxDelay {
				t.Fatalf("fired at point %d, delay %d, want 0..%d", 500+delay, delay, c.maxDelay)
			}
			t.Logf("delay %d points", delay)
		})
	}
}

// TestLifecycle checks firing/resolved alternation per key, clear points and
// that anomalous points do not move the baseline unless configured.
func TestLifecycle(t *testing.T) {
	base := func() []float64 { return noise(5, 200, 10, 1) }
	cases := []struct {
		name   string
		params map[string]any
		edit   func(xs []float64)
		want   []string // "firing@i" / "resolved@i"
	}{
		{"spike then calm", map[string]any{"clear": 3}, func(xs []float64) { xs[100] = 30 },
			[]string{"firing@100", "resolved@103"}},
		{"clear 1", map[string]any{"clear": 1}, func(xs []float64) { xs[100] = 30 },
			[]string{"firing@100", "resolved@101"}},
		{"burst stays one firing", map[string]any{"clear": 3}, func(xs []float64) { xs[100], xs[101], xs[103] = 30, 30, 30 },
			[]string{"firing@100", "resolved@106"}},
		{"down only ignores up", map[string]any{"direction": "down", "clear": 5}, func(xs []float64) { xs[100] = 30; xs[150] = -10 },
			[]string{"firing@150", "resolved@155"}},
		// a level shift of 20σ: held out of the baseline it would fire
		// forever; after relearn=10 anomalous points the baseline restarts
		// at point 109; after the 30-point warm-up (110..138) the first
		// scored point, 139, is normal and resolves (warm-up counts as calm).
		{"level shift relearns", map[string]any{"relearn": 10, "clear": 5}, func(xs []float64) {
			for i := 100; i < len(xs); i++ {
				xs[i] += 20
			}
		}, []string{"firing@100", "resolved@139"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			xs := base()
			c.edit(xs)
			var got []string
			for _, r := range feed(mustNew(t, "zscore", with(c.params, "window", "24h")), "k", xs) {
				got = append(got, fmt.Sprintf("%s@%d", r.State, int(r.Time.Sub(t0)/time.Minute)))
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func with(m map[string]any, k string, v any) map[string]any {
	n := map[string]any{k: v}
	for a, b := range m {
		n[a] = b
	}
	return n
}

// TestLearnAnomalies: with learn_anomalies the shifted level joins the
// baseline, so the variance grows and the key resolves sooner than with the
// default, where the baseline stays clean.
func TestLearnAnomalies(t *testing.T) {
	xs := noise(5, 300, 10, 1)
	for i := 100; i < 300; i++ {
		xs[i] += 8
	}
	resolvedAt := func(p map[string]any) int {
		for _, r := range feed(mustNew(t, "ewma", p), "k", xs) {
			if r.State == event.Resolved {
				return int(r.Time.Sub(t0) / time.Minute)
			}
		}
		return -1
	}
	clean := resolvedAt(map[string]any{"relearn": 0})
	poisoned := resolvedAt(map[string]any{"relearn": 0, "learn_anomalies": true})
	if clean != -1 || poisoned < 100 {
		t.Fatalf("resolved at %d (clean baseline, want never) and %d (learning anomalies, want after 100)", clean, poisoned)
	}
}

// TestSnapshotContinues: snapshot and restore at every split point of an
// out-of-order stream over several keys give the same results as one
// uninterrupted run.
func TestSnapshotContinues(t *testing.T) {
	type step struct {
		key string
		ev  *event.Event
	}
	r := rand.New(rand.NewPCG(1, 2))
	var steps []step
	for i := 0; i < 600; i++ {
		x := 5 + r.NormFloat64()
		if i%97 == 50 {
			x += 12
		}
		e := ev(i, x)
		e.Time = e.Time.Add(time.Duration(r.IntN(90)) * time.Second) // out of order within lateness
		steps = append(steps, step{fmt.Sprintf("k%d", i%3), e})
	}
	for _, m := range detect.Methods() {
		p := map[string]any{"min_samples": 10, "clear": 5}
		switch m {
		case "zscore", "mad":
			p["window"] = "1h"
		case "ewma", "cusum":
			p["halflife"] = "20m"
		case "seasonal":
			p["period"], p["resolution"] = "1h", "10m"
		}
		t.Run(m, func(t *testing.T) {
			run := func(d *detect.Detector, from, to int) []event.Result {
				var out []event.Result
				for _, s := range steps[from:to] {
					out = append(out, d.Add(s.key, s.ev)...)
					out = append(out, d.Advance(s.ev.Time.Add(-2*time.Minute))...)
				}
				return out
			}
			d := mustNew(t, m, p)
			want := append(run(d, 0, len(steps)), d.Flush()...)
			for _, split := range []int{0, 1, 37, 300, 599} {
				a := mustNew(t, m, p)
				got := run(a, 0, split)
				snap, err := a.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				b := mustNew(t, m, p)
				if err := b.Restore(snap); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(a.Stats(), b.Stats()) {
					t.Fatalf("split %d: stats %+v after restore, want %+v", split, b.Stats(), a.Stats())
				}
				got = append(got, run(b, split, len(steps))...)
				got = append(got, b.Flush()...)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("split %d: %d results, want %d", split, len(got), len(want))
				}
			}
			if len(want) < 4 {
				t.Fatalf("only %d results: the stream exercises too little", len(want))
			}
		})
	}
}

func TestRestoreRejects(t *testing.T) {
	d := mustNew(t, "zscore", nil)
	feed(d, "k", noise(1, 50, 0, 1))
	snap, _ := d.Snapshot()
	other := mustNew(t, "ewma", nil)
	if err := other.Restore(snap); err == nil {
		t.Fatal("restored a zscore snapshot into ewma")
	}
	for i := 0; i < len(snap); i++ {
		if err := mustNew(t, "zscore", nil).Restore(snap[:i]); err == nil {
			t.Fatalf("truncated snapshot (%d of %d bytes) accepted", i, len(snap))
		}
	}
}

// TestLateAndOrder: events older than the last closing time are dropped and
// counted; within lateness, out-of-order events are scored in time order.
func TestLateAndOrder(t *testing.T) {
	d := mustNew(t, "ewma", map[string]any{"min_samples": 3, "clear": 1})
	for i, x := range []float64{10, 11, 10, 11} {
		d.Add("k", ev(i, x))
	}
	if rs := d.Advance(minute(3)); len(rs) != 0 {
		t.Fatalf("results on calm data: %v", rs)
	}
	d.Add("k", ev(2, 50)) // behind closeAt: late
	d.Add("k", ev(6, 10))
	d.Add("k", ev(5, 50)) // arrives after minute 6 but is earlier
	rs := d.Advance(minute(6))
	if st := d.Stats(); st.Late != 1 || st.Keys != 1 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
	if len(rs) != 2 || rs[0].State != event.Firing || !rs[0].Time.Equal(minute(5)) ||
		rs[1].State != event.Resolved || !rs[1].Time.Equal(minute(6)) {
		t.Fatalf("results %v", rs)
	}
}

func TestKeyCapEvictsLeastRecent(t *testing.T) {
	d, err := detect.New(detect.Spec{Method: "ewma", Value: value, MaxKeys: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []string{"a", "b", "a", "c", "a", "b"} {
		d.Add(k, ev(i, 1))
		d.Advance(minute(i))
	}
	// c evicted b, then b evicted c (a was touched in between)
	if st := d.Stats(); st.Keys != 2 || st.Evicted != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestParamErrors(t *testing.T) {
	cases := []struct {
		method string
		params map[string]any
		bad    []string // params named by the errors, in order
	}{
		{"zscore", map[string]any{"window": "1h", "threshold": 3, "min_samples": 10}, nil},
		{"", map[string]any{"threshold": 6, "direction": "up", "clear": 20}, nil},
		{"", map[string]any{"halflife": "30m", "window": "1h"}, []string{"halflife", "window"}}, // auto has no knobs of its own
		{"ewma", map[string]any{"halflife": 20.0, "direction": "up", "learn_anomalies": true}, nil},
		{"cusum", map[string]any{"k": 0.5, "h": 4, "alpha": 0.01}, nil},
		{"zscor", nil, []string{"method"}},
		{"zscore", map[string]any{"treshold": 3}, []string{"treshold"}},
		{"zscore", map[string]any{"window": "soon", "threshold": -1, "min_samples": 2.5}, []string{"min_samples", "threshold", "window"}},
		{"ewma", map[string]any{"alpha": 0.1, "halflife": 5}, []string{"halflife"}},
		{"ewma", map[string]any{"alpha": 1.5, "window": "1h"}, []string{"alpha", "window"}},
		{"mad", map[string]any{"direction": "sideways", "learn_anomalies": "yes", "clear": 0}, []string{"clear", "direction", "learn_anomalies"}},
		{"cusum", map[string]any{"k": -1, "halflife": "0s"}, []string{"halflife", "k"}},
		{"cusum", map[string]any{"h": 5, "threshold": 6}, []string{"threshold"}},
		{"seasonal", map[string]any{"period": "168h", "resolution": "15m", "phase_halflife": 2}, nil},
		{"seasonal", map[string]any{"period": "24h", "resolution": "7m"}, []string{"resolution"}},
		{"seasonal", map[string]any{"window": "1h", "phase_halflife": 0}, []string{"phase_halflife", "window"}},
		{"seasonal", map[string]any{"shift_k": 2, "shift_h": 0}, nil},
		{"seasonal", map[string]any{"shift_k": -1, "shift_h": "high"}, []string{"shift_h", "shift_k"}},
		{"cusum", map[string]any{"shift_h": 10}, []string{"shift_h"}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.method, c.params), func(t *testing.T) {
			_, err := detect.New(detect.Spec{Method: c.method, Params: c.params, Value: value})
			var got []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var pe *detect.ParamError
					if !errors.As(e, &pe) {
						t.Fatalf("not a ParamError: %v", e)
					}
					got = append(got, pe.Param)
				}
			}
			if !reflect.DeepEqual(got, c.bad) {
				t.Fatalf("errors on %v (%v), want %v", got, err, c.bad)
			}
		})
	}
}

// FuzzRestore: arbitrary bytes never panic; a snapshot that Restore
// accepts re-encodes to bytes that restore to the same state again.
func FuzzRestore(f *testing.F) {
	for _, m := range detect.Methods() {
		d := mustNew(f, m, map[string]any{"min_samples": 3})
		feed(d, "k", []float64{1, 2, 3, 4, 5, 50})
		d.Add("j", ev(9, 1)) // one pending event
		snap, _ := d.Snapshot()
		f.Add(m, snap)
	}
	f.Add("mad", []byte{})
	f.Fuzz(func(t *testing.T, method string, b []byte) {
		d, err := detect.New(detect.Spec{Method: method, Params: map[string]any{"min_samples": 3}, Value: value})
		if err != nil || d.Restore(b) != nil {
			return
		}
		once, err := d.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		d2 := mustNew(t, method, map[string]any{"min_samples": 3})
		if err := d2.Restore(once); err != nil {
			t.Fatalf("own snapshot rejected: %v", err)
		}
		twice, _ := d2.Snapshot()
		if !reflect.DeepEqual(once, twice) {
			t.Fatal("snapshot changed across a restore")
		}
		feed(d2, "k", []float64{1, 2, 3})
	})
}

// TestSeasonalLevelShift: hourly readings with a daily cycle (±3) and noise
// σ 0.5; on day 14 the level rises by 2 (4σ) for a day. No single point is
// 5 residual σ out, so the point test alone stays silent; the level-shift
// CUSUM on residuals (defaults shift_k 1.5, shift_h 20) fires within a day.
func TestSeasonalLevelShift(t *testing.T) {
	const per = 24
	xs := noise(5, 20*per, 20, 0.5)
	start := 14*per + 8
	for i := range xs {
		xs[i] += 3 * math.Sin(2*math.Pi*float64(i)/per)
		if i >= start && i < start+per {
			xs[i] += 2
		}
	}
	run := func(p map[string]any) []int {
		d := mustNew(t, "seasonal", p)
		var fired []int
		for i, x := range xs {
			e := &event.Event{Time: t0.Add(time.Duration(i) * time.Hour), Seq: uint64(i), Fields: map[string]any{"v": x}}
			d.Add("k", e)
			for _, r := range d.Advance(e.Time) {
				if r.State == event.Firing {
					fired = append(fired, i)
				}
			}
		}
		return fired
	}
	if got := run(nil); len(got) != 1 || got[0] < start || got[0] >= start+per {
		t.Fatalf("defaults: firings at rows %v, want one within the shifted day %d..%d", got, start, start+per-1)
	}
	if got := run(map[string]any{"shift_h": 0}); len(got) != 0 {
		t.Fatalf("shift_h 0: firings at rows %v, want none", got)
	}
}
