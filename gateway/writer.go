package gateway

import (
	"errors"
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
// checkpoints, one goroutine (run) in the engine's order, so the engine loop
// never waits for SQLite's fsync. Because a checkpoint is saved only after
// every alert queued before it, a checkpoint at position P is durable only
// once the alerts of the messages up to P are: recovery never skips an
// alert. Alerts queued back to back are merged into one transaction, which
// under load means fewer fsyncs. Without run (tests, recovery), put and
// checkpoint are called directly.
type storeWriter struct {
	g        *Gateway
	unstored []event.Alert // alerts the store could not take yet
	lost     uint64        // dropped beyond maxUnstored
}

// run serves jobs until it is closed, sending each checkpoint's outcome to
// results. While alerts wait in memory it retries them every second.
func (w *storeWriter) run(jobs <-chan storeJob, results chan<- cpResult) {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	var next *storeJob
	for {
		var j storeJob
		if next != nil {
			j, next = *next, nil
		} else {
			select {
			case jj, ok := <-jobs:
				if !ok {
					return
				}
				j = jj
			case <-retry.C:
				if len(w.unstored) > 0 {
					w.put(nil)
				}
				continue
			}
		}
		if j.cp != nil {
			results <- w.checkpoint(*j.cp)
			continue
		}
		alerts := j.alerts
	merge:
		for len(alerts) < maxAlertTx {
			select {
			case n, ok := <-jobs:
				if !ok {
					break merge // the next receive returns too
				}
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
	g := w.g
	if len(alerts) == 0 && len(w.unstored) == 0 {
		return
	}
	all := append(w.unstored, alerts...)
	if _, err := g.db.Put(all); err != nil {
		if len(all) > maxUnstored {
			w.lost += uint64(len(all) - maxUnstored)
			all = all[len(all)-maxUnstored:]
		}
		w.unstored = all
		g.limit.warn(g.log, "outbox", "outbox: cannot store alerts, holding them in memory", "held", len(all), "err", err)
	} else {
		w.unstored = nil
		select {
		case g.notify <- struct{}{}:
		default:
		}
	}
	for _, a := range alerts {
		g.log.Info("alert", "rule", a.Rule, "key", a.Key, "state", a.State, "severity", a.Severity, "time", a.Time, "message", a.Message)
		if g.o.OnAlert != nil {
			g.o.OnAlert(a)
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
	err := w.g.saveCheckpoint(j.cp)
	took := time.Since(t0)
	if err == nil {
		g := w.g
		if _, err := g.db.PruneJournal(); err != nil {
			g.limit.warn(g.log, "journal-prune", "journal: prune failed", "err", err)
		}
		if err := g.db.CheckpointWAL(); err != nil {
			g.limit.warn(g.log, "wal-checkpoint", "state db: WAL checkpoint failed", "err", err)
		}
	}
	return cpResult{cpJob: j, write: took, err: err}
}
