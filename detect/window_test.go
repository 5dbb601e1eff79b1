package detect

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// TestWindowAgainstSlice drives the baseline ring and a plain slice with the
// same points: mostly whole milliseconds (compact times), sometimes not or
// before 1970 (wide times), with jumps beyond the 49 days a compact ring
// spans, bursts that make it grow and silences that make it shrink. Every
// point, the expired values and the encoding must match.
func TestWindowAgainstSlice(t *testing.T) {
	type pt struct {
		t int64
		x float64
	}
	r := rand.New(rand.NewPCG(8, 9))
	w := window{size: time.Hour}
	var want []pt
	now := int64(-2 * time.Hour)
	var wide, compact, most int
	// step returns how far the clock moves before point i.
	step := func(i int) int64 {
		switch {
		case i == 35000:
			return int64(2*time.Hour) - now%msec // empty, whole ms: compact again
		case i > 35000:
			// 50 min apart: the window never empties for 170 days, so
			// base must move
			return int64(50*time.Minute) + int64(r.IntN(1000))*msec
		}
		switch r.IntN(400) {
		case 0:
			return int64(r.IntN(1000)) // not a whole millisecond
		case 1:
			return int64(60 * 24 * time.Hour)
		case 2:
			return int64(2 * time.Hour) // a silence: the window empties
		}
		if i/5000%2 == 0 {
			return int64(r.IntN(10)) * msec // a burst
		}
		return int64(r.IntN(20000)) * msec
	}
	for i := range 40000 {
		now += step(i)
		var got []float64
		w.expire(time.Unix(0, now), func(x float64) { got = append(got, x) })
		k := 0
		for k < len(want) && want[k].t <= now-int64(time.Hour) {
			if k >= len(got) || got[k] != want[k].x {
				t.Fatalf("point %d: expired %v, want the first %d of %v", i, got, k+1, want)
			}
			k++
		}
		if len(got) != k {
			t.Fatalf("point %d: expired %d points, want %d", i, len(got), k)
		}
		want = want[k:]
		x := r.NormFloat64()
		w.push(time.Unix(0, now), x)
		want = append(want, pt{now, x})
		most = max(most, len(want))
		if w.ns != nil {
			wide++
		} else {
			compact++
		}
		if w.n != len(want) {
			t.Fatalf("point %d: %d points, want %d", i, w.n, len(want))
		}
		for i, p := range want {
			if w.t(i) != p.t || w.at(i) != p.x {
				t.Fatalf("point %d: point %d is (%d, %v), want (%d, %v)", i, i, w.t(i), w.at(i), p.t, p.x)
			}
		}
		if len(w.xs) > 64 && w.n < len(w.xs)/4 {
			t.Fatalf("point %d: %d slots kept for %d points", i, len(w.xs), w.n)
		}
	}
	if wide == 0 || compact == 0 || most < 500 {
		t.Fatalf("%d steps wide, %d compact, at most %d points: the test does not reach every case", wide, compact, most)
	}
	var e event.Enc
	w.encode(&e)
	var back window
	back.decode(&event.Dec{B: e.B})
	var e2 event.Enc
	back.encode(&e2)
	if string(e.B) != string(e2.B) {
		t.Fatal("the window does not survive its encoding")
	}
}
