package engine

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/rules"
)

// flatRules are stateless rules that take the flat path: captures that
// differ between filters, a capture named like a payload field, topic and
// time in expressions, keys that fail, expressions only the VM runs, and
// templates.
const flatRules = `
rules:
  - {name: big, from: "shop/{store}/orders", where: amount > 100 && country != "UK", key: customer, message: "{{order}} {{amount}} {{store}}"}
  - {name: by_store, from: "shop/{store}/orders", where: 'store == "s1" || qty >= 3', key: store}
  - {name: other_cap, from: "shop/{shop}/#", where: 'shop startsWith "s" && amount < 50', key: shop, message: "{{topic}} {{shop}}"}
  - {name: nocap, from: "shop/s7/orders", where: 'store == nil ? amount > 10 : false', message: "{{store ?? \"none\"}}"}
  - {name: plain, from: "shop/+/orders", where: 'country in ["FR", "DE"]', key: 'country + "-" + string(qty)'}
  - {name: intfield, from: "shop/{store}/orders", where: 'len(order) > 2 && time > time - duration("1s")', key: order, cooldown: 1m}
  - {name: missing_key, from: "shop/{store}/orders", where: express, key: nothere}
  - {name: bad_where, from: "shop/{store}/orders", where: 'express && amount'}
  - {name: topicrule, from: "shop/{store}/orders", where: 'topic endsWith "orders" && store != "s0"'}
`

// TestFlatPathMatchesMapPath runs random messages through an engine on
// the flat path and through one forced onto the map path (an OnEvent
// hook turns the flat path off) and wants the same alerts and counters.
// flatAndMapped returns an engine on the flat path and one forced onto
// the map path (an OnEvent hook turns the flat path off).
func flatAndMapped(t testing.TB) (flat, mapped *Engine) {
	mk := func(onEvent bool) *Engine {
		set, err := rules.Parse([]string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(flatRules)})
		if err != nil {
			t.Fatal(err)
		}
		o := Options{}
		if onEvent {
			o.OnEvent = func(*event.Event) {}
		}
		e, err := New(set, o)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	return mk(false), mk(true)
}

// FuzzFlatPath: any payload, on a topic the flat path takes, gives the
// same alerts, errors and counters on both paths.
func FuzzFlatPath(f *testing.F) {
	for _, s := range []string{`{"order":"o1","customer":"c1","amount":1500.5,"qty":3,"country":"FR","express":true,"ts":1767571200000}`,
		`{"store":"x","amount":20,"topic":"t","time":"2026-01-05T10:00:00Z"}`, `[{"amount":1},{"amount":2000,"country":"DE"}]`,
		`{"amount":1e3,"country":"F\u0052","qty":-0}`, `{"amount":01}`, `{"":0,"topic":"","time":"2026-01-05T0:00:00Z"}`, `{"a":{"b":[1,{"c":null}]},"amount":150}`, `21.5`, `x,t=1 amount=1500`} {
		f.Add([]byte(s), uint8(7))
	}
	flat, mapped := flatAndMapped(f)
	f.Fuzz(func(t *testing.T, payload []byte, store uint8) {
		m := Message{Topic: fmt.Sprintf("shop/s%d/orders", store%10), Payload: payload}
		a1, err1 := flat.Process(m)
		a2, err2 := mapped.Process(m)
		if fmt.Sprint(err1) != fmt.Sprint(err2) {
			t.Fatalf("%q: flat error %v, map path %v", payload, err1, err2)
		}
		if !reflect.DeepEqual(a1, a2) {
			t.Fatalf("%q:\nflat %#v\nmap  %#v", payload, a1, a2)
		}
		if !reflect.DeepEqual(flat.RuleStats(), mapped.RuleStats()) {
			t.Fatalf("%q: rule stats differ:\nflat %+v\nmap  %+v", payload, flat.RuleStats(), mapped.RuleStats())
		}
	})
}

func TestFlatPathMatchesMapPath(t *testing.T) {
	flat, mapped := flatAndMapped(t)
	rng := rand.New(rand.NewPCG(7, 8))
	countries := []string{`"UK"`, `"FR"`, `"DE"`, `"US"`, `null`, `3`, `"F\u0052"`, `"F\\R"`}
	base := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 20000; i++ {
		var fields []string
		add := func(f string) {
			if rng.IntN(8) != 0 {
				fields = append(fields, f)
			}
		}
		add(fmt.Sprintf(`"order":"o%d"`, rng.IntN(50)))
		add(fmt.Sprintf(`"customer":"c%d"`, rng.IntN(20)))
		add(fmt.Sprintf(`"amount":%d.%d`, rng.IntN(300), rng.IntN(10)))
		add(fmt.Sprintf(`"qty":%d`, rng.IntN(6)))
		add(`"country":` + countries[rng.IntN(len(countries))])
		add(fmt.Sprintf(`"express":%v`, rng.IntN(2) == 0))
		add(fmt.Sprintf(`"ts":%d`, base.Add(time.Duration(i)*time.Second).UnixMilli()))
		switch rng.IntN(10) {
		case 0:
			add(`"store":"payload"`) // a field named like a capture
		case 1:
			add(`"amount":7`) // a repeated name
		case 2:
			add(`"nested":{"a":[1,2,{"b":null}]}`)
		case 3:
			add(`"topic":"spoof"`)
		}
		rng.Shuffle(len(fields), func(a, b int) { fields[a], fields[b] = fields[b], fields[a] })
		payload := "{" + strings.Join(fields, ",") + "}"
		if rng.IntN(50) == 0 {
			payload = "[" + payload + "," + payload + "]"
		}
		m := Message{Topic: fmt.Sprintf("shop/s%d/orders", rng.IntN(9)), Payload: []byte(payload), Seq: uint64(i)}
		if rng.IntN(20) == 0 {
			m.Topic = fmt.Sprintf("shop/s%d/refunds", rng.IntN(3))
		}
		a1, err1 := flat.Process(m)
		a2, err2 := mapped.Process(m)
		if fmt.Sprint(err1) != fmt.Sprint(err2) {
			t.Fatalf("%s %s: flat error %v, map path %v", m.Topic, payload, err1, err2)
		}
		if !reflect.DeepEqual(a1, a2) {
			t.Fatalf("%s %s:\nflat %#v\nmap  %#v", m.Topic, payload, a1, a2)
		}
	}
	if !reflect.DeepEqual(flat.Stats(), mapped.Stats()) {
		t.Fatalf("stats: flat %+v, map path %+v", flat.Stats(), mapped.Stats())
	}
	if !reflect.DeepEqual(flat.RuleStats(), mapped.RuleStats()) {
		t.Fatalf("rule stats:\nflat %+v\nmap  %+v", flat.RuleStats(), mapped.RuleStats())
	}
	if n := flat.Stats().Events; flat.flatEvents < n*3/4 || mapped.flatEvents != 0 {
		t.Fatalf("%d of %d events took the flat path, %d on the map path engine", flat.flatEvents, n, mapped.flatEvents)
	}
	var fired, failed int
	for _, r := range flat.RuleStats() {
		if r.Alerts > 0 {
			fired++
		}
		if r.Errors > 0 {
			failed++
		}
	}
	if fired < 6 || failed < 2 {
		t.Fatalf("the rules did too little to compare: %d fired, %d failed: %+v", fired, failed, flat.RuleStats())
	}
}

