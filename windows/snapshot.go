package windows

import (
	"errors"
	"fmt"
	"math"

	"github.com/vigil-gw/vigil/event"
)

// snapVersion is the first byte of a snapshot. Bump it when the layout
// changes; Restore refuses versions it does not know. Version 2 writes of
// each window's aggregate only what its function keeps (encBag); version 1
// wrote every function's fields, 120-odd bytes of mostly zeros per
// aggregate, which made the bags most of a checkpoint of tumbling and
// hopping windows with many keys. Restore reads both.
const snapVersion byte = 2

// errSpec reports a snapshot written by an operator of another Spec.
var errSpec = errors.New("snapshot is for another window spec")

// Snapshot writes all state: counters, buffered events and every key in
// least-recently-seen order. Float state is written bit for bit, so a
// restored operator continues exactly as the original would have.
func (o *Op) Snapshot() ([]byte, error) {
	e := &event.Enc{B: make([]byte, 0, o.snapLen+o.snapLen/8)}
	e.Byte(snapVersion)
	o.encodeSpec(e)
	e.Bool(o.closeSet)
	e.Varint(o.closeAt)
	e.Uvarint(o.late)
	e.Uvarint(o.evicted)
	e.Uvarint(o.errs)
	o.ro.Encode(e)
	e.Uvarint(uint64(len(o.keys)))
	for ks := o.lru.prev; ks != &o.lru; ks = ks.prev {
		e.String(ks.key)
		switch o.spec.Kind {
		case Sliding:
			e.Bool(ks.firing)
			e.Bool(ks.sl != nil)
			if ks.sl != nil {
				o.encodeSlide(e, ks.sl)
			}
		case Count:
			e.Bool(ks.cw != nil)
			if ks.cw != nil {
				o.encodeWin(e, ks.cw)
			}
		default:
			e.Bool(ks.hasClosed)
			e.Varint(ks.closedLast)
			e.Uvarint(uint64(len(ks.wins)))
			for _, w := range ks.wins {
				o.encodeWin(e, w)
			}
		}
	}
	o.snapLen = len(e.B)
	return e.B, nil
}

func (o *Op) encodeSpec(e *event.Enc) {
	e.String(string(o.spec.Kind))
	e.Varint(o.size)
	e.Varint(o.every)
	e.Varint(int64(o.spec.N))
	e.Uvarint(uint64(len(o.aggs)))
	for _, a := range o.aggs {
		e.String(a.Name)
		e.Byte(byte(a.f))
		e.Float(a.P)
	}
}

func (o *Op) encodeSlide(e *event.Enc, k *slideKey) {
	e.Varint(k.ref)
	e.Uvarint(uint64(k.len()))
	for i := range k.len() {
		e.Varint(k.ts.at(i))
	}
	for j := range o.aggs {
		a := &o.aggs[j]
		c := &k.cols[j]
		for i := range k.len() {
			// count() and count(x) keep no values: true stands for a
			// present one, as it always did for count()
			switch a.col() {
			case colNum:
				e.Float(c.nums.at(i))
			case colAny:
				e.Value(c.x.anys.at(i))
			case colHas:
				if c.x.has.at(i) {
					e.Value(true)
				} else {
					e.Value(nil)
				}
			default:
				e.Value(true)
			}
		}
		var sum ksum
		var w welford
		var cv cov
		switch a.f {
		case fnSum, fnAvg:
			sum = c.st.sum()
		case fnStddev:
			w = c.st.welf()
		case fnSlope:
			cv = c.st.cov()
		}
		e.Float(sum.s)
		e.Float(sum.c)
		encWelford(e, w)
		encCov(e, cv)
	}
}

func encWelford(e *event.Enc, w welford) {
	e.Float(w.n)
	e.Float(w.mean)
	e.Float(w.m2)
}

func encCov(e *event.Enc, v cov) {
	for _, f := range [...]float64{v.n, v.mt, v.my, v.c, v.m2t} {
		e.Float(f)
	}
}

func (o *Op) encodeWin(e *event.Enc, w *win) {
	e.Varint(w.start)
	e.Varint(w.end)
	e.Varint(w.n)
	e.Event(w.lastEv)
	for j := range w.aggs {
		encBag(e, o.aggs[j].f, &w.aggs[j], w.start)
	}
}

// encBag writes what decBag keeps of a bag for f: version 2.
func encBag(e *event.Enc, f fn, b *bagAgg, start int64) {
	x := bagExtra{ref: start}
	if b.x != nil {
		x = *b.x
	}
	e.Varint(b.n)
	switch f {
	case fnSum, fnAvg:
		sum := b.st.sum()
		e.Float(sum.s)
		e.Float(sum.c)
	case fnStddev:
		encWelford(e, b.st.welf())
	case fnSlope:
		encCov(e, b.st.cov())
		e.Varint(x.ref)
		e.Varint(x.tmin)
		e.Varint(x.tmax)
	case fnMin, fnMax:
		e.Float(b.st[0])
	case fnFirst:
		e.Value(x.first)
		e.Varint(x.ft)
		e.Uvarint(x.fs)
	case fnLast:
		e.Value(x.last)
		e.Varint(x.lt)
		e.Uvarint(x.ls)
	case fnPercentile:
		e.Uvarint(uint64(len(x.vals)))
		for _, v := range x.vals {
			e.Float(v)
		}
		e.Bool(x.sorted)
	case fnCountDistinct:
		e.Uvarint(uint64(len(x.distinct)))
		for k := range x.distinct {
			e.Value(k)
		}
	}
}

