package ingest

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Seeds double as regression tests: `go test` runs every f.Add case, and
// files under testdata/fuzz/<Name>/ when a fuzzer has found any.

var jsonSeeds = []string{
	`{"temperature": 81.5, "ts": "2026-01-05T10:00:00Z"}`,
	`{"a": [1, {"b": null}], "time": 1767607200123}`,
	`[{"v": 1}, {"v": 2, "timestamp": "1767607200"}]`,
	`{"ts": -1e400}`,
	`{"ts": 1e300}`,
	`{"ts": "9999999999999999999999"}`,
	`{"a": "\u0000\"[{"}`,
	`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	`{"a":1,"a":2}`,
	`null`, `"x"`, `[`, `{`, ``, `[null]`,
	`{"n": 01}`, `{"n": NaN}`, `{"n": -Inf}`, `{"n": 1.}`, `{"n": .5}`, `{"n": +1}`, `{"n": 1e}`,
	`{"s": "tab\there", "k\"q": "a\/b\\c"}`, `{"s": "\ud800"}`, `{"s": "caf\u00e9", "t": "café"}`,
	"{\"s\": \"\xff\xfe\"}", `{"a": 1,}`, `{"a" 1}`, `{"a": tru}`, `{"a": [1,]}`, ` {"a": 1} `, `{"a": 1} x`,
	`{"n": -0, "m": 1E+2, "o": 5e-324, "p": 1.7976931348623157e309, "q": 123456789012345678901234567890}`,
}

var influxSeeds = []string{
	"weather,site=roof temp=21.5,hum=40i,ok=true,note=\"fine\" 1767607200000000000",
	"m v=1u\n# c\n\nm,t=x v=-2.5e3 0",
	"m v=1 -9223372036854775808",
	"m v=1 99999999999999999999",
	`my\ m,a\,b=c\ d f\=g="q\"x"`,
	"m", "m ", "m v", "m v=", "m,=x v=1", "\\", "m v=1 1 1",
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`{"at": 5}`), "at")
	f.Fuzz(func(t *testing.T, payload []byte, timeField string) {
		checkDecode(t, JSON, payload, timeField)
	})
}

func FuzzDecodeInflux(f *testing.F) {
	for _, s := range influxSeeds {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`m at="2026-01-05T10:00:00Z"`), "at")
	f.Fuzz(func(t *testing.T, payload []byte, timeField string) {
		checkDecode(t, Influx, payload, timeField)
	})
}

func FuzzDecodeAuto(f *testing.F) {
	for _, s := range append(append([]string{"21.5", " -3 ", "1e999", "NaN", "+", ".", "1e"}, jsonSeeds...), influxSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkDecode(t, Auto, payload, "")
	})
}

// checkDecode holds what every decode must: no panic (the fuzzer catches
// that), events xor an error, and every event with fields and a time.
// FuzzJSONFastPath holds the one-pass decoder (scan.go) to encoding/json's result:
// the same fields and time, or an error exactly when encoding/json errs.
func FuzzJSONFastPath(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	// What a lax parser takes and RFC 8259 does not.
	for _, s := range []string{`{"a":01}`, `{"a":NaN}`, `{"a":nan}`, `{"a":Infinity}`, `{"a":inf}`, `{"a":1.}`, `{"a":.5}`,
		`{"a":+1}`, `{"a":-}`, `{"a":1e}`, `{"a":1e+}`, `{"a":-0}`, `{"a":1E-2}`, `{"a":"\q"}`, `{"a":"\x41"}`, `{"a":"\/\b"}`,
		`{"a":1,}`, `{"a" 1}`, `{"a":tru}`, `{"a":nul}`, `[{"a":1},]`, `{"a":1}x`} {
		f.Add([]byte(s))
	}
	// One Decoder for every input, as the engine keeps one: what it reuses
	// (parser, field names) must not leak from one payload into the next.
	dec := NewDecoder()
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, gerr := dec.Decode(JSON, payload, "", recv)
		want, werr := decodeJSONStd(payload, "", recv)
		if (gerr != nil) != (werr != nil) {
			t.Fatalf("%q: fast path error %v, encoding/json error %v", payload, gerr, werr)
		}
		if gerr != nil {
			if gerr.Error() != werr.Error() {
				t.Fatalf("%q: error %q, encoding/json's %q", payload, gerr, werr)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\nfast path     %#v\nencoding/json %#v", payload, got, want)
		}
	})
}

// TestParseNumberAt holds the number scan to encoding/json's grammar and
// strconv.ParseFloat, bit for bit, where it answers.
func TestParseNumberAt(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(s string) {
		t.Helper()
		if s == "" {
			return
		}
		got, end, ok := parseNumberAt([]byte(s), 0)
		if !ok || end != len(s) {
			return
		}
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			t.Fatalf("parseNumberAt took %q, not a JSON number", s)
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("parseNumberAt(%q) = %v, ParseFloat %v, %v", s, got, want, err)
		}
	}
	for _, s := range []string{"", "-", ".5", "5.", "01", "-01", "00.5", "1.2.3", "+1", "1e5", "-.5", "0x1", "1_0", "NaN", " 1",
		"0", "-0", "1", "0.1", "0.3", "123.5", "-2.25", "999999999999999", "9999999999999999",
		"0.000000000000000000001", "18446744073709551616", "18446744073709551617.5", "-184467440737095516160", "1.7976931348623157", "4.35", "1767571200000", "0.1234567890123456"} {
		check(s)
	}
	// The fast path's business: readings, prices, Unix times in ms.
	for _, s := range []string{"0", "-0", "123.5", "-2.25", "1767571200000", "999999999999999", "0.000000000000000001", "1e5", "2.5E-3"} {
		if _, end, ok := parseNumberAt([]byte(s), 0); !ok || end != len(s) {
			t.Errorf("parseNumberAt declined %q", s)
		}
	}
	for n := 0; n < 500000; n++ {
		var b []byte
		if rng.IntN(3) == 0 {
			b = append(b, '-')
		}
		whole := rng.IntN(10)
		if whole == 0 {
			b = append(b, '0')
		} else {
			b = append(b, byte('1'+rng.IntN(9)))
			for i := 1; i < whole; i++ {
				b = append(b, byte('0'+rng.IntN(10)))
			}
		}
		if rng.IntN(2) == 0 {
			b = append(b, '.')
			for i := 1 + rng.IntN(12); i > 0; i-- {
				b = append(b, byte('0'+rng.IntN(10)))
			}
		}
		check(string(b))
		// and mangled: what parseNumberAt takes must still be JSON
		if len(b) > 0 {
			b[rng.IntN(len(b))] = "0123456789.-+eE x"[rng.IntN(17)]
			check(string(b))
		}
	}
}

func checkDecode(t *testing.T, f Format, payload []byte, timeField string) {
	evs, err := Decode(f, payload, timeField, recv)
	if err != nil {
		if evs != nil {
			t.Fatalf("events and error together: %v", err)
		}
		if err.Error() == "" || strings.ContainsRune(err.Error(), '\n') {
			t.Fatalf("unusable error text %q", err)
		}
		return
	}
	if len(evs) > MaxLines {
		t.Fatalf("%d events exceed MaxLines", len(evs))
	}
	for i, ev := range evs {
		if ev.Fields == nil || len(ev.Fields) > MaxFields {
			t.Fatalf("event %d has fields %v", i, ev.Fields)
		}
		if ev.Time.IsZero() || ev.Time.Location() != time.UTC {
			t.Fatalf("event %d has time %v", i, ev.Time)
		}
		for k, v := range ev.Fields {
			if x, ok := v.(float64); ok && (math.IsNaN(x) || math.IsInf(x, 0)) {
				t.Fatalf("event %d: field %q is %v", i, k, x)
			}
		}
	}
}

func FuzzFilter(f *testing.F) {
	for _, s := range [][2]string{
		{"sensors/{device}/temperature", "sensors/pump1/temperature"},
		{"+/+/#", "a//b"},
		{"#", "$SYS/x"},
		{"$SYS/+", "$SYS/x"},
		{"a/{x}/{y}", "a/b/c"},
		{"a//b", "a//b"},
		{"{", "{"}, {"a+", "a+"}, {"#/a", "x"}, {"", ""}, {"/", "/"}, {"{a}/{a}", "x/y"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		flt, err := ParseFilter(filter)
		if err != nil {
			return
		}
		if flt.String() != filter {
			t.Fatalf("String() = %q, want %q", flt.String(), filter)
		}
		sub, err := ParseFilter(flt.MQTT())
		if err != nil {
			t.Fatalf("MQTT() %q of %q does not re-parse: %v", flt.MQTT(), filter, err)
		}
		caps, ok := flt.Match(topic)
		_, subOK := sub.Match(topic)
		if ok != subOK {
			t.Fatalf("%q matches %q: %v, its subscription %q: %v", filter, topic, ok, sub, subOK)
		}
		if ok && len(caps) != len(flt.Names()) {
			t.Fatalf("%d captures for names %q", len(caps), flt.Names())
		}
		if !Overlap(flt, sub) || !Overlap(flt, flt) {
			t.Fatalf("%q does not overlap itself or its subscription", filter)
		}
		if ok {
			if lit, err := ParseFilter(topic); err == nil && !Overlap(flt, lit) {
				t.Fatalf("%q matches %q but does not overlap it", filter, topic)
			}
		}
	})
}

// TestBoxFloatCache: a cached box always holds the value asked for, also
// for values that share a cache slot, -0 and the boxed whole numbers.
func TestBoxFloatCache(t *testing.T) {
	d := NewDecoder()
	rng := rand.New(rand.NewPCG(3, 4))
	vals := []float64{0, math.Copysign(0, -1), 1, 255, 256, -1, 21.5, 1e300, 5e-324}
	for range 5000 {
		vals = append(vals, float64(rng.IntN(2000))/4, rng.NormFloat64())
	}
	for range 3 {
		for _, f := range vals {
			got, ok := d.boxFloat(f).(float64)
			if !ok || math.Float64bits(got) != math.Float64bits(f) {
				t.Fatalf("boxFloat(%v) = %v", f, got)
			}
		}
	}
}
