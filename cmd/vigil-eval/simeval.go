package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-gw/vigil/detect"
	"github.com/vigil-gw/vigil/event"
	sim "github.com/vigil-gw/vigil/firmware-sim"
)

// The simulator section: a deterministic fleet with random value faults,
// scored against the simulator's own ground truth.
const (
	simDays    = 14
	simWarmup  = 48 * time.Hour // seasonal's two periods; the same for every method
	simRate    = time.Minute
	simGrace   = 10 * simRate // a firing this soon after a fault ends still counts
	simDevices = 10
)

// simFaults are the fault types scored. spike, drift and stuck are the
// simulator's random faults; level is a step of +levelMag of the kind's
// typical deviation lasting levelLen, scheduled explicitly (the simulator's
// spike fault held for hours) on every device every levelEvery.
var simFaults = []string{"spike", "drift", "stuck", "level"}

const (
	levelMag   = 10
	levelLen   = 3 * time.Hour
	levelEvery = 41 * time.Hour
)

// simScore is one configuration's result on the fleet.
type simScore struct {
	Config           config
	Firings, Matched int // firings after warm-up; those inside a fault (+grace)
	Faults, Detected map[string]int
	Delays           map[string][]time.Duration
	// per sensor kind: firings, matched, faults, detected
	Kind map[string]*kindScore
	// Clean: firings after warm-up on the same fleet with no fault at all.
	Clean int
	Err   error
}

type kindScore struct{ Firings, Matched, Faults, Detected int }

// cleanWeeks is how many device-weeks the clean run scores.
func cleanWeeks() float64 {
	return float64(simDevices) * (float64(simDays)*24*float64(time.Hour) - float64(simWarmup)) / float64(7*24*time.Hour)
}

func simConfig() sim.Config {
	return sim.Config{Seed: 6, Devices: simDevices, Kinds: []string{"temperature", "humidity", "vibration", "heat", "power"},
		Rate: simRate, Format: "json", FaultEvery: 3 * time.Hour, FaultKinds: []string{"spike", "drift", "stuck"}}
}

// simWithLevels adds the level shifts to simConfig: on device i from
// warm-up + i·5h, every levelEvery (upward: the simulator takes no negative magnitude).
func simWithLevels() (sim.Config, error) {
	c := simConfig()
	s, err := sim.New(c)
	if err != nil {
		return c, err
	}
	c.Start = s.Config().Start
	until := c.Start.Add(simDays*24*time.Hour - levelLen - time.Hour)
	for i, dev := range s.Devices() {
		for at := c.Start.Add(simWarmup + time.Duration(i)*5*time.Hour); at.Before(until); at = at.Add(levelEvery) {
			c.Faults = append(c.Faults, sim.Fault{Device: dev, Kind: "spike", Start: at, End: at.Add(levelLen), Magnitude: levelMag})
		}
	}
	return c, nil
}

// simFirings replays a fleet into a fresh Detector (key: topic) and returns
// the firings after warm-up, with the fleet's ground truth.
func simFirings(c config, cfg sim.Config) ([]event.Result, []sim.Fault, error) {
	s, err := sim.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	d, err := detect.New(detect.Spec{Method: c.Method, Params: c.Params, Value: func(ev *event.Event) (float64, bool) {
		v, ok := ev.Fields["v"].(float64)
		return v, ok
	}})
	if err != nil {
		return nil, nil, err
	}
	start := s.Config().Start
	until := start.Add(simDays * 24 * time.Hour)
	var firings []event.Result
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
			if res.State == event.Firing && !res.Time.Before(start.Add(simWarmup)) {
				firings = append(firings, res)
			}
		}
	}
	var truth []sim.Fault
	for _, f := range s.Truth() {
		if !f.Start.Before(start.Add(simWarmup)) && f.End.Before(until) {
			if f.Kind == "spike" && f.Readings > 10 {
				f.Kind = "level"
			}
			truth = append(truth, f)
		}
	}
	return firings, truth, nil
}

