// Package broker runs vigil's optional embedded MQTT broker (mochi-mqtt)
// behind a small seam: Options, New, Start, Addr, Close. Nothing else in vigil
// touches mochi, so replacing it (its maintenance has slowed) stays local.
//
// It owns listening, TLS, users (bcrypt passwords, per-user topic rules) and
// the limits on what clients can make it hold (limits.go). It refuses to
// listen beyond loopback without users: an open broker on a gateway's LAN
// lets any device inject readings; and without TLS there unless told to.
//
// It imports no other vigil package.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Options configure the embedded broker. The zero value listens on
// 127.0.0.1:1883 without TLS, allows anonymous clients and takes the
// default Limits.
type Options struct {
	// Listen is host:port; port 0 picks a free port (see Addr).
	Listen string `yaml:"listen"`
	// TLS, when set, makes the listener speak TLS only.
	TLS *tls.Config
	// Users are the users allowed to log in (LoadUsers reads them). None
	// allows anonymous clients, which New accepts only on a loopback
	// address.
	Users []User
	// AllowPlaintext lets the broker listen beyond loopback without TLS:
	// passwords and readings then cross the network in clear. New refuses
	// that without it, and Start logs a warning with it.
	AllowPlaintext bool `yaml:"allow_plaintext"`
	// Limits bound what clients can make the broker hold.
	Limits Limits `yaml:",inline"`
	// ReadPace: while a client's messages keep coming, its connection is
	// read at most once per ReadPace, each read taking what arrived
	// meanwhile (internal/pace): a connection that carries many devices'
	// readings (a bridge, a concentrator) then costs a wake-up per batch,
	// not per message. A client's message waits at most ReadPace longer;
	// one that waits for its acknowledgement does not wait. 0: unpaced.
	ReadPace time.Duration `yaml:"-"`
	// Logger receives the broker's warnings and errors (records below
	// Warn are dropped, and at most a burst of them per 10 s is kept,
	// because a misbehaving device can trigger one per connection).
	// Default: text on stderr.
	Logger *slog.Logger
}

// maxTopicAliases bounds an MQTT 5 client's inbound topic aliases; one
// past it is a protocol error that disconnects the client.
const maxTopicAliases = 16

// DefaultListen is where the broker listens when Options.Listen is empty.
const DefaultListen = "127.0.0.1:1883"

// Broker is an embedded MQTT 3.1.1/5 broker.
type Broker struct {
	opts    Options
	srv     *mqtt.Server
	inbound *inboundHook
	hits    *counters
	gate    *gate
	log     *slog.Logger
	tcp     *listener
	mu      sync.Mutex
	closed  bool
}

