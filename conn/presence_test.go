package conn

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/broker"
)

// TestPublisherPresence: the upstream connection's will, OnConnect,
// subscriptions and OnStop, against the embedded broker over TCP. A proxy
// cut stands for a gateway that vanished: the broker publishes the will.
func TestPublisherPresence(t *testing.T) {
	b := startBroker(t, broker.Options{})
	watch := dialT(t, Options{Broker: "tcp://" + b.Addr()})
	if err := watch.Publish("p/rules", []byte("bundle"), 1, true); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	last := map[string]string{}
	get := func(topic string) string { mu.Lock(); defer mu.Unlock(); return last[topic] }
	if err := watch.Subscribe("p/status", 1, func(topic string, payload []byte) {
		mu.Lock()
		last[topic] = string(payload)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}

	px := newProxy(t, b.Addr())
	var p *Publisher
	connects := 0
	var got []string
	p, err := NewPublisherWith(Options{Broker: "tcp://" + px.addr, ClientID: "gw-up", Logger: quiet, ReconnectMin: 50 * time.Millisecond},
		PublisherOptions{
			WillTopic: "p/status", WillPayload: []byte("offline (will)"),
			OnConnect: func(ctx context.Context) error {
				mu.Lock()
				connects++
				mu.Unlock()
				return p.PublishRetained(ctx, "p/status", []byte("online"))
			},
			Filters: []string{"p/rules"},
			OnMessage: func(topic string, payload []byte) {
				mu.Lock()
				got = append(got, topic+"="+string(payload))
				mu.Unlock()
			},
			OnStop: func(ctx context.Context) {
				if err := p.PublishRetained(ctx, "p/status", []byte("offline (stop)")); err != nil {
					t.Errorf("OnStop publish: %v", err)
				}
			},
		})
	if err != nil {
		t.Fatal(err)
	}
	stop := goRun(t, p.Run)
	eventually(t, "online", 10*time.Second, func() bool { return get("p/status") == "online" })
	eventually(t, "the retained message on the subscribed filter", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1 && got[0] == "p/rules=bundle"
	})

	px.down()
	eventually(t, "the will", 10*time.Second, func() bool { return get("p/status") == "offline (will)" })
	px.up()
	eventually(t, "online after the reconnect", 10*time.Second, func() bool { return get("p/status") == "online" })
	// OnConnect runs before the subscription: the retained message comes
	// again after it.
	eventually(t, "the retained message again after the reconnect", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2 && got[1] == "p/rules=bundle"
	})
	mu.Lock()
	if connects != 2 {
		t.Errorf("after a reconnect: %d connects, want 2", connects)
	}
	mu.Unlock()

	stop()
	eventually(t, "the clean stop's status", 10*time.Second, func() bool { return get("p/status") == "offline (stop)" })
	// The clean disconnect discards the will: it is not published after.
	watch2 := dialT(t, Options{Broker: "tcp://" + b.Addr()})
	retained := make(chan string, 1)
	if err := watch2.Subscribe("p/status", 1, func(_ string, payload []byte) { retained <- string(payload) }); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-retained:
		if s != "offline (stop)" {
			t.Fatalf("retained status after a clean stop: %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no retained status")
	}
}
