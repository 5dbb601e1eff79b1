package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-gw/vigil/detect"
	"github.com/vigil-gw/vigil/event"
	sim "github.com/vigil-gw/vigil/firmware-sim"
)

// The simulator sections: a deterministic fleet with random value faults,
// scored against the simulator's own ground truth, at two rates.
const simDevices = 10

// simSetup is one fleet: its rate, how long it runs, the warm-up left out
// of the score (the same for every method), how often a random fault
// starts, and the level shifts: how long each lasts, how often one starts
// on a device, and the stagger between devices.
type simSetup struct {
	Name                               string
	Seed                               int64
	Rate, Span, Warmup, FaultEvery     time.Duration
	LevelLen, LevelEvery, LevelStagger time.Duration
}

var simSetups = []simSetup{
	{"one reading a minute for 14 days", 6, time.Minute, 14 * 24 * time.Hour, 48 * time.Hour, 3 * time.Hour,
		3 * time.Hour, 41 * time.Hour, 5 * time.Hour},
	{"one reading a second for 12 hours", 6, time.Second, 12 * time.Hour, time.Hour, 10 * time.Minute,
		10 * time.Minute, 97 * time.Minute, 11 * time.Minute},
}

// grace: a firing this soon after a fault ends still counts.
func (s simSetup) grace() time.Duration { return 10 * s.Rate }

// simFaults are the fault types scored. spike, drift and stuck are the
// simulator's random faults; level is a step of +levelMag of the kind's
// typical deviation lasting levelLen, scheduled explicitly (the simulator's
// spike fault held for hours) on every device every levelEvery.
var simFaults = []string{"spike", "drift", "stuck", "level"}

const levelMag = 10

// simScore is one configuration's result on the fleet.
type simScore struct {
	Config           config
	Setup            simSetup
	Firings, Matched int // firings after warm-up; those inside a fault (+grace)
	Faults, Detected map[string]int
	Delays           map[string][]time.Duration
	// per sensor kind: firings, matched, faults, detected
	Kind map[string]*kindScore
	// Clean: firings after warm-up on the same fleet with no fault at all.
	Clean int
	// Points: the readings after warm-up, each in a fault or not and in
	// a firing or not.
	Points pointScore
	Err    error
}

// pointScore counts readings: in a firing and in a fault (TP), in a
// firing only (FP), in a fault only (FN). A reading is in a fault from the
// fault's start to its end, and in a firing from a firing alert of its key
// to the key's resolved alert: a point-wise benchmark's view of alerts.
type pointScore struct{ TP, FP, FN int }

func (p pointScore) add(q pointScore) pointScore {
	return pointScore{p.TP + q.TP, p.FP + q.FP, p.FN + q.FN}
}

// f1 is the point-wise F1 as text ("–" with nothing to score).
func (p pointScore) f1() string {
	if 2*p.TP+p.FP+p.FN == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", 2*float64(p.TP)/float64(2*p.TP+p.FP+p.FN))
}

type kindScore struct{ Firings, Matched, Faults, Detected, Clean int }

// cleanWeeks is how many device-weeks the clean run scores.
func (s simSetup) cleanWeeks() float64 {
	return float64(simDevices) * float64(s.Span-s.Warmup) / float64(7*24*time.Hour)
}

func (s simSetup) config() sim.Config {
	return sim.Config{Seed: s.Seed, Devices: simDevices, Kinds: []string{"temperature", "humidity", "vibration", "heat", "power"},
		Rate: s.Rate, Format: "json", FaultEvery: s.FaultEvery, FaultKinds: []string{"spike", "drift", "stuck"}}
}

// withLevels adds the level shifts to the fleet: on device i from warm-up
// + i·LevelStagger, every LevelEvery (upward: the simulator takes no
// negative magnitude).
func (su simSetup) withLevels() (sim.Config, error) {
	c := su.config()
	s, err := sim.New(c)
	if err != nil {
		return c, err
	}
	c.Start = s.Config().Start
	until := c.Start.Add(su.Span - su.LevelLen - su.LevelStagger)
	for i, dev := range s.Devices() {
		for at := c.Start.Add(su.Warmup + time.Duration(i)*su.LevelStagger); at.Before(until); at = at.Add(su.LevelEvery) {
			c.Faults = append(c.Faults, sim.Fault{Device: dev, Kind: "spike", Start: at, End: at.Add(su.LevelLen), Magnitude: levelMag})
		}
	}
	return c, nil
}

