package conn

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"

	paho "github.com/eclipse/paho.mqtt.golang"
	netproxy "golang.org/x/net/proxy"
)

// readBuffer is the read buffer of each MQTT connection.
const readBuffer = 16 << 10

// dial opens a connection as paho's own dialer does (same schemes, same
// proxy handling) and buffers what is read from TCP and TLS connections:
// paho reads each packet's fixed header a byte at a time straight from the
// socket, three or more read(2) calls per message, where a buffer serves
// many messages with one.
func dial(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
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
		return buffered(c), nil
	case "ssl", "tls", "mqtts":
		if os.Getenv("all_proxy") == "" {
			c, err := tls.DialWithDialer(d, "tcp", uri.Host, o.TLSConfig)
			if err != nil {
				return nil, err
			}
			return buffered(c), nil
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
		return buffered(tc), nil
	}
	return nil, errors.New("unknown protocol " + uri.Scheme)
}

// bufConn is a net.Conn whose reads go through a buffer; deadlines and
// writes go to the connection itself.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func buffered(c net.Conn) net.Conn { return &bufConn{Conn: c, r: bufio.NewReaderSize(c, readBuffer)} }

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }
