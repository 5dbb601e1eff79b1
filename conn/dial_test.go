package conn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/vigil-gw/vigil/broker"
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
	c := buffered(raw, 0)
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

// slowConn is a "socket" whose writes take a millisecond each, into a
// buffer; fail makes them fail.
type slowConn struct {
	net.Conn
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	fail   error
	closed bool
}

func (c *slowConn) Write(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes++
	return c.buf.Write(p)
}

func (c *slowConn) Close() error { c.mu.Lock(); c.closed = true; c.mu.Unlock(); return nil }

// TestCoalescedWrites: packets written while one write is in flight go
// together, in order, none lost; Close sends what is queued; after a
// failed write, Writes fail.
func TestCoalescedWrites(t *testing.T) {
	raw := &slowConn{}
	c := coalesce(raw)
	var want bytes.Buffer
	for i := 0; i < 1000; i++ {
		p := []byte(fmt.Sprintf("packet %d;", i))
		want.Write(p)
		if n, err := c.Write(p); n != len(p) || err != nil {
			t.Fatalf("write %d: %d %v", i, n, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	raw.mu.Lock()
	got, writes, closed := raw.buf.String(), raw.writes, raw.closed
	raw.mu.Unlock()
	if got != want.String() || !closed {
		t.Fatalf("after Close: %d of %d bytes, closed %v", len(got), want.Len(), closed)
	}
	if writes > 100 {
		t.Fatalf("1000 packets took %d writes of the socket", writes)
	}
	if _, err := c.Write([]byte("late")); err == nil {
		t.Fatal("Write after Close succeeded")
	}

	broken := &slowConn{fail: errors.New("connection reset")}
	c = coalesce(broken)
	c.Write([]byte("a"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.Write([]byte("b")); err != nil {
			if !strings.Contains(err.Error(), "connection reset") {
				t.Fatalf("error %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes kept succeeding after the socket failed")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDialCoalescedPaho: a paho client over DialCoalesced publishes a
// thousand QoS 1 messages back to back through a real broker, in order.
func TestDialCoalescedPaho(t *testing.T) {
	b := startBroker(t, broker.Options{}).Addr()
	got := make(chan string, 1000)
	sub, err := Dial(context.Background(), Options{Broker: "tcp://" + b, ClientID: "coal-sub", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := sub.Subscribe("coal/#", 1, func(_ string, p []byte) { got <- string(p) }); err != nil {
		t.Fatal(err)
	}
	pc := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b).SetClientID("coal-pub").SetCustomOpenConnectionFn(DialCoalesced))
	if tok := pc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	toks := make([]paho.Token, 1000)
	for i := range toks {
		toks[i] = pc.Publish("coal/x", 1, false, fmt.Sprint(i))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	pc.Disconnect(250)
	for i := 0; i < 1000; i++ {
		select {
		case p := <-got:
			if p != fmt.Sprint(i) {
				t.Fatalf("message %d is %q", i, p)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d of 1000", i)
		}
	}
}
