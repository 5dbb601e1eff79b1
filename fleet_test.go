package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/fleet"
	"github.com/vigil-gw/vigil/internal/freeport"
)

// fleetWatch is a site operator's client on the fleet broker: the latest
// payload of every topic under vigil/, and every alert delivered.
type fleetWatch struct {
	mu     sync.Mutex
	latest map[string][]byte
	alerts map[string][]event.Alert // by gateway
}

func (w *fleetWatch) take(topic string, payload []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.latest[topic] = append([]byte{}, payload...)
	if gw, rest, ok := fleet.GatewayOf("vigil", topic); ok && strings.HasPrefix(rest, "alerts/") {
		var a event.Alert
		if json.Unmarshal(payload, &a) == nil {
			w.alerts[gw] = append(w.alerts[gw], a)
		}
	}
}

func (w *fleetWatch) get(topic string, v any) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.latest[topic]
	return ok && len(p) > 0 && json.Unmarshal(p, v) == nil
}

// raw is the latest payload of topic, for a failure's message.
func (w *fleetWatch) raw(topic string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.latest[topic])
}

func (w *fleetWatch) count(gw, rule string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, a := range w.alerts[gw] {
		if a.Rule == rule {
			n++
		}
	}
	return n
}

// waitFor polls cond; within only bounds a failure.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", within, what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fleetGateway is one `vigil run` of the test fleet: devices publish to
// its own embedded broker, and its upstream is the fleet broker.
type fleetGateway struct {
	name, cfg, devAddr, httpAddr string
	cmd                          *exec.Cmd
	logs                         *syncBuf
}

