package conn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/vigil-gw/vigil/event"
)

// Outbox is what the Forwarder needs from the alert outbox (store).
type Outbox interface {
	// PendingBodies returns up to limit undelivered alerts, oldest first,
	// as their upstream topic and JSON form, leaving out those whose id
	// skip reports.
	PendingBodies(limit int, skip func(id string) bool) ([]event.Outgoing, error)
	// Delivered removes the alerts with these ids.
	Delivered(ids []string) error
	// SetAside moves an alert upstream keeps refusing out of the way of
	// the others (the store's dead letters).
	SetAside(id, reason string, attempts int) error
}

// ForwarderOptions tune the Forwarder; zero values are the defaults.
type ForwarderOptions struct {
	Batch int           // alerts read and kept in flight at once, default 100
	Retry time.Duration // longest backoff after an error, default 30 s
	Poll  time.Duration // look at the outbox at least this often, default 10 s
	// Notify wakes the Forwarder when alerts are put in the outbox.
	Notify <-chan struct{}
	// QoS0 publishes alerts at QoS 0: delivered once written to the
	// socket. The default is QoS 1: delivered once the broker acked.
	QoS0 bool
	// DeadAfter is how many rounds in a row the same alert may be the
	// first one upstream fails to acknowledge (the broker disconnects on
	// it, or never acks it) before it is set aside, so the alerts behind
	// it flow. Rounds while the connection is down do not count. Default 5.
	DeadAfter int          `yaml:"dead_after"`
	Logger    *slog.Logger // default slog.Default()
}

// ForwarderStats are the Forwarder's counters.
type ForwarderStats struct {
	Sent      uint64 // alerts acknowledged upstream and removed from the outbox
	Errors    uint64 // failed rounds (publish or outbox errors)
	SetAside  uint64 // alerts upstream kept refusing, moved to the dead letters
	LastError string
	Connected bool
}

// Forwarder drains the outbox to the Publisher in order, removing only
// what upstream acknowledged. After a crash between the PUBACK and the
// removal an alert is sent again with the same id: upstream de-duplicates.
type Forwarder struct {
	ob  Outbox
	p   *Publisher
	o   ForwarderOptions
	log *slog.Logger

	sent, errs, setAside atomic.Uint64
	// suspect is the alert upstream last failed to acknowledge first, and
	// strikes how many rounds in a row it was (round's goroutine only).
	suspect string
	strikes int
	mu      sync.Mutex
	lastErr string
	failing bool // log only when the state changes
	// acked holds ids acknowledged upstream and not yet removed from the
	// outbox. skipMu is held from reading the outbox until the read is
	// filtered, and by the remover to forget ids it removed: an id removed
	// after the read must still be skipped in it.
	skipMu sync.Mutex
	acked  map[string]bool

	dels chan []string // acknowledged ids on their way to Delivered
}

// delQueue bounds the batches of acknowledged ids waiting to be removed
// from the outbox; when it is full the forwarder waits for the database.
const delQueue = 4

// NewForwarder builds a Forwarder; Run drives it.
func NewForwarder(ob Outbox, p *Publisher, o ForwarderOptions) *Forwarder {
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Retry <= 0 {
		o.Retry = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 10 * time.Second
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = 5
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Forwarder{ob: ob, p: p, o: o, log: o.Logger.With("component", "forwarder"), acked: map[string]bool{}}
}

// Run forwards until ctx ends and returns nil then. On an error it backs
// off (500 ms doubling to Retry) and starts again from the oldest
// undelivered alert, so order holds.
//
// What upstream acknowledged is removed from the outbox by a second
// goroutine, so the next batch goes out without waiting for the database's
// writer (which a checkpoint or a journal commit may hold); until then
// those alerts are skipped, not sent again.
func (f *Forwarder) Run(ctx context.Context) error {
	f.dels = make(chan []string, delQueue)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); f.remove(f.dels, stop) }()
	defer func() { close(stop); close(f.dels); <-done }()
	var delay time.Duration
	poll := time.NewTicker(f.o.Poll)
	defer poll.Stop()
	for {
		n, err := f.round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			f.failed(err)
			delay = min(max(delay*2, 500*time.Millisecond), f.o.Retry)
			if !sleep(ctx, jitter(delay)) {
				return nil
			}
			continue
		}
		delay = 0
		f.recovered()
		if n == f.o.Batch {
			continue // more may be waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-f.o.Notify:
		case <-poll.C:
		}
	}
}