// simFirings replays a fleet into a fresh Detector (key: topic) and returns
// the firings after warm-up, with the fleet's ground truth and the
// readings after warm-up scored point-wise.
func simFirings(c config, su simSetup, cfg sim.Config) ([]event.Result, []sim.Fault, pointScore, error) {
	var ps pointScore
	s, err := sim.New(cfg)
	if err != nil {
		return nil, nil, ps, err
	}
	d, err := detect.New(detect.Spec{Method: c.Method, Params: c.Params, Value: func(ev *event.Event) (float64, bool) {
		v, ok := ev.Fields["v"].(float64)
		return v, ok
	}})
	if err != nil {
		return nil, nil, ps, err
	}
	start := s.Config().Start
	until := start.Add(su.Span)
	var firings []event.Result
	type reading struct {
		dev    string
		at     time.Time
		firing bool
	}
	var readings []reading
	firing := map[string]bool{} // by device
	for seq := uint64(0); ; seq++ {
		r := s.Next()
		if !r.Time.Before(until) {
			break
		}
		var m map[string]any
		if r.Malformed || json.Unmarshal(r.Payload, &m) != nil {
			continue
		}
		v, ok := m[r.Kind].(float64)
		if !ok {
			continue
		}
		d.Add(r.Topic, &event.Event{Topic: r.Topic, Time: r.Time, Seq: seq, Fields: map[string]any{"v": v, "device": r.Device, "kind": r.Kind}})
		for _, res := range d.Advance(r.Time) {
			firing[res.Event.Fields["device"].(string)] = res.State == event.Firing
			if res.State == event.Firing && !res.Time.Before(start.Add(su.Warmup)) {
				firings = append(firings, res)
			}
		}
		if !r.Time.Before(start.Add(su.Warmup)) {
			// The detector has scored this reading (one point a key at a
			// time, in order), so the key's state is the one it left.
			readings = append(readings, reading{r.Device, r.Time, firing[r.Device]})
		}
	}
	faults := map[string][]sim.Fault{}
	for _, f := range s.Truth() {
		faults[f.Device] = append(faults[f.Device], f)
	}
	for _, r := range readings {
		in := false
		for _, f := range faults[r.dev] {
			if !r.at.Before(f.Start) && r.at.Before(f.End) {
				in = true
				break
			}
		}
		switch {
		case in && r.firing:
			ps.TP++
		case r.firing:
			ps.FP++
		case in:
			ps.FN++
		}
	}
	var truth []sim.Fault
	for _, f := range s.Truth() {
		if !f.Start.Before(start.Add(su.Warmup)) && f.End.Before(until) {
			if f.Kind == "spike" && f.Readings > 10 {
				f.Kind = "level"
			}
			truth = append(truth, f)
		}
	}
	return firings, truth, ps, nil
}

// evalSim scores a configuration on the fleet with faults (firings matched
// to the injected faults of the same device) and on the clean fleet.
func evalSim(c config, su simSetup) simScore {
	ss := simScore{Config: c, Setup: su, Faults: map[string]int{}, Detected: map[string]int{}, Delays: map[string][]time.Duration{}, Kind: map[string]*kindScore{}}
	cfg, err := su.withLevels()
	if err != nil {
		ss.Err = err
		return ss
	}
	firings, truth, points, err := simFirings(c, su, cfg)
	if err != nil {
		ss.Err = err
		return ss
	}
	ss.Points = points
	kind := func(k string) *kindScore {
		if ss.Kind[k] == nil {
			ss.Kind[k] = &kindScore{}
		}
		return ss.Kind[k]
	}
	for _, r := range firings {
		ss.Firings++
		ks := kind(r.Event.Fields["kind"].(string))
		ks.Firings++
		for _, f := range truth {
			if r.Event.Fields["device"] == f.Device && !r.Time.Before(f.Start) && r.Time.Before(f.End.Add(su.grace())) {
				ss.Matched++
				ks.Matched++
				break
			}
		}
	}
	for _, f := range truth {
		ss.Faults[f.Kind]++
		ks := kind(f.Sensor)
		ks.Faults++
		for _, r := range firings {
			if r.Event.Fields["device"] == f.Device && !r.Time.Before(f.Start) && r.Time.Before(f.End.Add(su.grace())) {
				ss.Detected[f.Kind]++
				ks.Detected++
				ss.Delays[f.Kind] = append(ss.Delays[f.Kind], r.Time.Sub(f.Start))
				break
			}
		}
	}
	clean := su.config()
	clean.FaultEvery = 0
	firings, _, _, err = simFirings(c, su, clean)
	if err != nil {
		ss.Err = err
		return ss
	}
	ss.Clean = len(firings)
	for _, r := range firings {
		kind(r.Event.Fields["kind"].(string)).Clean++
	}
	return ss
}

