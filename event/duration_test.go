package event

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "90s", want: 90 * time.Second},
		{in: "5m", want: 5 * time.Minute},
		{in: "24h", want: 24 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "300ms", want: 300 * time.Millisecond},
		{in: "0", want: 0},
		{in: "1d", want: 24 * time.Hour},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "2w", want: 14 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1w2d3h4m5s", want: 9*24*time.Hour + 3*time.Hour + 4*time.Minute + 5*time.Second},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "0d", want: 0},
		{in: "-1d", want: -24 * time.Hour},
		{in: "+2w", want: 14 * 24 * time.Hour},
		{in: "1d500ms", want: 24*time.Hour + 500*time.Millisecond},
		{in: "", bad: true},
		{in: "d", bad: true},
		{in: "1", bad: true},
		{in: "1x", bad: true},
		{in: "1dd", bad: true},
		{in: "1 d", bad: true},
		{in: "10 minutes", bad: true},
		{in: "1y", bad: true},
		{in: "-", bad: true},
		{in: "1d-1h", bad: true},
		{in: ".d", bad: true},
		{in: "1..5d", bad: true},
		{in: "100000000w", bad: true},
		{in: "106751d1w", bad: true},
	} {
		got, err := ParseDuration(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseDuration(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseDuration: without a d or w the result is Go's exactly, and a
// day is always 24 hours.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90s", "1d12h", "2w", "1.5d", "-1d", "1h30m", "1x", "", "9999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseDuration(s)
		want, werr := time.ParseDuration(s)
		if werr == nil && (err != nil || got != want) {
			t.Fatalf("ParseDuration(%q) = %v, %v; Go says %v", s, got, err, want)
		}
		if err == nil {
			if d, err := ParseDuration(s + "1d"); err == nil && s != "" && s[0] != '-' && d != got+Day {
				t.Fatalf("ParseDuration(%q+1d) = %v, want %v", s, d, got+Day)
			}
		}
	})
}
