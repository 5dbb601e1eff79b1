package engine

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/rules"
)

var recordSeeds = []string{
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
}

// FuzzParseRecord holds the fastjson reading of record lines to the
// encoding/json one: where the fast path answers, encoding/json gives the
// same message; elsewhere ParseRecord is
// encoding/json's.
func FuzzParseRecord(f *testing.F) {
	for _, s := range recordSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var p RecordParser
		got, ok := p.parseFast(line, 7)
		want, err := parseRecordStd(line, 7)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("%q: fast path read %+v, encoding/json: %v", line, got, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\nfast path     %+v (%q)\nencoding/json %+v (%q)", line, got, got.Payload, want, want.Payload)
		}
	})
}

func TestParseRecordFastPathTaken(t *testing.T) {
	for _, s := range recordSeeds[:4] {
		var p RecordParser
		if _, ok := p.parseFast([]byte(s), 1); !ok {
			t.Errorf("%s: the fast path declined a plain record", s)
		}
	}
}

// TestParseRecordOwnsPayload: ParseRecord's message outlives the line
// (callers reuse their line buffers), RecordParser's may not.
func TestParseRecordOwnsPayload(t *testing.T) {
	for _, s := range recordSeeds[:4] {
		line := []byte(s)
		m, err := ParseRecord(line, 1)
		if err != nil {
			t.Fatal(err)
		}
		want := string(m.Payload)
		for i := range line {
			line[i] = 'x'
		}
		if string(m.Payload) != want {
			t.Fatalf("%s: payload changed with the line: %q", s, m.Payload)
		}
	}
}

// recordRules mix the flat path (flatRules), the map path (a window and a
// table on dev/#), a source with its own time field and one with a format
// the parsed payload cannot take.
const recordRules = flatRules + `
  - {name: win, from: "dev/{d}/#", key: d, window: {tumbling: 1m}, aggregate: {n: count(), s: sum(x)}}
  - {name: hot, from: "dev/{d}/#", where: 'x > 5 && lookup("last", d) != nil', key: d, message: "{{x}}"}
sources:
  - {from: "dev/+/influx", format: influx}
  - {from: "dev/+/value", format: value}
  - {from: "dev/+/t", time: created, format: json}
tables:
  - {name: last, from: "dev/{d}/#", key: d}
`