// precision is matched/firings as text ("–" with no firing).
func precision(matched, firings int) string {
	if firings == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", float64(matched)/float64(firings))
}

// simLine is one configuration's result on one line (for -try).
func simLine(r simScore) string {
	if r.Err != nil {
		return "sim: error: " + r.Err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sim %s seed %d: firings %d precision %s", r.Setup.Rate, r.Setup.Seed, r.Firings, precision(r.Matched, r.Firings))
	for _, k := range simFaults {
		fmt.Fprintf(&b, " %s %d/%d", k, r.Detected[k], r.Faults[k])
	}
	fmt.Fprintf(&b, " clean %.2f/device-week point-F1 %s", float64(r.Clean)/r.Setup.cleanWeeks(), r.Points.f1())
	for _, k := range slices.Sorted(maps.Keys(r.Kind)) {
		ks := r.Kind[k]
		fmt.Fprintf(&b, "\n     %-12s firings %3d precision %s detected %d/%d", k, ks.Firings, precision(ks.Matched, ks.Firings), ks.Detected, ks.Faults)
	}
	return b.String()
}

func medianDelay(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].String()
}

// simReport renders the simulator section.
func simReport(rows []simScore) string {
	var b strings.Builder
	su := rows[0].Setup
	cfg := su.config()
	fmt.Fprintf(&b, "## Scores on the simulator's ground truth: %s\n\n"+
		"`firmware-sim` (package sim), seed %d: %d devices (%s), one JSON reading every %s for %s, "+
		"a random fault (%s) about every %s, and on every device a level shift (+%d of the kind's typical deviation "+
		"for %s) every %s. Each device's topic is a key. Faults and firings in the first %s "+
		"(warm-up) are left out for every method. A firing matches a fault of the same device "+
		"between its first affected reading and %s after its last. Precision = matched firings / all firings; "+
		"recall and median delay (firing time − fault start) per fault type. *Clean*: firings per device-week on "+
		"the same fleet with no fault at all (%.2g device-weeks). *Point F1*: each reading after warm-up is in a fault "+
		"(from its start to its end) or not, and in a firing (from a firing alert of its key to the resolved one) or not; "+
		"the F1 of the two, as a point-wise benchmark scores alerts: it rewards a firing that stays open while the fault "+
		"lasts and closes soon after.\n\n",
		su.Name, cfg.Seed, cfg.Devices, strings.Join(cfg.Kinds, ", "), cfg.Rate, su.Span, strings.Join(cfg.FaultKinds, ", "),
		cfg.FaultEvery, levelMag, su.LevelLen, su.LevelEvery, su.Warmup, su.grace(), su.cleanWeeks())
	b.WriteString("| method | firings | precision |")
	for _, k := range simFaults {
		fmt.Fprintf(&b, " %s recall | %s delay |", k, k)
	}
	b.WriteString(" clean | point F1 |\n|---|---:|---:|")
	for range simFaults {
		b.WriteString("---:|---:|")
	}
	b.WriteString("---:|---:|\n")
	for _, r := range rows {
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | error: %v |\n", r.Config.Name, r.Err)
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %s |", r.Config.Name, r.Firings, precision(r.Matched, r.Firings))
		for _, k := range simFaults {
			fmt.Fprintf(&b, " %d/%d | %s |", r.Detected[k], r.Faults[k], medianDelay(r.Delays[k]))
		}
		fmt.Fprintf(&b, " %.2f | %s |\n", float64(r.Clean)/su.cleanWeeks(), r.Points.f1())
	}
	// Per sensor kind, for the default: with a daily cycle (temperature,
	// humidity) and without (vibration, heat, power).
	def := rows[len(rows)-1]
	if def.Err == nil {
		fmt.Fprintf(&b, "\nPer sensor kind, %s (temperature and humidity follow a daily cycle; vibration, heat and power do not; "+
			"power switches between standby and a load); *clean*: its firings on the clean fleet (2 devices of each kind):\n\n"+
			"| kind | firings | precision | faults detected | clean |\n|---|---:|---:|---:|---:|\n", def.Config.Name)
		for _, k := range slices.Sorted(maps.Keys(def.Kind)) {
			ks := def.Kind[k]
			fmt.Fprintf(&b, "| %s | %d | %s | %d/%d | %d |\n", k, ks.Firings, precision(ks.Matched, ks.Firings), ks.Detected, ks.Faults, ks.Clean)
		}
	}
	b.WriteString("\n")
	return b.String()
}
