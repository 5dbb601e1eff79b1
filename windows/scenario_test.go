package windows

import (
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// The seed scenarios of issue #4, driven through the operator as the engine
// would (the engine's `where` has already filtered the events).

func num(name string) func(*event.Event) (any, bool) { return field(name) }

func whenFunc(f func(v map[string]any) bool) func(map[string]any, *event.Event) (bool, error) {
	return func(v map[string]any, _ *event.Event) (bool, error) { return f(v), nil }
}

func f64(v any) float64 {
	x, _ := v.(float64)
	return x
}

func TestScenarios(t *testing.T) {
	h, m := time.Hour, time.Minute
	tests := []struct {
		name     string
		spec     Spec
		lateness time.Duration
		in       []keyed
		want     []brief
		names    []string
	}{
		{
			name: "three high-value orders from one customer in 24h",
			spec: Spec{Kind: Sliding, Size: 24 * h,
				Aggs: []Agg{{Name: "n", Func: "count"}, {Name: "total", Func: "sum", Arg: num("amount")}},
				When: whenFunc(func(v map[string]any) bool { return f64(v["n"]) >= 3 })},
			in: evs(
				in{"c42", 0, map[string]any{"amount": 600.0}},
				in{"c7", 1 * h, map[string]any{"amount": 900.0}},
				in{"c42", 5 * h, map[string]any{"amount": 520.0}},
				in{"c42", 20 * h, map[string]any{"amount": 600.0}}, // third within 24h: fires
				in{"c42", 26 * h, map[string]any{"amount": 700.0}}, // (2h,26h] still 3: no second alert
				in{"c42", 50 * h, map[string]any{"amount": 510.0}}, // alone again: resolved
			),
			want: []brief{
				{"c42", event.Firing, 20 * h, -4 * h, 20 * h, map[string]any{"n": 3.0, "total": 1720.0}},
				{"c42", event.Resolved, 50 * h, 26 * h, 50 * h, map[string]any{"n": 1.0, "total": 510.0}},
			},
			names: []string{"n", "total"},
		},
		{
			name: "heat output rising over 30 minutes",
			spec: Spec{Kind: Sliding, Size: 30 * m,
				Aggs: []Agg{{Name: "s", Func: "slope", Arg: num("heat")}, {Name: "n", Func: "count"}},
				When: whenFunc(func(v map[string]any) bool { return f64(v["n"]) >= 20 && f64(v["s"])*60 > 0.1 })},
			in: func() []keyed {
				var ins []in
				for i := range 40 { // one reading a minute: flat for 10 min, then +0.2 a minute
					heat := 50.0
					if i > 10 {
						heat += 0.2 * float64(i-10)
					}
					ins = append(ins, in{"m1", time.Duration(i) * m, map[string]any{"heat": heat}})
				}
				return evs(ins...)
			}(),
			// 20 readings at 19 min, but the least-squares slope over the
			// flat start is 0.092 °/min at 19 min, exactly 0.1 at 20 (not
			// above) and 0.107 at 21
			want:  []brief{{"m1", event.Firing, 21 * m, -9 * m, 21 * m, map[string]any{"n": 22.0}}},
			names: []string{"n"},
		},
		{
			name: "engagement score dropping more than 30 points within 5 minutes",
			spec: Spec{Kind: Sliding, Size: 5 * m,
				Aggs: []Agg{{Name: "first", Func: "first", Arg: num("score")}, {Name: "last", Func: "last", Arg: num("score")}, {Name: "max", Func: "max", Arg: num("score")}},
				When: whenFunc(func(v map[string]any) bool { return f64(v["max"])-f64(v["last"]) > 30 })},
			lateness: time.Minute,
			in: evs(
				in{"u1", 0, map[string]any{"score": 90.0}},
				in{"u1", 3 * m, map[string]any{"score": 55.0}}, // arrives before the 1-minute reading
				in{"u1", 1 * m, map[string]any{"score": 80.0}},
				in{"u1", 6 * m, map[string]any{"score": 50.0}}, // (1m,6m]: max 55: resolved
				in{"u1", 7 * m, map[string]any{"score": 52.0}},
			),
			want: []brief{
				{"u1", event.Firing, 3 * m, -2 * m, 3 * m, map[string]any{"first": 90.0, "last": 55.0}},
				{"u1", event.Resolved, 6 * m, 1 * m, 6 * m, map[string]any{"first": 55.0, "last": 50.0}},
			},
			names: []string{"first", "last"},
		},
		{
			name: "hourly averages per device",
			spec: Spec{Kind: Tumbling, Size: h, Aggs: []Agg{{Name: "avg", Func: "avg", Arg: num("t")}, {Name: "n", Func: "count"}}},
			in: evs(
				in{"pump2", 10 * m, map[string]any{"t": 20.0}},
				in{"pump1", 20 * m, map[string]any{"t": 60.0}},
				in{"pump2", 50 * m, map[string]any{"t": 22.0}},
				in{"pump1", 70 * m, map[string]any{"t": 64.0}},
				in{"pump2", 80 * m, map[string]any{}}, // no reading: counted, left out of avg
			),
			want: []brief{
				{"pump1", event.Firing, h, 0, h, map[string]any{"avg": 60.0, "n": 1.0}},
				{"pump2", event.Firing, h, 0, h, map[string]any{"avg": 21.0, "n": 2.0}},
				{"pump1", event.Firing, 2 * h, h, 2 * h, map[string]any{"avg": 64.0, "n": 1.0}},
				{"pump2", event.Firing, 2 * h, h, 2 * h, map[string]any{"avg": nil, "n": 1.0}},
			},
			names: []string{"avg", "n"},
		},
		{
			name: "sessions split by 30 minutes of inactivity",
			spec: Spec{Kind: Session, Size: 30 * m, Aggs: []Agg{{Name: "n", Func: "count"}, {Name: "pages", Func: "count_distinct", Arg: num("page")}}},
			in: evs(
				in{"s1", 0, map[string]any{"page": "home"}},
				in{"s1", 10 * m, map[string]any{"page": "cart"}},
				in{"s1", 25 * m, map[string]any{"page": "home"}},
				in{"s1", 60 * m, map[string]any{"page": "home"}}, // 35 min idle: a new session
				in{"s1", 61 * m, map[string]any{"page": "pay"}},
			),
			want: []brief{
				{"s1", event.Firing, 55 * m, 0, 55 * m, map[string]any{"n": 3.0, "pages": 2.0}},
				{"s1", event.Firing, 91 * m, 60 * m, 91 * m, map[string]any{"n": 2.0, "pages": 2.0}},
			},
			names: []string{"n", "pages"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := mustNew(t, tt.spec)
			check(t, drive(o, tt.in, tt.lateness, nil), tt.want, tt.names...)
		})
	}
}
