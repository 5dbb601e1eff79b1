//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/event"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// upstream collects the alerts that arrive on vigil/#, in arrival order.
type upstream struct {
	mu     sync.Mutex
	alerts []event.Alert
	bad    []string
}

func (u *upstream) add(topic string, payload []byte) {
	var a event.Alert
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := json.Unmarshal(payload, &a); err != nil || a.ID == "" {
		u.bad = append(u.bad, fmt.Sprintf("%s: %s", topic, payload))
		return
	}
	a.Topic = topic
	u.alerts = append(u.alerts, a)
}

func (u *upstream) list() []event.Alert {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.bad) > 0 {
		panic(fmt.Sprintf("upstream received payloads that are not alerts: %q", u.bad))
	}
	return append([]event.Alert(nil), u.alerts...)
}

// of returns the alerts of rule.
func (u *upstream) of(rule string) []event.Alert {
	var out []event.Alert
	for _, a := range u.list() {
		if a.Rule == rule {
			out = append(out, a)
		}
	}
	return out
}

// waitRule waits for n alerts of rule and returns them.
func (u *upstream) waitRule(t *testing.T, rule string, n int, within time.Duration) []event.Alert {
	t.Helper()
	eventually(t, within, fmt.Sprintf("%d alerts of %s upstream", n, rule), func() (bool, string) {
		l := u.of(rule)
		return len(l) >= n, fmt.Sprintf("%d: %+v", len(l), l)
	})
	return u.of(rule)
}

