package engine

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
	sim "github.com/vigil-gw/vigil/firmware-sim"
	"github.com/vigil-gw/vigil/replay"
	"github.com/vigil-gw/vigil/rules"
)

// scenario is a simulated fleet with faults, as recorded messages.
func scenario(t testing.TB, seconds int) []Message {
	t.Helper()
	fleet, err := sim.New(sim.Config{Seed: 42, Devices: 12, Rate: time.Second, FaultEvery: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var rec bytes.Buffer
	if err := fleet.Record(&rec, sim.DefaultStart.Add(time.Duration(seconds)*time.Second)); err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	sc := bufio.NewScanner(&rec)
	sc.Buffer(nil, 1<<20)
	for i := 1; sc.Scan(); i++ {
		m, err := recordMessage(sc.Bytes(), uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func loadRules(t testing.TB, extra string) *rules.Set {
	t.Helper()
	b, err := os.ReadFile("../testdata/crash/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := append(b, extra...)
	set, err := rules.Parse([]string{"rules.yaml"}, map[string][]byte{"rules.yaml": src})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func run(t testing.TB, e *Engine, msgs []Message) []string {
	var out []string
	for _, m := range msgs {
		as, _ := e.Process(m)
		for _, a := range as {
			out = append(out, alertLine(a))
		}
	}
	return out
}

func alertLine(a event.Alert) string {
	return fmt.Sprintf("%s %s %s %s %s %v %v", a.ID, a.Rule, a.Key, a.State, a.Message, a.Values, a.Window)
}

// TestSnapshotContinuation: snapshotting every operator kind at random
// points, restoring into a fresh engine and going on gives exactly the
// alerts of an uninterrupted run. Cooldowns, tables and dedupe sets are
// part of it.
func TestSnapshotContinuation(t *testing.T) {
	msgs := scenario(t, 400)
	extra := `
sources:
  - {from: "sensors/#", lateness: 3s, dedupe: {field: ts, within: 1m}}
tables:
  - {name: last_temp, from: "sensors/{device}/temperature", key: device}
`
	cool := `
  - name: hot_cool
    from: sensors/{device}/temperature
    where: temperature > 58 && lookup("last_temp", device) != nil
    key: device
    cooldown: 30s
`
	mk := func() *Engine {
		set := loadRules(t, cool[1:]+extra)
		e, err := New(set, Options{Gateway: "g"})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	whole := mk()
	want := run(t, whole, msgs)
	for _, a := range whole.Flush() {
		want = append(want, alertLine(a))
	}
	if len(want) < 100 {
		t.Fatalf("only %d alerts: the scenario does not exercise the rules", len(want))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 5; trial++ {
		cuts := []int{rng.IntN(len(msgs)), rng.IntN(len(msgs)), rng.IntN(len(msgs))}
		e := mk()
		var got []string
		prev := 0
		for _, c := range sortInts(cuts) {
			got = append(got, run(t, e, msgs[prev:c])...)
			parts, err := e.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			e = mk()
			if notes := e.Restore(parts); len(notes) > 0 {
				t.Fatalf("restore notes: %v", notes)
			}
			prev = c
		}
		got = append(got, run(t, e, msgs[prev:])...)
		for _, a := range e.Flush() {
			got = append(got, alertLine(a))
		}
		if len(got) != len(want) {
			t.Errorf("cuts %v: %d alerts, want %d", cuts, len(got), len(want))
		}
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("cuts %v: alert %d differs:\n got  %s\n want %s", cuts, i, got[i], want[i])
			}
		}
	}
}

func sortInts(a []int) []int {
	for i := range a {
		for j := i + 1; j < len(a); j++ {
			if a[j] < a[i] {
				a[i], a[j] = a[j], a[i]
			}
		}
	}
	return a
}

// TestRestoreDropsChangedRules: state is kept for unchanged rules and
// dropped, with a note, for changed or removed ones.
func TestRestoreDropsChangedRules(t *testing.T) {
	parse := func(src string) *rules.Set {
		s, err := rules.Parse([]string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(src)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const a = "  - {name: a, from: 'm/{k}', key: k, window: {count: 2}, aggregate: {n: count()}}\n"
	const b = "  - {name: b, from: 'm/{k}', key: k, window: {count: 2}, aggregate: {n: count()}}\n"
	e, _ := New(parse("rules:\n"+a+b), Options{})
	e.Process(Message{Topic: "m/x", Payload: []byte(`{"ts": 1}`)})
	parts, _ := e.Snapshot()
	e2, _ := New(parse("rules:\n"+a+"  - {name: b, from: 'm/{k}', key: k, window: {count: 3}, aggregate: {n: count()}}\n"), Options{})
	notes := e2.Restore(parts)
	if len(notes) != 1 || notes[0] != "rule/b: rule definition changed, state dropped" {
		t.Fatalf("notes %q", notes)
	}
	as, _ := e2.Process(Message{Topic: "m/x", Payload: []byte(`{"ts": 2}`)})
	if len(as) != 1 || as[0].Rule != "a" {
		t.Fatalf("a kept its state, b did not: %+v", as)
	}
	parts[`rule/a`] = []byte{99, 1, 2}
	e3, _ := New(parse("rules:\n"+a), Options{})
	if notes := e3.Restore(parts); len(notes) != 2 {
		t.Fatalf("a state of another version and a removed rule: %q", notes)
	}
}

func newEngine(t *testing.T, src string, o Options) *Engine {
	t.Helper()
	set, err := rules.Parse([]string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(set, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// recordMessage reads a recorded line (replay's format) as a Message.
func recordMessage(line []byte, seq uint64) (Message, error) {
	r, err := replay.Parse(line)
	return Message{Topic: r.Topic, Payload: r.Payload, Received: r.Received, Seq: seq}, err
}

func feed(e *Engine, lines ...string) []event.Alert {
	var out []event.Alert
	for i, l := range lines {
		m, err := recordMessage([]byte(l), uint64(i+1))
		if err != nil {
			panic(err)
		}
		as, _ := e.Process(m)
		out = append(out, as...)
	}
	return append(out, e.Flush()...)
}

// TestCooldownOutOfOrder: an earlier event arriving after a firing is
// within the cooldown too.
func TestCooldownOutOfOrder(t *testing.T) {
	e := newEngine(t, "rules:\n  - {name: d, from: 'x/{k}', key: k, cooldown: 10m}\n", Options{})
	got := feed(e,
		`{"topic":"x/a","payload":{"ts":"2026-01-05T10:00:00Z"}}`,
		`{"topic":"x/a","payload":{"ts":"2026-01-05T09:58:00Z"}}`,
		`{"topic":"x/a","payload":{"ts":"2026-01-05T10:09:00Z"}}`,
		`{"topic":"x/a","payload":{"ts":"2026-01-05T10:10:00Z"}}`,
		`{"topic":"x/a","payload":{"ts":"2026-01-05T09:40:00Z"}}`)
	var times []string
	for _, a := range got {
		times = append(times, a.Time.Format("15:04"))
	}
	if fmt.Sprint(times) != "[10:00 10:10 09:40]" {
		t.Fatalf("alerts at %v", times)
	}
}

// TestEqualTimesKeepArrivalOrder: events of one message with the same time
// keep their order (line protocol lines, a JSON array).
func TestEqualTimesKeepArrivalOrder(t *testing.T) {
	e := newEngine(t, "rules:\n  - {name: c, from: 'm/{k}', key: k, window: {count: 3}, aggregate: {first: first(v), last: last(v)}}\n", Options{})
	got := feed(e, `{"topic":"m/a","payload":"m v=1 1767607200000000000\nm v=2 1767607200000000000\nm v=3 1767607200000000000"}`)
	if len(got) != 1 || got[0].Values["first"] != 1.0 || got[0].Values["last"] != 3.0 {
		t.Fatalf("%+v", got)
	}
}

// TestMaxFuture: a reading stamped far ahead of its receipt is dropped and
// counted, so it cannot push the watermark past everyone else.
func TestMaxFuture(t *testing.T) {
	e := newEngine(t, "rules:\n  - {name: c, from: 'm/{k}', key: k, window: {tumbling: 1m}, aggregate: {n: count()}}\n", Options{MaxFuture: time.Hour})
	got := feed(e,
		`{"topic":"m/a","payload":{"v":1,"ts":"2026-01-05T10:00:00Z"},"time":"2026-01-05T10:00:01Z"}`,
		`{"topic":"m/a","payload":{"v":1,"ts":"2106-01-05T10:00:00Z"},"time":"2026-01-05T10:00:02Z"}`,
		`{"topic":"m/a","payload":{"v":1,"ts":"2026-01-05T10:00:30Z"},"time":"2026-01-05T10:00:31Z"}`)
	if len(got) != 1 || got[0].Values["n"] != 2.0 || e.Stats().Future != 1 {
		t.Fatalf("%+v future=%d", got, e.Stats().Future)
	}
}

// TestInstantOrdersAsTime: the watermark's inline comparison orders event
// times as time.Time.After does, before 1970 and within a second too.
func TestInstantOrdersAsTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	times := []time.Time{{}, time.Unix(0, 0), time.Unix(-1, 999999999), time.Unix(1767571200, 0), time.Unix(1767571200, 1)}
	for range 2000 {
		times = append(times, time.Unix(rng.Int64N(1<<36)-1<<35, rng.Int64N(1e9)).UTC(), time.Unix(1767571200, rng.Int64N(3)))
	}
	for _, a := range times {
		for _, b := range times[:50] {
			if got, want := instantOf(a).after(instantOf(b)), a.After(b); got != want {
				t.Fatalf("%v after %v: %v, time.After %v", a, b, got, want)
			}
		}
	}
}

// TestSnapshotParallel: the operators' snapshots, taken on several
// goroutines, are the bytes one goroutine takes (run with -race, this also
// shows that no operator's Snapshot touches another's state).
func TestSnapshotParallel(t *testing.T) {
	e, err := New(loadRules(t, ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range scenario(t, 300) {
		if _, err := e.Process(m); err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatal(err)
			}
		}
	}
	stateful := 0
	for _, rs := range e.rules {
		if rs.op != nil {
			stateful++
		}
	}
	if stateful < 4 {
		t.Fatalf("only %d stateful rules: the test needs several", stateful)
	}
	prev := runtime.GOMAXPROCS(1)
	one, err1 := e.Snapshot()
	runtime.GOMAXPROCS(max(prev, 4))
	many, err2 := e.Snapshot()
	runtime.GOMAXPROCS(prev)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if len(one) != len(many) {
		t.Fatalf("%d parts, then %d", len(one), len(many))
	}
	for name, b := range one {
		if !bytes.Equal(b, many[name]) {
			t.Errorf("part %s differs between one and several goroutines", name)
		}
	}
}

// TestKeptEventsOwnTheirMaps: the decoder fills one map again message
// after message; a table row and a window's last event, which outlive the
// message, keep the fields they were given.
func TestKeptEventsOwnTheirMaps(t *testing.T) {
	e := newEngine(t, `
tables:
  - {name: last, from: "m/{d}/status", key: d}
rules:
  - {name: every, from: "m/{d}/reading", where: v > 0, key: d}
  - {name: win, from: "m/{d}/status", key: d, window: {count: 2}, aggregate: {n: count()}, message: "{{state}}"}
  - {name: look, from: "m/{d}/reading", where: 'lookup("last", d).state == "warn"', key: d, message: "{{v}}"}
`, Options{})
	got := feed(e,
		`{"topic":"m/a/status","payload":{"state":"warn","ts":1767571200}}`,
		`{"topic":"m/a/reading","payload":{"v":1,"state":"x","ts":1767571201}}`,
		`{"topic":"m/a/reading","payload":{"v":2,"state":"y","ts":1767571202}}`,
		`{"topic":"m/a/status","payload":{"state":"ok","ts":1767571203}}`,
	)
	var look, win []string
	for _, a := range got {
		switch a.Rule {
		case "look":
			look = append(look, a.Message)
		case "win":
			win = append(win, a.Message)
		}
	}
	if fmt.Sprint(look) != "[1 2]" || fmt.Sprint(win) != "[ok]" {
		t.Fatalf("look %v (want [1 2]), win %v (want [ok])", look, win)
	}
}

// TestLookupIsTheEngines: lookup() reads the tables of the engine that
// evaluates the expression, even when another engine was built from the
// same rule set since (engine.Check does that on a reload).
func TestLookupIsTheEngines(t *testing.T) {
	src := `
tables:
  - {name: last, from: "m/{d}/status", key: d}
rules:
  - {name: look, from: "m/{d}/reading", where: 'lookup("last", d).state == "warn"', key: d}
`
	set, err := rules.Parse([]string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(set); err != nil {
		t.Fatal(err)
	}
	got := feed(e,
		`{"topic":"m/a/status","payload":{"state":"warn","ts":1767571200}}`,
		`{"topic":"m/a/reading","payload":{"v":1,"ts":1767571201}}`,
	)
	if len(got) != 1 || got[0].Rule != "look" {
		t.Fatalf("alerts %v, want one of look", got)
	}
}
