package cep

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// operator is what the engine drives; both Pattern and Absent satisfy it.
type operator interface {
	Add(key string, ev *event.Event) []event.Result
	Advance(closeAt time.Time) []event.Result
	Flush() []event.Result
	Snapshot() ([]byte, error)
	Restore([]byte) error
	Stats() event.OpStats
}

var (
	_ operator = (*Pattern)(nil)
	_ operator = (*Absent)(nil)
)

var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// in is one input event: its offset from t0, its key and its fields.
type in struct {
	at  time.Duration
	key string
	f   map[string]any
}

func ev(at time.Duration, typ string, kv ...any) in {
	f := map[string]any{"type": typ}
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i].(string)] = kv[i+1]
	}
	return in{at: at, key: "k", f: f}
}

func (x in) on(key string) in { x.key = key; return x }

// drive feeds the inputs in slice order the way the engine does: Add, then
// Advance to the newest time seen minus lateness; Flush at the end unless
// noFlush.
func drive(op operator, ins []in, lateness time.Duration, flush bool) []event.Result {
	var out []event.Result
	var newest time.Time
	for i, x := range ins {
		e := &event.Event{Topic: "t/" + x.key, Time: t0.Add(x.at), Fields: x.f, Seq: uint64(i + 1)}
		out = append(out, op.Add(x.key, e)...)
		if e.Time.After(newest) {
			newest = e.Time
		}
		out = append(out, op.Advance(newest.Add(-lateness))...)
	}
	if flush {
		out = append(out, op.Flush()...)
	}
	return out
}

// brief renders results as "key state +offset seqs" lines so tests compare
// them readably; seqs lists the Seq of each alias's event.
func brief(rs []event.Result) []string {
	var s []string
	for _, r := range rs {
		line := fmt.Sprintf("%s %s +%v", r.Key, r.State, r.Time.Sub(t0))
		if r.Event != nil {
			line += fmt.Sprintf(" ev%d", r.Event.Seq)
		}
		s = append(s, line)
	}
	return s
}

func typ(name string) Cond {
	return func(ev *event.Event, _ []*event.Event) (bool, error) { return ev.Fields["type"] == name, nil }
}

func eqLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func sortedKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
