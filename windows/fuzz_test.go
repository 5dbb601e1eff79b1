package windows

import (
	"math/rand/v2"
	"testing"
	"time"
)

// FuzzRestore: no byte string may panic Restore, and a snapshot that
// restores must drive on without panicking.
func FuzzRestore(f *testing.F) {
	specs := propertySpecs()
	names := []string{"sliding 20s", "tumbling 15s", "hopping 25s/10s", "session 6s", "count 4 when"}
	for i, name := range names {
		spec := specs[name]
		spec.Aggs = allAggs()
		o, _ := New(spec)
		evs := genStream(rand.New(rand.NewPCG(uint64(i), 3)), 40, 3*time.Second)
		feed(o, evs, 3*time.Second)
		b, _ := o.Snapshot()
		f.Add(uint8(i), b)
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		spec := specs[names[int(which)%len(names)]]
		spec.Aggs = allAggs()
		o, _ := New(spec)
		if err := o.Restore(b); err != nil {
			return
		}
		drive(o, genStream(rand.New(rand.NewPCG(1, 1)), 30, time.Second), time.Second, nil)
	})
}
