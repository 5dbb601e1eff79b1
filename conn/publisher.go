package conn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Publisher holds the upstream connection. Its session is clean: what must
// survive a restart lives in the SQLite outbox, not in paho's store.
type Publisher struct {
	l  *link
	po PublisherOptions
}

// PublisherOptions add a presence and a few subscriptions to the upstream
// connection (the fleet's status, will and rules topics). Zero: none.
type PublisherOptions struct {
	// WillTopic and WillPayload: what the broker publishes, retained at
	// QoS 1, when the connection ends without a clean disconnect.
	WillTopic   string
	WillPayload []byte
	// OnConnect runs after every connect, before Filters are subscribed;
	// an error drops the connection and retries.
	OnConnect func(ctx context.Context) error
	// Filters are subscribed at QoS 1 after every connect; their messages
	// go to OnMessage on paho's network goroutine: it must only copy.
	Filters   []string
	OnMessage func(topic string, payload []byte)
	// OnStop runs before a clean disconnect, while still connected (a
	// clean DISCONNECT makes the broker discard the will).
	OnStop func(ctx context.Context)
}

// NewPublisher prepares the upstream connection; Run connects it.
func NewPublisher(o Options) (*Publisher, error) { return NewPublisherWith(o, PublisherOptions{}) }

// NewPublisherWith is NewPublisher with a will, hooks and subscriptions.
func NewPublisherWith(o Options, x PublisherOptions) (*Publisher, error) {
	if err := o.fill("-upstream"); err != nil {
		return nil, err
	}
	if _, err := cleanFilters(x.Filters); err != nil {
		return nil, err
	}
	// The forwarder hands a batch of alerts to paho at once: their
	// packets leave together (DialCoalesced), not one write(2) each. A
	// QoS 1 alert still counts as delivered only on its PUBACK.
	po := o.pahoOptions(true).SetCustomOpenConnectionFn(DialCoalesced)
	if x.WillTopic != "" {
		po.SetBinaryWill(x.WillTopic, x.WillPayload, 1, true)
	}
	p := &Publisher{l: newLink(o, po), po: x}
	if x.OnStop != nil {
		p.l.bye = func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			x.OnStop(ctx)
		}
	}
	return p, nil
}

// Run connects and keeps reconnecting until ctx ends, then disconnects
// cleanly and returns nil.
func (p *Publisher) Run(ctx context.Context) error {
	if p.po.OnConnect == nil && len(p.po.Filters) == 0 {
		return p.l.run(ctx, nil, nil)
	}
	return p.l.run(ctx, func() error { return p.setup(ctx) }, nil)
}

// setup runs OnConnect and subscribes Filters after a connect.
func (p *Publisher) setup(ctx context.Context) error {
	if p.po.OnConnect != nil {
		if err := p.po.OnConnect(ctx); err != nil {
			return err
		}
	}
	if len(p.po.Filters) == 0 {
		return nil
	}
	m := make(map[string]byte, len(p.po.Filters))
	for _, f := range p.po.Filters {
		m[f] = 1
	}
	tok := p.l.cli.SubscribeMultiple(m, func(_ paho.Client, msg paho.Message) { p.po.OnMessage(msg.Topic(), msg.Payload()) })
	if err := await(ctx, tok, p.l.o.Timeout); err != nil {
		return fmt.Errorf("mqtt subscribe %v: %w", p.po.Filters, err)
	}
	// A refused filter (an ACL) is reported but keeps the connection: it
	// carries the alerts too.
	var refused []string
	for f, code := range tok.(*paho.SubscribeToken).Result() {
		if code > 2 {
			refused = append(refused, f)
		}
	}
	if len(refused) > 0 {
		slices.Sort(refused)
		p.l.fail(fmt.Errorf("mqtt subscribe: broker refused %v", refused))
		p.l.log.Error("mqtt subscribe refused", "filters", refused)
	}
	return nil
}

// PublishRetained publishes payload retained at QoS 1 and waits for the
// broker's PUBACK, ctx or Options.Timeout; ErrNotConnected while down.
func (p *Publisher) PublishRetained(ctx context.Context, topic string, payload []byte) error {
	tok, err := p.startRetained(topic, payload, 1, true)
	if err != nil {
		return err
	}
	if err := await(ctx, tok, p.l.o.Timeout); err != nil {
		return fmt.Errorf("mqtt publish %s: %w", topic, err)
	}
	return nil
}

// Connected reports whether the connection is up now.
func (p *Publisher) Connected() bool { return p.l.connected.Load() }

// LastError is the last connection error, "" if none yet.
func (p *Publisher) LastError() string { return p.l.lastError() }

// Publish sends one message and, for QoS 1, waits for the broker's PUBACK,
// ctx or Options.Timeout. It fails at once with ErrNotConnected while the
// connection is down: the caller keeps the message and retries.
func (p *Publisher) Publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	tok, err := p.start(topic, payload, qos)
	if err != nil {
		return err
	}
	if err := await(ctx, tok, p.l.o.Timeout); err != nil {
		return fmt.Errorf("mqtt publish %s: %w", topic, err)
	}
	return nil
}

// start hands a message to paho without waiting for its acknowledgement,
// so the Forwarder can keep a batch in flight.
func (p *Publisher) start(topic string, payload []byte, qos byte) (paho.Token, error) {
	return p.startRetained(topic, payload, qos, false)
}

func (p *Publisher) startRetained(topic string, payload []byte, qos byte, retain bool) (paho.Token, error) {
	if qos > 1 {
		return nil, fmt.Errorf("mqtt publish %s: qos %d not supported (0 or 1)", topic, qos)
	}
	if !p.l.connected.Load() {
		return nil, fmt.Errorf("mqtt publish %s: %w", topic, ErrNotConnected)
	}
	tok := p.l.cli.Publish(topic, qos, retain, payload)
	// paho completes the token at once when it is not connected.
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			if errors.Is(err, paho.ErrNotConnected) {
				err = ErrNotConnected
			}
			return nil, fmt.Errorf("mqtt publish %s: %w", topic, err)
		}
	default:
	}
	return tok, nil
}
