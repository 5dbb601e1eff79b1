package nab

import (
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)

func rows(n int) []time.Time {
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = t0.Add(time.Duration(i) * time.Minute)
	}
	return ts
}

func at(i ...int) []time.Time {
	var out []time.Time
	for _, j := range i {
		out = append(out, t0.Add(time.Duration(j)*time.Minute))
	}
	return out
}

func TestScaledSigmoid(t *testing.T) {
	for _, c := range []struct{ x, want float64 }{
		{-1, 0.9866142981514303}, // 2/(1+e^-5) - 1
		{0, 0},
		{1, -0.9866142981514303},
		{-0.1, 0.24491866240370913}, // 2/(1+e^-0.5) - 1
		{3.5, -1},
	} {
		if got := ScaledSigmoid(c.x); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("ScaledSigmoid(%v) = %v, want %v", c.x, got, c.want)
		}
	}
}

func TestProbation(t *testing.T) {
	for n, want := range map[int]int{100: 15, 4032: 604, 5000: 750, 22695: 750, 6: 0} {
		if got := Probation(n); got != want {
			t.Errorf("Probation(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestScore uses 100 rows a minute apart (probation: rows 0..14) and one
// window over rows 40..49 (width 10); raw scores are worked out by hand.
func TestScore(t *testing.T) {
	ts := rows(100)
	win := []Window{{ts[40], ts[49]}}
	right := 0.24491866240370913 / 0.9866142981514303 // at row 49: sigmoid(-1/10)/sigmoid(-1)
	past1 := 0.11 * (2/(1+math.Exp(5.0/9)) - 1)       // row 50: 1/9 of a width past
	cases := []struct {
		name   string
		det    []time.Time
		raw    float64
		tp, fp int
		norm   float64
	}{
		{"never fires", nil, -1, 0, 0, 0},
		{"left edge", at(40), 1, 1, 0, 100},
		{"right edge", at(49), right, 1, 0, 100 * (right + 1) / 2},
		{"only the earliest in a window counts", at(49, 40, 45), 1, 1, 0, 100},
		{"false firing before the window", at(20, 40), 1 - 0.11, 1, 1, 100 * (2 - 0.11) / 2},
		{"probation is not scored", at(3, 14, 40), 1, 1, 0, 100},
		{"a width past the window", at(40, 58), 1 - 0.11*0.9866142981514303, 1, 1, 0},
		{"just past the window costs little", at(40, 50), 1 + past1, 1, 1, 0},
		{"miss plus false firing", at(20), -1 - 0.11, 0, 1, -5.5},
		{"between rows rounds up to the next row", []time.Time{ts[39].Add(time.Second)}, 1, 1, 0, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Score(ts, win, c.det, Standard)
			if math.Abs(r.Raw-c.raw) > 1e-12 || r.TP != c.tp || r.FP != c.fp || r.FN != 1-c.tp || r.Null != -1 || r.Perfect != 1 {
				t.Fatalf("got %+v, want raw %v tp %d fp %d", r, c.raw, c.tp, c.fp)
			}
			if c.norm != 0 && math.Abs(r.Normalized()-c.norm) > 1e-9 {
				t.Fatalf("normalized %v, want %v", r.Normalized(), c.norm)
			}
		})
	}
}

// TestScoreSums: two windows, and a file without windows whose false
// firings still count against the total.
func TestScoreSums(t *testing.T) {
	ts := rows(200)
	two := []Window{{ts[50], ts[59]}, {ts[120], ts[139]}}
	a := Score(ts, two, at(50, 100), Standard) // hit, then 41 rows past a width-10 window: full cost
	if a.TP != 1 || a.FN != 1 || a.FP != 1 || math.Abs(a.Raw-(1-1-0.11)) > 1e-9 || a.Null != -2 || a.Perfect != 2 {
		t.Fatalf("two windows: %+v", a)
	}
	b := Score(ts, nil, at(100, 150), Standard)
	if b.FP != 2 || math.Abs(b.Raw+0.22) > 1e-12 || !math.IsNaN(b.Normalized()) {
		t.Fatalf("no windows: %+v", b)
	}
	sum := a.Add(b)
	if want := 100 * (sum.Raw + 2) / 4; math.Abs(sum.Normalized()-want) > 1e-12 || sum.Windows != 2 {
		t.Fatalf("sum %+v normalized %v", sum, sum.Normalized())
	}
}

func TestReadCSV(t *testing.T) {
	ts, vs, err := ReadCSV(strings.NewReader("timestamp,value\n2014-04-01 00:00:00,20.5\n2014-04-01 00:05:00,-1\n"))
	if err != nil || len(ts) != 2 || vs[0] != 20.5 || vs[1] != -1 || !ts[1].Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("got %v %v %v", ts, vs, err)
	}
	for _, bad := range []string{"", "timestamp,value\nyesterday,1\n", "timestamp,value\n2014-04-01 00:00:00,x\n"} {
		if _, _, err := ReadCSV(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
