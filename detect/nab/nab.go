// Package nab scores anomaly detections the way the Numenta Anomaly Benchmark
// (NAB v1.1) does, and reads NAB's data and label files. It exists so that
// vigil-eval can grade the detect package on labelled data with a scorer that
// has its own tests. It imports only the standard library.
package nab

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"time"
)

// Profile weighs the outcomes. NAB normalises each detection with the scaled
// sigmoid of its position, then multiplies by these weights.
type Profile struct{ TP, FP, FN float64 }

// Standard is NAB's standard application profile.
var Standard = Profile{TP: 1.0, FP: 0.11, FN: 1.0}

// Window is a labelled anomaly window, both ends inclusive.
type Window struct{ Start, End time.Time }

// Result is one file's (or a sum of files') score.
type Result struct {
	Raw, Null, Perfect float64 // detector, never-fires and perfect raw scores
	TP, FP, FN         int     // windows hit, detections outside windows, windows missed
	Windows            int
}

// Add sums two results (NAB normalises over the sum of all files).
func (r Result) Add(o Result) Result {
	return Result{r.Raw + o.Raw, r.Null + o.Null, r.Perfect + o.Perfect,
		r.TP + o.TP, r.FP + o.FP, r.FN + o.FN, r.Windows + o.Windows}
}

// Normalized maps Raw onto 0 (never fires) .. 100 (perfect). It is NaN when
// there are no windows (null and perfect coincide).
func (r Result) Normalized() float64 {
	if r.Perfect == r.Null {
		return math.NaN()
	}
	return 100 * (r.Raw - r.Null) / (r.Perfect - r.Null)
}

// Probation is the number of leading rows NAB leaves unscored: 15% of the
// file, at most 750.
func Probation(rows int) int { return min(int(math.Floor(0.15*float64(rows))), 750) }

// ScaledSigmoid is NAB's weighting of a relative position: about 0.987 at the
// left edge of a window (-1), 0 at its right edge, approaching -1 far past it.
func ScaledSigmoid(x float64) float64 {
	if x > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*x)) - 1
}

// Score grades detections (times of rows where the detector fired) on one
// file with rows at times ts (ascending) and labelled windows, as NAB's
// sweeper does: rows in probation are not scored; in each window only the
// earliest detection counts, weighted by its position (1.0 at the left edge);
// a detection outside every window costs FP weight times the sigmoid of its
// distance past the previous window (the full FP weight before the first
// window); each window without a detection costs the FN weight.
func Score(ts []time.Time, windows []Window, detections []time.Time, p Profile) Result {
	n := len(ts)
	det := make([]bool, n)
	for _, t := range detections {
		i := sort.Search(n, func(i int) bool { return !ts[i].Before(t) })
		if i < n {
			det[i] = true
		}
	}
	type span struct{ l, r int }
	var spans []span
	for _, w := range windows {
		l := sort.Search(n, func(i int) bool { return !ts[i].Before(w.Start) })
		r := sort.Search(n, func(i int) bool { return ts[i].After(w.End) }) - 1
		if l <= r {
			spans = append(spans, span{l, r})
		}
	}
	res := Result{Windows: len(spans)}
	res.Null = -p.FN * float64(len(spans))
	res.Perfect = p.TP * float64(len(spans))
	maxTP := ScaledSigmoid(-1)
	prob := Probation(n)
	hit := make([]bool, len(spans))
	w := 0 // first window not yet wholly behind i
	for i := prob; i < n; i++ {
		for w < len(spans) && spans[w].r < i {
			w++
		}
		if !det[i] {
			continue
		}
		if w < len(spans) && spans[w].l <= i {
			if !hit[w] {
				hit[w] = true
				width := float64(spans[w].r - spans[w].l + 1)
				pos := -float64(spans[w].r-i+1) / width
				res.Raw += p.TP * ScaledSigmoid(pos) / maxTP
				res.TP++
			}
			continue
		}
		res.FP++
		if w == 0 {
			res.Raw -= p.FP
			continue
		}
		prev := spans[w-1]
		width := float64(prev.r - prev.l + 1)
		pos := float64(i-prev.r) / math.Max(width-1, 1)
		res.Raw += float64(p.FP * ScaledSigmoid(pos))
	}
	for _, h := range hit {
		if !h {
			res.FN++
			res.Raw -= p.FN
		}
	}
	return res
}

const layout = "2006-01-02 15:04:05"

// ReadCSV reads a NAB data file: a header, then `timestamp,value` rows.
func ReadCSV(r io.Reader) ([]time.Time, []float64, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 2
	if _, err := cr.Read(); err != nil {
		return nil, nil, fmt.Errorf("read header: %w", err)
	}
	var ts []time.Time
	var vs []float64
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return ts, vs, nil
		}
		if err != nil {
			return nil, nil, err
		}
		t, err := time.Parse(layout, rec[0])
		if err != nil {
			return nil, nil, fmt.Errorf("row %d: %w", len(ts)+2, err)
		}
		v, err := strconv.ParseFloat(rec[1], 64)
		if err != nil {
			return nil, nil, fmt.Errorf("row %d: %w", len(ts)+2, err)
		}
		ts = append(ts, t)
		vs = append(vs, v)
	}
}

// ReadLabels reads labels/combined_windows.json: file → windows.
func ReadLabels(path string) (map[string][]Window, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string][][2]string
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	out := make(map[string][]Window, len(raw))
	for f, ws := range raw {
		out[f] = []Window{}
		for _, w := range ws {
			s, err1 := time.Parse(layout+".999999", w[0])
			e, err2 := time.Parse(layout+".999999", w[1])
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("%s: bad window %v", f, w)
			}
			out[f] = append(out[f], Window{s, e})
		}
	}
	return out, nil
}
