package expr

import (
	"slices"
	"strings"

	exprast "github.com/expr-lang/expr/ast"
)

// The fast path of expression evaluation.
//
// Most rule expressions are comparisons of payload fields with constants,
// joined by && and ||: `amount > 1000 && country not in ["UK", "IE"]`. The
// expr-lang VM runs one in 80–250 ns on the gateway's reference machine,
// which at ten rules per event is most of the budget of a replay at
// 500,000 events/s. So at load time the type-checked, optimized AST expr
// produces is also compiled into a tree of Go closures, for the node kinds
// and value types whose meaning is simple: numbers, strings, booleans and
// nil; comparisons, arithmetic, &&, ||, !, in (a constant list), ??,
// startsWith, endsWith, contains.
//
// The closures never decide what the VM would decide differently: where
// expr would convert, fail or reach for reflection (an int field from line
// protocol, a time, a map, nil where a boolean is needed, a type mismatch
// in a comparison), they report !ok and Program runs the VM instead, which
// then gives its own result or error. A differential fuzz test
// (FuzzFastPath) holds the two to identical results.
//
// Expressions with other nodes (function calls such as lookup, member
// access, closures, let, conditionals) are not compiled: the VM runs them.

type fkind uint8

const (
	fNil fkind = iota
	fNum       // float64
	fInt       // an integer constant (expr keeps ints apart from floats)
	fStr
	fBool
)

// fval is a value of the fast path: no interface, so no allocation.
type fval struct {
	k fkind
	b bool
	n float64
	s string
}

// fexpr evaluates a node over an event's variables; ok=false hands the
// whole evaluation to the VM.
type fexpr func(env map[string]any) (v fval, ok bool)

// maxExactInt is the largest integer constant the fast path takes: beyond
// it float64 cannot hold every integer, and expr's int arithmetic differs.
const maxExactInt int64 = 1 << 53

// compileFast returns the fast form of n, or nil if any node is outside
// the fast subset.
func compileFast(n exprast.Node) fexpr {
	switch x := n.(type) {
	case *exprast.IdentifierNode:
		if strings.HasPrefix(x.Value, "$") { // $env: the whole environment
			return nil
		}
		name := x.Value
		return func(env map[string]any) (fval, bool) { return load(env[name]) }
	case *exprast.IntegerNode:
		if v := int64(x.Value); v > maxExactInt || v < -maxExactInt {
			return nil
		}
		return constant(fval{k: fInt, n: float64(x.Value)})
	case *exprast.FloatNode:
		return constant(fval{k: fNum, n: x.Value})
	case *exprast.StringNode:
		return constant(fval{k: fStr, s: x.Value})
	case *exprast.BoolNode:
		return constant(fval{k: fBool, b: x.Value})
	case *exprast.NilNode:
		return constant(fval{})
	case *exprast.ConstantNode:
		v, ok := constValue(x.Value)
		if !ok {
			return nil
		}
		return constant(v)
	case *exprast.UnaryNode:
		return fastUnary(x)
	case *exprast.BinaryNode:
		return fastBinary(x)
	}
	return nil
}

func constant(v fval) fexpr {
	return func(map[string]any) (fval, bool) { return v, true }
}

func constValue(v any) (fval, bool) {
	switch c := v.(type) {
	case nil:
		return fval{}, true
	case float64:
		return fval{k: fNum, n: c}, true
	case int:
		if v := int64(c); v > maxExactInt || v < -maxExactInt {
			return fval{}, false
		}
		return fval{k: fInt, n: float64(c)}, true
	case string:
		return fval{k: fStr, s: c}, true
	case bool:
		return fval{k: fBool, b: c}, true
	}
	return fval{}, false
}

// load takes a value from the environment; anything but what JSON decodes
// to (and a decoded number is always a float64) goes to the VM.
func load(v any) (fval, bool) {
	switch x := v.(type) {
	case nil:
		return fval{}, true
	case float64:
		return fval{k: fNum, n: x}, true
	case string:
		return fval{k: fStr, s: x}, true
	case bool:
		return fval{k: fBool, b: x}, true
	}
	return fval{}, false
}

func numeric(v fval) bool { return v.k == fNum || v.k == fInt }

