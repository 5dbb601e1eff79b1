package conn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Message is one received MQTT message, owned by the receiver.
type Message struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Received time.Time
	ID       uint16 // MQTT packet id (0 for QoS 0)
	Dup      bool   // the broker says it may have sent it before
	// Client is the publishing client's id when vigil sees it (in-process
	// ingest from the embedded broker); empty from a subscription.
	Client string
	// Ack acknowledges a QoS 1 message; call it once the message is
	// durable. It is safe to call once, late, even after a reconnect (the
	// ack is then dropped and the broker redelivers). A no-op for QoS 0.
	Ack func()
}

// SubStats are the Subscriber's counters.
type SubStats struct {
	Connected  bool
	Received   uint64            // put in the queue
	Dropped    uint64            // queue full (QoS 1 ones are redelivered later)
	Ignored    uint64            // topic matches no current filter (a stale subscription): acked and dropped
	Refused    map[string]uint64 // over IngestLimits, by reason: acked and dropped
	Reconnects uint64            // connections lost or dropped on purpose
	Attempts   uint64            // connection attempts, successful or not
	LastError  string
}

// DefaultQueue is the queue size when NewSubscriber is given 0.
const DefaultQueue = 10000

// Subscriber reads QoS 1 subscriptions over a persistent session (fixed
// client id, clean session off) with manual acks. See the package doc for
// what happens when its queue is full.
type Subscriber struct {
	l     *link
	queue chan Message
	// wait is how long the handler waits for room for a QoS 1 message;
	// redeliverAfter how long the queue must stay empty after QoS 1 drops
	// before the recovery reconnect.
	wait           time.Duration
	redeliverAfter time.Duration

	subMu   sync.Mutex               // serialises (re)subscribing
	filters atomic.Pointer[[]string] // the wanted set; the handler reads it

	received, dropped, ignored atomic.Uint64
	limits                     IngestLimits
	refused                    Refusals
	overflow                   atomic.Bool  // waited once already in this overload episode
	undelivered                atomic.Int64 // QoS 1 drops since the last connect
	emptySince                 time.Time    // owned by the run goroutine
	running                    atomic.Bool
}

// SubscriberOptions tune the queue-full policy; zero values are the
// defaults.
type SubscriberOptions struct {
	QueueWait      time.Duration // default 100 ms
	RedeliverAfter time.Duration // default 1 s
	Limits         IngestLimits  // what a message may bring; zero: no limit
	// ReadPace: while messages keep coming, the socket is read at most
	// once per ReadPace, each read taking what arrived meanwhile
	// (internal/pace). 0 reads each message as it arrives.
	ReadPace time.Duration
}

// NewSubscriber prepares a subscriber for filters (MQTT topic filters,
// subscribed at QoS 1) with a queue of queue messages (0: DefaultQueue).
// Run connects it.
func NewSubscriber(o Options, filters []string, queue int) (*Subscriber, error) {
	return NewSubscriberWith(o, filters, queue, SubscriberOptions{})
}

// NewSubscriberWith is NewSubscriber with the queue-full policy tuned.
func NewSubscriberWith(o Options, filters []string, queue int, so SubscriberOptions) (*Subscriber, error) {
	if err := o.fill(""); err != nil {
		return nil, err
	}
	fs, err := cleanFilters(filters)
	if err != nil {
		return nil, err
	}
	if queue <= 0 {
		queue = DefaultQueue
	}
	if so.QueueWait <= 0 {
		so.QueueWait = 100 * time.Millisecond
	}
	if so.RedeliverAfter <= 0 {
		so.RedeliverAfter = time.Second
	}
	s := &Subscriber{queue: make(chan Message, queue), wait: so.QueueWait, redeliverAfter: so.RedeliverAfter, limits: so.Limits}
	s.filters.Store(&fs)
	po := o.pahoOptions(false).SetAutoAckDisabled(true)
	po.SetCustomOpenConnectionFn(subscriberDial(so.ReadPace))
	// Before Connect: a persistent session's queued messages may arrive
	// before SUBSCRIBE completes, and paho never acks a message that has
	// no handler.
	po.SetDefaultPublishHandler(s.handle)
	s.l = newLink(o, po)
	return s, nil
}

// CleanFilters validates topic filters and returns them sorted, without
// repeats.
func CleanFilters(filters []string) ([]string, error) { return cleanFilters(filters) }

// Matches reports whether topic matches any of the filters.
func Matches(filters []string, topic string) bool {
	for _, f := range filters {
		if match(f, topic) {
			return true
		}
	}
	return false
}

func cleanFilters(filters []string) ([]string, error) {
	fs := slices.Clone(filters)
	slices.Sort(fs)
	fs = slices.Compact(fs)
	var errs []error
	for _, f := range fs {
		errs = append(errs, validFilter(f))
	}
	return fs, errors.Join(errs...)
}

// Messages is the bounded queue. It is never closed; stop reading when
// Run's context ends.
func (s *Subscriber) Messages() <-chan Message { return s.queue }

// Run connects, subscribes and keeps the session up until ctx ends, then
// disconnects cleanly and returns nil. Call it once.
func (s *Subscriber) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("subscriber: Run called twice")
	}
	return s.l.run(ctx, s.subscribeAll, s.needRedelivery)
}

