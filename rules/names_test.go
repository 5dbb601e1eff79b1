package rules

import (
	"fmt"
	"slices"
	"testing"
)

// TestNames: the variables an expression reads decide whether a window or
// absence rule keeps each key's last event (engine), so a name missed here
// would render a message without its fields.
func TestNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{"n >= 3", []string{"n"}},
		{"n >= 3 && avg > n", []string{"n", "avg"}},
		{"order.amount > 1", []string{"order"}},
		{`upper(machine) == "M1"`, []string{"machine"}},
		{`$env["device"] == "a"`, []string{"$env"}},
		{"any(xs, # > limit)", []string{"xs", "limit"}},
		{`device + "!" != ""`, []string{"device"}},
		{"1 + 2 > 2", nil},
	} {
		src := fmt.Sprintf("rules:\n  - name: a\n    from: x\n    where: '%s'\n", c.expr)
		set, errs := parseT(t, src)
		if errs != nil {
			t.Fatalf("%s: %v", c.expr, errs)
		}
		got := set.Rules[0].Where.Names()
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("%s: names %q, want %q among them", c.expr, got, w)
			}
		}
		if len(c.want) == 0 && len(got) != 0 {
			t.Errorf("%s: names %q, want none", c.expr, got)
		}
	}
}

func TestTemplateNames(t *testing.T) {
	set, errs := parseT(t, "rules:\n  - name: a\n    from: x\n    message: \"{{key}} {{n}} {{ n * 2 }} {{device}}\"\n")
	if errs != nil {
		t.Fatal(errs)
	}
	got := set.Rules[0].Message.Names()
	if !slices.Equal(got, []string{"key", "n", "device"}) {
		t.Fatalf("names %q", got)
	}
	if (*Template)(nil).Names() != nil || (*Program)(nil).Names() != nil {
		t.Fatal("no template, no names")
	}
	if !ReadsOnly(got, "key", "n", "device") || ReadsOnly(got, "key", "n") || !ReadsOnly(nil) {
		t.Fatal("ReadsOnly")
	}
}
