package ingest

import (
	"math"
	"reflect"
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
// FuzzJSONFastPath holds the fastjson decoder to encoding/json's result:
// the same fields and time, or an error exactly when encoding/json errs.
func FuzzJSONFastPath(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, gerr := decodeJSON(payload, "", recv)
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
