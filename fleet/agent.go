package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Publisher publishes over the gateway's upstream connection.
type Publisher interface {
	// PublishRetained publishes payload retained at QoS 1 and waits for
	// the broker's acknowledgement; it fails at once while disconnected.
	PublishRetained(ctx context.Context, topic string, payload []byte) error
}

// ApplyFunc runs files (a bundle's, by file name) beside the local rule
// files exactly as a rule reload does, keeping state; nil files: the local
// rule files alone. On failure nothing that runs changes, and the error's
// text holds one problem a line (FILE:LINE:COL: message).
type ApplyFunc func(ctx context.Context, files map[string]string) error

// Options configure an Agent. Gateway, Prefix, Publisher and Apply are
// required.
type Options struct {
	Gateway   string
	Prefix    string
	Version   string // vigil's, shown in the status
	Keys      Keys   // none: every bundle is refused
	Store     Store
	Publisher Publisher
	Apply     ApplyFunc
	// Health returns the gateway's counters; Gateway and Time are filled
	// here. Nil: no health is published.
	Health      func() Health
	HealthEvery time.Duration // default 30 s
	Logger      *slog.Logger
	Now         func() time.Time
}

// Agent is a gateway's side of the fleet: it publishes its status and
// health, and decides which pushed bundle runs.
//
// A bundle runs when it verifies against Keys, was not issued before the
// last bundle applied from the same rules topic, and applies (checked like
// `vigil check` beside the local rule files). The gateway's own topic wins
// over the "all" topic. An empty payload received on a topic removes its
// bundle; a topic that sends nothing (a broker that lost its retained
// messages) changes nothing.
type Agent struct {
	o      Options
	log    *slog.Logger
	topics Topics
	wake   chan struct{}

	mu      sync.Mutex
	slots   map[string][]byte // latest payload per rules topic since the connect (empty: cleared); absent: none received
	since   time.Time         // start of the current connection, or of the agent
	running *applied          // the bundle running, nil: none
	issued  map[string]string // per rules topic, Issued of the last bundle applied from it
	last    *RulesStatus      // outcome of the latest bundle, nil: none yet
	seen    string            // the candidate last decided on (topic + payload hash)
	unsent  bool              // the status or rules status failed to go out: again with the next health
}

type applied struct {
	b     *Bundle
	topic string
	sha   string
}

// New builds an Agent; Run drives it.
func New(o Options) (*Agent, error) {
	if o.Gateway == "" || o.Prefix == "" || o.Publisher == nil || o.Apply == nil {
		return nil, errors.New("fleet: gateway, prefix, publisher and apply are required")
	}
	if o.HealthEvery <= 0 {
		o.HealthEvery = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Agent{o: o, log: o.Logger.With("component", "fleet"), topics: Topics{o.Prefix, o.Gateway},
		wake: make(chan struct{}, 1), slots: map[string][]byte{}, issued: map[string]string{}}
	a.since = o.Now()
	return a, nil
}

// Topics are the gateway's topics.
func (a *Agent) Topics() Topics { return a.topics }

// Filters are the subscriptions the agent needs: the "all" and the
// gateway's rules topics.
func (a *Agent) Filters() []string { return []string{a.topics.AllRules(), a.topics.Rules()} }

// Stored returns the files of the bundle kept in the store, if it parses
// and verifies, for the gateway's first rule load; nil otherwise. The
// caller reports with StoredFailed when they do not load.
func (a *Agent) Stored() map[string]string {
	st, err := a.o.Store.Load()
	if err != nil {
		a.log.Error("fleet: the stored bundle is not used", "err", err)
		return nil
	}
	a.mu.Lock()
	for t, is := range st.Issued {
		a.issued[t] = is
	}
	a.mu.Unlock()
	b := st.Bundle
	if b == nil {
		return nil
	}
	if err := a.o.Keys.Verify(b); err != nil {
		a.log.Error("fleet: the stored bundle is not used", "version", b.Version, "err", err)
		return nil
	}
	a.mu.Lock()
	a.running = &applied{b: b, topic: st.Topic, sha: b.SHA256()}
	a.last = &RulesStatus{Version: b.Version, State: Applied, Errors: []string{}, Time: a.o.Now()}
	a.mu.Unlock()
	a.log.Info("fleet: running the stored bundle", "version", b.Version, "issued", b.Issued, "topic", st.Topic)
	return b.Files
}

// StoredFailed records that the stored bundle did not load beside the
// local rule files: the gateway runs them alone.
func (a *Agent) StoredFailed(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	version := ""
	if a.running != nil {
		version = a.running.b.Version
	}
	a.running = nil
	a.last = &RulesStatus{Version: version, State: Rejected, Errors: errorLines(err), Time: a.o.Now()}
	a.log.Error("fleet: the stored bundle does not load; running the local rule files alone", "version", version, "err", err)
}

// Will is the status the broker publishes when the connection is lost
// without a clean disconnect: offline, since the agent started (a will is
// set once, when the connection is built).
func (a *Agent) Will() (topic string, payload []byte) {
	return a.topics.Status(), a.statusPayload(Offline)
}

// Connected runs after each connect, before the rules topics are
// subscribed: it forgets what the topics sent before (their retained
// bundles come again) and publishes the status (online), the health and
// the latest rules status. It never fails the connection, which also
// carries the alerts: what could not be published goes out again with
// the next health.
func (a *Agent) Connected(ctx context.Context) error {
	a.mu.Lock()
	a.slots = map[string][]byte{}
	a.seen = ""
	a.since = a.o.Now()
	a.mu.Unlock()
	a.published(ctx)
	a.publishHealth(ctx) // not only health_every after the connect
	return nil
}

// Goodbye publishes the offline status before a clean disconnect (which
// makes the broker discard the will).
func (a *Agent) Goodbye(ctx context.Context) {
	a.mu.Lock()
	a.since = a.o.Now()
	a.mu.Unlock()
	if err := a.o.Publisher.PublishRetained(ctx, a.topics.Status(), a.statusPayload(Offline)); err != nil {
		a.log.Warn("fleet: offline status not published", "err", err)
	}
}

// Receive takes a message of a rules topic. It only copies: it runs on
// the MQTT client's network goroutine. Each topic keeps its latest
// payload, so what is held is bounded by two payloads.
func (a *Agent) Receive(topic string, payload []byte) {
	if topic != a.topics.AllRules() && topic != a.topics.Rules() {
		return
	}
	if len(payload) > MaxPayload {
		payload = payload[:MaxPayload+1] // refused by Parse, not kept whole
	}
	a.mu.Lock()
	a.slots[topic] = append([]byte{}, payload...)
	a.mu.Unlock()
	a.signal()
}

func (a *Agent) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Run decides on received bundles and publishes the health until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	health := time.NewTicker(a.o.HealthEvery)
	defer health.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-health.C:
			a.mu.Lock()
			unsent := a.unsent
			a.mu.Unlock()
			if unsent {
				a.published(ctx)
			}
			a.publishHealth(ctx)
		case <-a.wake:
			a.evaluate(ctx)
		}
	}
}

