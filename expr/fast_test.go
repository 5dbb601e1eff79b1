package expr

import (
	"math"
	"reflect"
	"strings"
	"testing"

	exprlang "github.com/expr-lang/expr"
	"github.com/expr-lang/expr/types"
)

// compileTest compiles src as rule expressions are compiled (undeclared
// variables allowed, the same disabled builtins).
func compileTest(src string, asBool bool) (*Program, error) {
	opts := []exprlang.Option{exprlang.Env(types.Map{"topic": types.String}), exprlang.AllowUndefinedVariables(), exprlang.MaxNodes(maxExprNodes)}
	for _, b := range disabledBuiltins {
		opts = append(opts, exprlang.DisableBuiltin(b))
	}
	if asBool {
		opts = append(opts, exprlang.AsBool())
	}
	prog, err := exprlang.Compile(src, opts...)
	if err != nil {
		return nil, err
	}
	return newProgram(src, prog), nil
}

// sameValue compares results as the VM's would be compared, NaN equal to
// NaN.
func sameValue(a, b any) bool {
	if x, ok := a.(float64); ok {
		if y, ok := b.(float64); ok {
			return x == y || math.IsNaN(x) && math.IsNaN(y)
		}
	}
	return reflect.DeepEqual(a, b)
}

// checkFast evaluates src in env by the fast path and by the VM alone and
// fails if they differ: in value, or because the fast path answered where
// the VM fails.
func checkFast(t *testing.T, src string, env map[string]any) (fast bool) {
	t.Helper()
	p, err := compileTest(src, false)
	if err != nil {
		return false
	}
	want, wantErr := p.runVM(Env{Vars: env})
	got, gotErr := p.Run(Env{Vars: env})
	if (wantErr != nil) != (gotErr != nil) || wantErr == nil && !sameValue(got, want) {
		t.Fatalf("%s with %v: Run = %#v, %v; VM = %#v, %v", src, env, got, gotErr, want, wantErr)
	}
	if p.fast != nil {
		_, fast = p.fast(env)
	}
	pb, err := compileTest(src, true)
	if err != nil {
		return fast
	}
	b, err := pb.Bool(Env{Vars: env})
	var vb bool
	out, verr := pb.runVM(Env{Vars: env})
	if verr == nil {
		switch x := out.(type) {
		case bool:
			vb = x
		case nil:
		default:
			verr = errNotBool
		}
	}
	if (err != nil) != (verr != nil) || err == nil && b != vb {
		t.Fatalf("%s with %v as bool: Bool = %v, %v; VM = %v, %v", src, env, b, err, vb, verr)
	}
	return fast
}

var errNotBool = errorString("not a boolean")

type errorString string

func (e errorString) Error() string { return string(e) }

func TestFastPathAgreesWithVM(t *testing.T) {
	env := map[string]any{"amount": 1234.5, "qty": 3.0, "zero": 0.0, "country": "FR", "order": "x17",
		"express": true, "no": false, "mark": nil, "count": int64(7), "when": "2026-01-01", "obj": map[string]any{"a": 1.0}}
	cases := []struct {
		src  string
		fast bool // whether the fast path answers (not the VM)
	}{
		{`amount > 1000 && country != "UK"`, true},
		{`express && amount > 500 && country not in ["UK", "IE"]`, true},
		{`country in ["FR", "DE"]`, true},
		{`qty > 0 && amount / qty > 400`, true},
		{`amount / zero > 1`, true}, // +Inf, as in the VM
		{`zero / zero == zero / zero`, true},
		{`order startsWith "x"`, true},
		{`order endsWith "7" and order contains "1"`, true},
		{`mark != nil`, true},
		{`mark == nil || amount < 0`, true},
		{`missing == nil`, true},
		{`mark ?? 5`, true},
		{`!(amount < 2.5) or no`, true},
		{`-amount < -1000`, true},
		{`amount`, true},
		{`country`, true},
		{`amount + 1`, true},
		{`amount * 2 - qty`, true},
		{`country < "GB"`, true},
		{`amount == 1234.5`, true},
		{`amount == "1234.5"`, true}, // different types: false, no error
		{`express == true`, true},
		{`qty == 3`, true},
		// The VM's business: errors, ints, maps, calls.
		{`mark > 1`, false},
		{`country > 1`, false},
		{`mark && express`, false},
		{`not mark`, false},
		{`count > 5`, false},
		{`count == 7`, false},
		{`obj.a > 0`, false},
		{`len(country) > 1`, false},
		{`amount % 2 == 0.5`, false},
		{`1 + count`, false},
		{`mark in ["", "a"]`, false},
		{`amount in ["a"]`, false},
		{`country matches "^F"`, false},
		{`amount > 1 ? "a" : "b"`, false},
		{`$env.amount > 1`, false},
		{`9007199254740993 > amount`, false},
	}
	for _, c := range cases {
		if got := checkFast(t, c.src, env); got != c.fast {
			t.Errorf("%s: fast path answered = %v, want %v", c.src, got, c.fast)
		}
	}
}

