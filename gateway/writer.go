package gateway

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/store"
)

const (
	// storeQueue bounds the store writer's queue, in engine batches (each
	// up to maxBatch messages' alerts) and checkpoints: enough for the
	// batches processed during one checkpoint write (~20–30 ms), which are
	// small unless the gateway is flooded. Flooded, 16 batches of 4,000
	// messages hold their alerts: about 1,300 with the benchmarks' ten rules
	// (2 % of messages alert), at worst one per message and rule.
	// When it is full the engine loop waits for the database, as it did
	// when it wrote itself.
	storeQueue = 16
	// maxAlertTx caps the alerts the writer merges into one transaction.
	maxAlertTx = 5000
	// maxUnstored bounds the alerts held in memory while the store
	// refuses them (disk full); the oldest beyond it are lost, counted.
	maxUnstored = 10000
)

// storeJob is work for the store writer, in the engine's order: the alerts
// of a batch, or a checkpoint to save after the alerts before it.
type storeJob struct {
	alerts []event.Alert
	cp     *cpJob
}

// cpJob is a checkpoint snapshot on its way to the database.
type cpJob struct {
	cp   store.Checkpoint
	snap time.Duration // time the engine loop spent on the snapshot
	size int
}

// cpResult is a saved (or failed) checkpoint.
type cpResult struct {
	cpJob
	write time.Duration
	err   error
}

// errUnstored refuses a checkpoint while alerts wait in memory: a crash must
// replay the journal that made them.
var errUnstored = errors.New("alerts not stored yet (outbox not writable)")

// storeWriter puts alerts into the outbox and history and saves
// checkpoints, one goroutine (Run) in the engine's order, so the engine loop
// never waits for SQLite's fsync. Because a checkpoint is saved only after
// every alert queued before it, a checkpoint at position P is durable only
// once the alerts of the messages up to P are: recovery never skips an
// alert. Alerts queued back to back are merged into one transaction, which
// under load means fewer fsyncs. Without Run (tests, recovery), put and
// checkpoint are called directly.
//
// It is given what it uses and nothing of the Gateway: the database, its
// two queues with the engine loop, the forwarder's wake-up and the alert
// hook.
type storeWriter struct {
	db *store.DB
	// save writes a checkpoint: db.SaveCheckpoint (tests replace it to
	// hold or fail a write).
	save    func(store.Checkpoint) error
	jobs    chan storeJob   // from the engine loop, in its order
	results chan cpResult   // each checkpoint's outcome, to the engine loop
	stored  chan<- struct{} // wakes the forwarder: alerts are in the outbox
	onAlert func(event.Alert)
	log     *slog.Logger
	limit   limiter

	unstored []event.Alert // alerts the store could not take yet
	lost     uint64        // dropped beyond maxUnstored
}

func newStoreWriter(db *store.DB, stored chan<- struct{}, onAlert func(event.Alert), log *slog.Logger) *storeWriter {
	return &storeWriter{db: db, save: db.SaveCheckpoint, jobs: make(chan storeJob, storeQueue), results: make(chan cpResult, 1),
		stored: stored, onAlert: onAlert, log: log}
}

// Run serves the queue, sending each checkpoint's outcome to results. While
// alerts wait in memory it retries them every second. It returns once ctx
// has ended and the queue is empty: Run (gateway.go) ends ctx when the
// engine loop has returned, so nothing more comes and the last alerts and
// the final checkpoint are in the database before it closes.
func (w *storeWriter) Run(ctx context.Context) error {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	var next *storeJob
	for {
		var j storeJob
		if next != nil {
			j, next = *next, nil
		} else {
			select {
			case j = <-w.jobs:
			case <-retry.C:
				if len(w.unstored) > 0 {
					w.put(nil)
				}
				continue
			case <-ctx.Done():
				select {
				case j = <-w.jobs: // the engine loop is gone: what it queued is all
				default:
					return nil
				}
			}
		}
		if j.cp != nil {
			w.results <- w.checkpoint(*j.cp)
			continue
		}
		alerts := j.alerts
	merge:
		for len(alerts) < maxAlertTx {
			select {
			case n := <-w.jobs:
				if n.cp != nil {
					next = &n
					break merge
				}
				alerts = append(alerts[:len(alerts):len(alerts)], n.alerts...)
			default:
				break merge
			}
		}
		w.put(alerts)
	}
}

// put stores alerts (after any still held). If the store cannot take them
// (disk full), they wait in memory (bounded) and are retried.
func (w *storeWriter) put(alerts []event.Alert) {
	if len(alerts) == 0 && len(w.unstored) == 0 {
		return
	}
	all := append(w.unstored, alerts...)
	if _, err := w.db.Put(all); err != nil {
		if len(all) > maxUnstored {
			w.lost += uint64(len(all) - maxUnstored)
			all = all[len(all)-maxUnstored:]
		}
		w.unstored = all
		w.limit.warn(w.log, "outbox", "outbox: cannot store alerts, holding them in memory", "held", len(all), "err", err)
	} else {
		w.unstored = nil
		select {
		case w.stored <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
	for _, a := range alerts {
		w.log.Info("alert", "rule", a.Rule, "key", a.Key, "state", a.State, "severity", a.Severity, "time", a.Time, "message", a.Message)
		if w.onAlert != nil {
			w.onAlert(a)
		}
	}
}

// checkpoint saves j, unless alerts still wait in memory. Once it has
// committed (synced), the journal files it covers are deleted, and SQLite's
// WAL is copied into the database file: once a checkpoint interval, so a
// page that the alerts of many commits touched is written there once.
func (w *storeWriter) checkpoint(j cpJob) cpResult {
	if len(w.unstored) > 0 {
		w.put(nil)
		if len(w.unstored) > 0 {
			return cpResult{cpJob: j, err: errUnstored}
		}
	}
	t0 := time.Now()
	err := w.save(j.cp)
	took := time.Since(t0)
	if err == nil {
		if _, err := w.db.PruneJournal(); err != nil {
			w.limit.warn(w.log, "journal-prune", "journal: prune failed", "err", err)
		}
		if err := w.db.CheckpointWAL(); err != nil {
			w.limit.warn(w.log, "wal-checkpoint", "state db: WAL checkpoint failed", "err", err)
		}
	}
	return cpResult{cpJob: j, write: took, err: err}
}
