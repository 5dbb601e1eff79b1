package windows

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// testdata/v1 holds, per property spec, a snapshot taken after the first
// snapCut events of v1Stream by the operator as it was at commit 62a02ef
// (before its state was made compact; same snapshot version, 1), and the
// results that operator gave after restoring it and going on to the end of
// the stream. The current code must read those snapshots and give exactly
// those results: same keys, times, windows and float bits.
const snapCut = 150

func v1File(name string) string {
	return filepath.Join("testdata", "v1", strings.NewReplacer(" ", "_", "/", "-").Replace(name)+".snap")
}

func v1Stream(seed uint64) []keyed {
	return genStream(rand.New(rand.NewPCG(seed, 13)), 300, 4*time.Second)
}

// resultLines prints results exactly: floats in their shortest exact form.
func resultLines(rs []event.Result) string {
	var b strings.Builder
	for _, r := range rs {
		seq := uint64(0)
		if r.Event != nil {
			seq = r.Event.Seq
		}
		fmt.Fprintf(&b, "%s %s %d [%d,%d] ev#%d %v\n", r.Key, r.State, r.Time.UnixNano(),
			r.Window.Start.UnixNano(), r.Window.End.UnixNano(), seq, r.Values)
	}
	return b.String()
}

// eachV1Golden runs fn as a subtest for every version 1 golden: the
// operator's spec (with every aggregate), the index of its stream, the
// snapshot and the results expected after it.
func eachV1Golden(t *testing.T, fn func(t *testing.T, i int, spec Spec, snap, want []byte)) {
	names := make([]string, 0)
	for n := range propertySpecs() {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			spec := propertySpecs()[name]
			spec.Aggs = allAggs()
			snap, err := os.ReadFile(v1File(name))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(v1File(name), ".snap") + ".want")
			if err != nil {
				t.Fatal(err)
			}
			fn(t, i, spec, snap, want)
		})
	}
}

func TestRestoreV1Snapshots(t *testing.T) {
	eachV1Golden(t, func(t *testing.T, i int, spec Spec, b, want []byte) {
		o, _ := New(spec)
		if err := o.Restore(b); err != nil {
			t.Fatal(err)
		}
		got := resultLines(drive(o, v1Stream(uint64(i))[snapCut:], 4*time.Second, nil))
		if got != string(want) {
			gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
			for j := range min(len(gl), len(wl)) {
				if gl[j] != wl[j] {
					t.Fatalf("result %d:\n got %s\nwant %s", j, gl[j], wl[j])
				}
			}
			t.Fatalf("%d result lines, want %d", len(gl), len(wl))
		}
	})
}