// evalSim scores a configuration on the fleet with faults (firings matched
// to the injected faults of the same device) and on the clean fleet.
func evalSim(c config) simScore {
	ss := simScore{Config: c, Faults: map[string]int{}, Detected: map[string]int{}, Delays: map[string][]time.Duration{}, Kind: map[string]*kindScore{}}
	cfg, err := simWithLevels()
	if err != nil {
		ss.Err = err
		return ss
	}
	firings, truth, err := simFirings(c, cfg)
	if err != nil {
		ss.Err = err
		return ss
	}
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
			if r.Event.Fields["device"] == f.Device && !r.Time.Before(f.Start) && r.Time.Before(f.End.Add(simGrace)) {
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
			if r.Event.Fields["device"] == f.Device && !r.Time.Before(f.Start) && r.Time.Before(f.End.Add(simGrace)) {
				ss.Detected[f.Kind]++
				ks.Detected++
				ss.Delays[f.Kind] = append(ss.Delays[f.Kind], r.Time.Sub(f.Start))
				break
			}
		}
	}
	clean := simConfig()
	clean.FaultEvery = 0
	firings, _, err = simFirings(c, clean)
	if err != nil {
		ss.Err = err
		return ss
	}
	ss.Clean = len(firings)
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
	fmt.Fprintf(&b, "sim: firings %d precision %s", r.Firings, precision(r.Matched, r.Firings))
	for _, k := range simFaults {
		fmt.Fprintf(&b, " %s %d/%d", k, r.Detected[k], r.Faults[k])
	}
	fmt.Fprintf(&b, " clean %.2f/device-week", float64(r.Clean)/cleanWeeks())
	kinds := make([]string, 0, len(r.Kind))
	for k := range r.Kind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
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
	cfg := simConfig()
	fmt.Fprintf(&b, "## Scores on the simulator's ground truth\n\n"+
		"`firmware-sim` (package sim), seed %d: %d devices (%s), one JSON reading a %s for %d days, "+
		"a random fault (%s) about every %s, and on every device a level shift (+%d of the kind's typical deviation "+
		"for %s) every %s. Each device's topic is a key. Faults and firings in the first %s "+
		"(seasonal's warm-up) are left out for every method. A firing matches a fault of the same device "+
		"between its first affected reading and %s after its last. Precision = matched firings / all firings; "+
		"recall and median delay (firing time − fault start) per fault type. *Clean*: firings per device-week on "+
		"the same fleet with no fault at all (%.0f device-weeks).\n\n",
		cfg.Seed, cfg.Devices, strings.Join(cfg.Kinds, ", "), cfg.Rate, simDays, strings.Join(cfg.FaultKinds, ", "),
		cfg.FaultEvery, levelMag, levelLen, levelEvery, simWarmup, simGrace, cleanWeeks())
	b.WriteString("| method | firings | precision |")
	for _, k := range simFaults {
		fmt.Fprintf(&b, " %s recall | %s delay |", k, k)
	}
	b.WriteString(" clean |\n|---|---:|---:|")
	for range simFaults {
		b.WriteString("---:|---:|")
	}
	b.WriteString("---:|\n")
	for _, r := range rows {
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | error: %v |\n", r.Config.Name, r.Err)
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %s |", r.Config.Name, r.Firings, precision(r.Matched, r.Firings))
		for _, k := range simFaults {
			fmt.Fprintf(&b, " %d/%d | %s |", r.Detected[k], r.Faults[k], medianDelay(r.Delays[k]))
		}
		fmt.Fprintf(&b, " %.2f |\n", float64(r.Clean)/cleanWeeks())
	}
	// Per sensor kind, for the default: with a daily cycle (temperature,
	// humidity) and without (vibration, heat, power).
	def := rows[len(rows)-1]
	if def.Err == nil {
		fmt.Fprintf(&b, "\nPer sensor kind, %s (temperature and humidity follow a daily cycle; vibration, heat and power do not; "+
			"power switches between standby and a load):\n\n| kind | firings | precision | faults detected |\n|---|---:|---:|---:|\n", def.Config.Name)
		kinds := make([]string, 0, len(def.Kind))
		for k := range def.Kind {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			ks := def.Kind[k]
			fmt.Fprintf(&b, "| %s | %d | %s | %d/%d |\n", k, ks.Firings, precision(ks.Matched, ks.Firings), ks.Detected, ks.Faults)
		}
	}
	b.WriteString("\n")
	return b.String()
}
