package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

var t0 = DefaultStart

func mustNew(t testing.TB, c Config) *Sim {
	t.Helper()
	s, err := New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// drain returns every reading sent before until.
func drain(s *Sim, until time.Time) []Reading {
	var out []Reading
	for s.peek().Send.Before(until) {
		out = append(out, s.Next())
	}
	return out
}

func TestDeterminism(t *testing.T) {
	cfg := Config{Seed: 42, Devices: 20, Format: "mixed", FaultEvery: 10 * time.Second, Rate: 500 * time.Millisecond}
	a, b := mustNew(t, cfg), mustNew(t, cfg)
	ra, rb := drain(a, t0.Add(10*time.Minute)), drain(b, t0.Add(10*time.Minute))
	if len(ra) < 20*1000 {
		t.Fatalf("got %d readings, want at least %d", len(ra), 20*1000)
	}
	if !reflect.DeepEqual(ra, rb) {
		t.Fatal("same seed gave different readings")
	}
	if !reflect.DeepEqual(a.Truth(), b.Truth()) {
		t.Fatal("same seed gave different truth")
	}
	var ta, tb bytes.Buffer
	if err := WriteTruth(&ta, a.Truth()); err != nil {
		t.Fatal(err)
	}
	if err := WriteTruth(&tb, b.Truth()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ta.Bytes(), tb.Bytes()) || ta.Len() == 0 {
		t.Fatalf("truth files differ or are empty (%d bytes)", ta.Len())
	}

	cfg.Seed = 43
	rc := drain(mustNew(t, cfg), t0.Add(10*time.Minute))
	same := 0
	for i := range min(len(ra), len(rc)) {
		if bytes.Equal(ra[i].Payload, rc[i].Payload) {
			same++
		}
	}
	if same > len(ra)/2 {
		t.Errorf("seeds 42 and 43 share %d of %d payloads", same, len(ra))
	}
}

// TestDeviceStreamsIndependent: a device's readings do not depend on how
// many devices the fleet has, so a scenario survives growing the fleet.
func TestDeviceStreamsIndependent(t *testing.T) {
	small := drain(mustNew(t, Config{Seed: 7, Devices: 3, Rate: 300 * time.Millisecond}), t0.Add(time.Minute))
	big := drain(mustNew(t, Config{Seed: 7, Devices: 30, Rate: 300 * time.Millisecond}), t0.Add(time.Minute))
	values := func(rs []Reading, dev string) []string {
		var out []string
		for _, r := range rs {
			if r.Device == dev {
				// The payload's ts differs (the stagger), the value must not.
				out = append(out, strings.SplitN(string(r.Payload), ",", 2)[0])
			}
		}
		return out
	}
	a, b := values(small, "pump-01"), values(big, "pump-01")
	if len(a) != 200 || !reflect.DeepEqual(a, b) {
		t.Errorf("pump-01: %d readings alone, %d in a fleet of 30, equal=%v", len(a), len(b), reflect.DeepEqual(a, b))
	}
}

func TestOrderAndRate(t *testing.T) {
	s := mustNew(t, Config{Seed: 1, Devices: 12, FaultEvery: 5 * time.Second})
	rs := drain(s, t0.Add(10*time.Minute))
	for i, r := range rs {
		if r.Send.Before(r.Time) {
			t.Fatalf("reading %d sent at %v before its time %v", i, r.Send, r.Time)
		}
		if i > 0 && r.Send.Before(rs[i-1].Send) {
			t.Fatalf("reading %d sent at %v, before reading %d at %v", i, r.Send, i-1, rs[i-1].Send)
		}
		if want := "sensors/" + r.Device + "/" + r.Kind; r.Topic != want {
			t.Fatalf("topic %q, want %q", r.Topic, want)
		}
	}
	if rs[0].Time != t0 {
		t.Errorf("first reading at %v, want %v", rs[0].Time, t0)
	}
	clean := drain(mustNew(t, Config{Seed: 1, Devices: 12}), t0.Add(10*time.Minute))
	if len(clean) != 12*600 {
		t.Errorf("without faults: %d readings in 10 min, want %d", len(clean), 12*600)
	}
}

// value reads the number a well-formed JSON reading carries.
func value(t *testing.T, r Reading) float64 {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Payload, &m); err != nil {
		t.Fatalf("%s: %q: %v", r.Topic, r.Payload, err)
	}
	v, ok := m[r.Kind].(float64)
	if !ok {
		t.Fatalf("%s: %q: no number %q", r.Topic, r.Payload, r.Kind)
	}
	return v
}

