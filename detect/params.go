package detect

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// ParamError is one unknown or invalid parameter under `detect:`. New returns
// every one it finds (joined with errors.Join) so the rule loader can point at
// each offending YAML key.
type ParamError struct{ Param, Msg string }

func (e *ParamError) Error() string { return e.Param + ": " + e.Msg }

// config is a Spec's parameters, parsed and with defaults filled in.
type config struct {
	method     string
	window     time.Duration // zscore, mad: baseline window in event time
	threshold  float64       // score at or above which a point is anomalous (cusum: h)
	minSamples int           // baseline points needed before scoring
	direction  int           // 0 both, +1 up only, -1 down only
	clear      int           // consecutive normal points that resolve a firing key
	relearn    int           // consecutive anomalous points after which the baseline restarts (0: never)
	refire     int           // auto: normal points in a row after which a strong anomaly starts a new firing (0: never)
	learnAnom  bool          // anomalous points update the baseline too
	alpha      float64       // ewma, cusum: smoothing per point (when halflifeT == 0)
	halflifeT  time.Duration // ewma, cusum: halflife in event time (overrides alpha)
	k          float64       // cusum: allowance in standard deviations
	period     time.Duration // seasonal: length of the cycle
	resolution time.Duration // seasonal: width of a phase bucket
	phaseHalf  float64       // seasonal: halflife of a bucket's mean, in points of that bucket
	shiftK     float64       // seasonal: allowance of the CUSUM on residuals, in residual RMS
	shiftH     float64       // seasonal: decision level of the CUSUM on residuals (0: off)
}

// defaults per method, tuned on the NAB subset (see docs/detectors.md).
func defaults(method string) config {
	c := config{method: method, window: time.Hour, minSamples: 30, clear: 150, relearn: 120}
	switch method {
	case "zscore":
		c.threshold = 5
	case "mad":
		c.threshold = 6
	case "ewma":
		c.threshold = 5
		c.alpha = halflifeAlpha(60)
	case "seasonal":
		c.threshold = 5
		c.alpha = halflifeAlpha(60)
		c.period = 24 * time.Hour
		c.resolution = 15 * time.Minute
		c.phaseHalf = 3
		c.shiftK = 1.5
		c.shiftH = 20
	case "auto":
		c.threshold = 4.75
		c.relearn = autoRelearn
		c.refire = autoRefire
	case "cusum":
		c.threshold = 8
		c.k = 1
		c.alpha = halflifeAlpha(120)
	}
	return c
}

// halflifeAlpha is the per-point smoothing whose weight halves after n points.
func halflifeAlpha(n float64) float64 { return 1 - math.Exp2(-1/n) }

// params lists which parameters each method accepts.
var params = map[string][]string{
	"zscore":   {"window", "threshold", "min_samples", "direction", "clear", "relearn", "learn_anomalies"},
	"mad":      {"window", "threshold", "min_samples", "direction", "clear", "relearn", "learn_anomalies"},
	"ewma":     {"alpha", "halflife", "threshold", "min_samples", "direction", "clear", "relearn", "learn_anomalies"},
	"seasonal": {"period", "resolution", "phase_halflife", "shift_k", "shift_h", "alpha", "halflife", "threshold", "min_samples", "direction", "clear", "relearn", "learn_anomalies"},
	"auto":     {"threshold", "min_samples", "direction", "clear", "relearn", "learn_anomalies"},
	"cusum":    {"alpha", "halflife", "k", "h", "threshold", "min_samples", "direction", "clear", "relearn", "learn_anomalies"},
}

// Default is the method used when a rule names none.
const Default = "auto"

// Methods lists the detector methods, sorted.
func Methods() []string {
	m := make([]string, 0, len(params))
	for k := range params {
		m = append(m, k)
	}
	sort.Strings(m)
	return m
}

