package ingest

import (
	"encoding/binary"
	"math"
	"strconv"
)

// The fast path of JSON decoding, for the usual payload: an object of
// plain members (names and strings of printable ASCII without escapes,
// numbers, true, false, null). scanObject reads it in one pass straight
// into the event's map, checking the JSON grammar as it goes, where
// encoding/json scans the text twice and reflects. Field names are
// interned and found by their place in the last payload first (a device
// sends the same layout every time); values that repeat are boxed once
// (str, boxFloat).
//
// It declines (ok=false) whatever it does not decode exactly as
// encoding/json does, and decodeJSONStd takes over: invalid JSON (so error
// messages stay encoding/json's), nesting, arrays, escapes, non-ASCII
// text, numbers out of float64's range. FuzzJSONFastPath holds the two to
// the same events and errors.

// extraFields is the room left in an event's map for what the engine adds
// (topic, time) and a capture or two, so adding them does not regrow it.
const extraFields = 3

// maxInterned bounds a Decoder's table of field names: names are few in
// practice, but a payload can make up any number of them.
const (
	maxInterned    = 4096
	maxInternedLen = 64 // bytes; longer names are allocated each time
)

// Decoder decodes payloads, reusing its memory between calls. It is not
// safe for concurrent use; the package-level Decode is.
type Decoder struct {
	keys map[string]string // field names seen, so each is allocated once
	out  []Decoded
	// m is the map of the last single object's event, cleared and
	// filled again by the next; fresh: every event gets a map of its own.
	m     map[string]any
	fresh bool
	// shape: the names of the last object in order, the likely names of
	// the next one, found without hashing.
	shape []string
	// strs caches boxed string values: a device sends the same few (a
	// unit, a status, its own id) in message after message.
	// Two entries a set, the one found or added last first: values that
	// share a set (customer ids, readings) do not keep evicting each other.
	strs [strCacheSets][2]strEntry
	// floats caches boxed numbers the same way.
	floats [floatCacheSets][2]floatEntry
	// seen holds the hashes of values that missed the caches: a value is
	// cached the second time it comes by, so one-off values (order ids,
	// counters, timestamps) do not push out the ones that repeat. It is
	// larger than the caches, so a stream of one-off values does not wipe
	// out what it remembers before the repeating ones come back.
	seen [seenSize]uint32
}

const (
	floatCacheSets = 256  // a power of two
	seenSize       = 8192 // a power of two
)

type floatEntry struct {
	bits uint64 // math.Float64bits of the value v holds
	v    any
}

const (
	strCacheSets = 512 // a power of two
	strCacheMax  = 24  // longest string cached, bytes
)

type strEntry struct {
	s string
	v any
}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder { return &Decoder{keys: map[string]string{}} }

// maxReused is the most fields of an object whose map the decoder keeps
// for the next payload: clearing a map costs in proportion to its size.
const maxReused = 64

// maxShape is the most names of shape.
const maxShape = 64

// eventMap returns a map for an object of about n members: the
// decoder's own, emptied, unless fresh or n is large.
func (d *Decoder) eventMap(n int) map[string]any {
	n += extraFields
	if d.fresh || n > maxReused {
		return make(map[string]any, n)
	}
	if d.m == nil {
		d.m = make(map[string]any, n)
	} else {
		clear(d.m)
	}
	return d.m
}

// key returns k as a string, allocated once per distinct name while the
// table has room.
func (d *Decoder) key(k []byte) string {
	if s, ok := d.keys[string(k)]; ok {
		return s
	}
	s := string(k)
	if len(d.keys) < maxInterned && len(k) <= maxInternedLen {
		d.keys[s] = s
	}
	return s
}

// str returns b as a boxed string, from the cache when it holds it.
func (d *Decoder) str(b []byte) any {
	if len(b) > strCacheMax {
		return string(b)
	}
	h := strHash(b)
	set := &d.strs[h&(strCacheSets-1)]
	if e := &set[0]; e.v != nil && e.s == string(b) {
		return e.v
	}
	if e := set[1]; e.v != nil && e.s == string(b) {
		set[0], set[1] = e, set[0]
		return e.v
	}
	var v any = string(b)
	if d.seenBefore(h>>20, uint32(h>>32)) {
		set[0], set[1] = strEntry{v.(string), v}, set[0]
	}
	return v
}

// seenBefore reports whether a value whose hash gives slot and tag missed
// a cache before (and was not the last to miss in its slot of seen since),
// remembering it for next time.
func (d *Decoder) seenBefore(slot uint64, tag uint32) bool {
	p := &d.seen[slot&(seenSize-1)]
	if *p == tag {
		return true
	}
	*p = tag
	return false
}

// strHash is a quick hash of a short string for the value cache: a
// collision costs an allocation, never a wrong value.
func strHash(b []byte) uint64 {
	const m = 0x9E3779B97F4A7C15
	h := uint64(len(b)) * m
	for len(b) >= 8 {
		h = (h ^ binary.LittleEndian.Uint64(b)) * m
		b = b[8:]
	}
	for _, c := range b {
		h = (h ^ uint64(c)) * m
	}
	return h ^ h>>32
}

// boxedInts are the whole numbers 0–255 as boxed float64s: counts, small
// readings and flags need no allocation.
var boxedInts = func() (out [256]any) {
	for i := range out {
		out[i] = float64(i)
	}
	return
}()

