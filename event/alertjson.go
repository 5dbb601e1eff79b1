package event

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AppendJSON appends the alert's JSON form to b: byte for byte what
// encoding/json writes for it (json.Marshal with escapeHTML, an Encoder
// with SetEscapeHTML(false) without; no trailing newline), at a fraction
// of the cost: no reflection, and the values' common kinds (numbers,
// plain strings, booleans, null) written directly. Anything else (nested
// values, text that needs escaping, numbers in exponent form, a time out
// of JSON's range) goes through encoding/json. An error is encoding/json's
// (a NaN in the values, say).
func (a *Alert) AppendJSON(b []byte, escapeHTML bool) ([]byte, error) {
	if !jsonTime(a.Time) || a.Window != nil && (!jsonTime(a.Window.Start) || !jsonTime(a.Window.End)) {
		out, err := marshal(a, escapeHTML)
		return append(b, out...), err
	}
	b = append(b, `{"id":`...)
	b = appendString(b, a.ID, escapeHTML)
	b = append(b, `,"rule":`...)
	b = appendString(b, a.Rule, escapeHTML)
	b = append(b, `,"key":`...)
	b = appendString(b, a.Key, escapeHTML)
	b = append(b, `,"state":`...)
	b = appendString(b, string(a.State), escapeHTML)
	b = append(b, `,"severity":`...)
	b = appendString(b, a.Severity, escapeHTML)
	b = append(b, `,"time":`...)
	b = appendTime(b, a.Time)
	b = append(b, `,"message":`...)
	b = appendString(b, a.Message, escapeHTML)
	b = append(b, `,"values":`...)
	var err error
	if b, err = appendValue(b, a.Values, escapeHTML); err != nil {
		return b, err
	}
	if a.Window != nil {
		b = append(b, `,"window":{"start":`...)
		b = appendTime(b, a.Window.Start)
		b = append(b, `,"end":`...)
		b = appendTime(b, a.Window.End)
		b = append(b, '}')
	}
	if a.Trimmed {
		b = append(b, `,"trimmed":true`...)
	}
	return append(b, '}'), nil
}

// jsonTime: what time.Time's MarshalJSON writes rather than fails (a year
// of four digits, a zone offset under 24 hours).
func jsonTime(t time.Time) bool {
	_, off := t.Zone()
	if off < 0 {
		off = -off
	}
	y := t.Year()
	return y >= 0 && y <= 9999 && off/3600 < 24
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// verbatim[escapeHTML][c]: byte c stands in a JSON string as it is (and
// stays out of encoding/json's way: ASCII only).
var verbatim = func() (t [2][256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[0][c] = c != '"' && c != '\\'
		t[1][c] = t[0][c] && c != '<' && c != '>' && c != '&'
	}
	return
}()

func appendString(b []byte, s string, escapeHTML bool) []byte {
	plain := &verbatim[0]
	if escapeHTML {
		plain = &verbatim[1]
	}
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			out, _ := marshal(s, escapeHTML)
			return append(b, out...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendValue(b []byte, v any, escapeHTML bool) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return appendString(b, x, escapeHTML), nil
	case float64:
		// A whole number below 10^15 has all its digits in the shortest
		// form: as an integer it is written without the float formatter.
		if x == math.Trunc(x) && x != 0 && x > -1e15 && x < 1e15 {
			return strconv.AppendInt(b, int64(x), 10), nil
		}
		if abs := math.Abs(x); abs == 0 || abs >= 1e-6 && abs < 1e21 {
			return strconv.AppendFloat(b, x, 'f', -1, 64), nil
		}
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		// Sorted with their values: no lookup of each key afterwards.
		var few [16]member // on the stack: an alert's values are few
		members := few[:0]
		for k, v := range x {
			members = append(members, member{k, v})
		}
		sortMembers(members)
		b = append(b, '{')
		for i, m := range members {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, m.k, escapeHTML)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, m.v, escapeHTML); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	}
	out, err := marshal(v, escapeHTML)
	return append(b, out...), err
}

// member is one of a map's keys and its value.
type member struct {
	k string
	v any
}

// sortMembers sorts by key: by insertion, with the comparison inline, for
// the few members an alert's values have.
func sortMembers(ms []member) {
	if len(ms) > 16 {
		slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.k, b.k) })
		return
	}
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].k < ms[j-1].k; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// marshal is encoding/json's form of v, without the Encoder's newline.
func marshal(v any, escapeHTML bool) ([]byte, error) {
	if escapeHTML {
		return json.Marshal(v)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
