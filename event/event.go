// Package event holds the types every stage of vigil shares: decoded events,
// operator results and alerts, plus the binary codec operators use for their
// checkpoint state and a reorder buffer for event-time processing.
//
// It imports only the standard library. rules, windows, cep and detect import
// it and never each other.
package event

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Event is one decoded reading. Fields is the expression environment of the
// rule that sees it: the payload's members, plus "topic" (string), "time"
// (time.Time) and the named captures of the rule's topic filter. Operators
// treat Fields as read-only; several rules may share one map.
type Event struct {
	Topic  string
	Time   time.Time
	Fields map[string]any
	// Seq is the processing order: the journal position in `run`, the input
	// line in `replay`. It breaks ties between events with equal Time.
	Seq uint64
}

// State is an alert's state.
type State string

const (
	Firing   State = "firing"
	Resolved State = "resolved"
)

// Window is the span an aggregate covers.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Result is what an operator (window, detector, pattern, absence) reports for
// one key. The engine turns it into an Alert: it adds severity, message,
// cooldown and the id.
type Result struct {
	Key   string
	State State
	// Time is the alert's event time as the contract defines it for the
	// operator (window end, triggering event, deadline …).
	Time   time.Time
	Values map[string]any
	// Window is set by window operators only.
	Window *Window
	// Event is the triggering or the key's last event; message templates
	// see its fields. It may be nil (e.g. an absence deadline).
	Event *Event
}

// Alert is what `replay` prints, what goes upstream and what history keeps.
type Alert struct {
	ID       string         `json:"id"`
	Rule     string         `json:"rule"`
	Key      string         `json:"key"`
	State    State          `json:"state"`
	Severity string         `json:"severity"`
	Time     time.Time      `json:"time"`
	Message  string         `json:"message"`
	Values   map[string]any `json:"values"`
	Window   *Window        `json:"window,omitempty"`
	// Trimmed is set when the outbox cut the alert's message or values to
	// fit its size limit (docs/api.md, "Trimmed alerts").
	Trimmed bool `json:"trimmed,omitempty"`
	// Topic is where the alert goes upstream; not part of the JSON form.
	Topic string `json:"-"`
}

// Outgoing is an alert as the outbox keeps it for upstream: its id, its
// upstream topic and its JSON form (Alert's, as stored).
type Outgoing struct {
	ID    string
	Topic string
	Body  []byte
}

// AlertID derives an alert's id from (rule, key, state, time): the same alert
// always has the same id, so upstream can drop a duplicate delivery.
func AlertID(rule, key string, state State, t time.Time) string {
	h := sha256.New()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(state))
	h.Write([]byte{0})
	h.Write([]byte(t.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// OpStats are the counters an operator keeps for one rule.
type OpStats struct {
	Keys    int    // keys holding state now
	Late    uint64 // events dropped because their window or slot had closed
	Evicted uint64 // keys evicted by the per-rule key cap
	Errors  uint64 // expression errors while evaluating (treated as false)
	// Pending is the number of buffered items (events waiting for the
	// watermark, partial matches, open windows) — what memory is spent on.
	Pending int
}
