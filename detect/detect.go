// Package detect owns the anomaly detectors behind a rule's `detect:` part:
// zscore, mad, ewma and cusum, each scoring one numeric field per key in
// event time with a firing/resolved lifecycle. A Detector satisfies the
// engine's Operator contract (docs/design.md). It imports only the event
// package: never rules, windows, cep or engine.
package detect

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// Spec describes one rule's detector.
type Spec struct {
	// Method is zscore, mad, ewma or cusum; empty means Default.
	Method string
	// Value extracts the scored number; ok=false ignores the event.
	Value func(ev *event.Event) (float64, bool)
	// Params are the other keys under `detect:` as decoded from YAML:
	// numbers (float64 or int), duration strings and bools.
	Params map[string]any
	// MaxKeys caps the keys holding state (least recently seen evicted);
	// 0 means 10,000.
	MaxKeys int
}

// Detector runs one method over many keys. It is not safe for concurrent use.
type Detector struct {
	cfg     config
	value   func(ev *event.Event) (float64, bool)
	maxKeys int

	keys    map[string]*keyState
	lru     keyState // sentinel of a ring, most recently seen after it
	buf     event.Reorder
	one     event.Item // the only pending event while buf is empty (Ev != nil)
	closeAt time.Time
	late    uint64
	evicted uint64
	out     []event.Result
	snapLen int // the last snapshot's length: the next one's capacity
}

// keyState is one key's baseline and lifecycle.
type keyState struct {
	key        string
	m          model
	firing     bool
	stuck      bool // firing, and its latest alert was for a stuck run
	calm, anom int  // consecutive normal / anomalous points
	// auto: the level the key was at when it fired and its spread (refSD
	// 0: no hold), and the points its firing has been held open since
	// clear normal points passed (autoHold).
	ref, refSD float64
	held       int
	prev, next *keyState
}

// snapVersion 2 added seasonal's level-shift sums, 3 auto's operating
// levels, 4 auto's weekly correction, 5 a key's stuck firing (its firing
// byte is 2) and auto's long-run error of its slow predictor, 6 auto's mean
// interval between points, 7 auto's run of points inside its band, 8 auto's
// fast level mean and a key's hold (after its model's state); Restore still
// reads 1 to 7.
const snapVersion = 8

// New validates the Spec and builds a Detector. Parameter problems come back
// as *ParamError values joined with errors.Join.
func New(s Spec) (*Detector, error) {
	if s.Value == nil {
		return nil, errors.New("detect: no value function")
	}
	cfg, err := parse(s.Method, s.Params)
	if err != nil {
		return nil, err
	}
	d := &Detector{cfg: cfg, value: s.Value, maxKeys: s.MaxKeys, keys: map[string]*keyState{}}
	if d.maxKeys <= 0 {
		d.maxKeys = 10000
	}
	d.lru.prev, d.lru.next = &d.lru, &d.lru
	return d, nil
}

// Method is the method in use after defaults.
func (d *Detector) Method() string { return d.cfg.method }

// Add buffers one event; it is scored once Advance reaches its time. An
// event older than the last closing time is late: dropped and counted.
func (d *Detector) Add(key string, ev *event.Event) []event.Result {
	if ev.Time.Before(d.closeAt) {
		d.late++
		return nil
	}
	// With lateness 0 every event is processed by the Advance that follows
	// its Add, so the common case holds one event in a slot and skips the
	// heap (and its allocation).
	if d.one.Ev == nil && d.buf.Len() == 0 {
		d.one = event.Item{Key: key, Ev: ev}
		return nil
	}
	d.spill()
	d.buf.Push(key, ev)
	return nil
}

// spill moves the slot's event into the reorder buffer.
func (d *Detector) spill() {
	if d.one.Ev != nil {
		d.buf.Push(d.one.Key, d.one.Ev)
		d.one = event.Item{}
	}
}

