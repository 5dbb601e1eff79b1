package engine

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/rules"
)

// stateVersion is the version of the engine's snapshot encoding. A part
// written by another version is discarded with a note, never misread.
const stateVersion = 1

// snapshotOps takes the operators' snapshots, most of a checkpoint's bytes
// (megabytes with many keys), on up to GOMAXPROCS goroutines: the engine
// loop waits for them, and an operator's Snapshot reads only its own
// state. Each is taken first, so its rule's part is allocated once at its
// size and the bytes are copied once.
func (e *Engine) snapshotOps() ([][]byte, error) {
	ops := make([][]byte, len(e.rules))
	errs := make([]error, len(e.rules))
	work := make(chan int, len(e.rules))
	for i, rs := range e.rules {
		if rs.op != nil {
			work <- i
		}
	}
	close(work)
	snap := func() {
		for i := range work {
			ops[i], errs[i] = e.rules[i].op.Snapshot()
		}
	}
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(work)) - 1 {
		wg.Add(1)
		go func() { defer wg.Done(); snap() }()
	}
	snap()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("snapshot rule %s: %w", e.rules[i].r.Name, err)
		}
	}
	return ops, nil
}

// Snapshot returns all state as named parts: "engine", "rule/<name>",
// "table/<name>", "source/<filter>". A checkpoint stores them together.
func (e *Engine) Snapshot() (map[string][]byte, error) {
	parts := map[string][]byte{}
	var g event.Enc
	g.Byte(stateVersion)
	g.Uvarint(e.stats.Messages)
	g.Uvarint(e.stats.Events)
	g.Uvarint(e.stats.DecodeErrors)
	g.Uvarint(e.stats.Duplicates)
	g.Uvarint(e.stats.Alerts)
	g.Uvarint(e.stats.Suppressed)
	g.Time(e.stats.LastEvent)
	g.Uvarint(e.stats.Future)
	g.Uvarint(e.seq)
	parts["engine"] = g.B
	ops, err := e.snapshotOps()
	if err != nil {
		return nil, err
	}
	for i, rs := range e.rules {
		op := ops[i]
		enc := event.Enc{B: make([]byte, 0, 128+len(rs.r.Hash)+len(op))}
		enc.Byte(stateVersion)
		enc.String(rs.r.Hash)
		enc.Time(rs.wm)
		enc.Time(rs.wmWall)
		enc.Time(rs.closeAt)
		rs.cool.encode(&enc)
		enc.Uvarint(rs.stats.Events)
		enc.Uvarint(rs.stats.Alerts)
		enc.Uvarint(rs.stats.Errors)
		enc.Bool(rs.op != nil)
		if rs.op != nil {
			appendBytes(&enc, op)
		}
		parts["rule/"+rs.r.Name] = enc.B
	}
	for name, ts := range e.tables {
		var enc event.Enc
		enc.Byte(stateVersion)
		enc.String(tableDef(ts))
		ts.encode(&enc)
		parts["table/"+name] = enc.B
	}
	for _, ss := range e.sources {
		if ss.dedupe == nil {
			continue
		}
		b := ss.dedupe.Snapshot()
		enc := event.Enc{B: make([]byte, 0, 32+len(ss.src.DedupeField)+len(b))}
		enc.Byte(stateVersion)
		enc.String(ss.src.DedupeField)
		appendBytes(&enc, b)
		parts["source/"+ss.src.Filter.String()] = enc.B
	}
	return parts, nil
}

// appendBytes writes b as enc.String(string(b)) does, without the copy.
func appendBytes(enc *event.Enc, b []byte) {
	enc.Uvarint(uint64(len(b)))
	enc.B = append(enc.B, b...)
}

func tableDef(ts *tableState) string {
	var fs []string
	for _, f := range ts.t.From {
		fs = append(fs, f.String())
	}
	return strings.Join(fs, ",") + "|" + ts.t.KeyName
}