// Restore replaces all state with what Snapshot wrote. The operator must
// have been built from the same Spec; on error it is left empty.
func (o *Op) Restore(b []byte) error {
	o.reset()
	d := &event.Dec{B: b}
	v := d.Byte()
	if d.Err == nil && v != snapVersion && v != 1 {
		return fmt.Errorf("restore window state: unknown version %d", v)
	}
	var want event.Enc
	o.encodeSpec(&want)
	if len(d.B) < len(want.B) || string(d.B[:len(want.B)]) != string(want.B) {
		return fmt.Errorf("restore window state: %w", errSpec)
	}
	d.B = d.B[len(want.B):]
	o.closeSet = d.Bool()
	o.closeAt = d.Varint()
	o.late, o.evicted, o.errs = d.Uvarint(), d.Uvarint(), d.Uvarint()
	o.ro.Decode(d)
	n := d.Len()
	for i := 0; i < n && d.Err == nil; i++ {
		key := d.String()
		if o.keys[key] != nil {
			d.Err = event.ErrCorrupt
			break
		}
		ks, _ := o.touch(key)
		o.decodeKey(d, ks, v)
	}
	if d.Err == nil && len(d.B) != 0 {
		d.Err = event.ErrCorrupt
	}
	if d.Err != nil {
		o.reset()
		return fmt.Errorf("restore window state: %w", d.Err)
	}
	return nil
}

func (o *Op) reset() {
	o.keys = map[string]*keyState{}
	o.lru.next, o.lru.prev = &o.lru, &o.lru
	o.due = nil
	o.ro = event.Reorder{}
	o.closeAt, o.closeSet = 0, false
	o.late, o.evicted, o.errs = 0, 0, 0
	o.open, o.held = 0, 0
}

func (o *Op) decodeKey(d *event.Dec, ks *keyState, v byte) {
	switch o.spec.Kind {
	case Sliding:
		ks.firing = d.Bool()
		if d.Bool() {
			ks.sl = o.decodeSlide(d)
			if n := ks.sl.len(); n > 0 {
				o.held += n
				ks.expiring = true
				o.due.push(dueItem{due: ks.sl.last() + o.size, key: ks.key, kind: dueExpire, ks: ks})
			}
		}
	case Count:
		if d.Bool() {
			ks.cw = o.decodeWin(d, ks, v)
		}
	default:
		ks.hasClosed = d.Bool()
		ks.closedLast = d.Varint()
		n := d.Len()
		for i := 0; i < n && d.Err == nil; i++ {
			w := o.decodeWin(d, ks, v)
			ks.wins = append(ks.wins, w)
			due := w.end
			if o.spec.Kind == Session {
				due = w.end + o.size + 1
			}
			o.due.push(dueItem{due: due, key: ks.key, kind: dueWindow, w: w})
		}
		if ks.hasClosed && o.spec.Kind == Session {
			o.due.push(dueItem{due: ks.closedLast + 2*o.size + 1, key: ks.key, kind: dueForget, ks: ks})
		}
	}
}

// decodeSlide rebuilds a sliding key by pushing its events again (which
// restores the deques, the sorted values and the distinct counts exactly)
// and then overwrites the running sums with the saved bits.
func (o *Op) decodeSlide(d *event.Dec) *slideKey {
	ref := d.Varint()
	n := d.Len()
	k := newSlideKey(o.aggs, ref)
	times := make([]int64, n)
	for i := range times {
		times[i] = d.Varint()
	}
	nums := make([][]float64, len(o.aggs))
	anys := make([][]any, len(o.aggs))
	type saved struct {
		sum ksum
		w   welford
		cv  cov
	}
	sv := make([]saved, len(o.aggs))
	for j, a := range o.aggs {
		if a.f.numeric() {
			nums[j] = make([]float64, n)
			for i := range nums[j] {
				nums[j][i] = d.Float()
			}
		} else {
			anys[j] = make([]any, n)
			for i := range anys[j] {
				anys[j][i] = d.Value()
				if a.f == fnCountDistinct {
					anys[j][i] = hashable(d, anys[j][i])
				}
			}
		}
		sv[j].sum = ksum{d.Float(), d.Float()}
		sv[j].w = decWelford(d)
		sv[j].cv = decCov(d)
	}
	if d.Err != nil {
		return k
	}
	num := make([]float64, len(o.aggs))
	anyv := make([]any, len(o.aggs))
	for i, t := range times {
		if i > 0 && t < times[i-1] {
			d.Err = event.ErrCorrupt
			return k
		}
		for j := range o.aggs {
			num[j], anyv[j] = math.NaN(), nil
			if nums[j] != nil {
				num[j] = nums[j][i]
			} else {
				anyv[j] = anys[j][i]
			}
		}
		k.push(o.aggs, t, num, anyv)
	}
	for j := range k.cols {
		c := &k.cols[j]
		switch o.aggs[j].f {
		case fnSum, fnAvg:
			c.st.setSum(sv[j].sum)
		case fnStddev:
			c.st.setWelf(sv[j].w)
		case fnSlope:
			c.st.setCov(sv[j].cv)
		}
	}
	return k
}

