package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config describes the fleet. The zero Config is valid: one device of each
// kind, one JSON reading a second each, no faults, starting at DefaultStart.
type Config struct {
	// Seed makes the run reproducible: the same Config gives the same
	// readings, byte for byte.
	Seed int64
	// Devices is the number of devices (default: one per kind). Device i
	// gets kind Kinds[i % len(Kinds)].
	Devices int
	// Kinds restricts the sensor kinds (default: all of Kinds()).
	Kinds []string
	// Rate is each device's reading interval (default 1s).
	Rate time.Duration
	// Format is "json" (default), "influx", "value" or "mixed" (device i
	// uses json, influx, value for i%3 = 0, 1, 2).
	Format string
	// TopicPrefix is the first topic level(s) (default "sensors"): topics
	// are <prefix>/<device>/<kind>.
	TopicPrefix string
	// Faults is an explicit fault schedule, applied in addition to the
	// random one.
	Faults []Fault
	// FaultEvery schedules a random fault roughly this often (uniformly
	// between 0.5× and 1.5×); 0 disables random faults.
	FaultEvery time.Duration
	// FaultKinds restricts random faults (default: all of FaultKinds()).
	FaultKinds []string
	// Start is the event time of the first reading (default DefaultStart).
	Start time.Time
	// Until, when set, makes Run return once every reading sent before it
	// has been published. It does not limit Next.
	Until time.Time
}

// DefaultStart is the simulated start of a Config without one. A fixed
// instant, not the clock, keeps the zero Config deterministic.
var DefaultStart = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

// Fault is one injected fault. In Config.Faults it is a request: Device,
// Kind, Start and End (exclusive) are required, Magnitude defaults per kind.
// In Truth it is what happened: Start is the event time of the first
// affected reading, End the tick after the last one, Readings the number of
// device ticks it altered (or suppressed).
type Fault struct {
	Device string
	// Sensor is the device's kind (temperature …); Truth fills it in.
	Sensor string
	// Kind is the fault: spike, drift, stuck, silence, burst, late,
	// out_of_order, duplicate or malformed.
	Kind      string
	Start     time.Time
	End       time.Time
	Magnitude float64
	Readings  int
}

// Reading is one message a device publishes.
type Reading struct {
	Topic   string
	Payload []byte
	// Time is the event time the payload carries (for a bare number, the
	// time the device meant to send it).
	Time time.Time
	// Send is when it is published: Time, unless a late or out_of_order
	// fault delays it. Next returns readings in Send order.
	Send         time.Time
	Device, Kind string
	// Fault names the fault that altered this reading ("" for none).
	Fault     string
	Malformed bool
}

// Sim generates the readings of a fleet. Next, Run and Record are not safe
// for concurrent use; Truth may be called while Run is running.
type Sim struct {
	cfg     Config
	rate    int64 // ns
	devs    []*device
	byName  map[string]*device
	rng     *rand.Rand // fault scheduler
	cur     int        // next device to tick (round robin)
	round   int64      // tick number of the current round
	startNs int64
	pend    pendHeap
	seq     uint64
	buf     []byte // scratch for payloads that are copied out

	nextFault  int64 // ns; random fault schedule
	faultEvery int64
	faultKinds []string

	mu    sync.Mutex
	truth []*Fault // in order of first effect
}

// Kinds lists the sensor kinds, in the order devices get them.
func Kinds() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = k.name
	}
	return out
}

// FaultKinds lists the fault kinds.
func FaultKinds() []string { return slices.Clone(faultKinds) }

var faultKinds = []string{"spike", "drift", "stuck", "silence", "burst", "late", "out_of_order", "duplicate", "malformed"}

