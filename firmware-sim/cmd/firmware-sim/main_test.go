package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/goleak"

	sim "github.com/vigil-gw/vigil/firmware-sim"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startBroker runs an embedded broker on a free loopback port.
func startBroker(t testing.TB) string {
	t.Helper()
	srv, addr := startBrokerAt(t, "127.0.0.1:0")
	t.Cleanup(func() { srv.Close() })
	return addr
}

// startBrokerAt runs an embedded broker on addr; the caller closes it.
func startBrokerAt(t testing.TB, addr string) (*mochi.Server, string) {
	t.Helper()
	srv := mochi.New(&mochi.Options{
		InlineClient: true,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := srv.AddHook(new(allowHook), nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "t", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	return srv, "tcp://" + tcp.Address()
}

// TestQoS1AcrossBrokerRestart: the broker goes away in the middle of a QoS 1
// run and comes back on the same address. The simulator reconnects, its
// messages in flight are sent again, and it finishes on time: none waits
// forever for a PUBACK that can no longer come.
func TestQoS1AcrossBrokerRestart(t *testing.T) {
	srv, broker := startBrokerAt(t, "127.0.0.1:0")
	addr := strings.TrimPrefix(broker, "tcp://")
	var stderr lockedBuf
	done := make(chan error, 1)
	// Counted in-process: a network subscriber would outlive the broker.
	var got atomic.Int64
	if err := srv.Subscribe("sensors/#", 1, func(*mochi.Client, packets.Subscription, packets.Packet) { got.Add(1) }); err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- run(context.Background(), []string{"-broker", broker, "-client-id", "restart", "-qos", "1", "-devices", "20",
			"-rate", "10ms", "-fault-every", "0", "-speed", "1", "-duration", "3s", "-progress", "0"}, io.Discard, &stderr)
	}()
	// The broker goes away once the run is well under way, and comes back
	// once the simulator has seen it go.
	waitFor(t, "100 messages through the broker", func() bool { return got.Load() >= 100 })
	srv.Close()
	waitFor(t, "the simulator sees the connection lost", func() bool { return strings.Contains(stderr.String(), "connection lost") })
	srv2, _ := startBrokerAt(t, addr)
	defer srv2.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the simulator did not finish within 30 s of a 3 s run\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "connection lost") || !strings.Contains(stderr.String(), "published ") {
		t.Fatalf("no reconnect or no summary:\n%s", stderr.String())
	}
}

// allowHook lets every client in. mochi's own auth.AllowHook would do, but
// its package drags in gopkg.in/yaml.v3, which the module does not require.
type allowHook struct{ mochi.HookBase }

func (h *allowHook) ID() string { return "allow" }
func (h *allowHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

// OnConnectAuthenticate refuses the user "intruder", to test refusals.
func (h *allowHook) OnConnectAuthenticate(_ *mochi.Client, pk packets.Packet) bool {
	return string(pk.Connect.Username) != "intruder"
}
func (h *allowHook) OnACLCheck(*mochi.Client, string, bool) bool { return true }

// subscribe counts the messages arriving on sensors/#.
func subscribe(t *testing.T, broker string) *counter {
	t.Helper()
	c := &counter{marker: make(chan struct{}, 1)}
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("counter").
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			if m.Topic() == markerTopic {
				c.marker <- struct{}{}
				return
			}
			c.n.Add(1)
		}))
	if tok := cl.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(100) })
	if tok := cl.Subscribe("sensors/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return c
}

// counter counts the messages a subscriber receives, apart from markers.
type counter struct {
	n      atomic.Int64
	marker chan struct{}
}

const markerTopic = "sensors/zz-marker"

// flush waits until every message the clients whose IDs start with prefix
// sent has reached c: their connections are closed on the broker (so it
// has handled all they sent), then a marker published after them reaches
// c behind them. A signal in place of waiting "long enough".
func (c *counter) flush(t *testing.T, srv *mochi.Server, prefix string) {
	t.Helper()
	waitFor(t, "the simulator's connections closed on the broker", func() bool {
		for id, cl := range srv.Clients.GetAll() {
			if strings.HasPrefix(id, prefix) && !cl.Closed() {
				return false
			}
		}
		return true
	})
	if err := srv.Publish(markerTopic, []byte("end"), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.marker:
	case <-time.After(20 * time.Second):
		t.Fatal("the marker never reached the subscriber")
	}
}