func parse(method string, raw map[string]any) (config, error) {
	if method == "" {
		method = Default
	}
	allowed, ok := params[method]
	if !ok {
		return config{}, errors.Join(&ParamError{"method", fmt.Sprintf("unknown method %q (want one of %s)", method, strings.Join(Methods(), ", "))})
	}
	c := defaults(method)
	var errs []error
	bad := func(p, format string, a ...any) { errs = append(errs, &ParamError{p, fmt.Sprintf(format, a...)}) }
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	_, hasAlpha := raw["alpha"]
	_, hasHalf := raw["halflife"]
	if hasAlpha && hasHalf {
		bad("halflife", "give alpha or halflife, not both")
	}
	_, hasH := raw["h"]
	_, hasThreshold := raw["threshold"]
	if hasH && hasThreshold {
		bad("threshold", "h is cusum's threshold: give one of them")
	}
	for _, k := range keys {
		v := raw[k]
		if !contains(allowed, k) {
			bad(k, "unknown parameter for method %s (want one of %s)", method, strings.Join(allowed, ", "))
			continue
		}
		switch k {
		case "window", "period", "resolution":
			d, err := duration(v)
			if err != nil || d <= 0 {
				bad(k, "want a positive duration such as 1h, got %v", v)
				continue
			}
			switch k {
			case "window":
				c.window = d
			case "period":
				c.period = d
			default:
				c.resolution = d
			}
		case "phase_halflife":
			f, ok := number(v)
			if !ok || f <= 0 || math.IsInf(f, 0) {
				bad(k, "want a positive number of points, got %v", v)
				continue
			}
			c.phaseHalf = f
		case "shift_k", "shift_h":
			// shift_h: 0 turns the level-shift test off.
			f, ok := number(v)
			if !ok || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
				bad(k, "want a number >= 0, got %v", v)
				continue
			}
			if k == "shift_k" {
				c.shiftK = f
			} else {
				c.shiftH = f
			}
		case "threshold", "h", "k":
			f, ok := number(v)
			if !ok || f < 0 || (k != "k" && f == 0) || math.IsInf(f, 0) || math.IsNaN(f) {
				bad(k, "want a positive number, got %v", v)
				continue
			}
			if k == "k" {
				c.k = f
			} else {
				c.threshold = f
			}
		case "min_samples", "clear", "relearn":
			f, ok := number(v)
			if !ok || f != math.Trunc(f) || f < 0 || f > 1e6 || (k != "relearn" && f < 1) {
				bad(k, "want a whole number%s, got %v", map[bool]string{true: " >= 0", false: " >= 1"}[k == "relearn"], v)
				continue
			}
			switch k {
			case "min_samples":
				c.minSamples = int(f)
			case "clear":
				c.clear = int(f)
			default:
				c.relearn = int(f)
			}
		case "direction":
			s, _ := v.(string)
			switch s {
			case "both":
				c.direction = 0
			case "up":
				c.direction = 1
			case "down":
				c.direction = -1
			default:
				bad(k, "want both, up or down, got %v", v)
			}
		case "learn_anomalies":
			b, ok := v.(bool)
			if !ok {
				bad(k, "want true or false, got %v", v)
				continue
			}
			c.learnAnom = b
		case "alpha":
			f, ok := number(v)
			if !ok || f <= 0 || f > 1 {
				bad(k, "want a number in (0, 1], got %v", v)
				continue
			}
			c.alpha = f
		case "halflife":
			// A number is a count of points; a duration decays in event time,
			// which suits sensors that report irregularly.
			if f, ok := number(v); ok {
				if f <= 0 || math.IsInf(f, 0) {
					bad(k, "want a positive number of points or a duration, got %v", v)
					continue
				}
				c.alpha = halflifeAlpha(f)
				continue
			}
			d, err := duration(v)
			if err != nil || d <= 0 {
				bad(k, "want a positive number of points or a duration such as 30m, got %v", v)
				continue
			}
			c.halflifeT = d
		}
	}
	if c.method == "seasonal" && c.resolution > 0 && c.period > 0 {
		if c.period%c.resolution != 0 || c.period/c.resolution > 10080 {
			bad("resolution", "want a divisor of period giving at most 10080 buckets, got %v for %v", c.resolution, c.period)
		}
	}
	return c, errors.Join(errs...)
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}

func duration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case string:
		return event.ParseDuration(x)
	case time.Duration:
		return x, nil
	}
	return 0, fmt.Errorf("not a duration")
}
