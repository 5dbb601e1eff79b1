package gateway

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/store"
)

// testWriter is a store writer on a fresh database, as New builds it.
func testWriter(t *testing.T) *storeWriter {
	t.Helper()
	db, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "vigil.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return newStoreWriter(db, make(chan struct{}, 1), nil, quiet)
}

// testWriterWoken is testWriter with the forwarder's wake-up it is given.
func testWriterWoken(t *testing.T) (*storeWriter, <-chan struct{}) {
	w := testWriter(t)
	wake := make(chan struct{}, 1)
	w.stored = wake
	return w, wake
}

func testAlerts(from, n int) []event.Alert {
	base := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	as := make([]event.Alert, n)
	for i := range as {
		as[i] = event.Alert{Rule: "r", Key: fmt.Sprint(from + i), State: event.Firing, Severity: "info",
			Time: base.Add(time.Duration(from+i) * time.Second), Topic: "up/r"}
	}
	return as
}

// TestStoreWriterOrder: the writer stores queued alerts in order, merging
// what is queued back to back, and saves a checkpoint only after the alerts
// queued before it are in the outbox — a checkpoint durable before its
// alerts would let a crash lose them.
func TestStoreWriterOrder(t *testing.T) {
	w, woken := testWriterWoken(t)
	var atSave []event.Alert
	w.save = func(cp store.Checkpoint) error {
		var err error
		atSave, err = w.db.Pending(1000)
		if err != nil {
			return err
		}
		return w.db.SaveCheckpoint(cp)
	}
	w.jobs <- storeJob{alerts: testAlerts(0, 3)}
	w.jobs <- storeJob{alerts: testAlerts(3, 2)}
	w.jobs <- storeJob{cp: &cpJob{cp: store.Checkpoint{Version: 1, Parts: map[string][]byte{"engine": {1}}}}}
	w.jobs <- storeJob{alerts: testAlerts(5, 4)}
	// Run stops once its context has ended and the queue is empty: as the
	// engine loop's end does, ending it now leaves the queued jobs to do.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	if r := <-w.results; r.err != nil {
		t.Fatal(r.err)
	}
	if len(atSave) != 5 {
		t.Fatalf("checkpoint saved with %d alerts in the outbox, want the 5 queued before it", len(atSave))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := w.db.Pending(1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 9 {
		t.Fatalf("outbox holds %d alerts, want 9", len(got))
	}
	for i, a := range got {
		if a.Key != fmt.Sprint(i) {
			t.Fatalf("outbox[%d] is alert %s: order lost", i, a.Key)
		}
	}
	select {
	case <-woken:
	default:
		t.Fatal("the forwarder was not woken after alerts were stored")
	}
}

// TestStoreWriterRefusesCheckpointWithUnstoredAlerts: alerts the store
// cannot take stay in memory, and no checkpoint is saved meanwhile (a crash
// must replay the journal that made them).
func TestStoreWriterRefusesCheckpointWithUnstoredAlerts(t *testing.T) {
	w := testWriter(t)
	saved := false
	w.save = func(store.Checkpoint) error { saved = true; return nil }
	w.db.Close() // every Put fails now
	w.put(testAlerts(0, 2))
	if len(w.unstored) != 2 {
		t.Fatalf("held %d alerts after a failed put, want 2", len(w.unstored))
	}
	r := w.checkpoint(cpJob{cp: store.Checkpoint{Version: 1}})
	if !errors.Is(r.err, errUnstored) || saved {
		t.Fatalf("checkpoint with alerts held: err %v, saved %v; want errUnstored and not saved", r.err, saved)
	}
}

// TestFlushOutboxWakesOnDelivery: at a stop, flushOutbox waits while the
// outbox holds alerts and upstream is connected, and returns as soon as
// the forwarder's removal empties it, woken by the outbox's signal. In a
// synctest bubble: no time passes on the bubble's clock, where a wait for
// its limit (an hour) would.
func TestFlushOutboxWakesOnDelivery(t *testing.T) {
	b := startBroker(t, "")
	w := testWriter(t)
	pub, err := conn.NewPublisher(conn.Options{Broker: "tcp://" + b.Addr(), ClientID: "flush-" + t.Name(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pubDone := make(chan error, 1)
	go func() { pubDone <- pub.Run(ctx) }()
	defer func() { cancel(); <-pubDone }()
	eventually(t, 10*time.Second, "upstream connected", pub.Connected)
	w.put(testAlerts(0, 3))

	synctest.Test(t, func(t *testing.T) {
		g := &Gateway{db: w.db, pub: pub, outbox: newOutbox(w.db)}
		pending, err := g.outbox.PendingBodies(10, func(string) bool { return false })
		if err != nil || len(pending) != 3 {
			t.Fatalf("outbox: %d alerts, %v", len(pending), err)
		}
		t0 := time.Now()
		left := make(chan int, 1)
		go func() {
			g.flushOutbox(time.Hour)
			n, _ := w.db.OutboxLen()
			left <- n
		}()
		synctest.Wait()
		// Upstream acknowledged the first two: the outbox is not empty yet.
		if err := g.outbox.Delivered([]string{pending[0].ID, pending[1].ID}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case n := <-left:
			t.Fatalf("flushOutbox returned with %d alerts in the outbox", n)
		default:
		}
		if err := g.outbox.Delivered([]string{pending[2].ID}); err != nil {
			t.Fatal(err)
		}
		if n := <-left; n != 0 {
			t.Fatalf("flushOutbox returned with %d alerts in the outbox", n)
		}
		if d := time.Since(t0); d != 0 {
			t.Fatalf("flushOutbox returned after %v on the bubble's clock: at its limit, not woken by the removal", d)
		}
	})
}
