//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-gw/vigil/conn"
)

const statusRule = `rules:
  - name: status_report
    from: sensors/{device}/status
    key: device
`

// startGuardedVigil runs vigil with its embedded broker (in-process
// ingest) forwarding to upstream, with more upstream settings.
func startGuardedVigil(t *testing.T, upstream, more string) (*vigil, string) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "rules", "status.yaml"), statusRule)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	v := startVigil(t, dir, fmt.Sprintf(`gateway: e2e
broker: {listen: "%s"}
upstream: {broker: "tcp://%s"%s}
state: {path: vigil.db, checkpoint_every: 1s}
rules: rules
http: {listen: "%s"}
`, brokerAddr, upstream, more, httpAddr), httpAddr)
	if err := waitPort(portOf(brokerAddr), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "vigil connected upstream", func() (bool, string) {
		s := v.status()
		return s.UpstreamConnected, fmt.Sprintf("%+v", s)
	})
	return v, brokerAddr
}

// largeAlert starts an upstream Mosquitto with max_packet_size 2048, vigil
// forwarding to it (with more upstream settings), a device on vigil's
// broker, and has the device send a reading with a 5 KB string (seq 0),
// whose alert is larger than upstream takes.
func largeAlert(t *testing.T, more string) (*vigil, *upstream, *conn.Client) {
	t.Helper()
	up := startMosquitto(t, mosquittoOptions{Global: "max_packet_size 2048"})
	alerts := watchUpstream(t, up.Addr())
	v, brokerAddr := startGuardedVigil(t, up.Addr(), more)
	dev := device(t, "tcp://"+brokerAddr, nil, "", "")
	publish(t, dev, "sensors/pump-01/status", fmt.Sprintf(`{"note": %q, "seq": 0}`, strings.Repeat("x", 5000)))
	return v, alerts, dev
}

func portOf(addr string) int {
	var p int
	fmt.Sscanf(addr[strings.LastIndexByte(addr, ':')+1:], "%d", &p)
	return p
}

type guardStatus struct {
	DeadLetters   int `json:"dead_letters"`
	SetAside      int `json:"set_aside_total"`
	AlertsTrimmed int `json:"alerts_trimmed_total"`
}

// TestUpstreamRefusesLargeAlert: the case. Upstream (Mosquitto,
// max_packet_size 2048) drops the connection on an alert carrying a 5 KB
// string. vigil sets it aside after dead_after rounds, shows it, and the
// alerts behind it arrive in order; a retry puts it back in the outbox.
func TestUpstreamRefusesLargeAlert(t *testing.T) {
	v, alerts, dev := largeAlert(t, ", dead_after: 2")
	for i := 1; i <= 3; i++ {
		publish(t, dev, "sensors/pump-01/status", fmt.Sprintf(`{"seq": %d}`, i))
	}
	got := alerts.waitRule(t, "status_report", 3, 90*time.Second)
	for i, a := range got {
		if a.Values["seq"] != float64(i+1) {
			t.Fatalf("alert %d upstream: %+v", i, a.Values)
		}
	}
	var st guardStatus
	eventually(t, 10*time.Second, "the refused alert shown as set aside", func() (bool, string) {
		v.get("/api/status", "", &st)
		return st.SetAside == 1 && st.DeadLetters == 1, fmt.Sprintf("%+v", st)
	})
	var dl struct {
		DeadLetters []struct {
			Values   map[string]any `json:"values"`
			Attempts int            `json:"attempts"`
			Reason   string         `json:"reason"`
		} `json:"dead_letters"`
	}
	if v.get("/api/dead-letters", "", &dl) != 200 || len(dl.DeadLetters) != 1 || dl.DeadLetters[0].Values["seq"] != 0.0 ||
		dl.DeadLetters[0].Attempts != 2 || dl.DeadLetters[0].Reason == "" {
		t.Fatalf("dead letters %+v", dl)
	}
	if n := v.logs.count("alert set aside"); n != 1 {
		t.Fatalf("logged %d times", n)
	}
	// A later alert is not held back either.
	publish(t, dev, "sensors/pump-01/status", `{"seq": 4}`)
	alerts.waitRule(t, "status_report", 4, 30*time.Second)

	// The UI lists it; "Send all again" puts it back in the outbox, where
	// upstream refuses it again and it is set aside a second time.
	ctx := browser(t)
	do(t, ctx, 30*time.Second, "open the overview", chromedp.Navigate(v.http+"/#overview"))
	waitJS(t, ctx, 20*time.Second, "the dead letter listed with a banner",
		`!document.querySelector('#dead-letters').hidden && document.querySelectorAll('#dead-table tbody tr').length === 1 &&
		 document.querySelector('#problems').textContent.includes('set aside')`)
	screenshot(t, ctx, "ui-dead-letters.png")
	do(t, ctx, 10*time.Second, "send it again", chromedp.Click(chromedp.CSS(`#dead-retry-all`)))
	eventually(t, 60*time.Second, "set aside again", func() (bool, string) {
		v.get("/api/status", "", &st)
		return st.SetAside == 2 && st.DeadLetters == 1, fmt.Sprintf("%+v", st)
	})
}

