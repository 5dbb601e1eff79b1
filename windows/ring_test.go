package windows

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// TestRing compares the ring with a slice under random pushes and pops,
// through growth, wrap-around and the shrinking after bursts.
func TestRing(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var g ring[int]
	var want []int
	next, most := 0, 0
	for step := range 20000 {
		switch burst := step/2000%2 == 0; {
		case r.IntN(3) != 0 && (burst || len(want) < 5):
			g.push(next)
			want = append(want, next)
			next++
		case len(want) > 0 && r.IntN(4) == 0:
			g.popBack()
			want = want[:len(want)-1]
		case len(want) > 0:
			k := 1 + r.IntN(min(len(want), 40))
			if burst {
				k = 1
			}
			g.popFront(k)
			want = want[k:]
		}
		most = max(most, len(want))
		if g.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", step, g.len(), len(want))
		}
		for i, w := range want {
			if g.at(i) != w {
				t.Fatalf("step %d: at(%d) = %d, want %d", step, i, g.at(i), w)
			}
		}
		if len(g.buf) > 64 && len(want) < len(g.buf)/4 {
			t.Fatalf("step %d: %d slots kept for %d elements", step, len(g.buf), len(want))
		}
	}
	if most < 300 {
		t.Fatalf("the ring never held more than %d elements; the test is vacuous", most)
	}
}

// TestRingReleases checks that slots which left the ring hold no pointers.
func TestRingReleases(t *testing.T) {
	var g ring[any]
	for i := range 10 {
		g.push(i)
	}
	g.popFront(3)
	g.popBack()
	for i, v := range g.buf {
		if (i < 3 || i == 9) && v != nil {
			t.Fatalf("slot %d still holds %v", i, v)
		}
	}
}

// TestAgainstNaiveBursts runs sliding windows over bursts of many events at
// nearly the same time, then silences longer than the window: the rings
// grow past their small sizes, wrap, empty and shrink.
func TestAgainstNaiveBursts(t *testing.T) {
	for _, size := range []time.Duration{30 * time.Second, 10 * time.Minute} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			for seed := range seeds(10) {
				spec := Spec{Kind: Sliding, Size: size, Aggs: allAggs(), When: sumAbove(10)}
				r := rand.New(rand.NewPCG(seed, 9))
				evs := genStream(r, 1500, 0)
				wall := base
				for i := range evs {
					switch {
					case r.IntN(300) == 0:
						wall = wall.Add(size + time.Duration(r.IntN(60))*time.Second)
					case r.IntN(4) == 0:
						wall = wall.Add(time.Duration(r.IntN(3)) * time.Second)
					}
					evs[i].key = "a"
					if r.IntN(5) == 0 {
						evs[i].key = "b"
					}
					evs[i].ev = &event.Event{Topic: "t", Time: wall, Fields: evs[i].ev.Fields, Seq: uint64(i)}
				}
				op, _ := New(spec)
				got := drive(op, evs, 0, nil)
				want := drive(newNaive(spec), evs, 0, nil)
				if len(want) == 0 {
					t.Fatalf("seed %d: the model produced nothing", seed)
				}
				sameResults(t, got, want)
			}
		})
	}
}

// TestTimes compares the time ring with a slice over times that are mostly
// whole milliseconds, sometimes not, sometimes before 1970, with jumps of
// more than the 49 days a compact ring spans.
func TestTimes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var g times
	var want []int64
	now := int64(-3 * time.Hour)
	wide, compact := 0, 0
	for step := range 30000 {
		if len(want) == 0 || r.IntN(3) != 0 {
			switch r.IntN(200) {
			case 0:
				now += int64(r.IntN(1000)) // not a whole millisecond
			case 1:
				now += int64(60 * 24 * time.Hour)
			default:
				now += int64(r.IntN(5000)) * int64(time.Millisecond)
			}
			g.push(now)
			want = append(want, now)
		} else {
			k := 1 + r.IntN(min(len(want), 30))
			g.popFront(k)
			want = want[k:]
		}
		if g.wide {
			wide++
		} else if len(want) > 0 {
			compact++
		}
		if g.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", step, g.len(), len(want))
		}
		for i, w := range want {
			if g.at(i) != w {
				t.Fatalf("step %d: at(%d) = %d, want %d", step, i, g.at(i), w)
			}
		}
	}
	if wide == 0 || compact == 0 {
		t.Fatalf("%d steps wide, %d compact: both layouts must be exercised", wide, compact)
	}
}
