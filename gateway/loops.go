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
// Group commit: a message that arrives within state.commit_gap of the last
// commit's start waits for the others of that gap, so the disk sees at most
// one commit (and, with QoS 1 messages in it, one fsync) per gap whatever
// the rate — 20 a second by default, where a commit per message wore out
// SD cards (issue #17). A lone message after a quiet spell is committed at
// once. A batch carries at most maxBatch messages; a full one is committed
// without waiting.
//
// A sender that waits for acknowledgements — a broker subscription holds
// back what exceeds its in-flight window (Mosquitto: 20 by default), a
// device its own — would otherwise be throttled to one window per gap. So
// when the QoS 1 messages waiting reach the most a commit has ever carried
// (ackWindow) and nothing more comes for stallWait, the batch is committed
// at once, and counted (vigil_journal_early_commits_total): a sign that the
// broker's window, not commit_gap, sets how commits group.
func (g *Gateway) journalLoop(msgs <-chan conn.Message, stop context.Context) error {
	gap := g.cfg.State.CommitGap
	var last time.Time     // start of the last commit
	var buf []conn.Message // the batch's memory, reused
	var win ackWindow
	var held []conn.Message // QoS 1 messages the journal could not take yet
	t := time.NewTimer(time.Hour)
	t.Stop()
	stall := time.NewTimer(time.Hour)
	stall.Stop()
	for {
		batch := append(buf[:0], held...)
		if len(held) > 0 {
			// The journal refused the last batch (disk full): try again
			// in a while. Meanwhile the ingest queue fills and pushes
			// back on the senders, which keep what is not acknowledged.
			select {
			case <-time.After(retryJournal):
			case <-stop.Done():
				return nil // held messages stay unacknowledged: their senders resend them
			}
		} else {
			select {
			case m := <-msgs:
				batch = append(batch, m)
			case <-stop.Done():
				return g.drain(msgs)
			}
		}
		early := false
		if d := gap - time.Since(last); gap > 0 && d > 0 {
			batch, early = win.fill(batch, msgs, t, stall, d, stop.Done())
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
		win.committed(batch)
		if early {
			g.mu.Lock()
			g.status.EarlyCommits++
			g.unlockChanged()
			g.limit.warn(g.log, "early-commit", "journal: the sender waits for acknowledgements, committing before state.commit_gap: raise the broker's in-flight window (Mosquitto: max_inflight_messages) to group more messages a commit", "in_flight", win.ceiling)
		}
		held = g.commit(batch)
		clear(batch) // no payload kept alive by the reused memory
		buf = batch[:0]
	}
}

// retryJournal is how often a journal that refused a batch is tried again.
const retryJournal = time.Second

// Group commit's detection of a sender waiting for acknowledgements.
const (
	// minAckWindow is the fewest QoS 1 messages taken for a full window:
	// brokers allow 10 (HiveMQ) to 32 (EMQX) in flight by default, so a
	// few messages waiting are a slow trickle, not a sender held back.
	minAckWindow = 10
	// stallWait is how long the inflow must pause, window full, before the
	// batch goes: longer than the gap between messages of a flow, shorter
	// than a commit_gap.
	stallWait = 2 * time.Millisecond
)

// ackWindow remembers the most QoS 1 messages a commit has carried: a
// sender with an in-flight window never exceeds its window, so waiting
// QoS 1 messages at that ceiling, with no more coming, mean it waits for
// our acknowledgements.
type ackWindow struct {
	ceiling int
	qos1    int // QoS 1 messages in the batch being filled
}

// fill adds to batch what arrives within d (timer t), or until stop. It
// returns early (true) once the batch's QoS 1 messages reach the window and
// nothing arrives for stallWait.
func (w *ackWindow) fill(batch []conn.Message, msgs <-chan conn.Message, t, stall *time.Timer, d time.Duration, stop <-chan struct{}) ([]conn.Message, bool) {
	w.qos1 = 0
	for _, m := range batch {
		w.count(m)
	}
	t.Reset(d)
	defer t.Stop()
	defer stall.Stop()
	armed := false
	for len(batch) < maxBatch {
		if !armed && w.qos1 >= max(w.ceiling, minAckWindow) {
			stall.Reset(stallWait)
			armed = true
		}
		select {
		case m := <-msgs:
			batch = append(batch, m)
			w.count(m)
			if armed {
				stall.Reset(stallWait)
			}
		case <-stall.C:
			return batch, true
		case <-t.C:
			return batch, false
		case <-stop:
			return batch, false
		}
	}
	return batch, false
}

func (w *ackWindow) count(m conn.Message) {
	if m.QoS > 0 {
		w.qos1++
	}
}

// committed notes a batch going to the journal.
func (w *ackWindow) committed(batch []conn.Message) {
	n := 0
	for _, m := range batch {
		if m.QoS > 0 {
			n++
		}
	}
	w.ceiling = max(w.ceiling, n)
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
		if held := g.commit(batch); len(held) > 0 {
			return nil // the journal refuses: what is queued stays unacknowledged
		}
	}
}