// New checks c, fills in its defaults and builds the fleet.
func New(c Config) (*Sim, error) {
	if err := c.fill(); err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:        c,
		rate:       int64(c.Rate),
		byName:     make(map[string]*device, c.Devices),
		rng:        rand.New(rand.NewPCG(uint64(c.Seed), 0x5eed)),
		startNs:    c.Start.UnixNano(),
		faultEvery: int64(c.FaultEvery),
		faultKinds: c.FaultKinds,
	}
	width := max(2, len(strconv.Itoa(c.Devices)))
	for i := range c.Devices {
		spec, _ := kindByName(c.Kinds[i%len(c.Kinds)])
		d := newDevice(i, width, spec, &c)
		// Stagger first readings across one interval so the load is even,
		// on whole milliseconds when there is room: payload timestamps
		// carry milliseconds, and Reading.Time should equal them.
		d.offset = int64(c.Rate) * int64(i) / int64(c.Devices)
		if c.Rate >= time.Duration(c.Devices)*time.Millisecond {
			d.offset -= d.offset % int64(time.Millisecond)
		}
		s.devs = append(s.devs, d)
		s.byName[d.name] = d
	}
	for _, f := range c.Faults {
		d, ok := s.byName[f.Device]
		if !ok {
			return nil, fmt.Errorf("fault %s: unknown device %q (devices are %s … %s)", f.Kind, f.Device, s.devs[0].name, s.devs[len(s.devs)-1].name)
		}
		if err := checkFault(f, d.spec); err != nil {
			return nil, err
		}
		d.addFault(s.newActive(f, d))
	}
	if c.FaultEvery > 0 {
		if !s.anyRandomFault() {
			return nil, fmt.Errorf("no fault of %s applies to a %s sensor", strings.Join(c.FaultKinds, ", "), strings.Join(c.Kinds, " or "))
		}
		s.nextFault = s.startNs + s.jitter()
	}
	return s, nil
}

