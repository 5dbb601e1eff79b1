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

var simFaults = []string{"spike", "drift", "stuck"}

// simScore is one configuration's result on the fleet.
type simScore struct {
	Config           config
	Firings, Matched int // firings after warm-up; those inside a fault (+grace)
	Faults, Detected map[string]int
	Delays           map[string][]time.Duration
	Err              error
}

func simConfig() sim.Config {
	return sim.Config{Seed: 6, Devices: simDevices, Kinds: []string{"temperature", "humidity", "vibration", "heat", "power"},
		Rate: simRate, Format: "json", FaultEvery: 3 * time.Hour, FaultKinds: simFaults}
}

// evalSim replays the fleet into a fresh Detector (key: topic) and matches
// firings to the injected faults of the same device and sensor.
func evalSim(c config) simScore {
	ss := simScore{Config: c, Faults: map[string]int{}, Detected: map[string]int{}, Delays: map[string][]time.Duration{}}
	s, err := sim.New(simConfig())
	if err != nil {
		ss.Err = err
		return ss
	}
	d, err := detect.New(detect.Spec{Method: c.Method, Params: c.Params, Value: func(ev *event.Event) (float64, bool) {
		v, ok := ev.Fields["v"].(float64)
		return v, ok
	}})
	if err != nil {
		ss.Err = err
		return ss
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
		d.Add(r.Topic, &event.Event{Topic: r.Topic, Time: r.Time, Seq: seq, Fields: map[string]any{"v": v, "device": r.Device}})
		for _, res := range d.Advance(r.Time) {
			if res.State == event.Firing && !res.Time.Before(start.Add(simWarmup)) {
				firings = append(firings, res)
			}
		}
	}
	var truth []sim.Fault
	for _, f := range s.Truth() {
		if !f.Start.Before(start.Add(simWarmup)) && f.End.Before(until) {
			truth = append(truth, f)
		}
	}
	for _, r := range firings {
		ss.Firings++
		for _, f := range truth {
			if r.Event.Fields["device"] == f.Device && !r.Time.Before(f.Start) && r.Time.Before(f.End.Add(simGrace)) {
				ss.Matched++
				break
			}
		}
	}
	for _, f := range truth {
		ss.Faults[f.Kind]++
		for _, r := range firings {
			if r.Event.Fields["device"] == f.Device && !r.Time.Before(f.Start) && r.Time.Before(f.End.Add(simGrace)) {
				ss.Detected[f.Kind]++
				ss.Delays[f.Kind] = append(ss.Delays[f.Kind], r.Time.Sub(f.Start))
				break
			}
		}
	}
	return ss
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
		"a random fault (%s) about every %s. Each device's topic is a key. Faults and firings in the first %s "+
		"(seasonal's warm-up) are left out for every method. A firing matches a fault of the same device "+
		"between its first affected reading and %s after its last. Precision = matched firings / all firings; "+
		"recall and median delay (firing time − fault start) per fault type.\n\n",
		cfg.Seed, cfg.Devices, strings.Join(cfg.Kinds, ", "), cfg.Rate, simDays, strings.Join(simFaults, ", "),
		cfg.FaultEvery, simWarmup, simGrace)
	b.WriteString("| method | firings | precision |")
	for _, k := range simFaults {
		fmt.Fprintf(&b, " %s recall | %s delay |", k, k)
	}
	b.WriteString("\n|---|---:|---:|")
	for range simFaults {
		b.WriteString("---:|---:|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | error: %v |\n", r.Config.Name, r.Err)
			continue
		}
		prec := "–"
		if r.Firings > 0 {
			prec = fmt.Sprintf("%.2f", float64(r.Matched)/float64(r.Firings))
		}
		fmt.Fprintf(&b, "| %s | %d | %s |", r.Config.Name, r.Firings, prec)
		for _, k := range simFaults {
			fmt.Fprintf(&b, " %d/%d | %s |", r.Detected[k], r.Faults[k], medianDelay(r.Delays[k]))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	return b.String()
}
