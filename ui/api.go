package ui

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-gw/vigil/event"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", s.guard(open, s.handleHealth))
	mux.Handle("GET /api/status", s.guard(read, s.handleStatus))
	mux.Handle("GET /api/rules", s.guard(read, s.handleRules))
	mux.Handle("GET /api/alerts", s.guard(read, s.handleAlerts))
	mux.Handle("GET /api/devices", s.guard(read, s.handleDevices))
	mux.Handle("GET /api/devices/{key}/series", s.guard(read, s.handleSeries))
	mux.Handle("POST /api/reload", s.guard(mutate, s.handleReload))
	mux.Handle("GET /api/dead-letters", s.guard(read, s.handleDeadLetters))
	mux.Handle("POST /api/dead-letters/retry", s.guard(mutate, s.handleRetryDeadLetters))
	mux.Handle("GET /api/events", s.guard(sseRead, s.handleEvents))
	mux.Handle("GET /metrics", s.guard(read, s.metrics.ServeHTTP))
	mux.Handle("GET /api/reload", s.guard(read, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "reload is POST")
	}))
	mux.Handle("/api/", s.guard(read, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	}))
	mux.Handle("/", s.guard(open, s.handleStatic))
	return securityHeaders(mux)
}

// securityHeaders keeps the page self-contained (no CDN is ever needed, so
// none is allowed), unframeable, and the ?token= of a first visit out of
// Referer headers.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		data, _ = json.Marshal(map[string]string{"error": "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// handleHealth is GET /healthz: 200 {"status":"ok"} while the gateway
// takes and journals messages; 503 {"status":"degraded","problems":[…]}
// when the journal cannot be written (QoS 1 messages are not acknowledged)
// or the MQTT broker is out of reach. No token needed: a supervisor or load
// balancer polls it.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	st := s.o.Source.Status()
	var problems []string
	if st.Degraded {
		problems = append(problems, "journal not writable: QoS 1 messages are held unacknowledged, QoS 0 messages dropped")
	}
	if !st.BrokerConnected {
		problems = append(problems, "not connected to the MQTT broker")
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "degraded", "problems": problems})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// statusJSON is GET /api/status. Durations are seconds; ages are computed
// here against the gateway clock so the page needs no clock of its own.
type statusJSON struct {
	Version       string    `json:"version"`
	Gateway       string    `json:"gateway"`
	Now           time.Time `json:"now"`
	Started       time.Time `json:"started"`
	UptimeSeconds float64   `json:"uptime_seconds"`

	Messages     uint64 `json:"messages_total"`
	Events       uint64 `json:"events_total"`
	Alerts       uint64 `json:"alerts_total"`
	DecodeErrors uint64 `json:"decode_errors_total"`
	Duplicates   uint64 `json:"duplicates_total"`
	Late         uint64 `json:"late_total"`
	Dropped      uint64 `json:"dropped_total"`
	BrokerDrop   uint64 `json:"broker_dropped_total"`
	// BrokerLimits: the embedded broker's limit hits, by limit.
	BrokerLimits  map[string]uint64 `json:"broker_limit_hits,omitempty"`
	BrokerClients int               `json:"broker_clients"`
	Evicted       uint64            `json:"evicted_total"`
	ExprErrors    uint64            `json:"expression_errors_total"`
	RulesOff      int               `json:"rules_disabled"`

	OutboxDepth       int               `json:"outbox_depth"`
	OutboxDropped     uint64            `json:"outbox_dropped_total"`
	DeadLetters       int               `json:"dead_letters"`
	SetAside          uint64            `json:"set_aside_total"`
	AlertsTrimmed     uint64            `json:"alerts_trimmed_total"`
	StateRecoveredTo  string            `json:"state_recovered_to,omitempty"`
	UpstreamConnected bool              `json:"upstream_connected"`
	BrokerConnected   bool              `json:"broker_connected"`
	JournalLen        int               `json:"journal_length"`
	JournalCommits    uint64            `json:"journal_commits_total"`
	IngestRefused     map[string]uint64 `json:"ingest_refused_total"`
	EarlyCommits      uint64            `json:"journal_early_commits_total"`
	JournalSyncs      uint64            `json:"journal_syncs_total"`
	JournalDropped    uint64            `json:"journal_dropped_total"`
	PayloadBytes      uint64            `json:"payload_bytes_total"`
	DiskWritten       uint64            `json:"disk_written_bytes_total"`
	DiskWriteRate     float64           `json:"disk_write_bytes_per_second"`
	DiskWritesPerDay  float64           `json:"disk_write_bytes_per_day_estimate"`
	CommitRate        float64           `json:"journal_commits_per_second"`

	LastCheckpoint       *time.Time `json:"last_checkpoint"`
	CheckpointAgeSeconds *float64   `json:"checkpoint_age_seconds"`
	CheckpointSeconds    float64    `json:"checkpoint_duration_seconds"`
	CheckpointStall      float64    `json:"checkpoint_stall_seconds"`
	CheckpointBytes      int        `json:"checkpoint_bytes"`
	CheckpointErr        string     `json:"checkpoint_error,omitempty"`

	Watermark             *time.Time `json:"watermark"`
	WatermarkDelaySeconds *float64   `json:"watermark_delay_seconds"`
	ProcessLagSeconds     float64    `json:"process_lag_seconds"`

	Degraded  bool   `json:"degraded"`
	LastError string `json:"last_error,omitempty"`

	LastReload   *time.Time `json:"last_reload"`
	ReloadErrors []string   `json:"reload_errors"`
	Devices      int        `json:"devices"`

	Fleet *fleetJSON `json:"fleet"` // null without a fleet: block
}

