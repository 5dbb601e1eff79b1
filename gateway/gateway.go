// Package gateway runs vigil as a live appliance: MQTT in, journal, engine,
// outbox, upstream, web UI. It owns the goroutines and their queues; the
// engine itself stays single-threaded and clock-free.
//
//	subscriber ─(bounded queue)─> journal writer ─(batches)─> engine loop ─(alerts, snapshots)─> store writer ─> forwarder ─> upstream
//	                                 │ append + commit, then ack          │ ticks, reloads,          │ outbox, history,
//	                                                                      │ checkpoint snapshots     │ checkpoint writes
//
// The subscriber's callback only copies into a bounded queue. The journal
// writer groups the messages that arrived meanwhile into one transaction,
// acknowledges them after the commit, and hands the batch to the
// engine loop, which is the only goroutine touching the engine. The engine
// loop never waits for SQLite: the store writer (writer.go) stores its
// alerts and saves its checkpoints, in its order. Gateway.Run starts every
// one of these goroutines, in one errgroup, and stops them in this order
// (its comment; docs/design.md).
package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigil-gw/vigil/broker"
	"github.com/vigil-gw/vigil/config"
	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/engine"
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/store"
)

const (
	// maxBatch caps the messages of one journal transaction. A batch is
	// what arrived during the previous commit, so under light load it
	// stays small (latency is unaffected); under a flood, each commit's
	// fixed cost (fsync, waking the engine and the PUBACK writer, and the
	// devices waking on their PUBACKs) is shared by more messages. 4,000
	// instead of 1,000: vigil -8 % CPU a message at QoS 1 when devices keep
	// enough in flight (BENCHMARKS.md, session 15).
	maxBatch = 4000
	// tickEvery is the gateway-clock advance of windows and deadlines.
	tickEvery = time.Second
)

// Options configure a Gateway.
type Options struct {
	Config  *config.Config
	Logger  *slog.Logger
	Version string
	// OnAlert, if set, sees every alert after it is stored (the demo prints
	// them). It must not block.
	OnAlert func(event.Alert)
	// OnEvent, if set, sees every decoded event (the UI's live values).
	// It runs on the engine loop: it must be quick and must not keep the
	// map.
	OnEvent func(ev *event.Event)
	// Now is the gateway clock; default time.Now.
	Now func() time.Time
}

// Gateway is one running vigil.
type Gateway struct {
	o      Options
	cfg    *config.Config
	log    *slog.Logger
	db     *store.DB
	eng    *engine.Engine
	sub    Ingest
	in     *inline // the ingest when it is in-process, else nil
	pub    *conn.Publisher
	fwd    *conn.Forwarder
	brk    *broker.Broker
	notify chan struct{}
	outbox *outbox // the forwarder's view of the database

	batches chan []journaled
	reloads chan chan error

	store *storeWriter // alerts and checkpoints into the database
	fleet *fleetState  // nil without a fleet: block (fleet.go)

	// The journal writer's.
	keys keyer
	recs []store.Message // a batch's journal rows, reused

	// Owned by the engine loop.
	lastPos uint64          // newest durable journal position processed
	cpFrom  uint64          // lastPos at the last checkpoint's snapshot
	cpAt    time.Time       // when that snapshot was taken
	dirty   bool            // state changed since the last checkpoint
	toStore chan<- storeJob // the store writer's queue while engineLoop runs
	limit   limiter
	disk    diskRate

	mu     sync.Mutex
	status Status
	start  time.Time
	// statusSig wakes whoever waits for a status (tests) at each change.
	statusSig signal
}

// journaled is a message with its journal position.
type journaled struct {
	m       engine.Message
	durable bool // in the journal: a checkpoint may cover it
}

// Status is what the UI and logs show of the pipeline.
type Status struct {
	Started         time.Time
	Messages        uint64
	Events          uint64
	Alerts          uint64
	DecodeErrors    uint64
	Duplicates      uint64
	Redelivered     uint64
	JournalErrors   uint64
	JournalCommits  uint64  // journal transactions: each is a write (and, with a QoS 1 message in it, an fsync) of the disk
	EarlyCommits    uint64  // of which committed before state.commit_gap because a sender waited for acknowledgements
	PayloadBytes    uint64  // payload bytes of the messages journaled
	DiskWritten     uint64  // bytes the process has written to disk (/proc/self/io write_bytes)
	DiskWriteRate   float64 // of which a second, over the last minute
	CommitRate      float64 // journal commits a second, over the last minute
	LastJournalErr  string
	Degraded        bool   // journal not writable: QoS 1 held unacknowledged, QoS 0 dropped
	JournalDropped  uint64 // QoS 0 messages dropped while the journal could not be written
	LastPos         uint64
	LastCheckpoint  time.Time
	CheckpointTook  time.Duration // snapshot and write
	CheckpointStall time.Duration // of which the engine loop waited (the snapshot)
	CheckpointBytes int
	CheckpointErr   string
	Rules           []engine.RuleInfo
	Reloads         int // reload attempts, good or bad
	ReloadErrors    []string
	LastReload      time.Time
	Watermark       time.Time // newest event time seen
	ProcessLag      time.Duration
	RecoveredFrom   string
	Replayed        int
}