func fastUnary(x *exprast.UnaryNode) fexpr {
	in := compileFast(x.Node)
	if in == nil {
		return nil
	}
	switch x.Operator {
	case "!", "not":
		return func(env map[string]any) (fval, bool) {
			v, ok := in(env)
			if !ok || v.k != fBool {
				return fval{}, false
			}
			return fval{k: fBool, b: !v.b}, true
		}
	case "-":
		return func(env map[string]any) (fval, bool) {
			v, ok := in(env)
			if !ok || v.k != fNum {
				return fval{}, false
			}
			return fval{k: fNum, n: -v.n}, true
		}
	case "+":
		return func(env map[string]any) (fval, bool) {
			v, ok := in(env)
			if !ok || v.k != fNum {
				return fval{}, false
			}
			return v, true
		}
	}
	return nil
}

func fastBinary(x *exprast.BinaryNode) fexpr {
	if x.Operator == "in" {
		return fastIn(x)
	}
	l, r := compileFast(x.Left), compileFast(x.Right)
	if l == nil || r == nil {
		return nil
	}
	gen := fastBinaryGeneric(x, l, r)
	if gen == nil {
		return nil
	}
	if sp := fastCompareConst(x, gen); sp != nil {
		return sp
	}
	return gen
}

// fastCompareConst is the commonest condition, a field compared with a
// constant (amount > 1000, country != "UK"), in one closure; any other
// type of field value takes the general closure.
func fastCompareConst(x *exprast.BinaryNode, gen fexpr) fexpr {
	id, ok := x.Left.(*exprast.IdentifierNode)
	if !ok || strings.HasPrefix(id.Value, "$") {
		return nil
	}
	var c fval
	switch y := x.Right.(type) {
	case *exprast.IntegerNode:
		if v := int64(y.Value); v > maxExactInt || v < -maxExactInt {
			return nil
		}
		c = fval{k: fInt, n: float64(y.Value)}
	case *exprast.FloatNode:
		c = fval{k: fNum, n: y.Value}
	case *exprast.StringNode:
		c = fval{k: fStr, s: y.Value}
	default:
		return nil
	}
	v, op := id.Value, x.Operator
	if c.k == fStr {
		if op != "==" && op != "!=" {
			return nil
		}
		neg := op == "!="
		return func(env map[string]any) (fval, bool) {
			if s, ok := env[v].(string); ok {
				return fval{k: fBool, b: (s == c.s) != neg}, true
			}
			return gen(env)
		}
	}
	n := c.n
	var cmp func(a float64) bool
	switch op {
	case "<":
		cmp = func(a float64) bool { return a < n }
	case "<=":
		cmp = func(a float64) bool { return a <= n }
	case ">":
		cmp = func(a float64) bool { return a > n }
	case ">=":
		cmp = func(a float64) bool { return a >= n }
	case "==":
		cmp = func(a float64) bool { return a == n }
	case "!=":
		cmp = func(a float64) bool { return a != n }
	default:
		return nil
	}
	return func(env map[string]any) (fval, bool) {
		if a, ok := env[v].(float64); ok {
			return fval{k: fBool, b: cmp(a)}, true
		}
		return gen(env)
	}
}

