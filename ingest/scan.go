package ingest

import (
	"encoding/binary"
	"strconv"
	"time"
)

// The one-pass way for the usual payload inside a larger document (a
// recorded line): the text is scanned once, strictly, and its members go
// straight into the decoder's flat fields, with no parse tree in between.
// It takes a flat object only (names and string values of plain text,
// numbers, true, false, null) and declines everything else, which the
// fastjson way or encoding/json then decodes: nesting, escapes, non-ASCII
// text, a repeated name, a number out of range. FuzzScanFlat holds it to
// encoding/json.

// rawByte marks the bytes a JSON string may hold as they stand, read the
// same by every decoder: printable ASCII (and DEL) but the quote and the
// backslash.
var rawByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

// rawText reports whether s can stand in JSON text between quotes as it is.
func rawText[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if !rawByte[s[i]] {
			return false
		}
	}
	return true
}

// RawString reads the JSON string at b[i] if its text stands as it is
// (no escape, printable ASCII: what every decoder reads the same way),
// returning that text and the index after the string.
func RawString(b []byte, i int) (s []byte, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	j := i + 1
	for j < len(b) && rawByte[b[j]] {
		j++
	}
	if j >= len(b) || b[j] != '"' {
		return nil, 0, false
	}
	return b[i+1 : j], j + 1, true
}

