package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/broker"
	"github.com/vigil-gw/vigil/config"
	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/event"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func logger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return quiet
}

func startBroker(t testing.TB, addr string) *broker.Broker {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var b *broker.Broker
	var err error
	// A port just released may take the kernel a moment to free again:
	// tried every 100 ms, a wait on something outside the process.
	retry := time.NewTicker(100 * time.Millisecond)
	defer retry.Stop()
	for i := 0; i < 50; i++ {
		b, err = broker.New(broker.Options{Listen: addr, Logger: quiet})
		if err == nil {
			if err = b.Start(); err == nil {
				break
			}
		}
		<-retry.C
	}
	if err != nil {
		t.Fatalf("broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// waitOn waits until cond holds, checking it at each wake of sig.
func waitOn(t testing.TB, sig *signal, within time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout := time.NewTimer(within)
	defer timeout.Stop()
	for {
		changed := sig.changed() // before cond: no wake is missed
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("not %s within %s", what, within)
		}
	}
}

// eventually waits until cond holds, checking it every 10 ms: only for
// what signals nothing the test can wait on, the state of an MQTT
// connection (paho's, in conn), which follows the network.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout := time.NewTimer(within)
	defer timeout.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-timeout.C:
			t.Fatalf("not %s within %s", what, within)
		}
	}
}

// alerts collects what arrives upstream.
type alerts struct {
	mu  sync.Mutex
	got []event.Alert
	raw []string
	sig signal // wakes at each alert
}

func (a *alerts) add(topic string, payload []byte) {
	var al event.Alert
	if err := json.Unmarshal(payload, &al); err != nil {
		panic(fmt.Sprintf("upstream payload on %s is not an alert: %v: %s", topic, err, payload))
	}
	al.Topic = topic
	a.mu.Lock()
	a.got = append(a.got, al)
	a.raw = append(a.raw, string(payload))
	a.mu.Unlock()
	a.sig.wake()
}

func (a *alerts) list() []event.Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]event.Alert(nil), a.got...)
}

func (a *alerts) waitFor(t *testing.T, n int, within time.Duration) []event.Alert {
	t.Helper()
	var l []event.Alert
	waitOn(t, &a.sig, within, fmt.Sprintf("%d alerts upstream", n), func() bool { l = a.list(); return len(l) >= n })
	return l
}