type fleetJSON struct {
	Prefix       string     `json:"prefix"`
	RulesVersion string     `json:"rules_version"`
	RulesSHA256  string     `json:"rules_sha256"`
	RulesIssued  string     `json:"rules_issued"`
	RulesState   string     `json:"rules_state"`
	RulesErrors  []string   `json:"rules_errors"`
	RulesTime    *time.Time `json:"rules_time"`
}

func (s *Server) statusView() statusJSON {
	st := s.o.Source.Status()
	now := s.o.Now()
	v := statusJSON{
		Version: s.o.Version, Gateway: st.Gateway, Now: now.UTC(), Started: st.Started.UTC(),
		UptimeSeconds: secs(now.Sub(st.Started)),
		Messages:      st.Messages, Events: st.Events, Alerts: st.Alerts, DecodeErrors: st.DecodeErrors,
		Duplicates: st.Duplicates, Late: st.Late, Dropped: st.Dropped, BrokerDrop: st.BrokerDropped, BrokerLimits: st.BrokerLimits, BrokerClients: st.BrokerClients, Evicted: st.Evicted, ExprErrors: st.ExprErrors,
		RulesOff:    st.RulesDisabled,
		OutboxDepth: st.OutboxDepth, OutboxDropped: st.OutboxDropped,
		DeadLetters: st.DeadLetters, SetAside: st.SetAside, AlertsTrimmed: st.AlertsTrimmed, StateRecoveredTo: st.StateRecoveredTo,
		UpstreamConnected: st.UpstreamConnected, BrokerConnected: st.BrokerConnected, JournalLen: st.JournalLen, JournalCommits: st.JournalCommits,
		JournalSyncs: st.JournalSyncs, EarlyCommits: st.EarlyCommits, IngestRefused: st.IngestRefused, JournalDropped: st.JournalDropped, PayloadBytes: st.PayloadBytes,
		DiskWritten: st.DiskWritten, DiskWriteRate: st.DiskWriteRate, DiskWritesPerDay: st.DiskWriteRate * 86400, CommitRate: st.CommitRate,
		LastCheckpoint: optTime(st.LastCheckpoint), CheckpointSeconds: secs(st.CheckpointTook), CheckpointStall: secs(st.CheckpointStall),
		CheckpointBytes: st.CheckpointBytes, CheckpointErr: st.CheckpointErr,
		Watermark: optTime(st.Watermark), ProcessLagSeconds: secs(st.ProcessLag),
		Degraded: st.Degraded, LastError: st.LastError,
		LastReload: optTime(st.LastReload), ReloadErrors: st.ReloadErrors,
	}
	if v.ReloadErrors == nil {
		v.ReloadErrors = []string{}
	}
	if f := st.Fleet; f != nil {
		v.Fleet = &fleetJSON{Prefix: f.Prefix, RulesVersion: f.RulesVersion, RulesSHA256: f.RulesSHA256, RulesIssued: f.RulesIssued,
			RulesState: f.RulesState, RulesErrors: f.RulesErrors, RulesTime: optTime(f.RulesTime)}
		if v.Fleet.RulesErrors == nil {
			v.Fleet.RulesErrors = []string{}
		}
	}
	if !st.LastCheckpoint.IsZero() {
		a := secs(now.Sub(st.LastCheckpoint))
		v.CheckpointAgeSeconds = &a
	}
	if !st.Watermark.IsZero() {
		d := secs(now.Sub(st.Watermark))
		v.WatermarkDelaySeconds = &d
	}
	s.live.mu.Lock()
	v.Devices = len(s.live.devices)
	s.live.mu.Unlock()
	return v
}

