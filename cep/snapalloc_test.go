package cep

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// A checkpoint's snapshot is megabytes with 10,000 keys and runs on the
// engine loop every 10 s. Grown by append from nothing it allocates about
// five times its size; from the second one on it starts at the last one's
// length and allocates once.
func TestSnapshotAllocatesOnce(t *testing.T) {
	const keys = 2000
	a, _ := NewAbsent(AbsentSpec{After: 5 * time.Minute})
	p, err := NewPattern(PatternSpec{Steps: []Step{{Alias: "a", Times: 5, Within: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 * keys {
		e := &event.Event{Time: t0.Add(time.Duration(i/keys) * 5 * time.Second), Seq: uint64(i), Topic: "sensors/x/temperature", Fields: map[string]any{"v": 1.0}}
		k := fmt.Sprintf("sensor-%05d", i%keys)
		a.Add(k, e)
		a.Advance(e.Time)
		p.Add(k, e)
		p.Advance(e.Time)
	}
	for _, op := range []struct {
		name string
		snap func() ([]byte, error)
	}{{"absent", a.Snapshot}, {"pattern", p.Snapshot}} {
		first, _ := op.snap()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		again, _ := op.snap()
		runtime.ReadMemStats(&m1)
		if len(again) != len(first) || len(again) < 10000 {
			t.Fatalf("%s: second snapshot %d bytes, first %d", op.name, len(again), len(first))
		}
		if n, max := m1.TotalAlloc-m0.TotalAlloc, uint64(len(again))*3/2; n > max {
			t.Errorf("%s: snapshot of %d bytes allocated %d bytes, want at most %d", op.name, len(again), n, max)
		}
	}
}