// New opens the state database, loads the rules, restores the last
// checkpoint and replays the journal after it. Nothing is connected yet.
func New(o Options) (*Gateway, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cfg := o.Config
	g := &Gateway{o: o, cfg: cfg, log: o.Logger, notify: make(chan struct{}, 1),
		batches: make(chan []journaled, 4), reloads: make(chan chan error)}
	g.start = o.Now()
	set, err := g.initRules()
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	eng, err := engine.New(set, g.engineOptions())
	if err != nil {
		return nil, fmt.Errorf("build rules: %w", err)
	}
	g.eng = eng
	// DedupWindow remembers the journal ids of messages a checkpoint has
	// already covered, so a QoS 1 message whose ack was lost in a crash or a
	// disconnect is recognised when the broker sends it again. Our ids hold
	// the packet id and a hash of topic and payload (dedupKey), which a new
	// message repeats only by coincidence within the window.
	so := cfg.State.Options
	so.Synchronous, so.DedupWindow, so.MaxAlertBytes = "FULL", 2*time.Minute, cfg.Upstream.MaxAlertBytes
	db, err := store.Open(so)
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	g.db = db
	g.store = newStoreWriter(db, g.notify, o.OnAlert, g.log)
	if moved, ok := db.Recovered(); ok {
		g.log.Error("state database was damaged: moved aside, starting with empty state", "moved_to", moved)
		g.status.RecoveredFrom = moved
	}
	if err := g.recover(); err != nil {
		db.Close()
		return nil, err
	}
	// What recovery replayed counts toward the next checkpoint.
	g.cpFrom, g.cpAt = db.Stats().CheckpointPos, o.Now()
	// The connections are built here, not in Run, so that Status and the
	// accessors below never race with their creation.
	if err := g.connect(); err != nil {
		db.Close()
		return nil, err
	}
	return g, nil
}

// connect builds (without connecting) the embedded broker, the subscriber,
// and the upstream publisher and forwarder.
func (g *Gateway) connect() error {
	cfg := g.cfg
	if cfg.Broker.Listen != "" {
		b, err := g.newBroker()
		if err != nil {
			return err
		}
		g.brk = b
	}
	limits := cfg.Limits.IngestLimits
	if cfg.MQTT.InProcess && g.brk != nil {
		in, err := newInline(g.brk, g.eng.Rules().Filters(), cfg.MQTT.Queue)
		if err != nil {
			return fmt.Errorf("mqtt: %w", err)
		}
		in.limits, in.log = limits, g.log
		g.sub, g.in = in, in
	} else {
		subOpts, err := g.connOptions(cfg.MQTT.Options, cfg.MQTT.PasswordFile, cfg.MQTT.TLS)
		if err != nil {
			return err
		}
		sub, err := conn.NewSubscriberWith(subOpts, g.eng.Rules().Filters(), cfg.MQTT.Queue, conn.SubscriberOptions{Limits: limits, ReadPace: readPace(cfg.State.CommitGap)})
		if err != nil {
			return fmt.Errorf("mqtt: %w", err)
		}
		g.sub = sub
	}
	if cfg.Upstream.Broker != "" {
		upOpts, err := g.connOptions(cfg.Upstream.Options, cfg.Upstream.PasswordFile, cfg.Upstream.TLS)
		if err != nil {
			return err
		}
		pub, err := conn.NewPublisherWith(upOpts, g.fleetPublisherOptions())
		if err != nil {
			return fmt.Errorf("upstream: %w", err)
		}
		g.pub = pub
		fo := cfg.Upstream.ForwarderOptions
		fo.Notify, fo.Logger, fo.QoS0 = g.notify, g.log, cfg.Upstream.QoS == 0
		g.outbox = newOutbox(g.db)
		g.fwd = conn.NewForwarder(g.outbox, pub, fo)
	}
	return nil
}

func (g *Gateway) engineOptions() engine.Options {
	o := g.cfg.EngineOptions()
	o.Logger, o.OnEvent = g.log, g.o.OnEvent
	return o
}

