package conn

import (
	"bytes"
	"net"
	"net/url"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// countConn counts reads from the "socket".
type countConn struct {
	net.Conn
	r     *bytes.Reader
	reads int
}

func (c *countConn) Read(p []byte) (int, error) { c.reads++; return c.r.Read(p) }

// TestBufferedReads: paho reads a packet's header a byte at a time; through
// buffered, a hundred messages cost a couple of reads of the socket, not
// three hundred.
func TestBufferedReads(t *testing.T) {
	var wire bytes.Buffer
	for i := 0; i < 100; i++ {
		pk := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
		pk.TopicName, pk.Qos, pk.MessageID, pk.Payload = "sensors/d1/temperature", 1, uint16(i+1), []byte(`{"temperature":21.5}`)
		if err := pk.Write(&wire); err != nil {
			t.Fatal(err)
		}
	}
	raw := &countConn{r: bytes.NewReader(wire.Bytes())}
	c := buffered(raw)
	for i := 0; i < 100; i++ {
		pk, err := packets.ReadPacket(c)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if p := pk.(*packets.PublishPacket); p.MessageID != uint16(i+1) || string(p.Payload) != `{"temperature":21.5}` {
			t.Fatalf("packet %d: %+v", i, p)
		}
	}
	if raw.reads > 2 {
		t.Fatalf("%d reads of the socket for 100 messages, want at most 2", raw.reads)
	}
}

// TestDialBuffersTCP: tcp:// connections are buffered; the TLS path is
// exercised by TestDialTLS.
func TestDialBuffersTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	u, _ := url.Parse("tcp://" + ln.Addr().String())
	c, err := dial(u, *paho.NewClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*bufConn); !ok {
		t.Fatalf("dial returned %T, want a buffered connection", c)
	}
	if _, err := dial(&url.URL{Scheme: "gopher", Host: "x:1"}, *paho.NewClientOptions()); err == nil {
		t.Fatal("dial accepted an unknown scheme")
	}
}
