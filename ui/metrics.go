package ui

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// collector reads Status and Rules at scrape time, so /metrics and the UI
// show the same numbers and no code elsewhere updates global counters. A
// rule's counters restart when a reload rebuilds it: Prometheus' rate()
// treats that as a counter reset.
type collector struct {
	s *Server
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("vigil_"+name, help, labels, nil)
}

var (
	dBuild        = desc("build_info", "Always 1; the version label tells the running build.", "version")
	dStarted      = desc("start_time_seconds", "When the gateway started, Unix seconds.")
	dMessages     = desc("messages_received_total", "MQTT messages received.")
	dEvents       = desc("events_total", "Events decoded and processed.")
	dAlerts       = desc("alerts_total", "Alerts produced.")
	dDecodeErrors = desc("decode_errors_total", "Payloads that could not be decoded.")
	dDuplicates   = desc("duplicates_total", "Events dropped by a source's dedupe.")
	dLate         = desc("late_events_total", "Events dropped as late, all rules.")
	dDropped      = desc("dropped_total", "Messages dropped because a queue was full.")
	dBrokerDrop   = desc("broker_dropped_total", "Messages the embedded broker dropped (a client past its in-flight limit, or not reading).")
	dBrokerLimit  = desc("broker_limit_hits_total", "Times a limit of the embedded broker refused something, by limit (docs/operations.md, Limits).", "limit")
	dBrokerConns  = desc("broker_clients", "Open connections to the embedded broker.")
	dEvicted      = desc("evicted_keys_total", "Keys evicted by the per-rule key caps, all rules.")
	dExprErrors   = desc("expression_errors_total", "Expression errors, all rules (treated as false).")
	dOutbox       = desc("outbox_depth", "Alerts waiting in the outbox for upstream.")
	dOutboxDrop   = desc("outbox_dropped_total", "Alerts dropped by the outbox bound.")
	dUpstream     = desc("upstream_connected", "1 when the upstream MQTT connection is up.")
	dBroker       = desc("broker_connected", "1 when the subscriber's MQTT connection is up.")
	dJournal      = desc("journal_length", "Journaled messages not yet covered by a checkpoint.")
	dJournalTx    = desc("journal_commits_total", "Journal commits: each one write of the disk (state.commit_gap spaces them).")
	dRefused      = desc("ingest_refused_total", "Messages refused at the door: a topic or payload over limits.max_topic_length or limits.max_payload (acknowledged and dropped).", "reason")
	dEarlyCommit  = desc("journal_early_commits_total", "Journal commits made before state.commit_gap because a sender waited for acknowledgements (a broker's in-flight window).")
	dJournalSync  = desc("journal_syncs_total", "fsyncs of the journal's files: commits holding a QoS 1 message, and new segment files.")
	dJournalDrop  = desc("journal_dropped_total", "QoS 0 messages dropped because the journal could not be written.")
	dPayload      = desc("payload_bytes_total", "Payload bytes of the messages journaled.")
	dDiskWritten  = desc("disk_written_bytes_total", "Bytes the process wrote to disk (/proc/self/io write_bytes): what wears an SD card.")
	dDiskRate     = desc("disk_write_bytes_per_second", "Bytes written to disk a second, over the last minute.")
	dDiskDay      = desc("disk_write_bytes_per_day_estimate", "Bytes a day at the last minute's rate.")
	dCommitRate   = desc("journal_commits_per_second", "Journal commits a second, over the last minute.")
	dCheckpointTS = desc("last_checkpoint_timestamp_seconds", "When the last checkpoint was taken, Unix seconds (absent before the first).")
	dCheckpointD  = desc("checkpoint_duration_seconds", "How long the last checkpoint took (snapshot and write).")
	dCheckpointS  = desc("checkpoint_stall_seconds", "How long message processing waited for the last checkpoint (its snapshot).")
	dCheckpointB  = desc("checkpoint_bytes", "Size of the last checkpoint.")
	dWatermark    = desc("watermark_timestamp_seconds", "The smallest rule watermark, Unix seconds (absent before the first event).")
	dLag          = desc("process_lag_seconds", "Gateway clock minus the receive time of the last processed message.")
	dDegraded     = desc("degraded", "1 when the journal cannot be written: QoS 1 messages are held unacknowledged, QoS 0 messages dropped.")
	dReloadFailed = desc("reload_failed", "1 when the last rule reload failed (the old rules keep running).")
	dDevices      = desc("ui_devices", "Devices the UI keeps recent values of.")

	dRuleEvents  = desc("rule_events_total", "Events that reached the rule.", "rule")
	dRuleAlerts  = desc("rule_alerts_total", "Alerts the rule produced.", "rule")
	dRuleErrors  = desc("rule_errors_total", "Expression errors of the rule.", "rule")
	dRuleLate    = desc("rule_late_events_total", "Late events the rule dropped.", "rule")
	dRuleEvicted = desc("rule_evicted_keys_total", "Keys the rule's key cap evicted.", "rule")
	dRuleKeys    = desc("rule_keys", "Keys holding state in the rule.", "rule")
	dRuleWM      = desc("rule_watermark_timestamp_seconds", "The rule's watermark, Unix seconds.", "rule")
	dRuleOff     = desc("rule_disabled", "1 when the rule was disabled at run time: an expression over its budget (until the rules are reloaded).", "rule")
	dRulesOff    = desc("rules_disabled", "Rules disabled at run time: an expression over its budget.")
	dDead        = desc("dead_letters", "Alerts upstream refused again and again, set aside for the operator.")
	dSetAside    = desc("alerts_set_aside_total", "Alerts set aside because upstream kept refusing them.")
	dTrimmed     = desc("alerts_trimmed_total", "Alerts stored trimmed to upstream.max_alert_bytes.")
	dRecovered   = desc("state_recovered", "1 when the state database was found damaged at start and set aside (vigil began with empty state).")
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dBuild, dStarted, dMessages, dEvents, dAlerts, dDecodeErrors,
		dDuplicates, dLate, dDropped, dBrokerDrop, dBrokerLimit, dBrokerConns, dEvicted, dExprErrors, dOutbox, dOutboxDrop, dUpstream, dBroker,
		dJournal, dJournalTx, dRefused, dEarlyCommit, dJournalSync, dJournalDrop, dPayload, dDiskWritten, dDiskRate, dDiskDay, dCommitRate, dCheckpointTS, dCheckpointD, dCheckpointB, dWatermark, dLag, dDegraded, dReloadFailed,
		dDevices, dRuleEvents, dRuleAlerts, dRuleErrors, dRuleLate, dRuleEvicted, dRuleKeys, dRuleWM, dRuleOff, dRulesOff, dDead, dSetAside, dTrimmed, dRecovered} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.o.Source.Status()
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge(dBuild, 1, c.s.o.Version)
	if !st.Started.IsZero() {
		gauge(dStarted, float64(st.Started.UnixMilli())/1e3)
	}
	counter(dMessages, st.Messages)
	counter(dEvents, st.Events)
	counter(dAlerts, st.Alerts)
	counter(dDecodeErrors, st.DecodeErrors)
	counter(dDuplicates, st.Duplicates)
	counter(dLate, st.Late)
	counter(dDropped, st.Dropped)
	counter(dBrokerDrop, st.BrokerDropped)
	if st.BrokerLimits != nil {
		for name, n := range st.BrokerLimits {
			counter(dBrokerLimit, n, name)
		}
		gauge(dBrokerConns, float64(st.BrokerClients))
	}
	counter(dEvicted, st.Evicted)
	counter(dExprErrors, st.ExprErrors)
	gauge(dOutbox, float64(st.OutboxDepth))
	counter(dOutboxDrop, st.OutboxDropped)
	gauge(dUpstream, b(st.UpstreamConnected))
	gauge(dBroker, b(st.BrokerConnected))
	gauge(dJournal, float64(st.JournalLen))
	counter(dJournalTx, st.JournalCommits)
	counter(dEarlyCommit, st.EarlyCommits)
	for _, why := range []string{"topic_too_long", "payload_too_large"} {
		counter(dRefused, st.IngestRefused[why], why)
	}
	counter(dJournalSync, st.JournalSyncs)
	counter(dJournalDrop, st.JournalDropped)
	counter(dPayload, st.PayloadBytes)
	counter(dDiskWritten, st.DiskWritten)
	gauge(dDiskRate, st.DiskWriteRate)
	gauge(dDiskDay, st.DiskWriteRate*86400)
	gauge(dCommitRate, st.CommitRate)
	if !st.LastCheckpoint.IsZero() {
		gauge(dCheckpointTS, float64(st.LastCheckpoint.UnixMilli())/1e3)
	}
	gauge(dCheckpointD, st.CheckpointTook.Seconds())
	gauge(dCheckpointS, st.CheckpointStall.Seconds())
	gauge(dCheckpointB, float64(st.CheckpointBytes))
	if !st.Watermark.IsZero() {
		gauge(dWatermark, float64(st.Watermark.UnixMilli())/1e3)
	}
	gauge(dLag, st.ProcessLag.Seconds())
	gauge(dDegraded, b(st.Degraded))
	gauge(dReloadFailed, b(len(st.ReloadErrors) > 0))
	gauge(dRulesOff, float64(st.RulesDisabled))
	gauge(dDead, float64(st.DeadLetters))
	counter(dSetAside, st.SetAside)
	counter(dTrimmed, st.AlertsTrimmed)
	gauge(dRecovered, b(st.StateRecoveredTo != ""))
	c.s.live.mu.Lock()
	n := len(c.s.live.devices)
	c.s.live.mu.Unlock()
	gauge(dDevices, float64(n))

	seen := map[string]bool{}
	for _, r := range c.s.o.Source.Rules() {
		if seen[r.Name] { // names are unique; a duplicate would fail the whole scrape
			continue
		}
		seen[r.Name] = true
		counter(dRuleEvents, r.Events, r.Name)
		counter(dRuleAlerts, r.Alerts, r.Name)
		counter(dRuleErrors, r.Errors, r.Name)
		counter(dRuleLate, r.Late, r.Name)
		counter(dRuleEvicted, r.Evicted, r.Name)
		gauge(dRuleKeys, float64(r.Keys), r.Name)
		gauge(dRuleOff, b(r.Disabled != ""), r.Name)
		if !r.Watermark.IsZero() {
			gauge(dRuleWM, float64(r.Watermark.UnixMilli())/1e3, r.Name)
		}
	}
}

// metricsHandler serves vigil's collector plus the Go runtime and process
// collectors (memory on a 1 GB Pi is worth watching) from a registry of its
// own, so two Servers in one process (tests) never clash.
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil, MaxRequestsInFlight: 2})
}