// watchUpstream subscribes to vigil/# with a persistent session (fixed
// client id, clean session off, QoS 1): with a Mosquitto that persists
// sessions, alerts published while this client reconnects wait for it.
func watchUpstream(t *testing.T, addr string) *upstream {
	t.Helper()
	u := &upstream{}
	handler := func(_ paho.Client, m paho.Message) { u.add(m.Topic(), m.Payload()) }
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID("e2e-watch-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())).
		SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(500 * time.Millisecond).
		SetDefaultPublishHandler(handler).
		SetOnConnectHandler(func(c paho.Client) { c.Subscribe("vigil/#", 1, handler) })
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("upstream watcher: connect %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	// The OnConnect subscription is asynchronous; make sure it is in place.
	if tok := c.Subscribe("vigil/#", 1, handler); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("upstream watcher: subscribe: %v", tok.Error())
	}
	return u
}

// device is a sensor publishing at QoS 1.
func device(t *testing.T, broker string, tc *tls.Config, user, pass string) *conn.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := conn.Dial(ctx, conn.Options{Broker: broker, TLS: tc, Username: user, Password: pass, Logger: quiet})
	if err != nil {
		t.Fatalf("device: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func publish(t *testing.T, c *conn.Client, topic, payload string) {
	t.Helper()
	if err := c.Publish(topic, []byte(payload), 1, false); err != nil {
		t.Fatal(err)
	}
}

// reading is a JSON temperature payload with its event time.
func reading(temp float64, ts time.Time) string {
	return fmt.Sprintf(`{"temperature": %g, "ts": %q}`, temp, ts.UTC().Format(time.RFC3339Nano))
}

const hotRule = `rules:
  - name: hot_motor
    from: sensors/{device}/temperature
    where: temperature > 80
    key: device
    severity: critical
    message: "{{device}} at {{temperature}}"
`

// writeFile writes a file for vigil, mode 0600: vigil refuses secret files
// (passwords, tokens) that group or others may read.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMosquitto runs vigil between two Mosquittos, one for the sensors and
// one upstream, and breaks each in turn.
func TestMosquitto(t *testing.T) {
	in := startMosquitto(t, mosquittoOptions{})
	up := startMosquitto(t, mosquittoOptions{Persist: true})
	alerts := watchUpstream(t, up.Addr())
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "rules", "hot.yaml"), hotRule)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	v := startVigil(t, dir, fmt.Sprintf(`gateway: e2e
mqtt: {broker: "tcp://%s", client_id: vigil-e2e}
upstream: {broker: "tcp://%s"}
state: {path: vigil.db, checkpoint_every: 1s}
rules: rules
http: {listen: "%s"}
`, in.Addr(), up.Addr(), httpAddr), httpAddr)
	eventually(t, 20*time.Second, "vigil connected to both brokers", func() (bool, string) {
		s := v.status()
		return s.BrokerConnected && s.UpstreamConnected, fmt.Sprintf("%+v", s)
	})

	t.Run("publish to upstream", func(t *testing.T) {
		dev := device(t, "tcp://"+in.Addr(), nil, "", "")
		ts := time.Now().UTC().Truncate(time.Millisecond)
		publish(t, dev, "sensors/pump-01/temperature", "not json")
		publish(t, dev, "sensors/pump-01/temperature", reading(85.5, ts))
		a := alerts.waitRule(t, "hot_motor", 1, 15*time.Second)[0]
		if a.Key != "pump-01" || a.State != event.Firing || a.Severity != "critical" || !a.Time.Equal(ts) ||
			a.Message != "pump-01 at 85.5" || a.Topic != "vigil/e2e/alerts/hot_motor" ||
			a.ID != event.AlertID("hot_motor", "pump-01", event.Firing, ts) {
			t.Fatalf("alert upstream: %+v", a)
		}
		var s struct {
			DecodeErrors int `json:"decode_errors_total"`
		}
		eventually(t, 5*time.Second, "the malformed payload counted", func() (bool, string) {
			v.get("/api/status", "", &s)
			return s.DecodeErrors == 1, fmt.Sprint(s.DecodeErrors)
		})
	})

	t.Run("sensor broker restart", func(t *testing.T) {
		connected := v.logs.count("mqtt connected")
		failed := v.logs.count("mqtt connect failed")
		in.stop(syscall.SIGKILL)
		eventually(t, 10*time.Second, "vigil sees the broker gone", func() (bool, string) {
			s := v.status()
			return !s.BrokerConnected, fmt.Sprintf("%+v", s)
		})
		v.waitLog("mqtt connect failed", failed+2, 30*time.Second) // a few failed attempts meanwhile
		in.start()
		// No persistence: the new Mosquitto knows no session, so vigil must
		// subscribe again by itself.
		v.waitLog("mqtt connected", connected+1, 30*time.Second)
		eventually(t, 10*time.Second, "vigil reconnected", func() (bool, string) {
			s := v.status()
			return s.BrokerConnected, fmt.Sprintf("%+v", s)
		})
		dev := device(t, "tcp://"+in.Addr(), nil, "", "")
		ts := time.Now().UTC().Truncate(time.Millisecond)
		publish(t, dev, "sensors/pump-02/temperature", reading(90, ts))
		got := alerts.waitRule(t, "hot_motor", 2, 15*time.Second)
		if a := got[len(got)-1]; a.Key != "pump-02" || !a.Time.Equal(ts) {
			t.Fatalf("alert after the restart: %+v", a)
		}
	})

	t.Run("upstream outage", func(t *testing.T) {
		before := len(alerts.of("hot_motor"))
		up.stop(syscall.SIGTERM) // SIGTERM: Mosquitto saves the watcher's session
		eventually(t, 10*time.Second, "vigil sees upstream gone", func() (bool, string) {
			s := v.status()
			return !s.UpstreamConnected, fmt.Sprintf("%+v", s)
		})
		dev := device(t, "tcp://"+in.Addr(), nil, "", "")
		base := time.Now().UTC().Truncate(time.Second)
		const n = 25
		for i := 0; i < n; i++ {
			publish(t, dev, fmt.Sprintf("sensors/out-%02d/temperature", i), reading(81+float64(i), base.Add(time.Duration(i)*time.Millisecond)))
		}
		eventually(t, 15*time.Second, "every alert waits in the outbox", func() (bool, string) {
			s := v.status()
			return s.OutboxDepth == n, fmt.Sprintf("%+v", s)
		})
		v.waitLog("mqtt connect failed", v.logs.count("mqtt connect failed")+2, 30*time.Second) // the forwarder keeps failing meanwhile
		up.start()
		eventually(t, 60*time.Second, "the outbox drained upstream", func() (bool, string) {
			s := v.status()
			return s.OutboxDepth == 0 && len(alerts.of("hot_motor")) >= before+n, fmt.Sprintf("%+v, %d upstream", s, len(alerts.of("hot_motor"))-before)
		})
		// One more alert behind them: once it is upstream, a duplicate of
		// any before it would have arrived (the outbox goes out in order).
		publish(t, dev, "sensors/out-zz/temperature", reading(99, base.Add(time.Second)))
		alerts.waitRule(t, "hot_motor", before+n+1, 30*time.Second)
		got := alerts.of("hot_motor")[before:]
		if len(got) != n+1 || got[n].Key != "out-zz" {
			t.Fatalf("got %d alerts after the outage, want exactly %d and the last one: %+v", len(got), n+1, got)
		}
		for i, a := range got[:n] {
			if want := fmt.Sprintf("out-%02d", i); a.Key != want {
				t.Fatalf("alert %d is for %s, want %s: not in order", i, a.Key, want)
			}
		}
	})
}