// boxFloat returns f boxed: the whole numbers 0–255 from boxedInts, other
// values from a cache like strs' (a reading such as 21.5 or a price comes
// again and again), anything else allocated.
func (d *Decoder) boxFloat(f float64) any {
	if f >= 0 && f < 256 && f == math.Trunc(f) && !math.Signbit(f) {
		return boxedInts[int(f)]
	}
	bits := math.Float64bits(f)
	// splitmix64's finalizer: round numbers have long runs of zero bits.
	h := (bits ^ bits>>33) * 0xff51afd7ed558ccd
	h = (h ^ h>>33) * 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	set := &d.floats[h&(floatCacheSets-1)]
	if e := &set[0]; e.v != nil && e.bits == bits {
		return e.v
	}
	if e := set[1]; e.v != nil && e.bits == bits {
		set[0], set[1] = e, set[0]
		return e.v
	}
	var v any = f
	// Cached the second time it comes by, as strs are.
	if d.seenBefore(h>>20, uint32(h>>32)) {
		set[0], set[1] = floatEntry{bits, v}, set[0]
	}
	return v
}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// rawByte marks the bytes a string may hold for the fast path: printable
// ASCII (and DEL) but the quote and the backslash, read the same by every
// JSON decoder.
var rawByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

// scanObject reads the JSON object at the start of b into an event's map
// (eventMap) and returns the index after it; ok=false: it declined.
func (d *Decoder) scanObject(b []byte) (_ map[string]any, end int, ok bool) {
	if len(b) == 0 || b[0] != '{' {
		return nil, 0, false
	}
	i := skipWSAt(b, 1)
	// Sized for as many members as the last object had.
	m := d.eventMap(len(d.shape))
	if i < len(b) && b[i] == '}' {
		return m, i + 1, true
	}
	for k := 0; ; k++ {
		if i >= len(b) || b[i] != '"' {
			return nil, 0, false
		}
		name, j := d.scanName(b, i+1, k)
		if j == 0 {
			return nil, 0, false
		}
		if i = skipWSAt(b, j); i >= len(b) || b[i] != ':' {
			return nil, 0, false
		}
		v, j, ok := d.scanValue(b, skipWSAt(b, i+1))
		if !ok {
			return nil, 0, false
		}
		m[name] = v
		if i = skipWSAt(b, j); i >= len(b) {
			return nil, 0, false
		}
		switch b[i] {
		case ',':
			i = skipWSAt(b, i+1)
		case '}':
			if len(m) > maxReused && !d.fresh {
				d.m = nil // too large to clear for every payload
			}
			return m, i + 1, true
		default:
			return nil, 0, false
		}
	}
}

// skipWSAt returns the index of the first byte from b[i] on that is not
// JSON whitespace.
func skipWSAt(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanName reads the k-th member name of an object, whose text starts at
// b[i] (after its quote), returning it interned and the index after its
// closing quote; 0 if it is not plain text. The name at this place last
// time is tried first, without hashing.
func (d *Decoder) scanName(b []byte, i, k int) (string, int) {
	if k < len(d.shape) {
		n := d.shape[k]
		if e := i + len(n); e < len(b) && b[e] == '"' && string(b[i:e]) == n {
			return n, e + 1
		}
	}
	j := i
	for j < len(b) && rawByte[b[j]] {
		j++
	}
	if j >= len(b) || b[j] != '"' {
		return "", 0
	}
	n := d.key(b[i:j])
	if k <= len(d.shape) && k < maxShape {
		d.shape = append(d.shape[:k], n)
	}
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
		j := i + 1
		for j < len(b) && rawByte[b[j]] {
			j++
		}
		if j >= len(b) || b[j] != '"' {
			return nil, 0, false
		}
		return d.str(b[i+1 : j]), j + 1, true
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
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, returning it boxed.
func (d *Decoder) scanNumber(b []byte, i int) (any, int, bool) {
	f, j, ok := parseNumberAt(b, i)
	if !ok {
		return nil, 0, false
	}
	return d.boxFloat(f), j, true
}

// parseNumberAt reads the number at b[i] as RFC 8259 writes one and
// converts it as strconv.ParseFloat does: exactly by one division when it
// has no exponent and its digits are below 10^15 (Clinger's fast path,
// strconv's first too), else by strconv. Out of float64's range: declined.
func parseNumberAt(b []byte, i int) (float64, int, bool) {
	start := i
	neg := b[i] == '-'
	if neg {
		i++
	}
	var mant uint64
	switch {
	case i >= len(b):
		return 0, 0, false
	case b[i] == '0':
		i++
	case b[i]-'1' <= 8:
		for ; i < len(b) && b[i]-'0' <= 9; i++ {
			mant = mant*10 + uint64(b[i]-'0')
		}
	default:
		return 0, 0, false
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
			return 0, 0, false
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
			return 0, 0, false
		}
	}
	// At most 19 digits cannot overflow mant; below 10^15 it is exact.
	if !exp && ndigits <= 19 && mant < 1e15 && frac < len(pow10) {
		f := float64(mant) / pow10[frac]
		if neg {
			f = -f
		}
		return f, i, true
	}
	f, err := strconv.ParseFloat(string(b[start:i]), 64)
	if err != nil {
		return 0, 0, false
	}
	return f, i, true
}