// Advance scores every buffered event with Time <= closeAt in (Time, Seq) order.
func (d *Detector) Advance(closeAt time.Time) []event.Result {
	if closeAt.After(d.closeAt) {
		d.closeAt = closeAt
	}
	if it := d.one; it.Ev != nil {
		if it.Ev.Time.After(closeAt) {
			return nil
		}
		d.one = event.Item{}
		d.out = nil
		d.process(it.Key, it.Ev)
		return d.out
	}
	if d.buf.Len() == 0 {
		return nil
	}
	d.out = nil
	d.buf.Ready(closeAt, d.process)
	return d.out
}

// Flush scores whatever is still buffered. A detector has nothing else open:
// a firing key stays firing, as it would in `run`.
func (d *Detector) Flush() []event.Result {
	d.spill()
	d.out = nil
	d.buf.All(d.process)
	return d.out
}

func (d *Detector) process(key string, ev *event.Event) {
	x, ok := d.value(ev)
	if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
		return
	}
	k := d.touch(key)
	c := &d.cfg
	o := k.m.observe(ev.Time, x)
	anomalous := o.ready && d.anomalous(o.score)
	calm := k.calm // normal points in a row before this one
	if anomalous {
		k.anom++
		k.calm = 0
	} else {
		k.anom = 0
		k.calm++
	}
	switch {
	case anomalous && !k.firing:
		k.firing, k.stuck = true, o.why == causeStuck
		d.fire(k, ev, x, o)
	case anomalous && o.stuckStart && !k.stuck:
		// A sensor that sticks while the key fires for something else (a
		// spike, a level shift) is a new fault that would otherwise go
		// unreported until clear normal points end the firing: close that
		// firing and open one for the stuck run.
		k.stuck = true
		d.emit(k, event.Resolved, ev, x, o, "ended by a new anomaly: the sensor is stuck")
		d.fire(k, ev, x, o)
	case anomalous && k.firing && c.refire > 0 && calm >= c.refire && math.Abs(o.score) >= autoRefireScore*c.threshold:
		// The key had been back within its band for a while and is still
		// firing only because clear normal points have not yet passed; a
		// strong anomaly now is a new fault, not the old one flapping.
		k.stuck = o.why == causeStuck
		d.emit(k, event.Resolved, ev, x, o, fmt.Sprintf("ended by a new anomaly after %d points in a row within the band", calm))
		d.fire(k, ev, x, o)
	case !anomalous && k.firing && o.ready && k.calm >= c.clear:
		away := k.refSD > 0 && o.baseSD > 0 && math.Abs(o.level-k.ref) > autoHold*k.refSD
		if away && k.held < max(c.relearn, autoRelearn) {
			// Back within a band that has followed the level, but the
			// level has not come back: the fault goes on.
			k.held++
			break
		}
		why := fmt.Sprintf("back to normal: %d points in a row within the band", c.clear)
		if away {
			why = fmt.Sprintf("taken as the new normal: held open %d points while the level stayed away from %.6g", k.held, k.ref)
		}
		k.firing, k.stuck = false, false
		d.emit(k, event.Resolved, ev, x, o, why)
	}
	switch {
	case !anomalous || c.learnAnom:
		k.m.learn(ev.Time, x)
	case c.relearn == 0 || k.anom < c.relearn:
		if cl, ok := k.m.(interface {
			learnAnomalous(t time.Time, x, threshold float64)
		}); ok {
			cl.learnAnomalous(ev.Time, x, c.threshold)
		}
	case c.relearn > 0 && k.anom >= c.relearn:
		// The anomaly has lasted long enough to be the new normal: start
		// the baseline again from here rather than fire forever.
		k.m.reset()
		k.m.learn(ev.Time, x)
		k.anom = 0
	}
}

func (d *Detector) anomalous(score float64) bool {
	switch d.cfg.direction {
	case 1:
		return score >= d.cfg.threshold
	case -1:
		return -score >= d.cfg.threshold
	}
	return math.Abs(score) >= d.cfg.threshold
}

