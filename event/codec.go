package event

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// Enc appends values to a byte slice: the building block of operator
// snapshots. Each operator writes its own version byte first.
type Enc struct{ B []byte }

func (e *Enc) Uvarint(v uint64) { e.B = binary.AppendUvarint(e.B, v) }
func (e *Enc) Varint(v int64)   { e.B = binary.AppendVarint(e.B, v) }
func (e *Enc) Byte(v byte)      { e.B = append(e.B, v) }
func (e *Enc) Bool(v bool) {
	if v {
		e.B = append(e.B, 1)
	} else {
		e.B = append(e.B, 0)
	}
}
func (e *Enc) Float(v float64) { e.B = binary.LittleEndian.AppendUint64(e.B, math.Float64bits(v)) }
func (e *Enc) String(s string) {
	e.Uvarint(uint64(len(s)))
	e.B = append(e.B, s...)
}

// Time writes t as Unix nanoseconds; the zero time round-trips.
func (e *Enc) Time(t time.Time) {
	if t.IsZero() {
		e.Byte(0)
		return
	}
	e.Byte(1)
	e.Varint(t.UnixNano())
}

const (
	tagNil byte = iota
	tagFloat
	tagString
	tagBool
	tagTime
	tagMap
	tagSlice
	tagInt
)

// Value writes one field value: nil, float64, int64/int, string, bool,
// time.Time, map[string]any or []any. Other types are written as their
// fmt %v text.
func (e *Enc) Value(v any) {
	switch x := v.(type) {
	case nil:
		e.Byte(tagNil)
	case float64:
		e.Byte(tagFloat)
		e.Float(x)
	case int:
		e.Byte(tagInt)
		e.Varint(int64(x))
	case int64:
		e.Byte(tagInt)
		e.Varint(x)
	case string:
		e.Byte(tagString)
		e.String(x)
	case bool:
		e.Byte(tagBool)
		e.Bool(x)
	case time.Time:
		e.Byte(tagTime)
		e.Time(x)
	case map[string]any:
		e.Byte(tagMap)
		e.Fields(x)
	case []any:
		e.Byte(tagSlice)
		e.Uvarint(uint64(len(x)))
		for _, y := range x {
			e.Value(y)
		}
	default:
		e.Byte(tagString)
		e.String(fmt.Sprint(x))
	}
}

// Fields writes a map in sorted key order, so equal maps encode equally.
func (e *Enc) Fields(m map[string]any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	e.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.String(k)
		e.Value(m[k])
	}
}

// Event writes an event (nil allowed).
func (e *Enc) Event(ev *Event) {
	if ev == nil {
		e.Byte(0)
		return
	}
	e.Byte(1)
	e.String(ev.Topic)
	e.Time(ev.Time)
	e.Uvarint(ev.Seq)
	e.Fields(ev.Fields)
}

// ErrCorrupt reports a snapshot that does not decode.
var ErrCorrupt = errors.New("corrupt state")

// Dec reads what Enc wrote. The first error sticks: check Err once at the end.
type Dec struct {
	B   []byte
	Err error
}

func (d *Dec) fail() {
	if d.Err == nil {
		d.Err = ErrCorrupt
	}
	d.B = nil
}

func (d *Dec) Uvarint() uint64 {
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.B = d.B[n:]
	return v
}

func (d *Dec) Varint() int64 {
	v, n := binary.Varint(d.B)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.B = d.B[n:]
	return v
}

func (d *Dec) Byte() byte {
	if len(d.B) < 1 {
		d.fail()
		return 0
	}
	b := d.B[0]
	d.B = d.B[1:]
	return b
}

func (d *Dec) Bool() bool { return d.Byte() != 0 }

func (d *Dec) Float() float64 {
	if len(d.B) < 8 {
		d.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.B))
	d.B = d.B[8:]
	return v
}

func (d *Dec) String() string {
	n := d.Uvarint()
	if n > uint64(len(d.B)) {
		d.fail()
		return ""
	}
	s := string(d.B[:n])
	d.B = d.B[n:]
	return s
}

func (d *Dec) Time() time.Time {
	if d.Byte() == 0 {
		return time.Time{}
	}
	return time.Unix(0, d.Varint()).UTC()
}

// Len reads a length and checks it is plausible for the bytes left, so a
// corrupt snapshot cannot make us allocate gigabytes.
func (d *Dec) Len() int {
	n := d.Uvarint()
	if n > uint64(len(d.B)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *Dec) Value() any {
	switch d.Byte() {
	case tagNil:
		return nil
	case tagFloat:
		return d.Float()
	case tagInt:
		return d.Varint()
	case tagString:
		return d.String()
	case tagBool:
		return d.Bool()
	case tagTime:
		return d.Time()
	case tagMap:
		return d.Fields()
	case tagSlice:
		n := d.Len()
		s := make([]any, 0, n)
		for i := 0; i < n && d.Err == nil; i++ {
			s = append(s, d.Value())
		}
		return s
	default:
		d.fail()
		return nil
	}
}

func (d *Dec) Fields() map[string]any {
	n := d.Len()
	m := make(map[string]any, n)
	for i := 0; i < n && d.Err == nil; i++ {
		k := d.String()
		m[k] = d.Value()
	}
	return m
}

func (d *Dec) Event() *Event {
	if d.Byte() == 0 {
		return nil
	}
	ev := &Event{}
	ev.Topic = d.String()
	ev.Time = d.Time()
	ev.Seq = d.Uvarint()
	ev.Fields = d.Fields()
	return ev
}
