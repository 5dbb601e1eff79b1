package engine

import (
	"strings"
	"testing"
)

// TestRuleOverBudgetDisabled: a rule whose expression goes over its
// run-time budget is counted once and disabled; the other rules, stateless
// and windowed, go on.
func TestRuleOverBudgetDisabled(t *testing.T) {
	e := newEngine(t, `rules:
  - {name: heavy, from: 'x/{k}', key: k, where: 'map(1..n, # * 2)[0] > 0'}
  - {name: light, from: 'x/{k}', key: k, where: 'n > 0'}
  - {name: win, from: 'x/{k}', key: k, where: 'map(1..n, # * 2)[0] > 0', window: {count: 1}, aggregate: {c: count()}}
`, Options{})
	got := feed(e,
		`{"topic":"x/a","payload":{"n":3,"ts":"2026-01-05T10:00:00Z"}}`,
		`{"topic":"x/a","payload":{"n":1000000,"ts":"2026-01-05T10:00:01Z"}}`,
		`{"topic":"x/a","payload":{"n":3,"ts":"2026-01-05T10:00:02Z"}}`,
		`{"topic":"x/a","payload":{"n":4,"ts":"2026-01-05T10:00:03Z"}}`)
	per := map[string]int{}
	for _, a := range got {
		per[a.Rule]++
	}
	if per["heavy"] != 1 || per["win"] != 1 || per["light"] != 4 {
		t.Fatalf("alerts per rule %v", per)
	}
	for _, ri := range e.RuleStats() {
		switch ri.Name {
		case "heavy", "win":
			if !strings.Contains(ri.Disabled, "memory budget exceeded") || ri.Errors != 1 {
				t.Errorf("%s: disabled %q, errors %d", ri.Name, ri.Disabled, ri.Errors)
			}
		case "light":
			if ri.Disabled != "" || ri.Errors != 0 {
				t.Errorf("light: disabled %q, errors %d", ri.Disabled, ri.Errors)
			}
		}
	}
}
