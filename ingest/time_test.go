package ingest

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
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
		{"seconds string nanos exact", "1767607200.123456789", base.Add(123456789)},
		{"seconds string beyond nanos truncates", "1767607200.1234567899", base.Add(123456789)},
		{"seconds string leading dot", ".5", time.Unix(0, 5e8).UTC()},
		{"seconds string plus", "+1767607200", base},
		{"negative seconds string fraction", "-1.5", time.Unix(-2, 5e8).UTC()},
		{"millis string fraction", "1767607200123.456", base.Add(123456 * time.Microsecond)},
		{"micros string fraction", "1767607200123456.7", base.Add(123456700)},
		{"seconds float 2246 keeps ms", 8725467479.617, time.Unix(8725467479, 617e6).UTC()},
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
		{"millis up to 2262", int64(9_000_000_000_000), time.UnixMilli(9_000_000_000_000).UTC()},
		{"1e14 is micros", int64(1e14), time.UnixMicro(1e14).UTC()},
		{"micros up to 2262", int64(9_000_000_000_000_000), time.UnixMicro(9_000_000_000_000_000).UTC()},
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
		{"rfc3339 after 2262", "9999-12-31T23:59:59Z", "out of range"},
		{"rfc3339 before 1677", "1000-01-01T00:00:00Z", "out of range"},
		{"zero time.Time", time.Time{}, "out of range"},
		{"numeric garbage", "12.3.4", `cannot parse "12.3.4"`},
		{"sign only", "-", `cannot parse "-"`},
		{"dot only", ".", `cannot parse "."`},
		{"double sign", "--5", `cannot parse "--5"`},
		{"ns string beyond int64", "99999999999999999999", "out of range"},
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
		// likewise just below 1e14 is ms (5138), not µs (1973), and just
		// below 1e17 is µs (5138), not ns (1973)
		{"just below 1e14 is millis, out of range", int64(99_999_999_999_999), "out of range"},
		{"just below 1e17 is micros, out of range", int64(99_999_999_999_999_999), "out of range"},
		{"negative micros out of range", -4.54320987654321e+16, "out of range"},
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

// TestParseTimeRoundTrip formats many times every way a device might and
// checks each parses back to the same instant, to its unit's resolution.
func TestParseTimeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	zones := []*time.Location{time.UTC, time.FixedZone("", -9*3600-1800), time.FixedZone("", 14*3600)}
	for i := 0; i < 2000; i++ {
		// 1973-03 (1e11 ms) .. 2262: every unit reads unambiguously there.
		ns := int64(1e17) + rng.Int64N(9_000_000_000_000_000_000-1e17)
		want := time.Unix(0, ns).UTC()
		forms := []struct {
			in   any
			want time.Time
		}{
			{want.In(zones[i%3]).Format(time.RFC3339Nano), want},
			{strconv.FormatInt(ns, 10), want},
			{ns, want},
			{want.UnixMicro(), want.Truncate(time.Microsecond)},
			{float64(want.UnixMicro()), want.Truncate(time.Microsecond)},
			{want.UnixMilli(), want.Truncate(time.Millisecond)},
			{float64(want.UnixMilli()), want.Truncate(time.Millisecond)},
			{want.Unix(), want.Truncate(time.Second)},
			{float64(want.Unix()), want.Truncate(time.Second)},
			{float64(want.UnixMilli()) / 1e3, want.Truncate(time.Millisecond)},
		}
		for _, f := range forms {
			got, err := ParseTime(f.in)
			if err != nil {
				t.Fatalf("ParseTime(%#v): %v", f.in, err)
			}
			if !got.Equal(f.want) {
				t.Fatalf("ParseTime(%#v) = %v, want %v", f.in, got, f.want)
			}
		}
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-01-05T10:00:00.5+02:00", "1767607200.123", "-1.5", "1e9", ".", "9223372036854775807", "2262-04-11T23:47:16.854775808Z"} {
		f.Add(s, 0.0)
	}
	f.Add("", 1767607200.123)
	f.Add("", -9.2e18)
	f.Fuzz(func(t *testing.T, s string, x float64) {
		for _, v := range []any{s, x} {
			got, err := ParseTime(v)
			if err != nil {
				continue
			}
			if got.Location() != time.UTC || !time.Unix(0, got.UnixNano()).Equal(got) {
				t.Fatalf("ParseTime(%#v) = %v: not UTC or outside Unix nanoseconds", v, got)
			}
		}
	})
}
