// Package ui owns the gateway's own web interface: the HTTP API (JSON), the
// embedded single-page UI, the Server-Sent Events live feed and /metrics.
//
// It reads from the engine and the store through the small Source interface
// declared here and never writes state (a reload, or sending set-aside
// alerts again, is a request the Source carries out). It imports only event from this module: the lead adapts the
// engine and the store to Source in main, so ui never imports engine, store,
// rules or conn.
package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// Source is what the UI reads. Methods are called from HTTP handler
// goroutines, concurrently: implementations must be safe for that and quick
// (they run on every page refresh and every /metrics scrape).
type Source interface {
	// Status is a snapshot of the gateway's health.
	Status() Status
	// Rules reports every rule's counters, in rule-file order.
	Rules() []RuleInfo
	// Alerts reads the alert history, newest first.
	Alerts(q AlertQuery) ([]AlertEntry, error)
	// Reload re-reads the rule files. On failure the error's text holds one
	// problem per line as FILE:LINE:COL: message; the old rules keep running.
	Reload() error
	// DeadLetters lists the alerts upstream refused, set aside, oldest
	// first; RetryDeadLetters puts those with these ids (all when none)
	// back at the end of the outbox and says how many.
	DeadLetters() ([]DeadLetter, error)
	RetryDeadLetters(ids []string) (int, error)
}

// Status is the gateway's health, everything the overview and /metrics show.
// Counters are totals since Started. It must never carry a secret.
type Status struct {
	Gateway string // the gateway's name (config `gateway`)
	Started time.Time

	Messages     uint64 // MQTT messages received
	Events       uint64 // events decoded and processed
	Alerts       uint64 // alerts produced
	DecodeErrors uint64 // payloads that could not be decoded
	Duplicates   uint64 // events dropped by a source's dedupe
	Late         uint64 // events dropped as late, all rules
	Dropped      uint64 // messages dropped because a queue was full
	// BrokerDropped: messages the embedded broker dropped (a client past its
	// in-flight limit, or not reading); 0 without an embedded broker.
	BrokerDropped uint64
	// BrokerLimits: how often each of the embedded broker's limits refused
	// something, by limit (packet_too_large, clients, login_failed, …);
	// nil without an embedded broker.
	BrokerLimits map[string]uint64
	// BrokerClients: the embedded broker's open connections.
	BrokerClients int
	Evicted       uint64 // keys evicted by the per-rule key caps, all rules
	ExprErrors    uint64 // expression errors, all rules
	RulesDisabled int    // rules disabled at run time: an expression over its budget

	OutboxDepth   int    // alerts waiting for upstream
	OutboxDropped uint64 // alerts dropped by the outbox bound
	DeadLetters   int    // alerts upstream refused, set aside (waiting for the operator)
	SetAside      uint64 // alerts set aside since Started
	AlertsTrimmed uint64 // alerts stored trimmed to the size limit since Started
	// StateRecoveredTo is where the state database was moved at start
	// because it was damaged ("" if it was not): vigil began with empty
	// state.
	StateRecoveredTo  string
	UpstreamConnected bool
	BrokerConnected   bool              // the subscriber's connection to the MQTT broker
	JournalLen        int               // journaled messages not yet covered by a checkpoint
	JournalCommits    uint64            // journal transactions (disk writes) since Started
	IngestRefused     map[string]uint64 // messages refused at the door (limits.max_topic_length, max_payload), by reason
	EarlyCommits      uint64            // journal commits made before state.commit_gap because a sender waited for acknowledgements
	JournalSyncs      uint64            // fsyncs of the journal's files (commits holding a QoS 1 message)
	JournalDropped    uint64            // QoS 0 messages dropped while the journal could not be written
	PayloadBytes      uint64            // payload bytes journaled
	DiskWritten       uint64            // bytes the process wrote to disk since it started
	DiskWriteRate     float64           // bytes written a second, over the last minute
	CommitRate        float64           // journal commits a second, over the last minute

	LastCheckpoint  time.Time     // zero: none yet
	CheckpointTook  time.Duration // snapshot and write
	CheckpointStall time.Duration // of which message processing waited (the snapshot)
	CheckpointBytes int
	CheckpointErr   string

	Watermark  time.Time     // the smallest rule watermark (newest event time if rules have none)
	ProcessLag time.Duration // gateway clock minus the receive time of the last processed message

	Degraded  bool   // journal not writable: QoS 1 held unacknowledged, QoS 0 dropped
	LastError string // the most recent store or pipeline error, for the overview

	LastReload   time.Time
	ReloadErrors []string // FILE:LINE:COL: message of the last failed reload; nil once a reload succeeds

	Fleet *FleetStatus // nil without a fleet: block
}

