package expr

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// compileT compiles src as a rule's expression with halt as its rule's
// budget switch; vars are the variables a rule on x/{d} declares.
func compileT(t testing.TB, src string, halt *Halt) *Program {
	t.Helper()
	p, errs := Compile(src, Options{Vars: ruleVars, Halt: halt})
	if errs != nil {
		t.Fatalf("%s: %v", src, errs)
	}
	return p
}

var ruleVars = Vars{"topic": "", "time": time.Time{}, "d": ""}

func vars(m map[string]any) Env { return Env{Vars: m} }

// templateT compiles src as a rule's message.
func templateT(t testing.TB, src string) *Template {
	t.Helper()
	phs, err := Placeholders(src)
	if err != nil {
		t.Fatal(err)
	}
	var progs []*Program
	for _, ph := range phs {
		progs = append(progs, compileT(t, src[ph.Start:ph.End], nil))
	}
	return NewTemplate(src, phs, progs)
}

// TestBudgetRuntimeMemory: what only run time can tell (a range with
// bounds from the payload) stops at the VM's memory budget, and the rule
// is disabled: its expressions fail at once from then on.
func TestBudgetRuntimeMemory(t *testing.T) {
	h := &Halt{Rule: "a"}
	where := compileT(t, `len(s) > 0 && map(1..n, # * 2)[0] > 0`, h)
	if ok, err := where.Bool(vars(map[string]any{"s": "x", "n": 10})); err != nil || !ok {
		t.Fatalf("small range: %v %v", ok, err)
	}
	if h.Reason() != "" {
		t.Fatalf("disabled early: %s", h.Reason())
	}
	_, err := where.Bool(vars(map[string]any{"s": "x", "n": 1000000}))
	if !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), "memory budget") {
		t.Fatalf("a huge allocation must stop at the memory budget, got %v", err)
	}
	if !strings.Contains(h.Reason(), "memory budget exceeded") {
		t.Fatalf("rule not disabled: %q", h.Reason())
	}
	// From then on the rule's expressions fail at once when they reach
	// the VM, this one and any other of the rule's (the engine skips a
	// disabled rule altogether).
	key := compileT(t, `s + "x"`, h)
	if _, err := where.Bool(vars(map[string]any{"s": "x", "n": 10})); !errors.Is(err, ErrBudget) {
		t.Fatalf("after disabling: %v", err)
	}
	if _, err := key.Run(vars(map[string]any{"s": "x"})); !errors.Is(err, ErrBudget) {
		t.Fatalf("another expression of the rule after disabling: %v", err)
	}
}

// TestBudgetRuntimeString: inputs far beyond what the static bound
// assumes can still build a large string; the result is refused and the
// rule disabled.
func TestBudgetRuntimeString(t *testing.T) {
	h := &Halt{Rule: "a"}
	key := compileT(t, `let b = big + big; b + b`, h)
	if _, err := key.Run(vars(map[string]any{"big": "abc"})); err != nil {
		t.Fatal(err)
	}
	_, err := key.Run(vars(map[string]any{"big": strings.Repeat("x", maxBuild/3)}))
	if !errors.Is(err, ErrBudget) || !strings.Contains(h.Reason(), "built a string of") {
		t.Fatalf("err %v, disabled %q", err, h.Reason())
	}
}

// TestBudgetRuntimeTime: slowEvals evaluations in a row slower than
// evalTimeLimit disable the rule (the limit is set to nothing here, so any
// evaluation is slow).
func TestBudgetRuntimeTime(t *testing.T) {
	ha, hb := &Halt{Rule: "a"}, &Halt{Rule: "b"}
	a, b := compileT(t, `any(1..100, {# == x})`, ha), compileT(t, `x > 1`, hb)
	env := vars(map[string]any{"x": 5})
	old := evalTimeLimit
	evalTimeLimit = -1
	defer func() { evalTimeLimit = old }()
	for i := 1; i < slowEvals; i++ {
		if _, err := a.Bool(env); err != nil || ha.Reason() != "" {
			t.Fatalf("slow evaluation %d alone disables: %v", i, err)
		}
	}
	if _, err := a.Bool(env); !errors.Is(err, ErrBudget) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(ha.Reason(), "evaluations in a row took over") {
		t.Fatalf("disabled %q", ha.Reason())
	}
	// Only expressions with closures or calls are timed; other rules run.
	if ok, err := b.Bool(env); err != nil || !ok || hb.Reason() != "" {
		t.Fatalf("rule b: %v %v %q", ok, err, hb.Reason())
	}
}

// FuzzBudget: the walker never panics, and an expression it accepts,
// evaluated over inputs within budgetInput, never returns a string larger
// than maxBuild nor trips the memory budget's string-blind spot.
func FuzzBudget(f *testing.F) {
	for _, s := range []string{
		"let a0 = topic; let a1 = a0 + a0; let a2 = a1 + a1; len(a2) > 0", "let a0 = d; let a1 = a0 + a0; len(a1 + a1 + a1) > 0", "any(1..10, {any(1..10, {# == x})})",
		`len(reduce(1..10, #acc + "x", "")) == 10`, `join(map(split(topic, "/"), upper(#)), "-") == d`,
		`let r = 1..300; any(r, {any(r, {any(r, {# < 0})})})`, `replace(topic, "/", d + d) != ""`,
		`toJSON({"a": [topic, d]}) != ""`, `x ?? d + d`, `(x ? topic : d)[1:3] == "ab"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 512 {
			return
		}
		key, errs := Compile(src, Options{Vars: ruleVars, Halt: &Halt{}})
		if errs != nil {
			return
		}
		env := map[string]any{"topic": "x/abcdef", "d": "abcdef", "x": 3.0, "time": time.Unix(0, 0),
			"items": []any{map[string]any{"v": 1.0}}}
		v, err := key.Run(vars(env))
		if s, ok := v.(string); ok && len(s) > maxBuild {
			t.Fatalf("%q built %d bytes", src, len(s))
		}
		_ = err
	})
}

// TestMessageCapped: a message with many large placeholders is cut at
// maxBuild bytes, ending in "…".
func TestMessageCapped(t *testing.T) {
	msg := templateT(t, strings.Repeat("{{big}} ", 20))
	got, err := msg.Render(vars(map[string]any{"big": strings.Repeat("é", budgetInput/2)}))
	if err != nil || len(got) > maxBuild || !strings.HasSuffix(got, "…") || !utf8.ValidString(got) {
		t.Fatalf("message of %d bytes, %v", len(got), err)
	}
	if got, _ := msg.Render(vars(map[string]any{"big": "x"})); got != strings.Repeat("x ", 20) {
		t.Fatalf("small message %q", got)
	}
}
