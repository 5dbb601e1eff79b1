package gateway

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-gw/vigil/broker"
	"github.com/vigil-gw/vigil/conn"
)

// Ingest is where the gateway's messages come from: a subscription to a
// broker (conn.Subscriber), or the embedded broker in-process (inline).
type Ingest interface {
	// Messages is the bounded queue the journal writer reads.
	Messages() <-chan conn.Message
	// Run delivers until ctx ends; nothing enters the queue after it
	// returns.
	Run(ctx context.Context) error
	SetFilters(filters []string) error
	Stats() conn.SubStats
}

// inline takes the embedded broker's messages in-process, on each
// publishing client's connection goroutine (broker.OnInbound), instead of
// a subscription over loopback: no MQTT client in vigil, no second copy
// of every message through the broker.
//
// A QoS 1 message is acknowledged to the device only once the journal
// holds it: the broker holds it (broker.Hold) and the journal writer's ack
// releases it after the commit. That is the contract's "journaled before
// acknowledged" from the device itself, which a subscription to the
// embedded broker cannot give: the broker acknowledged the device on
// receipt and kept the message only in memory. A device may have many
// messages held at once (the broker goes on reading its connection), so a
// connection carrying a whole fleet is not slowed to one message per
// commit. QoS 2 (rare on sensors) waits for the commit on the connection.
//
// When the queue is full a QoS 1 or 2 message waits for room, holding up
// its connection (TCP pushes back on the device; nothing is acknowledged
// meanwhile, so nothing is lost); a QoS 0 message waits up to qos0Wait and
// is then dropped and counted. When the gateway stops, a message not yet
// queued is refused: the device sends it again after reconnecting.
type inline struct {
	b       *broker.Broker
	queue   chan conn.Message
	filters atomic.Pointer[[]string]

	// mu is held for reading while putting into the queue; Run's end takes
	// it, so nothing enters the queue after Run returns.
	mu      sync.RWMutex
	closed  bool
	stop    chan struct{} // closed when Run's context ends
	running atomic.Bool

	// rel releases the held QoS 1 messages the journal writer has acked.
	rel *releaser

	received, dropped, ignored, refused atomic.Uint64
	limits                              conn.IngestLimits
	atDoor                              conn.Refusals // over limits
	log                                 *slog.Logger
}

const (
	qos0Wait = 100 * time.Millisecond
	// stopAckWait is how long a device's QoS 1 message, queued before the
	// stop, waits for the final drain's commit before it is refused.
	stopAckWait = 5 * time.Second
)

func newInline(b *broker.Broker, filters []string, queue int) (*inline, error) {
	fs, err := conn.CleanFilters(filters)
	if err != nil {
		return nil, err
	}
	if queue <= 0 {
		queue = conn.DefaultQueue
	}
	in := &inline{b: b, queue: make(chan conn.Message, queue), stop: make(chan struct{}),
		rel: &releaser{b: b, queue: make(chan func(), queue)}}
	in.filters.Store(&fs)
	b.OnInbound(in.inbound)
	return in, nil
}

// releaser releases the held QoS 1 messages the journal writer has acked,
// in order, on its own goroutine (Run): their PUBACKs are written (a system
// call per client and batch), and a message other clients subscribe to is
// delivered, work the journal writer need not wait for.
type releaser struct {
	b *broker.Broker
	// queue holds at most one release per message in the ingest queue, as
	// long as it: an ack never waits for room.
	queue chan func()
}

// Run releases until ctx has ended and the queue is empty. Run
// (gateway.go) ends ctx once the journal writer has returned: no more acks
// come, and the last ones are released before the broker closes.
func (r *releaser) Run(ctx context.Context) error {
	defer r.b.FlushReleases()
	for {
		select {
		case rel := <-r.queue:
			rel()
		case <-ctx.Done():
			select {
			case rel := <-r.queue:
				rel()
			default:
				return nil
			}
		}
		// What the journal writer acked meanwhile goes out with it: one
		// write of PUBACKs per client.
	more:
		for i := 0; i < maxBatch; i++ {
			select {
			case rel := <-r.queue:
				rel()
			default:
				break more
			}
		}
		r.b.FlushReleases()
	}
}

