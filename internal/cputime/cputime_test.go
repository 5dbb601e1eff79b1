package cputime

import "testing"

func TestNowAdvances(t *testing.T) {
	t0 := Now()
	x := 0
	for i := 0; i < 200_000_000 && Now() == t0; i++ {
		x += i
	}
	if Now() <= t0 {
		t.Fatalf("CPU time did not advance (%v, x=%d)", t0, x)
	}
}
