// Package conn is vigil's MQTT client side, built on paho.mqtt.golang
// (MQTT 3.1.1): the Subscriber that reads sensor topics with manual
// acknowledgements into a bounded queue, the Publisher that holds the
// upstream connection, the Forwarder that drains the alert outbox through
// it, and Dial, a plain client for the simulator and tests.
//
// It imports only the event package of vigil; the outbox is the small
// interface Outbox declared here and satisfied by store.
//
// # Connecting
//
// Every connection runs paho with AutoReconnect and ConnectRetry off and is
// kept up by our own loop instead: each attempt is one CONNECT, a failure
// (broker down, "not authorized", a bad certificate) is logged with the
// broker's URL, shown in Stats().LastError and retried after an exponential,
// jittered backoff (1 s doubling to 1 min by default), and the loop stops
// at once when the context ends. paho's own retry sleeps cannot be
// interrupted and report nothing about why an attempt failed.
//
// # Queue-full policy (Subscriber)
//
// paho calls our handler on its network goroutine (order matters), so the
// handler never touches disk or network: it copies the message into the
// bounded queue and returns. When the queue is full:
//
//   - QoS 0: the message is dropped at once and counted in Dropped.
//   - QoS 1: the handler waits up to QueueWait (default 100 ms) for room,
//     which slows paho's in-order reader and so the broker (backpressure).
//     If no room appears the message is dropped, NOT acknowledged, and
//     counted. Until a message fits again, further QoS 1 messages are
//     dropped without waiting, so one overload episode stalls paho's reader
//     for one QueueWait, not one per message (a stalled reader misses
//     PINGRESPs and loses the connection).
//
// A broker redelivers an unacknowledged message only when the session
// reconnects, and it stops sending QoS 1 messages once its in-flight window
// (Mosquitto: 20) is full of them. So after QoS 1 drops, once the queue has
// been empty for RedeliverAfter (default 1 s; the consumer's acks get out),
// the Subscriber reconnects on purpose and the broker redelivers what was
// dropped (Dup set). Messages still unacknowledged at a reconnect are
// redelivered too: consumers must de-duplicate.
package conn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Options configure one MQTT connection. Zero values get the defaults
// written next to each field.
type Options struct {
	// Broker is the URL: tcp://, mqtt://, ssl://, tls://, mqtts://, ws://
	// or wss:// host:port. Default tcp://127.0.0.1:1883.
	Broker   string `yaml:"broker"`
	ClientID string `yaml:"client_id"` // default vigil-<hostname> (Publisher: …-upstream)
	Username string `yaml:"username"`
	// Password is the secret itself; the caller reads password_file.
	Password string
	TLS      *tls.Config
	Logger   *slog.Logger // default slog.Default()

	KeepAlive      time.Duration // default 30 s
	ConnectTimeout time.Duration // dial + CONNACK, default 10 s
	// Timeout bounds a publish, subscribe or unsubscribe waiting for the
	// broker's acknowledgement, and a write to the socket. Default 10 s.
	Timeout time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between connection
	// attempts. Default 1 s and 1 min.
	ReconnectMin time.Duration
	ReconnectMax time.Duration
}

// ErrNotConnected is returned by Publish while the connection is down.
var ErrNotConnected = errors.New("mqtt: not connected")

// stableAfter is how long a connection must have lasted for its loss to
// restart the backoff from ReconnectMin; shorter-lived connections (a
// broker that accepts then kicks us, e.g. a duplicate client id) keep
// backing off.
const stableAfter = 30 * time.Second

func (o *Options) fill(idSuffix string) error {
	if o.Broker == "" {
		o.Broker = "tcp://127.0.0.1:1883"
	}
	u, err := url.Parse(o.Broker)
	if err != nil {
		return fmt.Errorf("mqtt broker %q: %w", o.Broker, err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return fmt.Errorf("mqtt broker %q: scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss", o.Broker)
	}
	if u.Host == "" {
		return fmt.Errorf("mqtt broker %q: no host", o.Broker)
	}
	if o.ClientID == "" {
		h, _ := os.Hostname()
		if h == "" {
			h = "gateway"
		}
		o.ClientID = "vigil-" + h + idSuffix
	}
	if len(o.ClientID) > 65535 {
		return errors.New("mqtt client id: too long")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.KeepAlive, 30*time.Second)
	def(&o.ConnectTimeout, 10*time.Second)
	def(&o.Timeout, 10*time.Second)
	def(&o.ReconnectMin, time.Second)
	def(&o.ReconnectMax, time.Minute)
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = o.ReconnectMin
	}
	return nil
}

// pahoOptions are the settings every connection shares; callers add
// handlers. Reconnection is ours (see the package doc), the protocol is
// pinned to 3.1.1 so that a refused CONNECT is not retried as 3.1.
func (o *Options) pahoOptions(clean bool) *paho.ClientOptions {
	return paho.NewClientOptions().
		AddBroker(o.Broker).
		SetClientID(o.ClientID).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetTLSConfig(o.TLS).
		SetProtocolVersion(4).
		SetCleanSession(clean).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(true).
		SetKeepAlive(o.KeepAlive).
		SetPingTimeout(o.Timeout).
		SetConnectTimeout(o.ConnectTimeout).
		SetWriteTimeout(o.Timeout).
		SetCustomOpenConnectionFn(dial)
}

