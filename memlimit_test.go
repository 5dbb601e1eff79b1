package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestParseMemTotal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"MemTotal:        3884372 kB\nMemFree:          200000 kB\n", 3884372 * 1024},
		{"MemFree:          200000 kB\nMemTotal:         948304 kB\n", 948304 * 1024},
		{"MemTotal: lots\n", 0},
		{"", 0},
	} {
		if got := parseMemTotal(strings.NewReader(c.in)); got != c.want {
			t.Errorf("parseMemTotal(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestSetMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	want := memoryLimit()
	if want <= 0 {
		t.Skip("no /proc/meminfo here")
	}
	if got := setMemoryLimit(); got != want {
		t.Fatalf("limit %d, want a quarter of memory, %d", got, want)
	}
}

func TestDefaultGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")
	debug.SetGCPercent(100)
	setMemoryLimit()
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("GOGC %d without the variable, want 50", got)
	}
	// GOGC set: the runtime has applied it, vigil leaves it alone
	t.Setenv("GOGC", "80")
	debug.SetGCPercent(80)
	setMemoryLimit()
	if got := debug.SetGCPercent(100); got != 80 {
		t.Errorf("GOGC %d with GOGC=80, want 80", got)
	}
}