// TestFleet runs two real `vigil run` processes against a real broker (the
// embedded one over TCP; Mosquitto with VIGIL_E2E_BROKER, make e2e) and
// walks the scenario: both online; a pushed bundle applied on
// both and its rule firing; a bundle signed by another key, a tampered
// one, an older one and a broken one each rejected (status published)
// while the old rules keep firing; kill -9 turns a gateway offline through
// its will; a restart with the broker down runs the last good bundle.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet test builds and runs the real binary")
	}
	bin := vigilBinary(t)
	dir := t.TempDir()
	addr := os.Getenv("VIGIL_E2E_BROKER")
	stopBroker := func() {
		// make e2e: the Mosquitto's pid is given to stop it.
		pid, err := strconv.Atoi(os.Getenv("VIGIL_E2E_BROKER_PID"))
		if err != nil {
			t.Fatal("VIGIL_E2E_BROKER without VIGIL_E2E_BROKER_PID")
		}
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if addr == "" {
		b := startTestBroker(t)
		addr = b.Addr()
		stopBroker = func() { b.Close() }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Keys: the fleet's, and an impostor's.
	if out, err := exec.Command(bin, "keygen", filepath.Join(dir, "ops")).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	_, rogueKey, err := fleet.GenerateKey(filepath.Join(dir, "rogue"))
	if err != nil {
		t.Fatal(err)
	}
	opsPriv, err := fleet.ReadPrivateKey(filepath.Join(dir, "ops.key"))
	if err != nil {
		t.Fatal(err)
	}
	roguePriv, _ := fleet.ReadPrivateKey(rogueKey)

	watch := &fleetWatch{latest: map[string][]byte{}, alerts: map[string][]event.Alert{}}
	wc, err := conn.Dial(ctx, conn.Options{Broker: "tcp://" + addr, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	if err := wc.Subscribe("vigil/#", 1, watch.take); err != nil {
		t.Fatal(err)
	}

	os.WriteFile(filepath.Join(dir, "local.yaml"), []byte("rules:\n  - name: local_hot\n    from: sensors/{device}/t\n    where: t > 100\n"), 0o644)
	start := func(g *fleetGateway) {
		cmd := exec.Command(bin, "run", "-c", g.cfg)
		cmd.Stdout, cmd.Stderr = g.logs, g.logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		g.cmd = cmd
	}
	var gws []*fleetGateway
	for _, name := range []string{"gw-a", "gw-b"} {
		g := &fleetGateway{name: name, logs: &syncBuf{}}
		if g.devAddr, err = freeport.Addr("127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		if g.httpAddr, err = freeport.Addr("127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		g.cfg = filepath.Join(dir, name+".yaml")
		os.WriteFile(g.cfg, []byte(fmt.Sprintf(`gateway: %s
broker: {listen: %q}
upstream: {broker: "tcp://%s"}
state: {path: %s}
rules: %s
http: {listen: %q}
fleet: {public_keys: [%s], health_every: 1s}
log: {level: debug}
`, name, g.devAddr, addr, filepath.Join(dir, name, "vigil.db"), filepath.Join(dir, "local.yaml"), g.httpAddr, filepath.Join(dir, "ops.pub"))), 0o644)
		os.MkdirAll(filepath.Join(dir, name), 0o755)
		start(g)
		gws = append(gws, g)
	}
	defer func() {
		for _, g := range gws {
			if g.cmd.Process != nil {
				g.cmd.Process.Kill()
				g.cmd.Wait()
			}
			if t.Failed() {
				t.Logf("%s logs (last 4 KB):\n%s", g.name, tail(g.logs.String(), 4096))
			}
		}
	}()

	// Both report online, with their health.
	for _, g := range gws {
		waitFor(t, 20*time.Second, g.name+" online", func() (bool, string) {
			var s fleet.Status
			var h fleet.Health
			ok := watch.get("vigil/"+g.name+"/status", &s) && watch.get("vigil/"+g.name+"/health", &h)
			return ok && s.State == fleet.Online && s.Gateway == g.name && h.Gateway == g.name, fmt.Sprintf("%+v %+v", s, h)
		})
	}

	// Devices: one client per gateway's own broker.
	devs := map[string]*conn.Client{}
	for _, g := range gws {
		c, err := conn.Dial(ctx, conn.Options{Broker: "tcp://" + g.devAddr, Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		devs[g.name] = c
	}
	ts := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	// fires sends a reading of 60 °C (above the pushed rule's 50, below
	// the local rule's 100) to every gateway and waits for each one's
	// alert of rule upstream.
	fires := func(what, rule string) {
		t.Helper()
		ts = ts.Add(time.Second)
		for _, g := range gws {
			n := watch.count(g.name, rule)
			if err := devs[g.name].Publish("sensors/pump1/t", []byte(fmt.Sprintf(`{"t": 60, "ts": %q}`, ts.Format(time.RFC3339))), 1, false); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 20*time.Second, what+": "+g.name+" alert of "+rule, func() (bool, string) {
				c := watch.count(g.name, rule)
				return c > n, strconv.Itoa(c)
			})
		}
	}
	rulesState := func(what, state, version, errPart string) {
		t.Helper()
		for _, g := range gws {
			waitFor(t, 20*time.Second, what+": "+g.name+" rules status", func() (bool, string) {
				var rs fleet.RulesStatus
				ok := watch.get("vigil/"+g.name+"/rules/status", &rs)
				return ok && rs.State == state && rs.Version == version && strings.Contains(strings.Join(rs.Errors, "\n"), errPart), fmt.Sprintf("%+v", rs)
			})
		}
	}

	// Push v1 with the real command; applied on both, its rule fires.
	bundleDir := filepath.Join(dir, "bundle")
	os.MkdirAll(bundleDir, 0o755)
	os.WriteFile(filepath.Join(bundleDir, "fleet.yaml"), []byte("rules:\n  - name: fleet_hot\n    from: sensors/{device}/t\n    where: t > 50\n    key: device\n"), 0o644)
	if out, err := exec.Command(bin, "push", "--broker", "tcp://"+addr, "--key", filepath.Join(dir, "ops.key"), "--all", "--version", "v1", bundleDir).CombinedOutput(); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	rulesState("v1", fleet.Applied, "v1", "")
	fires("v1", "fleet_hot")
	for _, g := range gws {
		var s fleet.Status
		if !watch.get("vigil/"+g.name+"/status", &s) || s.Rules.Version != "v1" || s.Rules.SHA256 == "" {
			t.Fatalf("%s status after v1: %+v", g.name, s)
		}
	}

	// A broken bundle is refused by push itself: nothing is published.
	os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("rules:\n  - name: broken\n    from: sensors/{device}/t\n    where: t >\n"), 0o644)
	out, err := exec.Command(bin, "push", "--broker", "tcp://"+addr, "--key", filepath.Join(dir, "ops.key"), "--all", "--version", "bad", filepath.Join(dir, "broken.yaml")).CombinedOutput()
	if code := exitCode(err); code != 1 || !regexp.MustCompile(`broken\.yaml:4:\d+: `).Match(out) {
		t.Fatalf("push of a broken file: exit %d\n%s", code, out)
	}
	var retained fleet.Bundle
	if !watch.get("vigil/all/rules", &retained) || retained.Version != "v1" {
		t.Fatalf("after a refused push the retained bundle is %q, want v1", retained.Version)
	}

	// Bad bundles published as an attacker or a broken tool would: each is
	// rejected on both, and v1 keeps firing.
	sign := func(version string, issued time.Time, files map[string]string, key string) *fleet.Bundle {
		b := &fleet.Bundle{Version: version, Issued: issued.UTC().Format(time.RFC3339Nano), Files: files}
		priv := opsPriv
		if key == "rogue" {
			priv = roguePriv
		}
		if err := b.Sign("ops", priv); err != nil {
			t.Fatal(err)
		}
		return b
	}
	v2 := map[string]string{"fleet.yaml": "rules:\n  - name: fleet_hot\n    from: sensors/{device}/t\n    where: t > 10\n"}
	tampered := sign("v2-tampered", time.Now(), v2, "ops")
	tampered.Files["fleet.yaml"] = strings.Replace(tampered.Files["fleet.yaml"], "t > 10", "t > 0", 1)
	for _, tc := range []struct {
		name    string
		b       *fleet.Bundle
		errPart string
	}{
		{"another key", sign("v2-rogue", time.Now(), v2, "rogue"), "signature does not verify"},
		{"tampered", tampered, "signature does not verify"},
		{"older", sign("v0", time.Now().Add(-time.Hour), v2, "ops"), "when the last bundle applied from vigil/all/rules"},
		{"broken", sign("v3-broken", time.Now(), map[string]string{"broken.yaml": "rules:\n  - name: broken\n    from: sensors/{device}/t\n    where: t >\n"}, "ops"), "broken.yaml:4:"},
	} {
		if err := wc.Publish("vigil/all/rules", tc.b.Marshal(), 1, true); err != nil {
			t.Fatal(err)
		}
		rulesState(tc.name, fleet.Rejected, tc.b.Version, tc.errPart)
		fires(tc.name, "fleet_hot")
	}

	// The UI and /api/status show where each rule came from.
	g0 := gws[0]
	var rs struct {
		Rules []struct{ Name, File, Origin, Bundle_version string } `json:"rules"`
	}
	httpJSON(t, "http://"+g0.httpAddr+"/api/rules", &rs)
	origins := map[string]string{}
	for _, r := range rs.Rules {
		origins[r.Name] = r.Origin + " " + r.Bundle_version
	}
	if origins["fleet_hot"] != "bundle v1" || origins["local_hot"] != "file " {
		t.Fatalf("/api/rules origins: %v", origins)
	}
	var st struct {
		Fleet struct {
			RulesVersion string   `json:"rules_version"`
			RulesState   string   `json:"rules_state"`
			RulesErrors  []string `json:"rules_errors"`
		} `json:"fleet"`
	}
	httpJSON(t, "http://"+g0.httpAddr+"/api/status", &st)
	if st.Fleet.RulesVersion != "v1" || st.Fleet.RulesState != fleet.Rejected || len(st.Fleet.RulesErrors) == 0 {
		t.Fatalf("/api/status fleet: %+v", st.Fleet)
	}

	// vigil fleet lists both.
	out, err = exec.Command(bin, "fleet", "--broker", "tcp://"+addr, "--wait", "2s").CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^gw-a\s+online\s+\S+\s+\S+\s+v1\s+rejected v3-broken`).Match(out) || !strings.Contains(string(out), "gw-b") {
		t.Fatalf("vigil fleet: %v\n%s", err, out)
	}

	// A clean stop publishes offline itself (the will is discarded).
	g0.cmd.Process.Signal(syscall.SIGTERM)
	if err := g0.cmd.Wait(); err != nil {
		t.Fatalf("gw-a stopped with %v", err)
	}
	waitFor(t, 20*time.Second, "gw-a offline after a clean stop", func() (bool, string) {
		var s fleet.Status
		ok := watch.get("vigil/gw-a/status", &s)
		return ok && s.State == fleet.Offline && s.Rules.Version == "v1", fmt.Sprintf("%+v", s)
	})

	// kill -9: the broker publishes gw-b's will.
	gb := gws[1]
	gb.cmd.Process.Signal(syscall.SIGKILL)
	gb.cmd.Wait()
	waitFor(t, 20*time.Second, "gw-b offline through its will", func() (bool, string) {
		var s fleet.Status
		return watch.get("vigil/gw-b/status", &s) && s.State == fleet.Offline, watch.raw("vigil/gw-b/status")
	})

	// Restart with the broker down: the last good bundle still runs.
	stopBroker()
	start(gb)
	dev, err := func() (*conn.Client, error) {
		var c *conn.Client
		var err error
		for i := 0; i < 200; i++ {
			if c, err = conn.Dial(ctx, conn.Options{Broker: "tcp://" + gb.devAddr, Logger: quietLog()}); err == nil {
				return c, nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		return nil, err
	}()
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	ts = ts.Add(time.Second)
	if err := dev.Publish("sensors/pump9/t", []byte(fmt.Sprintf(`{"t": 60, "ts": %q}`, ts.Format(time.RFC3339))), 1, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "gw-b's bundle rule firing with the broker down", func() (bool, string) {
		var alerts []struct {
			Rule string `json:"rule"`
			Key  string `json:"key"`
		}
		var body struct {
			Alerts json.RawMessage `json:"alerts"`
		}
		if !httpGet("http://"+gb.httpAddr+"/api/alerts?rule=fleet_hot", &body) {
			return false, "no answer"
		}
		json.Unmarshal(body.Alerts, &alerts)
		for _, a := range alerts {
			if a.Key == "pump9" {
				return true, ""
			}
		}
		return false, string(body.Alerts)
	})
}

func httpGet(url string, v any) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(v) == nil
}

func httpJSON(t *testing.T, url string, v any) {
	t.Helper()
	if !httpGet(url, v) {
		t.Fatalf("GET %s failed", url)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
