package conn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/broker"
	"github.com/vigil-gw/vigil/event"
)

func alerts(from, n int) []event.Alert {
	var as []event.Alert
	ts := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	for i := from; i < from+n; i++ {
		at := ts.Add(time.Duration(i) * time.Second)
		as = append(as, event.Alert{
			ID: event.AlertID("r", "k", event.Firing, at), Rule: "r", Key: "k", State: event.Firing,
			Severity: "warning", Time: at, Message: fmt.Sprint(i), Values: map[string]any{"i": float64(i)},
			Topic: "up/gw/r",
		})
	}
	return as
}

// collector subscribes upstream and records alert ids in arrival order.
type collector struct {
	mu  sync.Mutex
	ids []string
}

// collectAlerts subscribes to everything the forwarder sends upstream
// through b and collects the alerts' ids in arrival order.
func collectAlerts(t *testing.T, b *broker.Broker) *collector {
	col := &collector{}
	sub := dialT(t, Options{Broker: "tcp://" + b.Addr()})
	if err := sub.Subscribe("up/#", 1, func(_ string, payload []byte) {
		var a event.Alert
		if err := json.Unmarshal(payload, &a); err != nil {
			t.Errorf("bad alert JSON %s: %v", payload, err)
		}
		col.mu.Lock()
		col.ids = append(col.ids, a.ID)
		col.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	return col
}

func (c *collector) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ids)
}

// Upstream down, then back: every alert is delivered exactly once, in
// order, and removed from the outbox only once acknowledged.
func TestForwarderOutage(t *testing.T) {
	b := startBroker(t, broker.Options{})
	col := collectAlerts(t, b)

	px := newProxy(t, b.Addr())
	px.down()
	ob := &memOutbox{}
	want := alerts(0, 30)
	ob.Put(want[:20]...)
	notify := make(chan struct{}, 1)
	p, f := startForwarder(t, Options{Broker: "tcp://" + px.addr, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond},
		ob, ForwarderOptions{Batch: 7, Retry: 200 * time.Millisecond, Poll: time.Second, Notify: notify})

	eventually(t, "forward errors while down", 5*time.Second, func() bool { return f.Stats().Errors >= 2 })
	if st := f.Stats(); st.Sent != 0 || st.Connected || !strings.Contains(st.LastError, "not connected") || ob.Len() != 20 {
		t.Fatalf("while down: stats %+v, outbox %d", st, ob.Len())
	}
	px.up()
	eventually(t, "first 20 delivered", 10*time.Second, func() bool { return ob.Len() == 0 && len(col.got()) == 20 })

	px.down()
	eventually(t, "publisher sees the outage", 5*time.Second, func() bool { return !p.Connected() })
	errs := f.Stats().Errors
	ob.Put(want[20:]...)
	notify <- struct{}{}
	eventually(t, "a forward attempt fails while down", 5*time.Second, func() bool { return f.Stats().Errors > errs })
	if ob.Len() != 10 {
		t.Fatalf("outbox %d while down, want 10", ob.Len())
	}
	px.up()
	eventually(t, "all delivered", 10*time.Second, func() bool { return ob.Len() == 0 && len(col.got()) == 30 })
	want = append(want, flush(t, ob, col, notify)) // a duplicate would have arrived before it
	wantIDs := ids(want)
	if got := col.got(); !slices.Equal(got, wantIDs) {
		t.Fatalf("upstream got %d ids %v\nwant %d in order %v", len(got), got, len(wantIDs), wantIDs)
	}
	if st := f.Stats(); st.Sent != 31 || !st.Connected {
		t.Fatalf("stats %+v", st)
	}
}

// flush puts one more alert in the outbox and waits until it arrives
// upstream; it returns that alert. The forwarder sends in outbox order over
// one connection, so whatever it was to send before (a duplicate included)
// has then arrived: a signal in place of waiting "long enough".
func flush(t *testing.T, ob *memOutbox, col *collector, notify chan struct{}) event.Alert {
	t.Helper()
	marker := alerts(1000, 1)[0]
	ob.Put(marker)
	if notify != nil {
		select {
		case notify <- struct{}{}:
		default:
		}
	}
	eventually(t, "the flush alert upstream", 10*time.Second, func() bool { return slices.Contains(col.got(), marker.ID) })
	eventually(t, "the flush alert removed", 10*time.Second, func() bool { return ob.Len() == 0 })
	return marker
}

