package ui

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func scrape(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	w := do(t, s, "GET", "/metrics", nil)
	if w.Code != 200 {
		t.Fatalf("/metrics: %d %s", w.Code, w.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(w.Body.String()))
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// value finds the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, dto.MetricType, bool) {
	t.Helper()
	f := fams[name]
	if f == nil {
		return 0, 0, false
	}
	for _, m := range f.GetMetric() {
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), f.GetType(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), f.GetType(), true
		}
	}
	return 0, 0, false
}

func TestMetrics(t *testing.T) {
	src := newMemSource()
	s := newTestServer(t, "", src)
	s.PublishReading("pump-01", "t", t0, map[string]any{"v": 1.0})
	fams := scrape(t, s)
	C, G := dto.MetricType_COUNTER, dto.MetricType_GAUGE
	tests := []struct {
		name   string
		labels []string
		typ    dto.MetricType
		want   float64
	}{
		{"vigil_build_info", []string{"version", "v1.2.3"}, G, 1},
		{"vigil_start_time_seconds", nil, G, float64(t0.Unix() - 3600)},
		{"vigil_messages_received_total", nil, C, 1200},
		{"vigil_events_total", nil, C, 1180},
		{"vigil_alerts_total", nil, C, 7},
		{"vigil_decode_errors_total", nil, C, 3},
		{"vigil_duplicates_total", nil, C, 1},
		{"vigil_late_events_total", nil, C, 2},
		{"vigil_dropped_total", nil, C, 4},
		{"vigil_evicted_keys_total", nil, C, 5},
		{"vigil_expression_errors_total", nil, C, 6},
		{"vigil_outbox_depth", nil, G, 2},
		{"vigil_outbox_dropped_total", nil, C, 1},
		{"vigil_upstream_connected", nil, G, 0},
		{"vigil_broker_connected", nil, G, 1},
		{"vigil_broker_limit_hits_total", []string{"limit", "packet_too_large"}, C, 4},
		{"vigil_broker_limit_hits_total", []string{"limit", "login_failed"}, C, 9},
		{"vigil_broker_clients", nil, G, 12},
		{"vigil_journal_length", nil, G, 40},
		{"vigil_journal_commits_total", nil, C, 17},
		{"vigil_journal_syncs_total", nil, C, 9},
		{"vigil_journal_early_commits_total", nil, C, 2},
		{"vigil_ingest_refused_total", []string{"reason", "topic_too_long"}, C, 4},
		{"vigil_ingest_refused_total", []string{"reason", "payload_too_large"}, C, 1},
		{"vigil_journal_dropped_total", nil, C, 3},
		{"vigil_payload_bytes_total", nil, C, 84000},
		{"vigil_disk_written_bytes_total", nil, C, 262144},
		{"vigil_disk_write_bytes_per_second", nil, G, 250},
		{"vigil_disk_write_bytes_per_day_estimate", nil, G, 250 * 86400},
		{"vigil_journal_commits_per_second", nil, G, 18.5},
		{"vigil_last_checkpoint_timestamp_seconds", nil, G, float64(t0.Unix() - 30)},
		{"vigil_checkpoint_duration_seconds", nil, G, 0.012},
		{"vigil_checkpoint_stall_seconds", nil, G, 0.005},
		{"vigil_checkpoint_bytes", nil, G, 4096},
		{"vigil_watermark_timestamp_seconds", nil, G, float64(t0.UnixMilli()-1500) / 1e3},
		{"vigil_process_lag_seconds", nil, G, 0.02},
		{"vigil_degraded", nil, G, 0},
		{"vigil_reload_failed", nil, G, 0},
		{"vigil_ui_devices", nil, G, 1},
		{"vigil_rule_events_total", []string{"rule", "hot_motor"}, C, 900},
		{"vigil_rule_alerts_total", []string{"rule", "hot_motor"}, C, 5},
		{"vigil_rule_errors_total", []string{"rule", "hot_motor"}, C, 1},
		{"vigil_rule_alerts_total", []string{"rule", "heat_rising"}, C, 2},
		{"vigil_rule_late_events_total", []string{"rule", "heat_rising"}, C, 2},
		{"vigil_rule_evicted_keys_total", []string{"rule", "heat_rising"}, C, 5},
		{"vigil_rule_keys", []string{"rule", "heat_rising"}, G, 3},
		{"vigil_rule_watermark_timestamp_seconds", []string{"rule", "heat_rising"}, G, float64(t0.Unix())},
	}
	for _, tt := range tests {
		t.Run(tt.name+strings.Join(tt.labels, "="), func(t *testing.T) {
			v, typ, ok := value(t, fams, tt.name, tt.labels...)
			if !ok {
				t.Fatal("missing")
			}
			if typ != tt.typ || v != tt.want {
				t.Errorf("got %v (%v), want %v (%v)", v, typ, tt.want, tt.typ)
			}
		})
	}
	// A rule without a watermark yet has no sample rather than 1970.
	if _, _, ok := value(t, fams, "vigil_rule_watermark_timestamp_seconds", "rule", "hot_motor"); ok {
		t.Error("hot_motor has no watermark yet")
	}
	if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
		t.Error("runtime and process metrics missing")
	}

	// Read at scrape time: a change shows in the next scrape, a failed
	// reload flips vigil_reload_failed, and a duplicate rule name does not
	// break the scrape.
	src.mu.Lock()
	src.status.Events = 2000
	src.status.ReloadErrors = []string{"rules/a.yaml:1:1: bad"}
	src.rules = append(src.rules, src.rules[0])
	src.rules[1].Disabled = "any(...): memory budget exceeded"
	src.status.RulesDisabled = 1
	src.mu.Unlock()
	fams = scrape(t, s)
	if v, _, _ := value(t, fams, "vigil_events_total"); v != 2000 {
		t.Errorf("events after change: %v", v)
	}
	if v, _, _ := value(t, fams, "vigil_reload_failed"); v != 1 {
		t.Errorf("reload_failed: %v", v)
	}
	// A rule disabled over its expression budget.
	if v, _, _ := value(t, fams, "vigil_rule_disabled", "rule", "heat_rising"); v != 1 {
		t.Errorf("rule_disabled heat_rising: %v", v)
	}
	if v, _, ok := value(t, fams, "vigil_rule_disabled", "rule", "hot_motor"); v != 0 || !ok {
		t.Errorf("rule_disabled hot_motor: %v %v", v, ok)
	}
	if v, _, _ := value(t, fams, "vigil_rules_disabled"); v != 1 {
		t.Errorf("rules_disabled: %v", v)
	}
	w := do(t, s, "GET", "/api/rules", nil)
	if !strings.Contains(w.Body.String(), `"disabled":"any(...): memory budget exceeded"`) {
		t.Errorf("/api/rules: %s", w.Body)
	}
	if w := do(t, s, "GET", "/api/status", nil); !strings.Contains(w.Body.String(), `"rules_disabled":1`) {
		t.Errorf("/api/status: %s", w.Body)
	}
}
