package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// letChain is the attack: a `let` chain doubling a string n times.
func letChain(seed string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "let a0 = %s; ", seed)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "let a%d = a%d + a%d; ", i, i-1, i-1)
	}
	fmt.Fprintf(&b, "len(a%d) > 0", n)
	return b.String()
}

func whereRule(expr string) string {
	return "rules:\n  - name: a\n    from: x/{d}\n    where: '" + strings.ReplaceAll(expr, "'", "''") + "'\n"
}

// TestBudgetRefused: expressions whose work or size has no small bound are
// refused when the file is loaded, at the node that crosses the limit.
func TestBudgetRefused(t *testing.T) {
	for _, tc := range []struct{ name, expr, want string }{
		{"let chain from the topic", letChain("topic + topic", 20), "r.yaml:4:103: rule \"a\": where: can build a value of up to 2097152 bytes"},
		{"let chain from a constant", letChain(`"0123456789012345678901234567"`, 20), "can build a value of up to 1835008 bytes"},
		{"let chain of captures", letChain("d", 8), "can build a value"},
		{"nested closures over a let range", "let r = 1..300; any(r, {any(r, {any(r, {# < 0})})})", "r.yaml:4:29: rule \"a\": where: up to 27090300 closure iterations per evaluation; the limit is 100000"},
		{"nested closures over ranges", "any(1..1000, {any(1..1000, {# == x})})", "up to 1001000 closure iterations"},
		{"nested closures over payload arrays", "any(items, {any(items, {# == x})})", "closure iterations"},
		{"closures four deep", "any([1], {any([2], {any([3], {any([4], {# == x})})})})", "closures nested 4 deep; the limit is 3"},
		{"range too large", "any(1..1000000, {# == x})", "r.yaml:4:18: rule \"a\": where: range 1..1000000 has 1000000 elements; the limit is 10000"},
		{"negative range too large", "any(-20000..0, {# == x})", "has 20001 elements"},
		{"reduce appending the topic", `len(reduce(1..5000, #acc + topic, "")) > 0`, "can build a value"},
		{"reduce doubling", `len(reduce(1..30, #acc + #acc, "x")) > 0`, "uses #acc more than once"},
		{"reduce from a number turning to text", `len(reduce(1..30, #index == 0 ? topic : #acc + #acc, 0)) > 0`, "can build a value"},
		{"reduce of text from a number", `len(reduce(items, string(#acc) + #.name, 0)) > 0`, "(or enlarges it) can grow exponentially"},
		{"join of a map", `len(join(map(1..5000, topic), ",")) > 0`, "can build a value"},
		{"replace with a field", `len(replace(topic, "", topic)) > 0`, "can build a value"},
		{"toJSON chain", `let a = toJSON(topic); let b = toJSON(a); let c = toJSON(b); len(c) > 0`, "can build a value"},
		{"string concat in a map", `len(map(1..100, topic + topic + topic)) > 0`, "can build a value"},
		{"conditional branch", letChain("topic", 3) + ` && len(x ? topic : a0 + a0 + a0 + a0 + a0 + a0 + a0 + a0 + a0 + a0 + a0 + a0 + a0 + a0 + a0 + a0 + a0) > 0`, "can build"},
		{"strings built in a closure", `any(1..10000, {len(topic + topic + topic) < 0})`, "bytes of strings per evaluation"},
		{"a pattern compiled per iteration", `any(1..1000, {topic matches d})`, "bytes of strings per evaluation"},
		{"reduce copying its accumulator", `len(reduce(1..10, #acc + d, "")) > 0`, "bytes of strings per evaluation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := parseT(t, whereRule(tc.expr))
			if errs == nil {
				t.Fatalf("accepted %s", tc.expr)
			}
			if !strings.Contains(errs.Error(), tc.want) {
				t.Fatalf("errors:\n%s\nwant one containing %q", errs, tc.want)
			}
		})
	}
}

