package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/vigil-gw/vigil/internal/pace"
)

// Limits bound what network clients can make the broker hold. A zero field
// takes its default (DefaultLimits), sized for a Raspberry Pi on a LAN.
// Each limit, when hit, is counted in Stats under the name in its comment.
type Limits struct {
	// MaxPacketSize bounds an MQTT packet, CONNECT included: mochi reads
	// the fixed header and refuses a larger packet before it allocates
	// it; the client is disconnected. Counted: packet_too_large.
	MaxPacketSize int `yaml:"max_packet_size"`
	// MaxClients bounds open connections, logged in or not; one more is
	// closed on accept. Counted: clients.
	MaxClients int `yaml:"max_clients"`
	// MaxClientsPerAddress bounds open connections from one IP address.
	// Counted: clients_per_address.
	MaxClientsPerAddress int `yaml:"max_clients_per_address"`
	// ConnectTimeout is how long a new connection has to complete its TLS
	// handshake and send its CONNECT; then it is closed. Counted:
	// connect_timeout.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxSessionExpiry caps how long a disconnected client's session
	// (subscriptions, messages queued for it) is kept, whatever the client
	// asks.
	MaxSessionExpiry time.Duration `yaml:"max_session_expiry"`
	// MaxSessions bounds the sessions held, of connected clients and of
	// disconnected ones not yet expired; a CONNECT that would add one more
	// is refused. Counted: sessions.
	MaxSessions int `yaml:"max_sessions"`
	// MaxInflight bounds the QoS 1 and 2 messages held for one client
	// (unacknowledged, or queued while it is away); past it messages to
	// that client are dropped, counted in Dropped. At least vigil's
	// ingest queue (mqtt.queue, 10,000) for a subscribing vigil.
	MaxInflight int `yaml:"max_inflight"`
	// MaxRetained bounds the topics holding a retained message; a
	// retained PUBLISH to one more topic is delivered but not retained.
	// Counted: retained.
	MaxRetained int `yaml:"max_retained"`
	// MaxSubscriptions bounds the topic filters one client subscribes to
	// (each holds memory as long as the session lives); a filter past it
	// gets a failure in the SUBACK. Counted: subscriptions.
	MaxSubscriptions int `yaml:"max_subscriptions"`
	// MaxLoginFailures is how many failed logins an IP address may have
	// in a minute; past it, its connections are closed on accept until
	// the minute is over. Counted: login_failed, login_throttled.
	MaxLoginFailures int `yaml:"max_login_failures"`
}

// DefaultLimits are the limits a zero Limits field takes.
var DefaultLimits = Limits{
	MaxPacketSize:        256 << 10,
	MaxClients:           1000,
	MaxClientsPerAddress: 100,
	ConnectTimeout:       10 * time.Second,
	MaxSessionExpiry:     time.Hour,
	MaxSessions:          2000,
	MaxInflight:          1 << 14,
	MaxRetained:          1000,
	MaxSubscriptions:     1000,
	MaxLoginFailures:     10,
}

// loginWindow is the period MaxLoginFailures counts over, and how long an
// address that exceeded it is refused.
const loginWindow = time.Minute

// withDefaults fills zero fields and checks the rest.
func (l Limits) withDefaults() (Limits, error) {
	d := DefaultLimits
	set := func(v *int, def, min, max int, name string) error {
		if *v == 0 {
			*v = def
		}
		if *v < min || *v > max {
			return fmt.Errorf("broker limits: %s %d: want %d to %d", name, *v, min, max)
		}
		return nil
	}
	err := errors.Join(
		set(&l.MaxPacketSize, d.MaxPacketSize, 128, 268435455, "max_packet_size"),
		set(&l.MaxClients, d.MaxClients, 1, math.MaxInt32, "max_clients"),
		set(&l.MaxClientsPerAddress, d.MaxClientsPerAddress, 1, math.MaxInt32, "max_clients_per_address"),
		set(&l.MaxSessions, d.MaxSessions, 1, math.MaxInt32, "max_sessions"),
		set(&l.MaxInflight, d.MaxInflight, 1, math.MaxUint16, "max_inflight"),
		set(&l.MaxRetained, d.MaxRetained, 1, math.MaxInt32, "max_retained"),
		set(&l.MaxSubscriptions, d.MaxSubscriptions, 1, math.MaxInt32, "max_subscriptions"),
		set(&l.MaxLoginFailures, d.MaxLoginFailures, 1, math.MaxInt32, "max_login_failures"),
	)
	if l.ConnectTimeout == 0 {
		l.ConnectTimeout = d.ConnectTimeout
	}
	if l.MaxSessionExpiry == 0 {
		l.MaxSessionExpiry = d.MaxSessionExpiry
	}
	if l.ConnectTimeout < 0 || l.MaxSessionExpiry < time.Second || l.MaxSessionExpiry > math.MaxUint32*time.Second {
		err = errors.Join(err, fmt.Errorf("broker limits: connect_timeout %s, max_session_expiry %s: want positive durations, the expiry at least 1s", l.ConnectTimeout, l.MaxSessionExpiry))
	}
	return l, err
}

