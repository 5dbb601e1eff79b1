package engine

import (
	"fmt"
	"strings"
	"testing"
)

// TestRulesKeepEventsOnlyWhenRead: a window or absence rule whose when and
// message read only its own values (and key, rule) keeps no event per key,
// which shows in its checkpoint part; one whose message reads an event
// field keeps it, and renders it.
func TestRulesKeepEventsOnlyWhenRead(t *testing.T) {
	const keys = 200
	var lines []string
	for i := range keys {
		lines = append(lines, fmt.Sprintf(`{"topic":"s/d%03d","payload":{"v":%d,"note":"a reading of some length","ts":"2026-01-05T10:%02d:%02dZ"}}`, i, i, i/60, i%60))
	}
	cases := []struct {
		name, rule string
		lean       bool
	}{
		{"window, no message", "window: {tumbling: 1h}\n    aggregate: {n: count()}", true},
		{"window, key and values", "window: {tumbling: 1h}\n    aggregate: {n: count()}\n    when: n >= 1\n    message: '{{key}}: {{n}} in {{rule}}'", true},
		{"window, a field in the message", "window: {tumbling: 1h}\n    aggregate: {n: count()}\n    message: '{{dev}}: {{n}}'", false},
		{"window, a field in when", "window: {tumbling: 1h}\n    aggregate: {n: count()}\n    when: v >= 0", false},
		{"window, $env", "window: {tumbling: 1h}\n    aggregate: {n: count()}\n    message: '{{ $env.n }}'", false},
		{"absent, no message", "absent: 5m", true},
		{"absent, its values", "absent: 5m\n    message: '{{key}} since {{last_seen}}, {{silent_for}} s'", true},
		{"absent, a field", "absent: 5m\n    message: '{{dev}} since {{last_seen}}'", false},
	}
	size := map[string]int{}
	for _, c := range cases {
		e := newEngine(t, "rules:\n  - name: r\n    from: s/{dev}\n    key: dev\n    "+c.rule+"\n", Options{})
		for i, l := range lines {
			m, err := recordMessage([]byte(l), uint64(i+1))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Process(m); err != nil {
				t.Fatal(err)
			}
		}
		parts, err := e.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		size[c.name] = len(parts["rule/r"])
		as := e.Flush()
		if len(as) != keys {
			t.Fatalf("%s: %d alerts at the end, want %d", c.name, len(as), keys)
		}
		if c.name == "window, a field in the message" && as[0].Message != "d000: 1" {
			t.Fatalf("%s: message %q", c.name, as[0].Message)
		}
		if c.name == "absent, a field" && !strings.HasPrefix(as[0].Message, "d000 since ") {
			t.Fatalf("%s: message %q", c.name, as[0].Message)
		}
	}
	t.Logf("checkpoint part bytes: %v", size)
	// An event in a snapshot costs its topic, time and fields: over 60
	// bytes here.
	for _, c := range cases {
		lean := 0
		if strings.HasPrefix(c.name, "window") {
			lean = size["window, no message"]
		} else {
			lean = size["absent, no message"]
		}
		switch {
		case c.lean && size[c.name] > lean+keys*8:
			t.Errorf("%s: %d bytes, as if it kept events (lean: %d)", c.name, size[c.name], lean)
		case !c.lean && size[c.name] < lean+keys*60:
			t.Errorf("%s: %d bytes, as if it kept no events (lean: %d)", c.name, size[c.name], lean)
		}
	}
}
