package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/vigil-gw/vigil/internal/freeport"
)

// TestBrokerAttacks runs the attacks of issue #19 on the embedded broker
// against a real `vigil run` (users file, in-process ingest, upstream to
// itself): each fails, is counted in /metrics, and memory stays bounded.
func TestBrokerAttacks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin := vigilBinary(t)
	dir := t.TempDir()
	brokerAddr, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var users bytes.Buffer
	for _, u := range []struct{ name, pass, rest string }{
		{"vigil", "up-pw", "admin"}, {"watch", "watch-pw", "admin"}, {"pump1", "pump1-pw", "device:sensors/pump1"},
	} {
		h, _ := bcrypt.GenerateFromPassword([]byte(u.pass), bcrypt.MinCost)
		fmt.Fprintf(&users, "%s:%s:%s\n", u.name, h, u.rest)
	}
	for name, content := range map[string]string{"broker.users": users.String(), "up.pass": "up-pw\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(`rules:
  - {name: hot, from: "sensors/{device}/temperature", where: temperature > 80, key: device}
`), 0o644)
	cfg := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`gateway: attacked
broker: {listen: %q, users_file: broker.users, connect_timeout: 1s, max_login_failures: 5}
upstream: {broker: "tcp://%s", username: vigil, password_file: up.pass}
state: {path: vigil.db}
rules: rules.yaml
http: {listen: %q}
`, brokerAddr, brokerAddr, httpAddr)), 0o644)
	cmd := startRun(t, bin, cfg)
	url := "tcp://" + brokerAddr
	watch := mqttClient(t, url, "watch", "watch", "watch-pw")
	alerts := make(chan string, 100)
	if tok := watch.Subscribe("vigil/#", 1, func(_ paho.Client, m paho.Message) { alerts <- string(m.Payload()) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	rss0 := vmRSS(t, cmd.Process.Pid)

	t.Run("huge CONNECT before login", func(t *testing.T) {
		chunk := bytes.Repeat([]byte{'x'}, 1<<20)
		var wg sync.WaitGroup
		for range 4 {
			c, err := net.Dial("tcp", brokerAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Write(append([]byte{0x10}, 0xff, 0xff, 0xff, 0x79)); err != nil { // 255 MB
					return
				}
				for range 40 {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
				t.Error("the broker took 40 MB of an oversized CONNECT")
			}()
		}
		wg.Wait()
		waitMetric(t, httpAddr, `vigil_broker_limit_hits_total{limit="packet_too_large"}`, 4)
	})

	t.Run("idle connections without CONNECT", func(t *testing.T) {
		const n = 2000
		conns := make([]net.Conn, 0, n)
		for range n {
			c, err := net.Dial("tcp", brokerAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns = append(conns, c)
		}
		for i, c := range conns {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil && isTimeout(err) {
				t.Fatalf("connection %d still open after 20 s", i)
			}
		}
		// 100 per address (the default; every client here is on
		// 127.0.0.1), of which vigil's upstream and watch hold two.
		waitMetric(t, httpAddr, `vigil_broker_limit_hits_total{limit="connect_timeout"}`, 98)
		waitMetric(t, httpAddr, `vigil_broker_limit_hits_total{limit="clients_per_address"}`, n-98)
	})

	t.Run("device outside its prefix, and #", func(t *testing.T) {
		dev := mqttClient(t, url, "pump1", "pump1", "pump1-pw")
		tok := dev.Subscribe("#", 1, func(paho.Client, paho.Message) {})
		if !tok.WaitTimeout(10*time.Second) || tok.(*paho.SubscribeToken).Result()["#"] != 0x80 {
			t.Fatalf("a device subscribed to #: %v", tok.(*paho.SubscribeToken).Result())
		}
		dev.Publish("sensors/pump2/temperature", 0, false, `{"temperature": 99}`).WaitTimeout(10 * time.Second)
		if tok := dev.Publish("sensors/pump1/temperature", 1, false, `{"temperature": 98}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		select {
		case a := <-alerts:
			if !strings.Contains(a, `"key":"pump1"`) {
				t.Fatalf("alert %s: a device posed as another one", a)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no alert for the device's own reading")
		}
		waitMetric(t, httpAddr, `vigil_broker_limit_hits_total{limit="publish_denied"}`, 1)
		waitMetric(t, httpAddr, `vigil_broker_limit_hits_total{limit="subscribe_denied"}`, 1)
	})

	t.Run("brute force", func(t *testing.T) {
		for i := range 30 {
			o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("bf-%d", i)).SetUsername("pump1").
				SetPassword(fmt.Sprintf("guess-%d", i)).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
			c := paho.NewClient(o)
			if tok := c.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
				c.Disconnect(10)
				t.Fatal("a wrong password logged in")
			}
		}
		waitMetric(t, httpAddr, `vigil_broker_limit_hits_total{limit="login_failed"}`, 5)
		waitMetric(t, httpAddr, `vigil_broker_limit_hits_total{limit="login_throttled"}`, 25)
	})

	t.Run("3,000 readings on 60 KB topics", func(t *testing.T) {
		size := func() (n int64) {
			filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() && strings.Contains(p, "vigil.db") { // the database, its WAL, the journal's files
					n += fi.Size()
				}
				return nil
			})
			return n
		}
		before := size()
		topic := "sensors/" + strings.Repeat("x", 60<<10) + "/temperature" // matches the rule's filter
		for i := range 3000 {
			tok := watch.Publish(topic, byte(i%2), false, `{"temperature": 99}`)
			if i%100 == 99 && (!tok.WaitTimeout(20*time.Second) || tok.Error() != nil) {
				t.Fatalf("publish %d: %v", i, tok.Error())
			}
		}
		waitMetric(t, httpAddr, `vigil_ingest_refused_total{reason="topic_too_long"}`, 3000)
		if grown := size() - before; grown > 1<<20 {
			t.Fatalf("the state grew by %d bytes", grown)
		}
	})

	select {
	case a := <-alerts:
		t.Fatalf("unexpected alert %s", a)
	default:
	}
	rss1 := vmRSS(t, cmd.Process.Pid)
	t.Logf("VmRSS %d MB before the attacks, %d MB after", rss0>>20, rss1>>20)
	if rss1-rss0 > 64<<20 {
		t.Fatalf("VmRSS grew by %d MB under the attacks", (rss1-rss0)>>20)
	}
}

// startRun starts `vigil run -c cfg`; the test kills it at its end and
// shows its log if it failed.
func startRun(t *testing.T, bin, cfg string) *exec.Cmd {
	t.Helper()
	var logs bytes.Buffer
	var mu sync.Mutex
	cmd := exec.Command(bin, "run", "-c", cfg)
	w := &lockedWriter{mu: &mu, w: &logs}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("vigil logs:\n%s", tail(logs.String(), 4096))
			mu.Unlock()
		}
	})
	return cmd
}

func mqttClient(t *testing.T, url, id, user, pass string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectRetry(true).SetConnectRetryInterval(50 * time.Millisecond))
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// vmRSS reads a process's resident memory from /proc.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// waitMetric waits until the /metrics sample reaches want; it fails if
// the sample passes it.
func waitMetric(t *testing.T, httpAddr, sample string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got float64
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(string(body), "\n") {
				if v, ok := strings.CutPrefix(l, sample+" "); ok {
					got, _ = strconv.ParseFloat(v, 64)
				}
			}
			if got == want {
				return
			}
			if got > want {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s = %v, want %v", sample, got, want)
}
