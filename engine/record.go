package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/valyala/fastjson"
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/ingest"
)

// Record is one line of recorded messages (the input of `vigil replay`).
type record struct {
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
	Time    string          `json:"time"`
}

// ParseRecord decodes one recorded-message line: a JSON object or number
// payload is the JSON text of the MQTT payload; a JSON string is the raw
// payload text itself.
func ParseRecord(line []byte, seq uint64) (Message, error) {
	var p RecordParser
	m, err := p.Parse(line, seq)
	if err == nil {
		m.Payload = bytes.Clone(m.Payload)
	}
	return m, err
}

// RecordParser is ParseRecord for a stream of lines: it keeps the topics it
// has seen, so a recording's few topics are not allocated line after line,
// and the Message's Payload may share line's memory (ParseRecord's never
// does).
type RecordParser struct {
	topics map[string]string
	json   fastjson.Parser // parseOnce's
}

// maxRecordTopics bounds a RecordParser's topics.
const maxRecordTopics = 4096

// Parse is ParseRecord.
func (p *RecordParser) Parse(line []byte, seq uint64) (Message, error) {
	if m, ok := p.parseFast(line, seq); ok {
		return m, nil
	}
	return parseRecordStd(line, seq)
}

func (p *RecordParser) topic(t []byte) string {
	if s, ok := p.topics[string(t)]; ok {
		return s
	}
	s := string(t)
	if p.topics == nil {
		p.topics = map[string]string{}
	}
	if len(p.topics) < maxRecordTopics {
		p.topics[s] = s
	}
	return s
}

// parseRecordFast reads the usual record line without decoding it twice:
// an object with exactly "topic", "payload" and maybe "time", plain ASCII,
// topic and time without escapes. Once fastjson's strict validator has
// passed the line, its top-level members are found by one scan, and the
// payload is the member's text as it stands, as encoding/json's RawMessage
// keeps it; the engine decodes it once. Anything else (other spellings
// encoding/json would match, repeated keys, escapes where they matter,
// non-ASCII text, any error) is parseRecordStd's, which then gives its own
// result and error messages; FuzzParseRecord holds the two to the same
// result.
func (p *RecordParser) parseFast(line []byte, seq uint64) (Message, bool) {
	if plain, _ := ingest.PlainJSON(line); !plain || fastjson.ValidateBytes(line) != nil {
		return Message{}, false
	}
	var topic, payload, tm []byte
	ok := topMembers(line, func(k, v []byte) bool {
		slot := recordMember(k, &topic, &payload, &tm)
		if slot == nil {
			// encoding/json matches field names case-insensitively.
			return !bytes.EqualFold(k, []byte("topic")) && !bytes.EqualFold(k, []byte("payload")) && !bytes.EqualFold(k, []byte("time"))
		}
		if *slot != nil {
			return false // repeated
		}
		*slot = v
		return true
	})
	if !ok || topic == nil || payload == nil {
		return Message{}, false
	}
	t, ok := plainString(topic)
	if !ok || len(t) == 0 {
		return Message{}, false
	}
	m := Message{Topic: p.topic(t), Seq: seq}
	switch payload[0] {
	case '"':
		b, ok := plainString(payload)
		if !ok {
			return Message{}, false
		}
		m.Payload = b
	case 'n': // null
		return Message{}, false
	default:
		m.Payload = payload
	}
	if tm != nil {
		b, ok := plainString(tm)
		if !ok {
			return Message{}, false
		}
		if m.Received, ok = received(b); !ok {
			return Message{}, false
		}
	}
	return m, true
}

