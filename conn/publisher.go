package conn

import (
	"context"
	"errors"
	"fmt"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Publisher holds the upstream connection. Its session is clean: what must
// survive a restart lives in the SQLite outbox, not in paho's store.
type Publisher struct {
	l *link
}

// NewPublisher prepares the upstream connection; Run connects it.
func NewPublisher(o Options) (*Publisher, error) {
	if err := o.fill("-upstream"); err != nil {
		return nil, err
	}
	// The forwarder hands a batch of alerts to paho at once: their
	// packets leave together (DialCoalesced), not one write(2) each. A
	// QoS 1 alert still counts as delivered only on its PUBACK.
	po := o.pahoOptions(true).SetCustomOpenConnectionFn(DialCoalesced)
	return &Publisher{l: newLink(o, po)}, nil
}

// Run connects and keeps reconnecting until ctx ends, then disconnects
// cleanly and returns nil.
func (p *Publisher) Run(ctx context.Context) error { return p.l.run(ctx, nil, nil) }

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
	if qos > 1 {
		return nil, fmt.Errorf("mqtt publish %s: qos %d not supported (0 or 1)", topic, qos)
	}
	if !p.l.connected.Load() {
		return nil, fmt.Errorf("mqtt publish %s: %w", topic, ErrNotConnected)
	}
	tok := p.l.cli.Publish(topic, qos, false, payload)
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
