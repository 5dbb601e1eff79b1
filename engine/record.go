package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
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
	var r record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return Message{}, fmt.Errorf("not a JSON object: %v", err)
	}
	if dec.More() {
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
			return Message{}, fmt.Errorf(`"time": %v`, err)
		}
		m.Received = t.UTC()
	}
	return m, nil
}
