// Package replay reads the input of `vigil replay`: recorded messages, one
// JSON object a line (topic, payload, time; docs/rules.md). Each line
// becomes a Record, which the replay command hands to the engine as a
// message like any other: the engine knows nothing of this format.
//
// It imports only the standard library and fastjson; it must not import
// engine, ingest or rules.
package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/valyala/fastjson"
)

// Record is one recorded message.
type Record struct {
	Topic string
	// Payload is the MQTT payload: the JSON text of an object or number
	// payload, the text itself of a string payload.
	Payload []byte
	// Received is the line's "time", zero when it has none: when the
	// gateway received the message, and its event time when the payload
	// carries none.
	Received time.Time
}

// record is a line as encoding/json reads it.
type record struct {
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
	Time    string          `json:"time"`
}

// Parse reads one line; its Record owns its memory.
func Parse(line []byte) (Record, error) {
	var p Parser
	r, err := p.Parse(line)
	if err == nil {
		r.Payload = bytes.Clone(r.Payload)
	}
	return r, err
}

// Parser is Parse for a stream of lines: it keeps the topics it has seen,
// so a recording's few topics are not allocated line after line, and the
// Record's Payload may share line's memory. The zero value is ready.
type Parser struct {
	topics map[string]string
}

// maxTopics bounds a Parser's topics.
const maxTopics = 4096

// Parse reads one line. An error says what is wrong with it in the terms
// of the recording's format.
func (p *Parser) Parse(line []byte) (Record, error) {
	if r, ok := p.parseFast(line); ok {
		return r, nil
	}
	return parseStd(line)
}

func (p *Parser) topic(t []byte) string {
	if s, ok := p.topics[string(t)]; ok {
		return s
	}
	s := string(t)
	if p.topics == nil {
		p.topics = map[string]string{}
	}
	if len(p.topics) < maxTopics {
		p.topics[s] = s
	}
	return s
}

// parseFast reads the usual line without encoding/json's reflection: an
// object with exactly "topic", "payload" and maybe "time", all of it
// printable ASCII without a single escape. For such text fastjson's
// validator is as strict as encoding/json, so once it has passed the line
// its top-level members are found by one scan, and the payload is the
// member's text as it stands, as encoding/json's RawMessage keeps it.
// Anything else (other spellings encoding/json would match, a repeated
// name, escapes, other bytes, any error) is parseStd's, which gives its own
// result and error messages. FuzzParse holds the two to the same result.
func (p *Parser) parseFast(line []byte) (Record, bool) {
	if !plain(line) || fastjson.ValidateBytes(line) != nil {
		return Record{}, false
	}
	var topic, payload, tm []byte
	ok := topMembers(line, func(k, v []byte) bool {
		var slot *[]byte
		switch string(k) {
		case "topic":
			slot = &topic
		case "payload":
			slot = &payload
		case "time":
			slot = &tm
		default:
			return false // encoding/json matches names case-insensitively, and ignores others
		}
		if *slot != nil {
			return false // repeated
		}
		*slot = v
		return true
	})
	if !ok || len(topic) < 3 || topic[0] != '"' || payload == nil {
		return Record{}, false
	}
	r := Record{Topic: p.topic(topic[1 : len(topic)-1])}
	switch payload[0] {
	case '"':
		r.Payload = payload[1 : len(payload)-1]
	case 'n': // null
		return Record{}, false
	default:
		r.Payload = payload
	}
	if tm != nil {
		if tm[0] != '"' {
			return Record{}, false
		}
		if b := tm[1 : len(tm)-1]; len(b) > 0 {
			t, err := time.Parse(time.RFC3339Nano, string(b))
			if err != nil {
				return Record{}, false
			}
			r.Received = t.UTC()
		}
	}
	return r, true
}

// plain reports whether b is printable ASCII (space to DEL) without a
// backslash: text that every JSON reader reads the same way.
func plain(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return false
		}
	}
	return true
}

// topMembers calls fn with the raw name and value text of each member of
// the JSON object in b, which must be valid JSON without escapes; false if
// b is not an object or fn said stop.
func topMembers(b []byte, fn func(k, v []byte) bool) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	for i < len(b) && b[i] != '}' {
		ks := i + 1
		i = stringEnd(b, i)
		k := b[ks : i-1]
		i = skipWS(b, i)
		i = skipWS(b, i+1) // the colon
		vs := i
		for depth := 0; i < len(b); i++ {
			c := b[i]
			if !structural[c] {
				continue
			}
			if c == '"' {
				i = stringEnd(b, i) - 1
				continue
			}
			if c == '{' || c == '[' {
				depth++
			} else if c == '}' || c == ']' {
				if depth == 0 {
					break
				}
				depth--
			} else if c == ',' && depth == 0 {
				break
			}
		}
		v := bytes.TrimRight(b[vs:i], " \t\r\n")
		if !fn(k, v) {
			return false
		}
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return true
}

// structural marks the bytes that matter to topMembers' value scan.
var structural = func() (t [256]bool) {
	for _, c := range []byte(`"{}[],`) {
		t[c] = true
	}
	return
}()

// stringEnd returns the index after the JSON string (without escapes)
// starting at b[i].
func stringEnd(b []byte, i int) int {
	if j := bytes.IndexByte(b[i+1:], '"'); j >= 0 {
		return i + 1 + j + 1
	}
	return len(b)
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// parseStd is Parse by encoding/json: the reference, and the source of
// error messages.
func parseStd(line []byte) (Record, error) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return Record{}, decodeError(err)
	}
	if len(bytes.TrimSpace(line[dec.InputOffset():])) > 0 {
		return Record{}, errors.New("trailing data after the JSON object")
	}
	if r.Topic == "" {
		return Record{}, errors.New(`missing "topic"`)
	}
	out := Record{Topic: r.Topic}
	p := bytes.TrimSpace(r.Payload)
	switch {
	case len(p) == 0 || bytes.Equal(p, []byte("null")):
		return Record{}, errors.New(`missing "payload"`)
	case p[0] == '"':
		var s string
		if err := json.Unmarshal(p, &s); err != nil {
			return Record{}, fmt.Errorf("payload: %v", err)
		}
		out.Payload = []byte(s)
	default:
		out.Payload = p
	}
	if r.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, r.Time)
		if err != nil {
			return Record{}, fmt.Errorf(`"time": %q is not an RFC 3339 time such as "2026-01-05T10:00:01Z"`, r.Time)
		}
		out.Received = t.UTC()
	}
	return out, nil
}

// decodeError says what is wrong with a line in the terms of the
// recording's format (a JSON object with "topic", "payload" and "time"),
// not in those of the Go types that read it.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf(`not a JSON object: the line is %s; each line is one object such as {"topic": "sensors/d1/temp", "payload": {"temp": 21.5}}`, jsonKind(te.Value))
		}
		return fmt.Errorf("%q: want a string, got %s", te.Field, jsonKind(te.Value))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("not a JSON object: the line ends before the object does")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("not a JSON object: %v (at byte %d)", err, se.Offset)
	}
	return fmt.Errorf("not a JSON object: %v", err)
}

// jsonKind names a JSON value's kind as encoding/json's UnmarshalTypeError
// gives it ("array", "number", "number 1.5", "bool", "string", "object").
func jsonKind(v string) string {
	switch kind, _, _ := strings.Cut(v, " "); kind {
	case "array":
		return "a JSON array"
	case "object":
		return "a JSON object"
	case "number":
		return "a number"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	}
	return v
}
