package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/store"
)

// TestCheckpointWrittenBesideEngineLoop: the engine loop takes the snapshot
// and goes on processing while the checkpoint is written; a failed write
// leaves the state dirty, so the next checkpoint covers it; and what is
// written is the state at its position (a restart replays nothing more).
func TestCheckpointWrittenBesideEngineLoop(t *testing.T) {
	b := startBroker(t, "")
	dir := t.TempDir()
	const r = `
rules:
  - name: five
    from: meters/{m}/kwh
    key: m
    window: {count: 5}
    aggregate: {total: sum(kwh)}
`
	c := testConfig(t, dir, b.Addr(), "", r)
	g, err := New(Options{Config: c, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan store.Checkpoint, 1)
	release := make(chan error)
	g.store.save = func(cp store.Checkpoint) error {
		select {
		case entered <- cp:
		default:
		}
		if err, ok := <-release; ok && err != nil {
			return err
		}
		return g.db.SaveCheckpoint(cp)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		close(release)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway run: %v", err)
		}
	}
	defer stop()
	waitConnected(t, g)
	dev := device(t, b.Addr())
	send := func(i int) {
		publish(t, dev, "meters/m1/kwh", fmt.Sprintf(`{"kwh": %d, "ts": "2026-01-05T10:00:%02dZ"}`, i, i))
	}
	wait := func() store.Checkpoint {
		t.Helper()
		select {
		case cp := <-entered:
			return cp
		case <-time.After(10 * time.Second):
			t.Fatal("no checkpoint was written within 10 s")
		}
		return store.Checkpoint{}
	}

	send(1)
	waitEvents(t, g, 1)
	cp1 := wait()
	if cp1.Pos < 1 {
		t.Fatalf("first checkpoint at position %d, want the first message's", cp1.Pos)
	}
	// The write is held: the engine loop must not be.
	send(2)
	send(3)
	waitEvents(t, g, 3)

	release <- errors.New("disk on fire")
	cp2 := wait()
	if cp2.Pos != cp1.Pos+2 {
		t.Fatalf("checkpoint after a failed one at position %d, want %d (the failed one's state plus two messages)", cp2.Pos, cp1.Pos+2)
	}
	if st := g.Status(); !strings.Contains(st.CheckpointErr, "disk on fire") {
		t.Fatalf("status after a failed checkpoint write: CheckpointErr %q", st.CheckpointErr)
	}
	release <- nil
	waitFor(t, g, 10*time.Second, "the checkpoint's write in the status", func() bool {
		st := g.Status()
		return st.CheckpointErr == "" && st.LastCheckpoint.Equal(cp2.Taken)
	})
	stop()

	g2, err := New(Options{Config: testConfig(t, dir, b.Addr(), "", r), Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.db.Close()
	if st := g2.Status(); st.LastPos != cp2.Pos || st.Replayed != 0 {
		t.Fatalf("restart: at position %d after replaying %d, want %d and 0", st.LastPos, st.Replayed, cp2.Pos)
	}
}