// TestBudgetAccepted: ordinary expressions, closures and strings included,
// stay within the budget.
func TestBudgetAccepted(t *testing.T) {
	for _, expr := range []string{
		`temperature > 80 && device != "pump1"`,
		`topic + "/" + d != ""`,
		`any(items, {#.v > 10})`,
		`sum(map(readings, #.v)) / len(readings) > 3 && all(readings, {#.ok})`,
		`let r = 1..100; any(r, {any(r, {# == x})})`,
		`any(1..10000, {# == x})`,
		`len(join(split(topic, "/"), ".")) > 3`,
		`let a = 1; let b = a + a; let c = b + b; let e = c + c; let f = e + e; let g = f + f; let h = g + g; let i = h + h; h + i > 0`,
		letChain("topic", 3),
		`upper(d) == "X" || lower(topic) contains "y"`,
		`len(filter(items, {#.v > 1})) > 2`,
		`len(reduce(1..10, #acc + "x", "")) == 10`,
		`lookup("t", d)?.status == "warning"`,
		`any(items, {any(#.tags, {# == "x"})})`,
		`len(map(items, #.name + "x")) > 0`,
		`topic matches "^a/.*"`,
		`reduce(1..10000, #acc + #, 0) > 5`,
		`reduce(items, #acc + #.v, 0) > 5`,
		`reduce(1..100, #acc + #) > 5`,
		`reduce(items, #acc * #.v, 1.5) > 5`,
		`x in ["a", "b", "c"] && y in 1..5`,
	} {
		src := "tables:\n  - {name: t, from: \"t/{d}\", key: d}\n" + whereRule(expr)
		if _, errs := parseT(t, src); errs != nil {
			t.Errorf("%s: %v", expr, errs)
		}
	}
}

// TestBudgetMessage: a message placeholder is budgeted like any
// expression, and the error names its column.
func TestBudgetMessage(t *testing.T) {
	src := "rules:\n  - name: a\n    from: x\n    message: \"big {{ " + letChain("topic", 6) + " }}\"\n"
	_, errs := parseT(t, src)
	if errs == nil || !strings.Contains(errs.Error(), `r.yaml:4:`) || !strings.Contains(errs.Error(), `rule "a": message: can build a value`) {
		t.Fatalf("errors: %v", errs)
	}
}

// TestBudgetRuntimeMemory: what only run time can tell (a range with
// bounds from the payload) stops at the VM's memory budget, and the rule
// is disabled: its expressions fail at once from then on.
func TestBudgetRuntimeMemory(t *testing.T) {
	set, errs := parseT(t, "rules:\n  - name: a\n    from: x\n    where: 'len(s) > 0 && map(1..n, # * 2)[0] > 0'\n    key: s\n")
	if errs != nil {
		t.Fatal(errs)
	}
	r := set.Rules[0]
	if ok, err := r.Where.Bool(map[string]any{"s": "x", "n": 10}); err != nil || !ok {
		t.Fatalf("small range: %v %v", ok, err)
	}
	if r.Disabled() != "" {
		t.Fatalf("disabled early: %s", r.Disabled())
	}
	_, err := r.Where.Bool(map[string]any{"s": "x", "n": 1000000})
	if !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), "memory budget") {
		t.Fatalf("a huge allocation must stop at the memory budget, got %v", err)
	}
	if !strings.Contains(r.Disabled(), "memory budget exceeded") {
		t.Fatalf("rule not disabled: %q", r.Disabled())
	}
	// From then on the rule's expressions fail at once.
	if _, err := r.Where.Bool(map[string]any{"s": "x", "n": 10}); !errors.Is(err, ErrBudget) {
		t.Fatalf("after disabling: %v", err)
	}
	// A new load is a new rule: running again.
	set2, _ := parseT(t, "rules:\n  - name: a\n    from: x\n    where: 'len(s) > 0 && map(1..n, # * 2)[0] > 0'\n")
	if set2.Rules[0].Disabled() != "" {
		t.Fatal("a reload must start enabled")
	}
}

// TestBudgetRuntimeString: inputs far beyond what the static bound
// assumes can still build a large string; the result is refused and the
// rule disabled.
func TestBudgetRuntimeString(t *testing.T) {
	set, errs := parseT(t, "rules:\n  - name: a\n    from: x\n    key: 'let b = big + big; b + b'\n")
	if errs != nil {
		t.Fatal(errs)
	}
	r := set.Rules[0]
	if _, err := r.Key.Run(map[string]any{"big": "abc"}); err != nil {
		t.Fatal(err)
	}
	_, err := r.Key.Run(map[string]any{"big": strings.Repeat("x", maxBuild/3)})
	if !errors.Is(err, ErrBudget) || !strings.Contains(r.Disabled(), "built a string of") {
		t.Fatalf("err %v, disabled %q", err, r.Disabled())
	}
}