// waitFor polls cond until it holds, failing after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lockedBuf is a bytes.Buffer safe to read while the simulator writes it.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// want is the number of messages the flags should produce, from the same
// simulation run in-process.
func want(t *testing.T, args []string) int {
	t.Helper()
	o, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(o.cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for s.Next().Send.Before(o.cfg.Until) {
		n++
	}
	return n
}

func TestPublish(t *testing.T) {
	srv, broker := startBrokerAt(t, "127.0.0.1:0")
	t.Cleanup(func() { srv.Close() })
	tests := []struct {
		name string
		args []string
	}{
		{"qos0 clean", []string{"-qos", "0", "-devices", "10", "-rate", "10ms", "-fault-every", "0"}},
		{"qos0 four connections", []string{"-qos", "0", "-connections", "4", "-devices", "20", "-rate", "10ms", "-fault-every", "0"}},
		{"qos1 faults mixed", []string{"-qos", "1", "-devices", "7", "-rate", "10ms", "-format", "mixed",
			"-fault-every", "100ms", "-faults", "duplicate,burst,silence,malformed,late,out_of_order"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := subscribe(t, broker)
			truth := filepath.Join(t.TempDir(), "truth.jsonl")
			args := append([]string{"-broker", broker, "-client-id", "sim-" + strings.ReplaceAll(tt.name, " ", "-"), "-speed", "0",
				"-start", "2026-01-05T10:00:00Z", "-duration", "3s", "-seed", "4", "-truth", truth}, tt.args...)
			n := want(t, args)
			var stderr bytes.Buffer
			if err := run(context.Background(), args, io.Discard, &stderr); err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			got.flush(t, srv, "sim-")
			if g := got.n.Load(); g != int64(n) {
				t.Errorf("subscriber got %d messages, want %d\n%s", g, n, stderr.String())
			}
			if !strings.Contains(stderr.String(), "published ") || !strings.Contains(stderr.String(), " 0 dropped") {
				t.Errorf("summary missing or drops reported:\n%s", stderr.String())
			}
			faults := readTruth(t, truth)
			if strings.Contains(tt.name, "faults") != (len(faults) > 0) {
				t.Errorf("%d faults in the truth file", len(faults))
			}
		})
	}
}

func readTruth(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("truth line %q: %v", sc.Text(), err)
		}
		for _, k := range []string{"device", "kind", "fault", "start", "end", "magnitude"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("truth line %q lacks %q", sc.Text(), k)
			}
		}
		out = append(out, m)
	}
	return out
}

func TestRecordFlag(t *testing.T) {
	dir := t.TempDir()
	out, truth := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "truth.jsonl")
	args := []string{"-record", out, "-truth", truth, "-start", "2026-01-05T10:00:00Z", "-until", "2026-01-05T10:10:00Z", "-fault-every", "30s"}
	var stderr bytes.Buffer
	if err := run(context.Background(), args, io.Discard, &stderr); err != nil {
		t.Fatalf("run: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Count(b, []byte("\n"))
	if n := want(t, args); lines != n {
		t.Errorf("%d lines, want %d", lines, n)
	}
	if len(readTruth(t, truth)) < 10 {
		t.Errorf("fewer than 10 faults in 10 minutes at one per 30 s")
	}
	if !strings.Contains(stderr.String(), "recorded ") {
		t.Errorf("no summary: %q", stderr.String())
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-format", "xml"}, `unknown format "xml"`},
		{[]string{"-record", "x.jsonl"}, "-record needs -duration or -until"},
		{[]string{"-qos", "2"}, "-qos 2"},
		{[]string{"-until", "2026-01-05T10:00:00Z", "-duration", "1s"}, "exclude each other"},
		{[]string{"-start", "yesterday"}, "-start"},
		{[]string{"-kinds", "temperature,pressure"}, `unknown kind "pressure"`},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			err := run(context.Background(), tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run %v: %v, want %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestRefused: a broker that refuses the credentials is an error, not
// something to retry forever; the password comes from -password-file.
func TestRefused(t *testing.T) {
	broker := startBroker(t)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := run(ctx, []string{"-broker", broker, "-username", "intruder", "-password-file", pw, "-duration", "1s", "-speed", "0"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("run: %v, want a connect error", err)
	}
	err = run(ctx, []string{"-broker", broker, "-password-file", filepath.Join(t.TempDir(), "none")}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "password file") {
		t.Errorf("run: %v, want a password file error", err)
	}
}

// TestInterrupt: with no broker listening, the program waits for one and
// stops cleanly when interrupted.
func TestInterrupt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var stderr bytes.Buffer
	if err := run(ctx, []string{"-broker", "tcp://127.0.0.1:1"}, io.Discard, &stderr); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// BenchmarkLoad measures the load generator against an embedded broker:
// 1000 devices at one reading per millisecond each, published as fast as
// the client goes.
func BenchmarkLoad(b *testing.B) {
	broker := startBroker(b)
	for _, bc := range []struct{ qos, conns string }{{"0", "1"}, {"0", "4"}, {"1", "1"}, {"1", "4"}} {
		b.Run("qos"+bc.qos+"/connections"+bc.conns, func(b *testing.B) {
			total := 0
			for i := 0; b.Loop(); i++ {
				args := []string{"-broker", broker, "-client-id", "load", "-qos", bc.qos, "-connections", bc.conns, "-speed", "0",
					"-devices", "1000", "-rate", "1ms", "-fault-every", "0", "-duration", "100ms", "-progress", "0"}
				if err := run(context.Background(), args, io.Discard, io.Discard); err != nil {
					b.Fatal(err)
				}
				total += 100_000
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
