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
