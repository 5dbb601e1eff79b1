package rules

import (
	"fmt"
	"strings"
	"testing"
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
