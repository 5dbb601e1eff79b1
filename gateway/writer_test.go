package gateway

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/config"
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/store"
)

func writerGateway(t *testing.T) *Gateway {
	t.Helper()
	dir := t.TempDir()
	rd := filepath.Join(dir, "rules")
	os.MkdirAll(rd, 0o755)
	os.WriteFile(filepath.Join(rd, "r.yaml"), []byte(hotRules), 0o644)
	c := config.Default()
	c.State.Path = filepath.Join(dir, "vigil.db")
	c.Rules = []string{rd}
	g, err := New(Options{Config: c, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.db.Close() })
	return g
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
	g := writerGateway(t)
	var atSave []event.Alert
	g.saveCheckpoint = func(cp store.Checkpoint) error {
		var err error
		atSave, err = g.db.Pending(1000)
		if err != nil {
			return err
		}
		return g.db.SaveCheckpoint(cp)
	}
	jobs := make(chan storeJob, 8)
	results := make(chan cpResult, 1)
	jobs <- storeJob{alerts: testAlerts(0, 3)}
	jobs <- storeJob{alerts: testAlerts(3, 2)}
	jobs <- storeJob{cp: &cpJob{cp: store.Checkpoint{Version: 1, Parts: map[string][]byte{"engine": {1}}}}}
	jobs <- storeJob{alerts: testAlerts(5, 4)}
	done := make(chan struct{})
	go func() { g.store.run(jobs, results); close(done) }()
	if r := <-results; r.err != nil {
		t.Fatal(r.err)
	}
	if len(atSave) != 5 {
		t.Fatalf("checkpoint saved with %d alerts in the outbox, want the 5 queued before it", len(atSave))
	}
	close(jobs)
	<-done
	got, err := g.db.Pending(1000)
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
}

// TestStoreWriterRefusesCheckpointWithUnstoredAlerts: alerts the store
// cannot take stay in memory, and no checkpoint is saved meanwhile (a crash
// must replay the journal that made them).
func TestStoreWriterRefusesCheckpointWithUnstoredAlerts(t *testing.T) {
	g := writerGateway(t)
	saved := false
	g.saveCheckpoint = func(store.Checkpoint) error { saved = true; return nil }
	g.db.Close() // every Put fails now
	g.store.put(testAlerts(0, 2))
	if len(g.store.unstored) != 2 {
		t.Fatalf("held %d alerts after a failed put, want 2", len(g.store.unstored))
	}
	r := g.store.checkpoint(cpJob{cp: store.Checkpoint{Version: 1}})
	if !errors.Is(r.err, errUnstored) || saved {
		t.Fatalf("checkpoint with alerts held: err %v, saved %v; want errUnstored and not saved", r.err, saved)
	}
}
