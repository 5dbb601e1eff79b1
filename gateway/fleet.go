package gateway

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/engine"
	"github.com/vigil-gw/vigil/fleet"
	"github.com/vigil-gw/vigil/internal/cputime"
	"github.com/vigil-gw/vigil/rules"
)

// fleetState is the gateway's side of the fleet (config `fleet:`,
// docs/fleet.md): the agent that publishes status and health over the
// upstream connection and decides which pushed bundle runs, and the
// bundle's files, which the engine runs beside the local rule files.
type fleetState struct {
	agent *fleet.Agent
	// files is the bundle running (by file name), nil for none. Owned by
	// the engine loop, and by New before the loop starts.
	files   map[string]string
	applies chan fleetApply
}

// fleetApply asks the engine loop to run a bundle's files.
type fleetApply struct {
	files map[string]string
	reply chan error
}

// initRules loads the rules New starts with: the local rule files and,
// with a fleet, the last good bundle kept in rules_dir. A stored bundle
// that no longer loads beside the local files is set aside (and reported)
// rather than stopping the start.
func (g *Gateway) initRules() (*rules.Set, error) {
	fc := g.cfg.Fleet
	if !fc.Enabled {
		return rules.Load(g.cfg.Rules...)
	}
	keys, err := fleet.LoadKeys(fc.PublicKeys)
	if err != nil {
		return nil, fmt.Errorf("fleet public_keys: %w", err)
	}
	if len(keys) == 0 {
		g.log.Warn("fleet: no public_keys: every pushed bundle is refused")
	}
	agent, err := fleet.New(fleet.Options{Gateway: g.cfg.Gateway, Prefix: fc.Prefix, Version: g.o.Version, Keys: keys,
		Store: fleet.Store{Dir: fc.RulesDir}, Publisher: fleetPublisher{g}, Apply: g.applyBundle,
		Health: g.fleetHealth, HealthEvery: fc.HealthEvery, Logger: g.log, Now: g.o.Now})
	if err != nil {
		return nil, err
	}
	g.fleet = &fleetState{agent: agent, applies: make(chan fleetApply)}
	g.fleet.files = agent.Stored()
	set, err := g.loadRules()
	if err != nil && g.fleet.files != nil {
		agent.StoredFailed(err)
		g.fleet.files = nil
		set, err = g.loadRules()
	}
	return set, err
}

// loadRules reads the local rule files and, with a fleet, adds the running
// bundle's files under their own names, checked as `vigil check` does. It
// is what a reload (SIGHUP, a changed file, a pushed bundle) loads.
func (g *Gateway) loadRules() (*rules.Set, error) {
	if g.fleet == nil {
		return rules.Load(g.cfg.Rules...)
	}
	names, errs := rules.Expand(g.cfg.Rules)
	if len(g.cfg.Rules) > 0 && len(names) == 0 && len(errs) == 0 {
		// As rules.Load: an empty directory is a deploy in progress or
		// a mistake, never a rule set to switch to.
		errs = append(errs, rules.Error{Pos: rules.Pos{File: strings.Join(g.cfg.Rules, ","), Line: 1, Col: 1}, Msg: "no rule files (*.yaml, *.yml) found"})
	}
	srcs := make(map[string][]byte, len(names)+len(g.fleet.files))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			errs = append(errs, rules.Error{Pos: rules.Pos{File: n, Line: 1, Col: 1}, Msg: fmt.Sprintf("read: %v", err)})
			continue
		}
		srcs[n] = b
	}
	bundle := make([]string, 0, len(g.fleet.files))
	for name := range g.fleet.files {
		bundle = append(bundle, name)
	}
	slices.Sort(bundle)
	for _, name := range bundle {
		if _, clash := srcs[name]; clash {
			errs = append(errs, rules.Error{Pos: rules.Pos{File: name, Line: 1, Col: 1}, Msg: "bundle file has the name of a local rule file"})
			continue
		}
		names = append(names, name)
		srcs[name] = []byte(g.fleet.files[name])
	}
	if len(errs) > 0 {
		return nil, errs
	}
	set, cerrs, err := engine.CheckFiles(names, srcs)
	if err != nil {
		return nil, err
	}
	if len(cerrs) > 0 {
		return nil, cerrs
	}
	return set, nil
}

// applyBundle is the agent's ApplyFunc: the engine loop reloads with files
// as the bundle, and on failure keeps the old bundle and rules.
func (g *Gateway) applyBundle(ctx context.Context, files map[string]string) error {
	req := fleetApply{files: files, reply: make(chan error, 1)}
	select {
	case g.fleet.applies <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fleetApplies is the engine loop's queue of bundles (nil without a fleet:
// never ready).
func (g *Gateway) fleetApplies() <-chan fleetApply {
	if g.fleet == nil {
		return nil
	}
	return g.fleet.applies
}

// applyFleet runs on the engine loop: a rule reload with the bundle's
// files, state kept as for any reload.
func (g *Gateway) applyFleet(files map[string]string) error {
	prev := g.fleet.files
	g.fleet.files = files
	if err := g.reload(); err != nil {
		g.fleet.files = prev
		return err
	}
	return nil
}

// fleetPublisherOptions give the upstream connection the fleet's will,
// status on connect and stop, and rules subscriptions.
func (g *Gateway) fleetPublisherOptions() conn.PublisherOptions {
	if g.fleet == nil {
		return conn.PublisherOptions{}
	}
	a := g.fleet.agent
	topic, will := a.Will()
	return conn.PublisherOptions{WillTopic: topic, WillPayload: will, OnConnect: a.Connected,
		Filters: a.Filters(), OnMessage: a.Receive, OnStop: a.Goodbye}
}

// Fleet returns what the UI shows of the fleet rules; false without a
// fleet.
func (g *Gateway) Fleet() (fleet.Info, bool) {
	if g.fleet == nil {
		return fleet.Info{}, false
	}
	return g.fleet.agent.Info(), true
}

// fleetPublisher publishes over the upstream connection.
type fleetPublisher struct{ g *Gateway }

func (p fleetPublisher) PublishRetained(ctx context.Context, topic string, payload []byte) error {
	if p.g.pub == nil {
		return conn.ErrNotConnected
	}
	return p.g.pub.PublishRetained(ctx, topic, payload)
}

// fleetHealth is the health payload: the counters of /api/status.
func (g *Gateway) fleetHealth() fleet.Health {
	st := g.Status()
	h := fleet.Health{UptimeSeconds: g.o.Now().Sub(st.Started).Seconds(), Messages: st.Messages, Events: st.Events,
		Alerts: st.Alerts, DecodeErrors: st.DecodeErrors, ProcessLagSeconds: st.ProcessLag.Seconds(),
		RSSBytes: rss(), CPUSeconds: cputime.Now().Seconds()}
	for _, r := range st.Rules {
		h.Late += r.Late
	}
	if g.sub != nil {
		h.Dropped = g.sub.Stats().Dropped
	}
	ds := g.db.Stats()
	h.OutboxDepth, h.JournalLength = ds.OutboxRows, ds.JournalRows
	return h
}

// rss is the process's resident memory in bytes (Linux; 0 elsewhere).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}
