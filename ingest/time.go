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
// Fractions are kept as written, down to the nanosecond. Times must lie
// between the years 1677 and 2262, the range of Unix nanoseconds that
// snapshots store.
func ParseTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		if x.Before(minTime) || x.After(maxTime) {
			return time.Time{}, fmt.Errorf("cannot parse %v: out of range", x)
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
	case float64, json.Number, int64:
		return "a number"
	case string:
		return "a string"
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
		if !strings.ContainsAny(s, "eE") {
			return decimalTime(s)
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
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fmt.Errorf("cannot parse %q: out of range", clip(s))
	}
	return t.UTC(), nil
}

// The range of Unix nanoseconds, in which snapshots store event times.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

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

// unixTime builds the time of a Unix number: whole units (>= 0), the
// fraction of a unit in billionths, and the sign. The unit follows from
// the magnitude of whole, compared as an integer: float64 would round
// 99,999,999,999,999,999 up to 1e17 and change the unit.
func unixTime(neg bool, whole, frac9 int64) (time.Time, error) {
	unit := int64(1) // nanoseconds
	switch {
	case whole < 1e11:
		unit = 1e9
	case whole < 1e14:
		unit = 1e6
	case whole < 1e17:
		unit = 1e3
	}
	per := 1e9 / unit
	sec, nsec := whole/per, (whole%per)*unit+frac9*unit/1e9
	if neg {
		sec, nsec = -sec, -nsec
	}
	t := time.Unix(sec, nsec)
	if t.Before(minTime) || t.After(maxTime) {
		if neg {
			whole = -whole
		}
		return time.Time{}, fmt.Errorf("cannot parse %d: out of range", whole)
	}
	return t.UTC(), nil
}

func intTime(i int64) (time.Time, error) {
	switch {
	case i == math.MinInt64: // has no positive counterpart; nanoseconds
		return time.Unix(0, i).UTC(), nil
	case i < 0:
		return unixTime(true, -i, 0)
	}
	return unixTime(false, i, 0)
}

// decimalTime reads a Unix number written in decimal, exactly: the
// fraction keeps every digit down to the nanosecond.
func decimalTime(s string) (time.Time, error) {
	num, neg := s, false
	if num != "" && (num[0] == '-' || num[0] == '+') {
		neg, num = num[0] == '-', num[1:]
	}
	intPart, fracPart, _ := strings.Cut(num, ".")
	if intPart == "" && fracPart == "" || !allDigits(intPart) || !allDigits(fracPart) {
		return time.Time{}, fmt.Errorf("cannot parse %q", clip(s))
	}
	var whole int64
	if intPart != "" {
		var err error
		if whole, err = strconv.ParseInt(intPart, 10, 64); err != nil {
			return time.Time{}, fmt.Errorf("cannot parse %q: out of range", clip(s))
		}
	}
	var frac9 int64
	for i := 0; i < 9; i++ {
		frac9 *= 10
		if i < len(fracPart) {
			frac9 += int64(fracPart[i] - '0')
		}
	}
	return unixTime(neg, whole, frac9)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// floatTime reads a Unix number that arrived as a float64, typically a
// JSON number. Its shortest decimal form is what the device wrote (for up
// to 15 significant digits), so 1767607200.123 means .123 s exactly and
// not the binary neighbour 1767607200.1229999.
func floatTime(f float64) (time.Time, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, fmt.Errorf("cannot parse %v", f)
	}
	if math.Abs(f) >= 9.2e18 {
		return time.Time{}, fmt.Errorf("cannot parse %v: out of range", f)
	}
	if f == math.Trunc(f) {
		return intTime(int64(f))
	}
	return decimalTime(strconv.FormatFloat(f, 'f', -1, 64))
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
	return timeOf(name, v, ok, recv)
}

// timeOf is eventTime once the field is found (ok): v, the value of the
// member called name.
func timeOf(name string, v any, ok bool, recv time.Time) (time.Time, error) {
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
