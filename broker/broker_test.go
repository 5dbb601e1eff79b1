package broker

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewListenPolicy(t *testing.T) {
	users := []User{testUser(t, "u", "p", RoleAdmin, "")}
	cert, _ := selfSigned(t)
	srvTLS := &tls.Config{Certificates: []tls.Certificate{cert}}
	for _, tc := range []struct {
		name      string
		listen    string
		users     []User
		tls       *tls.Config
		plaintext bool
		wantErr   string
	}{
		{"loopback v4", "127.0.0.1:0", nil, nil, false, ""},
		{"loopback v6", "[::1]:0", nil, nil, false, ""},
		{"localhost", "localhost:0", nil, nil, false, ""},
		{"default", "", nil, nil, false, ""},
		{"any, anonymous", "0.0.0.0:1883", nil, srvTLS, false, "authentication is required"},
		{"any, no host", ":1883", nil, srvTLS, false, "authentication is required"},
		{"LAN address", "192.168.1.10:1883", nil, srvTLS, false, "authentication is required"},
		{"host name", "gateway.local:1883", nil, srvTLS, false, "authentication is required"},
		{"users and TLS", "0.0.0.0:1883", users, srvTLS, false, ""},
		{"users, no TLS", "0.0.0.0:1883", users, nil, false, "no TLS"},
		{"users, no TLS, allowed", "0.0.0.0:1883", users, nil, true, ""},
		{"no port", "nohostport", nil, nil, false, "missing port"},
		{"empty user name", "127.0.0.1:0", []User{{Name: "", Hash: users[0].Hash, Role: RoleAdmin}}, nil, false, "empty user name"},
		{"device without prefix", "127.0.0.1:0", []User{{Name: "d", Hash: users[0].Hash, Role: RoleDevice}}, nil, false, "prefix"},
		{"hash in clear", "127.0.0.1:0", []User{{Name: "d", Hash: []byte("secret"), Role: RoleAdmin}}, nil, false, "hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(Options{Listen: tc.listen, Users: tc.users, TLS: tc.tls, AllowPlaintext: tc.plaintext})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New(%q) error %v, want it to contain %q", tc.listen, err, tc.wantErr)
			}
		})
	}
}