// emit appends an alert that says why: the point, what was expected, the
// band of normal values around it, the score and a one-line reason.
func (d *Detector) emit(k *keyState, st event.State, ev *event.Event, x float64, o obs, why string) {
	width := d.cfg.threshold * o.sd
	if o.why == causeCusum {
		width = d.cfg.k * o.sd // beyond the allowance the sums grow
	}
	expected, score := o.expected, o.score
	d.out = append(d.out, event.Result{
		Key: k.key, State: st, Time: ev.Time, Event: ev,
		Values: map[string]any{
			"value": x, "expected": expected, "score": round(score),
			"threshold": d.cfg.threshold, "method": d.cfg.method,
			"low": expected - width, "high": expected + width,
			"reason": why,
		},
	})
}

// fire emits a firing and keeps where the key's level was for its hold.
func (d *Detector) fire(k *keyState, ev *event.Event, x float64, o obs) {
	k.ref, k.refSD, k.held = o.base, o.baseSD, 0
	d.emit(k, event.Firing, ev, x, o, reason(o, x))
}

// reason is a firing alert's one-line explanation.
func reason(o obs, x float64) string {
	why, expected, sd, score, run := o.why, o.expected, o.sd, o.score, o.run
	dir := "above"
	if score < 0 {
		dir = "below"
	}
	switch why {
	case causeStuck:
		return fmt.Sprintf("stuck: the same value %.6g for %d points in a row", x, run)
	case causeShift:
		return fmt.Sprintf("level shift: values have stayed %s the expected %.6g (the latest %.6g)", dir, expected, x)
	case causeUnrest:
		return fmt.Sprintf("unsettled: the latest points have strayed from the expected %.3g times as far as usual (the latest %.6g, expected %.6g)", o.ratio, x, expected)
	case causeCusum:
		return fmt.Sprintf("sustained shift: values have stayed %s the expected %.6g (cumulative sum %.3g)", dir, expected, math.Abs(score))
	}
	return fmt.Sprintf("%.6g is %.3g σ %s the expected %.6g (σ %.3g)", x, math.Abs(score), dir, expected, sd)
}

// round keeps alert values readable; the decision used the exact score.
func round(f float64) float64 { return math.Round(f*1000) / 1000 }

// touch returns the key's state, creating it (and evicting the least
// recently seen key at the cap) and marking it most recently seen.
func (d *Detector) touch(key string) *keyState {
	k := d.keys[key]
	if k == nil {
		if len(d.keys) >= d.maxKeys {
			old := d.lru.prev
			d.unlink(old)
			delete(d.keys, old.key)
			d.evicted++
		}
		k = &keyState{key: key, m: newModel(&d.cfg)}
		d.keys[key] = k
	} else {
		d.unlink(k)
	}
	k.prev, k.next = &d.lru, d.lru.next
	d.lru.next.prev = k
	d.lru.next = k
	return k
}

func (d *Detector) unlink(k *keyState) {
	k.prev.next = k.next
	k.next.prev = k.prev
}

// Stats reports keys, late and evicted counts, and buffered events.
func (d *Detector) Stats() event.OpStats {
	pending := d.buf.Len()
	if d.one.Ev != nil {
		pending++
	}
	return event.OpStats{Keys: len(d.keys), Late: d.late, Evicted: d.evicted, Pending: pending}
}

