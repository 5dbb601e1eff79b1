package detect_test

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
	d := mustNew(t, "ewma", nil)
	const keys = 2000
	for i := range 3 * keys {
		e := &event.Event{Time: t0.Add(time.Duration(i/keys) * 5 * time.Second), Seq: uint64(i), Fields: map[string]any{"v": float64(i % 7)}}
		d.Add(fmt.Sprintf("sensor-%05d", i%keys), e)
		d.Advance(e.Time)
	}
	first, _ := d.Snapshot()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	again, _ := d.Snapshot()
	runtime.ReadMemStats(&b)
	if len(again) != len(first) {
		t.Fatalf("second snapshot %d bytes, first %d", len(again), len(first))
	}
	if n, max := b.TotalAlloc-a.TotalAlloc, uint64(len(again))*3/2; n > max {
		t.Errorf("snapshot of %d bytes allocated %d bytes, want at most %d", len(again), n, max)
	}
}