// candidate is the rules topic whose bundle should run and its payload.
// The gateway's own topic wins over "all". A topic that has sent nothing
// since the connect keeps the bundle that came from it running (keep): a
// broker that lost its retained messages must not remove a fleet's rules.
// nil payload and !keep: no bundle should run.
func (a *Agent) candidate() (topic string, payload []byte, keep bool) {
	for _, t := range []string{a.topics.Rules(), a.topics.AllRules()} {
		p, received := a.slots[t]
		if received && len(p) > 0 {
			return t, p, false
		}
		if !received && a.running != nil && a.running.topic == t {
			return t, nil, true
		}
	}
	return "", nil, false
}

// evaluate decides on the bundle that should run now.
func (a *Agent) evaluate(ctx context.Context) {
	a.mu.Lock()
	topic, payload, keep := a.candidate()
	key := ""
	if payload != nil {
		sum := sha256.Sum256(payload)
		key = topic + "\x00" + string(sum[:])
	}
	if keep || key == a.seen && (key != "" || a.running == nil) {
		a.mu.Unlock()
		return
	}
	a.seen = key
	running, floor := a.running, a.issued[topic]
	a.mu.Unlock()

	if payload == nil {
		a.clear(ctx)
		return
	}
	b, err := Parse(payload)
	if err != nil {
		a.reject(ctx, "", err)
		return
	}
	if err := a.o.Keys.Verify(b); err != nil {
		a.reject(ctx, b.Version, err)
		return
	}
	sha := b.SHA256()
	issued, _ := b.IssuedTime()
	if running != nil && running.sha == sha {
		if running.topic != topic { // the same bundle, now from the other topic
			a.mu.Lock()
			a.running.topic = topic
			a.raise(topic, b.Issued, issued)
			a.mu.Unlock()
			a.save(running.b, topic)
		}
		return
	}
	if ft, err := time.Parse(time.RFC3339Nano, floor); err == nil && issued.Before(ft) {
		a.reject(ctx, b.Version, fmt.Errorf("bundle: issued %s, before %s, when the last bundle applied from %s was issued; to roll back, push the old files again",
			b.Issued, floor, topic))
		return
	}
	if err := a.o.Apply(ctx, b.Files); err != nil {
		if ctx.Err() != nil {
			return // stopping: not a verdict on the bundle
		}
		a.reject(ctx, b.Version, err)
		return
	}
	a.mu.Lock()
	a.running = &applied{b: b, topic: topic, sha: sha}
	a.raise(topic, b.Issued, issued)
	a.last = &RulesStatus{Version: b.Version, State: Applied, Errors: []string{}, Time: a.o.Now()}
	a.mu.Unlock()
	a.save(b, topic)
	a.log.Info("fleet: bundle applied", "version", b.Version, "issued", b.Issued, "key", b.Key, "topic", topic, "files", len(b.Files))
	a.published(ctx)
}