func TestFaults(t *testing.T) {
	const dev = "pump-01"
	start, end := t0.Add(20*time.Second), t0.Add(30*time.Second) // ticks 20..29
	in := func(r Reading) bool { return r.Device == dev && !r.Time.Before(start) && r.Time.Before(end) }
	near := func(a, b float64) bool { return math.Abs(a-b) < 0.011 }

	tests := []struct {
		kind string
		mag  float64
		// check compares the faulty run with the same run without the fault.
		check func(t *testing.T, got, base []Reading)
	}{
		{"spike", 10, func(t *testing.T, got, base []Reading) {
			sameCount(t, got, base)
			for i := range got {
				if want := value(t, base[i]) + 10*boolF(in(got[i])); !near(value(t, got[i]), want) {
					t.Errorf("%s at %v: %v, want %v", got[i].Device, got[i].Time, value(t, got[i]), want)
				}
			}
		}},
		{"drift", 8, func(t *testing.T, got, base []Reading) {
			sameCount(t, got, base)
			for i := range got {
				want := value(t, base[i])
				if in(got[i]) {
					// The ramp runs over the fault's requested span, which
					// starts 300 ms before the first affected tick.
					want += 8 * float64(got[i].Time.Sub(start)+300*time.Millisecond) / float64(end.Sub(start))
				}
				if !near(value(t, got[i]), want) {
					t.Errorf("%s at %v: %v, want %v", got[i].Device, got[i].Time, value(t, got[i]), want)
				}
			}
		}},
		{"stuck", 0, func(t *testing.T, got, base []Reading) {
			sameCount(t, got, base)
			var last float64
			for i := range got {
				switch {
				case got[i].Device != dev:
				case got[i].Time.Before(start):
					last = value(t, got[i])
				case in(got[i]):
					if v := value(t, got[i]); v != last {
						t.Errorf("stuck at %v: %v, want the last good value %v", got[i].Time, v, last)
					}
				default:
					if v, w := value(t, got[i]), value(t, base[i]); v != w {
						t.Errorf("after stuck at %v: %v, want %v", got[i].Time, v, w)
					}
				}
			}
		}},
		{"silence", 0, func(t *testing.T, got, base []Reading) {
			if n := count(got, in); n != 0 {
				t.Errorf("%d readings during silence", n)
			}
			if len(got) != len(base)-10 {
				t.Errorf("%d readings, want %d", len(got), len(base)-10)
			}
		}},
		{"burst", 5, func(t *testing.T, got, base []Reading) {
			if n := count(got, in); n != 50 {
				t.Errorf("%d readings in the burst, want 10 ticks × 5", n)
			}
			if len(got) != len(base)+40 {
				t.Errorf("%d readings, want %d", len(got), len(base)+40)
			}
		}},
		{"late", 7, func(t *testing.T, got, base []Reading) {
			sameCount(t, got, base)
			for _, r := range got {
				want := time.Duration(0)
				if in(r) {
					want = 7 * time.Second
				}
				if d := r.Send.Sub(r.Time); d != want {
					t.Errorf("%s at %v sent %v late, want %v", r.Device, r.Time, d, want)
				}
			}
		}},
		{"out_of_order", 4, func(t *testing.T, got, base []Reading) {
			sameCount(t, got, base)
			inversions := 0
			var prev time.Time
			for _, r := range got {
				d := r.Send.Sub(r.Time)
				if in(r) && (d < 0 || d >= 4*time.Second) || !in(r) && d != 0 {
					t.Errorf("%s at %v delayed %v", r.Device, r.Time, d)
				}
				if r.Device == dev {
					if r.Time.Before(prev) {
						inversions++
					}
					prev = r.Time
				}
			}
			if inversions == 0 {
				t.Error("delivered in event-time order")
			}
		}},
		{"duplicate", 2, func(t *testing.T, got, base []Reading) {
			if len(got) != len(base)+20 {
				t.Errorf("%d readings, want %d", len(got), len(base)+20)
			}
			seen := map[string]int{}
			for _, r := range got {
				seen[string(r.Payload)]++
			}
			for _, r := range got {
				if want := 1 + 2*boolI(in(r)); seen[string(r.Payload)] != want {
					t.Errorf("%q sent %d times, want %d", r.Payload, seen[string(r.Payload)], want)
				}
			}
		}},
		{"malformed", 0, func(t *testing.T, got, base []Reading) {
			sameCount(t, got, base)
			for i, r := range got {
				if r.Malformed != in(r) {
					t.Errorf("%s at %v: Malformed=%v", r.Device, r.Time, r.Malformed)
				}
				if !in(r) && !bytes.Equal(r.Payload, base[i].Payload) {
					t.Errorf("%s at %v: payload %q, want %q", r.Device, r.Time, r.Payload, base[i].Payload)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			// Faults start between ticks: the truth must say when the
			// first affected reading was.
			f := Fault{Device: dev, Kind: tt.kind, Start: start.Add(-300 * time.Millisecond), End: end.Add(-300 * time.Millisecond), Magnitude: tt.mag}
			cfg := Config{Seed: 3, Kinds: []string{"temperature"}, Devices: 2}
			base := drain(mustNew(t, cfg), t0.Add(time.Minute))
			cfg.Faults = []Fault{f}
			s := mustNew(t, cfg)
			got := drain(s, t0.Add(time.Minute))
			for _, r := range got {
				want := ""
				if in(r) {
					want = tt.kind
				}
				if r.Fault != want {
					t.Fatalf("%s at %v: Fault=%q, want %q", r.Device, r.Time, r.Fault, want)
				}
			}
			tt.check(t, got, base)
			want := []Fault{{Device: dev, Sensor: "temperature", Kind: tt.kind, Start: start, End: end, Magnitude: s.defaultMagnitudeOr(tt.kind, tt.mag), Readings: 10}}
			if truth := s.Truth(); !reflect.DeepEqual(truth, want) {
				t.Errorf("truth\n got %+v\nwant %+v", truth, want)
			}
		})
	}
}

func (s *Sim) defaultMagnitudeOr(kind string, m float64) float64 {
	if m == 0 {
		return s.defaultMagnitude(kind)
	}
	return m
}

func sameCount(t *testing.T, got, base []Reading) {
	t.Helper()
	if len(got) != len(base) {
		t.Fatalf("%d readings, want %d", len(got), len(base))
	}
}

func count(rs []Reading, f func(Reading) bool) int {
	n := 0
	for _, r := range rs {
		if f(r) {
			n++
		}
	}
	return n
}

func boolF(b bool) float64 { return float64(boolI(b)) }
func boolI(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestNewErrors(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"kind", Config{Kinds: []string{"pressure"}}, `unknown kind "pressure"`},
		{"format", Config{Format: "xml"}, `unknown format "xml"`},
		{"rate", Config{Rate: time.Nanosecond}, "rate 1ns"},
		{"devices", Config{Devices: -1}, "devices -1"},
		{"prefix", Config{TopicPrefix: "a/+"}, "wildcards"},
		{"fault kinds", Config{FaultKinds: []string{"fire"}}, `unknown fault "fire"`},
		{"no applicable fault", Config{Kinds: []string{"door"}, FaultEvery: time.Minute, FaultKinds: []string{"spike", "drift"}}, "no fault of spike, drift applies to a door sensor"},
		{"device", Config{Faults: []Fault{{Device: "pump-09", Kind: "spike", Start: at(1), End: at(2)}}}, `unknown device "pump-09"`},
		{"fault kind", Config{Faults: []Fault{{Device: "pump-01", Kind: "fire", Start: at(1), End: at(2)}}}, `unknown kind "fire"`},
		{"span", Config{Faults: []Fault{{Device: "pump-01", Kind: "spike", Start: at(2), End: at(2)}}}, "is not after start"},
		{"door spike", Config{Faults: []Fault{{Device: "door-06", Kind: "spike", Start: at(1), End: at(2)}}}, "does not apply to a door sensor"},
		{"burst", Config{Faults: []Fault{{Device: "pump-01", Kind: "burst", Start: at(1), End: at(2), Magnitude: 1e6}}}, "magnitude 1e+06 exceeds 1000"},
		{"magnitude", Config{Faults: []Fault{{Device: "pump-01", Kind: "late", Start: at(1), End: at(2), Magnitude: -1}}}, "negative magnitude"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	s := mustNew(t, Config{})
	c := s.Config()
	if c.Devices != 6 || c.Rate != time.Second || c.Format != "json" || c.TopicPrefix != "sensors" || !c.Start.Equal(DefaultStart) {
		t.Errorf("defaults: %+v", c)
	}
	want := []string{"pump-01", "room-02", "motor-03", "oven-04", "meter-05", "door-06"}
	if got := s.Devices(); !reflect.DeepEqual(got, want) {
		t.Errorf("devices %v, want %v", got, want)
	}
	if got := mustNew(t, Config{Devices: 120}).Devices()[119]; got != "door-120" {
		t.Errorf("device 120 is %q", got)
	}
}

// TestRandomFaults runs an hour with a fault every 30 s or so and checks the
// truth: every kind shows up, faults never overlap on a device, and each
// truth record matches what the readings show.
func TestRandomFaults(t *testing.T) {
	s := mustNew(t, Config{Seed: 9, Devices: 12, FaultEvery: 30 * time.Second})
	rs := drain(s, t0.Add(time.Hour))
	truth := s.Truth()
	if len(truth) < 80 || len(truth) > 130 {
		t.Errorf("%d faults in an hour, want about 120", len(truth))
	}
	if first := truth[0].Start; first.After(t0.Add(46 * time.Second)) {
		t.Errorf("first fault at %v: a demo should show one within a minute", first)
	}
	kinds := map[string]int{}
	lastEnd := map[string]time.Time{}
	for _, f := range truth {
		kinds[f.Kind]++
		if f.Readings == 0 || !f.End.After(f.Start) {
			t.Errorf("empty fault %+v", f)
		}
		if f.Start.Before(lastEnd[f.Device]) {
			t.Errorf("%s: %s at %v overlaps the fault before, ending %v", f.Device, f.Kind, f.Start, lastEnd[f.Device])
		}
		lastEnd[f.Device] = f.End
		if f.Sensor == "door" && (f.Kind == "spike" || f.Kind == "drift" || f.Kind == "stuck") {
			t.Errorf("%s on a door", f.Kind)
		}
		// The readings in the span carry the fault (silence: there are none).
		n := 0
		for _, r := range rs {
			if r.Device == f.Device && r.Fault == f.Kind && !r.Time.Before(f.Start) && r.Time.Before(f.End) {
				n++
			}
		}
		switch {
		case f.Kind == "silence" && n != 0, f.Kind != "silence" && f.End.Before(t0.Add(59*time.Minute)) && n < f.Readings:
			t.Errorf("%+v: %d readings carry it", f, n)
		}
	}
	for _, k := range FaultKinds() {
		if kinds[k] == 0 {
			t.Errorf("no %s fault in an hour (%v)", k, kinds)
		}
	}
}

// TestPayloads checks every payload against its format: JSON objects with
// the kind and ts, line protocol that the InfluxDB decoder accepts, bare
// numbers; and that every malformed payload fails its format.
func TestPayloads(t *testing.T) {
	for _, format := range []string{"json", "influx", "value", "mixed"} {
		t.Run(format, func(t *testing.T) {
			s := mustNew(t, Config{Seed: 5, Devices: 15, Format: format, FaultEvery: 2 * time.Second, FaultKinds: []string{"malformed", "burst", "spike"}})
			var good, bad int
			for _, r := range drain(s, t0.Add(10*time.Minute)) {
				ok, err := wellFormed(r)
				if r.Malformed {
					bad++
					if ok {
						t.Errorf("%s: malformed payload %q decodes", r.Topic, r.Payload)
					}
					continue
				}
				good++
				if !ok {
					t.Errorf("%s: %q: %v", r.Topic, r.Payload, err)
				}
			}
			if bad < 50 || good < 1000 {
				t.Errorf("%d good and %d malformed payloads", good, bad)
			}
		})
	}
}

// wellFormed decodes a payload the way a strict consumer would: the reading's
// number must come out, and its event time too where the format has one.
func wellFormed(r Reading) (bool, error) {
	p := r.Payload
	switch {
	case len(p) > 0 && p[0] == '{':
		var m map[string]any
		if err := json.Unmarshal(p, &m); err != nil {
			return false, err
		}
		if _, ok := m[r.Kind].(float64); !ok {
			return false, fmt.Errorf("%s is %T", r.Kind, m[r.Kind])
		}
		var ts time.Time
		switch x := m["ts"].(type) {
		case string:
			ts, _ = time.Parse(time.RFC3339, x)
		case float64:
			ts = time.UnixMilli(int64(x))
		}
		if !ts.Equal(r.Time.Truncate(time.Millisecond)) {
			return false, fmt.Errorf("ts %v, want %v", m["ts"], r.Time)
		}
		return true, nil
	case bytes.HasPrefix(p, []byte(r.Kind+",")):
		dec := lineprotocol.NewDecoderWithBytes(p)
		if !dec.Next() {
			return false, fmt.Errorf("no line")
		}
		m, err := dec.Measurement()
		if err != nil || string(m) != r.Kind {
			return false, fmt.Errorf("measurement %q: %v", m, err)
		}
		k, v, err := dec.NextTag()
		if err != nil || string(k) != "device" || string(v) != r.Device {
			return false, fmt.Errorf("tag %q=%q: %v", k, v, err)
		}
		if k, _, err = dec.NextTag(); err != nil || k != nil {
			return false, fmt.Errorf("extra tag %q: %v", k, err)
		}
		k, fv, err := dec.NextField()
		if err != nil || string(k) != "value" || fv.Kind() != lineprotocol.Float {
			return false, fmt.Errorf("field %q=%v: %v", k, fv, err)
		}
		ts, err := dec.Time(lineprotocol.Nanosecond, time.Time{})
		if err != nil || !ts.Equal(r.Time) {
			return false, fmt.Errorf("time %v, want %v: %v", ts, r.Time, err)
		}
		return !dec.Next(), dec.Err()
	default:
		if bytes.IndexFunc(p, func(c rune) bool { return !strings.ContainsRune("0123456789.-", c) }) >= 0 || len(p) == 0 {
			return false, fmt.Errorf("not a bare number")
		}
		_, err := strconv.ParseFloat(string(p), 64)
		return err == nil, err
	}
}

func TestRecord(t *testing.T) {
	cfg := Config{Seed: 11, Devices: 9, Format: "mixed", FaultEvery: 3 * time.Second}
	until := t0.Add(5 * time.Minute)
	var buf bytes.Buffer
	if err := mustNew(t, cfg).Record(&buf, until); err != nil {
		t.Fatal(err)
	}
	want := drain(mustNew(t, cfg), until)
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	kinds := map[byte]int{}
	for i, line := range lines {
		var rec struct {
			Topic   string          `json:"topic"`
			Payload json.RawMessage `json:"payload"`
			Time    time.Time       `json:"time"`
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("line %d: %q: %v", i+1, line, err)
		}
		w := want[i]
		if rec.Topic != w.Topic || !rec.Time.Equal(w.Send) {
			t.Fatalf("line %d: topic %q time %v, want %q %v", i+1, rec.Topic, rec.Time, w.Topic, w.Send)
		}
		// The payload round-trips: verbatim JSON, or a string of its text.
		var got []byte
		switch c := rec.Payload[0]; {
		case c == '"':
			var s string
			if err := json.Unmarshal(rec.Payload, &s); err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			got = []byte(s)
		case c == '{' || c == '-' || c >= '0' && c <= '9':
			got = rec.Payload
		default:
			t.Fatalf("line %d: payload %s is neither object, number nor string", i+1, rec.Payload)
		}
		kinds[rec.Payload[0]]++
		if !bytes.Equal(got, w.Payload) && string(got) != string([]rune(string(w.Payload))) {
			t.Errorf("line %d: payload %q, want %q", i+1, got, w.Payload)
		}
	}
	if kinds['"'] == 0 || kinds['{'] == 0 {
		t.Errorf("payload shapes %v: want objects, numbers and strings", kinds)
	}
}

func TestWriteTruth(t *testing.T) {
	f := Fault{Device: "pump-01", Sensor: "temperature", Kind: "spike", Start: t0, End: t0.Add(time.Second), Magnitude: 20, Readings: 1}
	var buf bytes.Buffer
	if err := WriteTruth(&buf, []Fault{f, f}); err != nil {
		t.Fatal(err)
	}
	line := `{"device":"pump-01","kind":"temperature","fault":"spike","start":"2026-01-05T10:00:00Z","end":"2026-01-05T10:00:01Z","magnitude":20,"readings":1}` + "\n"
	if got := buf.String(); got != line+line {
		t.Errorf("got\n%s\nwant\n%s", got, line+line)
	}
}

// TestExplicitAndRandom: random faults keep clear of a scheduled one, so the
// demo can place a first fault early and still have random ones after it.
func TestExplicitAndRandom(t *testing.T) {
	spike := Fault{Device: "pump-01", Kind: "spike", Start: t0.Add(20 * time.Second), End: t0.Add(23 * time.Second)}
	s := mustNew(t, Config{Seed: 1, Kinds: []string{"temperature"}, Devices: 1, FaultEvery: 5 * time.Second, Faults: []Fault{spike}})
	drain(s, t0.Add(10*time.Minute))
	truth := s.Truth()
	found := false
	for _, f := range truth {
		if f.Kind == "spike" && f.Start.Equal(spike.Start) && f.Magnitude == 20 {
			found = true
			continue
		}
		if f.Start.Before(spike.End) && f.End.After(spike.Start) {
			t.Errorf("random %s %v–%v overlaps the scheduled spike", f.Kind, f.Start, f.End)
		}
	}
	if !found || len(truth) < 5 {
		t.Errorf("truth %+v: want the scheduled spike and random faults", truth)
	}
}

// TestAppendTime: the cached timestamp text is what time.AppendFormat
// writes, across seconds, before 1970, and out of order.
func TestAppendTime(t *testing.T) {
	d := &device{}
	ts := []int64{0, 1, 999_999, 1_000_000, 999_999_999, 1_000_000_000, -1, -1_000_000, -999_999_999,
		time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC).UnixNano(), time.Date(2026, 1, 5, 10, 0, 0, 999_500_000, time.UTC).UnixNano(),
		time.Date(2026, 1, 5, 9, 59, 59, 1_000_000, time.UTC).UnixNano(), time.Date(2099, 12, 31, 23, 59, 59, 999_999_999, time.UTC).UnixNano()}
	for i := range 2000 {
		ts = append(ts, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()+int64(i)*7_777_777)
	}
	for _, n := range ts {
		want := time.Unix(0, n).UTC().AppendFormat(nil, "2006-01-02T15:04:05.000Z07:00")
		if got := d.appendTime(nil, n); string(got) != string(want) {
			t.Fatalf("%d: %s, want %s", n, got, want)
		}
	}
}
