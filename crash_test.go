package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-gw/vigil/broker"
	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/engine"
	"github.com/vigil-gw/vigil/event"
	sim "github.com/vigil-gw/vigil/firmware-sim"
	"github.com/vigil-gw/vigil/internal/freeport"
	"github.com/vigil-gw/vigil/replay"
)

// buildVigil compiles the real binary once per test run.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func vigilBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "vigil")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// upstreamLog records every alert delivery in arrival order.
type upstreamLog struct {
	mu   sync.Mutex
	ids  []string
	raw  map[string]string
	last time.Time
}

func (u *upstreamLog) add(_ string, payload []byte) {
	var a event.Alert
	if json.Unmarshal(payload, &a) != nil || a.ID == "" {
		panic(fmt.Sprintf("not an alert: %s", payload))
	}
	if a.Key == "zzclock" {
		return
	}
	u.mu.Lock()
	u.ids = append(u.ids, a.ID)
	if u.raw == nil {
		u.raw = map[string]string{}
	}
	u.raw[a.ID] = string(payload)
	u.last = time.Now()
	u.mu.Unlock()
}

func (u *upstreamLog) snapshot() ([]string, time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.ids...), u.last
}

// TestCrashRecovery runs the real `vigil run` against a real broker, feeds
// it a simulated fleet (with faults) at QoS 1, kill -9s it at random moments
// several times, restarts it, and compares what arrived upstream with
// `vigil replay` of the same messages: the same set of alert ids, and any
// duplicate delivery carries an id already delivered.
func TestCrashRecovery(t *testing.T) { crashRecovery(t, false) }

// TestCrashRecoveryInProcess is TestCrashRecovery with vigil's own embedded
// broker and in-process ingest: the fleet publishes to the broker inside
// the process that is killed. It keeps a persistent session and up to 64
// messages in flight, and sends again after each restart what vigil had not
// acknowledged; vigil acknowledges only what it has journaled.
func TestCrashRecoveryInProcess(t *testing.T) { crashRecovery(t, true) }