// appendJournal journals recs in one transaction. Only a message the
// broker (or, in-process, the device) flags as a redelivery (DUP) is looked
// up by its id (packet id, topic, payload; in-process also the client): a
// new message that merely repeats an old one — a fresh session starts
// packet ids again, and a sensor may send "21.5" twice — is journaled as
// new (store.Message.Redelivered).
//
// A batch of QoS 0 messages only is committed without a sync of its own
// (store.AppendNoSync): nobody waits for its acknowledgement, and the next
// synced commit or WAL checkpoint makes it durable.
func (g *Gateway) appendJournal(recs []store.Message, sync bool) error {
	var err error
	if sync {
		_, err = g.db.Append(recs)
	} else {
		_, err = g.db.AppendNoSync(recs)
	}
	return err
}

// commit journals a batch in one transaction, acknowledges it and passes it
// on. When the journal cannot be written (disk full, I/O error, the journal
// at state.journal_max) nothing is acknowledged: the QoS 1 and 2 messages
// are returned, to be tried again (their senders keep them until then), and
// the QoS 0 ones are dropped and counted. The gateway says it is degraded
// until a commit succeeds again.
func (g *Gateway) commit(batch []conn.Message) (held []conn.Message) {
	out := make([]journaled, 0, len(batch))
	if g.cfg.State.Journal {
		recs := slices.Grow(g.recs[:0], len(batch))[:len(batch)]
		defer func() {
			clear(recs) // no payload kept alive by the reused memory
			g.recs = recs[:0]
		}()
		sync := false
		for i, m := range batch {
			recs[i] = store.Message{Topic: m.Topic, Payload: m.Payload, Received: m.Received, Dedup: g.keys.key(m), Redelivered: m.Dup}
			sync = sync || m.QoS > 0
		}
		if err := g.appendJournal(recs, sync); err != nil {
			return g.refused(batch, err)
		}
		redelivered, payload := 0, 0
		for i := range batch {
			payload += len(batch[i].Payload)
			if recs[i].Dup {
				redelivered++
				continue
			}
			out = append(out, journaled{m: engine.Message{Topic: recs[i].Topic, Payload: recs[i].Payload, Received: recs[i].Received, Seq: recs[i].Pos}, durable: true})
		}
		g.mu.Lock()
		g.status.JournalCommits++
		g.status.Redelivered += uint64(redelivered)
		g.status.PayloadBytes += uint64(payload)
		if g.status.Degraded {
			g.log.Info("journal: writable again, acknowledging and processing resumed")
		}
		g.status.Degraded = false
		g.unlockChanged()
	} else {
		for _, m := range batch {
			out = append(out, journaled{m: engine.Message{Topic: m.Topic, Payload: m.Payload, Received: m.Received}})
		}
	}
	for _, m := range batch {
		if m.Ack != nil {
			m.Ack()
		}
	}
	if len(out) > 0 {
		g.batches <- out
	}
	return nil
}