// parseOnce reads a record line scan declined (its payload nested, say)
// with one fastjson parse and leaves its payload, a JSON object, parsed
// for the decoder (ProcessRecord): exactly the members topic, payload and maybe time, in
// text PlainJSON calls plain and without a single escape. In such text
// fastjson's parser accepts nothing its strict validator rejects but
// numbers (01, 1., NaN), and the only numbers are the payload's, each of
// which the decoder checks or declines. The payload value is valid until
// the next call. Anything else is for Parse.
func (p *RecordParser) parseOnce(line []byte, seq uint64) (Message, *fastjson.Value, bool) {
	if len(line) > ingest.MaxPayload {
		return Message{}, nil, false
	}
	if plain, esc := ingest.PlainJSON(line); !plain || esc {
		return Message{}, nil, false
	}
	v, err := p.json.ParseBytes(line)
	if err != nil {
		return Message{}, nil, false
	}
	o, err := v.Object()
	if err != nil {
		return Message{}, nil, false
	}
	var topic, payload, tm *fastjson.Value
	ok := true
	o.Visit(func(k []byte, v *fastjson.Value) {
		slot := recordMember(k, &topic, &payload, &tm)
		if slot == nil {
			ok = false
			return
		}
		if *slot != nil {
			ok = false // repeated
		}
		*slot = v
	})
	if !ok || topic == nil || payload == nil || topic.Type() != fastjson.TypeString || payload.Type() != fastjson.TypeObject {
		return Message{}, nil, false
	}
	t, _ := topic.StringBytes()
	if len(t) == 0 {
		return Message{}, nil, false
	}
	m := Message{Topic: p.topic(t), Seq: seq}
	if tm != nil {
		b, err := tm.StringBytes()
		if err != nil {
			return Message{}, nil, false
		}
		var ok bool
		if m.Received, ok = received(b); !ok {
			return Message{}, nil, false
		}
	}
	return m, payload, true
}

// scan reads the commonest record line in one pass: a JSON object of
// exactly the members topic, payload and maybe time, the topic and time
// strings of plain text (ingest.RawString: printable ASCII, no escape),
// the payload a flat object that dec.ScanFlat reads into its fields as it
// goes. It checks the whole line as strictly as encoding/json; anything
// else it declines, for parseOnce or Parse.
func (p *RecordParser) scan(dec *ingest.Decoder, line []byte, seq uint64) (Message, bool) {
	if len(line) > ingest.MaxPayload {
		return Message{}, false
	}
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return Message{}, false
	}
	var topic, tm []byte
	var payload bool
	for i = skipWS(line, i+1); ; {
		k, j := recordKey(line, i)
		if i = skipWS(line, j); i >= len(line) || line[i] != ':' {
			return Message{}, false
		}
		i = skipWS(line, i+1)
		var ok bool
		switch k {
		case keyTopic:
			if topic != nil {
				return Message{}, false
			}
			topic, i, ok = ingest.RawString(line, i)
		case keyTime:
			if tm != nil {
				return Message{}, false
			}
			tm, i, ok = ingest.RawString(line, i)
		case keyPayload:
			if payload {
				return Message{}, false
			}
			var n int
			n, ok = dec.ScanFlat(line[i:])
			payload, i = true, i+n
		default:
			ok = false
		}
		if !ok {
			return Message{}, false
		}
		if i = skipWS(line, i); i >= len(line) {
			return Message{}, false
		}
		if line[i] == '}' {
			break
		}
		if line[i] != ',' {
			return Message{}, false
		}
		i = skipWS(line, i+1)
	}
	if skipWS(line, i+1) != len(line) || len(topic) == 0 || !payload {
		return Message{}, false
	}
	rt, ok := received(tm)
	if !ok {
		return Message{}, false
	}
	return Message{Topic: p.topic(topic), Seq: seq, Received: rt}, true
}