// start runs a broker on a free loopback port and closes it with the test.
func start(t *testing.T, o Options) *Broker {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// dial connects a plain paho client; it is disconnected with the test.
func dial(t *testing.T, url, user, pass string, tc *tls.Config) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID("t-" + t.Name()).
		SetUsername(user).SetPassword(pass).SetTLSConfig(tc).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func roundTrip(t *testing.T, c paho.Client) {
	t.Helper()
	got := make(chan []byte, 1)
	if tok := c.Subscribe("a/+", 1, func(_ paho.Client, m paho.Message) { got <- m.Payload() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if tok := c.Publish("a/b", 1, false, "hello"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case p := <-got:
		if !bytes.Equal(p, []byte("hello")) {
			t.Fatalf("payload %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("message not received")
	}
}

func TestAnonymousRoundTrip(t *testing.T) {
	b := start(t, Options{})
	if strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("Addr %s does not show the real port", b.Addr())
	}
	c, err := dial(t, "tcp://"+b.Addr(), "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c)
}

// testUser hashes a password at bcrypt's lowest cost (tests only).
func testUser(t testing.TB, name, pass string, role Role, prefix string) User {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return User{Name: name, Hash: h, Role: role, Prefix: prefix}
}

func TestAuth(t *testing.T) {
	b := start(t, Options{Users: []User{testUser(t, "vigil", "s3cret", RoleAdmin, ""), testUser(t, "dev", "other", RoleAdmin, "")}})
	for _, tc := range []struct {
		name, user, pass string
		ok               bool
	}{
		{"right password", "vigil", "s3cret", true},
		{"second user", "dev", "other", true},
		{"wrong password", "vigil", "s3creT", false},
		{"other user's password", "vigil", "other", false},
		{"unknown user", "nobody", "s3cret", false},
		{"anonymous", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dial(t, "tcp://"+b.Addr(), tc.user, tc.pass, nil)
			if !tc.ok {
				if err == nil {
					t.Fatal("connected with bad credentials")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, c)
		})
	}
}

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vigil test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	b := start(t, Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	t.Run("trusted CA", func(t *testing.T) {
		c, err := dial(t, "tls://"+b.Addr(), "", "", &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c)
	})
	t.Run("unknown CA", func(t *testing.T) {
		_, err := dial(t, "tls://"+b.Addr(), "", "", &tls.Config{RootCAs: x509.NewCertPool()})
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("error %v, want a certificate error", err)
		}
	})
	t.Run("plain TCP", func(t *testing.T) {
		if _, err := dial(t, "tcp://"+b.Addr(), "", "", nil); err == nil {
			t.Fatal("plain MQTT accepted on a TLS listener")
		}
	})
}

func TestRestartSamePort(t *testing.T) {
	b := start(t, Options{})
	addr := b.Addr()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.Start(); err == nil {
		t.Fatal("Start after Close succeeded")
	}
	b2 := start(t, Options{Listen: addr})
	c, err := dial(t, "tcp://"+b2.Addr(), "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c)
}

func TestStartPortInUse(t *testing.T) {
	b := start(t, Options{})
	b2, err := New(Options{Listen: b.Addr(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if err := b2.Start(); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a used port: %v", err)
	}
}

func TestQuietHandler(t *testing.T) {
	var buf bytes.Buffer
	h := newQuietHandler(slog.NewTextHandler(&buf, nil), slog.LevelWarn, 3, 10*time.Second)
	log := slog.New(h)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	emit := func(at time.Time, l slog.Level, msg string) {
		r := slog.NewRecord(at, l, msg, 0)
		if log.Handler().Enabled(context.Background(), l) {
			_ = log.Handler().Handle(context.Background(), r)
		}
	}
	emit(t0, slog.LevelInfo, "info dropped")
	for i := 0; i < 10; i++ {
		emit(t0.Add(time.Duration(i)*time.Second), slog.LevelWarn, "bad password")
	}
	emit(t0.Add(11*time.Second), slog.LevelWarn, "later")
	out := buf.String()
	if strings.Contains(out, "info dropped") {
		t.Error("info record passed")
	}
	if n := strings.Count(out, "bad password"); n != 3 {
		t.Errorf("%d records in the first period, want 3 (burst)", n)
	}
	if !strings.Contains(out, "suppressed\" count=7") || !strings.Contains(out, "later") {
		t.Errorf("missing suppression note or next period's record:\n%s", out)
	}
}

// TestManyUnacknowledged: a subscriber that leaves more QoS 1 messages
// unacknowledged than mochi's default in-flight limit (8,192; vigil's queue
// holds 10,000) gets every one, and the broker drops none: before the limit
// was raised, the broker acknowledged the rest to their publisher and
// dropped them.
func TestManyUnacknowledged(t *testing.T) {
	b := start(t, Options{})
	url := "tcp://" + b.Addr()
	o := paho.NewClientOptions().AddBroker(url).SetClientID("slow-sub").SetCleanSession(false).
		SetAutoAckDisabled(true).SetAutoReconnect(false).SetOrderMatters(false)
	sub := paho.NewClient(o)
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	const n = 10000
	got := make(chan struct{}, n)
	if tok := sub.Subscribe("load/#", 1, func(_ paho.Client, m paho.Message) { got <- struct{}{} }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	pub, err := dial(t, url, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if tok := pub.Publish("load/x", 1, false, []byte{byte(i)}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	deadline := time.After(30 * time.Second)
	for i := range n {
		select {
		case <-got:
		case <-deadline:
			t.Fatalf("received %d of %d unacknowledged messages; broker dropped %d", i, n, b.Dropped())
		}
	}
	if d := b.Dropped(); d != 0 {
		t.Fatalf("broker dropped %d messages", d)
	}
}

// TestConnected: a client is connected from its CONNECT to its DISCONNECT;
// an unknown id never is.
func TestConnected(t *testing.T) {
	b := start(t, Options{})
	ev := watchEvents(t, b)
	id := "t-" + t.Name()
	if b.Connected(id) {
		t.Fatal("connected before connecting")
	}
	c, err := dial(t, "tcp://"+b.Addr(), "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Connected(id) {
		t.Fatal("not connected after CONNACK")
	}
	c.Disconnect(100)
	wait(t, ev.disconnected, id, "disconnected", 10*time.Second)
	if b.Connected(id) {
		t.Fatal("still connected after DISCONNECT")
	}
	if b.Connected("nobody") {
		t.Fatal("an unknown id is connected")
	}
}

// TestPlaintextWarning: allowed to listen beyond loopback without TLS, the
// broker says so at start, as a warning nobody can miss.
func TestPlaintextWarning(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	b := start(t, Options{Listen: "0.0.0.0:0", Users: []User{testUser(t, "u", "p", RoleAdmin, "")}, AllowPlaintext: true,
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))})
	_ = b
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "level=WARN msg=\"EMBEDDED BROKER WITHOUT TLS ON THE NETWORK") {
		t.Fatalf("no warning:\n%s", buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
