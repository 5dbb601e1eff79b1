package event

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var jsonStrings = []string{"", "plain", "a\"b", `back\slash`, "<b>&</b>", "tab\there", "nl\n", "\x00\x1f", "é ü", "\u2028", "bad\xffutf8", "{}"}

func randValue(r *rand.Rand, depth int) any {
	switch r.IntN(9) {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return jsonStrings[r.IntN(len(jsonStrings))]
	case 3:
		return []float64{0, math.Copysign(0, -1), 1, -2.5, 1e-7, 1e-6, 123456.789, 1e20, 1e21, 1.5e300, 5e-324,
			1767571200000, -42, 1e15 - 1, 1e15, -1e15 + 1, -1e15, 1 << 53, 123456789012345678, 999999999999999.9}[r.IntN(20)]
	case 4:
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
	case 5:
		if depth < 2 {
			m := map[string]any{}
			for i := r.IntN(4); i > 0; i-- {
				m[jsonStrings[r.IntN(len(jsonStrings))]] = randValue(r, depth+1)
			}
			return m
		}
		return 1.0
	case 6:
		return []any{1.0, "x", nil}
	case 7:
		return time.Date(2026, 1, 5, 10, 0, 0, r.IntN(1e9), time.UTC)
	default:
		return int64(r.IntN(1000))
	}
}

// TestAlertAppendJSON holds AppendJSON to encoding/json, byte for byte and
// error for error, on random alerts, HTML escaping on and off.
func TestAlertAppendJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	zones := []*time.Location{time.UTC, time.FixedZone("x", 5400), time.FixedZone("far", 30*3600)}
	for n := 0; n < 20000; n++ {
		a := Alert{ID: "0123abcd", Rule: jsonStrings[r.IntN(len(jsonStrings))], Key: jsonStrings[r.IntN(len(jsonStrings))],
			State: Firing, Severity: "warning", Message: jsonStrings[r.IntN(len(jsonStrings))], Topic: "not/in/json",
			Time: time.Date(2026-r.IntN(2)*20000, 1, 5, 10, 0, 0, r.IntN(1e9), zones[r.IntN(len(zones))])}
		if r.IntN(2) == 0 {
			a.Values = map[string]any{}
			for i := r.IntN(6); i > 0; i-- {
				a.Values[jsonStrings[r.IntN(len(jsonStrings))]] = randValue(r, 0)
			}
		}
		if r.IntN(3) == 0 {
			a.Window = &Window{Start: a.Time.Add(-time.Minute), End: a.Time}
		}
		a.Trimmed = r.IntN(4) == 0
		if r.IntN(50) == 0 {
			a.Values = map[string]any{"nan": math.NaN()}
		}
		for _, html := range []bool{true, false} {
			want, werr := marshal(&a, html)
			got, gerr := a.AppendJSON([]byte("prefix"), html)
			if (werr != nil) != (gerr != nil) || werr != nil && werr.Error() != gerr.Error() {
				t.Fatalf("%+v html=%v: error %v, encoding/json %v", a, html, gerr, werr)
			}
			if werr == nil && string(got) != "prefix"+string(want) {
				t.Fatalf("html=%v:\ngot  %s\nwant prefix%s", html, got, want)
			}
		}
	}
}

// TestAppendStringEveryByte: every byte, alone and amid plain text, is
// written as encoding/json writes it.
func TestAppendStringEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		for _, s := range []string{string(rune(c))[:1], "ab" + string([]byte{byte(c)}) + "cd"} {
			for _, html := range []bool{true, false} {
				want, _ := marshal(s, html)
				if got := appendString(nil, s, html); string(got) != string(want) {
					t.Fatalf("%q html=%v: %s, encoding/json %s", s, html, got, want)
				}
			}
		}
	}
}

func BenchmarkAlertJSON(b *testing.B) {
	a := Alert{ID: "0123456789abcdef0123456789abcdef", Rule: "big_abroad", Key: "c17", State: Firing, Severity: "warning",
		Time: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC), Message: "order o17 of 1234.5 to FR",
		Values: map[string]any{"order": "o17", "customer": "c17", "amount": 1234.5, "qty": 3.0, "country": "FR", "express": true, "ts": 1767607200000.0, "store": "s7"}}
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := marshal(&a, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = a.AppendJSON(buf[:0], true); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestAlertAppendJSONManyValues: values beyond the insertion sort's few.
func TestAlertAppendJSONManyValues(t *testing.T) {
	a := Alert{ID: "x", Rule: "r", State: Firing, Time: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC), Values: map[string]any{}}
	for i := 0; i < 40; i++ {
		a.Values[string(rune('z'-i%26))+strings.Repeat("k", i%3)+string(rune('a'+i))] = float64(i*i) - 7.5
		want, err := marshal(&a, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.AppendJSON(nil, false)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%d values: AppendJSON %s, %v\nencoding/json %s", len(a.Values), got, err, want)
		}
	}
}
