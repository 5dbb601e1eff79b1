package rules

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/expr"
)

func parseT(t *testing.T, src string) (*Set, Errors) {
	t.Helper()
	set, err := Parse([]string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(src)})
	return set, AsErrors(err)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"no rules", "sources: []\n", "r.yaml:1:1: file: missing `rules:`"},
		{"bad name", "rules:\n  - name: Hot\n    from: a\n", `r.yaml:2:11: rule: name "Hot"`},
		{"missing from", "rules:\n  - name: a\n", `r.yaml:2:5: rule "a": missing ` + "`from`"},
		{"unknown key", "rules:\n  - name: a\n    from: a\n    wehre: x\n", `r.yaml:4:5: rule: unknown key "wehre" (did you mean "where"?)`},
		{"duplicate", "rules:\n  - name: a\n    from: a\n  - name: a\n    from: b\n", `r.yaml:4:5: rule "a": duplicate name, first defined at r.yaml:2:5`},
		{"duration", "rules:\n  - name: a\n    from: a\n    cooldown: 5 min\n", `r.yaml:4:15: rule "a": cooldown: bad duration "5 min"`},
		{"duplicate with errors", "rules:\n  - name: a\n    from: a/#/b\n  - name: a\n    from: b\n    severity: high\n", `r.yaml:4:5: rule "a": duplicate name, first defined at r.yaml:2:5`},
		{"duplicate both bad", "rules:\n  - name: a\n    from: a\n    where: x >\n  - name: a\n    from: b\n    where: y >\n", `r.yaml:5:5: rule "a": duplicate name, first defined at r.yaml:2:5`},
		{"day duration", "rules:\n  - name: a\n    from: a\n    cooldown: 1 d\n", `cooldown: bad duration "1 d" (write a number and a unit: 90s, 5m, 24h, 7d, 2w, 1d12h)`},
		{"negative duration", "rules:\n  - name: a\n    from: a\n    absent: -5m\n", `duration must be positive`},
		{"filter", "rules:\n  - name: a\n    from: a/#/b\n", `r.yaml:3:11: rule "a": from: topic filter "a/#/b"`},
		{"star", "rules:\n  - name: a\n    from: sensors/*/temp\n", `r.yaml:3:19: rule "a": from: topic filter "sensors/*/temp": level 2: MQTT has no * wildcard; did you mean +?`},
		{"star in list", "rules:\n  - name: a\n    from: [a/b, \"s/pump*\"]\n", `r.yaml:3:24: rule "a": from: topic filter "s/pump*": level 2: MQTT has no * wildcard`},
		{"star in source", "sources:\n  - {from: \"shop/*\", lateness: 1m}\nrules: []\n", `r.yaml:2:18: source: from: topic filter "shop/*": level 2: MQTT has no * wildcard`},
		{"star in table", "tables:\n  - {name: t, from: m/*/s}\nrules: []\n", `r.yaml:2:23: table: from: topic filter "m/*/s": level 2: MQTT has no * wildcard`},
		{"not bool", "rules:\n  - name: a\n    from: a\n    where: x * 2\n", `r.yaml:4:12: rule "a": where: must be a boolean expression`},
		{"typed not bool", `rules:
  - name: a
    from: a
    where: topic + "x"
`, `rule "a": where:`},
		{"syntax", "rules:\n  - name: a\n    from: a\n    where: x >\n", `r.yaml:4:14: rule "a": where: unexpected token EOF`},
		{"window type", "rules:\n  - name: a\n    from: a\n    window: {slidin: 1h}\n    aggregate: {n: count()}\n", `r.yaml:4:14: rule "a": window: unknown type "slidin" (did you mean "sliding"?)`},
		{"hopping every", "rules:\n  - name: a\n    from: a\n    window: {hopping: 10m, every: 20m}\n    aggregate: {n: count()}\n", `every (20m0s) must not exceed`},
		{"window no aggregate", "rules:\n  - name: a\n    from: a\n    window: {tumbling: 1m}\n", "a window needs `aggregate:`"},
		{"when without window", "rules:\n  - name: a\n    from: a\n    when: x > 1\n", "when needs a window"},
		{"unknown aggregate", "rules:\n  - name: a\n    from: a\n    window: {count: 3}\n    aggregate: {m: mean(x)}\n", `unknown function "mean"`},
		{"arity", "rules:\n  - name: a\n    from: a\n    window: {count: 3}\n    aggregate: {m: sum()}\n", `sum takes 1 argument(s), got 0`},
		{"percentile range", "rules:\n  - name: a\n    from: a\n    window: {count: 3}\n    aggregate: {m: \"percentile(x, 101)\"}\n", `percentile wants a number from 0 to 100`},
		{"two kinds", "rules:\n  - name: a\n    from: a\n    absent: 1m\n    pattern: [{where: x}]\n", `pattern and absent cannot be combined`},
		{"not first", "rules:\n  - name: a\n    from: a\n    pattern:\n      - {not: true, where: x == 1, within: 1m}\n", "cannot start with a `not` step"},
		{"trailing not within", "rules:\n  - name: a\n    from: a\n    pattern:\n      - {as: f}\n      - {not: true, where: x == 1}\n", "needs `within`"},
		{"alias reuse", "rules:\n  - name: a\n    from: a\n    pattern:\n      - {as: f}\n      - {as: f}\n", `alias "f" is used twice`},
		{"unknown table", "rules:\n  - name: a\n    from: a\n    where: lookup(\"t\", 1) != nil\n", `lookup: unknown table "t"`},
		{"severity", "rules:\n  - name: a\n    from: a\n    severity: high\n", `severity "high": want info, warning or critical`},
		{"topic template", "rules:\n  - name: a\n    from: a\n    topic: x/{device}\n", `unknown placeholder {device}`},
		{"yaml", "rules:\n  - name: a\n   from: a\n", "r.yaml:3:"},
		{"too long", "rules:\n  - name: a\n    from: a\n    where: x == \"" + strings.Repeat("a", expr.MaxLen) + "\"\n", "limit is 4096"},
		{"too many nodes", "rules:\n  - name: a\n    from: a\n    where: " + strings.Repeat("x + ", 1500) + "x > 1\n", "rule \"a\": where:"},
		{"source dedupe", "sources:\n  - from: a\n    dedupe: {field: id}\nrules: []\n", "needs both field and within"},
		{"source format", "sources:\n  - from: a\n    format: xml\nrules: []\n", `r.yaml:3:13: source: format:`},
		{"table dup", "tables:\n  - {name: t, from: a}\n  - {name: t, from: b}\nrules: []\n", `table "t": already defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := parseT(t, tc.src)
			if errs == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(errs.Error(), tc.want) {
				t.Fatalf("errors:\n%s\nwant one containing %q", errs, tc.want)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, errs := parseT(t, "rules:\n  - name: a\n    from: a\n    where: x >\n  - name: b\n    from: a/#/b\n    cooldown: soon\n")
	if len(errs) != 3 {
		t.Fatalf("want 3 errors, got %d:\n%s", len(errs), errs)
	}
}

func TestParseGood(t *testing.T) {
	set, errs := parseT(t, `
sources:
  - {from: shop/#, lateness: 1m}
  - {from: shop/orders, lateness: 5m}
  - {from: other/#, lateness: 1h}
tables:
  - {name: t, from: "m/{id}/status", key: id}
rules:
  - name: big
    from: [shop/orders, "shop/{store}/orders"]
    where: amount > 1 && lookup("t", store) == nil
    key: customer
    cooldown: 10m
    message: "{{customer}} {{amount * 2}}"
    window: {hopping: 1h, every: 15m}
    aggregate:
      n: count()
      p: "percentile(amount, 90)"
    when: n >= 3 && p > 10
  - name: q
    from: "m/{id}/x"
    pattern:
      - {as: first, where: type == "a"}
      - {as: second, where: type == "b" && x == first.x, within: 5m}
      - {not: true, where: type == "c", within: 1h}
`)
	if errs != nil {
		t.Fatal(errs)
	}
	r := set.Rules[0]
	if r.Kind != Window || r.Lateness != 5*time.Minute || r.Cooldown != 10*time.Minute || len(r.Aggregates) != 2 || r.Aggregates[1].P != 90 {
		t.Fatalf("rule %+v", r)
	}
	if got := strings.Join(set.Filters(), " "); got != "m/+/status m/+/x shop/+/orders shop/orders" {
		t.Fatalf("filters %q", got)
	}
	if set.Rules[1].Kind != Pattern || len(set.Rules[1].Steps) != 3 || !set.Rules[1].Steps[2].Not {
		t.Fatalf("pattern %+v", set.Rules[1])
	}
}

// TestDaysAndWeeks: every duration of a rule file reads days and weeks
// (event.ParseDuration, whose table test covers the syntax; config's test
// covers vigil.yaml's).
func TestDaysAndWeeks(t *testing.T) {
	set, errs := parseT(t, `
sources:
  - {from: shop/#, lateness: 1d, dedupe: {field: id, within: 2w}}
rules:
  - name: w
    from: shop/orders
    cooldown: 1d12h
    window: {hopping: 2w, every: 1d}
    aggregate: {n: count()}
  - name: s
    from: shop/orders
    window: {sliding: 7d}
    aggregate: {n: count()}
  - name: ab
    from: shop/orders
    absent: 1d
  - name: p
    from: shop/orders
    pattern:
      - {as: a}
      - {as: b, within: 1w}
  - name: z
    from: shop/orders
    detect: {field: x, method: zscore, window: 1d}
`)
	if errs != nil {
		t.Fatal(errs)
	}
	const day = 24 * time.Hour
	r := set.Rules
	if r[0].Cooldown != 36*time.Hour || r[0].WindowSpec.Size != 14*day || r[0].WindowSpec.Every != day || r[0].Lateness != day {
		t.Errorf("rule w: cooldown %v, window %+v, lateness %v", r[0].Cooldown, r[0].WindowSpec, r[0].Lateness)
	}
	if r[1].WindowSpec.Size != 7*day {
		t.Errorf("rule s: window %+v", r[1].WindowSpec)
	}
	if r[2].AbsentFor != day {
		t.Errorf("rule ab: absent %v", r[2].AbsentFor)
	}
	if r[3].Steps[1].Within != 7*day {
		t.Errorf("rule p: within %v", r[3].Steps[1].Within)
	}
	if set.Sources[0].DedupeFor != 14*day {
		t.Errorf("source dedupe %v", set.Sources[0].DedupeFor)
	}
}

func TestHashIgnoresLayout(t *testing.T) {
	a, _ := parseT(t, "rules:\n  - name: a\n    from: x\n    where: v > 1 # hot\n")
	b, _ := parseT(t, "rules:\n- {name: a, from: x, where: v > 1}\n")
	c, _ := parseT(t, "rules:\n- {name: a, from: x, where: v > 2}\n")
	if a.Rules[0].Hash != b.Rules[0].Hash || a.Rules[0].Hash == c.Rules[0].Hash {
		t.Fatalf("hashes %s %s %s", a.Rules[0].Hash, b.Rules[0].Hash, c.Rules[0].Hash)
	}
}

func TestTemplate(t *testing.T) {
	set, errs := parseT(t, "rules:\n  - name: a\n    from: x\n    message: \"v={{v}} f={{f}} s={{s}} n={{missing}} t={{time}} bad={{ v / s }}\"\n")
	if errs != nil {
		t.Fatal(errs)
	}
	got, err := set.Rules[0].Message.Render(expr.Env{Vars: map[string]any{"v": 3.0, "f": 1.0 / 3, "s": "x", "time": time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)}})
	if err == nil || got != "v=3 f=0.333333 s=x n= t=2026-01-05T10:00:00Z bad=<error>" {
		t.Fatalf("render %q, %v", got, err)
	}
}

func TestUpstreamTopic(t *testing.T) {
	for _, c := range []struct{ tmpl, gw, key, want string }{
		{"v/{gateway}/{rule}/{key}/{severity}", "gw", "a/b#+", "v/gw/r/a_b__/info"},
		{"alerts", "gw", "k", "alerts"},
		{"{key}{key}/{rule}", "gw", "k\x00", "kk/r"},
		{"x/{unknown}/{gateway", "g/w", "k", "x/{unknown}/{gateway"},
		{"{gateway}/{", "a+b", "k", "a_b/{"},
		{"", "gw", "k", ""},
	} {
		if got := UpstreamTopic(c.tmpl, c.gw, "r", c.key, "info"); got != c.want {
			t.Errorf("UpstreamTopic(%q, %q, key %q) = %q, want %q", c.tmpl, c.gw, c.key, got, c.want)
		}
	}
}

// FuzzParse: the loader never panics, and a file it accepts compiles into
// rules whose expressions can run on an empty event.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../testdata/check/contract.good.yaml", "../testdata/check/rule_errors.bad.yaml", "../testdata/check/budget.bad.yaml", "../examples/demo-rules.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("rules:\n  - {name: a, from: \"x/{d}\", where: d == \"1\", window: {count: 2}, aggregate: {n: count()}}\n"))
	f.Add([]byte("rules: &a [*a]\n"))
	f.Add([]byte("rules:\n  - name: a\n    from: x\n    message: \"{{ {{ }}\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 1<<16 {
			return
		}
		set, err := Parse([]string{"f.yaml"}, map[string][]byte{"f.yaml": src})
		if err != nil {
			if AsErrors(err) == nil {
				t.Fatalf("error without positions: %v", err)
			}
			return
		}
		env := expr.Env{Vars: map[string]any{"topic": "x", "time": time.Unix(0, 0)}}
		for _, r := range set.Rules {
			if r.Where != nil {
				r.Where.Bool(env)
			}
			if r.Message != nil {
				r.Message.Render(env)
			}
		}
	})
}
