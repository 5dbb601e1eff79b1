package detect_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/detect"
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/internal/cputime"
)

// BenchmarkMethods: 10,000 keys, each sending one point a minute, driven as
// the engine does (Add, then Advance to the event's time). zscore and mad
// use a 1 h window, so each key holds 60 points. The keys are warmed with
// 2 h of data before timing; each timed event is one allocation of an
// event.Event, as the engine's decoder would make.
func BenchmarkMethods(b *testing.B) {
	const keys = 10000
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("sensor-%05d", i)
	}
	r := rand.New(rand.NewPCG(1, 1))
	fields := make([]map[string]any, 1009) // prime: keys see varying values
	for i := range fields {
		fields[i] = map[string]any{"v": 20 + r.NormFloat64()}
	}
	for _, m := range detect.Methods() {
		b.Run(m, func(b *testing.B) {
			var p map[string]any
			if m == "zscore" || m == "mad" {
				p = map[string]any{"window": "1h"}
			}
			d := mustNew(b, m, p)
			n := 0
			next := func() {
				e := &event.Event{Time: t0.Add(time.Duration(n/keys) * time.Minute), Seq: uint64(n), Fields: fields[n%len(fields)]}
				d.Add(names[n%keys], e)
				d.Advance(e.Time)
				n++
			}
			for n < 120*keys {
				next()
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cputime.Now()
			for i := 0; i < b.N; i++ {
				next()
			}
			// CPU time of the whole process (GC included), so the number
			// holds on a shared machine where wall time does not.
			b.ReportMetric(float64(b.N)/(cputime.Now()-cpu0).Seconds(), "events/cpu-s")
		})
	}
}

// BenchmarkMemory: the heap one key's state costs, 10,000 keys each sending
// a point every 5 s (a gateway with 10,000 devices), after 65 minutes, when
// the 1 h windows of zscore and mad are full (720 points). B/point is a
// key's whole state over its 720 points. The timed loop only satisfies the
// framework.
//
//	go test -run '^$' -bench Memory -benchtime 1x ./detect
func BenchmarkMemory(b *testing.B) {
	const keys = 10000
	const points = 720 // 1 h / 5 s
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("sensor-%05d", i)
	}
	r := rand.New(rand.NewPCG(1, 1))
	fields := make([]map[string]any, 1009)
	for i := range fields {
		fields[i] = map[string]any{"v": 20 + r.NormFloat64()}
	}
	for _, m := range detect.Methods() {
		b.Run(m, func(b *testing.B) {
			var p map[string]any
			if m == "zscore" || m == "mad" {
				p = map[string]any{"window": "1h"}
			}
			before := heapInUse()
			d := mustNew(b, m, p)
			n := 0
			for n < 13*65*keys {
				e := &event.Event{Time: t0.Add(time.Duration(n/keys) * 5 * time.Second), Seq: uint64(n), Fields: fields[n%len(fields)]}
				d.Add(names[n%keys], e)
				d.Advance(e.Time)
				n++
			}
			used := float64(heapInUse() - before)
			for range b.N {
				d.Advance(t0)
			}
			b.ReportMetric(used/keys, "B/key")
			if m == "zscore" || m == "mad" {
				b.ReportMetric(used/keys/points, "B/point")
			}
			b.ReportMetric(0, "ns/op")
			runtime.KeepAlive(d)
		})
	}
}

// BenchmarkMemoryDaily: auto's heap per key for keys with a daily cycle
// (2,000 keys, a point every 5 minutes for three days), which hold the
// weekly correction besides the daily profile; compare auto in
// BenchmarkMemory, whose keys have no cycle.
//
//	go test -run '^$' -bench MemoryDaily -benchtime 1x ./detect
func BenchmarkMemoryDaily(b *testing.B) {
	const keys = 2000
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("sensor-%05d", i)
	}
	r := rand.New(rand.NewPCG(1, 1))
	before := heapInUse()
	d := mustNew(b, "auto", nil)
	for n := 0; n < 3*288*keys; n++ {
		i := n / keys
		x := 20 + 10*math.Sin(2*math.Pi*float64(i)/288) + r.NormFloat64()
		e := &event.Event{Time: t0.Add(time.Duration(i) * 5 * time.Minute), Seq: uint64(n), Fields: map[string]any{"v": x}}
		d.Add(names[n%keys], e)
		d.Advance(e.Time)
	}
	used := float64(heapInUse() - before)
	for range b.N {
		d.Advance(t0)
	}
	b.ReportMetric(used/keys, "B/key")
	b.ReportMetric(0, "ns/op")
	runtime.KeepAlive(d)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