// Restore loads what Snapshot wrote. State of a rule whose definition
// changed, of a rule or table that no longer exists, or written by another
// version is dropped; each drop is described in the returned notes.
func (e *Engine) Restore(parts map[string][]byte) (notes []string) {
	names := make([]string, 0, len(parts))
	for k := range parts {
		names = append(names, k)
	}
	sort.Strings(names)
	byRule := map[string]*ruleState{}
	for _, rs := range e.rules {
		byRule[rs.r.Name] = rs
	}
	bySource := map[string]*sourceState{}
	for _, ss := range e.sources {
		bySource[ss.src.Filter.String()] = ss
	}
	for _, name := range names {
		b := parts[name]
		d := &event.Dec{B: b}
		if v := d.Byte(); d.Err != nil || v != stateVersion {
			notes = append(notes, fmt.Sprintf("%s: state version %d not understood, dropped", name, v))
			continue
		}
		kind, id, _ := strings.Cut(name, "/")
		var note string
		switch kind {
		case "engine":
			note = e.restoreEngine(d)
		case "rule":
			rs := byRule[id]
			if rs == nil {
				note = "rule no longer exists, state dropped"
				break
			}
			note = rs.restore(d)
		case "table":
			ts := e.tables[id]
			if ts == nil {
				note = "table no longer exists, state dropped"
				break
			}
			if def := d.String(); def != tableDef(ts) {
				note = "table definition changed, state dropped"
				break
			}
			fresh := newTable(ts.t, ts.max)
			fresh.decode(d)
			if d.Err != nil {
				note = fmt.Sprintf("unreadable table state (%v), dropped", d.Err)
				break
			}
			e.tables[id] = fresh
		case "source":
			ss := bySource[id]
			if ss == nil || ss.dedupe == nil {
				note = "source or its dedupe no longer exists, state dropped"
				break
			}
			if d.String() != ss.src.DedupeField {
				note = "dedupe field changed, state dropped"
				break
			}
			raw := d.String()
			if d.Err != nil {
				note = fmt.Sprintf("unreadable dedupe state (%v), dropped", d.Err)
				break
			}
			if err := ss.dedupe.Restore([]byte(raw)); err != nil {
				note = fmt.Sprintf("unreadable dedupe state (%v), dropped", err)
			}
		default:
			note = "unknown state part, dropped"
		}
		if note != "" {
			notes = append(notes, name+": "+note)
		}
	}
	return notes
}

func (e *Engine) restoreEngine(d *event.Dec) string {
	var s Stats
	s.Messages = d.Uvarint()
	s.Events = d.Uvarint()
	s.DecodeErrors = d.Uvarint()
	s.Duplicates = d.Uvarint()
	s.Alerts = d.Uvarint()
	s.Suppressed = d.Uvarint()
	s.LastEvent = d.Time()
	s.Future = d.Uvarint()
	seq := d.Uvarint()
	if d.Err != nil {
		return fmt.Sprintf("unreadable engine state (%v), dropped", d.Err)
	}
	e.stats = s
	e.seq = seq
	return ""
}

func (rs *ruleState) restore(d *event.Dec) string {
	if h := d.String(); h != rs.r.Hash {
		return "rule definition changed, state dropped"
	}
	wm, wmWall, closeAt := d.Time(), d.Time(), d.Time()
	cool := newCooldowns(rs.cool.max)
	cool.decode(d)
	var st RuleStats
	st.Events, st.Alerts, st.Errors = d.Uvarint(), d.Uvarint(), d.Uvarint()
	hasOp := d.Bool()
	var opState string
	if hasOp {
		opState = d.String()
	}
	if d.Err != nil {
		return fmt.Sprintf("unreadable rule state (%v), dropped", d.Err)
	}
	if hasOp != (rs.op != nil) {
		return "rule kind changed, state dropped"
	}
	if rs.op != nil {
		if err := rs.op.Restore([]byte(opState)); err != nil {
			return fmt.Sprintf("unreadable operator state (%v), dropped", err)
		}
	}
	rs.wmWall, rs.closeAt, rs.cool, rs.stats = wmWall, closeAt, cool, st
	rs.setWM(wm)
	return ""
}

// Reload builds an engine for a new rule set and carries over the state of
// every rule whose definition is unchanged, of tables and of dedupe sets.
// The receiver keeps working if the new set cannot be built.
func (e *Engine) Reload(set *rules.Set) (*Engine, []string, error) {
	ne, err := New(set, e.opts)
	if err != nil {
		return nil, nil, err
	}
	parts, err := e.Snapshot()
	if err != nil {
		return nil, nil, err
	}
	notes := ne.Restore(parts)
	return ne, notes, nil
}
