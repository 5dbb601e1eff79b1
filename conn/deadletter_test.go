package conn

import (
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/vigil-gw/vigil/event"
)

// strictBroker is an upstream broker that refuses packets over maxPacket
// bytes (mochi disconnects the client, as Mosquitto's max_packet_size
// does), and records the alert ids it receives on up/#, in order.
type strictBroker struct {
	addr string
	collector
}

// allowAll lets every client connect, publish and subscribe.
type allowAll struct{ mqtt.HookBase }

func (*allowAll) ID() string { return "allow-all" }
func (*allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}
func (*allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (*allowAll) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }

func startStrictBroker(t *testing.T, maxPacket uint32) *strictBroker {
	t.Helper()
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = maxPacket
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Capabilities: caps, Logger: quiet})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewNet("t", ln)); err != nil {
		t.Fatal(err)
	}
	sb := &strictBroker{addr: ln.Addr().String()}
	if err := srv.Subscribe("up/#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		var a event.Alert
		if err := json.Unmarshal(pk.Payload, &a); err != nil {
			t.Errorf("bad alert JSON %s: %v", pk.Payload, err)
		}
		sb.mu.Lock()
		sb.ids = append(sb.ids, a.ID)
		sb.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return sb
}

// TestForwarderSetsAsideRefusedAlert: the case. Upstream's packet
// limit is 2 KB and an alert carries a 5 KB string: the broker drops the
// connection on it every time. After DeadAfter rounds it is set aside and
// the alerts behind it arrive, in order, once each.
func TestForwarderSetsAsideRefusedAlert(t *testing.T) {
	sb := startStrictBroker(t, 2048)
	ob := &memOutbox{}
	as := alerts(0, 6)
	as[2].Values["text"] = strings.Repeat("x", 5000)
	ob.Put(as[:3]...)
	notify := make(chan struct{}, 1)
	_, f := startForwarder(t, Options{Broker: "tcp://" + sb.addr, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 50 * time.Millisecond},
		ob, ForwarderOptions{Batch: 2, Retry: 50 * time.Millisecond, Poll: 100 * time.Millisecond, Notify: notify, DeadAfter: 3})
	eventually(t, "the refused alert set aside", 20*time.Second, func() bool { return f.Stats().SetAside == 1 })
	ob.Put(as[3:]...)
	notify <- struct{}{}
	eventually(t, "the alerts behind it delivered", 20*time.Second, func() bool { return ob.Len() == 0 && len(sb.got()) >= 5 })
	want := []string{as[0].ID, as[1].ID, as[3].ID, as[4].ID, as[5].ID}
	if got := sb.got(); !slices.Equal(got, want) {
		t.Fatalf("upstream got %v\nwant %v", got, want)
	}
	ob.mu.Lock()
	dead := ob.dead
	ob.mu.Unlock()
	if len(dead) != 1 || dead[0].ID != as[2].ID {
		t.Fatalf("set aside %v", ids(dead))
	}
	if st := f.Stats(); st.Sent != 5 || st.SetAside != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestForwarderSetsAsideBadTopic: an alert whose topic upstream cannot
// take (a wildcard: paho or the broker refuses it) is set aside too.
func TestForwarderSetsAsideBadTopic(t *testing.T) {
	sb := startStrictBroker(t, 0)
	ob := &memOutbox{}
	as := alerts(0, 3)
	as[0].Topic = "up/gw/+/r"
	ob.Put(as...)
	_, f := startForwarder(t, Options{Broker: "tcp://" + sb.addr, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
		Timeout: time.Second}, ob, ForwarderOptions{Batch: 10, Retry: 50 * time.Millisecond, Poll: 100 * time.Millisecond, DeadAfter: 2})
	eventually(t, "the two good alerts delivered", 30*time.Second, func() bool {
		return ob.Len() == 0 && len(firsts(sb.got())) >= 2
	})
	// The broker drops the connection on the wildcard, which may lose the
	// acknowledgement of an alert it did receive: that alert is sent again
	// (the contract allows a duplicate of an id already sent). The bad
	// alert never arrives, and the good ones arrive in order.
	if got := firsts(sb.got()); !slices.Equal(got, []string{as[1].ID, as[2].ID}) {
		t.Fatalf("upstream got %v first, want %s then %s (resends allowed)", sb.got(), as[1].ID, as[2].ID)
	}
	if st := f.Stats(); st.SetAside != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// firsts is ids in the order each first arrived: what upstream keeps once
// it drops the duplicates the contract allows.
func firsts(ids []string) []string {
	var out []string
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