// received reads a record's time member, the text of a JSON string
// without escapes: zero when empty, ok=false when it is not RFC 3339
// (Parse then gives the error).
func received(b []byte) (time.Time, bool) {
	if len(b) == 0 {
		return time.Time{}, true
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	return t.UTC(), err == nil
}

// The names of a record's members and their closing quotes, as
// little-endian words: recordKey compares them at once.
var (
	wordTopic   = binary.LittleEndian.Uint64([]byte(`"topic"` + "\x00"))
	wordTime    = binary.LittleEndian.Uint64([]byte(`"time"` + "\x00\x00"))
	wordPayload = binary.LittleEndian.Uint64([]byte(`"payload`))
)

// A record's members, as recordKey tells them.
const (
	keyOther = iota
	keyTopic
	keyPayload
	keyTime
)

// recordKey reads the member name at b[i] and returns which of a record's
// it is (keyOther for any other name, or none) and the index after it.
func recordKey(b []byte, i int) (int, int) {
	if i+9 <= len(b) {
		switch w := binary.LittleEndian.Uint64(b[i:]); {
		case w&(1<<56-1) == wordTopic:
			return keyTopic, i + 7
		case w&(1<<48-1) == wordTime:
			return keyTime, i + 6
		case w == wordPayload && b[i+8] == '"':
			return keyPayload, i + 9
		}
	}
	k, j, ok := ingest.RawString(b, i)
	switch {
	case !ok:
	case string(k) == "topic":
		return keyTopic, j
	case string(k) == "payload":
		return keyPayload, j
	case string(k) == "time":
		return keyTime, j
	}
	return keyOther, len(b)
}

// RecordError is a line that is not a recorded message.
type RecordError struct{ Err error }

func (r *RecordError) Error() string { return r.Err.Error() }
func (r *RecordError) Unwrap() error { return r.Err }

// ProcessRecord is RecordParser.Parse and Process for one recorded line,
// the loop of `vigil replay`; a line that is not a record returns a
// *RecordError. The usual line, its payload a flat object, is read in one
// pass straight into the decoder's fields (scan); one with a nested
// payload is parsed once (parseOnce), its payload decoded from that parse
// rather than from its text. Whatever these ways decline goes the way of
// Parse and Process, before anything is counted. FuzzProcessRecord holds
// the ways to the same alerts, errors and counters.
func (e *Engine) ProcessRecord(p *RecordParser, line []byte, seq uint64) ([]event.Alert, error) {
	if m, ok := p.scan(e.dec, line, seq); ok {
		if alerts, ok, err := e.process(m, nil, true); ok {
			return alerts, err
		}
	}
	if m, v, ok := p.parseOnce(line, seq); ok {
		if alerts, ok, err := e.process(m, v, false); ok {
			return alerts, err
		}
	}
	m, err := p.Parse(line, seq)
	if err != nil {
		return nil, &RecordError{err}
	}
	return e.Process(m)
}

// recordMember is where a record line's member named k goes: topic,
// payload or time; nil for any other name.
func recordMember[T any](k []byte, topic, payload, tm *T) *T {
	switch string(k) {
	case "topic":
		return topic
	case "payload":
		return payload
	case "time":
		return tm
	}
	return nil
}

// plainString returns a JSON string's text if it has no escapes.
func plainString(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 {
		return nil, false
	}
	return v[1 : len(v)-1], true
}

// topMembers calls fn with the raw name and value text of each member of
// the JSON object in b, which must be valid JSON; false if b is not an
// object or fn said stop.
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

// stringEnd returns the index after the JSON string starting at b[i].
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// parseRecordStd is ParseRecord by encoding/json: the reference, and the
// source of error messages.
func parseRecordStd(line []byte, seq uint64) (Message, error) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return Message{}, recordDecodeError(err)
	}
	if len(bytes.TrimSpace(line[dec.InputOffset():])) > 0 {
		return Message{}, errors.New("trailing data after the JSON object")
	}
	if r.Topic == "" {
		return Message{}, errors.New(`missing "topic"`)
	}
	m := Message{Topic: r.Topic, Seq: seq}
	p := bytes.TrimSpace(r.Payload)
	switch {
	case len(p) == 0 || bytes.Equal(p, []byte("null")):
		return Message{}, errors.New(`missing "payload"`)
	case p[0] == '"':
		var s string
		if err := json.Unmarshal(p, &s); err != nil {
			return Message{}, fmt.Errorf("payload: %v", err)
		}
		m.Payload = []byte(s)
	default:
		m.Payload = p
	}
	if r.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, r.Time)
		if err != nil {
			return Message{}, fmt.Errorf(`"time": %q is not an RFC 3339 time such as "2026-01-05T10:00:01Z"`, r.Time)
		}
		m.Received = t.UTC()
	}
	return m, nil
}

// recordDecodeError says what is wrong with a line in the terms of the
// recording's format (a JSON object with "topic", "payload" and "time"),
// not in those of the Go types that read it.
func recordDecodeError(err error) error {
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
