package ingest

import (
	"encoding/binary"
	"math"
	"strconv"

	"github.com/valyala/fastjson"
)

// The fast path of JSON decoding: valyala/fastjson validates and parses a
// payload in one pass over reused memory, and fastJSON builds the event's
// map at its final size (with room for the fields the engine adds), where
// encoding/json scans twice and grows every map as it goes. It decodes
// about three times faster; a differential fuzz test holds it to exactly
// what encoding/json produces.
//
// It declines (ok=false) whatever it does not decode identically, and
// decodeJSONStd takes over: invalid JSON (so error messages stay
// encoding/json's), text with non-ASCII bytes or \u escapes (encoding/json
// replaces invalid UTF-8 and lone surrogates in its own way), control bytes
// (pretty-printed JSON takes the slower path), and numbers out of float64's
// range.

// extraFields is the room left in an event's map for what the engine adds
// (topic, time) and a capture or two, so adding them does not regrow it.
const extraFields = 3

// maxInterned bounds a Decoder's table of field names: names are few in
// practice, but a payload can make up any number of them.
const (
	maxInterned    = 4096
	maxInternedLen = 64 // bytes; longer names are allocated each time
)

// Decoder decodes payloads, reusing its parser and memory between calls.
// It is not safe for concurrent use; the package-level Decode is.
type Decoder struct {
	p    fastjson.Parser
	num  []byte
	keys map[string]string // field names seen, so each is allocated once
	out  []Decoded
	// m is the map of the last single object's event, cleared and
	// filled again by the next; fresh: every event gets a map of its own.
	m     map[string]any
	fresh bool
	// shape: the names of the last object at the top in order, the likely
	// names of the next one, found without hashing.
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

// fastJSON decodes payload if it can (ok).
func (d *Decoder) fastJSON(payload []byte) (v any, ok bool) {
	esc, plain := scanPlain(payload)
	if !plain {
		return nil, false
	}
	// The parser alone accepts more than RFC 8259 in two places: escapes
	// in strings (it keeps an invalid one as it is), checked here by the
	// strict validator when there is a backslash at all, and numbers (01,
	// NaN, Inf), which convert checks one by one.
	if esc && fastjson.ValidateBytes(payload) != nil {
		return nil, false
	}
	pv, err := d.p.ParseBytes(payload)
	if err != nil {
		return nil, false
	}
	return d.convert(pv, 1)
}

// maxReused is the most fields of an object whose map the decoder keeps
// for the next payload: clearing a map costs in proportion to its size.
const maxReused = 64

// maxShape is the most names of shape.
const maxShape = 64

// eventMap returns a map for an object of n members at the top: the
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

// scanPlain reports whether payload is what the fast path takes: ASCII
// without control bytes (fastjson's validator misses one that precedes an
// escape in the same string, and compact payloads have none) and without
// \u escapes; esc says whether it has other escapes. Eight bytes at a
// time: a word that may hold any of those is looked at byte by byte.
func scanPlain(p []byte) (esc, ok bool) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(p); i += 8 {
		w := binary.LittleEndian.Uint64(p[i:])
		ctl := (w - 0x20*ones) & ^w & highs // a byte below 0x20 (or a false alarm)
		bs := w ^ '\\'*ones
		bs = (bs - ones) & ^bs & highs // a backslash (or a false alarm)
		if w&highs|ctl|bs == 0 {
			continue
		}
		if !plainBytes(p, i, i+8, &esc) {
			return esc, false
		}
	}
	return esc, plainBytes(p, i, len(p), &esc)
}

