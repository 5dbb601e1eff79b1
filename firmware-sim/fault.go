package sim

import "time"

// active is a fault scheduled on a device.
type active struct {
	Fault
	start, end int64 // ns, [start, end)
	truth      *Fault
	stuckVal   float64
	stuckSet   bool
}

// defaultMagnitude is the Magnitude of a fault given without one: spike and
// drift in the kind's typical standard deviations, burst in readings per
// tick, late and out_of_order in seconds, duplicate in extra copies.
func (s *Sim) defaultMagnitude(kind string) float64 {
	switch kind {
	case "spike", "drift", "burst":
		return 20
	case "late":
		return 30
	case "out_of_order":
		return 5 * s.cfg.Rate.Seconds()
	case "duplicate":
		return 1
	}
	return 0
}

func (s *Sim) newActive(f Fault, d *device) *active {
	f.Sensor = d.spec.name
	f.Readings = 0
	if f.Magnitude == 0 {
		f.Magnitude = s.defaultMagnitude(f.Kind)
	}
	return &active{Fault: f, start: f.Start.UnixNano(), end: f.End.UnixNano()}
}

// affect records that fault a altered (or suppressed) the tick at t.
func (s *Sim) affect(a *active, t int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := time.Unix(0, t+s.rate).UTC()
	if a.truth == nil {
		f := a.Fault
		f.Start, f.End, f.Readings = time.Unix(0, t).UTC(), end, 1
		a.truth = &f
		s.truth = append(s.truth, a.truth)
		return
	}
	a.truth.End = end
	a.truth.Readings++
}

// randomFault is how long a random fault of a kind lasts, in ticks, and how
// strong it is: long enough to be seen at the demo's one reading a second,
// strong enough that the bundled rules catch it.
var randomFault = map[string]struct {
	minTicks, maxTicks int
	minMag, maxMag     float64
}{
	"spike":        {1, 3, 15, 25},
	"drift":        {60, 120, 15, 25},
	"stuck":        {60, 120, 0, 0},
	"silence":      {45, 90, 0, 0},
	"burst":        {2, 5, 20, 20},
	"late":         {10, 30, 20, 60},
	"out_of_order": {10, 30, 0, 0}, // magnitude: the default, 5 ticks
	"duplicate":    {3, 10, 1, 1},
	"malformed":    {1, 3, 0, 0},
}

// scheduleRandom starts a random fault at ns on a random idle device it
// applies to. No tick at or after at has been generated yet, so the fault
// covers whole ticks. When every suitable device is busy, the fault is
// skipped: overlapping faults would muddle the truth.
func (s *Sim) scheduleRandom(at int64) {
	kind := s.faultKinds[s.rng.IntN(len(s.faultKinds))]
	r := randomFault[kind]
	ticks := r.minTicks + s.rng.IntN(r.maxTicks-r.minTicks+1)
	mag := r.minMag + (r.maxMag-r.minMag)*s.rng.Float64()
	n := len(s.devs)
	i0 := s.rng.IntN(n)
	for j := range n {
		d := s.devs[(i0+j)%n]
		end := at + int64(ticks)*s.rate
		if d.busyUntil > at || !d.spec.randomApplies(kind) || d.scheduled(at, end+30*s.rate) {
			continue
		}
		f := Fault{
			Device:    d.name,
			Kind:      kind,
			Start:     time.Unix(0, at).UTC(),
			End:       time.Unix(0, end).UTC(),
			Magnitude: round(mag, 1),
		}
		a := s.newActive(f, d)
		d.addFault(a)
		// Leave the device alone until late readings have arrived and a
		// detector has seen it recover.
		d.busyUntil = a.end + int64(a.Magnitude*float64(time.Second))*boolInt(kind == "late") + 30*s.rate
		return
	}
}

// scheduled reports whether a fault on d overlaps [from, to).
func (d *device) scheduled(from, to int64) bool {
	for _, a := range d.faults {
		if a.start < to && a.end > from {
			return true
		}
	}
	return false
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// jitter is the gap to the next random fault: FaultEvery × U[0.5, 1.5).
func (s *Sim) jitter() int64 {
	return max(1, s.faultEvery/2+s.rng.Int64N(max(1, s.faultEvery)))
}
