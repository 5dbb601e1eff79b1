package detect

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
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
			exp, score, ready := m.observe(minute(len(c.learn)), c.x)
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
	exp, _, _ := m.observe(minute(10), 2)
	if !near(exp, 2) || m.win.n != 3 {
		t.Fatalf("expected %v over %d points; want 2 over 3", exp, m.win.n)
	}
	_, _, ready := m.observe(minute(17), 2) // only minute 7 left... and it is 10m old too
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
	exp, score, ready := m.observe(minute(13), 25) // bucket 1
	if !ready || !near(exp, 21.75) || !near(score, 3.25/math.Sqrt(0.375)) {
		t.Fatalf("observe = %v, %v, %v; want 21.75, %v", exp, score, ready, 3.25/math.Sqrt(0.375))
	}
	if _, _, ready := m.observe(minute(14), 25); ready { // bucket 2: never seen
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
		exp, _, ready := m.observe(minute(n), 0) // keeps the last 19 points
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
