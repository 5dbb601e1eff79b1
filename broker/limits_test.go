package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// connectPacket is an MQTT 3.1.1 CONNECT.
func connectPacket(id, user, pass string, clean bool) []byte {
	var flags byte
	if clean {
		flags |= 0x02
	}
	var payload []byte
	str := func(s string) {
		payload = append(payload, byte(len(s)>>8), byte(len(s)))
		payload = append(payload, s...)
	}
	str(id)
	if user != "" {
		flags |= 0x80
		str(user)
	}
	if pass != "" {
		flags |= 0x40
		str(pass)
	}
	body := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, flags, 0, 60}, payload...)
	return append(append([]byte{0x10}, varint(len(body))...), body...)
}

func varint(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// rawDial opens a TCP connection to the broker; closed with the test.
func rawDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// login sends a CONNECT and returns the CONNACK's return code, or an
// error if the broker closed the connection without one.
func login(t *testing.T, addr, id, user, pass string, clean bool) (byte, error) {
	t.Helper()
	c := rawDial(t, addr)
	defer c.Close()
	if _, err := c.Write(connectPacket(id, user, pass, clean)); err != nil {
		return 0, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return 0, err
	}
	if ack[0] != 0x20 {
		t.Fatalf("CONNACK expected, got % x", ack)
	}
	return ack[3], nil
}

// closedByPeer reads from c until the broker closes it (true), or the
// read times out after wait (false).
func closedByPeer(c net.Conn, wait time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestHugeConnectBeforeLogin: clients announcing a 255 MB CONNECT and
// sending 40 MB each are cut off at the fixed header: the broker does not
// allocate what they announce (it did, before the limit: 170 MB of RSS for
// four of them).
func TestHugeConnectBeforeLogin(t *testing.T) {
	b := start(t, Options{Users: []User{testUser(t, "u", "p", RoleAdmin, "")}})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	chunk := bytes.Repeat([]byte{'x'}, 1<<20)
	var wg sync.WaitGroup
	sent := make([]int, 4)
	for i := range sent {
		wg.Add(1)
		c := rawDial(t, b.Addr())
		go func() {
			defer wg.Done()
			hdr := append([]byte{0x10}, varint(255<<20)...)
			if _, err := c.Write(hdr); err != nil {
				return
			}
			for range 40 {
				n, err := c.Write(chunk)
				sent[i] += n
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	for i, n := range sent {
		if n >= 40<<20 {
			t.Errorf("client %d: the broker took all 40 MB of a CONNECT larger than max_packet_size", i)
		}
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
		t.Errorf("allocated %d MB while refusing 4 huge CONNECTs", grew>>20)
	}
	connsDone(t, b)
	hits(t, b, HitPacketTooLarge, 4)
	// And a client that behaves still gets in.
	if code, err := login(t, b.Addr(), "ok", "u", "p", true); err != nil || code != 0 {
		t.Fatalf("login after the attack: code %d, %v", code, err)
	}
}

// TestPacketTooLargeAfterLogin: the limit holds for every packet, not
// only CONNECT.
func TestPacketTooLargeAfterLogin(t *testing.T) {
	b := start(t, Options{Limits: Limits{MaxPacketSize: 1024}})
	c, err := dial(t, "tcp://"+b.Addr(), "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := c.Publish("a/b", 0, false, bytes.Repeat([]byte{'x'}, 2000))
	tok.WaitTimeout(5 * time.Second)
	connsDone(t, b)
	hits(t, b, HitPacketTooLarge, 1)
}

// TestIdleConnectionsWithoutConnect: thousands of connections that never
// send CONNECT. Past max_clients they are closed on accept; the others
// when connect_timeout passes. Before, all stayed open indefinitely.
func TestIdleConnectionsWithoutConnect(t *testing.T) {
	const n, max = 2000, 100
	b := start(t, Options{Limits: Limits{MaxClients: max, MaxClientsPerAddress: n, ConnectTimeout: 500 * time.Millisecond}})
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = rawDial(t, b.Addr())
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := 0
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !closedByPeer(c, 20*time.Second) {
				mu.Lock()
				open++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if open > 0 {
		t.Fatalf("%d of %d idle connections still open after 20 s", open, n)
	}
	connsDone(t, b)
	// Each connection was closed on accept or timed out. Dialling 2,000
	// can take longer than connect_timeout on a loaded machine, and each
	// timeout frees a slot for a later dial: so at least max time out,
	// and the rest are refused.
	h := b.Stats().Hits
	if h[HitClients]+h[HitConnectTimeout] != n || h[HitConnectTimeout] < max || h[HitClients] == 0 {
		t.Fatalf("closed on accept %d, timed out %d: want %d in all, at least %d timed out, some refused", h[HitClients], h[HitConnectTimeout], n, max)
	}
	if st := b.Stats(); st.Clients != 0 {
		t.Fatalf("%d connections counted open", st.Clients)
	}
	// The slots are free again.
	if code, err := login(t, b.Addr(), "after", "", "", true); err != nil || code != 0 {
		t.Fatalf("login after the idle flood: code %d, %v", code, err)
	}
}

// TestSlowConnect: a client that sends its CONNECT a byte at a time, too
// slowly, is cut off at the deadline too.
func TestSlowConnect(t *testing.T) {
	b := start(t, Options{Limits: Limits{ConnectTimeout: 300 * time.Millisecond}})
	c := rawDial(t, b.Addr())
	pk := connectPacket("slow", "", "", true)
	if _, err := c.Write(pk[:3]); err != nil {
		t.Fatal(err)
	}
	if !closedByPeer(c, 10*time.Second) {
		t.Fatal("a half-sent CONNECT kept its connection for 10 s")
	}
	connsDone(t, b)
	hits(t, b, HitConnectTimeout, 1)
}

func TestClientsPerAddress(t *testing.T) {
	b := start(t, Options{Limits: Limits{MaxClientsPerAddress: 3}})
	for i := range 3 {
		c := rawDial(t, b.Addr())
		if _, err := c.Write(connectPacket("c"+string(rune('0'+i)), "", "", true)); err != nil {
			t.Fatal(err)
		}
		// Its CONNACK: the broker has admitted it.
		var ack [4]byte
		if _, err := io.ReadFull(c, ack[:]); err != nil || ack[3] != 0 {
			t.Fatalf("client %d: CONNACK % x, %v", i, ack, err)
		}
	}
	if st := b.Stats(); st.Clients != 3 {
		t.Fatalf("%d clients, want 3", st.Clients)
	}
	c := rawDial(t, b.Addr())
	if !closedByPeer(c, 10*time.Second) {
		t.Fatal("a fourth connection from the address stayed open")
	}
	hits(t, b, HitClientsPerAddress, 1)
}

// TestBruteForceThrottled: after max_login_failures wrong passwords an
// address is refused, the right password included, and every failure
// and refusal is counted.
func TestBruteForceThrottled(t *testing.T) {
	b := start(t, Options{Users: []User{testUser(t, "dev", "right", RoleDevice, "sensors/dev")}, Limits: Limits{MaxLoginFailures: 3}})
	for i := range 3 {
		code, err := login(t, b.Addr(), "bf", "dev", "wrong"+string(rune('0'+i)), true)
		if err != nil || code == 0 {
			t.Fatalf("attempt %d: code %d, %v", i, code, err)
		}
	}
	hits(t, b, HitLoginFailed, 3)
	// Now refused before any password is tried.
	for range 20 {
		if code, err := login(t, b.Addr(), "bf", "dev", "right", true); err == nil && code == 0 {
			t.Fatal("logged in while throttled")
		}
	}
	if got := b.Stats().Hits[HitLoginThrottled]; got != 20 {
		t.Fatalf("login_throttled %d, want 20", got)
	}
	if got := b.Stats().Hits[HitLoginFailed]; got != 3 {
		t.Fatalf("login_failed %d, want 3: throttled attempts cost no password check", got)
	}
}

// TestGateWindow: failures count per address over a minute; the address
// is free again after it.
func TestGateWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := newGate(Limits{MaxClients: 10, MaxClientsPerAddress: 10, MaxLoginFailures: 2}, new(counters))
	g.now = func() time.Time { return now }
	g.loginFailed("10.0.0.1")
	if g.throttled("10.0.0.1") {
		t.Fatal("throttled after one failure of two")
	}
	g.loginFailed("10.0.0.1")
	if !g.throttled("10.0.0.1") || g.throttled("10.0.0.2") {
		t.Fatal("throttling not per address")
	}
	if why, ok := g.admit("10.0.0.1"); ok || why != HitLoginThrottled {
		t.Fatalf("admit while throttled: %q %v", why, ok)
	}
	now = now.Add(loginWindow)
	if g.throttled("10.0.0.1") {
		t.Fatal("still throttled after the window")
	}
	if _, ok := g.admit("10.0.0.1"); !ok {
		t.Fatal("not admitted after the window")
	}
	g.release("10.0.0.1")
	// The map of addresses stays bounded under a flood of addresses.
	for i := range 1000 {
		g.loginFailed(net.IPv4(10, 1, byte(i>>8), byte(i)).String())
	}
	if len(g.addrs) > g.maxTracked() {
		t.Fatalf("%d addresses tracked, max %d", len(g.addrs), g.maxTracked())
	}
}

// TestTopicRules: a device publishes and subscribes only under its prefix;
// only an admin subscribes to # or anything wider.
func TestTopicRules(t *testing.T) {
	b := start(t, Options{Users: []User{
		testUser(t, "admin", "a", RoleAdmin, ""),
		testUser(t, "pump1", "p1", RoleDevice, "sensors/pump1"),
	}})
	ev := watchEvents(t, b)
	url := "tcp://" + b.Addr()
	admin := pahoClient(t, url, "admin", "admin", "a")
	got := make(chan string, 10)
	if tok := admin.Subscribe("#", 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("admin subscribe #: %v", tok.Error())
	}
	dev := pahoClient(t, url, "pump1", "pump1", "p1")
	for _, f := range []struct {
		filter string
		ok     bool
	}{
		{"#", false}, {"+/#", false}, {"sensors/#", false}, {"sensors/+/temperature", false},
		{"$SYS/#", false}, {"$share/g/sensors/pump1/#", false}, {"sensors/pump10/#", false},
		{"sensors/pump1/#", true}, {"sensors/pump1/cmd", true}, {"sensors/pump1", true},
	} {
		tok := dev.Subscribe(f.filter, 1, func(paho.Client, paho.Message) {})
		if !tok.WaitTimeout(5 * time.Second) {
			t.Fatalf("subscribe %s: no SUBACK", f.filter)
		}
		var code byte
		for _, c := range tok.(*paho.SubscribeToken).Result() { // one filter; paho keys $share/g/f by f
			code = c
		}
		if ok := code < 0x80; ok != f.ok {
			t.Errorf("device subscribe %q: return code %#x, want allowed=%v", f.filter, code, f.ok)
		}
	}
	if got := b.Stats().Hits[HitSubscribeDenied]; got != 7 {
		t.Errorf("subscribe_denied %d, want 7", got)
	}
	// QoS 0 outside the prefix: dropped; the device stays connected.
	for _, topic := range []string{"sensors/pump2/temperature", "sensors/pump10/x", "vigil/all/rules"} {
		dev.Publish(topic, 0, false, "forged").WaitTimeout(5 * time.Second)
	}
	if tok := dev.Publish("sensors/pump1/temperature", 1, false, "21.5"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish under the prefix: %v", tok.Error())
	}
	select {
	case topic := <-got:
		if topic != "sensors/pump1/temperature" {
			t.Fatalf("admin received %s, published outside the device's prefix", topic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the device's own reading did not arrive")
	}
	if got := b.Stats().Hits[HitPublishDenied]; got != 3 {
		t.Errorf("publish_denied %d, want 3", got)
	}
	// QoS 1 outside the prefix: an MQTT 3 client is disconnected.
	dev.Publish("sensors/pump2/temperature", 1, false, "forged").WaitTimeout(2 * time.Second)
	wait(t, ev.disconnected, "pump1", "disconnected after a QoS 1 publish outside its prefix", 10*time.Second)
	select {
	case topic := <-got:
		t.Fatalf("admin received %s", topic)
	default:
	}
}

// pahoClient connects a paho client with a given id; disconnected with the
// test.
func pahoClient(t *testing.T, url, id, user, pass string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// TestClientIDOfAnotherUser: a device cannot take over the session of a
// client id another user holds (it would disconnect that client and get
// its queued messages).
func TestClientIDOfAnotherUser(t *testing.T) {
	b := start(t, Options{Users: []User{testUser(t, "admin", "a", RoleAdmin, ""), testUser(t, "pump1", "p1", RoleDevice, "sensors/pump1")}})
	admin := pahoClient(t, "tcp://"+b.Addr(), "vigil-gw", "admin", "a")
	if code, err := login(t, b.Addr(), "vigil-gw", "pump1", "p1", true); err != nil || code == 0 {
		t.Fatalf("a device took another user's client id: code %d, %v", code, err)
	}
	if !admin.IsConnectionOpen() {
		t.Fatal("the client whose id was tried got disconnected")
	}
	hits(t, b, HitClientIDTaken, 1)
	// The same user may come back under its id (a reconnect).
	if code, err := login(t, b.Addr(), "vigil-gw", "admin", "a", true); err != nil || code != 0 {
		t.Fatalf("the owner reconnecting: code %d, %v", code, err)
	}
}

// TestMaxSessions: persistent sessions of clients gone count; one more
// is refused, while a known client id may come back.
func TestMaxSessions(t *testing.T) {
	b := start(t, Options{Limits: Limits{MaxSessions: 2}})
	for _, id := range []string{"s1", "s2"} {
		if code, err := login(t, b.Addr(), id, "", "", false); err != nil || code != 0 {
			t.Fatalf("%s: code %d, %v", id, code, err)
		}
	}
	if _, err := login(t, b.Addr(), "s3", "", "", false); err == nil {
		t.Fatal("a third session was accepted")
	}
	hits(t, b, HitSessions, 1)
	if code, err := login(t, b.Addr(), "s1", "", "", false); err != nil || code != 0 {
		t.Fatalf("s1 coming back: code %d, %v", code, err)
	}
}

// TestSessionExpiryCapped: a disconnected MQTT 3 client's session is
// dropped after max_session_expiry (mochi's default keeps it 136 years).
func TestSessionExpiryCapped(t *testing.T) {
	b := start(t, Options{Limits: Limits{MaxSessionExpiry: time.Second}})
	ev := watchEvents(t, b)
	if code, err := login(t, b.Addr(), "gone", "", "", false); err != nil || code != 0 {
		t.Fatalf("code %d, %v", code, err)
	}
	wait(t, ev.expired, "gone", "session expired", 20*time.Second)
	ev.nextTick(t) // the expiry's removal is done
	if n := b.Stats().Sessions; n != 0 {
		t.Fatalf("%d sessions after the 1 s expiry", n)
	}
}

// TestMaxRetained: past max_retained topics, a retained message is
// delivered but not retained.
func TestMaxRetained(t *testing.T) {
	b := start(t, Options{Limits: Limits{MaxRetained: 2}})
	url := "tcp://" + b.Addr()
	pub := pahoClient(t, url, "pub", "", "")
	for _, topic := range []string{"r/1", "r/2", "r/3", "r/1"} {
		if tok := pub.Publish(topic, 1, true, "v"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	if st := b.Stats(); st.Retained != 2 || st.Hits[HitRetained] != 1 {
		t.Fatalf("retained %d, hits %d; want 2 and 1 (r/3 refused, r/1 replaced)", st.Retained, st.Hits[HitRetained])
	}
}

func TestStatsListsEveryLimit(t *testing.T) {
	b := start(t, Options{})
	st := b.Stats()
	for _, n := range hitNames {
		if _, ok := st.Hits[n]; !ok {
			t.Errorf("Stats.Hits lacks %s", n)
		}
	}
	if len(st.Hits) != len(hitNames) || len(hitNames) != len(counters{}) {
		t.Errorf("%d hits, %d names, %d counters", len(st.Hits), len(hitNames), len(counters{}))
	}
}

func TestLimitsValidation(t *testing.T) {
	for _, tc := range []struct {
		l    Limits
		want string
	}{
		{Limits{MaxPacketSize: 10}, "max_packet_size"},
		{Limits{MaxInflight: 70000}, "max_inflight"},
		{Limits{MaxClients: -1}, "max_clients"},
		{Limits{ConnectTimeout: -time.Second}, "connect_timeout"},
		{Limits{MaxSessionExpiry: time.Millisecond}, "max_session_expiry"},
	} {
		_, err := New(Options{Limits: tc.l})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.l, err, tc.want)
		}
	}
}

// FuzzFirstBytes: whatever a client sends before (and as) its CONNECT,
// the broker neither crashes nor keeps the connection past the deadline,
// and a well-behaved client logs in right after.
func FuzzFirstBytes(f *testing.F) {
	f.Add(connectPacket("c", "dev", "pw", true))
	f.Add(connectPacket("c", "dev", "wrong", false))
	f.Add(append([]byte{0x10}, varint(255<<20)...))
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0x30, 0x05, 0, 1, 'a', 'x', 'y'})
	f.Add(append(connectPacket("c", "dev", "pw", true), 0x82, 0x06, 0, 1, 0, 1, '#', 0))
	f.Add(append(connectPacket("c", "dev", "pw", true), 0x32, 0x08, 0, 3, 'a', '/', 'b', 0, 1, 'x'))
	b, err := New(Options{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Users: []User{testUser(f, "dev", "pw", RoleDevice, "sensors/dev")},
		// Inputs that log in without a clean session leave a session
		// each: the cap on them is not what this tests.
		Limits: Limits{MaxPacketSize: 4096, ConnectTimeout: 300 * time.Millisecond, MaxLoginFailures: 1 << 30, MaxSessions: 1 << 30}})
	if err != nil {
		f.Fatal(err)
	}
	if err := b.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	var probes atomic.Int64
	f.Fuzz(func(t *testing.T, in []byte) {
		c := rawDial(t, b.Addr())
		_, _ = c.Write(in)
		// The client sends nothing more: the broker, done with what it
		// got (a password check included), ends the connection.
		_ = c.(*net.TCPConn).CloseWrite()
		if !closedByPeer(c, 10*time.Second) {
			t.Fatal("connection open 10 s after the client stopped sending")
		}
		c.Close()
		// A fresh id: fuzzing workers run at once, and a second client
		// with the same id takes the first one's session over.
		id := fmt.Sprintf("probe-%d", probes.Add(1))
		if code, err := login(t, b.Addr(), id, "dev", "pw", true); err != nil || code != 0 {
			t.Fatalf("login after the input: code %d, %v; %+v", code, err, b.Stats())
		}
	})
}

// TestWillOutsidePrefix: a device cannot leave a will (published by the
// broker when it vanishes, without asking the topic rules) outside its
// prefix.
func TestWillOutsidePrefix(t *testing.T) {
	b := start(t, Options{Users: []User{testUser(t, "pump1", "p1", RoleDevice, "sensors/pump1")}})
	for _, tc := range []struct {
		topic string
		ok    bool
	}{{"sensors/pump2/temperature", false}, {"sensors/pump1/status", true}} {
		o := paho.NewClientOptions().AddBroker("tcp://"+b.Addr()).SetClientID("pump1").SetUsername("pump1").SetPassword("p1").
			SetWill(tc.topic, `{"temperature": 99}`, 1, true).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		c := paho.NewClient(o)
		tok := c.Connect()
		ok := tok.WaitTimeout(10*time.Second) && tok.Error() == nil
		if ok {
			c.Disconnect(10)
		}
		if ok != tc.ok {
			t.Errorf("will to %s: connected %v, want %v (%v)", tc.topic, ok, tc.ok, tok.Error())
		}
	}
	hits(t, b, HitPublishDenied, 1)
}

// TestRetainedWill: a retained will counts against max_retained too.
func TestRetainedWill(t *testing.T) {
	b := start(t, Options{Limits: Limits{MaxRetained: 1}})
	ev := watchEvents(t, b)
	pub := pahoClient(t, "tcp://"+b.Addr(), "pub", "", "")
	if tok := pub.Publish("r/1", 1, true, "v"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	// A client with a retained will, gone without DISCONNECT.
	c := rawDial(t, b.Addr())
	pk := connectPacket("w", "", "", true)
	// Will flag, QoS 0, retain; topic and message after the client id.
	pk[9] |= 0x04 | 0x20
	will := []byte{0, 3, 'r', '/', '2', 0, 1, 'x'}
	pk = append(append([]byte{0x10}, varint(len(pk)-2+len(will))...), append(pk[2:], will...)...)
	if _, err := c.Write(pk); err != nil {
		t.Fatal(err)
	}
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil || ack[3] != 0 {
		t.Fatalf("CONNACK % x, %v", ack, err)
	}
	c.Close()
	wait(t, ev.willSent, "w", "will sent", 10*time.Second)
	hits(t, b, HitRetained, 1)
	if n := b.Stats().Retained; n != 1 {
		t.Fatalf("%d retained, want 1", n)
	}
}

// TestMaxSubscriptions: past max_subscriptions a new filter fails in the
// SUBACK; the filters a client has may be subscribed again.
func TestMaxSubscriptions(t *testing.T) {
	b := start(t, Options{Limits: Limits{MaxSubscriptions: 2}})
	c := pahoClient(t, "tcp://"+b.Addr(), "subs", "", "")
	for _, f := range []struct {
		filter string
		ok     bool
	}{{"a/1", true}, {"a/2", true}, {"a/3", false}, {"a/1", true}} {
		tok := c.Subscribe(f.filter, 1, func(paho.Client, paho.Message) {})
		if !tok.WaitTimeout(5 * time.Second) {
			t.Fatalf("subscribe %s: no SUBACK", f.filter)
		}
		if ok := tok.(*paho.SubscribeToken).Result()[f.filter] < 0x80; ok != f.ok {
			t.Errorf("subscribe %s: allowed %v, want %v", f.filter, ok, f.ok)
		}
	}
	hits(t, b, HitSubscriptions, 1)
	if !c.IsConnectionOpen() {
		t.Fatal("disconnected")
	}
}

// TestTopicAliasMaximum: an MQTT 5 client may use topic aliases up to
// maxTopicAliases (mochi's default is 65,535, each keeping its topic for
// the connection's life); one past it is a protocol error.
func TestTopicAliasMaximum(t *testing.T) {
	b := start(t, Options{})
	for _, tc := range []struct {
		alias int
		ok    bool
	}{{maxTopicAliases, true}, {maxTopicAliases + 1, false}} {
		c := rawDial(t, b.Addr())
		// CONNECT, MQTT 5, clean start, keepalive 60, no properties.
		body := []byte{0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 0, 0, 2, 'v', '5'}
		if _, err := c.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var hdr [2]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 0x20 {
			t.Fatalf("CONNACK header % x, %v", hdr, err)
		}
		if _, err := io.ReadFull(c, make([]byte, hdr[1])); err != nil {
			t.Fatal(err)
		}
		// PUBLISH QoS 0 to a/b with a topic alias, then PINGREQ.
		pub := []byte{0, 3, 'a', '/', 'b', 3, 0x23, byte(tc.alias >> 8), byte(tc.alias), 'x'}
		if _, err := c.Write(append(append([]byte{0x30, byte(len(pub))}, pub...), 0xc0, 0)); err != nil {
			t.Fatal(err)
		}
		if tc.ok {
			var pong [2]byte
			if _, err := io.ReadFull(c, pong[:]); err != nil || pong != [2]byte{0xd0, 0} {
				t.Errorf("alias %d: PINGRESP % x, %v", tc.alias, pong, err)
			}
		} else if rest, _ := io.ReadAll(c); bytes.Contains(rest, []byte{0xd0, 0}) || !closedByPeer(c, time.Second) {
			t.Errorf("alias %d: still served (read % x)", tc.alias, rest)
		}
		c.Close()
	}
}
