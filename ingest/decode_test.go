package ingest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var recv = utc("2026-01-05T10:00:01Z")

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{"", Auto, false},
		{"auto", Auto, false},
		{"json", JSON, false},
		{"influx", Influx, false},
		{"value", Value, false},
		{"JSON", Auto, true},
		{"csv", Auto, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseFormat(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseFormat(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// decodeCase is shared by the per-format tables: a payload and either the
// events it must yield or the text its error must contain.
type decodeCase struct {
	name      string
	payload   string
	timeField string
	recv      time.Time
	want      []Decoded
	err       string
}

func runDecode(t *testing.T, f Format, tests []decodeCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.recv
			if r.IsZero() {
				r = recv
			}
			if tc.recv.Equal(time.Unix(0, 0)) {
				r = time.Time{} // the case wants no receive time at all
			}
			got, err := Decode(f, []byte(tc.payload), tc.timeField, r)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("Decode(%.80q) = %v, want error containing %q", tc.payload, got, tc.err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Decode(%.80q) error %q, want it to contain %q", tc.payload, err, tc.err)
				}
				if got != nil {
					t.Errorf("Decode(%.80q) returned events with an error: %v", tc.payload, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%.80q): %v", tc.payload, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decode(%.80q)\n got %#v\nwant %#v", tc.payload, got, tc.want)
			}
		})
	}
}

// noRecv marks a case decoded with the zero receive time.
var noRecv = time.Unix(0, 0)

func TestDecodeJSON(t *testing.T) {
	ts := utc("2026-01-05T10:00:00Z")
	runDecode(t, JSON, []decodeCase{
		{name: "object with ts", payload: `{"temperature": 81.5, "ts": "2026-01-05T10:00:00Z"}`,
			want: []Decoded{{Fields: map[string]any{"temperature": 81.5, "ts": "2026-01-05T10:00:00Z"}, Time: ts}}},
		{name: "all value kinds", payload: `{"n": -3, "s": "on", "b": true, "z": null, "o": {"x": 1}, "a": [1, "two"]}`,
			want: []Decoded{{Fields: map[string]any{"n": -3.0, "s": "on", "b": true, "z": nil,
				"o": map[string]any{"x": 1.0}, "a": []any{1.0, "two"}}, Time: recv}}},
		{name: "no time field uses recv", payload: `{"v": 1}`,
			want: []Decoded{{Fields: map[string]any{"v": 1.0}, Time: recv}}},
		{name: "empty object", payload: ` {} `, want: []Decoded{{Fields: map[string]any{}, Time: recv}}},
		{name: "time in unix seconds", payload: `{"time": 1767607200}`,
			want: []Decoded{{Fields: map[string]any{"time": 1767607200.0}, Time: ts}}},
		{name: "timestamp in ms", payload: `{"timestamp": 1767607200000}`,
			want: []Decoded{{Fields: map[string]any{"timestamp": 1767607200000.0}, Time: ts}}},
		{name: "ts wins over time", payload: `{"time": 1, "ts": 1767607200}`,
			want: []Decoded{{Fields: map[string]any{"time": 1.0, "ts": 1767607200.0}, Time: ts}}},
		{name: "named time field", payload: `{"created_at": "2026-01-05T10:00:00Z", "ts": "junk"}`, timeField: "created_at",
			want: []Decoded{{Fields: map[string]any{"created_at": "2026-01-05T10:00:00Z", "ts": "junk"}, Time: ts}}},
		{name: "named time field absent uses recv", payload: `{"ts": 1}`, timeField: "created_at",
			want: []Decoded{{Fields: map[string]any{"ts": 1.0}, Time: recv}}},
		{name: "array of objects", payload: `[{"v": 1, "ts": 1767607200}, {"v": 2}]`,
			want: []Decoded{
				{Fields: map[string]any{"v": 1.0, "ts": 1767607200.0}, Time: ts},
				{Fields: map[string]any{"v": 2.0}, Time: recv}}},
		{name: "empty array", payload: `[]`, want: []Decoded{}},
		{name: "syntax error", payload: `{"a": x}`, err: "json: invalid character 'x' looking for beginning of value at offset 7"},
		{name: "truncated", payload: `{"a": 1`, err: "json: unexpected end of JSON input"},
		{name: "trailing garbage", payload: `{"a": 1} x`, err: "json: invalid character 'x' after top-level value"},
		{name: "string", payload: `"hello"`, err: "json: want an object or an array of objects"},
		{name: "null", payload: `null`, err: "want an object"},
		{name: "number", payload: `21.5`, err: "want an object"},
		{name: "empty", payload: `  `, err: "json: empty payload"},
		{name: "array of numbers", payload: `[1, 2]`, err: "json: element 0: want an object, got a number"},
		{name: "array with null", payload: `[{"v": 1}, null]`, err: "json: element 1: want an object, got null"},
		{name: "bad time", payload: `{"ts": "yesterday"}`, err: `time field "ts": cannot parse "yesterday"`},
		{name: "bad time in array", payload: `[{}, {"ts": true}]`, err: `element 1: time field "ts": cannot parse true`},
		{name: "null time", payload: `{"time": null}`, err: `time field "time": cannot parse null`},
		{name: "no time at all", payload: `{"v": 1}`, recv: noRecv, err: "no event time"},
		{name: "too deep", payload: strings.Repeat("[", 33) + strings.Repeat("]", 33), err: "nesting deeper than 32"},
		{name: "deep object", payload: `{"a":` + strings.Repeat(`{"a":`, 32) + `1` + strings.Repeat("}", 33), err: "nesting deeper than 32"},
		{name: "brackets in strings do not count", payload: `{"a": "` + strings.Repeat("[{", 40) + `\"[["}`,
			want: []Decoded{{Fields: map[string]any{"a": strings.Repeat("[{", 40) + `"[[`}, Time: recv}}},
		{name: "too many fields", payload: manyFields(MaxFields + 1), err: "1001 fields exceed 1000"},
		{name: "number out of range", payload: `{"a": 1e400}`, err: "json: number 1e400 out of range at offset"},
		{name: "too many elements", payload: "[" + strings.Repeat("{},", MaxLines) + "{}]", err: "array of 10001 elements exceeds 10000"},
		{name: "too large", payload: `{"a": "` + strings.Repeat("x", MaxPayload) + `"}`, err: "exceeds 262144"},
	})
}

