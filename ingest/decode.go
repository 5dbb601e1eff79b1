package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
)

// Format names how a payload is encoded.
type Format string

const (
	Auto   Format = ""       // detected per message
	JSON   Format = "json"   // an object, or an array of objects
	Influx Format = "influx" // InfluxDB line protocol
	Value  Format = "value"  // a bare number, stored in the field "value"
)

// Limits on a single payload. A device can send anything; these keep one
// bad message from costing more than a bounded amount of memory and time.
const (
	MaxPayload = 256 << 10 // bytes
	MaxDepth   = 32        // JSON nesting of objects and arrays
	MaxFields  = 1000      // fields of one event
	MaxLines   = 10000     // events of one payload (lines, array elements)
)

// ParseFormat checks a source's `format:` value; "" and "auto" mean Auto.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", "auto":
		return Auto, nil
	case string(JSON), string(Influx), string(Value):
		return Format(s), nil
	}
	return Auto, fmt.Errorf("unknown format %q (want json, influx or value)", s)
}

// Decoded is one event read from a payload: its fields and its event time.
type Decoded struct {
	Fields map[string]any
	Time   time.Time
}

var errNoTime = errors.New("no event time")

// Decode reads the events in payload. timeField names the member holding
// the event time ("" searches ts, time, timestamp); recv, the time the
// gateway received the message, is the event time of an event without one.
//
// On error no events are returned: a payload is taken whole or not at all,
// so a half-decoded batch never reaches the rules.
func Decode(f Format, payload []byte, timeField string, recv time.Time) ([]Decoded, error) {
	d := decoders.Get().(*Decoder)
	defer decoders.Put(d)
	out, err := d.Decode(f, payload, timeField, recv)
	if err != nil {
		return nil, err
	}
	return append(make([]Decoded, 0, len(out)), out...), nil
}

var decoders = sync.Pool{New: func() any {
	d := NewDecoder()
	d.fresh = true
	return d
}}

// Decode is the package-level Decode, reusing d's memory: the slice it
// returns is valid until the next call, and so is the map of a single
// JSON object's event, which the next call clears and fills again (a map
// of a dozen fields costs more to make than to fill). A caller that keeps
// an event's map past the next call clones it. Decode is the one way in:
// every format, and within JSON the one-pass way (scan.go) or
// encoding/json's, are chosen here.
func (d *Decoder) Decode(f Format, payload []byte, timeField string, recv time.Time) ([]Decoded, error) {
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("payload of %d bytes exceeds %d", len(payload), MaxPayload)
	}
	switch f {
	case JSON:
		return d.decodeJSON(payload, timeField, recv)
	case Influx:
		return decodeInflux(payload, timeField, recv)
	case Value:
		return decodeValue(payload, recv)
	case Auto:
		trimmed := skipSpace(payload)
		if len(trimmed) == 0 {
			return nil, errors.New("empty payload")
		}
		if c := trimmed[0]; c == '{' || c == '[' {
			return d.decodeJSON(payload, timeField, recv)
		}
		if v, ok := parseNumber(payload); ok {
			return valueEvent(v, recv)
		}
		return decodeInflux(payload, timeField, recv)
	}
	return nil, fmt.Errorf("unknown format %q", string(f))
}

// skipSpace drops leading JSON whitespace.
func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}

// parseNumber reads a bare decimal number; hex floats, underscores and the
// words inf and nan are not what a sensor means by a reading.
func parseNumber(payload []byte) (float64, bool) {
	s := bytes.TrimSpace(payload)
	if len(s) == 0 || len(s) > 64 {
		return 0, false
	}
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
		default:
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(string(s), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return v, true
}

func decodeValue(payload []byte, recv time.Time) ([]Decoded, error) {
	v, ok := parseNumber(payload)
	if !ok {
		s := bytes.TrimSpace(payload)
		if len(s) == 0 {
			return nil, errors.New("value: empty payload")
		}
		return nil, fmt.Errorf("value: not a number: %q", clip(string(s)))
	}
	return valueEvent(v, recv)
}

func valueEvent(v float64, recv time.Time) ([]Decoded, error) {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil, errors.New("value: out of range")
	}
	if recv.IsZero() {
		return nil, errNoTime
	}
	return []Decoded{{Fields: map[string]any{"value": v}, Time: recv.UTC()}}, nil
}

