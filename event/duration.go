package event

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Day and Week are the units ParseDuration adds to Go's.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// ParseDuration reads a duration as rule files and vigil.yaml write it: Go
// syntax ("90s", "1h30m", "1.5h", "300ms") plus days and weeks as
// Prometheus writes them ("1d", "7d", "2w", "1d12h"). A day is 24 hours and
// a week 7 days: event time has no calendar, so no daylight-saving days.
func ParseDuration(s string) (time.Duration, error) {
	if !strings.ContainsAny(s, "dw") {
		return time.ParseDuration(s)
	}
	bad := errors.New("invalid duration " + strconv.Quote(s))
	rest, neg := s, false
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		neg, rest = rest[0] == '-', rest[1:]
	}
	if rest == "" {
		return 0, bad
	}
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		if num == "" || unit == "" {
			return 0, bad
		}
		var d time.Duration
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, bad
			}
			size := Day
			if unit == "w" {
				size = Week
			}
			v := f * float64(size)
			if v >= math.MaxInt64 {
				return 0, bad
			}
			d = time.Duration(v)
		default:
			var err error
			if d, err = time.ParseDuration(num + unit); err != nil {
				return 0, bad
			}
		}
		if d > math.MaxInt64-total {
			return 0, bad
		}
		total += d
		rest = rest[j:]
	}
	if neg {
		total = -total
	}
	return total, nil
}
