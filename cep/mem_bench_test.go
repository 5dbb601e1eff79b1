package cep

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// BenchmarkAbsentMemory: the heap an absence rule keeps per key, 10,000
// sensors each reporting every 5 s for 10 minutes (events excluded: one is
// reused, as the engine shares an event between rules). The timed loop only
// satisfies the framework.
//
//	go test -run '^$' -bench AbsentMemory -benchtime 1x ./cep
func BenchmarkAbsentMemory(b *testing.B) {
	const keys = 10000
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("sensor-%05d", i)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	a, _ := NewAbsent(AbsentSpec{After: 5 * time.Minute})
	e := &event.Event{Fields: map[string]any{"v": 1.0}}
	for i := range 120 * keys {
		e.Time = t0.Add(time.Duration(i/keys) * 5 * time.Second)
		e.Seq = uint64(i)
		a.Add(names[i%keys], e)
		a.Advance(e.Time)
	}
	used := float64(heap() - before)
	for range b.N {
		a.Advance(e.Time)
	}
	b.ReportMetric(used/keys, "B/key")
	b.ReportMetric(0, "ns/op")
	runtime.KeepAlive(a)
}
