package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-gw/vigil/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

const secret = "s3cret-token-value"

// memSource is a small gateway in memory: the data set every test reads.
// Alerts filters and pages the way the store's history does.
type memSource struct {
	mu          sync.Mutex
	status      Status
	rules       []RuleInfo
	alerts      []AlertEntry // oldest first; Seq = index+1
	reloadErr   error
	reloads     int
	alertsCalls []AlertQuery
	dead        []DeadLetter
	retried     []string // ids sent again, "*" for all
}

func (m *memSource) DeadLetters() ([]DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.dead), nil
}

func (m *memSource) RetryDeadLetters(ids []string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(ids) == 0 {
		n := len(m.dead)
		m.dead, m.retried = nil, append(m.retried, "*")
		m.status.DeadLetters = 0
		return n, nil
	}
	n := 0
	m.dead = slices.DeleteFunc(m.dead, func(d DeadLetter) bool {
		if slices.Contains(ids, d.Alert.ID) {
			n++
			return true
		}
		return false
	})
	m.retried = append(m.retried, ids...)
	m.status.DeadLetters = len(m.dead)
	return n, nil
}

func newMemSource() *memSource {
	src := &memSource{
		status: Status{
			Gateway: "pi-kitchen-01", Started: t0.Add(-time.Hour),
			Messages: 1200, Events: 1180, Alerts: 7, DecodeErrors: 3, Duplicates: 1, Late: 2, Dropped: 4,
			Evicted: 5, ExprErrors: 6, OutboxDepth: 2, OutboxDropped: 1, UpstreamConnected: false,
			BrokerConnected: true, JournalLen: 40, JournalCommits: 17,
			JournalSyncs: 9, EarlyCommits: 2, IngestRefused: map[string]uint64{"topic_too_long": 4, "payload_too_large": 1}, JournalDropped: 3, PayloadBytes: 84000, DiskWritten: 262144, DiskWriteRate: 250, CommitRate: 18.5,
			BrokerLimits: map[string]uint64{"packet_too_large": 4, "login_failed": 9}, BrokerClients: 12,
			LastCheckpoint: t0.Add(-30 * time.Second), CheckpointTook: 12 * time.Millisecond, CheckpointStall: 5 * time.Millisecond, CheckpointBytes: 4096,
			Watermark: t0.Add(-1500 * time.Millisecond), ProcessLag: 20 * time.Millisecond,
		},
		rules: []RuleInfo{
			{Name: "hot_motor", File: "rules/motors.yaml", Line: 3, Kind: "stateless", From: []string{"sensors/{device}/temperature"},
				Severity: "critical", Events: 900, Alerts: 5, Errors: 1, Keys: 0, LastError: "temperature: not a number"},
			{Name: "heat_rising", File: "rules/motors.yaml", Line: 12, Kind: "window", Events: 280, Alerts: 2,
				Late: 2, Evicted: 5, Keys: 3, Watermark: t0},
		},
	}
	add := func(rule, key, sev string, st event.State, at time.Time) {
		a := event.Alert{ID: event.AlertID(rule, key, st, at), Rule: rule, Key: key, State: st, Severity: sev,
			Time: at, Message: key + " alert", Values: map[string]any{"temperature": 81.5}}
		src.alerts = append(src.alerts, AlertEntry{Seq: int64(len(src.alerts) + 1), Alert: a, Received: at.Add(time.Second)})
	}
	add("hot_motor", "pump-01", "critical", event.Firing, t0.Add(-50*time.Minute))
	add("hot_motor", "pump-02", "critical", event.Firing, t0.Add(-40*time.Minute))
	add("heat_rising", "pump-01", "warning", event.Firing, t0.Add(-30*time.Minute))
	add("heat_rising", "pump-01", "warning", event.Resolved, t0.Add(-20*time.Minute))
	add("hot_motor", "pump-03", "critical", event.Firing, t0.Add(-10*time.Minute))
	src.alerts[4].Delivered = t0.Add(-9 * time.Minute)
	return src
}