// TestUpstreamTrimsLargeAlert: with upstream.max_alert_bytes under the
// upstream's packet limit, the large alert is stored trimmed and
// delivered, marked "trimmed": true, in its place.
func TestUpstreamTrimsLargeAlert(t *testing.T) {
	v, alerts, dev := largeAlert(t, ", max_alert_bytes: 1500")
	publish(t, dev, "sensors/pump-01/status", `{"seq": 1}`)
	got := alerts.waitRule(t, "status_report", 2, 30*time.Second)
	if !got[0].Trimmed || got[0].Values["seq"] != 0.0 || len(got[0].Values["note"].(string)) > 300 || got[1].Trimmed {
		t.Fatalf("alerts upstream: %+v", got)
	}
	var st guardStatus
	v.get("/api/status", "", &st)
	if st.AlertsTrimmed != 1 || st.SetAside != 0 {
		t.Fatalf("status %+v", st)
	}
}

// TestRunRefusesExpressionBombs: the expression attacks stop
// `vigil run` at start with FILE:LINE:COL, before any event is read.
func TestRunRefusesExpressionBombs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "rules", "bad.yaml"), `rules:
  - name: let_chain
    from: sensors/{device}/#
    where: 'let a0 = topic + topic; let a1 = a0 + a0; let a2 = a1 + a1; let a3 = a2 + a2; let a4 = a3 + a3; let a5 = a4 + a4; len(a5) > 0'
  - name: nested
    from: sensors/{device}/#
    where: 'let r = 1..300; any(r, {any(r, {any(r, {# < 0})})})'
`)
	v := startVigil(t, dir, "gateway: e2e\nbroker: {listen: \"127.0.0.1:0\"}\nstate: {path: vigil.db}\nrules: rules\nhttp: {listen: \"off\"}\n", "")
	select {
	case <-v.done:
	case <-time.After(20 * time.Second):
		t.Fatal("vigil run started with the bad rules")
	}
	logs := v.logs.String()
	for _, want := range []string{
		`bad.yaml:4:103: rule`, `let_chain`, `where: can build a value`,
		`bad.yaml:7:29: rule`, `where: up to 27090300 closure iterations`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if v.cmd.ProcessState.Success() {
		t.Error("exit 0")
	}
}