// New checks the options and builds a broker; Start makes it listen.
func New(o Options) (*Broker, error) {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	host, _, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker listen %q: %w", o.Listen, err)
	}
	if !isLoopback(host) {
		if len(o.Users) == 0 {
			return nil, fmt.Errorf("broker listen %q: not a loopback address and no users configured: authentication is required when listening beyond loopback", o.Listen)
		}
		if o.TLS == nil && !o.AllowPlaintext {
			return nil, fmt.Errorf("broker listen %q: not a loopback address and no TLS: passwords and readings would cross the network in clear (configure tls, or allow_plaintext: true to accept that)", o.Listen)
		}
	}
	auth, err := newAuthHook(o.Users)
	if err != nil {
		return nil, err
	}
	lim, err := o.Limits.withDefaults()
	if err != nil {
		return nil, err
	}
	o.Limits = lim
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	log := slog.New(newQuietHandler(o.Logger.Handler(), slog.LevelWarn, 10, 10*time.Second)).With("component", "broker")

	caps := mqtt.NewDefaultServerCapabilities()
	// vigil acknowledges a QoS 1 message only once it is journaled, and
	// leaves it unacknowledged when its queue is full (the broker redelivers
	// it). mochi holds at most MaximumInflight unacknowledged messages per
	// client (its default, 8,192, is below vigil's queue of 10,000) and
	// drops the rest after acknowledging them to their publisher. The
	// default, 16,384, keeps an overload inside vigil's own, counted queue
	// policy. It is a cap, not an allocation (≈ 3 MB of small messages).
	caps.MaximumInflight = uint16(lim.MaxInflight)
	caps.MaximumPacketSize = uint32(lim.MaxPacketSize)
	caps.MaximumSessionExpiryInterval = uint32(lim.MaxSessionExpiry / time.Second)
	// An MQTT 5 client may name topics by alias; each alias keeps its
	// topic, and with it the packet it came in, for the connection's life.
	// mochi allows 65,535 of them; a device needs a few.
	caps.TopicAliasMaximum = maxTopicAliases
	// A client's writes are coalesced while more packets wait for it, up to
	// ClientNetWriteBufferSize (default 2 KB, ~20 readings): vigil's own
	// subscriber, which gets every reading, then takes one write(2) per
	// 16 KB. A client with nothing queued is written to at once, so this
	// adds no latency; the buffer exists only while a backlog does.
	srv := mqtt.New(&mqtt.Options{Logger: log, InlineClient: false, Capabilities: caps, ClientNetWriteBufferSize: 16 << 10})
	hits := new(counters)
	g := newGate(lim, hits)
	auth.srv, auth.gate, auth.hits, auth.maxSessions, auth.maxSubs, auth.log = srv, g, hits, lim.MaxSessions, lim.MaxSubscriptions, log
	if err := srv.AddHook(auth, nil); err != nil {
		return nil, fmt.Errorf("broker auth hook: %w", err)
	}
	in := &inboundHook{srv: srv, hits: hits, maxRetained: lim.MaxRetained}
	if err := srv.AddHook(in, nil); err != nil {
		return nil, fmt.Errorf("broker inbound hook: %w", err)
	}
	return &Broker{opts: o, srv: srv, inbound: in, hits: hits, gate: g, log: log}, nil
}

// Publish is one PUBLISH a network client sent, as OnInbound sees it.
type Publish struct {
	Client string // the client id
	// Topic points into the packet's buffer, as Payload does (mochi reads
	// every packet into fresh memory and decodes strings without copying):
	// whoever keeps the topic or a substring of it keeps the whole packet,
	// payload included. Clone what outlives the message.
	Topic    string
	Payload  []byte // the receiver's: the broker reads every packet into fresh memory
	QoS      byte   // as received, or the broker's maximum if lower
	Dup      bool   // the client says it may have sent it before
	PacketID uint16 // 0 for QoS 0
	// Release, for a QoS 1 message the inbound function held, makes the
	// broker acknowledge it to the client and deliver it to subscribers,
	// as it would have at once. Call it once, from any goroutine; after the
	// client has gone it does nothing (a client with a session sends the
	// message again when it reconnects). nil for other QoS.
	Release func()
}

// Verdict is what the inbound function decides for a message.
type Verdict int

const (
	// Pass: the broker acknowledges and delivers the message now.
	Pass Verdict = iota
	// Hold (QoS 1 only; else Pass): neither acknowledged nor delivered
	// until Publish.Release is called. The client's next packets are read
	// meanwhile: a client may have many held messages.
	Hold
	// Refuse: neither acknowledged nor delivered, ever; a client with a
	// session sends it again when it reconnects.
	Refuse
)

// OnInbound makes fn see every PUBLISH a network client sends, in the
// client's order, on that client's connection goroutine, before the broker
// acknowledges it (QoS 1 and 2) and before it delivers it to subscribers.
// fn may block: the client's next packet then waits, and TCP pushes back
// on the client.
//
// vigil's in-process ingest holds each QoS 1 message until its journal has
// it, and releases it then: the device's PUBACK means "journaled". nil (the
// default) passes everything. Safe to call at any time.
func (b *Broker) OnInbound(fn func(Publish) Verdict) {
	if fn == nil {
		b.inbound.fn.Store(nil)
		return
	}
	b.inbound.fn.Store(&fn)
}

// FlushReleases writes the acknowledgements that Publish.Release buffered:
// one write per client. Releasing a batch of messages and then flushing
// costs one system call per client instead of one per message.
func (b *Broker) FlushReleases() { b.inbound.flush() }