// TestReload changes rule files under a running vigil: a file watched in
// its directory, and a file reached through a symlink whose target's
// directory is not watched, so only SIGHUP reloads it.
func TestReload(t *testing.T) {
	in := startMosquitto(t, mosquittoOptions{})
	alerts := watchUpstream(t, in.Addr())
	dir := t.TempDir()
	watched := filepath.Join(dir, "rules.d", "motors.yaml")
	writeFile(t, watched, hotRule)
	hidden := filepath.Join(dir, "hidden", "humidity.yaml")
	writeFile(t, hidden, wetRules(false))
	link := filepath.Join(dir, "conf", "humidity.yaml")
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(hidden, link); err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	v := startVigil(t, dir, fmt.Sprintf(`gateway: e2e
mqtt: {broker: "tcp://%s", client_id: vigil-reload}
upstream: {broker: "tcp://%s"}
state: {path: vigil.db}
rules: [rules.d, conf/humidity.yaml]
http: {listen: "%s"}
`, in.Addr(), in.Addr(), httpAddr), httpAddr)
	eventually(t, 20*time.Second, "vigil connected", func() (bool, string) {
		s := v.status()
		return s.BrokerConnected && s.UpstreamConnected, fmt.Sprintf("%+v", s)
	})
	dev := device(t, "tcp://"+in.Addr(), nil, "", "")
	rulesAre := func(t *testing.T, want string) {
		t.Helper()
		eventually(t, 10*time.Second, "rules "+want, func() (bool, string) {
			got := v.ruleNames()
			sort.Strings(got)
			return strings.Join(got, " ") == want, strings.Join(got, " ")
		})
	}
	reloadFailed := func(t *testing.T, file string) {
		t.Helper()
		eventually(t, 10*time.Second, "the reload rejected with file:line:col", func() (bool, string) {
			s := v.status()
			return len(s.ReloadErrors) > 0 && strings.Contains(s.ReloadErrors[0], file+":"), fmt.Sprintf("%q", s.ReloadErrors)
		})
	}
	reloadOK := func(t *testing.T) {
		t.Helper()
		eventually(t, 10*time.Second, "no reload errors", func() (bool, string) {
			s := v.status()
			return len(s.ReloadErrors) == 0, fmt.Sprintf("%q", s.ReloadErrors)
		})
	}
	rulesAre(t, "hot_motor wet")
	fire := func(t *testing.T, topic, payload, rule string) {
		t.Helper()
		n := len(alerts.of(rule))
		publish(t, dev, topic, payload)
		alerts.waitRule(t, rule, n+1, 10*time.Second)
	}

	t.Run("file change", func(t *testing.T) {
		writeFile(t, watched, hotRule+`  - name: cold_motor
    from: sensors/{device}/temperature
    where: temperature < 0
    key: device
`)
		rulesAre(t, "cold_motor hot_motor wet")
		reloadOK(t)
		fire(t, "sensors/m1/temperature", reading(-5, time.Now()), "cold_motor")
	})
	t.Run("bad file change", func(t *testing.T) {
		writeFile(t, watched, hotRule+"    treshold: 3\n")
		reloadFailed(t, "motors.yaml")
		v.waitLog("reload rejected, old rules keep running", 1, 5*time.Second)
		rulesAre(t, "cold_motor hot_motor wet")
		fire(t, "sensors/m1/temperature", reading(-6, time.Now()), "cold_motor")
		fire(t, "sensors/m1/temperature", reading(95, time.Now()), "hot_motor")
		writeFile(t, watched, hotRule)
		rulesAre(t, "hot_motor wet")
		reloadOK(t)
	})
	t.Run("SIGHUP", func(t *testing.T) {
		writeFile(t, hidden, wetRules(true))
		time.Sleep(1500 * time.Millisecond) // what a file watcher would take
		if got := strings.Join(v.ruleNames(), " "); got != "wet hot_motor" && got != "hot_motor wet" {
			t.Fatalf("rules changed without SIGHUP (the test needs an unwatched file): %s", got)
		}
		v.cmd.Process.Signal(syscall.SIGHUP)
		rulesAre(t, "hot_motor very_wet wet")
		v.waitLog("SIGHUP: reloading rules", 1, 5*time.Second)
		fire(t, "sensors/h1/humidity", `{"humidity": 99}`, "very_wet")
	})
	t.Run("bad SIGHUP", func(t *testing.T) {
		writeFile(t, hidden, "rules:\n  - name: Bad-Name\n    from: sensors/#\n")
		v.cmd.Process.Signal(syscall.SIGHUP)
		reloadFailed(t, "humidity.yaml")
		rulesAre(t, "hot_motor very_wet wet")
		fire(t, "sensors/h1/humidity", `{"humidity": 98}`, "very_wet")
	})
}

func wetRules(more bool) string {
	s := `rules:
  - name: wet
    from: sensors/{device}/humidity
    where: humidity > 90
    key: device
`
	if more {
		s += `  - name: very_wet
    from: sensors/{device}/humidity
    where: humidity > 95
    key: device
`
	}
	return s
}
