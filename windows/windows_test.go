package windows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// in is one input event: key, offset from base, fields.
type in struct {
	key string
	at  time.Duration
	f   map[string]any
}

func evs(ins ...in) []keyed {
	out := make([]keyed, len(ins))
	for i, x := range ins {
		f := x.f
		if f == nil {
			f = map[string]any{}
		}
		out[i] = keyed{x.key, &event.Event{Topic: "t", Time: base.Add(x.at), Fields: f, Seq: uint64(i + 1)}}
	}
	return out
}

// feed is drive without the final Flush.
func feed(o operator, evs []keyed, lateness time.Duration) []event.Result {
	var out []event.Result
	var wm time.Time
	for _, k := range evs {
		out = append(out, o.Add(k.key, k.ev)...)
		if k.ev.Time.After(wm) {
			wm = k.ev.Time
		}
		out = append(out, o.Advance(wm.Add(-lateness))...)
	}
	return out
}

func mustNew(t *testing.T, s Spec) *Op {
	t.Helper()
	o, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// brief is a result reduced to what the tables below compare.
type brief struct {
	key        string
	state      event.State
	at         time.Duration // Time - base
	start, end time.Duration // Window - base
	values     map[string]any
}

func briefs(rs []event.Result, names ...string) []brief {
	var out []brief
	for _, r := range rs {
		b := brief{key: r.Key, state: r.State, at: r.Time.Sub(base), start: r.Window.Start.Sub(base), end: r.Window.End.Sub(base), values: map[string]any{}}
		for _, n := range names {
			b.values[n] = r.Values[n]
		}
		out = append(out, b)
	}
	return out
}

func n(v float64) map[string]any { return map[string]any{"n": v} }

func check(t *testing.T, got []event.Result, want []brief, names ...string) {
	t.Helper()
	g := briefs(got, names...)
	if len(g) != len(want) {
		t.Fatalf("got %d results, want %d:\n got %+v\nwant %+v", len(g), len(want), g, want)
	}
	for i := range g {
		if want[i].values == nil {
			want[i].values = map[string]any{}
		}
		if g[i].key != want[i].key || g[i].state != want[i].state || g[i].at != want[i].at ||
			g[i].start != want[i].start || g[i].end != want[i].end || !valuesClose(g[i].values, want[i].values) {
			t.Fatalf("result %d:\n got %+v\nwant %+v", i, g[i], want[i])
		}
	}
}

func valuesClose(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range b {
		if !close(a[k], b[k]) {
			return false
		}
	}
	return true
}

var countAgg = []Agg{{Name: "n", Func: "count"}}

func TestNewValidates(t *testing.T) {
	v := field("v")
	tests := []struct {
		name string
		spec Spec
		want string // "" = valid
	}{
		{"sliding", Spec{Kind: Sliding, Size: time.Minute, Aggs: countAgg}, ""},
		{"hopping non-multiple", Spec{Kind: Hopping, Size: 25 * time.Second, Every: 10 * time.Second}, ""},
		{"unknown kind", Spec{Kind: "slidin", Size: time.Minute}, `unknown window type "slidin"`},
		{"zero size", Spec{Kind: Tumbling}, "tumbling: size must be positive"},
		{"negative gap", Spec{Kind: Session, Size: -time.Second}, "session: size must be positive"},
		{"hopping no every", Spec{Kind: Hopping, Size: time.Minute}, "hopping: every must be positive"},
		{"hopping every > size", Spec{Kind: Hopping, Size: time.Minute, Every: 2 * time.Minute}, "must not exceed the size"},
		{"hopping too many windows", Spec{Kind: Hopping, Size: time.Hour, Every: time.Second}, "at most 1000"},
		{"count zero", Spec{Kind: Count}, "count: size must be positive"},
		{"unknown func", Spec{Kind: Count, N: 1, Aggs: []Agg{{Name: "x", Func: "median", Arg: v}}}, `unknown function "median"`},
		{"no arg", Spec{Kind: Count, N: 1, Aggs: []Agg{{Name: "x", Func: "sum"}}}, "sum needs an argument"},
		{"duplicate", Spec{Kind: Count, N: 1, Aggs: []Agg{{Name: "x", Func: "count"}, {Name: "x", Func: "count"}}}, `"x" defined twice`},
		{"percentile range", Spec{Kind: Count, N: 1, Aggs: []Agg{{Name: "p", Func: "percentile", Arg: v, P: 101}}}, "within 0..100"},
		{"negative cap", Spec{Kind: Count, N: 1, MaxKeys: -1}, "max keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.spec)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSlidingBoundaries(t *testing.T) {
	s := Spec{Kind: Sliding, Size: 10 * time.Second, Aggs: countAgg}
	tests := []struct {
		name     string
		lateness time.Duration
		in       []keyed
		want     []brief
		late     uint64
	}{
		{"event exactly at t-d is out", 0, evs(in{"k", 0, nil}, in{"k", 10 * time.Second, nil}),
			[]brief{{"k", event.Firing, 0, -10 * time.Second, 0, n(1)}, {"k", event.Firing, 10 * time.Second, 0, 10 * time.Second, n(1)}}, 0},
		{"event just after t-d is in", 0, evs(in{"k", 0, nil}, in{"k", 10*time.Second - 1, nil}),
			[]brief{{"k", event.Firing, 0, -10 * time.Second, 0, n(1)}, {"k", event.Firing, 10*time.Second - 1, -1, 10*time.Second - 1, n(2)}}, 0},
		{"equal times both count", 0, evs(in{"k", time.Second, nil}, in{"k", time.Second, nil}),
			[]brief{{"k", event.Firing, time.Second, -9 * time.Second, time.Second, n(1)}, {"k", event.Firing, time.Second, -9 * time.Second, time.Second, n(2)}}, 0},
		{"keys are separate", 0, evs(in{"a", 0, nil}, in{"b", time.Second, nil}),
			[]brief{{"a", event.Firing, 0, -10 * time.Second, 0, n(1)}, {"b", event.Firing, time.Second, -9 * time.Second, time.Second, n(1)}}, 0},
		{"out of order within lateness is reordered", 5 * time.Second, evs(in{"k", 8 * time.Second, nil}, in{"k", 4 * time.Second, nil}, in{"k", 20 * time.Second, nil}),
			[]brief{{"k", event.Firing, 4 * time.Second, -6 * time.Second, 4 * time.Second, n(1)}, {"k", event.Firing, 8 * time.Second, -2 * time.Second, 8 * time.Second, n(2)},
				{"k", event.Firing, 20 * time.Second, 10 * time.Second, 20 * time.Second, n(1)}}, 0},
		{"beyond lateness is late", 5 * time.Second, evs(in{"k", 10 * time.Second, nil}, in{"k", 4 * time.Second, nil}, in{"k", 5 * time.Second, nil}),
			[]brief{{"k", event.Firing, 5 * time.Second, -5 * time.Second, 5 * time.Second, n(1)}, {"k", event.Firing, 10 * time.Second, 0, 10 * time.Second, n(2)}}, 1},
		{"lateness 0: older event is late", 0, evs(in{"k", 10 * time.Second, nil}, in{"k", 9 * time.Second, nil}),
			[]brief{{"k", event.Firing, 10 * time.Second, 0, 10 * time.Second, n(1)}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := mustNew(t, s)
			check(t, drive(o, tt.in, tt.lateness, nil), tt.want, "n")
			if st := o.Stats(); st.Late != tt.late {
				t.Fatalf("late %d, want %d", st.Late, tt.late)
			}
		})
	}
}

func TestSlidingEndOfInput(t *testing.T) {
	o := mustNew(t, Spec{Kind: Sliding, Size: time.Minute, Aggs: countAgg})
	x := evs(in{"k", 0, nil}, in{"k", time.Second, nil})
	o.Add(x[0].key, x[0].ev)
	o.Add(x[1].key, x[1].ev) // never advanced: still buffered
	if st := o.Stats(); st.Pending != 2 || st.Keys != 0 {
		t.Fatalf("stats %+v, want 2 pending, no keys", st)
	}
	check(t, o.Flush(), []brief{{"k", event.Firing, 0, -time.Minute, 0, n(1)}, {"k", event.Firing, time.Second, time.Second - time.Minute, time.Second, n(2)}}, "n")
}

// TestSlidingLifecycle: firing when `when` becomes true, resolved when it
// becomes false, never twice in a row.
func TestSlidingLifecycle(t *testing.T) {
	when := func(v map[string]any, _ *event.Event) (bool, error) { return v["n"].(float64) >= 3, nil }
	o := mustNew(t, Spec{Kind: Sliding, Size: 10 * time.Second, Aggs: countAgg, When: when})
	var at []time.Duration
	for _, s := range []int{0, 1, 2, 3, 4, 13, 14, 20, 21, 22} {
		at = append(at, time.Duration(s)*time.Second)
	}
	var ins []in
	for _, a := range at {
		ins = append(ins, in{"k", a, nil})
	}
	sec := time.Second
	check(t, drive(o, evs(ins...), 0, nil), []brief{
		{"k", event.Firing, 2 * sec, -8 * sec, 2 * sec, n(3)},
		{"k", event.Resolved, 13 * sec, 3 * sec, 13 * sec, n(2)}, // (3s,13s] holds 4s and 13s
		{"k", event.Firing, 20 * sec, 10 * sec, 20 * sec, n(3)},  // 13s, 14s, 20s; 21s and 22s stay firing
	}, "n")
}

func TestTumblingBoundaries(t *testing.T) {
	m := time.Minute
	s := Spec{Kind: Tumbling, Size: m, Aggs: countAgg}
	tests := []struct {
		name     string
		lateness time.Duration
		in       []keyed
		want     []brief
		late     uint64
	}{
		{"event at a window's end opens the next", 0, evs(in{"k", 0, nil}, in{"k", m - 1, nil}, in{"k", m, nil}),
			[]brief{{"k", event.Firing, m, 0, m, n(2)}, {"k", event.Firing, 2 * m, m, 2 * m, n(1)}}, 0},
		{"closes only when closeAt reaches the end", 0, evs(in{"k", 10 * time.Second, nil}, in{"k", m - 1, nil}),
			[]brief{{"k", event.Firing, m, 0, m, n(2)}}, 0}, // emitted by Flush, not before
		{"inside lateness is accepted", 15 * time.Second, evs(in{"k", 70 * time.Second, nil}, in{"k", 30 * time.Second, nil}, in{"k", 74 * time.Second, nil}),
			[]brief{{"k", event.Firing, m, 0, m, n(1)}, {"k", event.Firing, 2 * m, m, 2 * m, n(2)}}, 0},
		{"beyond lateness is late", 15 * time.Second, evs(in{"k", 30 * time.Second, nil}, in{"k", 80 * time.Second, nil}, in{"k", 40 * time.Second, nil}),
			[]brief{{"k", event.Firing, m, 0, m, n(1)}, {"k", event.Firing, 2 * m, m, 2 * m, n(1)}}, 1},
		{"windows closing together emit by key", 0, evs(in{"b", 0, nil}, in{"a", time.Second, nil}, in{"b", m, nil}),
			[]brief{{"a", event.Firing, m, 0, m, n(1)}, {"b", event.Firing, m, 0, m, n(1)}, {"b", event.Firing, 2 * m, m, 2 * m, n(1)}}, 0},
		{"aligned to the epoch", 0, evs(in{"k", -time.Second, nil}),
			[]brief{{"k", event.Firing, 0, -m, 0, n(1)}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := mustNew(t, s)
			check(t, drive(o, tt.in, tt.lateness, nil), tt.want, "n")
			if st := o.Stats(); st.Late != tt.late || st.Keys != 0 || st.Pending != 0 {
				t.Fatalf("stats %+v, want late %d and nothing left", st, tt.late)
			}
		})
	}
}

func TestTumblingAdvanceEmitsAtEnd(t *testing.T) {
	o := mustNew(t, Spec{Kind: Tumbling, Size: time.Minute, Aggs: countAgg})
	x := evs(in{"k", 0, nil})
	o.Add(x[0].key, x[0].ev)
	if r := o.Advance(base.Add(time.Minute - 1)); len(r) != 0 {
		t.Fatalf("emitted before the end: %v", r)
	}
	if st := o.Stats(); st.Pending != 1 || st.Keys != 1 {
		t.Fatalf("stats %+v", st)
	}
	check(t, o.Advance(base.Add(time.Minute)), []brief{{"k", event.Firing, time.Minute, 0, time.Minute, n(1)}}, "n")
	if r := o.Flush(); len(r) != 0 {
		t.Fatalf("flush emitted a closed window again: %v", r)
	}
}

func TestHoppingBoundaries(t *testing.T) {
	m := time.Minute
	s := Spec{Kind: Hopping, Size: 10 * m, Every: 5 * m, Aggs: countAgg}
	tests := []struct {
		name     string
		lateness time.Duration
		in       []keyed
		want     []brief
		late     uint64
	}{
		{"an event belongs to size/every windows", 0, evs(in{"k", 7 * m, nil}),
			[]brief{{"k", event.Firing, 10 * m, 0, 10 * m, n(1)}, {"k", event.Firing, 15 * m, 5 * m, 15 * m, n(1)}}, 0},
		{"at a window's end it is in the next two", 0, evs(in{"k", 10 * m, nil}),
			[]brief{{"k", event.Firing, 15 * m, 5 * m, 15 * m, n(1)}, {"k", event.Firing, 20 * m, 10 * m, 20 * m, n(1)}}, 0},
		{"only still-open windows take a late-ish event", 0, evs(in{"k", 10 * m, nil}, in{"k", 7 * m, nil}),
			[]brief{{"k", event.Firing, 15 * m, 5 * m, 15 * m, n(2)}, {"k", event.Firing, 20 * m, 10 * m, 20 * m, n(1)}}, 0},
		{"late when all its windows closed", 0, evs(in{"k", 10 * m, nil}, in{"k", 4 * m, nil}),
			[]brief{{"k", event.Firing, 15 * m, 5 * m, 15 * m, n(1)}, {"k", event.Firing, 20 * m, 10 * m, 20 * m, n(1)}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := mustNew(t, s)
			check(t, drive(o, tt.in, tt.lateness, nil), tt.want, "n")
			if st := o.Stats(); st.Late != tt.late {
				t.Fatalf("late %d, want %d", st.Late, tt.late)
			}
		})
	}
}

func TestSessionBoundaries(t *testing.T) {
	m := time.Minute
	s := Spec{Kind: Session, Size: 30 * m, Aggs: countAgg}
	tests := []struct {
		name     string
		lateness time.Duration
		in       []keyed
		want     []brief
		late     uint64
	}{
		{"a gap of exactly the session joins, longer splits", 0, evs(in{"k", 0, nil}, in{"k", 10 * m, nil}, in{"k", 40 * m, nil}, in{"k", 70*m + 1, nil}),
			[]brief{{"k", event.Firing, 70 * m, 0, 70 * m, n(3)}, {"k", event.Firing, 100*m + 1, 70*m + 1, 100*m + 1, n(1)}}, 0},
		{"closes once closeAt is past last+gap", 0, evs(in{"k", 0, nil}, in{"j", 30 * m, nil}, in{"j", 30*m + 1, nil}),
			[]brief{{"k", event.Firing, 30 * m, 0, 30 * m, n(1)}, {"j", event.Firing, 60*m + 1, 30 * m, 60*m + 1, n(2)}}, 0},
		{"an out-of-order event bridges two sessions", 30 * m, evs(in{"k", 0, nil}, in{"k", 50 * m, nil}, in{"k", 25 * m, nil}),
			[]brief{{"k", event.Firing, 80 * m, 0, 80 * m, n(3)}}, 0},
		{"an event into a closed session is late", 0, evs(in{"k", 0, nil}, in{"j", 31 * m, nil}, in{"k", 29 * m, nil}),
			[]brief{{"k", event.Firing, 30 * m, 0, 30 * m, n(1)}, {"j", event.Firing, 61 * m, 31 * m, 61 * m, n(1)}}, 1},
		{"an event that would extend a closed session is late", 5 * m, evs(in{"k", 0, nil}, in{"j", 36 * m, nil}, in{"k", 30 * m, nil}),
			[]brief{{"k", event.Firing, 30 * m, 0, 30 * m, n(1)}, {"j", event.Firing, 66 * m, 36 * m, 66 * m, n(1)}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := mustNew(t, s)
			check(t, drive(o, tt.in, tt.lateness, nil), tt.want, "n")
			if st := o.Stats(); st.Late != tt.late {
				t.Fatalf("late %d, want %d", st.Late, tt.late)
			}
		})
	}
}

func TestCountWindows(t *testing.T) {
	sec := time.Second
	o := mustNew(t, Spec{Kind: Count, N: 3, Aggs: []Agg{{Name: "n", Func: "count"}, {Name: "sum", Func: "sum", Arg: field("v")}}})
	var ins []in
	for i := range 7 {
		ins = append(ins, in{"k", time.Duration(i) * sec, map[string]any{"v": float64(i)}})
	}
	ins = append(ins, in{"j", 6 * sec, map[string]any{"v": 10.0}})
	check(t, drive(o, evs(ins...), 0, nil), []brief{
		{"k", event.Firing, 2 * sec, 0, 2 * sec, map[string]any{"n": 3.0, "sum": 3.0}},
		{"k", event.Firing, 5 * sec, 3 * sec, 5 * sec, map[string]any{"n": 3.0, "sum": 12.0}},
		// end of input: partial windows close, by last event time then key
		{"j", event.Firing, 6 * sec, 6 * sec, 6 * sec, map[string]any{"n": 1.0, "sum": 10.0}},
		{"k", event.Firing, 6 * sec, 6 * sec, 6 * sec, map[string]any{"n": 1.0, "sum": 6.0}},
	}, "n", "sum")
}

// TestEviction: beyond MaxKeys the least recently seen key goes, with its
// open windows (and sliding lifecycle state); it is counted.
func TestEviction(t *testing.T) {
	t.Run("tumbling", func(t *testing.T) {
		o := mustNew(t, Spec{Kind: Tumbling, Size: time.Minute, Aggs: countAgg, MaxKeys: 2})
		got := drive(o, evs(in{"a", 0, nil}, in{"b", 1, nil}, in{"a", 2, nil}, in{"c", 3, nil}), 0, nil)
		check(t, got, []brief{{"a", event.Firing, time.Minute, 0, time.Minute, n(2)}, {"c", event.Firing, time.Minute, 0, time.Minute, n(1)}}, "n")
		if st := o.Stats(); st.Evicted != 1 {
			t.Fatalf("evicted %d, want 1", st.Evicted)
		}
	})
	t.Run("sliding", func(t *testing.T) {
		when := func(v map[string]any, _ *event.Event) (bool, error) { return v["n"].(float64) >= 2, nil }
		o := mustNew(t, Spec{Kind: Sliding, Size: time.Hour, Aggs: countAgg, When: when, MaxKeys: 1})
		got := feed(o, evs(in{"a", 0, nil}, in{"a", 1, nil}, in{"b", 2, nil}, in{"a", 3, nil}, in{"a", 4, nil}), 0)
		// a fires, is evicted by b (losing its window and its firing state),
		// and fires again once its new window holds two events
		check(t, got, []brief{{"a", event.Firing, 1, 1 - time.Hour, 1, n(2)}, {"a", event.Firing, 4, 4 - time.Hour, 4, n(2)}}, "n")
		if st := o.Stats(); st.Evicted != 2 || st.Keys != 1 || st.Pending != 2 {
			t.Fatalf("stats %+v, want 2 evicted, 1 key, 2 events held", st)
		}
	})
	t.Run("default cap", func(t *testing.T) {
		o := mustNew(t, Spec{Kind: Count, N: 5})
		for i := range DefaultMaxKeys + 3 {
			o.Add(string(rune('a'+i%26))+string(rune(i)), &event.Event{Time: base, Seq: uint64(i)})
		}
		o.Advance(base)
		if st := o.Stats(); st.Keys != DefaultMaxKeys || st.Evicted != 3 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestSlidingForgetsIdleKeys: once the watermark has moved a window's length
// past a key's last event, its events are gone (and the key too, unless it
// is firing and must still resolve).
func TestSlidingForgetsIdleKeys(t *testing.T) {
	when := func(v map[string]any, _ *event.Event) (bool, error) { return v["n"].(float64) >= 2, nil }
	o := mustNew(t, Spec{Kind: Sliding, Size: time.Minute, Aggs: countAgg, When: when})
	feed(o, evs(in{"a", 0, nil}, in{"b", 0, nil}, in{"b", 1, nil}), 0)
	if st := o.Stats(); st.Keys != 2 || st.Pending != 3 {
		t.Fatalf("before: %+v", st)
	}
	o.Advance(base.Add(time.Minute + 1))
	if st := o.Stats(); st.Keys != 1 || st.Pending != 0 {
		t.Fatalf("after: %+v, want only the firing key b, no events", st)
	}
	check(t, feed(o, evs(in{"b", 2 * time.Minute, nil}), 0), []brief{{"b", event.Resolved, 2 * time.Minute, time.Minute, 2 * time.Minute, n(1)}}, "n")
}

func TestWhenErrors(t *testing.T) {
	fail := func(map[string]any, *event.Event) (bool, error) { return false, errors.New("boom") }
	o := mustNew(t, Spec{Kind: Tumbling, Size: time.Minute, Aggs: countAgg, When: fail})
	if r := drive(o, evs(in{"a", 0, nil}, in{"a", time.Minute, nil}), 0, nil); len(r) != 0 {
		t.Fatalf("an erroring when fired: %v", r)
	}
	if st := o.Stats(); st.Errors != 2 {
		t.Fatalf("errors %d, want 2", st.Errors)
	}
}

func TestPercentileInterpolates(t *testing.T) {
	tests := []struct {
		vals []float64
		p    float64
		want any
	}{
		{nil, 50, nil},
		{[]float64{7}, 90, 7.0},
		{[]float64{1, 2, 3, 4}, 50, 2.5},
		{[]float64{1, 2, 3, 4}, 0, 1.0},
		{[]float64{1, 2, 3, 4}, 100, 4.0},
		{[]float64{10, 20, 30, 40, 50}, 90, 46.0},
		{[]float64{10, 20, 30, 40, 50}, 25, 20.0},
	}
	for _, tt := range tests {
		if got := percentile(tt.vals, tt.p); !close(got, tt.want) {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.vals, tt.p, got, tt.want)
		}
	}
}

// TestEmptyAggregates: count and sum of nothing are 0, the others nil; a
// value that is not a number is left out of numeric aggregates but counts
// for first/last/count_distinct.
func TestEmptyAggregates(t *testing.T) {
	for _, kind := range []Kind{Sliding, Tumbling, Session} {
		t.Run(string(kind), func(t *testing.T) {
			o := mustNew(t, Spec{Kind: kind, Size: time.Minute, Aggs: allAggs()})
			r := drive(o, evs(in{"k", 0, map[string]any{"v": "x", "c": true}}), 0, nil)
			if len(r) != 1 {
				t.Fatalf("%d results", len(r))
			}
			want := map[string]any{"n": 1.0, "nv": 1.0, "sum": 0.0, "avg": nil, "min": nil, "max": nil, "sd": nil,
				"first": true, "last": "x", "slope": nil, "p0": nil, "p50": nil, "p90": nil, "cd": 1.0, "sumc": 0.0}
			if !valuesClose(r[0].Values, want) {
				t.Fatalf("values %v, want %v", r[0].Values, want)
			}
		})
	}
}

func TestRestoreRejects(t *testing.T) {
	spec := Spec{Kind: Tumbling, Size: time.Minute, Aggs: allAggs()}
	o := mustNew(t, spec)
	feed(o, evs(in{"a", 0, map[string]any{"v": 1.0, "c": "x"}}, in{"b", time.Second, nil}), 0)
	good, err := o.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	other := mustNew(t, Spec{Kind: Tumbling, Size: 2 * time.Minute, Aggs: allAggs()})
	if err := other.Restore(good); !errors.Is(err, errSpec) {
		t.Fatalf("restore into another spec: %v", err)
	}
	bad := append([]byte{99}, good[1:]...)
	if err := mustNew(t, spec).Restore(bad); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("unknown version: %v", err)
	}
	for i := range len(good) {
		fresh := mustNew(t, spec)
		if err := fresh.Restore(good[:i]); err == nil {
			t.Fatalf("truncated at %d restored without error", i)
		}
		if st := fresh.Stats(); st.Keys != 0 || st.Pending != 0 {
			t.Fatalf("failed restore left state %+v", st)
		}
	}
	fresh := mustNew(t, spec)
	if err := fresh.Restore(good); err != nil || fresh.Stats() != o.Stats() {
		t.Fatalf("restore: %v, stats %+v want %+v", err, fresh.Stats(), o.Stats())
	}
}
