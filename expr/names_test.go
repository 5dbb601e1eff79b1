package expr

import (
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
		got := compileT(t, c.expr, nil).Names()
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
	got := templateT(t, "{{key}} {{n}} {{ n * 2 }} {{device}}").Names()
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

// TestPlaceholders: a template's {{ expr }} are found where they stand;
// an unclosed or empty one is an error.
func TestPlaceholders(t *testing.T) {
	phs, err := Placeholders("a {{x}} b {{ y + 1 }}{{z}}")
	if err != nil || !slices.Equal(phs, []Placeholder{{4, 5}, {12, 19}, {23, 24}}) {
		t.Fatalf("%v %v", phs, err)
	}
	for _, bad := range []string{"{{x", "a {{ }}", "{{x}} {{"} {
		if _, err := Placeholders(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if got, _ := templateT(t, "a {{x}} b").Render(Env{Vars: map[string]any{"x": 1.0}}); got != "a 1 b" {
		t.Fatalf("render %q", got)
	}
}