// round sends one batch: every alert is handed to the publisher first and
// the acknowledgements are awaited in order, so a batch costs one round
// trip, not one per alert. The acknowledged prefix is removed.
func (f *Forwarder) round(ctx context.Context) (int, error) {
	f.skipMu.Lock()
	alerts, err := f.ob.PendingBodies(f.o.Batch, func(id string) bool { return f.acked[id] })
	f.skipMu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("outbox pending: %w", err)
	}
	if len(alerts) == 0 {
		return 0, nil
	}
	qos := byte(1)
	if f.o.QoS0 {
		qos = 0
	}
	type flight struct {
		id  string
		tok paho.Token
	}
	var inflight []flight
	var sendErr error
	refused := "" // the first alert upstream (or paho) did not take
	startRefused := ""
	for _, a := range alerts {
		// The stored JSON as it is (the outbox wrote it with null for
		// NaN and ±Inf values, which JSON cannot carry).
		tok, err := f.p.start(a.Topic, a.Body, qos)
		if err != nil {
			sendErr = err
			if !errors.Is(err, ErrNotConnected) {
				startRefused = a.ID // paho refused this one itself
			}
			break
		}
		inflight = append(inflight, flight{id: a.ID, tok: tok})
	}
	var done []string
	var sent uint64
	for _, fl := range inflight {
		if err := await(ctx, fl.tok, f.p.l.o.Timeout); err != nil {
			sendErr = fmt.Errorf("mqtt publish: %w", err)
			refused = fl.id
			break
		}
		sent++
		done = append(done, fl.id)
	}
	if refused == "" {
		refused = startRefused
	}
	switch {
	case refused != "" && ctx.Err() == nil:
		f.strike(refused, sendErr)
	case slices.Contains(done, f.suspect):
		f.suspect, f.strikes = "", 0 // it went through after all
	}
	if len(done) > 0 {
		f.sent.Add(sent)
		f.skipMu.Lock()
		for _, id := range done {
			f.acked[id] = true
		}
		f.skipMu.Unlock()
		select {
		case f.dels <- done:
		case <-ctx.Done():
			// Stopping while the remover is behind (a failing
			// database): one try here; Run's exit tries the queue.
			_ = f.ob.Delivered(done)
		}
	}
	return len(alerts), sendErr
}

// remove takes acknowledged ids out of the outbox, in order, until dels is
// closed. A failed removal is retried (backing off as Run does) until stop
// is closed; then what is left is tried once more each — removing what was
// acknowledged matters even at shutdown. An id never removed is sent again
// after a restart, with the same id, as after a crash between the PUBACK
// and the removal.
//
// What is acknowledged within removeEvery goes in one removal: each is a
// database commit that rewrites the outbox's and the history's pages, and
// one a second instead of one per round cut what a gateway sending 100
// alerts a second writes to its SD card (issue #17). Meanwhile the acked
// set keeps them from being sent again.
func (f *Forwarder) remove(dels <-chan []string, stop <-chan struct{}) {
	var delay time.Duration
	for ids := range dels {
		ids = gather(ids, dels, stop, removeEvery)
		for {
			err := f.ob.Delivered(ids)
			if err == nil {
				if delay > 0 {
					f.log.Info("removing delivered alerts from the outbox works again")
				}
				delay = 0
				break
			}
			f.errs.Add(1)
			f.mu.Lock()
			f.lastErr = "outbox delivered: " + err.Error()
			f.mu.Unlock()
			if delay == 0 {
				f.log.Warn("cannot remove delivered alerts from the outbox; they are not sent again meanwhile", "error", err)
			}
			select {
			case <-stop:
			default:
				delay = min(max(delay*2, 500*time.Millisecond), f.o.Retry)
				select {
				case <-stop:
				case <-time.After(jitter(delay)):
					continue
				}
			}
			break // stopping: leave them for the next start
		}
		f.skipMu.Lock()
		for _, id := range ids {
			delete(f.acked, id)
		}
		f.skipMu.Unlock()
	}
}

// removeEvery is how long acknowledged ids gather before their removal.
const removeEvery = time.Second

// gather adds to ids what dels brings within d, until it is closed or stop.
func gather(ids []string, dels <-chan []string, stop <-chan struct{}, d time.Duration) []string {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case more, ok := <-dels:
			if !ok {
				return ids
			}
			ids = append(ids, more...)
		case <-t.C:
			return ids
		case <-stop:
			return ids
		}
	}
}

// strike counts the rounds in a row in which the alert id was the first one
// sent and not acknowledged, and sets it aside at DeadAfter. Rounds that
// sent nothing (the connection is down) neither count nor reset.
func (f *Forwarder) strike(id string, err error) {
	if id != f.suspect {
		f.suspect, f.strikes = id, 0
	}
	f.strikes++
	if f.strikes < f.o.DeadAfter {
		return
	}
	if serr := f.ob.SetAside(id, err.Error(), f.strikes); serr != nil {
		f.log.Warn("cannot set aside the alert upstream keeps refusing", "id", id, "error", serr)
		return
	}
	f.setAside.Add(1)
	f.log.Warn("alert set aside: upstream refused it again and again; the alerts behind it flow on (retry it from the UI or POST /api/dead-letters/retry)",
		"id", id, "attempts", f.strikes, "error", err)
	f.suspect, f.strikes = "", 0
}

func (f *Forwarder) failed(err error) {
	f.errs.Add(1)
	f.mu.Lock()
	f.lastErr = err.Error()
	first := !f.failing
	f.failing = true
	f.mu.Unlock()
	if first {
		f.log.Warn("forwarding alerts failed; they wait in the outbox", "error", err)
	} else {
		f.log.Debug("forwarding alerts failed", "error", err)
	}
}

func (f *Forwarder) recovered() {
	f.mu.Lock()
	was := f.failing
	f.failing = false
	f.mu.Unlock()
	if was {
		f.log.Info("forwarding alerts resumed")
	}
}

// Stats returns the counters.
func (f *Forwarder) Stats() ForwarderStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return ForwarderStats{
		Sent: f.sent.Load(), Errors: f.errs.Load(), SetAside: f.setAside.Load(),
		LastError: f.lastErr, Connected: f.p.Connected(),
	}
}