// FuzzFastPath generates expressions and environments from the input and
// holds the fast path to exactly the VM's results.
func FuzzFastPath(f *testing.F) {
	for _, s := range []string{"", "\x01\x02\x03", "abcdefghijklmnopqrstuvwxyz", "\xff\x10\x20\x30\x40\x50\x60\x70\x80\x90",
		"amount > 1000 && country", "\x05\x13\x07\x22\x09\x41\x0b\x0c\x0d"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &exprGen{data: data}
		env := map[string]any{}
		for _, name := range fuzzVars {
			if v := g.value(); v != absent {
				env[name] = v
			}
		}
		src := g.expr(0)
		checkFast(t, src, env)
	})
}

var fuzzVars = []string{"a", "b", "s", "t", "p", "q"}

type absentT struct{}

var absent = absentT{}

var fuzzValues = []any{absent, nil, 0.0, 1.5, -2.0, 1000.0, 3.0, math.Inf(1), "", "UK", "x1", "FR", true, false, int64(3), int(2), map[string]any{"k": 1.0}, []any{1.0}}

type exprGen struct {
	data []byte
	i    int
}

func (g *exprGen) next() int {
	if g.i >= len(g.data) {
		return 0
	}
	g.i++
	return int(g.data[g.i-1])
}

func (g *exprGen) value() any { return fuzzValues[g.next()%len(fuzzValues)] }

var fuzzAtoms = []string{"a", "b", "s", "t", "p", "q", "missing", "0", "3", "1000", "2.5", "0.0", "-1", `"UK"`, `"x"`, `""`, "true", "false", "nil", "9007199254740993"}
var fuzzBinops = []string{"==", "!=", "<", "<=", ">", ">=", "&&", "||", "and", "or", "+", "-", "*", "/", "??", "startsWith", "endsWith", "contains", "%", "in"}

func (g *exprGen) expr(depth int) string {
	c := g.next()
	if depth > 4 || g.i >= len(g.data) {
		c = 0
	}
	switch c % 6 {
	case 0, 1:
		return fuzzAtoms[g.next()%len(fuzzAtoms)]
	case 2:
		op := []string{"!", "not ", "-"}[g.next()%3]
		return op + "(" + g.expr(depth+1) + ")"
	case 3:
		op := fuzzBinops[g.next()%len(fuzzBinops)]
		if op == "in" {
			var items []string
			for n := g.next() % 4; n > 0; n-- {
				items = append(items, fuzzAtoms[g.next()%len(fuzzAtoms)])
			}
			not := ""
			if g.next()%2 == 1 {
				not = "not "
			}
			return "(" + g.expr(depth+1) + " " + not + "in [" + strings.Join(items, ", ") + "])"
		}
		return "(" + g.expr(depth+1) + " " + op + " " + g.expr(depth+1) + ")"
	default:
		op := fuzzBinops[g.next()%len(fuzzBinops)]
		return g.expr(depth+1) + " " + op + " " + g.expr(depth+1)
	}
}
