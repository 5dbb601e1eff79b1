package broker

import (
	"slices"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
)

// events is a mochi hook that tells a test what the broker did, once it
// has done it, so tests wait on that instead of polling: a client gone
// (OnDisconnect runs after mochi closed it), a will sent (after it was
// retained or refused, and delivered), a session expired, and a tick of
// mochi's event loop (which expires sessions: a tick after an expiry comes
// after the session's removal).
type events struct {
	mqtt.HookBase
	disconnected, willSent, expired chan string
	tick                            chan struct{}
}

func watchEvents(t *testing.T, b *Broker) *events {
	t.Helper()
	e := &events{disconnected: make(chan string, 64), willSent: make(chan string, 64), expired: make(chan string, 64),
		tick: make(chan struct{}, 1)}
	if err := b.srv.AddHook(e, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *events) ID() string { return "test-events" }

func (e *events) Provides(b byte) bool {
	return slices.Contains([]byte{mqtt.OnDisconnect, mqtt.OnWillSent, mqtt.OnClientExpired, mqtt.OnSysInfoTick}, b)
}

func (e *events) OnDisconnect(cl *mqtt.Client, _ error, _ bool) { e.disconnected <- cl.ID }
func (e *events) OnWillSent(cl *mqtt.Client, _ packets.Packet)  { e.willSent <- cl.ID }
func (e *events) OnClientExpired(cl *mqtt.Client)               { e.expired <- cl.ID }

func (e *events) OnSysInfoTick(*system.Info) {
	select {
	case e.tick <- struct{}{}:
	default: // one pending is enough
	}
}

// wait waits for id on ch (one of the events'), skipping others.
func wait(t *testing.T, ch <-chan string, id, what string, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case got := <-ch:
			if got == id {
				return
			}
		case <-timeout:
			t.Fatalf("%s %q: not within %s", what, id, within)
		}
	}
}

// nextTick waits for a tick of mochi's event loop that starts after the
// call.
func (e *events) nextTick(t *testing.T) {
	t.Helper()
	select {
	case <-e.tick: // may predate the call
	default:
	}
	select {
	case <-e.tick:
	case <-time.After(10 * time.Second):
		t.Fatal("no tick of the broker's event loop within 10 s")
	}
}

// connsDone waits until every connection the listener took has ended,
// having counted the limit that ended it (the listener's idle signal).
// For a test with no connection left open and none coming.
func connsDone(t *testing.T, b *Broker) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for b.tcp.openConns() > 0 {
		select {
		case <-b.tcp.idle:
		case <-deadline:
			t.Fatalf("%d connections still being served 10 s after their end", b.tcp.openConns())
		}
	}
}

// hits checks a limit's counter. A limit is counted before the client
// hears of it (refused CONNACK, SUBACK, close on accept) or, when it ends
// a connection, before the connection's goroutine returns (connsDone).
func hits(t *testing.T, b *Broker, name string, want uint64) {
	t.Helper()
	if got := b.Stats().Hits[name]; got != want {
		t.Fatalf("%s: %d hits, want %d", name, got, want)
	}
}