// TestRouteCacheBounded: a flood of new topics (device ids) keeps at most
// maxRoutes routes, and every message is still routed right.
func TestRouteCacheBounded(t *testing.T) {
	set, err := rules.Parse([]string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(`
rules:
  - {name: hot, from: "sensors/{device}/temperature", where: temperature > 80, key: device}
`)})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := maxRoutes + 5000
	fired := 0
	for i := 0; i < n; i++ {
		alerts, err := e.Process(Message{Topic: fmt.Sprintf("sensors/d%d/temperature", i), Payload: []byte(fmt.Sprintf(`{"temperature":%d,"ts":%d}`, 70+i%20, 1767571200+i))})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if a.Key != fmt.Sprintf("d%d", i) {
				t.Fatalf("message %d: alert for key %s", i, a.Key)
			}
			fired++
		}
	}
	if len(e.routes) > maxRoutes {
		t.Fatalf("%d routes kept, cap %d", len(e.routes), maxRoutes)
	}
	if want := n * 9 / 20; fired < want-1 || fired > want+1 {
		t.Fatalf("%d alerts, want about %d", fired, want)
	}
}

// TestOnFlatEventSeesWhatOnEventSees: with OnFlatEvent set beside OnEvent,
// the flat path stays on, and each event reaches one of the two hooks with
// what the map path's OnEvent gets: the payload's fields, "topic" and
// "time".
func TestOnFlatEventSeesWhatOnEventSees(t *testing.T) {
	set, err := rules.Parse([]string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(flatRules)})
	if err != nil {
		t.Fatal(err)
	}
	snapshot := func(f map[string]any) map[string]any {
		c := make(map[string]any, len(f))
		for k, v := range f {
			c[k] = v
		}
		return c
	}
	var both, mapOnly []map[string]any
	flatCalls := 0
	eb, err := New(set, Options{
		OnEvent: func(ev *event.Event) { both = append(both, snapshot(ev.Fields)) },
		OnFlatEvent: func(topic string, tm time.Time, names []string, vals []any) {
			flatCalls++
			m := map[string]any{}
			for i, k := range names {
				m[k] = vals[i]
			}
			m["topic"], m["time"] = topic, tm // over the payload's own
			both = append(both, m)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	em, err := New(set, Options{OnEvent: func(ev *event.Event) { mapOnly = append(mapOnly, snapshot(ev.Fields)) }})
	if err != nil {
		t.Fatal(err)
	}
	payloads := []string{
		`{"order":"o1","customer":"c1","amount":1500.5,"qty":3,"country":"FR","express":true,"ts":1767571200000}`,
		`{"amount":20,"time":"2026-01-05T10:00:00Z","topic":"spoof"}`,
		`{"amount":7,"amount":8}`, // a repeated name: the map path
		`{"nested":{"a":[1]},"amount":150,"country":"DE"}`,
		`[{"amount":1},{"amount":2000,"country":"DE"}]`,
		`21.5`,
	}
	for i, p := range payloads {
		m := Message{Topic: fmt.Sprintf("shop/s%d/orders", i), Payload: []byte(p), Received: time.Date(2026, 1, 5, 10, 0, i, 0, time.UTC)}
		_, err1 := eb.Process(m)
		_, err2 := em.Process(m)
		if fmt.Sprint(err1) != fmt.Sprint(err2) {
			t.Fatalf("%s: %v vs %v", p, err1, err2)
		}
	}
	if flatCalls == 0 || eb.flatEvents == 0 {
		t.Fatalf("OnFlatEvent called %d times, %d flat events: the flat path is off", flatCalls, eb.flatEvents)
	}
	if em.flatEvents != 0 {
		t.Fatalf("OnEvent alone: %d flat events, want the map path", em.flatEvents)
	}
	if !reflect.DeepEqual(both, mapOnly) {
		t.Fatalf("hooks saw\n%v\nthe map path's OnEvent\n%v", both, mapOnly)
	}
}
