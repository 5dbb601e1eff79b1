package ui

import (
	"testing"
	"time"
)

// TestParseTimeDays: the alert history's since/before take days and weeks
// as rule files do.
func TestParseTimeDays(t *testing.T) {
	now := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"15m":                  now.Add(-15 * time.Minute),
		"1d":                   now.Add(-24 * time.Hour),
		"2w":                   now.Add(-14 * 24 * time.Hour),
		"1d12h":                now.Add(-36 * time.Hour),
		"2026-01-05T10:00:00Z": time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC),
	} {
		got, err := parseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseTime("yesterday", now); err == nil {
		t.Error("parseTime(yesterday): no error")
	}
}