// Snapshot writes all state: the closing time, counters, the reorder buffer
// and every key, least recently seen first so Restore rebuilds the LRU order.
func (d *Detector) Snapshot() ([]byte, error) {
	d.spill()
	e := event.Enc{B: make([]byte, 0, d.snapLen+d.snapLen/8)}
	e.Uvarint(snapVersion)
	e.String(d.cfg.method)
	e.Time(d.closeAt)
	e.Uvarint(d.late)
	e.Uvarint(d.evicted)
	d.buf.Encode(&e)
	e.Uvarint(uint64(len(d.keys)))
	for k := d.lru.prev; k != &d.lru; k = k.prev {
		e.String(k.key)
		if k.stuck {
			e.Byte(2)
		} else {
			e.Bool(k.firing)
		}
		e.Uvarint(uint64(k.calm))
		e.Uvarint(uint64(k.anom))
		k.m.encode(&e)
		k.encodeHold(&e)
	}
	d.snapLen = len(e.B)
	return e.B, nil
}

// encodeHold: version 8's hold of a firing, after the key's model state.
func (k *keyState) encodeHold(e *event.Enc) {
	e.Float(k.ref)
	e.Float(k.refSD)
	e.Uvarint(uint64(k.held))
}

// Restore replaces all state with a Snapshot of a Detector built from the same Spec.
func (d *Detector) Restore(b []byte) error {
	dec := event.Dec{B: b}
	ver := dec.Uvarint()
	if dec.Err == nil && (ver < 1 || ver > snapVersion) {
		return fmt.Errorf("restore detector: unknown snapshot version %d", ver)
	}
	if m := dec.String(); dec.Err == nil && m != d.cfg.method {
		return fmt.Errorf("restore detector: snapshot is of method %q, not %q", m, d.cfg.method)
	}
	n := &Detector{cfg: d.cfg, value: d.value, maxKeys: d.maxKeys, keys: map[string]*keyState{}}
	n.lru.prev, n.lru.next = &n.lru, &n.lru
	n.closeAt = dec.Time()
	n.late = dec.Uvarint()
	n.evicted = dec.Uvarint()
	n.buf.Decode(&dec)
	count := dec.Len()
	for i := 0; i < count && dec.Err == nil; i++ {
		k := n.touch(dec.String())
		if st := dec.Byte(); st > 2 || st == 2 && ver < 5 {
			dec.Err = event.ErrCorrupt
		} else {
			k.firing, k.stuck = st != 0, st == 2
		}
		k.calm = int(dec.Uvarint())
		k.anom = int(dec.Uvarint())
		if old, ok := k.m.(interface{ decodeV1(*event.Dec) }); ok && ver == 1 {
			old.decodeV1(&dec)
		} else if old, ok := k.m.(interface{ decodeV2(*event.Dec) }); ok && ver <= 2 {
			old.decodeV2(&dec)
		} else if old, ok := k.m.(interface{ decodeV3(*event.Dec) }); ok && ver <= 3 {
			old.decodeV3(&dec)
		} else if old, ok := k.m.(interface{ decodeV4(*event.Dec) }); ok && ver <= 4 {
			old.decodeV4(&dec)
		} else if old, ok := k.m.(interface{ decodeV5(*event.Dec) }); ok && ver <= 5 {
			old.decodeV5(&dec)
		} else if old, ok := k.m.(interface{ decodeV6(*event.Dec) }); ok && ver <= 6 {
			old.decodeV6(&dec)
		} else if old, ok := k.m.(interface{ decodeV7(*event.Dec) }); ok && ver <= 7 {
			old.decodeV7(&dec)
		} else {
			k.m.decode(&dec)
		}
		if ver >= 8 {
			k.ref, k.refSD, k.held = dec.Float(), dec.Float(), int(min(dec.Uvarint(), math.MaxInt32))
		}
	}
	if dec.Err == nil && len(dec.B) != 0 {
		dec.Err = event.ErrCorrupt
	}
	if dec.Err != nil {
		return fmt.Errorf("restore detector: %w", dec.Err)
	}
	*d = *n
	// The ring's sentinel moved with the copy; re-point its neighbours.
	if len(d.keys) == 0 {
		d.lru.prev, d.lru.next = &d.lru, &d.lru
	} else {
		d.lru.prev.next, d.lru.next.prev = &d.lru, &d.lru
	}
	return nil
}
