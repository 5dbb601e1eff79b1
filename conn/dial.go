package conn

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"
	"runtime"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/vigil-gw/vigil/internal/pace"
	netproxy "golang.org/x/net/proxy"
)

// readBuffer is the read buffer of each MQTT connection.
const readBuffer = 16 << 10

// dial opens a connection as paho's own dialer does (same schemes, same
// proxy handling) and buffers what is read from TCP and TLS connections:
// paho reads each packet's fixed header a byte at a time straight from the
// socket, three or more read(2) calls per message, where a buffer serves
// many messages with one.
func dial(uri *url.URL, o paho.ClientOptions) (net.Conn, error) { return dialPaced(uri, o, 0) }

// subscriberDial is dial for a subscription: its reads paced to one per
// every while messages keep coming (internal/pace), its writes coalesced
// (coalConn), so the acknowledgements of a journal commit, a PUBACK per
// message, leave in a few write(2) calls instead of one each.
func subscriberDial(every time.Duration) paho.OpenConnectionFunc {
	return func(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
		c, err := dialPaced(uri, o, every)
		if err != nil {
			return nil, err
		}
		return coalesce(c), nil
	}
}

func dialPaced(uri *url.URL, o paho.ClientOptions, every time.Duration) (net.Conn, error) {
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	switch uri.Scheme {
	case "ws", "wss":
		u := *uri
		u.User = nil
		var tc *tls.Config
		if uri.Scheme == "wss" {
			tc = o.TLSConfig
		}
		return paho.NewWebsocket(u.String(), tc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	case "tcp", "mqtt":
		c, err := netproxy.FromEnvironmentUsing(d).Dial("tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		return buffered(c, every), nil
	case "ssl", "tls", "mqtts":
		if os.Getenv("all_proxy") == "" {
			c, err := tls.DialWithDialer(d, "tcp", uri.Host, o.TLSConfig)
			if err != nil {
				return nil, err
			}
			return buffered(c, every), nil
		}
		c, err := netproxy.FromEnvironment().Dial("tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, o.TLSConfig)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		return buffered(tc, every), nil
	}
	return nil, errors.New("unknown protocol " + uri.Scheme)
}

// bufConn is a net.Conn whose reads go through a buffer, filled at the
// pace of a pace.Reader; deadlines and writes go to the connection itself.
type bufConn struct {
	net.Conn
	r *bufio.Reader
	p *pace.Reader
}

// buffered buffers c's reads, paced to one read per every while messages
// keep coming (0: unpaced).
func buffered(c net.Conn, every time.Duration) net.Conn {
	p := pace.New(c, every)
	return &bufConn{Conn: c, r: bufio.NewReaderSize(p, readBuffer), p: p}
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write also ends a paced wait: what is written (a PUBACK, a PINGREQ)
// makes the broker answer or send more.
func (c *bufConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.p.Poke()
	return n, err
}

func (c *bufConn) Close() error {
	err := c.Conn.Close()
	c.p.Poke()
	return err
}

// DialCoalesced is paho's OpenConnectionFunc for a client that publishes
// many messages back to back (the simulator, a load generator): reads are
// buffered as dial's are, and writes made while one is in flight are sent
// together (coalesced). paho writes each packet with its own Write, one
// system call per message; a flood then costs one per batch.
func DialCoalesced(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	c, err := dial(uri, o)
	if err != nil {
		return nil, err
	}
	return coalesce(c), nil
}

// maxPending bounds the bytes a coalescing connection holds unsent; a
// writer beyond it waits, as it would for a full socket buffer.
const maxPending = 256 << 10

// coalesceMin: with less than this queued, the flusher yields once before
// writing, so that what is being written meanwhile goes in the same write.
const coalesceMin = 16 << 10

// coalConn gathers writes while one is in flight and sends them with the
// next write(2): a Write returns once its bytes are queued, a write error
// is returned by the Writes and the Close after it, and Close sends what is
// queued first (paho's DISCONNECT among it). Without a backlog a Write is
// sent at once, by the flushing goroutine, so it adds no waiting.
type coalConn struct {
	net.Conn
	mu       sync.Mutex
	cond     sync.Cond
	pending  []byte
	spare    []byte
	flushing bool
	err      error
}

func coalesce(c net.Conn) *coalConn {
	cc := &coalConn{Conn: c}
	cc.cond.L = &cc.mu
	return cc
}

func (c *coalConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) >= maxPending && c.err == nil {
		c.cond.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	c.pending = append(c.pending, p...)
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
	return len(p), nil
}

// flush writes the queue until it is empty; what is written meanwhile
// goes with the next round.
func (c *coalConn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) > 0 && c.err == nil {
		if len(c.pending) < coalesceMin {
			// Let the writers that are running add theirs first: a flood
			// otherwise goes out a few packets per write(2), and on
			// loopback each write also runs the receiver's side.
			c.mu.Unlock()
			runtime.Gosched()
			c.mu.Lock()
		}
		buf := c.pending
		c.pending = c.spare[:0]
		c.mu.Unlock()
		_, err := c.Conn.Write(buf)
		c.mu.Lock()
		c.spare = buf[:0]
		if err != nil {
			c.err = err
		}
		c.cond.Broadcast()
	}
	c.flushing = false
	c.cond.Broadcast()
}

// Close sends what is queued (for at most closeFlush), then closes.
func (c *coalConn) Close() error {
	c.mu.Lock()
	deadline := time.Now().Add(closeFlush)
	for c.flushing && c.err == nil && time.Now().Before(deadline) {
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
		c.mu.Lock()
	}
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	return c.Conn.Close()
}

const closeFlush = time.Second
