package replay

import (
	"reflect"
	"strings"
	"testing"
)

var seeds = []string{
	`{"topic":"a/b","payload":{"x":1.5,"s":"t\"q"}}`,
	`{"topic":"a/b","payload":21.5,"time":"2026-01-05T10:00:00Z"}`,
	`{"topic":"a/b","payload":"temp=1 2","time":"2026-01-05T10:00:00.5+01:00"}`,
	`{"topic":"a/b","payload":[{"x":1},{"x":2}]}`,
	`{"topic":"a/b","payload": { "x" : 01 }}`,
	`{"Topic":"a/b","payload":1}`,
	`{"topic":"a/b","topic":"c","payload":1}`,
	`{"topic":"a/b","payload":null}`,
	`{"topic":"","payload":1}`,
	`{"topic":1,"payload":1}`,
	`{"topic":"a/b","payload":1,"time":"yesterday"}`,
	`{"topic":"a/b","payload":1,"time":""}`,
	`{"topic":"a/b","payload":1,"time":null}`,
	`{"topic":"a/b","payload":1} {}`,
	`{"topic":"a/\u00e9","payload":"\u00e9"}`,
	`{"topic":"a/b","payload":"a\\tb\/c","extra":[1,{"y":null}]}`,
	`{"topic":"a/b","payload":true}`,
	`["topic"]`,
	`{"topic":"a/b","payload":1e400}`,
	` { "topic" : "a/b" , "payload" : { "x" : [ 1 , "}" ] } , "time" : "2026-01-05T10:00:00Z" } `,
	`{"topic":"a\/b","payload":1}`,
	`{"topic":"a/b","payload":"x\"y"}`,
	`{"topic":"a/b","payload":{"k\"}":"\\"}}`,
	`{"topic":"a/b","payload":{"amount":150},}`,
	`{"topic":"a/b","payload":{"amount":150}`,
	"{\"topic\":\"a/b\x7f\",\"payload\":{\"s\":\"\x7f\"}}",
	"{\"topic\":\"a/b\",\"payload\":{\"s\":\"\xff\"}}",
}

// FuzzParse holds the fast reading of lines (parseFast) to encoding/json's
// (parseStd): where the fast way answers, encoding/json gives the same
// record.
func FuzzParse(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var p Parser
		got, ok := p.parseFast(line)
		want, err := parseStd(line)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("%q: fast way read %+v, encoding/json: %v", line, got, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\nfast way      %+v (%q)\nencoding/json %+v (%q)", line, got, got.Payload, want, want.Payload)
		}
	})
}

// TestParseFastWayTaken: the usual lines are read the fast way.
func TestParseFastWayTaken(t *testing.T) {
	for _, s := range append(seeds[1:4:4], seeds[11], seeds[19],
		`{"topic":"shop/s1/orders","payload":{"order":"o1","customer":"c1","amount":1500.5,"qty":3,"country":"FR","express":true,"ts":1767571200000}}`) {
		var p Parser
		if _, ok := p.parseFast([]byte(s)); !ok {
			t.Errorf("%s: the fast way declined a plain record", s)
		}
	}
}

// TestParseOwnsPayload: Parse's record outlives the line (callers reuse
// their line buffers), Parser's may not.
func TestParseOwnsPayload(t *testing.T) {
	for _, s := range seeds[:4] {
		line := []byte(s)
		r, err := Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		want := string(r.Payload)
		for i := range line {
			line[i] = 'x'
		}
		if string(r.Payload) != want {
			t.Fatalf("%s: payload changed with the line: %q", s, r.Payload)
		}
	}
}

// TestErrors: what is wrong with a recorded line is said in the terms of
// the recording's format, never in those of Go's types.
func TestErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`[1,2]`, `not a JSON object: the line is a JSON array; each line is one object such as {"topic": "sensors/d1/temp", "payload": {"temp": 21.5}}`},
		{`"x"`, `not a JSON object: the line is a string; each line is one object`},
		{`42`, `not a JSON object: the line is a number;`},
		{`{"topic": 5, "payload": 1}`, `"topic": want a string, got a number`},
		{`{"topic": true, "payload": 1}`, `"topic": want a string, got true or false`},
		{`{"topic": "a", "payload": 1, "time": 5}`, `"time": want a string, got a number`},
		{`{"topic": "a", "payload": 1, "time": ["x"]}`, `"time": want a string, got a JSON array`},
		{`{"topic": "a", "payload": 1, "time": "yesterday"}`, `"time": "yesterday" is not an RFC 3339 time such as "2026-01-05T10:00:01Z"`},
		{`not json`, `not a JSON object: invalid character 'o' in literal null (expecting 'u') (at byte 2)`},
		{`{"topic": "a",`, `not a JSON object: the line ends before the object does`},
		{`{"topic": "a", "payload": 1}}`, `trailing data after the JSON object`},
		{`{"topic": "a", "payload": 1} {}`, `trailing data after the JSON object`},
		{`{"topic": "a"}`, `missing "payload"`},
		{`{"payload": 1}`, `missing "topic"`},
	} {
		_, err := Parse([]byte(tc.line))
		if err == nil {
			t.Errorf("%s: no error, want %q", tc.line, tc.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.line, err, tc.want)
		}
		for _, goism := range []string{"Go value", "Go struct", "replay.record", "2006-01-02", "float64", "interface {}"} {
			if strings.Contains(err.Error(), goism) {
				t.Errorf("%s: %q speaks Go (%s)", tc.line, err, goism)
			}
		}
	}
}
