package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/engine"
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/rules"
	"github.com/vigil-gw/vigil/store"
)

// dedupKey recognises a QoS 1 message the broker delivers again after a
// reconnect or a crash: same packet id, topic and payload.
func dedupKey(m conn.Message) string {
	var k keyer
	return k.key(m)
}

// keyer makes dedup keys with one allocation each (the string): its
// buffers are reused, so one keyer serves one goroutine (the journal
// writer's).
type keyer struct {
	in, out []byte
}

// key is m's dedup key: "<packet id>:<first 12 bytes of the SHA-256 of
// [client NUL] topic NUL payload, in hex>", "" at QoS 0. Keys are stored in
// the journal and compared across restarts: the format never changes.
func (k *keyer) key(m conn.Message) string {
	if m.QoS == 0 {
		return ""
	}
	k.in = k.in[:0]
	if m.Client != "" {
		// In-process ingest: packet ids are per publishing client.
		k.in = append(append(k.in, m.Client...), 0)
	}
	k.in = append(append(append(k.in, m.Topic...), 0), m.Payload...)
	sum := sha256.Sum256(k.in)
	k.out = strconv.AppendUint(k.out[:0], uint64(m.ID), 10)
	k.out = hex.AppendEncode(append(k.out, ':'), sum[:12])
	if cap(k.in) > 64<<10 {
		k.in = nil // a rare huge payload is not kept
	}
	return string(k.out)
}

// journalLoop groups messages into journal transactions, acknowledges them
// once committed, and hands them to the engine loop. It returns when stop
// ends and the queue is drained.
//
// Grouping is natural: a batch is whatever arrived while the previous
// commit ran (up to maxBatch). A lone message is committed at once, so
// latency stays low when traffic is light, and batches grow by themselves
// under load; brokers that cap unacknowledged messages (Mosquitto: 20 by
// default) are never left waiting for a timer.
//
// With in-process ingest, state.commit_gap can space commits: a message
// arriving sooner after the last commit waits for the others of that gap.
// On a fast disk a steady trickle otherwise costs one commit (and fsync)
// per message (at 2,000 msg/s here, 68 % of a core instead of 48 % with
// 1 ms), for about 1.5 ms more latency. On an SD card, whose fsync takes
// milliseconds, commits group by themselves. Devices keep many messages
// in flight, so the wait does not throttle them; a broker subscription
// may not (Mosquitto sends 20 at a time), so it never waits.
func (g *Gateway) journalLoop(msgs <-chan conn.Message, stop context.Context) error {
	var gap time.Duration
	if _, ok := g.sub.(*inline); ok {
		gap = g.cfg.State.CommitGap
	}
	var last time.Time     // start of the last commit
	var buf []conn.Message // the batch's memory, reused
	for {
		batch := buf[:0]
		select {
		case m := <-msgs:
			batch = append(batch, m)
		case <-stop.Done():
			return g.drain(msgs)
		}
		var wait <-chan time.Time
		if d := gap - time.Since(last); gap > 0 && d > 0 {
			t := time.NewTimer(d)
			wait = t.C
		fill:
			for len(batch) < maxBatch {
				select {
				case m := <-msgs:
					batch = append(batch, m)
				case <-wait:
					break fill
				}
			}
			t.Stop()
		}
	more:
		for len(batch) < maxBatch {
			select {
			case m := <-msgs:
				batch = append(batch, m)
			default:
				break more
			}
		}
		last = time.Now()
		g.commit(batch)
		clear(batch) // no payload kept alive by the reused memory
		buf = batch[:0]
	}
}

func (g *Gateway) drain(msgs <-chan conn.Message) error {
	for {
		var batch []conn.Message
	fill:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return nil
		}
		g.commit(batch)
	}
}

