package engine

import (
	"reflect"
	"testing"
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