func secs(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.statusView())
}

type ruleJSON struct {
	Name      string     `json:"name"`
	File      string     `json:"file"`
	Origin    string     `json:"origin"`                   // file | bundle
	Bundle    string     `json:"bundle_version,omitempty"` // for origin bundle
	Line      int        `json:"line"`
	Kind      string     `json:"kind"`
	From      []string   `json:"from"`
	Severity  string     `json:"severity,omitempty"`
	Events    uint64     `json:"events_total"`
	Alerts    uint64     `json:"alerts_total"`
	Errors    uint64     `json:"errors_total"`
	Late      uint64     `json:"late_total"`
	Evicted   uint64     `json:"evicted_total"`
	Keys      int        `json:"keys"`
	LastError string     `json:"last_error,omitempty"`
	Watermark *time.Time `json:"watermark"`
	Disabled  string     `json:"disabled,omitempty"`
}

func (s *Server) handleRules(w http.ResponseWriter, r *http.Request) {
	rs := s.o.Source.Rules()
	st := s.o.Source.Status()
	out := struct {
		Rules        []ruleJSON `json:"rules"`
		LastReload   *time.Time `json:"last_reload"`
		ReloadErrors []string   `json:"reload_errors"`
	}{Rules: make([]ruleJSON, 0, len(rs)), LastReload: optTime(st.LastReload), ReloadErrors: st.ReloadErrors}
	if out.ReloadErrors == nil {
		out.ReloadErrors = []string{}
	}
	for _, ri := range rs {
		from := ri.From
		if from == nil {
			from = []string{}
		}
		origin := ri.Origin
		if origin == "" {
			origin = "file"
		}
		out.Rules = append(out.Rules, ruleJSON{Name: ri.Name, File: ri.File, Origin: origin, Bundle: ri.Bundle, Line: ri.Line, Kind: ri.Kind,
			From: from, Severity: ri.Severity, Events: ri.Events, Alerts: ri.Alerts, Errors: ri.Errors,
			Late: ri.Late, Evicted: ri.Evicted, Keys: ri.Keys, LastError: ri.LastError, Watermark: optTime(ri.Watermark),
			Disabled: ri.Disabled})
	}
	writeJSON(w, http.StatusOK, out)
}

