package gateway

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-gw/vigil/broker"
	"github.com/vigil-gw/vigil/config"
	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/event"
)

// inProcessConfig is config with the embedded broker on a free loopback
// port and mqtt.broker omitted: in-process ingest.
func inProcessConfig(t *testing.T, dir, up, rulesYAML string) *config.Config {
	c := testConfig(t, dir, "", up, rulesYAML)
	c.Broker.Listen = "127.0.0.1:0"
	c.MQTT.Broker = ""
	c.MQTT.InProcess = true
	return c
}

// pahoDevice connects a plain paho client, for what conn.Client hides:
// publishing without waiting for the PUBACK.
func pahoDevice(t *testing.T, addr, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// TestInProcessPublishToUpstream: with an embedded broker and mqtt.broker
// omitted, readings reach the engine in-process (no subscription: the
// broker has only the device and the upstream clients) and alerts go
// upstream.
func TestInProcessPublishToUpstream(t *testing.T) {
	upb := startBroker(t, "")
	up := watchUpstream(t, upb.Addr())
	c := inProcessConfig(t, t.TempDir(), upb.Addr(), hotRules)
	g, _ := start(t, c)
	if _, ok := g.Subscriber().(*inline); !ok {
		t.Fatalf("ingest is %T, want in-process", g.Subscriber())
	}
	dev := device(t, g.Broker().Addr())
	ts := time.Now().UTC().Truncate(time.Millisecond)
	publish(t, dev, "sensors/pump1/temperature", fmt.Sprintf(`{"temperature": 85.5, "ts": %q}`, ts.Format(time.RFC3339Nano)))
	publish(t, dev, "other/topic", `{"temperature": 99}`) // no rule reads it
	if err := dev.Publish("sensors/pump2/temperature", []byte(`{"temperature": 95}`), 0, false); err != nil {
		t.Fatal(err)
	}
	got := up.waitFor(t, 2, 10*time.Second)
	keys := map[string]bool{}
	for _, a := range got {
		if a.Rule != "hot_motor" || a.State != event.Firing {
			t.Fatalf("alert %+v", a)
		}
		keys[a.Key] = true
	}
	if !keys["pump1"] || !keys["pump2"] {
		t.Fatalf("alerts for %v, want pump1 and pump2", keys)
	}
	st := g.Subscriber().Stats()
	if st.Received != 2 || st.Ignored != 1 || st.Dropped != 0 || !st.Connected {
		t.Fatalf("ingest stats %+v", st)
	}
}

// TestInProcessAckAfterJournal: a device's QoS 1 message is acknowledged
// only once the journal holds it. The journal refuses to grow (at its size
// limit, as on a full disk): the device gets no PUBACK, a QoS 0 message is
// dropped and counted, and the gateway says it is degraded; once the
// journal takes writes again the held message is journaled, acknowledged
// and processed. (Subscribing to the embedded broker instead, the broker
// acknowledged on receipt.)
func TestInProcessAckAfterJournal(t *testing.T) {
	upb := startBroker(t, "")
	up := watchUpstream(t, upb.Addr())
	c := inProcessConfig(t, t.TempDir(), upb.Addr(), hotRules)
	g, _ := start(t, c)
	dev := pahoDevice(t, g.Broker().Addr(), "dev-ack")
	// One message first, so the journal has a file.
	if tok := dev.Publish("sensors/pump1/temperature", 1, false, `{"temperature": 20}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("first publish: %v", tok.Error())
	}
	g.DB().SetJournalMax(g.DB().Stats().JournalBytes) // full
	before := g.DB().LastPos()
	tok := dev.Publish("sensors/pump1/temperature", 1, false, `{"temperature": 91}`)
	if tok.WaitTimeout(700 * time.Millisecond) {
		t.Fatalf("PUBACK while the journal could not be written (err %v)", tok.Error())
	}
	if tok := dev.Publish("sensors/pump2/temperature", 0, false, `{"temperature": 92}`); !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("QoS 0 publish not sent")
	}
	waitFor(t, g, 5*time.Second, "degraded, the QoS 0 message dropped", func() bool {
		st := g.Status()
		return st.Degraded && st.JournalErrors > 0 && st.JournalDropped == 1
	})
	if g.DB().LastPos() != before {
		t.Fatalf("journal moved while full: %d -> %d", before, g.DB().LastPos())
	}
	g.DB().SetJournalMax(1 << 30) // space is back
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("no PUBACK once the journal took writes again: %v", tok.Error())
	}
	if after := g.DB().LastPos(); after != before+1 {
		t.Fatalf("journal at position %d after the PUBACK, %d before", after, before)
	}
	got := up.waitFor(t, 1, 10*time.Second)
	if got[0].Key != "pump1" {
		t.Fatalf("alert %+v: want the held pump1 reading's (pump2's QoS 0 was dropped)", got[0])
	}
	if st := g.Status(); st.Degraded {
		t.Fatalf("still degraded: %+v", st)
	}
}

// testBroker is a real, unstarted broker for an in-process ingest.
func testBroker(t *testing.T) *broker.Broker {
	b, err := broker.New(broker.Options{Listen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInProcessQueueFull: the queue-full policy. QoS 0 waits a little, then
// is dropped and counted; QoS 1 waits for room however long, then is held
// until the journal writer's ack releases it; QoS 2 waits for the ack on
// the connection; after the stop, a message not yet queued is refused (the
// device sends it again). In a synctest bubble: "waits" are the goroutine
// blocked (synctest.Wait), and qos0Wait passes on the bubble's clock.
func TestInProcessQueueFull(t *testing.T) {
	b := testBroker(t)
	synctest.Test(t, func(t *testing.T) { testQueueFull(t, b) })
}

func testQueueFull(t *testing.T, b *broker.Broker) {
	in, err := newInline(b, []string{"s/#"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- in.Run(ctx) }()
	// The releaser, as Run (gateway.go) runs it: until the acks end.
	acksEnded, endAcks := context.WithCancel(context.Background())
	relDone := make(chan error, 1)
	go func() { relDone <- in.rel.Run(acksEnded) }()
	defer func() { endAcks(); <-relDone }()

	if v := in.inbound(broker.Publish{Topic: "s/1", Payload: []byte("1")}); v != broker.Pass {
		t.Fatalf("QoS 0 into an empty queue: %v", v)
	}
	t0 := time.Now()
	if v := in.inbound(broker.Publish{Topic: "s/1", Payload: []byte("2")}); v != broker.Pass {
		t.Fatalf("QoS 0 into a full queue: %v; it is dropped, and the broker may still deliver it", v)
	}
	if d := time.Since(t0); d != qos0Wait {
		t.Fatalf("QoS 0 dropped after %v, not after waiting %v for room", d, qos0Wait)
	}
	if st := in.Stats(); st.Received != 1 || st.Dropped != 1 {
		t.Fatalf("stats %+v", st)
	}
	if v := in.inbound(broker.Publish{Topic: "x/1", Payload: []byte("3"), QoS: 1, PacketID: 9}); v != broker.Pass || in.Stats().Ignored != 1 {
		t.Fatalf("an unwanted topic is passed on, not queued: %v %+v", v, in.Stats())
	}

	// QoS 1 behind a full queue: no answer until there is room, then held;
	// the journal writer's ack is the broker's release.
	res := make(chan broker.Verdict, 1)
	released := make(chan bool, 1)
	go func() {
		res <- in.inbound(broker.Publish{Topic: "s/2", Payload: []byte("4"), QoS: 1, PacketID: 7, Client: "d1", Dup: true,
			Release: func() { released <- true }})
	}()
	synctest.Wait() // it waits for room, however long
	select {
	case v := <-res:
		t.Fatalf("QoS 1 answered %v with the queue full", v)
	default:
	}
	if m := <-in.Messages(); string(m.Payload) != "1" {
		t.Fatalf("first message %q", m.Payload)
	}
	if v := <-res; v != broker.Hold {
		t.Fatalf("QoS 1 once queued: %v, want held", v)
	}
	m := <-in.Messages()
	if string(m.Payload) != "4" || m.QoS != 1 || m.ID != 7 || m.Client != "d1" || !m.Dup || m.Ack == nil {
		t.Fatalf("queued %+v", m)
	}
	synctest.Wait()
	select {
	case <-released:
		t.Fatal("released before the ack")
	default:
	}
	m.Ack()
	if !<-released {
		t.Fatal("not released")
	}

	// QoS 2 waits for its ack on the connection.
	go func() { res <- in.inbound(broker.Publish{Topic: "s/5", QoS: 2, PacketID: 11}) }()
	m = <-in.Messages()
	synctest.Wait()
	select {
	case v := <-res:
		t.Fatalf("QoS 2 answered %v before its ack", v)
	default:
	}
	m.Ack()
	if v := <-res; v != broker.Pass {
		t.Fatalf("QoS 2 after its ack: %v", v)
	}

	// The stop: a QoS 1 message waiting for room is refused, and nothing
	// enters the queue once Run has returned.
	in.queue <- conn.Message{Topic: "s/fill"}
	go func() { res <- in.inbound(broker.Publish{Topic: "s/3", QoS: 1, PacketID: 8, Release: func() {}}) }()
	synctest.Wait() // it waits for room
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	if v := <-res; v != broker.Refuse {
		t.Fatalf("QoS 1 waiting for room at the stop: %v, want refused", v)
	}
	<-in.Messages()
	if v := in.inbound(broker.Publish{Topic: "s/4", QoS: 1, PacketID: 10, Release: func() {}}); v != broker.Refuse {
		t.Fatalf("QoS 1 after Run returned: %v", v)
	}
	if len(in.queue) != 0 {
		t.Fatal("a message entered the queue after Run returned")
	}
}

// TestInProcessPipelined: one connection with many QoS 1 messages in flight
// (a bridge publishing a whole fleet) is not held to one per commit: all are
// journaled and acknowledged. Alone, its PUBACKs are written in batches; with
// another subscriber of the embedded broker, that one still gets each
// message, in order, at QoS 1, once it is released.
func TestInProcessPipelined(t *testing.T) {
	for _, other := range []bool{false, true} {
		t.Run(fmt.Sprintf("other-subscriber=%v", other), func(t *testing.T) { testPipelined(t, other) })
	}
}

func testPipelined(t *testing.T, other bool) {
	c := inProcessConfig(t, t.TempDir(), "", hotRules)
	g, _ := start(t, c)
	addr := g.Broker().Addr()
	type got struct {
		payload string
		qos     byte
	}
	recv := make(chan got, 1000)
	if other {
		sub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("other-sub"))
		if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		defer sub.Disconnect(100)
		if tok := sub.Subscribe("sensors/#", 1, func(_ paho.Client, m paho.Message) { recv <- got{string(m.Payload()), m.Qos()} }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	dev := pahoDevice(t, addr, "dev-bridge")
	const n = 500
	toks := make([]paho.Token, n)
	for i := range toks {
		toks[i] = dev.Publish(fmt.Sprintf("sensors/d%d/temperature", i%7), 1, false, fmt.Sprintf(`{"temperature": %d}`, i))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	if pos := g.DB().LastPos(); pos < n {
		t.Fatalf("journal at %d after %d PUBACKs", pos, n)
	}
	for i := 0; other && i < n; i++ {
		select {
		case m := <-recv:
			if want := fmt.Sprintf(`{"temperature": %d}`, i); m.payload != want || m.qos != 1 {
				t.Fatalf("subscriber's message %d: %q at QoS %d, want %q at QoS 1", i, m.payload, m.qos, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("subscriber got %d of %d messages", i, n)
		}
	}
	waitEvents(t, g, n)
	if !dev.IsConnectionOpen() {
		t.Fatal("the device was disconnected")
	}
}

// TestInProcessCommitGap: with state.commit_gap, a message arriving just
// after a commit waits for the gap before it is journaled (and
// acknowledged); without it, it is committed at once (the other tests).
func TestInProcessCommitGap(t *testing.T) {
	c := inProcessConfig(t, t.TempDir(), "", hotRules)
	c.State.CommitGap = 300 * time.Millisecond
	g, _ := start(t, c)
	dev := pahoDevice(t, g.Broker().Addr(), "dev-gap")
	if tok := dev.Publish("sensors/pump1/temperature", 1, false, `{"temperature": 20}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("first: %v", tok.Error())
	}
	t0 := time.Now()
	if tok := dev.Publish("sensors/pump1/temperature", 1, false, `{"temperature": 21}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("second: %v", tok.Error())
	}
	if d := time.Since(t0); d < 150*time.Millisecond {
		t.Fatalf("second message acknowledged after %v, within the 300 ms commit gap", d)
	}
	waitEvents(t, g, 2)
	// Each waited for its own acknowledgement: two journal transactions.
	if n := g.Status().JournalCommits; n != 2 {
		t.Fatalf("%d journal commits for two messages acknowledged one after the other, want 2", n)
	}
}

// TestInProcessTopicOwnsItsBytes: the broker's topic points into the
// packet it read (payload and all); the queued message must own a copy, or
// every topic the engine keeps (routes, captures, events held by rules)
// keeps a whole packet alive: 2 MB for 10,000 devices.
func TestInProcessTopicOwnsItsBytes(t *testing.T) {
	in := &inline{queue: make(chan conn.Message, 1), stop: make(chan struct{})}
	fs := []string{"sensors/#"}
	in.filters.Store(&fs)
	packet := []byte("sensors/pump1/temperature{\"temperature\":21}")
	topic := unsafe.String(&packet[0], len("sensors/pump1/temperature"))
	if v := in.inbound(broker.Publish{Topic: topic, Payload: packet[len(topic):]}); v != broker.Pass {
		t.Fatalf("verdict %v", v)
	}
	m := <-in.queue
	if m.Topic != topic {
		t.Fatalf("topic %q", m.Topic)
	}
	if unsafe.StringData(m.Topic) == unsafe.StringData(topic) {
		t.Fatal("the queued topic shares the packet's memory")
	}
}