// inboundHook calls OnInbound's function from mochi's OnPublish, which runs
// before the acknowledgement and the delivery (server.go processPublish).
// A held QoS 1 message is handed back as QoS 0 with Ignore set, or refused
// (see OnPublish): mochi then neither acknowledges nor delivers it, and it
// is not in mochi's in-flight state. Its release:
//
//   - usually nobody else subscribes to a sensor's topic and it is not
//     retained: the release only owes the client its PUBACK, which is
//     buffered per client and written by flush, under the client's lock
//     (mochi writes whole packets under the same lock);
//   - otherwise the packet is injected again, as if the client had just
//     sent it, after that client's buffered PUBACKs: the hook recognises it
//     by client and packet id (which the client cannot reuse before the
//     PUBACK) and passes it, and mochi acknowledges and delivers it.
type inboundHook struct {
	mqtt.HookBase
	srv         *mqtt.Server
	hits        *counters
	maxRetained int
	// sysRetained is how many retained messages are mochi's own $SYS
	// topics (Start counts them), which max_retained leaves aside.
	sysRetained atomic.Int64
	fn          atomic.Pointer[func(Publish) Verdict]
	released    sync.Map // heldKey → struct{}: re-injected, to pass

	mu      sync.Mutex
	pending map[*mqtt.Client][]byte // PUBACKs to write
}

type heldKey struct {
	cl *mqtt.Client
	id uint16
}

// ackWriteTimeout bounds a write of buffered PUBACKs: a client that stops
// reading is disconnected rather than stalling the others' releases.
const ackWriteTimeout = 5 * time.Second

func (h *inboundHook) ID() string { return "vigil-inbound" }

func (h *inboundHook) Provides(b byte) bool { return b == mqtt.OnPublish || b == mqtt.OnWill }

// OnWill applies max_retained to a will, which mochi retains without
// OnPublish.
func (h *inboundHook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	if will.Retain && len(will.Payload) > 0 && h.overRetained(will.TopicName) {
		will.Retain = false
	}
	return will, nil
}

// overRetained reports, and counts, a retained message to topic that
// would pass max_retained: a topic not yet retained, with the cap reached.
func (h *inboundHook) overRetained(topic string) bool {
	if h.srv.Topics.Retained.Len()-int(h.sysRetained.Load()) < h.maxRetained {
		return false
	}
	if _, ok := h.srv.Topics.Retained.Get(topic); ok {
		return false
	}
	h.hits.add(HitRetained)
	return true
}

// OnPublish holds a QoS 1 message, so that mochi (v2.7.9) neither
// acknowledges nor delivers it; its release does either later:
//   - The usual message, not retained and on a topic nobody subscribes to,
//     is handed back to mochi as QoS 0 with Ignore set: mochi then sends
//     no PUBACK (ours follows the journal's commit) and forwards it to
//     nobody. Rejecting it (below) would do the same, but mochi logs every
//     rejection at debug level with the packet as an argument, boxing a
//     copy of its ~900-byte packets.Packet even when debug logging is off:
//     that was 40 % of vigil's allocation at QoS 1 and 10 % of its CPU.
//   - A message to deliver is rejected with packets.ErrRejectPacket and
//     injected again on release. An open upstream pull request
//     (mochi-mqtt/server#476) would let a rejected QoS 1 message fall
//     through to its PUBACK.
//
// Both ways are pinned by tests: gateway.TestInProcessAckAfterJournal and
// TestInProcessPipelined (with and without another subscriber) fail if a
// mochi upgrade acknowledges a held message early or loses a delivery.
func (h *inboundHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Retain && len(pk.Payload) > 0 && h.overRetained(pk.TopicName) {
		// Delivered, not kept: mochi retains only what has the flag.
		pk.FixedHeader.Retain = false
	}
	fn := h.fn.Load()
	if fn == nil || cl.Net.Inline {
		return pk, nil
	}
	qos1 := pk.FixedHeader.Qos == 1
	if qos1 {
		if _, ok := h.released.LoadAndDelete(heldKey{cl, pk.PacketID}); ok {
			return pk, nil
		}
	}
	p := Publish{Client: cl.ID, Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos,
		Dup: pk.FixedHeader.Dup, PacketID: pk.PacketID}
	ackOnly := false
	if qos1 {
		id := pk.PacketID
		if ackOnly = !pk.FixedHeader.Retain && !h.subscribed(pk.TopicName); ackOnly {
			p.Release = func() { h.ack(cl, id) }
		} else {
			// A copy only here: capturing pk itself would move every
			// message's packet to the heap, held or not.
			held := pk
			p.Release = func() { h.inject(cl, held) }
		}
	}
	switch (*fn)(p) {
	case Refuse:
		return pk, packets.ErrRejectPacket // mochi returns before the ack and the delivery
	case Hold:
		switch {
		case ackOnly:
			pk.FixedHeader.Qos, pk.Ignore = 0, true
		case qos1:
			return pk, packets.ErrRejectPacket
		}
	}
	return pk, nil
}