func TestForwarderOutboxError(t *testing.T) {
	b := startBroker(t, broker.Options{})
	ob := &memOutbox{fail: errors.New("disk I/O error")}
	ob.Put(alerts(0, 3)...)
	_, f := startForwarder(t, Options{Broker: "tcp://" + b.Addr()}, ob, ForwarderOptions{Retry: 100 * time.Millisecond})
	eventually(t, "delivered after the outbox error", 5*time.Second, func() bool { return ob.Len() == 0 })
	if st := f.Stats(); st.Errors < 1 || !strings.Contains(st.LastError, "disk I/O error") || st.Sent != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDialTLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	b := startBroker(t, broker.Options{TLS: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		Users: adminUser(t, "u", "p")})

	c := dialT(t, Options{Broker: "tls://" + b.Addr(), Username: "u", Password: "p", TLS: &tls.Config{RootCAs: pool}})
	got := make(chan string, 1)
	if err := c.Subscribe("x", 1, func(_ string, p []byte) { got <- string(p) }); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish("x", []byte("over tls"), 1, false); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != "over tls" {
			t.Fatalf("payload %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message over TLS")
	}

	// A subscriber without the CA keeps failing with a certificate error.
	s, err := NewSubscriber(Options{Broker: "tls://" + b.Addr(), Username: "u", Password: "p", Logger: quiet,
		TLS: &tls.Config{RootCAs: x509.NewCertPool()}}, []string{"x"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	goRun(t, s.Run)
	eventually(t, "certificate error", 5*time.Second, func() bool { return strings.Contains(s.Stats().LastError, "certificate") })
}

// TestForwarderDoesNotWaitForRemoval: while removing acknowledged alerts
// from the outbox waits (the database's writer is busy), the next batches
// go out, and the acknowledged ones are not sent again meanwhile.
func TestForwarderDoesNotWaitForRemoval(t *testing.T) {
	b := startBroker(t, broker.Options{})
	col := collectAlerts(t, b)
	ob := &memOutbox{hold: make(chan struct{})}
	var reads atomic.Int64
	ob.afterRead = func() { reads.Add(1) }
	want := alerts(0, 20)
	ob.Put(want...)
	_, f := startForwarder(t, Options{Broker: "tcp://" + b.Addr()}, ob, ForwarderOptions{Batch: 5, Poll: 50 * time.Millisecond})
	eventually(t, "all 20 sent while the first removal waits", 10*time.Second, func() bool { return len(col.got()) >= 20 })
	// Polls that would send an acknowledged alert again.
	r := reads.Load()
	eventually(t, "three more reads of the outbox", 10*time.Second, func() bool { return reads.Load() >= r+3 })
	if ob.Len() != 20 {
		t.Fatalf("outbox %d while removal is held, want 20", ob.Len())
	}
	close(ob.hold)
	eventually(t, "outbox emptied", 10*time.Second, func() bool { return ob.Len() == 0 })
	want = append(want, flush(t, ob, col, nil))
	wantIDs := ids(want)
	if got := col.got(); !slices.Equal(got, wantIDs) {
		t.Fatalf("upstream got %d ids %v\nwant %d in order, once each: %v", len(got), got, len(wantIDs), wantIDs)
	}
	if st := f.Stats(); st.Sent != 21 {
		t.Fatalf("stats %+v", st)
	}
}

// TestForwarderRemovalDuringRead: alerts removed from the outbox while the
// forwarder reads it (after the read saw them) are not sent again.
func TestForwarderRemovalDuringRead(t *testing.T) {
	b := startBroker(t, broker.Options{})
	col := collectAlerts(t, b)
	ob := &memOutbox{hold: make(chan struct{})}
	want := alerts(0, 10)
	ob.Put(want...)
	var once sync.Once
	ob.afterRead = func() {
		if ob.Len() != 10 || len(col.got()) < 5 {
			return // the first read, or nothing held yet
		}
		// The second read saw the first five, acknowledged and waiting to
		// be removed: let the removal finish now, before the read is used.
		once.Do(func() {
			close(ob.hold)
			deadline := time.Now().Add(5 * time.Second)
			for ob.Len() != 5 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // and the forwarder's bookkeeping
		})
	}
	startForwarder(t, Options{Broker: "tcp://" + b.Addr()}, ob, ForwarderOptions{Batch: 5, Poll: 50 * time.Millisecond})
	eventually(t, "outbox emptied", 10*time.Second, func() bool { return ob.Len() == 0 && len(col.got()) >= 10 })
	want = append(want, flush(t, ob, col, nil))
	wantIDs := ids(want)
	if got := col.got(); !slices.Equal(got, wantIDs) {
		t.Fatalf("upstream got %d ids %v\nwant %d in order, once each: %v", len(got), got, len(wantIDs), wantIDs)
	}
}

// startForwarder runs a publisher with po and a forwarder of ob over it
// until the test ends (both quiet).
func startForwarder(t *testing.T, po Options, ob Outbox, fo ForwarderOptions) (*Publisher, *Forwarder) {
	t.Helper()
	po.Logger, fo.Logger = quiet, quiet
	p, err := NewPublisher(po)
	if err != nil {
		t.Fatal(err)
	}
	f := NewForwarder(ob, p, fo)
	goRun(t, p.Run)
	goRun(t, f.Run)
	return p, f
}

// ids are the alerts' ids, in order.
func ids(as []event.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}