// subscribeAll (re)subscribes every wanted filter after a connect: paho's
// ResumeSubs does not.
func (s *Subscriber) subscribeAll() error {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.undelivered.Store(0)
	s.overflow.Store(false)
	s.emptySince = time.Time{}
	return s.subscribe(context.Background(), *s.filters.Load())
}

func (s *Subscriber) subscribe(ctx context.Context, fs []string) error {
	if len(fs) == 0 {
		return nil
	}
	m := make(map[string]byte, len(fs))
	for _, f := range fs {
		m[f] = 1
	}
	tok := s.l.cli.SubscribeMultiple(m, nil)
	if err := await(ctx, tok, s.l.o.Timeout); err != nil {
		return fmt.Errorf("mqtt subscribe %v: %w", fs, err)
	}
	// A refused filter (0x80, e.g. an ACL) is reported but does not drop
	// the connection: the other filters still work.
	var refused []string
	for f, code := range tok.(*paho.SubscribeToken).Result() {
		if code > 2 {
			refused = append(refused, f)
		}
	}
	if len(refused) > 0 {
		slices.Sort(refused)
		err := fmt.Errorf("mqtt subscribe: broker refused %v", refused)
		s.l.fail(err)
		s.l.log.Error("mqtt subscribe refused", "filters", refused)
	}
	return nil
}

// SetFilters replaces the subscribed filters (hot reload): new ones are
// subscribed and removed ones unsubscribed now if connected, else at the
// next connect. Messages still arriving for removed filters are acked and
// counted as Ignored. An error leaves the new set wanted: the next
// reconnect applies it.
func (s *Subscriber) SetFilters(filters []string) error {
	fs, err := cleanFilters(filters)
	if err != nil {
		return err
	}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	old := *s.filters.Load()
	s.filters.Store(&fs)
	if !s.l.connected.Load() {
		return nil
	}
	var added, removed []string
	for _, f := range fs {
		if !slices.Contains(old, f) {
			added = append(added, f)
		}
	}
	for _, f := range old {
		if !slices.Contains(fs, f) {
			removed = append(removed, f)
		}
	}
	ctx := context.Background()
	if err := s.subscribe(ctx, added); err != nil {
		return err
	}
	if len(removed) > 0 {
		if err := await(ctx, s.l.cli.Unsubscribe(removed...), s.l.o.Timeout); err != nil {
			return fmt.Errorf("mqtt unsubscribe %v: %w", removed, err)
		}
	}
	return nil
}

// handle runs on paho's network goroutine: it must never block on disk
// or network, only (bounded) on the queue.
func (s *Subscriber) handle(_ paho.Client, pm paho.Message) {
	if !s.wanted(pm.Topic()) {
		pm.Ack()
		s.ignored.Add(1)
		return
	}
	if why := s.limits.Refuse(pm.Topic(), pm.Payload()); why != "" {
		pm.Ack() // nobody sends it again
		s.refused.Add(why)
		if s.refused.LogNow() {
			s.l.log.Warn("message refused at the door (at most one line every 10 s)", "reason", why, "topic_bytes", len(pm.Topic()), "payload_bytes", len(pm.Payload()), "refused", s.refused.Counts())
		}
		return
	}
	m := Message{
		Topic: pm.Topic(), Payload: pm.Payload(), QoS: pm.Qos(),
		Received: time.Now(), ID: pm.MessageID(), Dup: pm.Duplicate(), Ack: pm.Ack,
	}
	select {
	case s.queue <- m:
		s.received.Add(1)
		s.overflow.Store(false)
		return
	default:
	}
	if m.QoS == 0 || s.overflow.Load() {
		s.drop(m)
		return
	}
	t := time.NewTimer(s.wait)
	defer t.Stop()
	select {
	case s.queue <- m:
		s.received.Add(1)
	case <-t.C:
		s.overflow.Store(true)
		s.drop(m)
	}
}

func (s *Subscriber) drop(m Message) {
	s.dropped.Add(1)
	if m.QoS > 0 {
		s.undelivered.Add(1)
	}
}

func (s *Subscriber) wanted(topic string) bool { return Matches(*s.filters.Load(), topic) }

// needRedelivery decides the recovery reconnect after QoS 1 drops: once
// the queue has stayed empty for redeliverAfter, so the consumer's acks
// for what it took have gone out.
func (s *Subscriber) needRedelivery() bool {
	if s.undelivered.Load() == 0 || len(s.queue) > 0 {
		s.emptySince = time.Time{}
		return false
	}
	if s.emptySince.IsZero() {
		s.emptySince = time.Now()
		return false
	}
	if time.Since(s.emptySince) < s.redeliverAfter {
		return false
	}
	s.l.log.Warn("mqtt queue overflowed: reconnecting so the broker redelivers dropped messages", "dropped", s.undelivered.Load())
	return true
}

// Stats returns the counters.
func (s *Subscriber) Stats() SubStats {
	return SubStats{
		Connected:  s.l.ready.Load(),
		Received:   s.received.Load(),
		Dropped:    s.dropped.Load(),
		Ignored:    s.ignored.Load(),
		Refused:    s.refused.Counts(),
		Reconnects: s.l.reconnects.Load(),
		Attempts:   s.l.attempts.Load(),
		LastError:  s.l.lastError(),
	}
}