// subscribed reports whether any client subscribes to topic.
func (h *inboundHook) subscribed(topic string) bool {
	s := h.srv.Topics.Subscribers(topic)
	return len(s.Subscriptions) > 0 || len(s.Shared) > 0 || len(s.InlineSubscriptions) > 0
}

// ack buffers a PUBACK for flush.
func (h *inboundHook) ack(cl *mqtt.Client, id uint16) {
	h.mu.Lock()
	if h.pending == nil {
		h.pending = map[*mqtt.Client][]byte{}
	}
	h.pending[cl] = append(h.pending[cl], packets.Puback<<4, 2, byte(id>>8), byte(id))
	h.mu.Unlock()
}

// inject releases a message mochi must deliver: the client's buffered
// PUBACKs first, in order.
func (h *inboundHook) inject(cl *mqtt.Client, pk packets.Packet) {
	h.mu.Lock()
	buf := h.pending[cl]
	delete(h.pending, cl)
	h.mu.Unlock()
	writeAcks(cl, buf)
	key := heldKey{cl, pk.PacketID}
	pk.Properties.TopicAliasFlag = false // the name is resolved already
	h.released.Store(key, struct{}{})
	if h.srv.InjectPacket(cl, pk) != nil || cl.Closed() {
		h.released.Delete(key)
	}
}

func (h *inboundHook) flush() {
	h.mu.Lock()
	pending := h.pending
	h.pending = nil
	h.mu.Unlock()
	for cl, buf := range pending {
		writeAcks(cl, buf)
	}
}

// writeAcks writes buf (whole PUBACK packets) to cl under its lock. A
// client that has gone gets nothing: it sends the messages again when it
// reconnects.
func writeAcks(cl *mqtt.Client, buf []byte) {
	if len(buf) == 0 || cl.Closed() {
		return
	}
	cl.Lock()
	c := cl.Net.Conn
	var err error
	if c != nil {
		_ = c.SetWriteDeadline(time.Now().Add(ackWriteTimeout))
		_, err = c.Write(buf)
		// Back to mochi's own deadline: 1.5 keepalives, or none.
		var d time.Time
		if ka := cl.State.Keepalive; ka > 0 {
			d = time.Now().Add(time.Duration(ka) * 1500 * time.Millisecond)
		}
		_ = c.SetWriteDeadline(d)
	}
	cl.Unlock()
	if err != nil {
		cl.Stop(fmt.Errorf("writing acknowledgements: %w", err))
	}
}