// ScanFlat reads the JSON object at the start of b into the decoder's
// flat fields (see ScannedEvents) and returns the index after it; the
// caller checks what follows. ok=false: it declined (invalid JSON, or
// anything but a flat object of plain text), and the caller decodes the
// payload another way. The caller vouches for what Decode checks on the
// whole text: the object is at most MaxPayload bytes.
func (d *Decoder) ScanFlat(b []byte) (end int, ok bool) {
	if len(b) == 0 || b[0] != '{' {
		return 0, false
	}
	d.gen++
	d.fk, d.fv = d.fk[:0], d.fv[:0]
	d.times = [len(timeFields)]int32{}
	i := skipWSAt(b, 1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' || len(d.fk) == MaxFields {
			return 0, false
		}
		n, j := d.scanName(b, i+1)
		if n == nil || n.gen == d.gen { // unreadable, or repeated: the map decides which counts
			return 0, false
		}
		n.gen = d.gen
		if n.timeRank != 0 {
			d.times[n.timeRank-1] = int32(len(d.fk) + 1)
		}
		if i = skipWSAt(b, j); i >= len(b) || b[i] != ':' {
			return 0, false
		}
		v, j, ok := d.scanValue(b, skipWSAt(b, i+1))
		if !ok {
			return 0, false
		}
		d.fk = append(d.fk, n.s)
		d.fv = append(d.fv, v)
		if i = skipWSAt(b, j); i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipWSAt(b, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// ScannedEvents is DecodeFlat (flat) or Decode for the object ScanFlat
// read last: the same events, or the same error.
func (d *Decoder) ScannedEvents(timeField string, recv time.Time, flat bool) ([]Decoded, error) {
	if flat && timeField == "" {
		// eventTime, without looking for the names again.
		name, v, ok := "", any(nil), false
		for r, at := range d.times {
			if at != 0 {
				name, v, ok = timeFields[r], d.fv[at-1], true
				break
			}
		}
		t, err := timeOf(name, v, ok, recv)
		if err != nil {
			return nil, err
		}
		d.out = append(d.out[:0], Decoded{Time: t, Flat: true, Keys: d.fk, Vals: d.fv})
		return d.out, nil
	}
	if flat {
		return d.fastEvents(nil, true, timeField, recv)
	}
	m := make(map[string]any, len(d.fk)+extraFields)
	for i, k := range d.fk {
		m[k] = d.fv[i]
	}
	return d.fastEvents(m, false, timeField, recv)
}

// skipWSAt returns the index of the first byte from b[i] on that is not
// JSON whitespace.
func skipWSAt(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanName reads the member name whose text starts at b[i] (after its
// quote), returning it interned and the index after its closing quote; nil
// if it is not plain text or the table of names is full. A device sends
// the same names in the same order: the name at this place last time is
// tried first, without hashing.
func (d *Decoder) scanName(b []byte, i int) (*name, int) {
	k := len(d.fk)
	if k < len(d.shape) {
		n := d.shape[k]
		if n.mask != 0 && i+8 <= len(b) {
			if binary.LittleEndian.Uint64(b[i:])&n.mask == n.quoted {
				return n, i + len(n.s) + 1
			}
		} else if e := i + len(n.s); n.raw && e < len(b) && b[e] == '"' && string(b[i:e]) == n.s {
			return n, e + 1
		}
	}
	j := i
	for j < len(b) && rawByte[b[j]] {
		j++
	}
	if j >= len(b) || b[j] != '"' {
		return nil, 0
	}
	n := d.intern(b[i:j])
	if n == nil {
		return nil, 0
	}
	d.shape = append(d.shape[:min(k, len(d.shape))], n)
	return n, j + 1
}

// scanValue reads the value at b[i]: a string of plain text, a number,
// true, false or null, returning it as encoding/json decodes it into an
// interface and the index after it.
func (d *Decoder) scanValue(b []byte, i int) (any, int, bool) {
	if i >= len(b) {
		return nil, 0, false
	}
	switch c := b[i]; {
	case c == '"':
		s, j, ok := RawString(b, i)
		if !ok {
			return nil, 0, false
		}
		return d.str(s), j, true
	case c == '-' || c-'0' <= 9:
		return d.scanNumber(b, i)
	case c == 't':
		if len(b)-i >= 4 && string(b[i:i+4]) == "true" {
			return true, i + 4, true
		}
	case c == 'f':
		if len(b)-i >= 5 && string(b[i:i+5]) == "false" {
			return false, i + 5, true
		}
	case c == 'n':
		if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
			return nil, i + 4, true
		}
	}
	return nil, 0, false
}

// scanNumber reads the number at b[i] as RFC 8259 writes one,
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, converting it as
// strconv.ParseFloat does: exactly by one division when it has no
// exponent and its digits are below 10^15 (Clinger's fast path, as
// simpleFloat), else by strconv. Out of float64's range: declined.
func (d *Decoder) scanNumber(b []byte, i int) (any, int, bool) {
	start := i
	neg := b[i] == '-'
	if neg {
		i++
	}
	var mant uint64
	switch {
	case i >= len(b):
		return nil, 0, false
	case b[i] == '0':
		i++
	case b[i]-'1' <= 8:
		for ; i < len(b) && b[i]-'0' <= 9; i++ {
			mant = mant*10 + uint64(b[i]-'0')
		}
	default:
		return nil, 0, false
	}
	ndigits := i - start
	if neg {
		ndigits--
	}
	frac := 0
	if i < len(b) && b[i] == '.' {
		i++
		fs := i
		for ; i < len(b) && b[i]-'0' <= 9; i++ {
			mant = mant*10 + uint64(b[i]-'0')
		}
		if frac = i - fs; frac == 0 {
			return nil, 0, false
		}
		ndigits += frac
	}
	exp := false
	if i < len(b) && b[i]|0x20 == 'e' {
		exp = true
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		es := i
		for i < len(b) && b[i]-'0' <= 9 {
			i++
		}
		if i == es {
			return nil, 0, false
		}
	}
	// At most 19 digits cannot overflow mant; below 10^15 it is exact.
	if !exp && ndigits <= 19 && mant < 1e15 && frac < len(pow10) {
		f := float64(mant) / pow10[frac]
		if neg {
			f = -f
		}
		return d.boxFloat(f), i, true
	}
	f, err := strconv.ParseFloat(string(b[start:i]), 64)
	if err != nil {
		return nil, 0, false
	}
	return d.boxFloat(f), i, true
}