func manyFields(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"f`)
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(time.Duration(i).String())
		b.WriteString(`":1`)
	}
	b.WriteByte('}')
	return b.String()
}

func TestDecodeInflux(t *testing.T) {
	ts := utc("2026-01-05T10:00:00Z")
	runDecode(t, Influx, []decodeCase{
		{name: "tags fields timestamp", payload: "weather,site=roof,unit=c temp=21.5,hum=40i,ok=true,note=\"fine\" 1767607200000000000",
			want: []Decoded{{Fields: map[string]any{"measurement": "weather", "site": "roof", "unit": "c",
				"temp": 21.5, "hum": 40.0, "ok": true, "note": "fine"}, Time: ts}}},
		{name: "uint field", payload: "m v=7u 1767607200000000001",
			want: []Decoded{{Fields: map[string]any{"measurement": "m", "v": 7.0}, Time: ts.Add(1)}}},
		{name: "no timestamp uses recv", payload: "m v=1",
			want: []Decoded{{Fields: map[string]any{"measurement": "m", "v": 1.0}, Time: recv}}},
		{name: "timestamp zero is the epoch", payload: "m v=1 0",
			want: []Decoded{{Fields: map[string]any{"measurement": "m", "v": 1.0}, Time: time.Unix(0, 0).UTC()}}},
		{name: "a time field is not the event time by default", payload: `m ts="2020-01-01T00:00:00Z"`,
			want: []Decoded{{Fields: map[string]any{"measurement": "m", "ts": "2020-01-01T00:00:00Z"}, Time: recv}}},
		{name: "named time field without timestamp", payload: `m v=1,at=1767607200`, timeField: "at",
			want: []Decoded{{Fields: map[string]any{"measurement": "m", "v": 1.0, "at": 1767607200.0}, Time: ts}}},
		{name: "timestamp beats named time field", payload: `m at=1 1767607200000000000`, timeField: "at",
			want: []Decoded{{Fields: map[string]any{"measurement": "m", "at": 1.0}, Time: ts}}},
		{name: "field beats tag of the same name", payload: `m,v=tag v=2`,
			want: []Decoded{{Fields: map[string]any{"measurement": "m", "v": 2.0}, Time: recv}}},
		{name: "escapes", payload: `my\ m,a\,b=c\ d f\=g="q\"x"`,
			want: []Decoded{{Fields: map[string]any{"measurement": "my m", "a,b": "c d", "f=g": `q"x`}, Time: recv}}},
		{name: "several lines, blanks and comments", payload: "# header\n\nm v=1 1767607200000000000\n  \nm v=2 1767607201000000000\n",
			want: []Decoded{
				{Fields: map[string]any{"measurement": "m", "v": 1.0}, Time: ts},
				{Fields: map[string]any{"measurement": "m", "v": 2.0}, Time: ts.Add(time.Second)}}},
		{name: "no fields", payload: "m", err: "line protocol: line 1:"},
		{name: "bad second line", payload: "m v=1\nm v=", err: "line protocol: line 2:"},
		{name: "bad field value", payload: "m v=abc", err: "line protocol: line 1:"},
		{name: "bad timestamp", payload: "m v=1 12x", err: "line protocol: line 1:"},
		{name: "only comments", payload: "# nothing\n", err: "line protocol: no lines"},
		{name: "empty", payload: "", err: "line protocol: no lines"},
		{name: "no time at all", payload: "m v=1", recv: noRecv, err: "no event time"},
		{name: "bad named time field", payload: `m at="soon"`, timeField: "at", err: `line protocol: line 1: time field "at": cannot parse "soon"`},
		{name: "too many fields", payload: "m " + manyLPFields(1000), err: "line protocol: line 1: more than 1000 fields"},
		{name: "too many tags", payload: "m" + manyTags(1001) + " f=1", err: "line protocol: line 1: more than 1000 fields"},
		{name: "too many lines", payload: strings.Repeat("m v=1\n", MaxLines+1), err: "more than 10000 lines"},
	})
}