var processRecordSeeds = append(append([]string{}, recordSeeds...),
	`{"topic":"shop/s1/orders","payload":{"order":"o1","customer":"c1","amount":1500.5,"qty":3,"country":"FR","express":true,"ts":1767571200000}}`,
	`{"topic":"shop/s7/orders","payload":{"amount":20,"store":"x","topic":"t"},"time":"2026-01-05T10:00:00Z"}`,
	`{"topic":"shop/s2/orders","payload":{"amount":01,"country":"FR"},"time":"2026-01-05T10:00:00Z"}`,
	`{"topic":"shop/s2/orders","payload":{"amount":1.,"country":"FR"},"time":"2026-01-05T10:00:00Z"}`,
	`{"topic":"shop/s2/orders","payload":{"amount":NaN,"country":"FR"},"time":"2026-01-05T10:00:00Z"}`,
	`{"topic":"shop/s2/orders","payload":{"amount":1e400},"time":"2026-01-05T10:00:00Z"}`,
	`{"topic":"shop/s2/orders","payload":{"amount":5,"amount":7000},"time":"2026-01-05T10:00:00Z"}`,
	`{"topic":"shop/s2/orders","payload":{"a":{"b":[1,{"c":null}]},"amount":150,"ts":"2026-01-05T10:00:00Z"}}`,
	`{"topic":"shop/s2/orders","payload":{"amount":150}}`,
	`{"topic":"shop/s2/orders","payload":{"amount":150,"ts":99999999999999999999}}`,
	`{"topic":"dev/a/t","payload":{"x":7,"created":1767571200},"time":"2026-01-05T10:00:00Z"}`,
	`{"topic":"dev/a/t","payload":{"x":7,"ts":1767571200},"time":"2026-01-05T10:00:00Z"}`,
	`{"topic":"dev/b/x","payload":{"x":9,"ts":1767571260},"time":"2026-01-05T10:00:00Z"}`,
	`{"topic":"dev/b/x","payload":{"x":9,"x":1,"ts":1767571260}}`,
	`{"topic":"dev/b/influx","payload":{"x":9}}`,
	`{"topic":"dev/b/value","payload":{"x":9}}`,
	`{"topic":"dev/b/x","payload":{"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}`,
	`{"topic":"dev/b/x","payload":{"x":9},"time":""}`,
	// nesting: 32 levels are a payload, 33 are not
	`{"topic":"dev/b/x","payload":{"x":`+strings.Repeat("[", 31)+"1"+strings.Repeat("]", 31)+`,"ts":1767571260}}`,
	`{"topic":"dev/b/x","payload":{"x":`+strings.Repeat("[", 32)+"1"+strings.Repeat("]", 32)+`,"ts":1767571260}}`,
	`{"topic":"dev/b/x","payload":{"x":`+strings.Repeat(`{"a":`, 31)+"1"+strings.Repeat("}", 31)+`,"ts":1767571260}}`,
	`{"topic":"dev/b/x","payload":{"x":`+strings.Repeat(`{"a":`, 32)+"1"+strings.Repeat("}", 32)+`,"ts":1767571260}}`,
	`{"topic":"shop/s1/orders","payload":{"x":`+strings.Repeat("[", 32)+"1"+strings.Repeat("]", 32)+`,"amount":200}}`,
	`{"topic":"dev/b/x","payload":{"x":9},"time":"2026-01-05 10:00"}`,
	`{"topic":"dev/b/x","payload":{"x":9},"time":5}`,
	`{"topic":"dev/b/x","payload":{},"time":"2026-01-05T10:00:00Z"}`,
	`{"topic":"dev/b/x","payload":{"x":9,"ts":1767571260},"extra":1}`,
	`{"topic":"dev/b/x","payload":{"x":tru,"ts":1767571260}}`,
	`{"topic":"dev/b/x","payload":{"x":-,"ts":1767571260}}`,
	`{"topic":"dev/b/x","payload":{"x":9,"ts":1767571260}}x`,
	`{"topic":"shop/s2/orders","payload":{"amount":150,"country":"F\x"}}`,
	`{"topic":"shop/s2/orders","payload":{"amount":150,"coun\try":"FR"}}`,
	`{"topic":"shop/s2/orders","payload":{"amount":150,"country":"FR"}}`+"\t",
	// the one-pass scan
	`{"payload":{"amount":150,"country":"FR"},"time":"2026-01-05T10:00:00Z","topic":"shop/s3/orders"}`,
	`{"topic":"shop/s3/orders","payload":{"amount":150},"payload":{"amount":1}}`,
	`{"topic":"shop/s3/orders","payload":{"amount":150},"time":"2026-01-05T10:00:00Z","time":""}`,
	`{"topic":"shop/s3/orders","Payload":{"amount":150}}`,
	`{"topic":"shop/s3/orders","payload":{"amount":150},}`,
	`{"topic":"shop/s3/orders","payload":{"amount":150,}}`,
	`{"topic":"shop/s3/orders","payload":{"amount":150}`,
	`{"topic":"shop/s3/orders","payload":{"amount":150} `,
	`{"topic":"shop/s3/orders" "payload":{"amount":150}}`,
	`{"topic":"shop/s3/orders","payload":{"amount":150}}}`,
	`{"topic":"shop/\u0073/orders","payload":{"amount":150}}`,
	"{\"topic\":\"shop/s3/orders\x7f\",\"payload\":{\"amount\":150,\"s\":\"\x7f\"}}",
	`{"topic":"shop/s3/orders","payload":{"amount":150,"ts":1767571200000,"x":-0,"y":1E3,"z":2.5e-3,"w":12345678901234567890}}`,
	`{"topic":"shop/s3/orders","payload":{"amount":150,"ts":1767571200000,"time":"2026-01-05T10:00:00Z"}}`,
	`{"topic":"shop/s3/orders","payload":{"amount":150,"ts":"yesterday"}}`,
	`{"topic":"dev/c/x","payload":{"x":9,"ts":1767571260,"ok":true,"no":false,"nil":null}}`,
	`{"topic":"dev/c/t","payload":{"x":9},"time":"2026-01-05T10:00:00Z"}`,
	`{"topic":"dev/c/influx","payload":{"x":9},"time":"2026-01-05T10:00:00Z"}`,
)

