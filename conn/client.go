package conn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Client is a plain MQTT client for the simulator and tests: clean
// session, paho's own auto-reconnect, nothing durable.
type Client struct {
	c paho.Client
	o Options
}

// Dial connects once (failing if the broker is not reachable) and keeps
// reconnecting after a loss until Close. A zero ClientID gets a random one.
func Dial(ctx context.Context, o Options) (*Client, error) {
	if o.ClientID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		o.ClientID = "vigil-client-" + hex.EncodeToString(b[:])
	}
	if err := o.fill(""); err != nil {
		return nil, err
	}
	po := o.pahoOptions(true).SetAutoReconnect(true).SetMaxReconnectInterval(o.ReconnectMax)
	c := paho.NewClient(po)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		<-tok.Done() // bounded by ConnectTimeout
		if tok.Error() == nil {
			c.Disconnect(250)
		}
		return nil, fmt.Errorf("mqtt connect %s: %w", o.Broker, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("mqtt connect %s: %w", o.Broker, err)
	}
	return &Client{c: c, o: o}, nil
}

// Publish sends one message and waits for its PUBACK (QoS 1) or for it to
// be written (QoS 0), at most Options.Timeout.
func (c *Client) Publish(topic string, payload []byte, qos byte, retain bool) error {
	if err := await(context.Background(), c.c.Publish(topic, qos, retain, payload), c.o.Timeout); err != nil {
		return fmt.Errorf("mqtt publish %s: %w", topic, err)
	}
	return nil
}

// Subscribe calls fn for every message matching filter. fn runs on paho's
// network goroutine: it must return quickly.
func (c *Client) Subscribe(filter string, qos byte, fn func(topic string, payload []byte)) error {
	tok := c.c.Subscribe(filter, qos, func(_ paho.Client, m paho.Message) { fn(m.Topic(), m.Payload()) })
	if err := await(context.Background(), tok, c.o.Timeout); err != nil {
		return fmt.Errorf("mqtt subscribe %s: %w", filter, err)
	}
	if code := tok.(*paho.SubscribeToken).Result()[filter]; code > 2 {
		return fmt.Errorf("mqtt subscribe %s: refused by broker", filter)
	}
	return nil
}

// Close disconnects.
func (c *Client) Close() { c.c.Disconnect(250) }
