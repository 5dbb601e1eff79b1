package conn

import (
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/broker"
	"github.com/vigil-gw/vigil/event"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// startBroker runs an embedded broker; addr "" picks a free port.
func startBroker(t *testing.T, o broker.Options) *broker.Broker {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	o.Logger = quiet
	b, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	// A restarted broker may find the port briefly busy.
	for i := 0; ; i++ {
		err = b.Start()
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
		b, _ = broker.New(o)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// goRun runs fn(ctx) in a goroutine; the cleanup cancels and waits.
func goRun(t *testing.T, fn func(context.Context) error) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	t.Cleanup(stop)
	return stop
}

func eventually(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	// d only bounds a failure: a condition that holds returns at once. Under
	// qemu arm v7, with other packages' tests on the same two cores, 5 s
	// was hit once (TestQueueFullRedelivery), so no bound is below 20 s.
	d = max(d, 20*time.Second)
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dialT(t *testing.T, o Options) *Client {
	t.Helper()
	o.Logger = quiet
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func recv(t *testing.T, s *Subscriber) Message {
	t.Helper()
	select {
	case m := <-s.Messages():
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("no message; stats %+v", s.Stats())
		return Message{}
	}
}

func noMessage(t *testing.T, s *Subscriber, d time.Duration) {
	t.Helper()
	select {
	case m := <-s.Messages():
		t.Fatalf("unexpected message %s %q", m.Topic, m.Payload)
	case <-time.After(d):
	}
}

// memOutbox is a real, in-memory outbox: it keeps order and removes
// delivered ids.
type memOutbox struct {
	mu     sync.Mutex
	alerts []event.Alert
	fail   error // returned by the next Pending
	// hold, if set, makes Delivered wait until it is closed (a database
	// writer held by something else).
	hold chan struct{}
	// afterRead, if set, runs in Pending after the rows are read.
	afterRead func()
	dead      []event.Alert // set aside
}

func (o *memOutbox) Put(as ...event.Alert) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.alerts = append(o.alerts, as...)
}

func (o *memOutbox) PendingBodies(limit int, skip func(string) bool) ([]event.Outgoing, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.fail; err != nil {
		o.fail = nil
		return nil, err
	}
	var out []event.Outgoing
	for _, a := range o.alerts {
		if len(out) < limit && !skip(a.ID) {
			b, err := a.AppendJSON(nil, true) // as the store keeps it
			if err != nil {
				return nil, err
			}
			out = append(out, event.Outgoing{ID: a.ID, Topic: a.Topic, Body: b})
		}
	}
	if f := o.afterRead; f != nil {
		o.mu.Unlock()
		f()
		o.mu.Lock()
	}
	return out, nil
}

func (o *memOutbox) Delivered(ids []string) error {
	if o.hold != nil {
		<-o.hold
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.alerts = slices.DeleteFunc(o.alerts, func(a event.Alert) bool { return slices.Contains(ids, a.ID) })
	return nil
}

func (o *memOutbox) SetAside(id, reason string, attempts int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.alerts = slices.DeleteFunc(o.alerts, func(a event.Alert) bool {
		if a.ID == id {
			o.dead = append(o.dead, a)
			return true
		}
		return false
	})
	return nil
}

func (o *memOutbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.alerts)
}

// proxy forwards TCP to a broker and can be cut and restored on the same
// port: an upstream that goes away and comes back.
type proxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, addr: ln.Addr().String(), target: target}
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(u, c); u.Close() }()
			go func() { defer p.wg.Done(); io.Copy(c, u); c.Close() }()
		}
	}()
}

// down closes the listener and every connection: the port refuses.
func (p *proxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) up() {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serve(ln)
}
