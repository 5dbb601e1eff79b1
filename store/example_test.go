package store_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/store"
)

// The daemon's cycle: restore the checkpoint, replay the journal after it,
// journal new messages before acking them, checkpoint, and drain the outbox.
func Example() {
	dir, _ := os.MkdirTemp("", "vigil")
	defer os.RemoveAll(dir)
	db, err := store.Open(store.Options{Path: filepath.Join(dir, "vigil.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	// Start: restore operator state, then re-process what came after it.
	cp, _, _ := db.LoadCheckpoint()
	db.Journal(cp.Pos, func(m store.Message) error { return nil /* engine.Process(m) */ })

	// Ingest: journal a batch, then ack. The second is the broker's
	// redelivery (DUP) of the first: a Dup, journaled (and processed)
	// before, so it is acked and skipped.
	batch := []store.Message{
		{Topic: "sensors/pump1/temperature", Payload: []byte(`{"temperature":81.5}`), Received: time.Now(), Dedup: "17/ab12"},
		{Topic: "sensors/pump1/temperature", Payload: []byte(`{"temperature":81.5}`), Received: time.Now(), Dedup: "17/ab12", Redelivered: true},
	}
	db.Append(batch)
	for _, m := range batch {
		fmt.Println("pos", m.Pos, "dup", m.Dup)
	}

	// The engine's alerts go to the outbox; every few seconds its state
	// is checkpointed with the last position it processed.
	ts := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	added, _ := db.Put([]event.Alert{{ID: event.AlertID("hot_motor", "pump1", event.Firing, ts),
		Rule: "hot_motor", Key: "pump1", State: event.Firing, Severity: "critical", Time: ts,
		Topic: "vigil/gw1/alerts/hot_motor"}})
	db.SaveCheckpoint(store.Checkpoint{Pos: batch[0].Pos, Version: 1, Taken: time.Now(),
		Parts: map[string][]byte{"engine": {1}, "rule/hot_motor": {2}}})

	// Forwarder: publish the oldest pending alerts, then mark them delivered.
	pending, _ := db.Pending(100)
	for _, a := range pending {
		fmt.Println("publish", a.Topic, a.Rule, a.State)
		db.Delivered([]string{a.ID})
	}
	n, _ := db.OutboxLen()
	j, _ := db.JournalLen()
	fmt.Println("added", added, "outbox", n, "journal", j)
	// Output:
	// pos 1 dup false
	// pos 1 dup true
	// publish vigil/gw1/alerts/hot_motor hot_motor firing
	// added 1 outbox 0 journal 0
}