func (d *Decoder) decodeJSON(payload []byte, timeField string, recv time.Time) ([]Decoded, error) {
	// The usual payload, an object of plain members, in one pass (scan.go).
	if b := skipSpace(payload); len(b) > 0 && b[0] == '{' {
		if m, n, ok := d.scanObject(b); ok && len(skipSpace(b[n:])) == 0 {
			ev, err := jsonEvent(m, timeField, recv)
			if err != nil {
				return nil, err
			}
			d.out = append(d.out[:0], ev)
			return d.out, nil
		}
	}
	return decodeJSONStd(payload, timeField, recv)
}

// decodeJSONStd decodes with encoding/json: the reference the fast path is
// fuzzed against, the path for payloads the fast path leaves alone (non-
// ASCII text, \u escapes), and the source of error messages.
func decodeJSONStd(payload []byte, timeField string, recv time.Time) ([]Decoded, error) {
	if err := checkDepth(payload); err != nil {
		return nil, err
	}
	// Unmarshalling into an interface takes encoding/json's reflection-free
	// path (objectInterface): a third faster than into a map[string]any.
	var v any
	if err := json.Unmarshal(payload, &v); err != nil {
		if len(skipSpace(payload)) == 0 {
			return nil, errors.New("json: empty payload")
		}
		return nil, jsonError(err)
	}
	return jsonValue(v, timeField, recv)
}

func jsonValue(v any, timeField string, recv time.Time) ([]Decoded, error) {
	switch x := v.(type) {
	case map[string]any:
		d, err := jsonEvent(x, timeField, recv)
		if err != nil {
			return nil, err
		}
		return []Decoded{d}, nil
	case []any:
		return jsonBatch(x, timeField, recv)
	}
	return nil, fmt.Errorf("json: want an object or an array of objects, got %s", describe(v))
}

// jsonBatch reads a top-level array of objects, one event each: devices
// that buffer while offline send their backlog this way.
func jsonBatch(arr []any, timeField string, recv time.Time) ([]Decoded, error) {
	if len(arr) > MaxLines {
		return nil, fmt.Errorf("json: array of %d elements exceeds %d", len(arr), MaxLines)
	}
	out := make([]Decoded, 0, len(arr))
	for i, el := range arr {
		m, ok := el.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("json: element %d: want an object, got %s", i, describe(el))
		}
		d, err := jsonEvent(m, timeField, recv)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func jsonEvent(m map[string]any, timeField string, recv time.Time) (Decoded, error) {
	if len(m) > MaxFields {
		return Decoded{}, fmt.Errorf("json: %d fields exceed %d", len(m), MaxFields)
	}
	t, err := eventTime(m, timeField, recv)
	if err != nil {
		return Decoded{}, err
	}
	return Decoded{Fields: m, Time: t}, nil
}

// jsonError shortens encoding/json's errors to what a log line needs.
func jsonError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("json: %s at offset %d", se.Error(), se.Offset)
	}
	// Decoding into an interface, only a number too large for float64
	// can mismatch its type.
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("json: %s out of range at offset %d", te.Value, te.Offset)
	}
	return fmt.Errorf("json: %w", err)
}

// checkDepth rejects JSON nested deeper than MaxDepth before encoding/json
// sees it (its own limit is 10,000 levels, enough to cost megabytes of
// maps). It only tracks strings and brackets; syntax is left to
// encoding/json.
func checkDepth(b []byte) error {
	// bytes.Count is vectorised: most payloads hold too few brackets to
	// nest that deep, and skip the byte-by-byte scan.
	if bytes.Count(b, []byte{'{'})+bytes.Count(b, []byte{'['}) <= MaxDepth {
		return nil
	}
	depth, inStr, esc := 0, false, false
	for i, c := range b {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
			if depth > MaxDepth {
				return fmt.Errorf("json: nesting deeper than %d at offset %d", MaxDepth, i)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}
