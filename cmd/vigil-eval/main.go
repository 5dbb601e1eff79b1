// Command vigil-eval grades the detect package on labelled data and writes
// docs/detectors.md. Part (1) drives the real detect.Detector through its
// operator API over the NAB subset and scores firings with detect/nab. A
// further data set (the simulator's ground truth) plugs in as another
// section: see sections in report.go.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-gw/vigil/detect"
	"github.com/vigil-gw/vigil/detect/nab"
	"github.com/vigil-gw/vigil/event"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-eval:", err)
		os.Exit(1)
	}
}

// config is one detector set-up under evaluation.
type config struct {
	Name   string
	Method string
	Params map[string]any
}

func (c config) String() string {
	if len(c.Params) == 0 {
		return c.Method + " (defaults)"
	}
	keys := make([]string, 0, len(c.Params))
	for k := range c.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(c.Method)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, c.Params[k])
	}
	return b.String()
}

// series is one NAB file.
type series struct {
	Name    string // folder/file.csv, as in the labels
	Group   string // folder
	TS      []time.Time
	Vals    []float64
	Windows []nab.Window
}

func run(args []string) error {
	fs := flag.NewFlagSet("vigil-eval", flag.ContinueOnError)
	dir := fs.String("nab", "../shared/nab", "NAB subset directory (data/ and labels/)")
	out := fs.String("out", "docs/detectors.md", "report to write; - for stdout")
	noSim := fs.Bool("nosim", false, "leave out the simulator section")
	sweep := fs.Bool("sweep", false, "print scores of a parameter grid (for tuning defaults) instead of the report")
	var try []string
	trySeeds := []int64{simSetups[0].Seed}
	fs.Func("seeds", "with -try: the simulator fleets' seeds, comma-separated (default 6, the report's)", func(v string) error {
		trySeeds = trySeeds[:0]
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil {
				return fmt.Errorf("seed %q: %w", f, err)
			}
			trySeeds = append(trySeeds, n)
		}
		return nil
	})
	fs.Func("try", "score one set-up per file, e.g. -try 'cusum k=1 h=6' (repeatable)", func(v string) error {
		try = append(try, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := loadNAB(*dir)
	if err != nil {
		return err
	}
	if *sweep {
		return runSweep(data)
	}
	if len(try) > 0 {
		return runTry(try, data, !*noSim, trySeeds)
	}
	start := time.Now()
	var rows []methodScore
	for _, c := range reportConfigs() {
		rows = append(rows, evalNAB(c, data))
	}
	var simRows [][]simScore
	if !*noSim {
		for _, su := range simSetups {
			var rows []simScore
			for _, c := range reportConfigs() {
				rows = append(rows, evalSim(c, su))
			}
			simRows = append(simRows, rows)
		}
	}
	seeds := evalSeeds(!*noSim)
	near := evalNeighbours(data, !*noSim)
	md := report(rows, simRows, seeds, near, data, time.Since(start))
	if *out == "-" {
		_, err = os.Stdout.WriteString(md)
		return err
	}
	return os.WriteFile(*out, []byte(md), 0o644)
}

func loadNAB(dir string) ([]series, error) {
	labels, err := nab.ReadLabels(filepath.Join(dir, "labels", "combined_windows.json"))
	if err != nil {
		return nil, fmt.Errorf("read nab labels: %w", err)
	}
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []series
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, "data", filepath.FromSlash(n)))
		if err != nil {
			return nil, fmt.Errorf("read nab data: %w", err)
		}
		ts, vs, err := nab.ReadCSV(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", n, err)
		}
		out = append(out, series{Name: n, Group: filepath.Dir(filepath.FromSlash(n)), TS: ts, Vals: vs, Windows: labels[n]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no nab files under %s", dir)
	}
	return out, nil
}

// methodScore is one configuration's results per file.
type methodScore struct {
	Config  config
	Files   map[string]nab.Result
	Firings int
	Err     error
}

// detections runs one series through a fresh Detector exactly as the engine
// would with lateness 0: Add, then Advance to the event's time.
func detections(c config, s series) ([]time.Time, error) {
	d, err := detect.New(detect.Spec{Method: c.Method, Params: c.Params, Value: func(ev *event.Event) (float64, bool) {
		v, ok := ev.Fields["value"].(float64)
		return v, ok
	}})
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for i, t := range s.TS {
		ev := &event.Event{Topic: s.Name, Time: t, Seq: uint64(i), Fields: map[string]any{"value": s.Vals[i]}}
		d.Add(s.Name, ev)
		for _, r := range d.Advance(t) {
			if r.State == event.Firing {
				out = append(out, r.Time)
			}
		}
	}
	return out, nil
}

func evalNAB(c config, data []series) methodScore {
	ms := methodScore{Config: c, Files: map[string]nab.Result{}}
	for _, s := range data {
		det, err := detections(c, s)
		if err != nil {
			ms.Err = err
			return ms
		}
		ms.Firings += len(det)
		ms.Files[s.Name] = nab.Score(s.TS, s.Windows, det, nab.Standard)
	}
	return ms
}

// total sums the files whose name passes keep.
func (m methodScore) total(keep func(string) bool) nab.Result {
	var r nab.Result
	for n, f := range m.Files {
		if keep(n) {
			r = r.Add(f)
		}
	}
	return r
}

func all(string) bool { return true }