// isLoopback reports whether host only ever accepts local connections.
// Hostnames other than localhost count as not loopback: they may resolve
// to anything.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Start opens the listener; the broker accepts connections when it returns.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("broker start: already closed")
	}
	if b.tcp != nil {
		return errors.New("broker start: already started")
	}
	l := &listener{addr: b.opts.Listen, tls: b.opts.TLS, pace: b.opts.ReadPace, idle: make(chan struct{}, 1), gate: b.gate, lim: b.opts.Limits, hits: b.hits, log: b.log}
	if err := b.srv.AddListener(l); err != nil {
		return fmt.Errorf("broker listen %s: %w", b.opts.Listen, err)
	}
	b.tcp = l
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker serve: %w", err)
	}
	// Serve has published mochi's $SYS topics, retained.
	b.inbound.sysRetained.Store(int64(b.srv.Topics.Retained.Len()))
	if host, _, _ := net.SplitHostPort(b.opts.Listen); !isLoopback(host) && b.opts.TLS == nil {
		b.opts.Logger.Warn("EMBEDDED BROKER WITHOUT TLS ON THE NETWORK: passwords and readings cross the network in clear; anyone on the LAN can read them (allow_plaintext is set; configure broker.tls)",
			"component", "broker", "addr", l.Address())
	}
	return nil
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	st := Stats{Hits: make(map[string]uint64, len(hitNames)), Dropped: b.Dropped(),
		Sessions: b.srv.Clients.Len(), Retained: b.srv.Topics.Retained.Len() - int(b.inbound.sysRetained.Load())}
	for i, n := range hitNames {
		st.Hits[n] = b.hits[i].Load()
	}
	b.gate.mu.Lock()
	st.Clients = b.gate.total
	b.gate.mu.Unlock()
	return st
}

// Dropped counts the messages the broker dropped: past a client's
// MaximumInflight, or with its outbound buffer full (a client not reading).
func (b *Broker) Dropped() uint64 {
	return uint64(atomic.LoadInt64(&b.srv.Info.InflightDropped) + atomic.LoadInt64(&b.srv.Info.MessagesDropped))
}

// Connected reports whether a client with this id has a live connection
// (a persistent session whose client went away is not connected).
func (b *Broker) Connected(clientID string) bool {
	cl, ok := b.srv.Clients.Get(clientID)
	return ok && !cl.Closed()
}

// Addr is the address the broker listens on (the real port when Listen
// asked for port 0), or Options.Listen before Start.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tcp == nil {
		return b.opts.Listen
	}
	return b.tcp.Address()
}

// Close disconnects every client and stops listening. Sessions live in
// memory only: a new broker starts with none. Close is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.tcp == nil {
		// Never served: mochi's Close expects its event loop running.
		return nil
	}
	// mochi v2.7.9 can deadlock in Close when a client disconnects at the
	// same moment (a recursive RLock in Clients.GetByListener,
	// mochi-mqtt/server#488, fix in the open PR #489). A shutdown must
	// not hang on it: after closeTimeout the broker is left to the
	// process's exit.
	done := make(chan error, 1)
	go func() { done <- b.srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("broker close: %w", err)
		}
		return nil
	case <-time.After(closeTimeout):
		return errCloseTimeout
	}
}

// closeTimeout bounds Close; see there.
var closeTimeout = 10 * time.Second

var errCloseTimeout = errors.New("broker close: mochi did not finish closing (mochi-mqtt/server#488); left to the process's exit")

// quietHandler drops records below min and lets through at most burst
// records per period; it then logs how many it suppressed.
type quietHandler struct {
	next   slog.Handler
	min    slog.Level
	st     *quietState
	burst  int
	period time.Duration
}

type quietState struct {
	mu         sync.Mutex
	start      time.Time
	n          int
	suppressed int
}

func newQuietHandler(next slog.Handler, min slog.Level, burst int, period time.Duration) *quietHandler {
	return &quietHandler{next: next, min: min, st: &quietState{}, burst: burst, period: period}
}

func (h *quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.next.Enabled(ctx, l)
}

func (h *quietHandler) Handle(ctx context.Context, r slog.Record) error {
	s := h.st
	s.mu.Lock()
	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	var suppressed int
	if now.Sub(s.start) >= h.period {
		suppressed, s.suppressed = s.suppressed, 0
		s.start, s.n = now, 0
	}
	s.n++
	allow := s.n <= h.burst
	if !allow {
		s.suppressed++
	}
	s.mu.Unlock()
	if suppressed > 0 {
		note := slog.NewRecord(now, slog.LevelWarn, "broker log records suppressed", 0)
		note.AddAttrs(slog.Int("count", suppressed))
		_ = h.next.Handle(ctx, note)
	}
	if !allow {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	return &c
}

func (h *quietHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}
