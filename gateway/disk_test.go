package gateway

import (
	"math"
	"os"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/config"
)

// TestDiskRate: rates are over the samples kept (a minute of ticks), and a
// counter that went back (a restart of the count) gives no rate.
func TestDiskRate(t *testing.T) {
	var r diskRate
	t0 := time.Unix(1000, 0)
	if w, c := r.add(diskSample{at: t0}); w != 0 || c != 0 {
		t.Fatalf("first sample: %v %v", w, c)
	}
	var w, c float64
	for i := 1; i <= 100; i++ {
		// 1,000 bytes and 20 commits a second.
		w, c = r.add(diskSample{at: t0.Add(time.Duration(i) * time.Second), written: uint64(i) * 1000, commits: uint64(i) * 20})
	}
	if math.Abs(w-1000) > 1e-9 || math.Abs(c-20) > 1e-9 {
		t.Fatalf("rates %v B/s %v commits/s, want 1000 and 20", w, c)
	}
	if w, c := r.add(diskSample{at: t0.Add(101 * time.Second), written: 5}); w != 0 || c != 0 {
		t.Fatalf("after the counter went back: %v %v", w, c)
	}
}

// TestWrittenBytes reads this process's write_bytes, which grows when it
// writes a file and syncs it.
func TestWrittenBytes(t *testing.T) {
	if _, err := os.ReadFile("/proc/self/io"); err != nil {
		t.Skip("no /proc/self/io here")
	}
	before := writtenBytes()
	f, err := os.CreateTemp(t.TempDir(), "w")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if after := writtenBytes(); after < before+1<<20 {
		t.Fatalf("write_bytes %d -> %d after writing 1 MiB", before, after)
	}
}

// TestCheckpointDue: a checkpoint is worth its writes once
// state.checkpoint_messages have been journaled since the last one, or
// checkpointMax after it; a failed one is tried again at the next interval.
func TestCheckpointDue(t *testing.T) {
	now := time.Unix(1000, 0)
	c := config.Default()
	g := &Gateway{cfg: c, o: Options{Now: func() time.Time { return now }}, log: logger(t)}
	g.cpFrom, g.cpAt = 100, now
	for _, tc := range []struct {
		lastPos uint64
		after   time.Duration
		want    bool
	}{
		{100 + 9999, 10 * time.Second, false},
		{100 + 10000, 10 * time.Second, true},
		{101, checkpointMax - time.Second, false},
		{101, checkpointMax, true},
	} {
		g.lastPos = tc.lastPos
		now = time.Unix(1000, 0).Add(tc.after)
		if got := g.checkpointDue(); got != tc.want {
			t.Errorf("%d messages after %s: due %v, want %v", tc.lastPos-g.cpFrom, tc.after, got, tc.want)
		}
	}
	now = time.Unix(1000, 0).Add(time.Second)
	g.lastPos = 101
	g.checkpointDone(cpResult{err: errUnstored})
	if !g.checkpointDue() {
		t.Error("not due again after a failed checkpoint")
	}
}