// appendJournal journals recs in one transaction. Only a message the
// broker (or, in-process, the device) flags as a redelivery (DUP) is looked
// up by its id (packet id, topic, payload; in-process also the client): a
// new message that merely repeats an old one — a fresh session starts
// packet ids again, and a sensor may send "21.5" twice — is journaled as
// new (store.Message.Redelivered).
func (g *Gateway) appendJournal(recs []store.Message) error {
	_, err := g.db.Append(recs)
	return err
}

// commit journals a batch in one transaction, acknowledges it and passes it
// on. When the journal cannot be written (disk full, I/O error) the gateway
// keeps processing in memory and says so loudly; durability resumes when a
// later commit succeeds.
func (g *Gateway) commit(batch []conn.Message) {
	out := make([]journaled, 0, len(batch))
	durable := false
	var recs []store.Message
	if g.cfg.State.Journal {
		recs = slices.Grow(g.recs[:0], len(batch))[:len(batch)]
		defer func() {
			clear(recs) // no payload kept alive by the reused memory
			g.recs = recs[:0]
		}()
		for i, m := range batch {
			recs[i] = store.Message{Topic: m.Topic, Payload: m.Payload, Received: m.Received, Dedup: g.keys.key(m), Redelivered: m.Dup}
		}
		err := g.appendJournal(recs)
		if err != nil {
			recs = nil
			g.mu.Lock()
			g.status.JournalErrors++
			g.status.LastJournalErr = err.Error()
			first := !g.status.Degraded
			g.status.Degraded = true
			g.mu.Unlock()
			if first {
				g.log.Error("journal: cannot write, processing in memory only until it can", "err", err, "disk_full", errors.Is(err, store.ErrDiskFull))
			}
		} else {
			durable = true
			g.mu.Lock()
			g.status.JournalCommits++
			if g.status.Degraded {
				g.log.Info("journal: writable again, durability resumed")
			}
			g.status.Degraded = false
			g.mu.Unlock()
			for i := range batch {
				if recs[i].Dup {
					continue
				}
				out = append(out, journaled{m: engine.Message{Topic: recs[i].Topic, Payload: recs[i].Payload, Received: recs[i].Received, Seq: recs[i].Pos}, durable: true})
			}
		}
	}
	if !durable {
		out = out[:0]
		for _, m := range batch {
			out = append(out, journaled{m: engine.Message{Topic: m.Topic, Payload: m.Payload, Received: m.Received}})
		}
	}
	redelivered := 0
	for i, m := range batch {
		if recs != nil && recs[i].Dup {
			redelivered++
		}
		if m.Ack != nil {
			m.Ack()
		}
	}
	if redelivered > 0 {
		g.mu.Lock()
		g.status.Redelivered += uint64(redelivered)
		g.mu.Unlock()
	}
	if len(out) > 0 {
		g.batches <- out
	}
}

// engineLoop is the only goroutine that touches the engine. It returns
// after the batches channel is closed and the final checkpoint is written.
//
// It never waits for SQLite: the alerts of each batch and the checkpoints
// go, in the engine's order, to the store writer (writer.go). A checkpoint
// is taken here — the snapshot must see the state after exactly lastPos —
// and the writer saves it after the alerts before it.
func (g *Gateway) engineLoop(ctx context.Context) error {
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	cp := time.NewTicker(g.cfg.State.CheckpointEvery)
	defer cp.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	jobs := make(chan storeJob, storeQueue)
	results := make(chan cpResult, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); g.store.run(jobs, results) }()
	g.toStore = jobs
	defer func() { g.toStore = nil; close(jobs); wg.Wait() }()
	busy := false // a checkpoint is on its way to the database
	g.refreshStatus()
	g.prune()
	wasDown := false
	for {
		select {
		case b, ok := <-g.batches:
			if !ok {
				if busy {
					g.checkpointDone(<-results)
				}
				if g.dirty {
					if j, ok := g.snapshot(); ok {
						jobs <- storeJob{cp: &j}
						g.checkpointDone(<-results)
					}
				}
				return nil
			}
			g.process(b)
		case <-tick.C:
			// While the broker is out of reach nothing arrives, and that
			// is not silence: the backlog a persistent session keeps comes
			// after the reconnect. The clock restarts then.
			if !g.sub.Stats().Connected {
				wasDown = true
				continue
			}
			if wasDown {
				wasDown = false
				g.eng.ResetClock(g.o.Now())
			}
			alerts := g.eng.Tick(g.o.Now())
			if len(alerts) > 0 {
				g.dirty = true
			}
			g.putAlerts(alerts)
			g.refreshStatus()
		case <-cp.C:
			// A checkpoint still being written when the next is due
			// (a slow SD card) makes this one wait for the next tick.
			if g.dirty && !busy {
				if j, ok := g.snapshot(); ok {
					jobs <- storeJob{cp: &j}
					busy = true
				}
			}
		case r := <-results:
			busy = false
			g.checkpointDone(r)
		case <-prune.C:
			g.prune()
		case reply := <-g.reloads:
			reply <- g.reload()
		case req := <-g.fleetApplies():
			req.reply <- g.applyFleet(req.files)
		}
	}
}