// FuzzProcessRecord holds ProcessRecord, which decodes the usual line from
// one parse, to Parse and Process, which decode the payload's text: the
// same alerts, errors (of the same kind) and counters, line after line.
func FuzzProcessRecord(f *testing.F) {
	for _, s := range processRecordSeeds {
		f.Add([]byte(s))
	}
	once, twice := recordEngine(f), recordEngine(f)
	var po, pt RecordParser
	seq := uint64(0)
	f.Fuzz(func(t *testing.T, line []byte) {
		seq++
		a1, err1 := once.ProcessRecord(&po, line, seq)
		var a2 []event.Alert
		m, err2 := pt.Parse(line, seq)
		if err2 == nil {
			a2, err2 = twice.Process(m)
		} else {
			err2 = &RecordError{err2}
		}
		if fmt.Sprintf("%T %v", err1, err1) != fmt.Sprintf("%T %v", err2, err2) {
			t.Fatalf("%q: ProcessRecord error %T %v, Parse+Process %T %v", line, err1, err1, err2, err2)
		}
		if !reflect.DeepEqual(a1, a2) {
			t.Fatalf("%q:\nProcessRecord %#v\nParse+Process %#v", line, a1, a2)
		}
		if once.Stats() != twice.Stats() || !reflect.DeepEqual(once.RuleStats(), twice.RuleStats()) ||
			!reflect.DeepEqual(once.DecodeErrors(), twice.DecodeErrors()) {
			t.Fatalf("%q: counters differ:\n%+v %+v %v\n%+v %+v %v", line, once.Stats(), once.RuleStats(), once.DecodeErrors(),
				twice.Stats(), twice.RuleStats(), twice.DecodeErrors())
		}
	})
}

func recordEngine(t testing.TB) *Engine {
	set, err := rules.Parse([]string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(recordRules)})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(set, Options{MaxFuture: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestProcessRecordParsesOnce: the usual lines take the one-parse way.
func TestProcessRecordParsesOnce(t *testing.T) {
	e := recordEngine(t)
	var p RecordParser
	lines := []string{
		`{"topic":"shop/s1/orders","payload":{"order":"o1","customer":"c1","amount":1500.5,"qty":3,"country":"FR","express":true,"ts":1767571200000}}`,
		`{"topic":"shop/s7/orders","payload":{"amount":20,"store":"x","topic":"t"},"time":"2026-01-05T10:00:00Z"}`,
		` { "topic" : "dev/a/t" , "payload" : { "x" : [ 7 , "}" ] , "created" : 1767571200 } } `,
		`{"topic":"dev/b/x","payload":{"x":9,"ts":1767571260},"time":"2026-01-05T10:00:00Z"}`,
	}
	for i, l := range lines {
		if _, err := e.ProcessRecord(&p, []byte(l), uint64(i)); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	if e.parsedOnce+e.scanned != uint64(len(lines)) {
		t.Fatalf("%d of %d lines parsed once, %d scanned", e.parsedOnce, len(lines), e.scanned)
	}
	// All but the nested payload in one pass.
	if e.scanned != uint64(len(lines)-1) {
		t.Fatalf("%d of %d lines scanned", e.scanned, len(lines)-1)
	}
}

// TestRecordErrors: what is wrong with a recorded line is said in the terms
// of the recording's format, never in those of Go's types.
func TestRecordErrors(t *testing.T) {
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
		_, err := ParseRecord([]byte(tc.line), 1)
		if err == nil {
			t.Errorf("%s: no error, want %q", tc.line, tc.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.line, err, tc.want)
		}
		for _, goism := range []string{"Go value", "Go struct", "engine.record", "2006-01-02", "float64", "interface {}"} {
			if strings.Contains(err.Error(), goism) {
				t.Errorf("%s: %q speaks Go (%s)", tc.line, err, goism)
			}
		}
	}
}
