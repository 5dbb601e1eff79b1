package ingest

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestParseTime(t *testing.T) {
	base := utc("2026-01-05T10:00:00Z") // Unix 1767607200
	tests := []struct {
		name string
		in   any
		want time.Time
	}{
		{"rfc3339 Z", "2026-01-05T10:00:00Z", base},
		{"rfc3339 millis", "2026-01-05T10:00:00.123Z", base.Add(123 * time.Millisecond)},
		{"rfc3339 nanos", "2026-01-05T10:00:00.123456789Z", base.Add(123456789)},
		{"rfc3339 positive offset", "2026-01-05T12:00:00+02:00", base},
		{"rfc3339 negative offset", "2026-01-05T04:30:00.5-05:30", base.Add(500 * time.Millisecond)},
		{"rfc3339 lowercase", "2026-01-05t10:00:00z", base},
		{"rfc3339 space for T", "2026-01-05 10:00:00.5+00:00", base.Add(500 * time.Millisecond)},
		{"seconds string exponent", "1.7676072e9", time.Unix(1767607200, 0).UTC()},
		{"string exponent is still seconds", "1767607200123e-3", base.Add(123 * time.Millisecond)},
		{"rfc3339 surrounding space", "  2026-01-05T10:00:00Z ", base},
		{"seconds float64", float64(1767607200), base},
		{"seconds fraction", 1767607200.123, base.Add(123 * time.Millisecond)},
		{"seconds fraction micro", 1767607200.000001, base.Add(time.Microsecond)},
		{"seconds int", 1767607200, base},
		{"seconds int64", int64(1767607200), base},
		{"seconds string", "1767607200", base},
		{"seconds string fraction", "1767607200.25", base.Add(250 * time.Millisecond)},
		{"seconds json.Number", json.Number("1767607200"), base},
		{"millis", float64(1767607200123), base.Add(123 * time.Millisecond)},
		{"millis fraction", 1767607200123.5, base.Add(123500 * time.Microsecond)},
		{"millis string", "1767607200123", base.Add(123 * time.Millisecond)},
		{"micros", float64(1767607200123456), base.Add(123456 * time.Microsecond)},
		{"micros int64", int64(1767607200123456), base.Add(123456 * time.Microsecond)},
		{"nanos string exact", "1767607200123456789", base.Add(123456789)},
		{"nanos int64 exact", int64(1767607200123456789), base.Add(123456789)},
		{"nanos uint64", uint64(1767607200123456789), base.Add(123456789)},
		{"nanos float64 near", float64(1767607200123456789), time.Unix(0, int64(float64(1767607200123456789))).UTC()},
		{"zero seconds is the epoch", 0.0, time.Unix(0, 0).UTC()},
		{"negative seconds", -86400.0, time.Unix(-86400, 0).UTC()},
		{"negative millis", int64(-1e12), time.Unix(-1e9, 0).UTC()},
		{"negative seconds fraction", -1.5, time.Unix(-2, 5e8).UTC()},
		// the magnitude rule at its boundaries
		{"seconds up to 2262", float64(9_000_000_000), time.Unix(9_000_000_000, 0).UTC()},
		{"1e11 is millis", float64(1e11), time.Unix(1e8, 0).UTC()},
		{"just below 1e14 is millis", int64(99_999_999_999_999), time.UnixMilli(99_999_999_999_999).UTC()},
		{"1e14 is micros", int64(1e14), time.UnixMicro(1e14).UTC()},
		{"just below 1e17 is micros", int64(99_999_999_999_999_999), time.UnixMicro(99_999_999_999_999_999).UTC()},
		{"1e17 is nanos", int64(1e17), time.Unix(0, 1e17).UTC()},
		{"time.Time passes through as UTC", base.In(time.FixedZone("x", 3600)), base},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTime(tc.in)
			if err != nil {
				t.Fatalf("ParseTime(%#v): %v", tc.in, err)
			}
			if !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Errorf("ParseTime(%#v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseTimeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"word", "yesterday", `cannot parse "yesterday"`},
		{"empty", "", "empty string"},
		{"date only", "2026-01-05", `cannot parse "2026-01-05"`},
		{"no zone", "2026-01-05T10:00:00", "cannot parse"},
		{"bad month", "2026-13-05T10:00:00Z", "cannot parse"},
		{"numeric garbage", "12.3.4", `cannot parse "12.3.4"`},
		{"nan", math.NaN(), "cannot parse NaN"},
		{"inf", math.Inf(1), "cannot parse +Inf"},
		{"nan string", "NaN", "cannot parse"},
		{"inf string", "inf", `cannot parse "inf"`},
		{"hex string", "0x10", `cannot parse "0x10"`},
		{"underscores", "1_767_607_200", "cannot parse"},
		{"float ns beyond int64", 1e19, "out of range"},
		{"uint64 beyond int64", uint64(math.MaxUint64), "out of range"},
		// just below 1e11 is still seconds: the year 5138, beyond what
		// Unix nanoseconds (and so snapshots) can hold; read as ms it
		// would silently be 1973.
		{"just below 1e11 is seconds, out of range", float64(99_999_999_999), "out of range"},
		{"just below 1e11 int is seconds, out of range", int64(99_999_999_999), "out of range"},
		{"negative seconds out of range", "-99999999999", "out of range"},
		{"bool", true, "cannot parse true"},
		{"null", nil, "cannot parse null"},
		{"object", map[string]any{}, "cannot parse an object"},
		{"long text clipped", strings.Repeat("x", 100), "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTime(tc.in)
			if err == nil {
				t.Fatalf("ParseTime(%#v) = %v, want error containing %q", tc.in, got, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseTime(%#v) error %q, want it to contain %q", tc.in, err, tc.want)
			}
		})
	}
}