// The names Stats counts limits under.
const (
	HitPacketTooLarge    = "packet_too_large"
	HitClients           = "clients"
	HitClientsPerAddress = "clients_per_address"
	HitConnectTimeout    = "connect_timeout"
	HitSessions          = "sessions"
	HitRetained          = "retained"
	HitLoginFailed       = "login_failed"
	HitLoginThrottled    = "login_throttled"
	HitPublishDenied     = "publish_denied"
	HitSubscribeDenied   = "subscribe_denied"
	HitClientIDTaken     = "client_id_taken"
	HitSubscriptions     = "subscriptions"
)

// hitNames lists every counter, so that Stats shows each (at 0 too).
var hitNames = []string{HitPacketTooLarge, HitClients, HitClientsPerAddress, HitConnectTimeout,
	HitSessions, HitRetained, HitLoginFailed, HitLoginThrottled, HitPublishDenied, HitSubscribeDenied, HitClientIDTaken, HitSubscriptions}

// counters are the limits' hit counts, indexed like hitNames.
type counters [12]atomic.Uint64

func (c *counters) add(name string) {
	for i, n := range hitNames {
		if n == name {
			c[i].Add(1)
			return
		}
	}
	panic("broker: unknown counter " + name)
}

// Stats are the broker's counters.
type Stats struct {
	// Hits counts, by name (the Hit constants), the times a limit refused
	// something. Every name is present.
	Hits map[string]uint64
	// Clients is the number of open connections.
	Clients int
	// Sessions is the number of sessions held.
	Sessions int
	// Retained is the number of retained messages.
	Retained int
	// Dropped is as Broker.Dropped.
	Dropped uint64
}

// gate counts connections per address and failed logins, and refuses a
// connection past a limit or from an address that failed too often.
type gate struct {
	lim  Limits
	hits *counters
	now  func() time.Time

	mu    sync.Mutex
	total int
	addrs map[string]*addrState
}

type addrState struct {
	conns int
	fails int       // failed logins since start
	start time.Time // of the current failure window
}

// maxTracked bounds the addresses the gate remembers failures of, beyond
// those with open connections: an address with failures but no
// connection is forgotten after loginWindow, or, when the map is full,
// at once.
func (g *gate) maxTracked() int { return 4 * g.lim.MaxClients }

func newGate(l Limits, hits *counters) *gate {
	return &gate{lim: l, hits: hits, now: time.Now, addrs: map[string]*addrState{}}
}

// admit counts a new connection from ip, or says which limit refuses it.
func (g *gate) admit(ip string) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.addrs[ip]
	if a != nil && g.throttledLocked(a) {
		return HitLoginThrottled, false
	}
	if g.total >= g.lim.MaxClients {
		return HitClients, false
	}
	if a != nil && a.conns >= g.lim.MaxClientsPerAddress {
		return HitClientsPerAddress, false
	}
	if a == nil {
		g.pruneLocked()
		a = &addrState{}
		g.addrs[ip] = a
	}
	a.conns++
	g.total++
	return "", true
}

func (g *gate) release(ip string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if a := g.addrs[ip]; a != nil {
		a.conns--
		if a.conns == 0 && a.fails == 0 {
			delete(g.addrs, ip)
		}
	}
}

// loginFailed counts a failed login from ip.
func (g *gate) loginFailed(ip string) {
	g.hits.add(HitLoginFailed)
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.addrs[ip]
	if a == nil {
		g.pruneLocked()
		if len(g.addrs) >= g.maxTracked() {
			return
		}
		a = &addrState{}
		g.addrs[ip] = a
	}
	now := g.now()
	if now.Sub(a.start) >= loginWindow {
		a.start, a.fails = now, 0
	}
	a.fails++
}

// throttled reports whether ip has used up its failed logins.
func (g *gate) throttled(ip string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.addrs[ip]
	return a != nil && g.throttledLocked(a)
}

func (g *gate) throttledLocked(a *addrState) bool {
	return a.fails >= g.lim.MaxLoginFailures && g.now().Sub(a.start) < loginWindow
}

// pruneLocked forgets addresses with neither connections nor recent
// failures, once the map is full.
func (g *gate) pruneLocked() {
	if len(g.addrs) < g.maxTracked() {
		return
	}
	now := g.now()
	for ip, a := range g.addrs {
		if a.conns == 0 && now.Sub(a.start) >= loginWindow {
			delete(g.addrs, ip)
		}
	}
}