// refused handles a batch the journal did not take: it returns the QoS 1
// and 2 messages (a copy) and drops the QoS 0 ones, counted.
func (g *Gateway) refused(batch []conn.Message, err error) (held []conn.Message) {
	dropped := 0
	for _, m := range batch {
		if m.QoS > 0 {
			held = append(held, m)
		} else {
			dropped++
		}
	}
	g.mu.Lock()
	g.status.JournalErrors++
	g.status.LastJournalErr = err.Error()
	g.status.JournalDropped += uint64(dropped)
	first := !g.status.Degraded
	g.status.Degraded = true
	g.unlockChanged()
	if first {
		g.log.Error("journal: cannot write; QoS 1 messages are not acknowledged (their senders keep them) and QoS 0 messages are dropped until it can",
			"err", err, "disk_full", errors.Is(err, store.ErrDiskFull))
	} else {
		g.limit.warn(g.log, "journal-refused", "journal: still cannot write", "held", len(held), "dropped", dropped, "err", err)
	}
	return held
}

// engineLoop is the only goroutine that touches the engine. Once ctx has
// ended (Run ends it when the journal writer has returned: no batch comes
// any more) it processes what is queued, waits for its final checkpoint to
// be written, and returns.
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
	jobs, results := g.store.jobs, g.store.results
	g.toStore = jobs
	defer func() { g.toStore = nil }()
	busy := false // a checkpoint is on its way to the database
	g.refreshStatus()
	g.prune()
	wasDown := false
	for {
		select {
		case b := <-g.batches:
			g.process(b)
		case <-ctx.Done():
		drain:
			for {
				select {
				case b := <-g.batches:
					g.process(b)
				default:
					break drain
				}
			}
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
			g.sampleDisk()
		case <-cp.C:
			// A checkpoint still being written when the next is due
			// (a slow SD card) makes this one wait for the next tick.
			if g.dirty && !busy && g.checkpointDue() {
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

// checkpointMax is the longest a changed state waits for its checkpoint
// when few messages arrive (state.checkpoint_messages).
const checkpointMax = 5 * time.Minute

// checkpointDue tells whether a checkpoint is worth its writes now: once
// state.checkpoint_messages have been journaled since the last one, or
// checkpointMax after it. A checkpoint rewrites the state of every rule that
// changed (100 KB for a few rules over a few dozen devices): at 12 messages
// a second, one every 10 s wrote 2.5 KB a message to the SD card, where
// replaying 5 minutes of them after a crash takes well under a second.
func (g *Gateway) checkpointDue() bool {
	return g.lastPos-g.cpFrom >= uint64(g.cfg.State.CheckpointMessages) || g.o.Now().Sub(g.cpAt) >= checkpointMax
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
	g.cpFrom, g.cpAt = g.lastPos, g.o.Now()
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
	defer g.unlockChanged()
	if r.err != nil {
		g.dirty = true
		g.cpAt = time.Time{} // try again at the next interval
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
			g.unlockChanged()
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
	g.unlockChanged()
	return err
}

// sampleDisk updates the disk figures of the status, once a tick.
func (g *Gateway) sampleDisk() {
	w := writtenBytes()
	g.mu.Lock()
	defer g.unlockChanged()
	g.status.DiskWritten = w
	g.status.DiskWriteRate, g.status.CommitRate = g.disk.add(diskSample{at: time.Now(), written: w, commits: g.status.JournalCommits})
}

func (g *Gateway) refreshStatus() {
	st := g.eng.Stats()
	rs := g.eng.RuleStats()
	g.mu.Lock()
	defer g.unlockChanged()
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

// unlockChanged unlocks g.mu after a change of the status and wakes whoever
// waits for one (statusSig: at the latest the engine loop's next tick).
func (g *Gateway) unlockChanged() {
	g.mu.Unlock()
	g.statusSig.wake()
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
