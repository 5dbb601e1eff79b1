package rules

import (
	"strings"
	"testing"

	"github.com/vigil-gw/vigil/expr"
)

// TestErrorsInRuleTerms: expression errors name what the rule file wrote
// (an aggregate, a builtin used as a value, an alias) and never Go types.
func TestErrorsInRuleTerms(t *testing.T) {
	window := "    window: {tumbling: 1m}\n    aggregate: {n: count(), m: max(x)}\n"
	for _, tc := range []struct{ name, rule, want string }{
		{"count in when", window + "    when: count > 3\n",
			`r.yaml:8:17: rule "a": when: count is an aggregate function, not a value: when refers to aggregates by the names given in aggregate: (m, n); add one such as c: count(…) there and use c`},
		{"sum in when", window + "    when: n > 1 && sum > 3\n", `when: sum is an aggregate function, not a value: when refers to aggregates by the names given in aggregate: (m, n)`},
		{"builtin in where", "    where: all > 3\n", `where: all is a built-in function, not a value: call it as all(…); an event field named all is $env.all`},
		{"builtin in message", "    message: \"{{ len + 1 }}\"\n", `message: len is a built-in function, not a value`},
		{"builtin in key", "    key: abs.x\n", `key: abs is a built-in function, not a value`},
		{"alias", "    pattern:\n      - {as: a1, where: x == 1}\n      - {as: a2, where: y == first.y}\n", `pattern step 2: where: first is not the alias of an earlier step (as: first) but a built-in function; an event field named first is $env.first`},
		{"string and number", "    where: topic > 1\n", `where: invalid operation: > (mismatched types string and number)`},
		{"time and number", "    where: time > 1\n", `where: invalid operation: > (mismatched types time and number)`},
		{"lookup field", "    where: lookup(\"t\", x) > 1\n", `where: invalid operation: > (mismatched types object and number)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := parseT(t, "tables:\n  - {name: t, from: \"m/{id}\", key: id}\nrules:\n  - name: a\n    from: \"s/{d}\"\n"+tc.rule)
			if errs == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			got := errs.Error()
			if !strings.Contains(got, tc.want) {
				t.Errorf("errors:\n%s\nwant one containing %q", got, tc.want)
			}
			for _, goism := range []string{"func(", "interface {}", "time.Time", "float64", " int", "map["} {
				if strings.Contains(got, goism) {
					t.Errorf("%q speaks Go (%s)", got, goism)
				}
			}
		})
	}
}

// TestEnvFieldNamedLikeBuiltin: the way out the messages above give works.
func TestEnvFieldNamedLikeBuiltin(t *testing.T) {
	set, errs := parseT(t, "rules:\n  - name: a\n    from: s\n    where: $env.count > 3\n")
	if errs != nil {
		t.Fatal(errs)
	}
	if ok, err := set.Rules[0].Where.Bool(expr.Env{Vars: map[string]any{"count": 5.0}}); err != nil || !ok {
		t.Fatalf("$env.count > 3 with count 5: %v, %v", ok, err)
	}
}
