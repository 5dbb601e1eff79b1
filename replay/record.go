// Package replay reads the input of `vigil replay`: recorded messages, one
// JSON object a line (topic, payload, time; docs/rules.md). Each line
// becomes a Record, which the replay command hands to the engine as a
// message like any other: the engine knows nothing of this format.
//
// It imports only the standard library; it must not import engine, ingest
// or rules.
package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
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

// parseFast reads the usual line in one pass, without encoding/json's
// reflection: an object with exactly the members "topic", "payload" and
// maybe "time", all of it printable ASCII without a single escape. It
// checks the JSON grammar itself as it goes (scanValue), as strictly as
// encoding/json, and the payload is the member's text as it stands, as
// encoding/json's RawMessage keeps it. Anything else (other spellings
// encoding/json would match, a repeated name, escapes, other bytes,
// nesting deeper than maxDepth, any error) is parseStd's, which gives its
// own result and error messages. FuzzParse holds the two to the same
// result.
func (p *Parser) parseFast(line []byte) (Record, bool) {
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return Record{}, false
	}
	var topic, payload, tm []byte
	for i = skipWS(line, i+1); ; {
		k, j, ok := plainString(line, i)
		if !ok {
			return Record{}, false
		}
		if i = skipWS(line, j); i >= len(line) || line[i] != ':' {
			return Record{}, false
		}
		i = skipWS(line, i+1)
		var slot *[]byte
		switch string(k) {
		case "topic":
			slot = &topic
		case "payload":
			slot = &payload
		case "time":
			slot = &tm
		default:
			return Record{}, false // encoding/json matches names case-insensitively, and ignores others
		}
		if *slot != nil {
			return Record{}, false // repeated
		}
		if j, ok = scanValue(line, i, 0); !ok {
			return Record{}, false
		}
		*slot = line[i:j]
		if i = skipWS(line, j); i >= len(line) {
			return Record{}, false
		}
		if line[i] == '}' {
			break
		}
		if line[i] != ',' {
			return Record{}, false
		}
		i = skipWS(line, i+1)
	}
	if skipWS(line, i+1) != len(line) || len(topic) < 3 || topic[0] != '"' || payload == nil {
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

// maxDepth is the deepest nesting parseFast reads; deeper lines are
// parseStd's.
const maxDepth = 64

// plainByte marks the bytes a string may hold for parseFast: printable
// ASCII (and DEL) but the quote and the backslash, read the same by every
// JSON reader.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

// plainString reads the JSON string at b[i] if it holds only plainByte
// bytes, returning its text and the index after it.
func plainString(b []byte, i int) (s []byte, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	j := i + 1
	for j < len(b) && plainByte[b[j]] {
		j++
	}
	if j >= len(b) || b[j] != '"' {
		return nil, 0, false
	}
	return b[i+1 : j], j + 1, true
}

// scanValue checks the JSON value at b[i] (strings of plainByte bytes
// only, nesting up to maxDepth) and returns the index after it.
func scanValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		_, j, ok := plainString(b, i)
		return j, ok
	case c == '{' || c == '[':
		if depth == maxDepth {
			return 0, false
		}
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		if i = skipWS(b, i+1); i < len(b) && b[i] == end {
			return i + 1, true
		}
		for {
			if c == '{' {
				_, j, ok := plainString(b, i)
				if !ok {
					return 0, false
				}
				if i = skipWS(b, j); i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = skipWS(b, i+1)
			}
			j, ok := scanValue(b, i, depth+1)
			if !ok {
				return 0, false
			}
			if i = skipWS(b, j); i >= len(b) {
				return 0, false
			}
			if b[i] == end {
				return i + 1, true
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipWS(b, i+1)
		}
	case c == '-' || c >= '0' && c <= '9':
		return scanNumber(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	}
	return 0, false
}

func literal(b []byte, i int, word string) (int, bool) {
	if len(b)-i >= len(word) && string(b[i:i+len(word)]) == word {
		return i + len(word), true
	}
	return 0, false
}

// scanNumber reads a number as RFC 8259 writes one:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// digits returns the index after the digits from b[i] on.
func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
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
