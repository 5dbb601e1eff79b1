package windows

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// benchFeed drives o as the engine does, one event per key per second, and
// reuses one Event (operators copy what they keep) so that the numbers are
// the operator's own allocations.
type benchFeed struct {
	keys []string
	vals []any
	ev   event.Event
	i    int
	// period between two events of one key; 0 means a second
	period time.Duration
}

func newBenchFeed(keys int) *benchFeed {
	f := &benchFeed{ev: event.Event{Topic: "t", Fields: map[string]any{"v": 0.0}}}
	for k := range keys {
		f.keys = append(f.keys, fmt.Sprintf("device-%05d", k))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 4096 {
		f.vals = append(f.vals, 20+r.NormFloat64())
	}
	return f
}

func (f *benchFeed) step(o *Op) int {
	n := len(f.keys)
	k := f.keys[f.i%n]
	p := f.period
	if p == 0 {
		p = time.Second
	}
	f.ev.Time = base.Add(time.Duration(f.i/n) * p)
	f.ev.Seq = uint64(f.i)
	f.ev.Fields["v"] = f.vals[f.i%len(f.vals)]
	f.i++
	return len(o.Add(k, &f.ev)) + len(o.Advance(f.ev.Time))
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func benchWindow(b *testing.B, spec Spec, keys int, fill int) {
	f := newBenchFeed(keys)
	before := heapInUse()
	o, err := New(spec)
	if err != nil {
		b.Fatal(err)
	}
	for range fill * keys {
		f.step(o)
	}
	perKey := float64(heapInUse()-before) / float64(keys)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f.step(o)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(perKey, "B/key")
	runtime.KeepAlive(o)
}

// BenchmarkSliding1h: a 1 h sliding window, one event a second per key,
// 1,000 keys, sum/avg/min/max/slope and a `when` that stays false (steady
// state: every window full, 3,600 events).
func BenchmarkSliding1h(b *testing.B) {
	v := field("v")
	spec := Spec{Kind: Sliding, Size: time.Hour, Aggs: []Agg{
		{Name: "sum", Func: "sum", Arg: v}, {Name: "avg", Func: "avg", Arg: v},
		{Name: "min", Func: "min", Arg: v}, {Name: "max", Func: "max", Arg: v},
		{Name: "slope", Func: "slope", Arg: v},
	}, When: func(v map[string]any, _ *event.Event) (bool, error) { return v["max"].(float64) > 1000, nil }}
	benchWindow(b, spec, 1000, 3600)
}

// BenchmarkTumbling1m: one-minute averages over 10,000 keys, one event a
// second per key, no `when` (every window is sent).
func BenchmarkTumbling1m(b *testing.B) {
	spec := Spec{Kind: Tumbling, Size: time.Minute, Aggs: []Agg{{Name: "avg", Func: "avg", Arg: field("v")}}}
	benchWindow(b, spec, 10000, 30)
}

// BenchmarkSnapshotSliding: the cost of checkpointing the sliding state
// above (1,000 keys × 3,600 events).
func BenchmarkSnapshotSliding(b *testing.B) {
	v := field("v")
	spec := Spec{Kind: Sliding, Size: time.Hour, Aggs: []Agg{{Name: "sum", Func: "sum", Arg: v}, {Name: "max", Func: "max", Arg: v}}}
	f := newBenchFeed(1000)
	o, _ := New(spec)
	for range 3600 * 1000 {
		f.step(o)
	}
	b.ResetTimer()
	var size int
	for range b.N {
		s, _ := o.Snapshot()
		size = len(s)
	}
	b.ReportMetric(float64(size), "bytes")
}
