package sim

import (
	"math"
	"math/rand/v2"
	"time"
)

// kindSpec describes a sensor kind: its device-name prefix, the typical
// standard deviation that spike and drift magnitudes are measured in, and
// the precision it reports with.
type kindSpec struct {
	name, prefix string
	scale        float64
	decimals     int
	binary       bool // 0/1 states: spike and drift make no sense
}

var kinds = []kindSpec{
	{name: "temperature", prefix: "pump", scale: 1.0, decimals: 2},
	{name: "humidity", prefix: "room", scale: 2.0, decimals: 1},
	{name: "vibration", prefix: "motor", scale: 0.3, decimals: 3},
	{name: "heat", prefix: "oven", scale: 0.5, decimals: 2},
	{name: "power", prefix: "meter", scale: 50, decimals: 1},
	{name: "door", prefix: "door", scale: 1, decimals: 0, binary: true},
}

func kindByName(name string) (*kindSpec, bool) {
	for i := range kinds {
		if kinds[i].name == name {
			return &kinds[i], true
		}
	}
	return nil, false
}

func (k *kindSpec) applies(fault string) bool {
	return !k.binary || (fault != "spike" && fault != "drift")
}

// randomApplies also keeps random stuck faults off 0/1 sensors: a door stuck
// closed looks like a door nobody uses, so no detector could be scored on it.
func (k *kindSpec) randomApplies(fault string) bool {
	return k.applies(fault) && !(k.binary && fault == "stuck")
}

// signal is one device's physical process. Its parameters are drawn once
// from the device's generator; its dynamics are written per second and
// converted to the tick interval, so the statistics do not depend on Rate.
type signal struct {
	kind   string
	base   float64 // mean level
	level  float64 // power: consumption when on
	wander float64 // slow Ornstein–Uhlenbeck deviation
	load   float64 // heat: machine load in [0,1]
	heat   float64 // heat: output lagging behind load
	on     bool    // power on, door open

	// Per-tick constants for a tick of dt seconds.
	keep10m, step10m float64 // OU with 10 min time constant, unit sd
	keep30m, step30m float64 // 30 min
	lag5m            float64 // first-order lag, 5 min
	pOff, pOn        float64 // power switching probabilities
	pOpen, pClose    float64 // door
}

func newSignal(kind string, rng *rand.Rand, rate time.Duration) signal {
	dt := rate.Seconds()
	ou := func(tau float64) (keep, step float64) {
		keep = math.Exp(-dt / tau)
		return keep, math.Sqrt(1 - keep*keep)
	}
	p := func(mean float64) float64 { return 1 - math.Exp(-dt/mean) }
	g := signal{kind: kind}
	g.keep10m, g.step10m = ou(600)
	g.keep30m, g.step30m = ou(1800)
	g.lag5m = 1 - math.Exp(-dt/300)
	switch kind {
	case "temperature":
		g.base = 45 + 15*rng.Float64()
	case "humidity":
		g.base = 40 + 15*rng.Float64()
	case "vibration":
		g.base = 1.5 + 2*rng.Float64()
	case "heat":
		g.load = 0.3 + 0.6*rng.Float64()
		g.heat = 4 + 10*g.load
	case "power":
		g.level = 800 + 1200*rng.Float64()
		g.on = rng.IntN(2) == 0
		g.pOff, g.pOn = p(300), p(180)
	case "door":
		g.pOpen, g.pClose = p(600), p(30)
	}
	return g
}

// daily is a cosine over the UTC day peaking at peakHour.
func daily(t int64, peakHour float64) float64 {
	const day = int64(24 * time.Hour)
	h := float64(((t%day)+day)%day) / float64(time.Hour)
	return math.Cos(2 * math.Pi * (h - peakHour) / 24)
}

// next advances the process to tick time t (ns) and returns the reading.
func (g *signal) next(t int64, rng *rand.Rand) float64 {
	switch g.kind {
	case "temperature": // machine temperature: daily cycle, wander, sensor noise
		g.wander = g.keep10m*g.wander + g.step10m*0.5*rng.NormFloat64()
		return g.base + 4*daily(t, 15) + g.wander + 0.3*rng.NormFloat64()
	case "humidity": // relative humidity, highest before dawn
		g.wander = g.keep10m*g.wander + g.step10m*1.5*rng.NormFloat64()
		return clamp(g.base+8*daily(t, 5)+g.wander+0.8*rng.NormFloat64(), 0, 100)
	case "vibration": // RMS velocity: positive, multiplicative noise
		g.wander = g.keep10m*g.wander + g.step10m*0.05*rng.NormFloat64()
		return max(0, g.base*(1+g.wander)*math.Exp(0.08*rng.NormFloat64()))
	case "heat": // heat output follows machine load with a thermal lag
		g.load = clamp(0.6+g.keep30m*(g.load-0.6)+g.step30m*0.2*rng.NormFloat64(), 0, 1)
		g.heat += g.lag5m * (4 + 10*g.load - g.heat)
		return g.heat + 0.05*rng.NormFloat64()
	case "power": // on/off steps; standby draw when off
		if u := rng.Float64(); (g.on && u < g.pOff) || (!g.on && u < g.pOn) {
			g.on = !g.on
		}
		if g.on {
			return g.level * (1 + 0.02*rng.NormFloat64())
		}
		return max(0, 4+0.3*rng.NormFloat64())
	case "door": // mostly closed, opened now and then for a short while
		if u := rng.Float64(); (g.on && u < g.pClose) || (!g.on && u < g.pOpen) {
			g.on = !g.on
		}
		if g.on {
			return 1
		}
		return 0
	}
	return 0
}

func clamp(v, lo, hi float64) float64 { return min(hi, max(lo, v)) }

func round(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}
