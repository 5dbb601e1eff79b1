package ui

import (
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-gw/vigil/event"
)

const (
	alertRing    = 512             // alerts a live client may fall behind before it must resync
	seriesLen    = 120             // points kept per device field …
	seriesStep   = 5 * time.Second // … at most one per step: ten minutes
	maxFields    = 16              // numeric fields charted per device
	readingTick  = time.Second     // live clients get each device at most once a tick
	statusTick   = 2 * time.Second
	writeTimeout = 15 * time.Second // a live client that accepts nothing for this long is dropped
)

// live is the in-memory side of the UI: the ring of recent alerts for the
// live feed and the latest values and recent history of every device. The
// publishers only take a mutex and never wait for a client: clients pull
// what is new on their own goroutine (the SSE handler), so a slow browser
// can never stall the engine.
type live struct {
	mu sync.Mutex

	alerts   [alertRing]liveAlert
	alertSeq uint64 // seq of the newest alert; alerts[seq%alertRing]

	devices    map[string]*device
	maxDevices int
	// newest and oldest end the list of devices by their last reading
	// (device.newer/older): the bound drops the oldest without a scan.
	newest, oldest *device
	version        uint64 // bumped on every reading; devices remember theirs
	forgotten      uint64 // devices dropped by the maxDevices bound

	wake chan struct{} // closed and replaced when an alert arrives
}

type liveAlert struct {
	seq   uint64
	alert event.Alert
}

type device struct {
	key, topic string
	lastSeen   time.Time // event time of the newest reading
	received   time.Time // gateway clock at the newest reading
	// values and series are slices, not maps: a device has a handful of
	// fields, each reading replaces them all, and this runs for every
	// message (as maps they cost a tenth of a message's CPU).
	values  []field
	series  []fieldRing // at most maxFields
	version uint64
	// newer and older link the devices in the order of their readings.
	newer, older *device
}

// field is one of a device's latest values.
type field struct {
	name string
	v    any
}

// fieldRing is one numeric field's recent points.
type fieldRing struct {
	name string
	ring
}

// ring holds one field's recent points, oldest first once full.
type ring struct {
	pts  []point
	next int // where the next point goes once len(pts) == seriesLen
}

// point is one step of a field: its newest value, and the least and
// greatest of the values coalesced into it, so a spike that arrived
// between two drawn points is still on the chart.
type point struct {
	t      int64 // unix ms
	v      float64
	lo, hi float64
}

func newLive(maxDevices int) *live {
	return &live{devices: map[string]*device{}, maxDevices: maxDevices, wake: make(chan struct{})}
}