func (c *Config) fill() error {
	if c.Rate == 0 {
		c.Rate = time.Second
	}
	if c.Rate < time.Microsecond {
		return fmt.Errorf("rate %v: must be at least 1µs", c.Rate)
	}
	if len(c.Kinds) == 0 {
		c.Kinds = Kinds()
	}
	for _, k := range c.Kinds {
		if _, ok := kindByName(k); !ok {
			return fmt.Errorf("unknown kind %q (want %s)", k, strings.Join(Kinds(), ", "))
		}
	}
	if c.Devices == 0 {
		c.Devices = len(c.Kinds)
	}
	if c.Devices < 0 || c.Devices > 1_000_000 {
		return fmt.Errorf("devices %d: must be between 1 and 1000000", c.Devices)
	}
	switch c.Format {
	case "":
		c.Format = "json"
	case "json", "influx", "value", "mixed":
	default:
		return fmt.Errorf("unknown format %q (want json, influx, value or mixed)", c.Format)
	}
	if c.TopicPrefix == "" {
		c.TopicPrefix = "sensors"
	}
	c.TopicPrefix = strings.TrimSuffix(c.TopicPrefix, "/")
	if strings.ContainsAny(c.TopicPrefix, "+#") {
		return fmt.Errorf("topic prefix %q: wildcards are not allowed", c.TopicPrefix)
	}
	if c.FaultEvery < 0 {
		return errors.New("fault-every: must not be negative")
	}
	if len(c.FaultKinds) == 0 {
		c.FaultKinds = FaultKinds()
	}
	for _, k := range c.FaultKinds {
		if !slices.Contains(faultKinds, k) {
			return fmt.Errorf("unknown fault %q (want %s)", k, strings.Join(faultKinds, ", "))
		}
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	c.Start = c.Start.UTC()
	return nil
}

var maxMagnitude = map[string]float64{"burst": 1000, "duplicate": 100, "late": 86400, "out_of_order": 3600}

func checkFault(f Fault, spec *kindSpec) error {
	if !slices.Contains(faultKinds, f.Kind) {
		return fmt.Errorf("fault on %s: unknown kind %q (want %s)", f.Device, f.Kind, strings.Join(faultKinds, ", "))
	}
	if !f.End.After(f.Start) {
		return fmt.Errorf("fault %s on %s: end %v is not after start %v", f.Kind, f.Device, f.End, f.Start)
	}
	if !spec.applies(f.Kind) {
		return fmt.Errorf("fault %s on %s: does not apply to a %s sensor", f.Kind, f.Device, spec.name)
	}
	if f.Magnitude < 0 {
		return fmt.Errorf("fault %s on %s: negative magnitude", f.Kind, f.Device)
	}
	// Bursts, copies and delays are held in memory: keep one fault from
	// taking all of a gateway's.
	if limit := maxMagnitude[f.Kind]; limit > 0 && f.Magnitude > limit {
		return fmt.Errorf("fault %s on %s: magnitude %g exceeds %g", f.Kind, f.Device, f.Magnitude, limit)
	}
	return nil
}

func (s *Sim) anyRandomFault() bool {
	for _, k := range s.faultKinds {
		for _, d := range s.devs {
			if d.spec.randomApplies(k) {
				return true
			}
		}
	}
	return false
}

// Next returns the next reading in Send order (ties in generation order).
// The stream never ends.
func (s *Sim) Next() Reading {
	s.fill()
	p := s.pend.pop()
	return p.r
}

// peek returns the reading Next would return, without consuming it.
func (s *Sim) peek() *Reading {
	s.fill()
	return &s.pend[0].r
}

// fill generates device ticks until the earliest pending reading cannot be
// overtaken: every reading still to be generated has Send >= Time >= the
// next tick's time, so a pending reading due no later than that is final.
func (s *Sim) fill() {
	for len(s.pend) == 0 || s.pend[0].send > s.nextTick() {
		s.tick()
	}
}

func (s *Sim) nextTick() int64 {
	return s.startNs + s.round*s.rate + s.devs[s.cur].offset
}

// tick generates the readings of the next device tick.
func (s *Sim) tick() {
	t := s.nextTick()
	for s.faultEvery > 0 && s.nextFault <= t {
		s.scheduleRandom(s.nextFault)
		s.nextFault += s.jitter()
	}
	d := s.devs[s.cur]
	d.emit(s, t)
	s.cur++
	if s.cur == len(s.devs) {
		s.cur = 0
		s.round++
	}
}

// push queues a reading for delivery.
func (s *Sim) push(r Reading) {
	s.seq++
	s.pend.push(pending{send: r.Send.UnixNano(), seq: s.seq, r: r})
}

// Truth returns the faults injected so far, in the order they first took
// effect. It is safe to call while Run is running.
func (s *Sim) Truth() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, len(s.truth))
	for i, f := range s.truth {
		out[i] = *f
	}
	return out
}

// Config returns the configuration with its defaults filled in.
func (s *Sim) Config() Config { return s.cfg }

// Devices returns the device names in index order.
func (s *Sim) Devices() []string {
	out := make([]string, len(s.devs))
	for i, d := range s.devs {
		out[i] = d.name
	}
	return out
}

// pending is a generated reading waiting for its Send time.
type pending struct {
	send int64
	seq  uint64
	r    Reading
}

// pendHeap is a min-heap on (send, seq). Hand-written rather than
// container/heap to avoid boxing every reading in an interface.
type pendHeap []pending

func (h pendHeap) less(i, j int) bool {
	if h[i].send != h[j].send {
		return h[i].send < h[j].send
	}
	return h[i].seq < h[j].seq
}

func (h *pendHeap) push(p pending) {
	*h = append(*h, p)
	a := *h
	for i := len(a) - 1; i > 0; {
		parent := (i - 1) / 2
		if !a.less(i, parent) {
			break
		}
		a[i], a[parent] = a[parent], a[i]
		i = parent
	}
}

func (h *pendHeap) pop() pending {
	a := *h
	top := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a[n] = pending{} // release the payload
	a = a[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && a.less(r, l) {
			m = r
		}
		if !a.less(m, i) {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return top
}