// TestCorruptStateShown: a damaged state database is set aside at start,
// and that shows in /api/status and /metrics (the UI's banner), not only
// in a log line.
func TestCorruptStateShown(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "rules", "status.yaml"), statusRule)
	writeFile(t, filepath.Join(dir, "vigil.db"), strings.Repeat("not a database ", 1000))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	v := startVigil(t, dir, fmt.Sprintf("gateway: e2e\nbroker: {listen: \"127.0.0.1:%d\"}\nstate: {path: vigil.db}\nrules: rules\nhttp: {listen: %q}\n",
		freePort(t), httpAddr), httpAddr)
	var st struct {
		Recovered string `json:"state_recovered_to"`
	}
	eventually(t, 20*time.Second, "the recovery in /api/status", func() (bool, string) {
		v.get("/api/status", "", &st)
		return strings.Contains(st.Recovered, "vigil.db.corrupt-"), st.Recovered
	})
	metrics := httpGet(t, v.http+"/metrics")
	if !strings.Contains(metrics, "\nvigil_state_recovered 1\n") {
		t.Fatalf("metrics lack vigil_state_recovered 1")
	}
	ctx := browser(t)
	do(t, ctx, 30*time.Second, "open the overview", chromedp.Navigate(v.http+"/#overview"))
	waitJS(t, ctx, 20*time.Second, "the banner",
		`Array.from(document.querySelectorAll('#problems div.bad')).some((d) => d.textContent.includes('state database was damaged'))`)
	screenshot(t, ctx, "ui-state-recovered.png")
}

// httpGet returns the body of a GET that must answer 200.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestRuleDisabledAtRunTime: a device sends what makes a rule's
// expression go over its memory budget. vigil disables that rule (once,
// shown in the API, /metrics and the Rules tab) and goes on with the
// others.
func TestRuleDisabledAtRunTime(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "rules", "r.yaml"), `rules:
  - name: heavy
    from: sensors/{device}/status
    key: device
    where: 'map(1..n, # * 2)[0] > 0'
  - name: light
    from: sensors/{device}/status
    key: device
    where: 'n > 0'
`)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	v := startVigil(t, dir, fmt.Sprintf("gateway: e2e\nbroker: {listen: %q}\nstate: {path: vigil.db}\nrules: rules\nhttp: {listen: %q}\n",
		brokerAddr, httpAddr), httpAddr)
	if err := waitPort(portOf(brokerAddr), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	dev := device(t, "tcp://"+brokerAddr, nil, "", "")
	for _, n := range []int{3, 1000000, 4, 5} {
		publish(t, dev, "sensors/pump-01/status", fmt.Sprintf(`{"n": %d}`, n))
	}
	type rule struct {
		Name     string `json:"name"`
		Alerts   int    `json:"alerts_total"`
		Errors   int    `json:"errors_total"`
		Disabled string `json:"disabled"`
	}
	var body struct {
		Rules []rule `json:"rules"`
	}
	eventually(t, 20*time.Second, "heavy disabled, light on", func() (bool, string) {
		v.get("/api/rules", "", &body)
		ok := len(body.Rules) == 2 && body.Rules[0].Alerts == 1 && body.Rules[0].Errors == 1 &&
			strings.Contains(body.Rules[0].Disabled, "memory budget exceeded") && body.Rules[1].Alerts == 4 && body.Rules[1].Disabled == ""
		return ok, fmt.Sprintf("%+v", body.Rules)
	})
	var st struct {
		RulesDisabled int `json:"rules_disabled"`
	}
	v.get("/api/status", "", &st)
	metrics := httpGet(t, v.http+"/metrics")
	if st.RulesDisabled != 1 || !strings.Contains(metrics, `vigil_rule_disabled{rule="heavy"} 1`) ||
		!strings.Contains(metrics, `vigil_rule_disabled{rule="light"} 0`) || v.logs.count("rule disabled") != 1 {
		t.Fatalf("status %+v, logged %d times", st, v.logs.count("rule disabled"))
	}
	ctx := browser(t)
	do(t, ctx, 30*time.Second, "open the Rules tab", chromedp.Navigate(v.http+"/#rules"))
	waitJS(t, ctx, 20*time.Second, "the rule shown disabled",
		`Array.from(document.querySelectorAll('#rules tbody tr[data-rule="heavy"] td.err')).some((d) => d.textContent.startsWith('disabled: '))`)
	waitJS(t, ctx, 20*time.Second, "the banner", `document.querySelector('#problems').textContent.includes('1 rule(s) disabled')`)
}