func plainBytes(p []byte, from, to int, esc *bool) bool {
	for i := from; i < to; i++ {
		c := p[i]
		if c < 0x20 || c >= 0x80 || c == '\\' && i+1 < len(p) && p[i+1] == 'u' {
			return false
		}
		if c == '\\' {
			*esc = true
		}
	}
	return true
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

// simpleFloat converts a JSON number without an exponent whose digits fit
// in 53 bits, the usual sensor reading, exactly as strconv.ParseFloat
// does; it checks the JSON grammar for what it takes (no leading zeros, a
// digit on each side of the point). Then the digits and the power of ten are exact
// float64s, and one division rounds correctly (Clinger's fast path, also
// strconv's first). ok=false leaves the rest to strconv.
func simpleFloat(b []byte) (float64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var mant uint64
	i := 0
	if b[0] == '0' {
		i = 1
	} else {
		for ; i < len(b) && b[i]-'0' <= 9; i++ {
			mant = mant*10 + uint64(b[i]-'0')
		}
		if i == 0 {
			return 0, false
		}
	}
	frac := 0
	if i < len(b) {
		if b[i] != '.' {
			return 0, false
		}
		i++
		start := i
		for ; i < len(b) && b[i]-'0' <= 9; i++ {
			mant = mant*10 + uint64(b[i]-'0')
		}
		if frac = i - start; frac == 0 || i < len(b) {
			return 0, false
		}
	}
	// At most 19 digits cannot overflow mant; below 10^15, mant is exact.
	digits := len(b)
	if frac > 0 {
		digits-- // the point
	}
	if digits > 19 || mant >= 1e15 || frac >= len(pow10) {
		return 0, false
	}
	f := float64(mant) / pow10[frac]
	if neg {
		f = -f
	}
	return f, true
}

// convert copies a parsed value out of the parser's memory into Go values
// as encoding/json would decode it into an interface. depth is the nesting
// level of v (the payload is at 1): an object or array deeper than
// MaxDepth is declined, as checkDepth would refuse it.
func (d *Decoder) convert(v *fastjson.Value, depth int) (any, bool) {
	switch v.Type() {
	case fastjson.TypeObject:
		if depth > MaxDepth {
			return nil, false
		}
		o, _ := v.Object()
		var m map[string]any
		if depth == 1 {
			m = d.eventMap(o.Len())
		} else {
			m = make(map[string]any, o.Len())
		}
		ok, i := true, 0
		o.Visit(func(k []byte, v *fastjson.Value) {
			if !ok {
				return
			}
			if hasEscape(k) {
				ok = false
				return
			}
			var x any
			if x, ok = d.convert(v, depth+1); ok {
				var name string
				// A device sends the same layout every time: the name
				// at this place last time is likely this one.
				if depth == 1 && i < len(d.shape) && string(k) == d.shape[i] {
					name = d.shape[i]
				} else if name = d.key(k); depth == 1 && i <= len(d.shape) && i < maxShape {
					d.shape = append(d.shape[:i], name)
				}
				m[name] = x
				i++
			}
		})
		return m, ok
	case fastjson.TypeArray:
		if depth > MaxDepth {
			return nil, false
		}
		a, _ := v.Array()
		out := make([]any, len(a))
		for i, e := range a {
			x, ok := d.convert(e, depth+1)
			if !ok {
				return nil, false
			}
			out[i] = x
		}
		return out, true
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return d.str(b), true
	case fastjson.TypeNumber:
		d.num = v.MarshalTo(d.num[:0])
		if f, ok := simpleFloat(d.num); ok {
			return d.boxFloat(f), true
		}
		if !jsonNumber(d.num) {
			return nil, false
		}
		f, err := strconv.ParseFloat(string(d.num), 64)
		if err != nil {
			return nil, false
		}
		return d.boxFloat(f), true
	case fastjson.TypeTrue:
		return true, true
	case fastjson.TypeFalse:
		return false, true
	case fastjson.TypeNull:
		return nil, true
	}
	return nil, false
}

// hasEscape: fastjson hands object keys over unescaped; a key that still
// holds a backslash had an escape encoding/json resolves differently.
func hasEscape(k []byte) bool {
	for _, c := range k {
		if c == '\\' {
			return true
		}
	}
	return false
}

// jsonNumber reports whether b is a number as RFC 8259 writes one:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(b, i+1); i < 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i = digits(b, i); i < 0 {
			return false
		}
	}
	return i == len(b)
}

// digits skips the digits from b[i] on, at least one (else -1).
func digits(b []byte, i int) int {
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == start {
		return -1
	}
	return i
}