// pruneChunk is how many journal rows one transaction of journalPruner
// deletes: a few milliseconds of the database's one writer. Between chunks
// it pauses for prunePause, so journal commits get the writer in between;
// that still prunes ~30,000 rows a second, more than a gateway journals.
const (
	pruneChunk = 500
	prunePause = 10 * time.Millisecond
)

// journalPruner deletes the journal rows that checkpoints cover, a chunk at
// a time, so no transaction holds the writer — and the journal commits and
// acknowledgements waiting for it — for long. Rows it has not reached yet
// are never read again; they only take disk space meanwhile. Every second
// it also copies SQLite's WAL into the file (store.CheckpointWAL), which
// the writer would otherwise do after a journal commit.
func (g *Gateway) journalPruner(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if tick%4 == 0 {
			if err := g.db.CheckpointWAL(); err != nil {
				g.limit.warn(g.log, "wal-checkpoint", "state db: WAL checkpoint failed", "err", err)
			}
		}
		for ctx.Err() == nil {
			n, err := g.db.PruneJournal(pruneChunk)
			if err != nil {
				g.limit.warn(g.log, "journal-prune", "journal: prune failed", "err", err)
				break
			}
			if n < pruneChunk {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(prunePause):
			}
		}
	}
}

func (g *Gateway) prune() {
	if n, err := g.db.Prune(g.o.Now()); err != nil {
		g.log.Warn("history: prune failed", "err", err)
	} else if n > 0 {
		g.log.Debug("history: pruned", "rows", n)
	}
}

func (g *Gateway) process(b []journaled) {
	var alerts []event.Alert
	for _, j := range b {
		as, err := g.eng.Process(j.m)
		if err != nil {
			var de *engine.DecodeError
			if errors.As(err, &de) {
				g.limit.warn(g.log, "decode:"+de.Topic, "bad payload dropped", "topic", de.Topic, "err", de.Err)
			} else {
				g.log.Error("process", "topic", j.m.Topic, "err", err)
			}
		}
		alerts = append(alerts, as...)
		if j.durable && j.m.Seq > g.lastPos {
			g.lastPos = j.m.Seq
		}
	}
	g.dirty = true
	g.putAlerts(alerts)
	g.refreshStatus()
}

// putAlerts hands alerts to the store writer, or stores them at once when
// no engine loop runs (recovery, tests and benchmarks that drive process).
func (g *Gateway) putAlerts(alerts []event.Alert) {
	if g.toStore == nil {
		g.store.put(alerts)
		return
	}
	if len(alerts) > 0 {
		g.toStore <- storeJob{alerts: alerts}
	}
}

// snapshot takes a checkpoint of the engine's state after lastPos, on the
// engine loop. It clears dirty: what changes from now on needs the next
// checkpoint, even while this one is being written; checkpointDone sets it
// again if the write fails.
func (g *Gateway) snapshot() (cpJob, bool) {
	t0 := time.Now()
	parts, err := g.eng.Snapshot()
	if err != nil {
		g.checkpointDone(cpResult{err: err})
		return cpJob{}, false
	}
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	g.dirty = false
	return cpJob{cp: store.Checkpoint{Pos: g.lastPos, Version: 1, Parts: parts, Taken: g.o.Now()},
		snap: time.Since(t0), size: size}, true
}