// TestBudgetRuntimeTime: slowEvals evaluations in a row slower than
// evalTimeLimit disable the rule (the limit is set to nothing here, so any
// evaluation is slow).
func TestBudgetRuntimeTime(t *testing.T) {
	set, errs := parseT(t, "rules:\n  - name: a\n    from: x\n    where: 'any(1..100, {# == x})'\n  - name: b\n    from: x\n    where: 'x > 1'\n")
	if errs != nil {
		t.Fatal(errs)
	}
	old := evalTimeLimit
	evalTimeLimit = -1
	defer func() { evalTimeLimit = old }()
	for i := 1; i < slowEvals; i++ {
		if _, err := set.Rules[0].Where.Bool(map[string]any{"x": 5}); err != nil || set.Rules[0].Disabled() != "" {
			t.Fatalf("slow evaluation %d alone disables: %v", i, err)
		}
	}
	if _, err := set.Rules[0].Where.Bool(map[string]any{"x": 5}); !errors.Is(err, ErrBudget) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(set.Rules[0].Disabled(), "evaluations in a row took over") {
		t.Fatalf("disabled %q", set.Rules[0].Disabled())
	}
	// Only expressions with closures or calls are timed; other rules run.
	if ok, err := set.Rules[1].Where.Bool(map[string]any{"x": 5}); err != nil || !ok || set.Rules[1].Disabled() != "" {
		t.Fatalf("rule b: %v %v %q", ok, err, set.Rules[1].Disabled())
	}
}

// FuzzBudget: the walker never panics, and an expression it accepts,
// evaluated over inputs within budgetInput, never returns a string larger
// than maxBuild nor trips the memory budget's string-blind spot.
func FuzzBudget(f *testing.F) {
	for _, s := range []string{
		letChain("topic", 3), letChain("d", 20), "any(1..10, {any(1..10, {# == x})})",
		`len(reduce(1..10, #acc + "x", "")) == 10`, `join(map(split(topic, "/"), upper(#)), "-") == d`,
		`let r = 1..300; any(r, {any(r, {any(r, {# < 0})})})`, `replace(topic, "/", d + d) != ""`,
		`toJSON({"a": [topic, d]}) != ""`, `x ?? d + d`, `(x ? topic : d)[1:3] == "ab"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		if len(expr) > 512 || strings.ContainsAny(expr, "\n\r") {
			return
		}
		set, errs := parseT(t, "rules:\n  - name: a\n    from: x/{d}\n    key: '"+strings.ReplaceAll(expr, "'", "''")+"'\n")
		if errs != nil {
			return
		}
		env := map[string]any{"topic": "x/abcdef", "d": "abcdef", "x": 3.0, "time": time.Unix(0, 0),
			"items": []any{map[string]any{"v": 1.0}}}
		v, err := set.Rules[0].Key.Run(env)
		if s, ok := v.(string); ok && len(s) > maxBuild {
			t.Fatalf("%q built %d bytes", expr, len(s))
		}
		_ = err
	})
}

// TestMessageCapped: a message with many large placeholders is cut at
// maxBuild bytes, ending in "…".
func TestMessageCapped(t *testing.T) {
	src := "rules:\n  - name: a\n    from: x\n    message: \"" + strings.Repeat("{{big}} ", 20) + "\"\n"
	set, errs := parseT(t, src)
	if errs != nil {
		t.Fatal(errs)
	}
	got, err := set.Rules[0].Message.Render(map[string]any{"big": strings.Repeat("é", budgetInput/2)})
	if err != nil || len(got) > maxBuild || !strings.HasSuffix(got, "…") || !utf8.ValidString(got) {
		t.Fatalf("message of %d bytes, %v", len(got), err)
	}
	if got, _ := set.Rules[0].Message.Render(map[string]any{"big": "x"}); got != strings.Repeat("x ", 20) {
		t.Fatalf("small message %q", got)
	}
}
