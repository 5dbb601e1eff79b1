package windows

import (
	"testing"
	"time"
)

// A version 1 snapshot, restored and written again (version 2), restores
// into an operator that continues exactly as the one that wrote version 1
// would have: every window kind, every aggregate function.
func TestV1SnapshotsRewrittenAsV2(t *testing.T) {
	eachV1Golden(t, func(t *testing.T, i int, spec Spec, b1, want []byte) {
		o1, _ := New(spec)
		if err := o1.Restore(b1); err != nil {
			t.Fatal(err)
		}
		b2, err := o1.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if b2[0] != snapVersion || snapVersion != 2 {
			t.Fatalf("snapshot version %d", b2[0])
		}
		o2, _ := New(spec)
		if err := o2.Restore(b2); err != nil {
			t.Fatal(err)
		}
		got := resultLines(drive(o2, v1Stream(uint64(i))[snapCut:], 4*time.Second, nil))
		if got != string(want) {
			t.Fatalf("results after a version 2 round trip differ from the version 1 goldens:\n got %.300s\nwant %.300s", got, want)
		}
		if len(b2) > len(b1) {
			t.Errorf("version 2 snapshot %d bytes, version 1 %d", len(b2), len(b1))
		}
	})
}

// A tumbling window's snapshot costs per key its key, the window's bounds,
// its latest event and what its aggregates keep: no longer 120-odd bytes
// per aggregate whatever the function.
func TestSnapshotBytesPerKey(t *testing.T) {
	o, f := fedTumbling(t)
	b, _ := o.Snapshot()
	// key 12, bounds and count 15, event 30, aggregates 1+16, 1+8, 1
	per := len(b) / len(f.keys)
	t.Logf("%d bytes per key", per)
	if per > 100 {
		t.Errorf("%d bytes per key, want at most 100 (version 1 wrote 413)", per)
	}
}