// alertJSON is an alert as the contract prints it, plus where it stands in
// the history.
type alertJSON struct {
	Seq int64 `json:"seq,omitempty"`
	event.Alert
	Received  *time.Time `json:"received,omitempty"`
	Delivered *time.Time `json:"delivered,omitempty"`
}

func alertView(a event.Alert) alertJSON {
	a.Values = jsonSafeMap(a.Values)
	if a.Values == nil {
		a.Values = map[string]any{}
	}
	return alertJSON{Alert: a}
}

// parseAlertQuery reads the filters of GET /api/alerts. Times are RFC 3339
// or a Go duration meaning that long before now ("since=1h").
func parseAlertQuery(q map[string][]string, now time.Time) (AlertQuery, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	aq := AlertQuery{Rule: get("rule"), Key: get("key"), Severity: get("severity"), State: get("state"), Limit: 100}
	switch aq.Severity {
	case "", "info", "warning", "critical":
	default:
		return aq, fmt.Errorf("severity: %q is not info, warning or critical", aq.Severity)
	}
	switch aq.State {
	case "", string(event.Firing), string(event.Resolved):
	default:
		return aq, fmt.Errorf("state: %q is not firing or resolved", aq.State)
	}
	var err error
	if aq.Since, err = parseTime(get("since"), now); err != nil {
		return aq, fmt.Errorf("since: %w", err)
	}
	if aq.Until, err = parseTime(get("until"), now); err != nil {
		return aq, fmt.Errorf("until: %w", err)
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return aq, fmt.Errorf("limit: %q is not a number from 1 to 1000", v)
		}
		aq.Limit = n
	}
	if v := get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return aq, fmt.Errorf("before: %q is not a positive sequence number", v)
		}
		aq.Before = n
	}
	return aq, nil
}

func parseTime(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := event.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 15m", v)
}

func (s *Server) handleAlerts(w http.ResponseWriter, r *http.Request) {
	q, err := parseAlertQuery(r.URL.Query(), s.o.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	entries, err := s.o.Source.Alerts(q)
	if err != nil {
		s.o.Logger.Warn("ui: read alert history", "err", err)
		writeError(w, http.StatusInternalServerError, "read alert history: "+err.Error())
		return
	}
	out := struct {
		Alerts     []alertJSON `json:"alerts"`
		NextBefore int64       `json:"next_before,omitempty"`
	}{Alerts: make([]alertJSON, 0, len(entries))}
	for _, e := range entries {
		a := alertView(e.Alert)
		a.Seq, a.Received, a.Delivered = e.Seq, optTime(e.Received), optTime(e.Delivered)
		out.Alerts = append(out.Alerts, a)
	}
	if len(entries) == q.Limit && len(entries) > 0 {
		out.NextBefore = entries[len(entries)-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Devices []Device `json:"devices"`
	}{s.live.devicesList()})
}

func (s *Server) handleSeries(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	since, err := parseTime(strings.TrimSpace(r.URL.Query().Get("since")), s.o.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "since: "+err.Error())
		return
	}
	pts, ok := s.live.series(key, since)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no device %q", key))
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Key    string  `json:"key"`
		Points []Point `json:"points"`
	}{key, pts})
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	err := s.o.Source.Reload()
	if err == nil {
		s.o.Logger.Info("ui: rules reloaded")
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "errors": []string{}})
		return
	}
	s.o.Logger.Warn("ui: reload failed", "err", err)
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"ok": false, "errors": splitErrors(err)})
}

// splitErrors turns a reload error into its lines, one problem each (an
// errors.Join prints one per line too).
func splitErrors(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		out = []string{"reload failed"}
	}
	return out
}

// jsonSafe replaces what encoding/json refuses (NaN, ±Inf) with null, so a
// detector's odd value cannot break a page.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil
		}
	case map[string]any:
		return jsonSafeMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonSafe(e)
		}
		return out
	}
	return v
}

func jsonSafeMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = jsonSafe(v)
	}
	return out
}
