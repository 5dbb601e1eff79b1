package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunWritesReport builds a two-file NAB-shaped directory (a spike
// inside a labelled window, and a clean file) and checks the report's table.
func TestRunWritesReport(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var spiky, flat strings.Builder
	spiky.WriteString("timestamp,value\n")
	flat.WriteString("timestamp,value\n")
	for i := 0; i < 600; i++ {
		ts := "2014-04-01 " + hhmm(i) + ":00"
		v := "10." + string(rune('0'+i%7))
		if i == 500 {
			v = "90"
		}
		spiky.WriteString(ts + "," + v + "\n")
		flat.WriteString(ts + ",10." + string(rune('0'+i%7)) + "\n")
	}
	write("data/g/spiky.csv", spiky.String())
	write("data/g/flat.csv", flat.String())
	write("labels/combined_windows.json", `{"g/spiky.csv": [["2014-04-01 08:10:00.000000", "2014-04-01 08:30:00.000000"]], "g/flat.csv": []}`)
	out := filepath.Join(dir, "detectors.md")
	if err := run([]string{"-nab", dir, "-out", out, "-nosim"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	// ewma warms up in 30 points and fires at the spike at 08:20, row 500
	// of the window's rows 490..510: raw = sigmoid(-11/21)/sigmoid(-1)
	// = 0.8759, normalised (0.8759+1)/2 = 93.8; no false firing.
	for _, want := range []string{"| ewma | **", "| g/spiky.csv |", "## Trend: slope over a sliding window", "2 files, 1200 rows, 1 labelled windows",
		"## The default at neighbouring thresholds", "\n| 4.5 | ", "\n| 4.75 | ", "\n| 5 | "} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	line := md[strings.Index(md, "| ewma | **"):]
	line = line[:strings.Index(line, "\n")]
	if line != "| ewma | **93.8** | 1 | 0 | 0 | 93.8 | 93.8–93.8 |" {
		t.Errorf("ewma row %q: want score 93.8, 1 hit, 0 missed, 0 false", line)
	}
}

func hhmm(i int) string {
	const d = "0123456789"
	h, m := i/60, i%60
	return string([]byte{d[h/10], d[h%10], ':', d[m/10], d[m%10]})
}

// TestSeedReportSums: the seeds' table sums each fault type over the seeds
// and gives the spread of a seed's recall.
func TestSeedReportSums(t *testing.T) {
	su := simSetups[0]
	row := func(seed int64, spike, faults int) simScore {
		s := su
		s.Seed = seed
		return simScore{Setup: s, Firings: spike, Matched: spike,
			Faults: map[string]int{"spike": faults}, Detected: map[string]int{"spike": spike},
			Points: pointScore{TP: spike, FP: 10 - faults, FN: faults - spike}}
	}
	md := seedReport([][]simScore{{row(1, 9, 10), row(2, 6, 10)}})
	// Point F1: 2·9/(18+0+1) = 0.95, 2·6/(12+0+4) = 0.75, summed 2·15/(30+0+5) = 0.86.
	for _, want := range []string{"| 1 | 9/10 |", "| 2 | 6/10 |", "**15/20 = 75 %**", "| spread | 60–90 % |",
		"| 0.95 |\n", "| 0.75 |\n", "| 0.86 |\n"} {
		if !strings.Contains(md, want) {
			t.Errorf("seed report lacks %q:\n%s", want, md)
		}
	}
}

// TestPointScore: the point-wise F1 of the readings in faults and in
// firings, on a small fleet: every reading after warm-up is counted once,
// and a method that never fires finds none of them.
func TestPointScore(t *testing.T) {
	if got := (pointScore{}).f1(); got != "–" {
		t.Errorf("empty f1 %q", got)
	}
	if got := (pointScore{TP: 1, FP: 1, FN: 0}).f1(); got != "0.67" {
		t.Errorf("f1 %q, want 0.67", got)
	}
	su := simSetups[1]
	su.Span, su.Warmup = 2*time.Hour, 30*time.Minute
	cfg, err := su.withLevels()
	if err != nil {
		t.Fatal(err)
	}
	readings := simDevices * int((su.Span-su.Warmup)/su.Rate)
	for _, c := range []config{{Name: "auto", Method: "auto"}, {Name: "never", Method: "zscore", Params: map[string]any{"threshold": 1e9}}} {
		_, _, ps, err := simFirings(c, su, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if c.Name == "never" && (ps.TP != 0 || ps.FP != 0 || ps.FN == 0) {
			t.Errorf("a method that never fires: %+v", ps)
		}
		if c.Name == "auto" && ps.TP == 0 {
			t.Errorf("auto in no fault's readings: %+v", ps)
		}
		// Readings neither in a fault nor in a firing are not counted;
		// the rest are at most all of them (a few are malformed).
		if n := ps.TP + ps.FP + ps.FN; n == 0 || n > readings {
			t.Errorf("%s: %d readings counted of %d", c.Name, n, readings)
		}
	}
}