func fastBinaryGeneric(x *exprast.BinaryNode, l, r fexpr) fexpr {
	switch x.Operator {
	case "&&", "and", "||", "or":
		// The left operand decides when it is false for &&, true for ||.
		// The VM leaves the right operand's value as the result; only a
		// boolean is taken here.
		decides := x.Operator == "||" || x.Operator == "or"
		return func(env map[string]any) (fval, bool) {
			a, ok := l(env)
			if !ok || a.k != fBool {
				return fval{}, false
			}
			if a.b == decides {
				return a, true
			}
			b, ok := r(env)
			if !ok || b.k != fBool {
				return fval{}, false
			}
			return b, true
		}
	case "??":
		return func(env map[string]any) (fval, bool) {
			a, ok := l(env)
			if !ok {
				return fval{}, false
			}
			if a.k != fNil {
				return a, true
			}
			return r(env)
		}
	case "==", "!=":
		neg := x.Operator == "!="
		return func(env map[string]any) (fval, bool) {
			a, b, ok := pair(l, r, env)
			if !ok {
				return fval{}, false
			}
			var eq bool
			switch {
			case numeric(a) && numeric(b):
				eq = a.n == b.n
			case a.k != b.k:
				eq = false
			case a.k == fStr:
				eq = a.s == b.s
			case a.k == fBool:
				eq = a.b == b.b
			default: // both nil
				eq = true
			}
			return fval{k: fBool, b: eq != neg}, true
		}
	case "<", "<=", ">", ">=":
		op := x.Operator
		return func(env map[string]any) (fval, bool) {
			a, b, ok := pair(l, r, env)
			if !ok {
				return fval{}, false
			}
			var c int // -1, 0, 1; 2 when unordered (NaN)
			switch {
			case numeric(a) && numeric(b):
				switch {
				case a.n < b.n:
					c = -1
				case a.n > b.n:
					c = 1
				case a.n == b.n:
					c = 0
				default:
					c = 2
				}
			case a.k == fStr && b.k == fStr:
				c = strings.Compare(a.s, b.s)
			default:
				return fval{}, false
			}
			var res bool
			switch op {
			case "<":
				res = c == -1
			case "<=":
				res = c == -1 || c == 0
			case ">":
				res = c == 1
			case ">=":
				res = c == 1 || c == 0
			}
			return fval{k: fBool, b: res}, true
		}
	case "+", "-", "*", "/":
		op := x.Operator[0]
		return func(env map[string]any) (fval, bool) {
			a, b, ok := pair(l, r, env)
			if !ok || !numeric(a) || !numeric(b) {
				return fval{}, false
			}
			// expr keeps int op int an int (but for /): not ours to mimic.
			if a.k == fInt && b.k == fInt && op != '/' {
				return fval{}, false
			}
			var n float64
			switch op {
			case '+':
				n = a.n + b.n
			case '-':
				n = a.n - b.n
			case '*':
				n = a.n * b.n
			case '/':
				n = a.n / b.n
			}
			return fval{k: fNum, n: n}, true
		}
	case "startsWith", "endsWith", "contains":
		var f func(s, t string) bool
		switch x.Operator {
		case "startsWith":
			f = strings.HasPrefix
		case "endsWith":
			f = strings.HasSuffix
		default:
			f = strings.Contains
		}
		return func(env map[string]any) (fval, bool) {
			a, b, ok := pair(l, r, env)
			if !ok || a.k != fStr || b.k != fStr {
				return fval{}, false
			}
			return fval{k: fBool, b: f(a.s, b.s)}, true
		}
	}
	return nil
}

// pair evaluates both operands.
func pair(l, r fexpr, env map[string]any) (a, b fval, ok bool) {
	if a, ok = l(env); !ok {
		return a, b, false
	}
	b, ok = r(env)
	return a, b, ok
}

// fastIn handles `x in [constant strings]`, which expr's optimizer turns
// into a lookup in a constant set.
func fastIn(x *exprast.BinaryNode) fexpr {
	c, ok := x.Right.(*exprast.ConstantNode)
	if !ok {
		return nil
	}
	set, ok := c.Value.(map[string]struct{})
	if !ok {
		return nil
	}
	l := compileFast(x.Left)
	if l == nil {
		return nil
	}
	if len(set) <= smallSet {
		// A few strings are compared faster than hashed: most differ in
		// length.
		list := make([]string, 0, len(set))
		for s := range set {
			list = append(list, s)
		}
		return func(env map[string]any) (fval, bool) {
			a, ok := l(env)
			if !ok || a.k != fStr {
				return fval{}, false
			}
			return fval{k: fBool, b: slices.Contains(list, a.s)}, true
		}
	}
	return func(env map[string]any) (fval, bool) {
		a, ok := l(env)
		if !ok || a.k != fStr {
			return fval{}, false
		}
		_, in := set[a.s]
		return fval{k: fBool, b: in}, true
	}
}

// smallSet is the most constants `in` compares one by one.
const smallSet = 8

// box turns a fast result into what the VM would have returned.
func (v fval) box() any {
	switch v.k {
	case fNum:
		return v.n
	case fInt:
		return int(v.n)
	case fStr:
		return v.s
	case fBool:
		return v.b
	}
	return nil
}
