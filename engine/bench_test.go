package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/rules"
)

func benchEngine(b *testing.B, src string) *Engine {
	set, err := rules.Parse([]string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(src)})
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(set, Options{MaxKeys: 200000})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkPattern3Steps: the overdue → reminder → no payment pattern from
// the rule file, compiled expressions and all, over 100,000 keys, one core.
// Events are decoded beforehand: this is the rule's cost, not the decoder's.
//
//	go test -run '^$' -bench Pattern3Steps -benchtime 1000000x -cpu 1 ./engine
func BenchmarkPattern3Steps(b *testing.B) {
	e := benchEngine(b, `
rules:
  - name: overdue_ignored
    from: families/{family}/events
    key: family
    pattern:
      - {as: overdue, where: type == "PaymentOverdue"}
      - {as: reminder, where: type == "ReminderSent" && invoice == overdue.invoice, within: 24h}
      - {not: true, where: type == "PaymentReceived" && invoice == overdue.invoice, within: 48h}
`)
	const keys = 100000
	types := []string{"PaymentOverdue", "ReminderSent", "Heartbeat", "PaymentReceived"}
	base := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	evs := make([]*event.Event, 1<<16)
	for i := range evs {
		k := (i * 7919) % keys
		t := base.Add(time.Duration(i) * time.Second)
		evs[i] = &event.Event{Topic: fmt.Sprintf("families/f%d/events", k), Time: t, Fields: map[string]any{
			"type": types[(i/keys)%len(types)], "invoice": fmt.Sprintf("i%d", k%100), "topic": "", "time": t, "family": fmt.Sprintf("f%d", k)}}
	}
	rs := e.rules[0]
	b.ReportAllocs()
	b.ResetTimer()
	alerts := 0
	for i := 0; i < b.N; i++ {
		ev := evs[i%len(evs)]
		t := base.Add(time.Duration(i) * time.Second)
		ev.Time = t
		ev.Fields["time"] = t
		alerts += len(rs.process(e, ev, nil))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(rs.op.Stats().Pending), "partials")
}

// BenchmarkProcessJSON: one message through decode and four typical rules.
//
//	go test -run '^$' -bench ProcessJSON -benchtime 200000x -cpu 1 ./engine
func BenchmarkProcessJSON(b *testing.B) {
	e := benchEngine(b, `
rules:
  - {name: hot, from: "sensors/{device}/temperature", where: temperature > 80, key: device}
  - {name: avg, from: "sensors/{device}/temperature", key: device, window: {tumbling: 1m}, aggregate: {avg: avg(temperature)}}
  - {name: spike, from: "sensors/{device}/temperature", key: device, detect: {field: temperature, method: zscore, window: 10m}}
  - {name: silent, from: "sensors/{device}/#", key: device, absent: 5m}
`)
	base := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	msgs := make([]Message, 1000)
	for i := range msgs {
		t := base.Add(time.Duration(i) * time.Second)
		msgs[i] = Message{Topic: fmt.Sprintf("sensors/d%03d/temperature", i%100),
			Payload: []byte(fmt.Sprintf(`{"temperature":%.1f,"ts":%q}`, 50+float64(i%13), t.Format(time.RFC3339)))}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := msgs[i%len(msgs)]
		t := base.Add(time.Duration(i) * time.Second)
		m.Payload = []byte(fmt.Sprintf(`{"temperature":%.1f,"ts":%q}`, 50+float64(i%13), t.Format(time.RFC3339)))
		e.Process(m)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