// link keeps one paho client connected until its context ends.
type link struct {
	o    Options
	log  *slog.Logger
	cli  paho.Client
	lost chan error
	// bye, if set, runs before a clean disconnect while connected.
	bye func()

	connected atomic.Bool
	// ready: connected and the session set up (subscribed), what Stats
	// report. Set after connected, so "connected" never shows before the
	// subscriptions exist: a test (or an operator) that publishes then
	// would see the messages go nowhere.
	ready      atomic.Bool
	attempts   atomic.Uint64
	reconnects atomic.Uint64

	mu      sync.Mutex
	lastErr string
}

func newLink(o Options, po *paho.ClientOptions) *link {
	l := &link{o: o, log: o.Logger.With("broker", o.Broker, "client_id", o.ClientID), lost: make(chan error, 1)}
	po.SetConnectionLostHandler(func(_ paho.Client, err error) {
		select {
		case l.lost <- err:
		default:
		}
	})
	l.cli = paho.NewClient(po)
	return l
}

func (l *link) fail(err error) {
	l.mu.Lock()
	l.lastErr = err.Error()
	l.mu.Unlock()
}

func (l *link) lastError() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

// backoff returns the next wait: ReconnectMin first, then doubling up to
// ReconnectMax, each with ±20 % jitter so a fleet does not reconnect in step.
func (l *link) backoff(prev time.Duration) time.Duration {
	next := l.o.ReconnectMin
	if prev > 0 {
		next = min(prev*2, l.o.ReconnectMax)
	}
	return next
}

func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// run connects and keeps reconnecting until ctx ends, then disconnects
// cleanly and returns nil. After each successful connect it calls up (in
// this goroutine); an error from up drops the connection and backs off.
// While connected it calls again every quarter second; when again returns
// true the connection is dropped and re-established at once.
func (l *link) run(ctx context.Context, up func() error, again func() bool) error {
	var wait time.Duration // before the next attempt
	var delay time.Duration
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if !sleep(ctx, jitter(wait)) {
			return nil
		}
		select { // a loss reported for an earlier connection
		case <-l.lost:
		default:
		}
		l.attempts.Add(1)
		tok := l.cli.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			<-tok.Done() // bounded by ConnectTimeout
			if tok.Error() == nil {
				l.cli.Disconnect(250)
			}
			return nil
		}
		if err := tok.Error(); err != nil {
			err = fmt.Errorf("mqtt connect %s: %w", l.o.Broker, err)
			l.fail(err)
			delay = l.backoff(delay)
			wait = delay
			l.log.Warn("mqtt connect failed", "error", err, "retry_in", wait.Round(time.Millisecond))
			continue
		}
		since := time.Now()
		l.connected.Store(true)
		l.log.Info("mqtt connected", "session_present", tok.(*paho.ConnectToken).SessionPresent())
		if up != nil {
			if err := up(); err != nil {
				l.fail(err)
				l.connected.Store(false)
				l.cli.Disconnect(250)
				delay = l.backoff(delay)
				wait = delay
				l.log.Warn("mqtt session setup failed", "error", err, "retry_in", wait.Round(time.Millisecond))
				continue
			}
		}
		l.ready.Store(true)
		wait = l.hold(ctx, tick, again)
		l.ready.Store(false)
		l.connected.Store(false)
		if wait < 0 {
			return nil
		}
		l.reconnects.Add(1)
		if time.Since(since) >= stableAfter || wait == 0 {
			delay = 0
		} else {
			delay = l.backoff(delay)
			wait = delay
		}
	}
}

// hold waits while connected. It returns -1 when ctx ended (after
// disconnecting), 0 for a deliberate reconnect, ReconnectMin for a loss.
func (l *link) hold(ctx context.Context, tick *time.Ticker, again func() bool) time.Duration {
	for {
		select {
		case <-ctx.Done():
			if l.bye != nil {
				l.bye()
			}
			l.cli.Disconnect(250)
			return -1
		case err := <-l.lost:
			err = fmt.Errorf("mqtt connection to %s lost: %w", l.o.Broker, err)
			l.fail(err)
			l.log.Warn("mqtt connection lost", "error", err)
			return l.o.ReconnectMin
		case <-tick.C:
			if again != nil && again() {
				l.cli.Disconnect(250)
				return 0
			}
		}
	}
}

// await waits for a paho token, the timeout or ctx.
func await(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no acknowledgement within %s", timeout)
	}
}

// validFilter checks an MQTT topic filter: '#' only last and alone in its
// level, '+' alone in its level.
func validFilter(f string) error {
	if f == "" {
		return errors.New("empty topic filter")
	}
	levels := strings.Split(f, "/")
	for i, lv := range levels {
		if strings.Contains(lv, "#") && (lv != "#" || i != len(levels)-1) {
			return fmt.Errorf("topic filter %q: '#' must be the last level, alone", f)
		}
		if strings.Contains(lv, "+") && lv != "+" {
			return fmt.Errorf("topic filter %q: '+' must fill a whole level", f)
		}
	}
	return nil
}

// match reports whether topic matches filter (MQTT 3.1.1 §4.7), including
// a shared subscription's filter ($share/group/filter).
func match(filter, topic string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		if _, f, ok := strings.Cut(rest, "/"); ok {
			filter = f
		}
	}
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			// "a/#" matches "a" too.
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}