// raise records a bundle applied from topic, issued at t (text as
// signed): the order only ever moves forward. Called with mu held.
func (a *Agent) raise(topic, text string, t time.Time) {
	if prev, err := time.Parse(time.RFC3339Nano, a.issued[topic]); err == nil && !t.After(prev) {
		return
	}
	a.issued[topic] = text
}

// save writes the running bundle (nil: none) and the issue times to the
// store. A failure is logged: the rules run, but the next start would run
// the previous ones.
func (a *Agent) save(b *Bundle, topic string) {
	a.mu.Lock()
	st := State{Bundle: b, Topic: topic, Issued: make(map[string]string, len(a.issued))}
	for t, is := range a.issued {
		st.Issued[t] = is
	}
	a.mu.Unlock()
	if err := a.o.Store.Save(st); err != nil {
		a.log.Error("fleet: rules not stored: the next start runs the previous ones", "err", err)
	}
}

// clear removes the fleet rules: the topic of the running bundle sent an
// empty payload, and the other topic has no bundle.
func (a *Agent) clear(ctx context.Context) {
	a.mu.Lock()
	running := a.running
	a.mu.Unlock()
	if running == nil {
		return
	}
	if err := a.o.Apply(ctx, nil); err != nil {
		if ctx.Err() != nil {
			return
		}
		a.reject(ctx, "", err)
		return
	}
	a.mu.Lock()
	a.running = nil
	a.last = &RulesStatus{Version: "", State: Applied, Errors: []string{}, Time: a.o.Now()}
	a.mu.Unlock()
	a.save(nil, "")
	a.log.Info("fleet: bundle removed (empty retained payload): local rule files only", "was", running.b.Version)
	a.published(ctx)
}

func (a *Agent) reject(ctx context.Context, version string, err error) {
	lines := errorLines(err)
	a.mu.Lock()
	a.last = &RulesStatus{Version: version, State: Rejected, Errors: lines, Time: a.o.Now()}
	a.mu.Unlock()
	a.log.Warn("fleet: bundle rejected, the running rules are kept", "version", version, "errors", strings.Join(lines, "; "))
	a.published(ctx)
}

// published sends the status (online) and the rules status. What fails
// goes out with the next connect or health.
func (a *Agent) published(ctx context.Context) {
	err := a.o.Publisher.PublishRetained(ctx, a.topics.Status(), a.statusPayload(Online))
	if err == nil {
		err = a.publishRulesStatus(ctx)
	}
	a.mu.Lock()
	a.unsent = err != nil
	a.mu.Unlock()
	if err != nil {
		a.log.Debug("fleet: status not published yet", "err", err)
	}
}

func (a *Agent) publishRulesStatus(ctx context.Context) error {
	a.mu.Lock()
	last := a.last
	a.mu.Unlock()
	if last == nil {
		return nil
	}
	data, _ := json.Marshal(last)
	if err := a.o.Publisher.PublishRetained(ctx, a.topics.RulesStatus(), data); err != nil {
		return fmt.Errorf("fleet rules status: %w", err)
	}
	return nil
}

func (a *Agent) publishHealth(ctx context.Context) {
	if a.o.Health == nil {
		return
	}
	h := a.o.Health()
	h.Gateway, h.Time = a.o.Gateway, a.o.Now().UTC()
	data, _ := json.Marshal(h)
	if err := a.o.Publisher.PublishRetained(ctx, a.topics.Health(), data); err != nil {
		a.log.Debug("fleet: health not published", "err", err)
	}
}

func (a *Agent) statusPayload(state string) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	data, _ := json.Marshal(Status{Gateway: a.o.Gateway, State: state, Since: a.since.UTC(), Version: a.o.Version, Rules: a.rulesInfo()})
	return data
}

func (a *Agent) rulesInfo() RulesInfo {
	ri := RulesInfo{State: None}
	if a.running != nil {
		ri.Version, ri.SHA256 = a.running.b.Version, a.running.sha
	}
	if a.last != nil {
		ri.State = a.last.State
	}
	return ri
}

// Info is what the UI and /api/status show of the fleet rules.
type Info struct {
	Prefix  string
	Version string   // the bundle running ("" with none)
	SHA256  string   //
	Issued  string   //
	Files   []string // the running bundle's file names
	Last    *RulesStatus
}

// Info returns the running bundle and the latest outcome.
func (a *Agent) Info() Info {
	a.mu.Lock()
	defer a.mu.Unlock()
	in := Info{Prefix: a.o.Prefix}
	if a.running != nil {
		in.Version, in.SHA256, in.Issued, in.Files = a.running.b.Version, a.running.sha, a.running.b.Issued, a.running.b.Names()
	}
	if a.last != nil {
		l := *a.last
		in.Last = &l
	}
	return in
}

func errorLines(err error) []string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}
