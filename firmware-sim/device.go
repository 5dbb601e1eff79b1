package sim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// device is one simulated sensor.
type device struct {
	idx    int
	name   string
	topic  string
	spec   *kindSpec
	format string     // json, influx or value
	unixMs bool       // JSON ts as Unix milliseconds instead of RFC 3339
	offset int64      // ns after each round's start
	rng    *rand.Rand // the signal's
	frng   *rand.Rand // the faults': a fault never changes later signal values
	sig    signal

	last    float64 // last value sent, what a stuck sensor repeats
	hasLast bool

	faults    []*active // explicit and random faults not yet over
	busyUntil int64     // random faults keep off a device until then

	jsonHead   []byte // {"temperature":
	influxHead []byte // temperature,device=pump-03 value=

	// The RFC 3339 text of the second tsSec, up to its fraction
	// ("2026-01-05T10:00:00."): readings come 50 a second or fewer, and
	// formatting each time whole was 4 % of the simulator's CPU.
	tsSec    int64
	tsPrefix []byte
}

func newDevice(i, width int, spec *kindSpec, c *Config) *device {
	name := fmt.Sprintf("%s-%0*d", spec.prefix, width, i+1)
	d := &device{
		idx:   i,
		name:  name,
		topic: c.TopicPrefix + "/" + name + "/" + spec.name,
		spec:  spec,
		// Each device has its own stream, so its readings do not depend on
		// how many other devices there are.
		rng:    rand.New(rand.NewPCG(uint64(c.Seed), uint64(i)+1)),
		frng:   rand.New(rand.NewPCG(uint64(c.Seed)^0xfa017, uint64(i)+1)),
		format: c.Format,
		unixMs: i%5 == 4,
	}
	if c.Format == "mixed" {
		d.format = [...]string{"json", "influx", "value"}[i%3]
	}
	d.sig = newSignal(spec.name, d.rng, c.Rate)
	d.jsonHead = []byte(`{"` + spec.name + `":`)
	d.influxHead = []byte(spec.name + ",device=" + name + " value=")
	return d
}

func (d *device) addFault(a *active) {
	d.faults = append(d.faults, a)
}

// effects is what the faults covering one tick do to it.
type effects struct {
	fault     string // first fault that applies
	silence   bool
	stuck     *active
	offset    float64 // spike + drift, in the kind's units
	burst     int     // readings this tick (0 = 1)
	delay     int64   // ns, late
	shuffle   int64   // ns, out_of_order: max extra delay
	copies    int     // duplicate: extra copies
	malformed bool
}

// emit generates the device's readings for tick t.
func (d *device) emit(s *Sim, t int64) {
	// The process advances even while the sensor is silent or stuck, so the
	// signal picks up where it would have been once the fault ends.
	v := d.sig.next(t, d.rng)
	e := d.effects(s, t)
	if e.silence {
		return
	}
	if e.stuck != nil {
		if !e.stuck.stuckSet {
			e.stuck.stuckVal, e.stuck.stuckSet = v, true
			if d.hasLast {
				e.stuck.stuckVal = d.last
			}
		}
		v = e.stuck.stuckVal
	} else {
		v += e.offset
		if d.spec.name == "humidity" {
			v = min(v, 100)
		}
	}
	v = round(v, d.spec.decimals)
	d.last, d.hasLast = v, true

	n := max(1, e.burst)
	for k := range n {
		tk := t + int64(k)*s.rate/int64(n)
		vk := v
		if k > 0 && !d.spec.binary {
			// A burst repeats the measurement, with its own noise.
			vk = round(v+0.3*d.spec.scale*d.frng.NormFloat64(), d.spec.decimals)
		}
		r := Reading{
			Topic:   d.topic,
			Payload: d.encode(nil, vk, tk),
			Time:    time.Unix(0, tk).UTC(),
			Device:  d.name,
			Kind:    d.spec.name,
			Fault:   e.fault,
		}
		if e.malformed {
			r.Payload, r.Malformed = d.garble(r.Payload, vk, tk), true
		}
		send := tk + e.delay
		if e.shuffle > 0 {
			send += d.frng.Int64N(e.shuffle)
		}
		r.Send = time.Unix(0, send).UTC()
		s.push(r)
		for range e.copies {
			dup := r
			dup.Payload = append([]byte(nil), r.Payload...)
			s.push(dup)
		}
	}
}