func (l *live) publishAlert(a event.Alert) {
	l.mu.Lock()
	l.alertSeq++
	l.alerts[l.alertSeq%alertRing] = liveAlert{l.alertSeq, a}
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// alertsAfter returns the alerts with seq > after, oldest first, and
// whether some were already overwritten (the client must resync).
func (l *live) alertsAfter(after uint64) (out []liveAlert, newest uint64, lost bool, wake <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	newest, wake = l.alertSeq, l.wake
	if after > newest { // a Last-Event-ID from before a restart
		after = newest
	}
	if newest-after > alertRing {
		after, lost = newest-alertRing, true
	}
	for s := after + 1; s <= newest; s++ {
		out = append(out, l.alerts[s%alertRing])
	}
	return out, newest, lost, wake
}

// recentAlerts returns up to n of the newest live alerts, newest first.
func (l *live) recentAlerts(n int) []liveAlert {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = min(n, alertRing, int(l.alertSeq))
	out := make([]liveAlert, 0, n)
	for s := l.alertSeq; len(out) < n; s-- {
		out = append(out, l.alerts[s%alertRing])
	}
	return out
}

func (l *live) publishReading(key, topic string, t, now time.Time, values map[string]any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := l.reading(key, topic, t, now); d != nil {
		ms := t.UnixMilli()
		for k, v := range values {
			d.set(k, v, ms)
		}
	}
}

// reading finds or makes key's device for a reading at t and makes it the
// newest; nil when the reading is out of order (older than the latest
// values, which stay) or has no key; else d's values are emptied for the
// reading's. l.mu is held.
func (l *live) reading(key, topic string, t, now time.Time) *device {
	if key == "" {
		return nil
	}
	d := l.devices[key]
	switch {
	case d != nil:
		l.unlink(d)
	case len(l.devices) >= l.maxDevices && l.oldest != nil:
		// Full: the least recently seen device makes room, and its
		// memory serves the new one (a fleet larger than the bound
		// replaces one device per reading).
		d = l.oldest
		l.unlink(d)
		delete(l.devices, d.key)
		l.forgotten++
		clear(d.values)
		clear(d.series)
		*d = device{key: key, values: d.values[:0], series: d.series[:0]}
		l.devices[key] = d
	default:
		d = &device{key: key}
		l.devices[key] = d
	}
	l.pushNewest(d)
	l.version++
	d.version, d.received = l.version, now
	if t.Before(d.lastSeen) {
		return nil // out of order: the latest values stay the newest ones
	}
	d.topic, d.lastSeen = topic, t
	clear(d.values) // no old value kept alive
	d.values = d.values[:0]
	return d
}

// set records one field of the reading at ms.
func (d *device) set(k string, v any, ms int64) {
	if k == "topic" {
		return // the device shows it already
	}
	switch v.(type) {
	case map[string]any, []any:
		return // only scalars: keeping a nested map would keep the caller's
	}
	d.values = append(d.values, field{k, v})
	if f, ok := number(v); ok && !isTimeField(k) {
		d.record(k, ms, f)
	}
}

// record adds a point, coalescing points closer than seriesStep so a device
// that reports ten times a second costs no more than one every 5 s.
func (d *device) record(name string, ms int64, v float64) {
	var r *ring
	for i := range d.series {
		if d.series[i].name == name {
			r = &d.series[i].ring
			break
		}
	}
	if r == nil {
		if len(d.series) >= maxFields {
			return
		}
		d.series = append(d.series, fieldRing{name: name})
		r = &d.series[len(d.series)-1].ring
	}
	if n := len(r.pts); n > 0 {
		lastIdx := n - 1
		if n == seriesLen {
			lastIdx = (r.next + seriesLen - 1) % seriesLen
		}
		if p := &r.pts[lastIdx]; ms-p.t < seriesStep.Milliseconds() {
			p.v, p.lo, p.hi = v, min(p.lo, v), max(p.hi, v)
			return
		}
	}
	if len(r.pts) < seriesLen {
		r.pts = append(r.pts, point{ms, v, v, v})
		return
	}
	r.pts[r.next] = point{ms, v, v, v}
	r.next = (r.next + 1) % seriesLen
}

// unlink takes d out of the list of devices by reading.
func (l *live) unlink(d *device) {
	if d.newer != nil {
		d.newer.older = d.older
	} else {
		l.newest = d.older
	}
	if d.older != nil {
		d.older.newer = d.newer
	} else {
		l.oldest = d.newer
	}
	d.newer, d.older = nil, nil
}

// pushNewest puts d at the newest end of the list.
func (l *live) pushNewest(d *device) {
	d.older = l.newest
	if l.newest != nil {
		l.newest.newer = d
	}
	l.newest = d
	if l.oldest == nil {
		l.oldest = d
	}
}

// Device is one device as the API shows it.
type Device struct {
	Key      string         `json:"key"`
	Topic    string         `json:"topic"`
	LastSeen time.Time      `json:"last_seen"`
	Values   map[string]any `json:"values"`
}

func (d *device) view() Device {
	vals := make(map[string]any, len(d.values))
	for _, f := range d.values {
		vals[f.name] = jsonSafe(f.v)
	}
	return Device{Key: d.key, Topic: d.topic, LastSeen: d.lastSeen, Values: vals}
}

// devicesList returns every device, sorted by key.
func (l *live) devicesList() []Device {
	l.mu.Lock()
	out := make([]Device, 0, len(l.devices))
	for _, d := range l.devices {
		out = append(out, d.view())
	}
	l.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// changedSince returns the devices updated after version v and the current
// version.
func (l *live) changedSince(v uint64) ([]Device, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Device
	if l.version == v {
		return nil, v
	}
	for _, d := range l.devices {
		if d.version > v {
			out = append(out, d.view())
		}
	}
	return out, l.version
}

// Point is one recent step of a device field: the newest value in it, and
// the least and greatest value of the readings it covers.
type Point struct {
	Time  time.Time `json:"t"`
	Field string    `json:"field"`
	Value float64   `json:"value"`
	Min   float64   `json:"min"`
	Max   float64   `json:"max"`
}

// series returns a device's recent points with time >= since, ordered by
// field then time; ok is false for an unknown device.
func (l *live) series(key string, since time.Time) (pts []Point, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.devices[key]
	if d == nil {
		return nil, false
	}
	rings := make([]*fieldRing, 0, len(d.series))
	for i := range d.series {
		rings = append(rings, &d.series[i])
	}
	sort.Slice(rings, func(i, j int) bool { return rings[i].name < rings[j].name })
	pts = []Point{}
	for _, r := range rings {
		f := r.name
		n := len(r.pts)
		for i := range n {
			p := r.pts[(r.next+i)%n]
			t := time.UnixMilli(p.t).UTC()
			if !since.IsZero() && t.Before(since) {
				continue
			}
			pts = append(pts, Point{t, f, p.v, p.lo, p.hi})
		}
	}
	return pts, true
}

// number converts the numeric types a decoder may produce.
func number(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case int32:
		f = float64(x)
	case uint64:
		f = float64(x)
	case uint32:
		f = float64(x)
	case uint:
		f = float64(x)
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

// isTimeField tells the event-time members apart: a Unix timestamp drawn
// next to a temperature would flatten the chart.
func isTimeField(k string) bool {
	switch len(k) { // it runs for every field of every reading: no ToLower
	case 2:
		return strings.EqualFold(k, "ts")
	case 4:
		return strings.EqualFold(k, "time")
	case 9:
		return strings.EqualFold(k, "timestamp")
	}
	return false
}
