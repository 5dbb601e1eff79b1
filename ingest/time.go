package ingest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// timeFields are the members searched for the event time, in order, when a
// source names no time field.
var timeFields = [...]string{"ts", "time", "timestamp"}

// ParseTime converts a time field's value to a UTC time.
//
// A string is RFC 3339 (fractional seconds and any offset allowed) or a
// decimal number. A number is Unix time whose magnitude tells its unit:
// |v| < 1e11 seconds, < 1e14 milliseconds, < 1e17 microseconds, otherwise
// nanoseconds. The thresholds fall in gaps that no plausible timestamp of
// the neighbouring unit reaches: 1e11 s is the year 5138, 1e11 ms is 1973.
// Fractions of seconds and milliseconds are kept to the microsecond, which
// is all a float64 holds reliably at that magnitude; integers given as
// strings are exact to the nanosecond.
func ParseTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		if x.IsZero() {
			return time.Time{}, fmt.Errorf("zero time")
		}
		return x.UTC(), nil
	case float64:
		return floatTime(x)
	case float32:
		return floatTime(float64(x))
	case int:
		return intTime(int64(x))
	case int64:
		return intTime(x)
	case uint64:
		if x > math.MaxInt64 {
			return time.Time{}, fmt.Errorf("cannot parse %d: out of range", x)
		}
		return intTime(int64(x))
	case json.Number:
		return stringTime(string(x))
	case string:
		return stringTime(x)
	default:
		return time.Time{}, fmt.Errorf("cannot parse %s", describe(v))
	}
}

// describe names a value in an error without echoing a huge payload.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

func stringTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("cannot parse an empty string")
	}
	// RFC 3339 always has a 'T' (or 't', or a space) and ':'; a Unix
	// number never does.
	if !strings.ContainsAny(s, ":Tt ") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return intTime(i)
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && isDecimal(s) {
			return floatTime(f)
		}
		return time.Time{}, fmt.Errorf("cannot parse %q", clip(s))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// RFC 3339 also allows a lowercase t and z, and a space for T
		// (section 5.6); Go accepts only the uppercase form.
		if len(s) > 10 && (s[10] == 't' || s[10] == ' ') {
			s = s[:10] + "T" + s[11:]
		}
		if strings.HasSuffix(s, "z") {
			s = s[:len(s)-1] + "Z"
		}
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return time.Time{}, fmt.Errorf("cannot parse %q", clip(s))
		}
	}
	return t.UTC(), nil
}

// isDecimal rejects what ParseFloat takes but a timestamp never is:
// hex floats, inf, nan, underscores.
func isDecimal(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '.', c == '-', c == '+', c == 'e', c == 'E':
		default:
			return false
		}
	}
	return true
}

// clip shortens text quoted in an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// unitOf returns how many nanoseconds one unit of a Unix number of
// magnitude a is.
func unitOf(a float64) int64 {
	switch {
	case a < 1e11:
		return 1e9
	case a < 1e14:
		return 1e6
	case a < 1e17:
		return 1e3
	default:
		return 1
	}
}

func intTime(i int64) (time.Time, error) {
	// Compare as integers: float64(99_999_999_999_999_999) rounds to 1e17
	// and would change the unit.
	a := i
	if a < 0 {
		a = -a // MinInt64 stays negative, and is nanoseconds below anyway
	}
	unit := int64(1)
	switch {
	case a >= 0 && a < 1e11:
		unit = 1e9
	case a >= 0 && a < 1e14:
		unit = 1e6
	case a >= 0 && a < 1e17:
		unit = 1e3
	}
	// |i| < 1e11 s is about 1e20 ns: too big for int64 past year 2262, so
	// split seconds and nanoseconds rather than multiplying blindly.
	if unit == 1e9 {
		if i > maxUnixSec || i < -maxUnixSec {
			return time.Time{}, fmt.Errorf("cannot parse %d: out of range", i)
		}
		return time.Unix(i, 0).UTC(), nil
	}
	return time.Unix(i/(1e9/unit), (i%(1e9/unit))*unit).UTC(), nil
}

// maxUnixSec keeps seconds inside what UnixNano can represent, so event
// times survive snapshots and arithmetic (year 2262).
const maxUnixSec = math.MaxInt64 / 1_000_000_000

func floatTime(f float64) (time.Time, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, fmt.Errorf("cannot parse %v", f)
	}
	unit := unitOf(math.Abs(f))
	whole := math.Floor(f)
	frac := f - whole
	var ns float64
	switch unit {
	case 1e9, 1e6:
		// keep fractions to the microsecond: float noise lies below it
		ns = math.Round(frac*float64(unit)/1e3) * 1e3
	default:
		ns = math.Round(frac * float64(unit))
	}
	if w := whole * float64(unit); math.Abs(w) >= 9.2e18 {
		return time.Time{}, fmt.Errorf("cannot parse %v: out of range", f)
	}
	sec := int64(whole) / (1e9 / unit)
	rem := (int64(whole) % (1e9 / unit)) * unit
	return time.Unix(sec, rem+int64(ns)).UTC(), nil
}

// eventTime finds the event time of fields: the named field only when
// timeField is set, else the first of ts, time, timestamp; recv when absent.
func eventTime(fields map[string]any, timeField string, recv time.Time) (time.Time, error) {
	name, v, ok := timeField, any(nil), false
	if timeField != "" {
		v, ok = fields[timeField]
	} else {
		for _, n := range timeFields {
			if v, ok = fields[n]; ok {
				name = n
				break
			}
		}
	}
	if !ok {
		if recv.IsZero() {
			return time.Time{}, errNoTime
		}
		return recv.UTC(), nil
	}
	t, err := ParseTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("time field %q: %w", name, err)
	}
	return t, nil
}