// barrier publishes a marker alert to the upstream broker at addr and waits
// for it: the alerts upstream acknowledged before it was sent have reached
// the collector too (the broker hands a publish to its subscribers right
// after acknowledging it, and delivers to one subscriber in that order).
// It returns the alerts before the marker.
func (a *alerts) barrier(t *testing.T, addr string) []event.Alert {
	t.Helper()
	c, err := conn.Dial(context.Background(), conn.Options{Broker: "tcp://" + addr, ClientID: "barrier-" + t.Name(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := len(a.list())
	if err := c.Publish("vigil/barrier", []byte(`{"rule": "barrier"}`), 1, false); err != nil {
		t.Fatal(err)
	}
	var l []event.Alert
	waitOn(t, &a.sig, 10*time.Second, "the barrier upstream", func() bool {
		l = a.list()
		return slices.ContainsFunc(l[n:], func(al event.Alert) bool { return al.Rule == "barrier" })
	})
	i := slices.IndexFunc(l, func(al event.Alert) bool { return al.Rule == "barrier" })
	return l[:i]
}

func watchUpstream(t *testing.T, addr string) *alerts {
	t.Helper()
	a := &alerts{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := conn.Dial(ctx, conn.Options{Broker: "tcp://" + addr, ClientID: "watch-" + t.Name(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Subscribe("vigil/#", 1, a.add); err != nil {
		t.Fatal(err)
	}
	return a
}

func device(t *testing.T, addr string) *conn.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := conn.Dial(ctx, conn.Options{Broker: "tcp://" + addr, ClientID: "dev-" + t.Name(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func testConfig(t *testing.T, dir, in, up, rulesYAML string) *config.Config {
	t.Helper()
	rd := filepath.Join(dir, "rules")
	os.MkdirAll(rd, 0o755)
	if err := os.WriteFile(filepath.Join(rd, "r.yaml"), []byte(rulesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.Gateway = "gw1"
	c.MQTT.Broker = "tcp://" + in
	c.MQTT.ClientID = "vigil-" + strings.ReplaceAll(t.Name(), "/", "-")
	if up != "" {
		c.Upstream.Broker = "tcp://" + up
	}
	c.State.Path = filepath.Join(dir, "vigil.db")
	c.State.CheckpointEvery = 200 * time.Millisecond
	c.State.CheckpointMessages = 1
	c.Rules = []string{rd}
	c.Limits.Grace = 200 * time.Millisecond
	return c
}

// start runs a gateway until the test ends (or stop is called).
func start(t *testing.T, c *config.Config) (g *Gateway, stop func()) {
	t.Helper()
	return startWith(t, Options{Config: c, Logger: logger(t)})
}

func startWith(t *testing.T, o Options) (g *Gateway, stop func()) {
	t.Helper()
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("gateway run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("gateway did not stop within 15 s")
			}
		})
	}
	t.Cleanup(stop)
	waitConnected(t, g)
	return g, stop
}

func waitConnected(t testing.TB, g *Gateway) {
	t.Helper()
	eventually(t, 10*time.Second, "connected", func() bool {
		return g.Subscriber().Stats().Connected && (g.pub == nil || g.pub.Connected())
	})
}

func publish(t *testing.T, c *conn.Client, topic, payload string) {
	t.Helper()
	if err := c.Publish(topic, []byte(payload), 1, false); err != nil {
		t.Fatal(err)
	}
}

const hotRules = `
rules:
  - name: hot_motor
    from: sensors/{device}/temperature
    where: temperature > 80
    key: device
    severity: critical
    message: "{{device}} at {{temperature}}"
  - name: minute_avg
    from: sensors/{device}/temperature
    key: device
    window: {tumbling: 10s}
    aggregate: {avg: avg(temperature), n: count()}
`

// TestPublishToUpstream: a reading published over TCP comes out upstream
// as the contract's alert JSON; a window closes on the gateway's clock when
// the sensor falls silent.
func TestPublishToUpstream(t *testing.T) {
	b := startBroker(t, "")
	dir := t.TempDir()
	up := watchUpstream(t, b.Addr())
	c := testConfig(t, dir, b.Addr(), b.Addr(), hotRules)
	start(t, c)
	dev := device(t, b.Addr())
	ts := time.Now().UTC().Truncate(time.Millisecond)
	publish(t, dev, "sensors/pump1/temperature", fmt.Sprintf(`{"temperature": 85.5, "ts": %q}`, ts.Format(time.RFC3339Nano)))
	publish(t, dev, "sensors/pump1/temperature", `not json`)
	got := up.waitFor(t, 1, 10*time.Second)
	a := got[0]
	if a.Rule != "hot_motor" || a.Key != "pump1" || a.State != event.Firing || a.Severity != "critical" ||
		!a.Time.Equal(ts) || a.Message != "pump1 at 85.5" || a.Topic != "vigil/gw1/alerts/hot_motor" ||
		a.ID != event.AlertID("hot_motor", "pump1", event.Firing, ts) {
		t.Fatalf("alert %+v", a)
	}
	if !strings.Contains(up.raw[0], `"values":{"device":"pump1","temperature":85.5,"ts":`) {
		t.Fatalf("raw alert %s", up.raw[0])
	}
	// The ten-second window holding that reading closes on the gateway's
	// clock: its end, plus lateness (0), plus the grace.
	end := ts.Truncate(10 * time.Second).Add(10 * time.Second)
	wait := time.Until(end) + 5*time.Second
	got = up.waitFor(t, 2, wait)
	w := got[1]
	if w.Rule != "minute_avg" || w.Window == nil || !w.Window.End.Equal(end) || w.Values["n"] != 1.0 {
		t.Fatalf("window alert %+v", w)
	}
}

// TestUpstreamOutage: while upstream is down, alerts wait in the outbox;
// when it returns every one is delivered, once, in order.
func TestUpstreamOutage(t *testing.T) {
	in := startBroker(t, "")
	upb := startBroker(t, "")
	upAddr := upb.Addr()
	dir := t.TempDir()
	c := testConfig(t, dir, in.Addr(), upAddr, hotRules[:strings.Index(hotRules, "  - name: minute_avg")])
	g, _ := start(t, c)
	dev := device(t, in.Addr())
	upb.Close()
	base := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	const n = 30
	for i := 0; i < n; i++ {
		publish(t, dev, fmt.Sprintf("sensors/p%02d/temperature", i), fmt.Sprintf(`{"temperature": %d, "ts": %q}`, 81+i, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339)))
	}
	// All stored, none sent.
	waitFor(t, g, 10*time.Second, fmt.Sprintf("%d alerts in the outbox", n), func() bool { l, _ := g.DB().OutboxLen(); return l == n })
	// The forwarder retries against a dead broker meanwhile (a longer
	// outage only lengthens the publisher's reconnect backoff).
	errs := g.Forwarder().Stats().Errors
	waitFor(t, g, 10*time.Second, "a failed round of the forwarder", func() bool { return g.Forwarder().Stats().Errors > errs })
	startBroker(t, upAddr)
	up := watchUpstream(t, upAddr)
	up.waitFor(t, n, 90*time.Second)
	// Delivered alerts leave the outbox within the forwarder's removal
	// interval (a second); then nothing more may come.
	waitOn(t, &g.outbox.signal, 5*time.Second, "an empty outbox", func() bool { l, _ := g.DB().OutboxLen(); return l == 0 })
	got := up.barrier(t, upAddr)
	if len(got) != n {
		t.Fatalf("got %d alerts, want exactly %d", len(got), n)
	}
	for i, a := range got {
		if want := fmt.Sprintf("p%02d", i); a.Key != want {
			t.Fatalf("alert %d is for %s, want %s (out of order)", i, a.Key, want)
		}
	}
}

// TestReload: a changed rule file takes effect; an invalid one is rejected
// and the old rules keep running with their state.
func TestReload(t *testing.T) {
	for _, inProcess := range []bool{false, true} {
		t.Run(fmt.Sprintf("in-process=%v", inProcess), func(t *testing.T) { testReload(t, inProcess) })
	}
}

// testReload: with in-process ingest a new rule's topics are taken from the
// embedded broker as soon as the rules are reloaded, as a subscription
// would be extended.
func testReload(t *testing.T, inProcess bool) {
	b := startBroker(t, "")
	dir := t.TempDir()
	up := watchUpstream(t, b.Addr())
	const three = `
rules:
  - name: three
    from: meters/{m}/kwh
    key: m
    window: {count: 3}
    aggregate: {total: sum(kwh)}
`
	c := testConfig(t, dir, b.Addr(), b.Addr(), three)
	if inProcess {
		c = inProcessConfig(t, dir, b.Addr(), three)
	}
	g, _ := start(t, c)
	devAddr := b.Addr()
	if inProcess {
		devAddr = g.Broker().Addr()
	}
	dev := device(t, devAddr)
	base := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	send := func(i int, topic string) {
		publish(t, dev, topic, fmt.Sprintf(`{"kwh": %d, "ts": %q}`, i, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339)))
	}
	send(1, "meters/m1/kwh")
	send(2, "meters/m1/kwh")
	waitEvents(t, g, 2)
	// Add a rule, keep "three" unchanged: its two events stay counted.
	rf := filepath.Join(dir, "rules", "r.yaml")
	writeFile(t, rf, `
rules:
  - name: three
    from: meters/{m}/kwh
    key: m
    window: {count: 3}
    aggregate: {total: sum(kwh)}
  - name: water
    from: water/{m}
    key: m
    where: litres > 100
`)
	waitReload(t, g, 1)
	send(3, "meters/m1/kwh")
	send(4, "water/w1")
	publish(t, dev, "water/w1", fmt.Sprintf(`{"litres": 150, "ts": %q}`, base.Add(5*time.Second).Format(time.RFC3339)))
	got := up.waitFor(t, 2, 10*time.Second)
	if got[0].Rule != "three" || got[0].Values["total"] != 6.0 || got[1].Rule != "water" {
		t.Fatalf("after reload: %+v", got)
	}
	// A broken file is rejected; the old rules go on.
	writeFile(t, rf, "rules:\n  - name: broken\n    from: water/{m}\n    where: litres >\n")
	waitReload(t, g, 2)
	if errs := g.Status().ReloadErrors; len(errs) == 0 || !strings.Contains(errs[0], "r.yaml:4:") {
		t.Fatalf("reload errors %q", errs)
	}
	publish(t, dev, "water/w2", fmt.Sprintf(`{"litres": 150, "ts": %q}`, base.Add(6*time.Second).Format(time.RFC3339)))
	got = up.waitFor(t, 3, 10*time.Second)
	if got[2].Rule != "water" || got[2].Key != "w2" {
		t.Fatalf("old rules not running after a bad reload: %+v", got[2])
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // as editors do
		t.Fatal(err)
	}
}

func waitEvents(t testing.TB, g *Gateway, n uint64) {
	t.Helper()
	waitFor(t, g, 10*time.Second, fmt.Sprintf("%d events", n), func() bool { return g.Status().Events >= n })
}

// waitFor waits until cond holds, checking it at each change of g's status:
// every batch processed, and at least every tick of the engine loop (a
// second), so a condition on what the gateway does follows it closely.
func waitFor(t testing.TB, g *Gateway, within time.Duration, what string, cond func() bool) {
	t.Helper()
	waitOn(t, &g.statusSig, within, what, cond)
}

func waitReload(t *testing.T, g *Gateway, n int) {
	t.Helper()
	waitFor(t, g, 10*time.Second, fmt.Sprintf("reload %d", n), func() bool { return g.reloadCount() >= n })
}

// TestRestartKeepsState: state survives a clean stop and start: two events
// before, one after, and the count window of three fires.
func TestRestartKeepsState(t *testing.T) {
	b := startBroker(t, "")
	dir := t.TempDir()
	up := watchUpstream(t, b.Addr())
	r := `
rules:
  - name: three
    from: meters/{m}/kwh
    key: m
    window: {count: 3}
    aggregate: {total: sum(kwh)}
`
	c := testConfig(t, dir, b.Addr(), b.Addr(), r)
	g, stop := start(t, c)
	dev := device(t, b.Addr())
	base := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	send := func(i int) {
		publish(t, dev, "meters/m1/kwh", fmt.Sprintf(`{"kwh": %d, "ts": %q}`, i, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339)))
	}
	send(1)
	send(2)
	waitEvents(t, g, 2)
	stop()
	c2 := testConfig(t, dir, b.Addr(), b.Addr(), r)
	start(t, c2)
	send(3)
	got := up.waitFor(t, 1, 10*time.Second)
	if got[0].Values["total"] != 6.0 {
		t.Fatalf("after restart: %+v", got[0])
	}
}

// TestBrokerRestart: the broker goes away and comes back on the same port
// (an in-memory broker, so the session is gone too): the gateway reconnects,
// subscribes again and processes new readings.
func TestBrokerRestart(t *testing.T) {
	b := startBroker(t, "")
	addr := b.Addr()
	up := startBroker(t, "")
	dir := t.TempDir()
	c := testConfig(t, dir, addr, up.Addr(), hotRules)
	g, _ := start(t, c)
	watch := watchUpstream(t, up.Addr())
	b.Close()
	eventually(t, 10*time.Second, "the broker's loss seen", func() bool { return !g.Subscriber().Stats().Connected })
	startBroker(t, addr)
	eventually(t, 30*time.Second, "reconnected", func() bool {
		st := g.Subscriber().Stats()
		return st.Connected && st.Reconnects > 0
	})
	// Retained: the gateway gets it whether its subscriptions, which follow
	// the CONNACK, are in place yet or not.
	dev := device(t, addr)
	if err := dev.Publish("sensors/p9/temperature", []byte(`{"temperature": 99, "ts": "2026-01-05T10:00:00Z"}`), 1, true); err != nil {
		t.Fatal(err)
	}
	got := watch.waitFor(t, 1, 10*time.Second)
	if got[0].Key != "p9" {
		t.Fatalf("after restart: %+v", got[0])
	}
}

// TestRepeatedPayloadsFreshSession: a fresh broker session starts packet ids
// again; readings that repeat earlier payloads exactly are new messages,
// not redeliveries, and are all processed.
func TestRepeatedPayloadsFreshSession(t *testing.T) {
	r := "rules:\n  - {name: low, from: 'tanks/{t}/level', where: value < 50, key: t}\n"
	dir := t.TempDir()
	b1 := startBroker(t, "")
	g, stop := start(t, testConfig(t, dir, b1.Addr(), "", r))
	dev := device(t, b1.Addr())
	for i := 0; i < 3; i++ {
		publish(t, dev, "tanks/t1/level", "21.5")
	}
	waitEvents(t, g, 3)
	stop()
	dev.Close()
	b1.Close()
	b2 := startBroker(t, "")
	g2, _ := start(t, testConfig(t, dir, b2.Addr(), "", r))
	dev2 := device(t, b2.Addr())
	for i := 0; i < 3; i++ {
		publish(t, dev2, "tanks/t1/level", "21.5")
	}
	waitEvents(t, g2, 6)
	if st := g2.Status(); st.Redelivered != 0 {
		t.Fatalf("new messages taken for redeliveries: %+v", st)
	}
}

// TestStopDrains: the stop order (Run's comment), with the pipeline backed
// up. The store writer is held (its alert hook blocks), so the engine loop
// waits for room in the writer's queue and journaled batches wait for the
// engine loop. Then the gateway is stopped and the writer let go: the
// engine loop processes the batches queued, takes the final checkpoint,
// the writer stores the alerts and the checkpoint, and the forwarder
// delivers every alert before upstream is disconnected. A restart then has
// nothing to replay and an empty outbox.
func TestStopDrains(t *testing.T) {
	upb := startBroker(t, "")
	up := watchUpstream(t, upb.Addr())
	dir := t.TempDir()
	rulesYAML := hotRules[:strings.Index(hotRules, "  - name: minute_avg")]
	c := inProcessConfig(t, dir, upb.Addr(), rulesYAML)
	c.State.CommitGap = 0 // a commit, so a batch, per message
	held := make(chan struct{})
	g, stop := startWith(t, Options{Config: c, Logger: logger(t), OnAlert: func(event.Alert) { <-held }})
	dev := pahoDevice(t, g.Broker().Addr(), "dev-stop")
	// One message at a time, each after the PUBACK of the one before:
	// acked counts the journaled ones until the pipeline is full.
	acked := make(chan int)
	go func() {
		defer close(acked)
		for i := 0; ; i++ {
			tok := dev.Publish(fmt.Sprintf("sensors/d%03d/temperature", i), 1, false, fmt.Sprintf(`{"temperature": %d, "ts": "2026-01-05T10:00:00Z"}`, 81+i%10))
			if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
				return // refused at the stop, or the device's end
			}
			acked <- i + 1
		}
	}()
	// The writer holds the first alerts, its queue fills, the engine loop
	// waits, and at least three batches queue for it.
	for n := range acked {
		if n == 1+storeQueue+1+4 {
			break
		}
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	close(held)
	go func() {
		for range acked { // what the final drain journals
		}
	}()
	<-stopped

	g2, err := New(Options{Config: inProcessConfig(t, dir, upb.Addr(), rulesYAML), Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.db.Close()
	journaled := g2.DB().LastPos()
	if st := g2.Status(); st.Replayed != 0 || st.LastPos != journaled {
		t.Fatalf("restart: replayed %d messages, at %d of %d journaled: the final checkpoint must cover every message", st.Replayed, st.LastPos, journaled)
	}
	if l, err := g2.DB().OutboxLen(); err != nil || l != 0 {
		t.Fatalf("restart: %d alerts in the outbox (%v), want 0: the stop delivers them", l, err)
	}
	if got := up.barrier(t, upb.Addr()); uint64(len(got)) != journaled {
		t.Fatalf("%d alerts delivered upstream by the stop, want one for each of the %d messages journaled", len(got), journaled)
	}
}

// endedIngest is an ingest whose Run returns at once, as if it had failed
// without saying why.
type endedIngest struct{ Ingest }

func (endedIngest) Run(context.Context) error { return nil }

// TestIngestEndedStopsRun: an ingest that returns before the stop leaves
// a pipeline with nothing coming in: Run stops, cleanly, and says why,
// instead of running on without input.
func TestIngestEndedStopsRun(t *testing.T) {
	b := startBroker(t, "")
	g, err := New(Options{Config: testConfig(t, t.TempDir(), b.Addr(), "", hotRules), Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	g.sub = endedIngest{g.sub}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.Run(ctx); !errors.Is(err, errIngestEnded) {
		t.Fatalf("Run: %v, want %v", err, errIngestEnded)
	}
	if ctx.Err() != nil {
		t.Fatal("Run returned only when its context ended")
	}
}
