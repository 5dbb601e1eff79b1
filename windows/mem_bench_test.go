package windows

import (
	"testing"
	"time"
)

// BenchmarkMemory measures what state costs once windows are full: the
// heap kept per key and, for sliding windows, per buffered reading (the
// key's whole state divided by its readings, so per-key overhead is spread
// over them). 10,000 keys, one reading every 5 s per key, as a gateway with
// 10,000 devices sees. The timed loop is only there to satisfy the
// framework; the metrics are B/key and B/reading.
//
//	go test -run '^$' -bench Memory -benchtime 1x ./windows
func BenchmarkMemory(b *testing.B) {
	v := field("v")
	cases := []struct {
		name string
		spec Spec
	}{
		{"sliding10m/slope+count", Spec{Kind: Sliding, Size: 10 * time.Minute, Aggs: []Agg{
			{Name: "s", Func: "slope", Arg: v}, {Name: "n", Func: "count"}}}},
		{"sliding10m/avg", Spec{Kind: Sliding, Size: 10 * time.Minute, Aggs: []Agg{
			{Name: "a", Func: "avg", Arg: v}}}},
		{"sliding10m/sum+avg+min+max+slope", Spec{Kind: Sliding, Size: 10 * time.Minute, Aggs: []Agg{
			{Name: "sum", Func: "sum", Arg: v}, {Name: "avg", Func: "avg", Arg: v},
			{Name: "min", Func: "min", Arg: v}, {Name: "max", Func: "max", Arg: v},
			{Name: "slope", Func: "slope", Arg: v}}}},
		{"sliding10m/first+last", Spec{Kind: Sliding, Size: 10 * time.Minute, Aggs: []Agg{
			{Name: "f", Func: "first", Arg: v}, {Name: "l", Func: "last", Arg: v}}}},
		{"tumbling1m/avg+max+count", Spec{Kind: Tumbling, Size: time.Minute, Aggs: []Agg{
			{Name: "avg", Func: "avg", Arg: v}, {Name: "max", Func: "max", Arg: v}, {Name: "n", Func: "count"}}}},
		{"hopping5m-1m/max", Spec{Kind: Hopping, Size: 5 * time.Minute, Every: time.Minute, Aggs: []Agg{
			{Name: "peak", Func: "max", Arg: v}}}},
		{"count20/stddev", Spec{Kind: Count, N: 20, Aggs: []Agg{{Name: "sd", Func: "stddev", Arg: v}}}},
	}
	const keys = 10000
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			f := newBenchFeed(keys)
			f.period = 5 * time.Second
			before := heapInUse()
			o, err := New(c.spec)
			if err != nil {
				b.Fatal(err)
			}
			// 12 minutes: the 10 m windows are full and have slid
			for range 12 * 12 * keys {
				f.step(o)
			}
			held := o.held
			used := float64(heapInUse() - before)
			for range b.N {
				f.step(o)
			}
			b.ReportMetric(used/keys, "B/key")
			if held > 0 {
				b.ReportMetric(used/float64(held), "B/reading")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}
