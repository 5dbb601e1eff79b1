package engine

import (
	"container/list"

	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/expr"
	"github.com/vigil-gw/vigil/rules"
)

// tableState keeps the latest event per key, least recently updated evicted
// first when over the cap.
type tableState struct {
	t       *rules.Table
	max     int
	byKey   map[string]*list.Element
	order   *list.List // of *tableRow, most recent at the back
	evicted uint64
	errors  uint64
}

type tableRow struct {
	key    string
	fields map[string]any
}

func newTable(t *rules.Table, max int) *tableState {
	return &tableState{t: t, max: max, byKey: map[string]*list.Element{}, order: list.New()}
}

// put records ev, the event with the captures of the table's filter.
func (ts *tableState) put(e *Engine, ev *event.Event) {
	key := ev.Topic
	if ts.t.Key != nil {
		v, err := ts.t.Key.Run(e.env(ev.Fields))
		if err != nil || v == nil {
			ts.errors++
			return
		}
		key = expr.KeyString(v)
	}
	ts.set(key, ev.Fields)
}

func (ts *tableState) set(key string, fields map[string]any) {
	if el, ok := ts.byKey[key]; ok {
		el.Value.(*tableRow).fields = fields
		ts.order.MoveToBack(el)
		return
	}
	ts.byKey[key] = ts.order.PushBack(&tableRow{key: key, fields: fields})
	for ts.order.Len() > ts.max {
		old := ts.order.Front()
		ts.order.Remove(old)
		delete(ts.byKey, old.Value.(*tableRow).key)
		ts.evicted++
	}
}

func (ts *tableState) get(key string) map[string]any {
	if el, ok := ts.byKey[key]; ok {
		return el.Value.(*tableRow).fields
	}
	return nil
}

func (ts *tableState) encode(e *event.Enc) {
	e.Uvarint(uint64(ts.order.Len()))
	for el := ts.order.Front(); el != nil; el = el.Next() {
		row := el.Value.(*tableRow)
		e.String(row.key)
		e.Fields(row.fields)
	}
	e.Uvarint(ts.evicted)
}

func (ts *tableState) decode(d *event.Dec) {
	n := d.Len()
	for i := 0; i < n && d.Err == nil; i++ {
		k := d.String()
		ts.set(k, d.Fields())
	}
	ts.evicted = d.Uvarint()
}