// FleetStatus is the pushed rule bundle a gateway runs (docs/fleet.md).
type FleetStatus struct {
	Prefix       string
	RulesVersion string // the bundle running, "" for none
	RulesSHA256  string
	RulesIssued  string
	RulesState   string   // outcome of the latest bundle: applied, rejected, or none
	RulesErrors  []string // of a rejected bundle, FILE:LINE:COL: message
	RulesTime    time.Time
}

// RuleInfo is one rule's counters.
type RuleInfo struct {
	Name      string
	File      string
	Origin    string // "file" (a local rule file) or "bundle" (pushed to the fleet)
	Bundle    string // the bundle's version, for Origin "bundle"
	Line      int
	Kind      string // stateless | window | detect | pattern | absent
	From      []string
	Severity  string
	Events    uint64
	Alerts    uint64
	Errors    uint64
	Late      uint64
	Evicted   uint64
	Keys      int
	LastError string
	Watermark time.Time
	// Disabled is why the rule was disabled at run time (an expression over
	// its budget), "" while it runs.
	Disabled string
}

// AlertQuery selects alert history. Empty fields do not filter.
type AlertQuery struct {
	Rule, Key, Severity, State string
	// Since and Until bound the alert's event time: Since <= time < Until.
	Since, Until time.Time
	// Limit is the page size (1..1000; the API defaults to 100).
	Limit int
	// Before is the paging cursor: only entries with Seq < Before; 0 means
	// from the newest.
	Before int64
}

// AlertEntry is one alert of the history.
type AlertEntry struct {
	Seq       int64 // history position, the paging cursor
	Alert     event.Alert
	Received  time.Time // when the gateway stored it
	Delivered time.Time // when upstream acknowledged it; zero if not (yet)
}

// Options configure a Server. Only Source is required.
type Options struct {
	// Listen is the HTTP address; default 127.0.0.1:8080. Any address that
	// is not loopback requires Token.
	Listen string
	// Token is the bearer token (already read from http.token_file). When
	// set, every endpoint but /healthz and the static page requires it.
	Token   string
	Source  Source
	Version string
	Logger  *slog.Logger
	// MaxDevices bounds the devices whose recent values are kept for the
	// Devices tab (default 1000); the least recently seen is forgotten.
	MaxDevices int
	// Now is the wall clock, for tests; default time.Now.
	Now func() time.Time
}

// Server serves the UI, the API, the live feed and /metrics.
type Server struct {
	o       Options
	ln      net.Listener
	handler http.Handler
	live    *live
	metrics http.Handler

	closeOnce sync.Once
}

// New checks the options and binds the listener, so a busy port fails here
// and Addr is known at once. Call Run to serve, or Close if Run is never
// called.
func New(o Options) (*Server, error) {
	if o.Source == nil {
		return nil, errors.New("ui: no source")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8080"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxDevices <= 0 {
		o.MaxDevices = 1000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	loop, err := isLoopbackAddr(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("ui: listen %q: %w", o.Listen, err)
	}
	if !loop && o.Token == "" {
		return nil, fmt.Errorf("ui: listen %q is not a loopback address: set http.token_file so the API is not open to the network", o.Listen)
	}
	s := &Server{o: o, live: newLive(o.MaxDevices)}
	s.metrics = s.metricsHandler()
	s.handler = s.routes()
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	s.ln = ln
	return s, nil
}

// Addr is the address the server listens on (the real port when Listen
// asked for port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Handler is the server's whole HTTP handler (for tests and for mounting).
func (s *Server) Handler() http.Handler { return s.handler }

// Close releases the listener of a server whose Run was never called.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.ln.Close() })
	return err
}

// Run serves until ctx ends, then shuts down: live feeds end at once (their
// request contexts derive from ctx), other requests get five seconds.
func (s *Server) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.o.Logger.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		s.closeOnce.Do(func() {})
		return fmt.Errorf("ui: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close() // connections still busy after the grace period are cut
	}
	s.closeOnce.Do(func() {}) // Shutdown closed the listener
	<-errc
	if err != nil {
		return fmt.Errorf("ui: shutdown: %w", err)
	}
	return nil
}

// PublishAlert hands a new alert to the live feed. It never blocks: a client
// that falls more than the feed's ring behind is told to resync instead.
func (s *Server) PublishAlert(a event.Alert) { s.live.publishAlert(a) }

// PublishReading records a device's latest values and recent numeric
// history for the Devices tab; live clients receive at most one update per
// device per second. It keeps no reference to values (only scalar members
// are copied), so the caller may reuse the map.
func (s *Server) PublishReading(key, topic string, t time.Time, values map[string]any) {
	s.live.publishReading(key, topic, t, s.o.Now(), values)
}