func decWelford(d *event.Dec) welford { return welford{d.Float(), d.Float(), d.Float()} }

func decCov(d *event.Dec) cov { return cov{d.Float(), d.Float(), d.Float(), d.Float(), d.Float()} }

func (o *Op) decodeWin(d *event.Dec, ks *keyState, v byte) *win {
	w := &win{ks: ks, aggs: make([]bagAgg, len(o.aggs))}
	w.start, w.end, w.n = d.Varint(), d.Varint(), d.Varint()
	w.lastEv = d.Event()
	if o.spec.NoEvent {
		w.lastEv = nil // a snapshot of a version that kept it
	}
	for j := range w.aggs {
		if v == 1 {
			decBagV1(d, o.aggs[j].f, &w.aggs[j])
		} else {
			decBag(d, o.aggs[j].f, &w.aggs[j])
		}
	}
	o.open++
	return w
}

// decBag reads what encBag wrote (version 2). It builds the same bag as
// decBagV1 does from version 1.
func decBag(d *event.Dec, f fn, b *bagAgg) {
	b.n = d.Varint()
	switch f {
	case fnSum, fnAvg:
		b.st.setSum(ksum{d.Float(), d.Float()})
	case fnStddev:
		b.st.setWelf(decWelford(d))
	case fnSlope:
		b.st.setCov(decCov(d))
		b.x = &bagExtra{ref: d.Varint(), tmin: d.Varint(), tmax: d.Varint()}
	case fnMin, fnMax:
		b.st[0] = d.Float()
	case fnFirst:
		b.x = &bagExtra{first: d.Value(), ft: d.Varint(), fs: d.Uvarint()}
	case fnLast:
		b.x = &bagExtra{last: d.Value(), lt: d.Varint(), ls: d.Uvarint()}
	case fnPercentile:
		x := &bagExtra{}
		if nv := d.Len(); nv > 0 {
			x.vals = make([]float64, nv)
			for i := range x.vals {
				x.vals[i] = d.Float()
			}
		}
		x.sorted = d.Bool()
		b.x = x
	case fnCountDistinct:
		nd := d.Len()
		x := &bagExtra{distinct: make(map[any]struct{}, nd)}
		for i := 0; i < nd && d.Err == nil; i++ {
			x.distinct[hashable(d, d.Value())] = struct{}{}
		}
		b.x = x
	}
}

// decBagV1 reads what encBagV1 wrote (version 1) and keeps what f uses.
func decBagV1(d *event.Dec, f fn, b *bagAgg) {
	b.n = d.Varint()
	sum := ksum{d.Float(), d.Float()}
	w := decWelford(d)
	cv := decCov(d)
	var x bagExtra
	x.ref = d.Varint()
	lo, hi := d.Float(), d.Float()
	x.tmin, x.tmax = d.Varint(), d.Varint()
	x.first, x.last = d.Value(), d.Value()
	x.ft, x.lt = d.Varint(), d.Varint()
	x.fs, x.ls = d.Uvarint(), d.Uvarint()
	if nv := d.Len(); nv > 0 {
		x.vals = make([]float64, nv)
		for i := range x.vals {
			x.vals[i] = d.Float()
		}
	}
	x.sorted = d.Bool()
	if nd := d.Len(); nd > 0 {
		x.distinct = make(map[any]struct{}, nd)
		for i := 0; i < nd && d.Err == nil; i++ {
			x.distinct[hashable(d, d.Value())] = struct{}{}
		}
	}
	switch f {
	case fnSum, fnAvg:
		b.st.setSum(sum)
	case fnStddev:
		b.st.setWelf(w)
	case fnSlope:
		b.st.setCov(cv)
		b.x = &bagExtra{ref: x.ref, tmin: x.tmin, tmax: x.tmax}
	case fnMin:
		b.st[0] = lo
	case fnMax:
		b.st[0] = hi
	case fnFirst:
		b.x = &bagExtra{first: x.first, ft: x.ft, fs: x.fs}
	case fnLast:
		b.x = &bagExtra{last: x.last, lt: x.lt, ls: x.ls}
	case fnPercentile:
		b.x = &bagExtra{vals: x.vals, sorted: x.sorted}
	case fnCountDistinct:
		if x.distinct == nil {
			x.distinct = map[any]struct{}{}
		}
		b.x = &bagExtra{distinct: x.distinct}
	}
}

// hashable guards the count_distinct sets against a corrupt snapshot: they
// only ever hold numbers, strings and booleans, and a map or slice would
// panic as a map key.
func hashable(d *event.Dec, v any) any {
	switch v.(type) {
	case nil, float64, string, bool:
		return v
	}
	d.Err = event.ErrCorrupt
	return nil
}