// checkpoint takes and writes a checkpoint on the calling goroutine, when
// no engine loop runs (tests and benchmarks).
func (g *Gateway) checkpoint() {
	if j, ok := g.snapshot(); ok {
		g.checkpointDone(g.store.checkpoint(j))
	}
}

// checkpointDone records a checkpoint's outcome; it runs on the engine loop.
func (g *Gateway) checkpointDone(r cpResult) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.err != nil {
		g.dirty = true
		g.status.CheckpointErr = r.err.Error()
		g.limit.warn(g.log, "checkpoint", "checkpoint failed", "err", r.err)
		return
	}
	g.status.CheckpointErr = ""
	g.status.LastCheckpoint = r.cp.Taken
	g.status.CheckpointTook = r.snap + r.write
	g.status.CheckpointStall = r.snap
	g.status.CheckpointBytes = r.size
	g.log.Debug("checkpoint", "pos", r.cp.Pos, "bytes", r.size, "snapshot", r.snap, "write", r.write)
}

func (g *Gateway) reload() error {
	set, err := g.loadRules()
	if err == nil {
		var ne *engine.Engine
		var notes []string
		ne, notes, err = g.eng.Reload(set)
		if err == nil {
			for _, n := range notes {
				g.log.Info("reload: "+n, "op", "reload")
			}
			g.eng = ne
			g.dirty = true
			if g.sub != nil {
				if err := g.sub.SetFilters(set.Filters()); err != nil {
					g.log.Warn("reload: resubscribe failed", "err", err)
				}
			}
			g.mu.Lock()
			g.status.Reloads++
			g.status.ReloadErrors = nil
			g.status.LastReload = g.o.Now()
			g.mu.Unlock()
			g.log.Info("rules reloaded", "rules", len(set.Rules))
			g.refreshStatus()
			return nil
		}
	}
	var lines []string
	if es := rules.AsErrors(err); es != nil {
		for _, e := range es {
			lines = append(lines, e.Error())
		}
	} else {
		lines = []string{err.Error()}
	}
	for _, l := range lines {
		g.log.Error("reload rejected, old rules keep running: " + l)
	}
	g.mu.Lock()
	g.status.Reloads++
	g.status.ReloadErrors = lines
	g.status.LastReload = g.o.Now()
	g.mu.Unlock()
	return err
}

func (g *Gateway) refreshStatus() {
	st := g.eng.Stats()
	rs := g.eng.RuleStats()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.status.Messages = st.Messages
	g.status.Events = st.Events
	g.status.Alerts = st.Alerts
	g.status.DecodeErrors = st.DecodeErrors
	g.status.Duplicates = st.Duplicates
	g.status.Rules = rs
	g.status.LastPos = g.lastPos
	g.status.Watermark = st.LastEvent
	if !st.LastEvent.IsZero() {
		g.status.ProcessLag = g.o.Now().Sub(st.LastEvent)
	}
}

// limiter rate-limits log lines a misbehaving device can trigger: one line
// per key per interval, with the count of what was held back.
type limiter struct {
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

const logEvery = 10 * time.Second

func (l *limiter) warn(log interface {
	Warn(string, ...any)
}, key, msg string, args ...any) {
	l.mu.Lock()
	if l.last == nil {
		l.last, l.held = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if t, ok := l.last[key]; ok && now.Sub(t) < logEvery {
		l.held[key]++
		l.mu.Unlock()
		return
	}
	if len(l.last) > 10000 {
		clear(l.last)
		clear(l.held)
	}
	held := l.held[key]
	l.last[key] = now
	l.held[key] = 0
	l.mu.Unlock()
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	log.Warn(msg, args...)
}