func crashRecovery(t *testing.T, inProcess bool) {
	if testing.Short() {
		t.Skip("crash test builds and kills the real binary")
	}
	bin := vigilBinary(t)
	dir := t.TempDir()

	// The scenario, recorded in replay's format.
	fleet, err := sim.New(sim.Config{Seed: 42, Devices: 12, Rate: time.Second, FaultEvery: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var rec bytes.Buffer
	if err := fleet.Record(&rec, sim.DefaultStart.Add(300*time.Second)); err != nil {
		t.Fatal(err)
	}
	// A last reading an hour later moves every rule's watermark past all
	// windows and deadlines, in replay and in run alike, so the comparison
	// does not wait for the gateway clock to pass the lateness. Its own
	// key's alerts (its silence at the end) are left out of the comparison.
	// Watermarks are per rule, so it goes to every kind's topic.
	clock := sim.DefaultStart.Add(time.Hour).Format(time.RFC3339)
	for _, kind := range sim.Kinds() {
		fmt.Fprintf(&rec, "{\"topic\": \"sensors/zzclock/%s\", \"payload\": {\"x\": 1, \"ts\": %q}}\n", kind, clock)
	}
	recPath := filepath.Join(dir, "input.jsonl")
	if err := os.WriteFile(recPath, rec.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var msgs []engine.Message
	sc := bufio.NewScanner(bytes.NewReader(rec.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		r, err := replay.Parse(sc.Bytes())
		if err != nil {
			t.Fatalf("recorded line: %v", err)
		}
		msgs = append(msgs, engine.Message{Topic: r.Topic, Payload: r.Payload, Received: r.Received})
	}

	// The embedded broker (mochi) resends in-flight messages after a
	// reconnect ordered only by the second they were created in, so
	// messages of the same second may come back out of order. The source's
	// lateness absorbs that: at the test's publish rate (12 devices, about
	// 400 messages a wall second) two wall seconds hold about 70 s of event
	// time. Mosquitto, in make e2e, keeps order: no lateness there. For the
	// same reason the rules here use no cooldown, which is order-dependent
	// for stateless rules; cooldown state across restarts is covered by the
	// engine's snapshot tests.
	base, err := os.ReadFile("testdata/crash/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(dir, "rules.yaml")
	lateness := "120s"
	if os.Getenv("VIGIL_E2E_BROKER") != "" {
		lateness = "0s"
	}
	os.WriteFile(rulesPath, append(base, fmt.Sprintf("sources:\n  - {from: \"sensors/#\", lateness: %s}\n", lateness)...), 0o644)

	// What an uninterrupted run gives.
	want := map[string]bool{}
	out, err := exec.Command(bin, "replay", "-q", "--rules", rulesPath, recPath).Output()
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var a event.Alert
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("replay output: %v", err)
		}
		if a.Key != "zzclock" {
			want[a.ID] = true
		}
	}
	if len(want) < 50 {
		t.Fatalf("scenario too thin: replay gives %d alerts", len(want))
	}

	addr := os.Getenv("VIGIL_E2E_BROKER") // make e2e: a Mosquitto
	if addr == "" {
		b := startTestBroker(t)
		addr = b.Addr()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	up := &upstreamLog{}
	watch, err := conn.Dial(ctx, conn.Options{Broker: "tcp://" + addr, ClientID: "crash-watch", Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	if err := watch.Subscribe("vigil/#", 1, up.add); err != nil {
		t.Fatal(err)
	}

	cfgPath := filepath.Join(dir, "vigil.yaml")
	abs := rulesPath
	devAddr := addr // where the fleet publishes
	ingest := fmt.Sprintf(`mqtt: {broker: "tcp://%s", client_id: vigil-crash}`, addr)
	if inProcess {
		if devAddr, err = freeport.Addr("127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		ingest = fmt.Sprintf(`broker: {listen: %q}`, devAddr)
	}
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`gateway: crash
%s
upstream: {broker: "tcp://%s"}
state: {path: %s, checkpoint_every: 30ms, checkpoint_messages: 1}
rules: %s
http: {listen: "off"}
limits: {grace: 5s}
log: {level: debug}
`, ingest, addr, filepath.Join(dir, "vigil.db"), abs)), 0o644)

	var logs bytes.Buffer
	var logMu sync.Mutex
	startVigil := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "-c", cfgPath)
		w := &lockedWriter{mu: &logMu, w: &logs}
		cmd.Stderr, cmd.Stdout = w, w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cmd := startVigil()
	defer func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("vigil logs (last 4 KB):\n%s", tail(logs.String(), 4096))
			logMu.Unlock()
		}
	}()

	// The first start creates vigil's persistent session; messages published
	// before it subscribed would never reach it.
	waitLog := func(substr string) {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			logMu.Lock()
			ok := strings.Contains(logs.String(), substr)
			logMu.Unlock()
			if ok {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("vigil did not log %q within 20 s", substr)
	}
	waitLogCount := func(substr string, n int) {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			logMu.Lock()
			c := strings.Count(logs.String(), substr)
			logMu.Unlock()
			if c >= n {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("vigil did not log %q %d times within 20 s", substr, n)
	}
	ready := "mqtt connected"
	if inProcess {
		ready = "embedded broker listening"
	}
	waitLog(ready)
	time.Sleep(time.Second)

	var publish func(topic string, payload []byte) error
	var flush func()
	if inProcess {
		dev := newSessionFleet(t, devAddr)
		defer dev.close()
		publish, flush = dev.publish, dev.flush
	} else {
		dev, err := conn.Dial(ctx, conn.Options{Broker: "tcp://" + addr, ClientID: "crash-fleet", Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		publish = func(topic string, payload []byte) error { return dev.Publish(topic, payload, 1, false) }
		flush = func() {}
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	kills := map[int]bool{}
	nkills := 4
	if v := os.Getenv("VIGIL_CRASH_KILLS"); v != "" {
		fmt.Sscan(v, &nkills)
	}
	for len(kills) < nkills {
		kills[300+rng.IntN(len(msgs)-600)] = true
	}
	killed := 0
	for i, m := range msgs {
		if err := publish(m.Topic, m.Payload); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if i%4 == 0 {
			time.Sleep(10 * time.Millisecond) // about 400 messages a second
		}
		if kills[i] {
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			killed++
			if d := os.Getenv("VIGIL_CRASH_PAUSE"); d != "" {
				pd, _ := time.ParseDuration(d)
				time.Sleep(pd)
			}
			cmd = startVigil()
			if inProcess {
				// The fleet reconnects on its own when the broker is back,
				// and sends again what was not acknowledged.
				waitLogCount(ready, killed+1)
			} else if os.Getenv("VIGIL_E2E_BROKER") == "" {
				// mochi can lose QoS 1 messages that are published while it
				// hands a persistent session to a reconnecting client (a race
				// in its session takeover; see docs/operations.md). With the
				// embedded broker the fleet therefore waits for vigil to be
				// back; the kill itself still lands at a random moment of
				// vigil's work. Against Mosquitto (make e2e) it never waits.
				waitLogCount("mqtt connected", killed+1)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	flush()
	// Let it drain, close its last windows on the gateway clock, and send.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ids, last := up.snapshot()
		got := map[string]bool{}
		for _, id := range ids {
			got[id] = true
		}
		if len(got) >= len(want) && time.Since(last) > 3*time.Second {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("vigil after SIGTERM: %v", err)
	}
	cmd.Process = nil

	ids, _ := up.snapshot()
	got := map[string]int{}
	for _, id := range ids {
		got[id]++
	}
	var missing, extra []string
	for id := range want {
		if got[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id := range got {
		if !want[id] {
			extra = append(extra, id)
		}
	}
	dups := len(ids) - len(got)
	logMu.Lock()
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "msg=stopped") || strings.Contains(l, "state recovered") || strings.Contains(l, "dropped") || strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			t.Log(l)
		}
	}
	logMu.Unlock()
	t.Logf("%d messages, %d kills, %d alerts expected, %d deliveries (%d duplicate deliveries of ids already sent)", len(msgs), killed, len(want), len(ids), dups)
	if len(missing) > 0 || len(extra) > 0 {
		sort.Strings(missing)
		sort.Strings(extra)
		t.Errorf("upstream differs from replay: %d missing %v, %d extra %v", len(missing), head(missing), len(extra), head(extra))
		explain(t, out, missing, "missing")
		n := 0
		for _, id := range extra {
			if n++; n <= 5 {
				t.Logf("extra: %s", up.raw[id])
			}
		}
	}
}

// sessionFleet publishes at QoS 1 over a persistent session with up to 64
// messages awaiting their PUBACK; after a lost connection paho reconnects
// and sends the unacknowledged ones again (DUP), as a device's MQTT stack
// does.
type sessionFleet struct {
	t    *testing.T
	c    paho.Client
	toks []paho.Token
}

func newSessionFleet(t *testing.T, addr string) *sessionFleet {
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("crash-fleet").
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("fleet connect: %v", tok.Error())
	}
	return &sessionFleet{t: t, c: c}
}

func (f *sessionFleet) publish(topic string, payload []byte) error {
	f.toks = append(f.toks, f.c.Publish(topic, 1, false, payload))
	if len(f.toks) < 64 {
		return nil
	}
	tok := f.toks[0]
	f.toks = f.toks[1:]
	return f.settle(tok)
}

func (f *sessionFleet) settle(tok paho.Token) error {
	if !tok.WaitTimeout(60 * time.Second) {
		return errors.New("no PUBACK within 60 s")
	}
	if err := tok.Error(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	// A publish written as vigil was killed fails with the closed
	// connection, but paho keeps it in the session's store and sends it
	// again on resume: whether it then arrives once is what the test
	// checks, on the alerts.
	return nil
}

func (f *sessionFleet) flush() {
	for _, tok := range f.toks {
		if err := f.settle(tok); err != nil {
			f.t.Errorf("fleet: %v", err)
		}
	}
	f.toks = nil
}

func (f *sessionFleet) close() { f.c.Disconnect(100) }

func explain(t *testing.T, replayOut []byte, ids []string, what string) {
	n := 0
	for _, line := range strings.Split(string(replayOut), "\n") {
		for _, id := range ids {
			if strings.Contains(line, id) && n < 5 {
				t.Logf("%s: %s", what, line)
				n++
			}
		}
	}
}

func head(s []string) []string {
	if len(s) > 5 {
		return s[:5]
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// startTestBroker runs an embedded broker on a free loopback port until the
// test ends (Close may also be called before).
func startTestBroker(t *testing.T) *broker.Broker {
	t.Helper()
	b, err := broker.New(broker.Options{Listen: "127.0.0.1:0", Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
