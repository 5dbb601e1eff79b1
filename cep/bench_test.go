package cep

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/vigil-gw/vigil/event"
)

const benchKeys = 100000

// threeSteps is the benchmark pattern: A, then B within 10m with the same
// v, then C within 10m.
func threeSteps(conds [3]Cond) PatternSpec {
	return PatternSpec{MaxKeys: 2 * benchKeys, Steps: []Step{
		{Alias: "a", Where: conds[0]},
		{Alias: "b", Where: conds[1], Within: 10 * time.Minute},
		{Alias: "c", Where: conds[2], Within: 10 * time.Minute},
	}}
}

func goConds() [3]Cond {
	return [3]Cond{
		typ("A"),
		func(ev *event.Event, b []*event.Event) (bool, error) {
			return ev.Fields["type"] == "B" && ev.Fields["v"] == b[0].Fields["v"], nil
		},
		typ("C"),
	}
}

// exprConds compiles the same predicates with expr-lang over a map env,
// the way the engine does: the event's fields plus earlier aliases.
func exprConds(b *testing.B) [3]Cond {
	srcs := [3]string{`type == "A"`, `type == "B" && v == a.v`, `type == "C"`}
	aliases := []string{"a", "b", "c"}
	var conds [3]Cond
	env := map[string]any{}
	var machine vm.VM
	for i, src := range srcs {
		prog, err := expr.Compile(src, expr.AsBool(), expr.AllowUndefinedVariables(), expr.DisableBuiltin("type"))
		if err != nil {
			b.Fatal(err)
		}
		conds[i] = func(ev *event.Event, bound []*event.Event) (bool, error) {
			clear(env)
			for k, v := range ev.Fields {
				env[k] = v
			}
			for j, e := range bound {
				if e != nil {
					env[aliases[j]] = e.Fields
				}
			}
			out, err := machine.Run(prog, env)
			if err != nil {
				return false, err
			}
			return out.(bool), nil
		}
	}
	return conds
}

// benchFields are shared read-only field maps, one per event type, as
// several rules share one decoded event.
var benchFields = func() []map[string]any {
	var fs []map[string]any
	for _, t := range []string{"A", "B", "X", "C"} {
		fs = append(fs, map[string]any{"type": t, "v": 1.0, "topic": "sensors/x", "temperature": 21.5})
	}
	return fs
}()

func benchKeyNames() []string {
	ks := make([]string, benchKeys)
	for i := range ks {
		ks[i] = fmt.Sprintf("device-%06d", i)
	}
	return ks
}

// runThreeSteps feeds b.N events round-robin over 100,000 keys: each key
// sees A, B, X (unrelated, skipped) and C in successive rounds, one event
// per millisecond, so every key holds a partial match most of the time and
// completes one every fourth round. Each event is allocated in the loop, as
// the engine hands the operator a fresh one.
func runThreeSteps(b *testing.B, conds [3]Cond) {
	keys := benchKeyNames()
	p, err := NewPattern(threeSteps(conds))
	if err != nil {
		b.Fatal(err)
	}
	matches := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := &event.Event{Time: t0.Add(time.Duration(i) * time.Millisecond), Fields: benchFields[(i/benchKeys)%4], Seq: uint64(i)}
		matches += len(p.Add(keys[i%benchKeys], e))
		matches += len(p.Advance(e.Time))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if b.N >= 4*benchKeys && matches == 0 {
		b.Fatal("no matches")
	}
}

func BenchmarkPattern3Steps100kKeys(b *testing.B)     { runThreeSteps(b, goConds()) }
func BenchmarkPattern3Steps100kKeysExpr(b *testing.B) { runThreeSteps(b, exprConds(b)) }

// BenchmarkPartialMemory reports the heap bytes one partial match costs
// (its key's share included), excluding the events, which the engine owns.
func BenchmarkPartialMemory(b *testing.B) {
	for _, stage := range []struct {
		name   string
		events int // events per key: 1 leaves a partial at step 2, 2 at step 3
	}{{"after-1-step", 1}, {"after-2-steps", 2}} {
		b.Run(stage.name, func(b *testing.B) {
			keys := benchKeyNames()
			evs := make([]*event.Event, benchKeys*stage.events)
			for i := range evs {
				evs[i] = &event.Event{Time: t0.Add(time.Duration(i) * time.Millisecond), Fields: benchFields[i/benchKeys], Seq: uint64(i)}
			}
			var perPartial float64
			for n := 0; n < b.N; n++ {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				p, _ := NewPattern(threeSteps(goConds()))
				for i, e := range evs {
					p.Add(keys[i%benchKeys], e)
					p.Advance(e.Time)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if p.Stats().Pending != benchKeys {
					b.Fatalf("pending %d", p.Stats().Pending)
				}
				perPartial = float64(after.HeapAlloc-before.HeapAlloc) / benchKeys
				runtime.KeepAlive(p)
			}
			b.ReportMetric(perPartial, "B/partial")
		})
	}
}

// BenchmarkAbsent100kKeys: 100,000 sensors reporting round-robin.
func BenchmarkAbsent100kKeys(b *testing.B) {
	keys := benchKeyNames()
	a, _ := NewAbsent(AbsentSpec{After: 5 * time.Minute, MaxKeys: 2 * benchKeys})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := &event.Event{Time: t0.Add(time.Duration(i) * time.Millisecond), Fields: benchFields[0], Seq: uint64(i)}
		a.Add(keys[i%benchKeys], e)
		a.Advance(e.Time)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