// effects collects the faults covering t, records them in the truth and
// drops the faults that are over.
func (d *device) effects(s *Sim, t int64) effects {
	var e effects
	kept := d.faults[:0]
	for _, a := range d.faults {
		if t >= a.end {
			continue
		}
		kept = append(kept, a)
		if t < a.start {
			continue
		}
		s.affect(a, t)
		if e.fault == "" {
			e.fault = a.Kind
		}
		switch a.Kind {
		case "spike":
			e.offset += a.Magnitude * d.spec.scale
		case "drift":
			frac := float64(t-a.start) / float64(a.end-a.start)
			e.offset += frac * a.Magnitude * d.spec.scale
		case "stuck":
			e.stuck = a
		case "silence":
			e.silence = true
		case "burst":
			e.burst = max(e.burst, int(a.Magnitude))
		case "late":
			e.delay += int64(a.Magnitude * float64(time.Second))
		case "out_of_order":
			e.shuffle = max(e.shuffle, int64(a.Magnitude*float64(time.Second)))
		case "duplicate":
			e.copies += int(a.Magnitude)
		case "malformed":
			e.malformed = true
		}
	}
	clear(d.faults[len(kept):])
	d.faults = kept
	return e
}

// encode appends the well-formed payload for value v at event time t.
func (d *device) encode(b []byte, v float64, t int64) []byte {
	switch d.format {
	case "influx":
		b = append(b, d.influxHead...)
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
		b = append(b, ' ')
		return strconv.AppendInt(b, t, 10)
	case "value":
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	b = append(b, d.jsonHead...)
	b = strconv.AppendFloat(b, v, 'f', -1, 64)
	b = append(b, `,"ts":`...)
	if d.unixMs {
		b = strconv.AppendInt(b, floorDiv(t, int64(time.Millisecond)), 10)
	} else {
		b = append(b, '"')
		b = d.appendTime(b, t)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendTime appends t (Unix ns) as time.Time.AppendFormat does with
// "2006-01-02T15:04:05.000Z07:00" in UTC.
func (d *device) appendTime(b []byte, t int64) []byte {
	sec := floorDiv(t, int64(time.Second))
	if d.tsPrefix == nil || sec != d.tsSec {
		d.tsSec = sec
		d.tsPrefix = time.Unix(sec, 0).UTC().AppendFormat(d.tsPrefix[:0], "2006-01-02T15:04:05.")
	}
	ms := (t - sec*int64(time.Second)) / int64(time.Millisecond)
	b = append(b, d.tsPrefix...)
	return append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// garble turns a good payload into one of the ways devices get it wrong.
// Every variant fails to decode in its format, except "wrong type", which
// decodes but carries a string where a number belongs.
func (d *device) garble(good []byte, v float64, t int64) []byte {
	num := strconv.FormatFloat(v, 'f', -1, 64)
	switch d.frng.IntN(5) {
	case 0: // truncated in transit
		cut := len(d.jsonHead) + 1
		if d.format == "influx" {
			// Cut inside the tags or the field key: a cut after "value="
			// could still leave a valid line.
			cut = len(d.spec.name) + 1 + d.frng.IntN(len(d.influxHead)-len(d.spec.name)-2)
		} else if d.format == "value" {
			return []byte(num + "\x00")
		} else {
			cut += d.frng.IntN(len(good) - cut - 1)
		}
		return good[:cut]
	case 1: // wrong type: a number with its unit, as a string
		switch d.format {
		case "influx":
			return []byte(string(d.influxHead) + `"` + num + ` ` + unit(d.spec.name) + `" ` + strconv.FormatInt(t, 10))
		case "value":
			return []byte(num + " " + unit(d.spec.name))
		}
		b := append([]byte(nil), d.jsonHead...)
		b = append(b, `"`+num+` `+unit(d.spec.name)+`"`...)
		return append(b, good[len(d.jsonHead)+len(num):]...)
	case 2: // binary noise: a corrupted frame
		b := make([]byte, 8+d.frng.IntN(17))
		for i := range b {
			b[i] = byte(0x80 + d.frng.IntN(0x80))
		}
		b[0], b[len(b)/2] = 0xff, 0
		return b
	case 3: // a firmware printf of a failed conversion
		switch d.format {
		case "influx":
			return []byte(string(d.influxHead) + "nan " + strconv.FormatInt(t, 10))
		case "value":
			return []byte("nan")
		}
		b := append([]byte(nil), d.jsonHead...)
		b = append(b, "NaN"...)
		return append(b, good[len(d.jsonHead)+len(num):]...)
	}
	return []byte{} // empty message
}

func unit(kind string) string {
	switch kind {
	case "temperature":
		return "°C"
	case "humidity":
		return "%"
	case "vibration":
		return "mm/s"
	case "heat":
		return "kW"
	case "power":
		return "W"
	}
	return ""
}