// recover restores the checkpoint and replays the journal after it through
// the engine. Alerts it produces again carry the ids they had, and the
// outbox ignores ids it has seen.
func (g *Gateway) recover() error {
	t0 := time.Now()
	cp, ok, err := g.db.LoadCheckpoint()
	if err != nil {
		g.log.Error("checkpoint unreadable: starting from an empty state", "err", err)
		ok = false
	}
	if ok {
		for _, n := range g.eng.Restore(cp.Parts) {
			g.log.Warn("checkpoint: "+n, "op", "restore")
		}
		g.status.LastPos = cp.Pos
		g.status.LastCheckpoint = cp.Taken
	}
	var pending []event.Alert
	n := 0
	err = g.db.Journal(g.status.LastPos, func(m store.Message) error {
		alerts, _ := g.eng.Process(engine.Message{Topic: m.Topic, Payload: m.Payload, Received: m.Received, Seq: m.Pos})
		pending = append(pending, alerts...)
		g.status.LastPos = m.Pos
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay journal: %w", err)
	}
	if len(pending) > 0 {
		if _, err := g.db.Put(pending); err != nil {
			// A full disk must not stop the start: the alerts wait in
			// memory like any others the store cannot take yet.
			g.log.Error("outbox: cannot store recovered alerts, holding them in memory", "err", err, "alerts", len(pending))
			g.store.unstored = pending
		}
	}
	g.status.Replayed = n
	g.lastPos = g.status.LastPos
	g.eng.ResetClock(g.o.Now())
	if ok || n > 0 {
		g.log.Info("state recovered", "checkpoint_pos", cp.Pos, "journal_replayed", n, "took", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// Run connects and processes until ctx ends, then stops cleanly: the
// ingest first, then the queued messages, a final checkpoint, and the
// outbox is flushed or kept. It returns the first error of its parts.
//
// Run owns every goroutine of the gateway: it starts them here, in one
// errgroup, and returns once all have returned. Each stage of the pipeline
// stops when the one feeding it has returned, so nothing queued is lost:
//
//  1. ctx ends, or a part fails: the ingest (subscriber or in-process)
//     stops taking messages and the rule watcher stops;
//  2. the ingest has returned: the journal writer commits and acknowledges
//     what it queued, and returns;
//  3. the journal writer has returned: no more acks come, so the releaser
//     (in-process ingest) writes the last PUBACKs; the engine loop
//     processes the last batches and takes the final checkpoint;
//  4. the engine loop has returned: the store writer stores its last
//     alerts and the final checkpoint, and returns;
//  5. the store writer has returned: the forwarder has up to flushWait to
//     send what the outbox holds while upstream is connected; then the
//     publisher (disconnecting cleanly, with a fleet after its "offline"
//     status), the forwarder and the fleet agent stop.
//
// Then, every goroutine done, the embedded broker closes and last the
// database.
func (g *Gateway) Run(ctx context.Context) error {
	defer g.db.Close()
	cfg := g.cfg
	if g.brk != nil {
		if err := g.brk.Start(); err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		g.log.Info("embedded broker listening", "addr", g.brk.Addr())
		defer func() {
			if err := g.brk.Close(); err != nil {
				g.log.Warn("embedded broker", "err", err)
			}
		}()
	}
	mqttFrom := cfg.MQTT.Broker
	if g.in != nil {
		mqttFrom = "in-process from the embedded broker"
	}
	g.log.Info("vigil running", "gateway", cfg.Gateway, "rules", len(g.eng.Rules().Rules), "subscriptions", strings.Join(g.eng.Rules().Filters(), " "), "mqtt", mqttFrom, "upstream", cfg.Upstream.Broker, "state", cfg.State.Path)

	eg, egCtx := errgroup.WithContext(ctx)
	// Each stage's context ends when the stage before it has returned; the
	// upstream's when the outbox is flushed (or flushWait has passed).
	ingestEnded, endIngest := context.WithCancel(context.WithoutCancel(ctx))
	journalEnded, endJournal := context.WithCancel(context.WithoutCancel(ctx))
	engineEnded, endEngine := context.WithCancel(context.WithoutCancel(ctx))
	upCtx, stopUp := context.WithCancel(context.WithoutCancel(ctx))

	eg.Go(func() error {
		defer endIngest()
		if err := g.sub.Run(egCtx); err != nil {
			return fmt.Errorf("mqtt: %w", err)
		}
		if egCtx.Err() == nil {
			return errIngestEnded // the pipeline behind it stops too: so does Run
		}
		return nil
	})
	eg.Go(func() error { return g.watch(egCtx) })
	eg.Go(func() error {
		defer endJournal()
		return g.journalLoop(g.sub.Messages(), ingestEnded)
	})
	if g.in != nil {
		eg.Go(func() error { return g.in.rel.Run(journalEnded) })
	}
	eg.Go(func() error {
		defer endEngine()
		return g.engineLoop(journalEnded)
	})
	eg.Go(func() error {
		defer stopUp()
		err := g.store.Run(engineEnded)
		if g.fwd != nil {
			// Give the forwarder a moment to send what the last batches
			// produced.
			g.flushOutbox(flushWait)
		}
		return err
	})
	if g.pub != nil {
		eg.Go(func() error { return g.pub.Run(upCtx) })
		eg.Go(func() error { return g.fwd.Run(upCtx) })
		if g.fleet != nil {
			eg.Go(func() error { return g.fleet.agent.Run(upCtx) })
		}
	}
	<-egCtx.Done()
	g.log.Info("stopping: draining queued messages")
	err := eg.Wait()
	st := g.Status()
	g.log.Info("stopped", "messages", st.Messages, "events", st.Events, "alerts", st.Alerts,
		"decode_errors", st.DecodeErrors, "redelivered", st.Redelivered, "journal_pos", st.LastPos)
	return err
}

var errIngestEnded = errors.New("mqtt: ingest ended on its own")

// flushWait is how long a stop waits for the forwarder to empty the outbox
// (while upstream is connected).
const flushWait = 2 * time.Second

// flushOutbox waits until the outbox is empty, upstream is not connected, or
// max has passed. It wakes when the forwarder reads or empties the outbox
// (outbox), not on a clock: a forwarder that cannot send reads the outbox
// again at each retry, and then finds upstream down.
func (g *Gateway) flushOutbox(max time.Duration) {
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	for {
		changed := g.outbox.changed()
		n, err := g.db.OutboxLen()
		if err != nil || n == 0 || !g.pub.Connected() {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			return
		}
	}
}

// readPace is how long a connection that keeps bringing messages is left
// unread (internal/pace), for a read per batch instead of one a message:
// half the commit gap, which the messages wait for anyway, so that
// state.commit_gap: 0s, asking for the least latency, reads each at once.
func readPace(commitGap time.Duration) time.Duration { return commitGap / 2 }

func (g *Gateway) newBroker() (*broker.Broker, error) {
	bc := g.cfg.Broker
	o := bc.Options
	o.Logger = g.log
	o.ReadPace = readPace(g.cfg.State.CommitGap)
	if bc.UsersFile != "" {
		users, err := broker.LoadUsers(bc.UsersFile)
		if err != nil {
			return nil, fmt.Errorf("broker: users_file: %w", err)
		}
		o.Users = users
	}
	if g.cfg.Broker.TLS.Enabled() {
		tc, err := tlsConfig(g.cfg.Broker.TLS, true)
		if err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		o.TLS = tc
	}
	b, err := broker.New(o)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return b, nil
}

func (g *Gateway) connOptions(o conn.Options, passFile string, t config.TLS) (conn.Options, error) {
	o.Logger = g.log
	url := o.Broker
	if passFile != "" {
		b, err := os.ReadFile(passFile)
		if err != nil {
			return o, fmt.Errorf("mqtt password_file: %w", err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	if t.Enabled() || strings.HasPrefix(url, "ssl://") || strings.HasPrefix(url, "tls://") || strings.HasPrefix(url, "mqtts://") {
		tc, err := tlsConfig(t, false)
		if err != nil {
			return o, fmt.Errorf("mqtt tls: %w", err)
		}
		o.TLS = tc
	}
	return o, nil
}

// tlsConfig builds a client (or server) TLS config from PEM files.
func tlsConfig(t config.TLS, server bool) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificate found", t.CA)
		}
		if server {
			tc.ClientCAs = pool
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		} else {
			tc.RootCAs = pool
		}
	}
	if t.Cert != "" {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Status returns a snapshot of the pipeline's health.
func (g *Gateway) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.status
	s.Started = g.start
	return s
}

// Broker returns the embedded broker, if one runs.
func (g *Gateway) Broker() *broker.Broker { return g.brk }

// DB returns the state database (for read-only views such as the UI).
func (g *Gateway) DB() *store.DB { return g.db }

// NotifyOutbox wakes the forwarder: alerts were put back in the outbox (a
// retry of dead letters).
func (g *Gateway) NotifyOutbox() {
	select {
	case g.notify <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// Subscriber and Forwarder stats for the UI.
func (g *Gateway) Subscriber() Ingest         { return g.sub }
func (g *Gateway) Forwarder() *conn.Forwarder { return g.fwd }

// Reload asks the engine loop to re-read the rule files. An invalid rule set
// is rejected with its errors and the old one keeps running.
func (g *Gateway) Reload(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case g.reloads <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Gateway) reloadCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.status.Reloads
}
