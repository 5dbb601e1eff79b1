package windows

import (
	"runtime"
	"testing"
	"time"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// A checkpoint's snapshot is megabytes with 10,000 keys and runs on the
// engine loop every 10 s. Grown by append from nothing it allocates about
// five times its size (slices grow by 1.25 at that size); from the second
// one on it starts at the last one's length and allocates once.
func TestSnapshotAllocatesOnce(t *testing.T) {
	o, _ := fedTumbling(t)
	first, _ := o.Snapshot()
	var again []byte
	n := allocated(func() { again, _ = o.Snapshot() })
	if len(again) != len(first) {
		t.Fatalf("second snapshot %d bytes, first %d", len(again), len(first))
	}
	if max := uint64(len(again)) * 3 / 2; n > max {
		t.Errorf("snapshot of %d bytes allocated %d bytes, want at most %d", len(again), n, max)
	}
}

// fedTumbling is a 1-minute tumbling avg+max+count over 2,000 keys, each
// fed three readings 5 s apart, as a gateway's checkpoint finds it.
func fedTumbling(t *testing.T) (*Op, *benchFeed) {
	t.Helper()
	v := field("v")
	o, err := New(Spec{Kind: Tumbling, Size: time.Minute, Aggs: []Agg{
		{Name: "avg", Func: "avg", Arg: v}, {Name: "max", Func: "max", Arg: v}, {Name: "n", Func: "count"}}})
	if err != nil {
		t.Fatal(err)
	}
	f := newBenchFeed(2000)
	f.period = 5 * time.Second
	for range 3 * len(f.keys) {
		f.step(o)
	}
	return o, f
}