func (m *memSource) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

func (m *memSource) Rules() []RuleInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.rules)
}

func (m *memSource) Alerts(q AlertQuery) ([]AlertEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.alertsCalls = append(m.alertsCalls, q)
	var out []AlertEntry
	for i := len(m.alerts) - 1; i >= 0 && len(out) < q.Limit; i-- {
		e := m.alerts[i]
		a := e.Alert
		switch {
		case q.Rule != "" && a.Rule != q.Rule, q.Key != "" && a.Key != q.Key,
			q.Severity != "" && a.Severity != q.Severity, q.State != "" && string(a.State) != q.State,
			!q.Since.IsZero() && a.Time.Before(q.Since), !q.Until.IsZero() && !a.Time.Before(q.Until),
			q.Before > 0 && e.Seq >= q.Before:
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// Reload mimics the gateway: a failed reload keeps the old rules and
// reports its errors in Status until a reload succeeds.
func (m *memSource) Reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reloads++
	m.status.LastReload = t0
	if m.reloadErr != nil {
		m.status.ReloadErrors = strings.Split(m.reloadErr.Error(), "\n")
		return m.reloadErr
	}
	m.status.ReloadErrors = nil
	return nil
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newTestServer(t *testing.T, token string, src Source) *Server {
	t.Helper()
	s, err := New(Options{Listen: "127.0.0.1:0", Token: token, Source: src, Version: "v1.2.3",
		Logger: quietLogger(), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// do runs one request through the handler. host and remote default to a
// loopback browser.
func do(t *testing.T, s *Server, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.Host = "127.0.0.1:8080"
	r.RemoteAddr = "127.0.0.1:50000"
	for k, v := range hdr {
		switch k {
		case "Host":
			r.Host = v
		case "Remote":
			r.RemoteAddr = v
		default:
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %q: %v", w.Body.String(), err)
	}
	return v
}

func TestNewListen(t *testing.T) {
	tests := []struct {
		listen, token string
		wantErr       string
	}{
		{"127.0.0.1:0", "", ""},
		{"[::1]:0", "", ""},
		{"localhost:0", "", ""},
		{"0.0.0.0:0", "", "not a loopback address: set http.token_file"},
		{":0", "", "not a loopback address"},
		{"192.0.2.1:8080", "", "not a loopback address"},
		{"gateway.lan:8080", "", "not a loopback address"},
		{"0.0.0.0:0", secret, ""},
		{"no-port", "", "missing port"},
	}
	for _, tt := range tests {
		t.Run(tt.listen+"/token="+tt.token, func(t *testing.T) {
			if tt.listen == "[::1]:0" {
				ln, err := net.Listen("tcp", tt.listen)
				if err != nil {
					t.Skip("no IPv6 loopback here")
				}
				ln.Close()
			}
			s, err := New(Options{Listen: tt.listen, Token: tt.token, Source: newMemSource(), Logger: quietLogger()})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
	if _, err := New(Options{Listen: "127.0.0.1:0"}); err == nil {
		t.Fatal("New without a Source must fail")
	}
}

func TestAuthWithToken(t *testing.T) {
	src := newMemSource()
	s := newTestServer(t, secret, src)
	right := map[string]string{"Authorization": "Bearer " + secret}
	tests := []struct {
		name, method, target string
		hdr                  map[string]string
		want                 int
	}{
		{"healthz open", "GET", "/healthz", nil, 200},
		{"healthz open to any host", "GET", "/healthz", map[string]string{"Host": "gw.example:8080", "Remote": "192.0.2.7:1"}, 200},
		{"page open", "GET", "/", nil, 200},
		{"script open", "GET", "/app.js", nil, 200},
		{"status no token", "GET", "/api/status", nil, 401},
		{"status wrong token", "GET", "/api/status", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"status token prefix", "GET", "/api/status", map[string]string{"Authorization": "Bearer " + secret[:5]}, 401},
		{"status basic auth", "GET", "/api/status", map[string]string{"Authorization": "Basic " + secret}, 401},
		{"status right token", "GET", "/api/status", right, 200},
		{"status lower-case scheme", "GET", "/api/status", map[string]string{"Authorization": "bearer " + secret}, 200},
		{"status from the network with token", "GET", "/api/status", map[string]string{"Authorization": "Bearer " + secret, "Host": "gw.example:8080", "Remote": "192.0.2.7:1"}, 200},
		{"status access_token refused", "GET", "/api/status?access_token=" + secret, nil, 401},
		{"rules no token", "GET", "/api/rules", nil, 401},
		{"rules right", "GET", "/api/rules", right, 200},
		{"alerts no token", "GET", "/api/alerts", nil, 401},
		{"alerts right", "GET", "/api/alerts", right, 200},
		{"devices no token", "GET", "/api/devices", nil, 401},
		{"devices right", "GET", "/api/devices", right, 200},
		{"series no token", "GET", "/api/devices/x/series", nil, 401},
		{"series right (unknown device)", "GET", "/api/devices/x/series", right, 404},
		{"metrics no token", "GET", "/metrics", nil, 401},
		{"metrics wrong", "GET", "/metrics", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"metrics right", "GET", "/metrics", right, 200},
		{"events no token", "GET", "/api/events", nil, 401},
		{"events access_token wrong", "GET", "/api/events?access_token=nope", nil, 401},
		{"unknown api no token", "GET", "/api/nope", nil, 401},
		{"unknown api right", "GET", "/api/nope", right, 404},
		{"reload no token", "POST", "/api/reload", nil, 401},
		{"reload wrong", "POST", "/api/reload", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"reload right", "POST", "/api/reload", right, 200},
		{"reload right from the network", "POST", "/api/reload", map[string]string{"Authorization": "Bearer " + secret, "Remote": "192.0.2.7:1"}, 200},
		{"reload cross-origin", "POST", "/api/reload", map[string]string{"Authorization": "Bearer " + secret, "Origin": "http://evil.example"}, 403},
		{"reload same origin", "POST", "/api/reload", map[string]string{"Authorization": "Bearer " + secret, "Origin": "http://127.0.0.1:8080"}, 200},
		{"reload by GET", "GET", "/api/reload", right, 405},
		{"dead letters no token", "GET", "/api/dead-letters", nil, 401},
		{"dead letters right", "GET", "/api/dead-letters", right, 200},
		{"retry no token", "POST", "/api/dead-letters/retry", nil, 401},
		{"retry cross-origin", "POST", "/api/dead-letters/retry", map[string]string{"Authorization": "Bearer " + secret, "Origin": "http://evil.example"}, 403},
		{"retry right", "POST", "/api/dead-letters/retry", right, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := src.reloads
			w := do(t, s, tt.method, tt.target, tt.hdr)
			if w.Code != tt.want {
				t.Fatalf("%s %s: got %d, want %d: %s", tt.method, tt.target, w.Code, tt.want, w.Body)
			}
			if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.target == "/api/reload" && (src.reloads > before) != (tt.want == 200) {
				t.Errorf("reload ran: %v, want %v", src.reloads > before, tt.want == 200)
			}
		})
	}
}

func TestAuthWithoutToken(t *testing.T) {
	src := newMemSource()
	s := newTestServer(t, "", src)
	tests := []struct {
		name, method, target string
		hdr                  map[string]string
		want                 int
	}{
		{"status loopback", "GET", "/api/status", nil, 200},
		{"status localhost name", "GET", "/api/status", map[string]string{"Host": "localhost:8080"}, 200},
		{"status ipv6 loopback", "GET", "/api/status", map[string]string{"Host": "[::1]:8080"}, 200},
		{"status rebinding host", "GET", "/api/status", map[string]string{"Host": "evil.example:8080"}, 403},
		{"events rebinding host", "GET", "/api/events", map[string]string{"Host": "evil.example"}, 403},
		{"metrics loopback", "GET", "/metrics", nil, 200},
		{"healthz any host", "GET", "/healthz", map[string]string{"Host": "evil.example"}, 200},
		{"reload loopback", "POST", "/api/reload", nil, 200},
		{"reload from the network", "POST", "/api/reload", map[string]string{"Remote": "192.0.2.7:1234"}, 403},
		{"reload cross-origin", "POST", "/api/reload", map[string]string{"Origin": "http://evil.example"}, 403},
		{"reload with some token", "POST", "/api/reload", map[string]string{"Authorization": "Bearer x"}, 200},
		{"retry loopback", "POST", "/api/dead-letters/retry", nil, 200},
		{"retry from the network", "POST", "/api/dead-letters/retry", map[string]string{"Remote": "192.0.2.7:1234"}, 403},
		{"retry cross-origin", "POST", "/api/dead-letters/retry", map[string]string{"Origin": "http://evil.example"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := src.reloads
			w := do(t, s, tt.method, tt.target, tt.hdr)
			if tt.target == "/api/events" && w.Code == 200 {
				t.Fatal("the stream must be refused")
			}
			if w.Code != tt.want {
				t.Fatalf("got %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if tt.target == "/api/reload" && (src.reloads > before) != (tt.want == 200) {
				t.Errorf("reload ran: %v, want %v", src.reloads > before, tt.want == 200)
			}
		})
	}
}

// TestNoSecretInResponses reads every endpoint with the token and checks the
// token never comes back.
func TestNoSecretInResponses(t *testing.T) {
	s := newTestServer(t, secret, newMemSource())
	s.PublishReading("pump-01", "sensors/pump-01/temperature", t0, map[string]any{"temperature": 70.0})
	for _, p := range []string{"/", "/app.js", "/api/status", "/api/rules", "/api/alerts", "/api/devices",
		"/api/devices/pump-01/series", "/metrics", "/healthz"} {
		w := do(t, s, "GET", p, map[string]string{"Authorization": "Bearer " + secret})
		if w.Code != 200 {
			t.Fatalf("%s: %d", p, w.Code)
		}
		if strings.Contains(w.Body.String(), secret) {
			t.Errorf("%s leaks the token", p)
		}
	}
}

// TestHealthz: ok while the gateway journals what it takes; 503 with the
// problems when the journal cannot be written or the broker is out of
// reach.
func TestHealthz(t *testing.T) {
	src := newMemSource()
	s := newTestServer(t, "", src)
	w := do(t, s, "GET", "/healthz", nil)
	if got := decode[map[string]any](t, w); w.Code != 200 || got["status"] != "ok" {
		t.Fatalf("healthz: %d %v", w.Code, got)
	}
	src.mu.Lock()
	src.status.Degraded, src.status.BrokerConnected = true, false
	src.mu.Unlock()
	w = do(t, s, "GET", "/healthz", nil)
	got := decode[map[string]any](t, w)
	if w.Code != http.StatusServiceUnavailable || got["status"] != "degraded" || len(got["problems"].([]any)) != 2 {
		t.Fatalf("healthz degraded: %d %v", w.Code, got)
	}
}

func TestStatus(t *testing.T) {
	src := newMemSource()
	s := newTestServer(t, "", src)
	s.PublishReading("pump-01", "t", t0, map[string]any{"v": 1.0})
	w := do(t, s, "GET", "/api/status", nil)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	got := decode[map[string]any](t, w)
	want := map[string]any{
		"version": "v1.2.3", "gateway": "pi-kitchen-01", "uptime_seconds": 3600.0,
		"messages_total": 1200.0, "events_total": 1180.0, "alerts_total": 7.0, "decode_errors_total": 3.0,
		"duplicates_total": 1.0, "late_total": 2.0, "dropped_total": 4.0, "evicted_total": 5.0,
		"expression_errors_total": 6.0, "outbox_depth": 2.0, "outbox_dropped_total": 1.0,
		"upstream_connected": false, "broker_connected": true, "journal_length": 40.0, "journal_commits_total": 17.0,
		"journal_syncs_total": 9.0, "journal_early_commits_total": 2.0,
		"journal_dropped_total": 3.0, "payload_bytes_total": 84000.0, "disk_written_bytes_total": 262144.0,
		"disk_write_bytes_per_second": 250.0, "disk_write_bytes_per_day_estimate": 250.0 * 86400, "journal_commits_per_second": 18.5,
		"checkpoint_age_seconds": 30.0, "checkpoint_duration_seconds": 0.012, "checkpoint_stall_seconds": 0.005, "checkpoint_bytes": 4096.0,
		"watermark_delay_seconds": 1.5, "process_lag_seconds": 0.02, "degraded": false,
		"last_checkpoint": "2026-01-05T09:59:30Z", "last_reload": nil, "devices": 1.0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if r := fmt.Sprint(got["ingest_refused_total"]); r != "map[payload_too_large:1 topic_too_long:4]" {
		t.Errorf("ingest_refused_total = %s", r)
	}
	if errs, ok := got["reload_errors"].([]any); !ok || len(errs) != 0 {
		t.Errorf("reload_errors = %#v, want []", got["reload_errors"])
	}

	// Before the first checkpoint and event the ages are null, not huge.
	src.status.LastCheckpoint, src.status.Watermark = time.Time{}, time.Time{}
	got = decode[map[string]any](t, do(t, s, "GET", "/api/status", nil))
	for _, k := range []string{"last_checkpoint", "checkpoint_age_seconds", "watermark", "watermark_delay_seconds"} {
		if v, ok := got[k]; !ok || v != nil {
			t.Errorf("%s = %#v, want null", k, v)
		}
	}
}

func TestRulesAndReload(t *testing.T) {
	src := newMemSource()
	s := newTestServer(t, "", src)
	type rulesResp struct {
		Rules []struct {
			Name, File, Kind string
			LastError        string `json:"last_error"`
			Line             int
			From             []string
			Events           uint64 `json:"events_total"`
			Alerts           uint64 `json:"alerts_total"`
			Errors           uint64 `json:"errors_total"`
			Late             uint64 `json:"late_total"`
			Evicted          uint64 `json:"evicted_total"`
			Keys             int
		}
		ReloadErrors []string `json:"reload_errors"`
	}
	got := decode[rulesResp](t, do(t, s, "GET", "/api/rules", nil))
	if len(got.Rules) != 2 || got.Rules[0].Name != "hot_motor" || got.Rules[1].Name != "heat_rising" {
		t.Fatalf("rules: %+v", got.Rules)
	}
	r0 := got.Rules[0]
	if r0.File != "rules/motors.yaml" || r0.Line != 3 || r0.Kind != "stateless" || r0.Events != 900 || r0.Alerts != 5 ||
		r0.Errors != 1 || r0.LastError != "temperature: not a number" || len(r0.From) != 1 {
		t.Errorf("hot_motor: %+v", r0)
	}
	if r1 := got.Rules[1]; r1.Keys != 3 || r1.Late != 2 || r1.Evicted != 5 || r1.From == nil {
		t.Errorf("heat_rising: %+v", r1)
	}

	bad := "rules/motors.yaml:12:11: rule \"heat_rising\": window: unknown type \"slidin\"\nrules/pumps.yaml:4:5: unknown field \"treshold\""
	src.reloadErr = errors.New(bad)
	w := do(t, s, "POST", "/api/reload", nil)
	if w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("failed reload: %d %s", w.Code, w.Body)
	}
	rr := decode[struct {
		OK     bool
		Errors []string
	}](t, w)
	if rr.OK || !slices.Equal(rr.Errors, strings.Split(bad, "\n")) {
		t.Fatalf("failed reload body: %+v", rr)
	}
	// The rules page and the status both show the errors until a reload works.
	if got := decode[rulesResp](t, do(t, s, "GET", "/api/rules", nil)); len(got.ReloadErrors) != 2 ||
		got.ReloadErrors[0] != strings.Split(bad, "\n")[0] {
		t.Fatalf("rules after failed reload: %+v", got.ReloadErrors)
	}
	src.reloadErr = nil
	w = do(t, s, "POST", "/api/reload", nil)
	if w.Code != 200 || !decode[struct{ OK bool }](t, w).OK {
		t.Fatalf("reload: %d %s", w.Code, w.Body)
	}
	if got := decode[rulesResp](t, do(t, s, "GET", "/api/rules", nil)); len(got.ReloadErrors) != 0 || got.ReloadErrors == nil {
		t.Fatalf("reload errors after a good reload: %#v", got.ReloadErrors)
	}
}

type alertsResp struct {
	Alerts []struct {
		Seq       int64
		ID, Rule  string
		Key       string
		State     string
		Severity  string
		Time      time.Time
		Received  *time.Time
		Delivered *time.Time
		Values    map[string]any
	}
	NextBefore int64 `json:"next_before"`
}

func TestAlerts(t *testing.T) {
	src := newMemSource()
	s := newTestServer(t, "", src)
	tests := []struct {
		query    string
		wantSeqs []int64
		next     int64
	}{
		{"", []int64{5, 4, 3, 2, 1}, 0},
		{"rule=hot_motor", []int64{5, 2, 1}, 0},
		{"key=pump-01", []int64{4, 3, 1}, 0},
		{"severity=warning", []int64{4, 3}, 0},
		{"state=resolved", []int64{4}, 0},
		{"rule=heat_rising&state=firing", []int64{3}, 0},
		{"since=2026-01-05T09:40:00Z", []int64{5, 4}, 0}, // since is inclusive
		{"since=25m", []int64{5, 4}, 0},
		{"until=2026-01-05T09:20:00Z", []int64{1}, 0}, // until is exclusive
		{"since=45m&until=15m", []int64{4, 3, 2}, 0},
		{"limit=2", []int64{5, 4}, 4},
		{"limit=2&before=4", []int64{3, 2}, 2},
		{"limit=2&before=2", []int64{1}, 0},
		{"key=nobody", []int64{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			w := do(t, s, "GET", "/api/alerts?"+tt.query, nil)
			if w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			got := decode[alertsResp](t, w)
			seqs := []int64{}
			for _, a := range got.Alerts {
				seqs = append(seqs, a.Seq)
			}
			if !slices.Equal(seqs, tt.wantSeqs) {
				t.Errorf("seqs %v, want %v", seqs, tt.wantSeqs)
			}
			if got.NextBefore != tt.next {
				t.Errorf("next_before %d, want %d", got.NextBefore, tt.next)
			}
		})
	}

	got := decode[alertsResp](t, do(t, s, "GET", "/api/alerts?limit=1", nil))
	a := got.Alerts[0]
	if a.ID != src.alerts[4].Alert.ID || a.Rule != "hot_motor" || a.Key != "pump-03" || a.State != "firing" ||
		a.Severity != "critical" || !a.Time.Equal(t0.Add(-10*time.Minute)) || a.Values["temperature"] != 81.5 ||
		a.Received == nil || a.Delivered == nil || !a.Delivered.Equal(t0.Add(-9*time.Minute)) {
		t.Errorf("newest alert: %+v", a)
	}
	if got := decode[alertsResp](t, do(t, s, "GET", "/api/alerts?before=2", nil)); got.Alerts[0].Delivered != nil {
		t.Error("an undelivered alert must have no delivered time")
	}
	if q := src.alertsCalls[len(src.alertsCalls)-1]; q.Limit != 100 {
		t.Errorf("default limit %d, want 100", q.Limit)
	}
}

func TestAlertsBadQuery(t *testing.T) {
	s := newTestServer(t, "", newMemSource())
	for _, q := range []string{"severity=urgent", "state=open", "since=yesterday", "until=-5m", "limit=0",
		"limit=1001", "limit=ten", "before=0", "before=x"} {
		t.Run(q, func(t *testing.T) {
			w := do(t, s, "GET", "/api/alerts?"+q, nil)
			if w.Code != 400 {
				t.Fatalf("got %d, want 400", w.Code)
			}
			name := strings.SplitN(q, "=", 2)[0]
			if e := decode[map[string]string](t, w)["error"]; !strings.HasPrefix(e, name+":") {
				t.Errorf("error %q does not name %s", e, name)
			}
		})
	}
}

type failingSource struct{ *memSource }

func (failingSource) Alerts(AlertQuery) ([]AlertEntry, error) {
	return nil, errors.New("database is locked")
}

func TestAlertsSourceError(t *testing.T) {
	s := newTestServer(t, "", failingSource{newMemSource()})
	w := do(t, s, "GET", "/api/alerts", nil)
	if w.Code != 500 || !strings.Contains(w.Body.String(), "database is locked") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestStatic(t *testing.T) {
	s := newTestServer(t, secret, newMemSource())
	tests := []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script src="app.js"`},
		{"/index.html", "text/html; charset=utf-8", `id="alerts"`},
		{"/app.js", "text/javascript; charset=utf-8", "/api/events"},
		{"/app.css", "text/css; charset=utf-8", "prefers-color-scheme: dark"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := do(t, s, "GET", tt.path, nil)
			if w.Code != 200 || w.Header().Get("Content-Type") != tt.ctype || !strings.Contains(w.Body.String(), tt.contains) {
				t.Fatalf("%d %q", w.Code, w.Header().Get("Content-Type"))
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("CSP %q", csp)
			}
			etag := w.Header().Get("ETag")
			w2 := do(t, s, "GET", tt.path, map[string]string{"If-None-Match": etag})
			if etag == "" || w2.Code != http.StatusNotModified {
				t.Errorf("revalidation: etag %q, got %d", etag, w2.Code)
			}
		})
	}
	if w := do(t, s, "GET", "/nope.js", nil); w.Code != 404 {
		t.Errorf("unknown file: %d", w.Code)
	}
	// No CDN: the page loads nothing from another origin.
	for _, p := range []string{"/", "/app.js", "/app.css"} {
		body := do(t, s, "GET", p, nil).Body.String()
		if strings.Contains(body, "http://") && !strings.Contains(body, "http://www.w3.org/2000/svg") || strings.Contains(body, "https://") {
			t.Errorf("%s refers to another origin", p)
		}
	}
}

func TestRunServesAndStops(t *testing.T) {
	s := newTestServer(t, "", newMemSource())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("healthz over TCP: %d %s", resp.StatusCode, body)
	}
	// A live client must not hold the shutdown up.
	resp, err = http.Get("http://" + s.Addr() + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return after cancel with a live client connected")
	}
}

// TestPageSelectors pins the ids and data attributes the browser test and
// docs rely on: renaming one must be a deliberate change here too.
func TestPageSelectors(t *testing.T) {
	s := newTestServer(t, "", newMemSource())
	page := do(t, s, "GET", "/", nil).Body.String()
	script := do(t, s, "GET", "/app.js", nil).Body.String()
	for _, want := range []string{`id="conn"`, `id="health"`, `id="alerts"`, `id="recent-alerts"`, `id="devices"`,
		`id="chart"`, `id="rules"`, `id="reload"`, `id="reload-errors"`, `id="login"`, `id="alert-filters"`,
		`data-stat="events_rate"`, `data-stat="alerts_rate"`, `data-stat="process_lag"`, `data-stat="watermark_delay"`,
		`data-stat="checkpoint"`, `data-stat="outbox"`, `data-stat="broker"`, `data-stat="uptime"`,
		`data-stat="decode_errors_total"`, `data-stat="late_total"`, `data-stat="dropped_total"`, `data-stat="evicted_total"`} {
		if !strings.Contains(page, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	for _, want := range []string{`'data-device'`, `'data-field'`, `'data-rule'`, `'data-key'`, `'data-severity'`,
		`'data-state'`, `'data-id'`, "`alert sev-${a.severity} state-${a.state}", `class: 'value'`} {
		if !strings.Contains(script, want) {
			t.Errorf("app.js lacks %s", want)
		}
	}
}