// listener is the broker's TCP listener (mochi's listeners.Listener): it
// enforces the gate on accept and the CONNECT deadline, and counts why
// connections ended.
type listener struct {
	addr string
	tls  *tls.Config
	pace time.Duration
	gate *gate
	lim  Limits
	hits *counters
	log  *slog.Logger

	ln     net.Listener
	closed atomic.Bool
	wg     sync.WaitGroup
	mu     sync.Mutex
	open   map[*gatedConn]struct{}
	// idle is signalled when the last open connection has ended, its
	// limit hit counted (tests wait on it).
	idle chan struct{}
}

var _ listeners.Listener = (*listener)(nil)

func (l *listener) ID() string       { return "tcp" }
func (l *listener) Protocol() string { return "tcp" }

func (l *listener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

func (l *listener) Init(*slog.Logger) error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

// Serve accepts connections until Close.
func (l *listener) Serve(establish listeners.EstablishFn) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.closed.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of file descriptors and the like: wait, as net/http does.
			l.log.Warn("broker accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		ip := remoteIP(c)
		if why, ok := l.gate.admit(ip); !ok {
			l.hits.add(why)
			l.log.Warn("broker: connection refused", "remote", c.RemoteAddr().String(), "limit", why)
			c.Close()
			continue
		}
		// mochi sets no deadline before CONNECT; it replaces this one
		// with its keepalive once the client has logged in.
		_ = c.SetDeadline(time.Now().Add(l.lim.ConnectTimeout))
		gc := &gatedConn{Conn: c, p: pace.New(c, l.pace)}
		var nc net.Conn = gc
		if l.tls != nil {
			nc = tls.Server(gc, l.tls)
		}
		if !l.track(gc) {
			c.Close()
			l.gate.release(ip)
			return
		}
		go func() {
			defer l.wg.Done()
			err := establish(l.ID(), nc)
			nc.Close()
			l.gate.release(ip)
			l.ended(gc, err)
			l.untrack(gc)
		}()
	}
}

// ended counts a connection that a limit ended.
func (l *listener) ended(gc *gatedConn, err error) {
	if err == nil {
		return
	}
	var ne net.Error
	switch {
	case errors.Is(err, packets.ErrPacketTooLarge):
		l.hits.add(HitPacketTooLarge)
	case !gc.loggedIn.Load() && (errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()):
		l.hits.add(HitConnectTimeout)
	default:
		return
	}
	l.log.Warn("broker: connection closed", "remote", gc.RemoteAddr().String(), "err", err)
}

// track adds an open connection, unless the listener is closed.
func (l *listener) track(gc *gatedConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return false
	}
	if l.open == nil {
		l.open = map[*gatedConn]struct{}{}
	}
	l.open[gc] = struct{}{}
	l.wg.Add(1)
	return true
}

func (l *listener) untrack(gc *gatedConn) {
	l.mu.Lock()
	delete(l.open, gc)
	if len(l.open) == 0 && l.idle != nil {
		select {
		case l.idle <- struct{}{}:
		default:
		}
	}
	l.mu.Unlock()
}

// openConns is how many connections are being served.
func (l *listener) openConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}

// Close stops accepting, disconnects every client (those still before
// their CONNECT too, which mochi does not know of) and waits for their
// goroutines.
func (l *listener) Close(closeClients listeners.CloseFn) {
	if !l.closed.CompareAndSwap(false, true) {
		return
	}
	if l.ln != nil {
		l.ln.Close()
	}
	// The connections are closed, and their goroutines waited for, before
	// mochi is asked to close its clients: its closeListenerClients read-
	// locks its client list twice, and a client ending at that moment
	// write-locks it between the two, a deadlock (mochi-mqtt/server#488).
	// Ended first, no client is left to end meanwhile.
	l.mu.Lock()
	for gc := range l.open {
		gc.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	closeClients(l.ID())
}

// gatedConn is a connection the gate admitted, its reads paced.
type gatedConn struct {
	net.Conn
	p        *pace.Reader
	loggedIn atomic.Bool // CONNECT accepted (the deadline is mochi's now)
}

func (c *gatedConn) Read(b []byte) (int, error) { return c.p.Read(b) }

// Write ends a paced wait: a client waiting for this acknowledgement
// sends its next message now.
func (c *gatedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.p.Poke()
	return n, err
}

func (c *gatedConn) Close() error {
	err := c.Conn.Close()
	c.p.Poke()
	return err
}

// gatedConnOf finds the gatedConn under a client's connection.
func gatedConnOf(c net.Conn) *gatedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	gc, _ := c.(*gatedConn)
	return gc
}

// remoteIP is the IP address of c's peer, without the port.
func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// remoteIPOf is the IP address of a client's peer.
func remoteIPOf(cl *mqtt.Client) string {
	if cl.Net.Conn != nil {
		return remoteIP(cl.Net.Conn)
	}
	host, _, err := net.SplitHostPort(cl.Net.Remote)
	if err != nil {
		return cl.Net.Remote
	}
	return host
}
