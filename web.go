package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigil-gw/vigil/config"
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/gateway"
	"github.com/vigil-gw/vigil/store"
	"github.com/vigil-gw/vigil/ui"
)

// web serves the UI and HTTP API next to a gateway: it adapts the gateway
// and its store to what ui.Source asks, and feeds the live views.
type web struct {
	cfg *config.Config
	log *slog.Logger
	srv *ui.Server
	g   atomic.Pointer[gateway.Gateway]
}

// newWeb binds the HTTP listener (nil when http.listen is "off"), so a busy
// port or a missing token fails at start.
func newWeb(cfg *config.Config, log *slog.Logger) (*web, error) {
	if cfg.HTTP.Listen == "off" {
		return nil, nil
	}
	w := &web{cfg: cfg, log: log}
	token := ""
	if cfg.HTTP.TokenFile != "" {
		b, err := os.ReadFile(cfg.HTTP.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("http token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("http token_file %s is empty", cfg.HTTP.TokenFile)
		}
	}
	srv, err := ui.New(ui.Options{Listen: cfg.HTTP.Listen, Token: token, Source: w, Version: versionString(), Logger: log})
	if err != nil {
		return nil, err
	}
	w.srv = srv
	return w, nil
}

// hook feeds alerts and readings to the live views.
func (w *web) hook(o *gateway.Options) {
	o.OnAlert = w.srv.PublishAlert
	o.OnEvent = func(ev *event.Event) {
		w.srv.PublishReading(ev.Topic, ev.Topic, ev.Time, ev.Fields)
	}
}

func (w *web) run(ctx context.Context, g *gateway.Gateway, onListen func(string)) error {
	w.g.Store(g)
	if onListen != nil {
		onListen("http://" + w.srv.Addr() + "/")
	}
	return w.srv.Run(ctx)
}

// Status implements ui.Source.
func (w *web) Status() ui.Status {
	g := w.g.Load()
	if g == nil {
		return ui.Status{Gateway: w.cfg.Gateway, Started: time.Now()}
	}
	gs := g.Status()
	st := ui.Status{
		Gateway: w.cfg.Gateway, Started: gs.Started,
		Messages: gs.Messages, Events: gs.Events, Alerts: gs.Alerts,
		DecodeErrors: gs.DecodeErrors, Duplicates: gs.Duplicates, JournalCommits: gs.JournalCommits,
		JournalDropped: gs.JournalDropped, EarlyCommits: gs.EarlyCommits, PayloadBytes: gs.PayloadBytes,
		DiskWritten: gs.DiskWritten, DiskWriteRate: gs.DiskWriteRate, CommitRate: gs.CommitRate,
		LastCheckpoint: gs.LastCheckpoint, CheckpointTook: gs.CheckpointTook, CheckpointStall: gs.CheckpointStall,
		CheckpointBytes: gs.CheckpointBytes, CheckpointErr: gs.CheckpointErr,
		Watermark: gs.Watermark, ProcessLag: gs.ProcessLag, Degraded: gs.Degraded,
		LastReload: gs.LastReload, ReloadErrors: gs.ReloadErrors,
	}
	for _, r := range gs.Rules {
		st.Late += r.Late
		st.Evicted += r.Evicted
		st.ExprErrors += r.Errors
		if r.Disabled != "" {
			st.RulesDisabled++
		}
	}
	if gs.Degraded {
		st.LastError = "journal: " + gs.LastJournalErr
	}
	if s := g.Subscriber(); s != nil {
		ss := s.Stats()
		st.BrokerConnected = ss.Connected
		st.Dropped = ss.Dropped
		st.IngestRefused = ss.Refused
		if st.LastError == "" && ss.LastError != "" && !ss.Connected {
			st.LastError = "mqtt: " + ss.LastError
		}
	}
	if b := g.Broker(); b != nil {
		bs := b.Stats()
		st.BrokerDropped, st.BrokerLimits, st.BrokerClients = bs.Dropped, bs.Hits, bs.Clients
	}
	if f := g.Forwarder(); f != nil {
		fs := f.Stats()
		st.UpstreamConnected = fs.Connected
		if st.LastError == "" && fs.LastError != "" && !fs.Connected {
			st.LastError = "upstream: " + fs.LastError
		}
	}
	if fi, ok := g.Fleet(); ok {
		st.Fleet = &ui.FleetStatus{Prefix: fi.Prefix, RulesVersion: fi.Version, RulesSHA256: fi.SHA256, RulesIssued: fi.Issued, RulesState: "none"}
		if l := fi.Last; l != nil {
			st.Fleet.RulesState, st.Fleet.RulesErrors, st.Fleet.RulesTime = l.State, l.Errors, l.Time
		}
	}
	if db := g.DB(); db != nil {
		ds := db.Stats()
		st.OutboxDepth = ds.OutboxRows
		st.OutboxDropped = ds.Dropped
		st.JournalLen = ds.JournalRows
		st.JournalSyncs = ds.JournalSyncs
		st.AlertsTrimmed, st.SetAside, st.StateRecoveredTo = ds.Trimmed, ds.SetAside, ds.RecoveredTo
		st.DeadLetters, _ = db.DeadLetterCount()
		if st.LastError == "" && ds.LastError != "" && time.Since(ds.LastErrorAt) < 10*time.Minute {
			st.LastError = "state: " + ds.LastError
		}
	}
	return st
}

// Rules implements ui.Source.
func (w *web) Rules() []ui.RuleInfo {
	g := w.g.Load()
	if g == nil {
		return nil
	}
	var out []ui.RuleInfo
	// A rule of a pushed bundle has the bundle's file name; local rule
	// files never share one (gateway.loadRules refuses it).
	fi, _ := g.Fleet()
	for _, r := range g.Status().Rules {
		origin, bundle := "file", ""
		if slices.Contains(fi.Files, r.File) {
			origin, bundle = "bundle", fi.Version
		}
		out = append(out, ui.RuleInfo{Name: r.Name, File: r.File, Origin: origin, Bundle: bundle, Line: r.Line, Kind: string(r.Kind),
			From: r.From, Severity: r.Severity, Events: r.Events, Alerts: r.Alerts, Errors: r.Errors,
			Late: r.Late, Evicted: r.Evicted, Keys: r.Keys, LastError: r.LastError, Watermark: r.Watermark,
			Disabled: r.Disabled})
	}
	return out
}

// Alerts implements ui.Source.
func (w *web) Alerts(q ui.AlertQuery) ([]ui.AlertEntry, error) {
	g := w.g.Load()
	if g == nil {
		return nil, nil
	}
	hs, err := g.DB().History(store.Query{Rule: q.Rule, Key: q.Key, Severity: q.Severity, State: q.State,
		Since: q.Since, Until: q.Until, Limit: q.Limit, Before: q.Before})
	if err != nil {
		return nil, err
	}
	out := make([]ui.AlertEntry, len(hs))
	for i, h := range hs {
		out[i] = ui.AlertEntry{Seq: h.Seq, Alert: h.Alert, Received: h.Received, Delivered: h.Delivered}
	}
	return out, nil
}

// DeadLetters implements ui.Source.
func (w *web) DeadLetters() ([]ui.DeadLetter, error) {
	g := w.g.Load()
	if g == nil {
		return nil, nil
	}
	dls, err := g.DB().DeadLetters(0)
	if err != nil {
		return nil, err
	}
	out := make([]ui.DeadLetter, len(dls))
	for i, d := range dls {
		out[i] = ui.DeadLetter{Alert: d.Alert, Reason: d.Reason, Attempts: d.Attempts, At: d.At}
	}
	return out, nil
}

// RetryDeadLetters implements ui.Source: the alerts go back to the outbox's
// end and the forwarder is woken.
func (w *web) RetryDeadLetters(ids []string) (int, error) {
	g := w.g.Load()
	if g == nil {
		return 0, fmt.Errorf("not running yet")
	}
	if len(ids) > store.DeadLetterMax {
		return 0, fmt.Errorf("%w: %d ids; at most %d at once", ui.ErrBadRequest, len(ids), store.DeadLetterMax)
	}
	n, err := g.DB().RetryDeadLetters(ids)
	if err == nil && n > 0 {
		g.NotifyOutbox()
	}
	return n, err
}

// Reload implements ui.Source.
func (w *web) Reload() error {
	g := w.g.Load()
	if g == nil {
		return fmt.Errorf("not running yet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return g.Reload(ctx)
}