func (in *inline) Messages() <-chan conn.Message { return in.queue }

func (in *inline) Run(ctx context.Context) error {
	if !in.running.CompareAndSwap(false, true) {
		return errors.New("in-process ingest: Run called twice")
	}
	<-ctx.Done()
	close(in.stop) // first: it frees the putters blocked on a full queue
	in.mu.Lock()
	in.closed = true
	in.mu.Unlock()
	return nil
}

func (in *inline) SetFilters(filters []string) error {
	fs, err := conn.CleanFilters(filters)
	if err != nil {
		return err
	}
	in.filters.Store(&fs)
	return nil
}

func (in *inline) Stats() conn.SubStats {
	return conn.SubStats{
		Connected: in.running.Load(), // from the broker's start: no connection to lose
		Received:  in.received.Load(),
		Dropped:   in.dropped.Load(),
		Ignored:   in.ignored.Load(),
		Refused:   in.atDoor.Counts(),
	}
}

// inbound runs on the publishing client's connection goroutine.
func (in *inline) inbound(p broker.Publish) broker.Verdict {
	if !conn.Matches(*in.filters.Load(), p.Topic) {
		in.ignored.Add(1)
		return broker.Pass
	}
	if why := in.limits.Refuse(p.Topic, p.Payload); why != "" {
		in.atDoor.Add(why)
		if in.atDoor.LogNow() && in.log != nil {
			in.log.Warn("message refused at the door (at most one line every 10 s)", "reason", why, "client", p.Client,
				"topic_bytes", len(p.Topic), "payload_bytes", len(p.Payload), "refused", in.atDoor.Counts())
		}
		return broker.Pass // acknowledged to the device, never queued
	}
	// The topic is cloned: the engine keeps it (its route cache, the
	// captures taken from it, the events rules hold), and p.Topic points
	// into the packet, which it would keep whole, payload and all: 2 MB
	// of packets for 10,000 devices.
	m := conn.Message{Topic: strings.Clone(p.Topic), Payload: p.Payload, QoS: p.QoS, Received: time.Now(),
		ID: p.PacketID, Dup: p.Dup, Client: p.Client}
	var acked chan struct{}
	switch {
	case p.Release != nil:
		// At most one per queued message: the channel, as long as the
		// queue, has room.
		rel := p.Release // not p: the closure would move all of p to the heap
		q := in.rel.queue
		m.Ack = func() { q <- rel }
	case m.QoS > 0:
		acked = make(chan struct{})
		m.Ack = func() { close(acked) }
	}
	if !in.put(m) {
		if m.QoS == 0 {
			in.dropped.Add(1)
			return broker.Pass
		}
		in.refused.Add(1)
		return broker.Refuse
	}
	in.received.Add(1)
	if p.Release != nil {
		return broker.Hold
	}
	if acked == nil {
		return broker.Pass
	}
	select {
	case <-acked:
		return broker.Pass
	case <-in.stop:
	}
	// Stopping: the journal writer still drains the queue; wait for it.
	t := time.NewTimer(stopAckWait)
	defer t.Stop()
	select {
	case <-acked:
		return broker.Pass
	case <-t.C:
		in.refused.Add(1)
		return broker.Refuse
	}
}

// put queues m, waiting for room (QoS 0: at most qos0Wait); false if it
// did not or the ingest has stopped.
func (in *inline) put(m conn.Message) bool {
	in.mu.RLock()
	defer in.mu.RUnlock()
	if in.closed {
		return false
	}
	select {
	case in.queue <- m:
		return true
	default:
	}
	var timeout <-chan time.Time
	if m.QoS == 0 {
		t := time.NewTimer(qos0Wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case in.queue <- m:
		return true
	case <-timeout:
		return false
	case <-in.stop:
		return false
	}
}
