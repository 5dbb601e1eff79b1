// Package cep owns complex event processing: event patterns (a rule's
// `pattern`) and silence detection (a rule's `absent`).
//
// Both operators are pure: event time and the closing time (watermark minus
// lateness, or the gateway clock's equivalent) are arguments, they own no
// goroutines, never read the wall clock and are not safe for concurrent use.
// Their whole state can be written to and read from versioned bytes.
//
// cep imports only the standard library and the event package. It must not
// import rules, windows, detect or engine: the engine compiles expressions
// into Cond funcs and wires them in.
package cep

import "time"

// Defaults for the caps, used when a spec leaves them at zero.
const (
	DefaultMaxKeys     = 10000
	DefaultMaxPartials = 100
)

// ns is the representation of times inside the operators: Unix nanoseconds
// keep partial matches small and comparisons cheap.
func ns(t time.Time) int64 { return t.UnixNano() }

func fromNs(v int64) time.Time { return time.Unix(0, v).UTC() }