func TestDecodeValue(t *testing.T) {
	v := func(f float64) []Decoded { return []Decoded{{Fields: map[string]any{"value": f}, Time: recv}} }
	runDecode(t, Value, []decodeCase{
		{name: "decimal", payload: "21.5", want: v(21.5)},
		{name: "negative int", payload: "-3", want: v(-3)},
		{name: "exponent", payload: "1e3", want: v(1000)},
		{name: "whitespace", payload: " \t42\r\n", want: v(42)},
		{name: "plus sign", payload: "+0.5", want: v(0.5)},
		{name: "nan", payload: "NaN", err: `value: not a number: "NaN"`},
		{name: "inf", payload: "Inf", err: "value: not a number"},
		{name: "overflow", payload: "1e999", err: "value: out of range"},
		{name: "hex", payload: "0x10", err: "not a number"},
		{name: "text", payload: "hot", err: `value: not a number: "hot"`},
		{name: "two numbers", payload: "1 2", err: "not a number"},
		{name: "empty", payload: "  ", err: "value: empty payload"},
		{name: "no time", payload: "1", recv: noRecv, err: "no event time"},
	})
}

func TestDecodeAuto(t *testing.T) {
	runDecode(t, Auto, []decodeCase{
		{name: "object", payload: ` {"v": 1}`, want: []Decoded{{Fields: map[string]any{"v": 1.0}, Time: recv}}},
		{name: "array", payload: "\n[{\"v\": 1}]", want: []Decoded{{Fields: map[string]any{"v": 1.0}, Time: recv}}},
		{name: "number", payload: "21.5\n", want: []Decoded{{Fields: map[string]any{"value": 21.5}, Time: recv}}},
		{name: "line protocol", payload: "m v=1", want: []Decoded{{Fields: map[string]any{"measurement": "m", "v": 1.0}, Time: recv}}},
		{name: "bad json is a json error", payload: "{nope", err: "json: invalid character"},
		{name: "out of range number", payload: "-1e400", err: "value: out of range"},
		{name: "text is tried as line protocol", payload: "hello", err: "line protocol: line 1:"},
		{name: "empty", payload: " ", err: "empty payload"},
		{name: "too large", payload: strings.Repeat(" ", MaxPayload+1), err: "exceeds"},
	})
}

func TestDecodeUnknownFormat(t *testing.T) {
	if _, err := Decode(Format("xml"), []byte("<a/>"), "", recv); err == nil || !strings.Contains(err.Error(), `unknown format "xml"`) {
		t.Fatalf("got %v, want unknown format error", err)
	}
}

func manyTags(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, ",t%d=x", i)
	}
	return b.String()
}

func manyLPFields(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "f%d=1", i)
	}
	return b.String()
}

// TestDecodeAtLimits checks that payloads exactly at each cap still decode.
func TestDecodeAtLimits(t *testing.T) {
	tests := []struct {
		name    string
		f       Format
		payload string
		events  int
	}{
		{"json fields", JSON, manyFields(MaxFields), 1},
		{"json depth", JSON, strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth), 1},
		{"json elements", JSON, "[" + strings.Repeat("{},", MaxLines-1) + "{}]", MaxLines},
		{"line protocol fields", Influx, "m " + manyLPFields(MaxFields-1), 1},
		{"line protocol lines", Influx, strings.Repeat("m v=1\n", MaxLines), MaxLines},
		{"payload size", Auto, `{"a":"` + strings.Repeat("x", MaxPayload-8) + `"}`, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Decode(tc.f, []byte(tc.payload), "", recv)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != tc.events {
				t.Fatalf("%d events, want %d", len(evs), tc.events)
			}
		})
	}
}

// TestDecodeMapReuse: a Decoder fills one object's map again with the
// next payload (callers that keep it clone it); the package-level Decode
// returns maps of their own.
func TestDecodeMapReuse(t *testing.T) {
	d := NewDecoder()
	first, err := d.Decode(JSON, []byte(`{"x":1}`), "", recv)
	if err != nil {
		t.Fatal(err)
	}
	m := first[0].Fields
	if _, err := d.Decode(JSON, []byte(`{"x":2,"y":3}`), "", recv); err != nil {
		t.Fatal(err)
	}
	if m["x"] != 2.0 || m["y"] != 3.0 {
		t.Fatalf("the decoder's map after the next payload: %v", m)
	}
	a, _ := Decode(JSON, []byte(`{"x":1}`), "", recv)
	b, _ := Decode(JSON, []byte(`{"x":2}`), "", recv)
	if a[0].Fields["x"] != 1.0 || b[0].Fields["x"] != 2.0 {
		t.Fatalf("package-level Decode shares maps: %v %v", a[0].Fields, b[0].Fields)
	}
}
