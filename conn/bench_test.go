package conn

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/broker"
)

// BenchmarkHandle is the cost paho's network goroutine pays per message.
func BenchmarkHandle(b *testing.B) {
	s, err := NewSubscriber(Options{Logger: quiet}, []string{"sensors/+/temperature", "shop/#"}, 1024)
	if err != nil {
		b.Fatal(err)
	}
	m := &fakeMsg{topic: "sensors/pump1/temperature", qos: 1}
	b.ReportAllocs()
	for b.Loop() {
		s.handle(nil, m)
		<-s.queue
	}
}

// BenchmarkEndToEnd publishes QoS 1 over loopback TCP through the
// embedded broker into a Subscriber that acks each message.
func BenchmarkEndToEnd(b *testing.B) {
	br, err := broker.New(broker.Options{Listen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(); err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	s, err := NewSubscriber(Options{Broker: "tcp://" + br.Addr(), ClientID: "bench", Logger: quiet}, []string{"b/#"}, 0)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for !s.Stats().Connected {
		time.Sleep(time.Millisecond)
	}
	pub, err := Dial(ctx, Options{Broker: "tcp://" + br.Addr(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	payload := []byte(`{"temperature": 81.5, "ts": "2026-01-05T10:00:00Z"}`)
	consumed := make(chan struct{})
	defer func() { <-consumed }()
	go func() {
		defer close(consumed)
		for range b.N {
			m := <-s.Messages()
			m.Ack()
		}
	}()
	b.ResetTimer()
	for range b.N {
		// One round trip per message: the broker downgrades delivery to
		// the publish QoS, so publish at 1.
		if err := pub.Publish("b/x", payload, 1, false); err != nil {
			b.Fatal(err)
		}
	}
}
