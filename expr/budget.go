package expr

import (
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"sync/atomic"
	"time"

	exprast "github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
)

// Expression budgets.
//
// expr-lang bounds an expression's size (MaxNodes) and what its VM
// allocates for arrays, maps and ranges (MemoryBudget), but not the bytes
// of strings built by `+`, nor the work of closures (any, all, map, filter,
// reduce, …) nested inside each other over collections that are allocated
// once. `let a = s + s; let b = a + a; …` twenty times builds tens of
// megabytes; `let r = 1..300; any(r, {any(r, {any(r, {# < 0})})})` runs
// 27 million iterations for every event. Both type-check.
//
// So when a rule file is loaded every expression's optimized AST is walked
// once, and each node gets an upper bound on the bytes its value can take,
// the elements it can hold and the closure iterations computing it costs,
// assuming a payload field or topic holds at most budgetInput bytes (the
// bounds grow linearly with the input beyond that). An expression over any
// limit below is refused, at the node that crosses it.
//
// At run time a Program whose evaluation still goes over budget (the VM's
// memory budget, an evaluation slower than evalTimeLimit, a result larger
// than maxBuild) trips its rule's Halt: the rule is disabled, logged once,
// and shown as such, until the rule files are loaded again.
const (
	maxClosureDepth = 3       // closures inside closures
	maxRange        = 10000   // elements of a range with constant bounds
	maxWork         = 100000  // closure iterations per evaluation
	maxBuild        = 1 << 20 // bytes of any value an expression builds
	maxBuilt        = 4 << 20 // bytes of strings built per evaluation, all values
	budgetInput     = 1 << 16 // bytes assumed of a payload field or the topic
	scalarBytes     = 8       // a number, a boolean, a time, in memory
)

// evalTimeLimit is the run-time safety net for what the static bounds
// cannot see (inputs far beyond budgetInput): slowEvals evaluations in a
// row of an expression with closures or calls, each taking longer,
// disable its rule. In a row, because one slow evaluation may be the
// machine's fault (a loaded CPU, a GC pause), not the expression's. A
// variable so tests can make it trip.
var evalTimeLimit = time.Second

const slowEvals = 3

// ErrBudget marks an expression that went over its run-time budget; its
// rule is disabled.
var ErrBudget = fmt.Errorf("expression over its budget: rule disabled until the rules are loaded again")

// Halt is a rule's run-time budget switch, shared by all its expressions.
// Once tripped the rule is disabled: the engine skips it and its
// expressions fail at once with ErrBudget. Loading the rule files again
// builds new Halts.
type Halt struct {
	Rule   string // the rule's name, for the log
	reason atomic.Pointer[string]
	log    *slog.Logger
}

// SetLogger says where the trip is logged (default slog.Default()); the
// engine sets its own before the rule runs.
func (h *Halt) SetLogger(l *slog.Logger) {
	if h != nil {
		h.log = l
	}
}

// Reason is why the rule was disabled, "" while it runs.
func (h *Halt) Reason() string {
	if h == nil {
		return ""
	}
	if r := h.reason.Load(); r != nil {
		return *r
	}
	return ""
}

// trip disables the rule; the first trip is logged.
func (h *Halt) trip(reason string) {
	if h == nil {
		return
	}
	if h.reason.CompareAndSwap(nil, &reason) {
		log := h.log
		if log == nil {
			log = slog.Default()
		}
		log.Warn("rule disabled: an expression went over its budget; fix it and reload the rules",
			"rule", h.Rule, "reason", reason)
	}
}

// bound is what the walk knows of a node's value: at most bytes bytes (a
// string's length, the sum of a collection's elements), at most count
// elements (a collection), elements of at most elem bytes.
type bound struct {
	bytes, count, elem float64
}

var scalar = bound{bytes: scalarBytes, count: 1, elem: scalarBytes}

// input is an unknown field's value: a payload member, the topic, a table
// row.
var input = bound{bytes: budgetInput, count: budgetInput / 2, elem: budgetInput}

// budget walks one expression's AST. work and built add up what computing
// the nodes walked so far costs: closure iterations, and bytes of strings
// built (`+`, join, toJSON, …). Within a closure's body they count one
// iteration; the closure multiplies them.
type budget struct {
	vars        map[string]bound // let variables in scope
	ptr         []bound          // # of the enclosing closures, innermost last
	acc         []bound          // #acc of the enclosing reduce, innermost last
	depth       int
	work, built float64
	err         *file.Error
}

// checkBudget returns the first limit n goes over, nil if none; src is
// the expression's text, for the error's line and column.
func checkBudget(n exprast.Node, src string) *file.Error {
	b := &budget{vars: map[string]bound{}}
	b.walk(n)
	if b.err != nil {
		return b.err.Bind(file.NewSource(src))
	}
	return nil
}

func (b *budget) fail(n exprast.Node, format string, args ...any) bound {
	if b.err == nil {
		b.err = &file.Error{Location: n.Location(), Message: fmt.Sprintf(format, args...)}
	}
	return scalar
}

// walk returns n's bound, checking the limits at n.
func (b *budget) walk(n exprast.Node) bound {
	if b.err != nil {
		return scalar
	}
	v := b.node(n)
	if b.err != nil {
		return scalar
	}
	if fixedSize(n) {
		v = scalar
	}
	switch {
	case b.work > maxWork:
		return b.fail(n, "up to %s closure iterations per evaluation; the limit is %d", human(b.work), maxWork)
	case v.bytes > maxBuild:
		return b.fail(n, "can build a value of up to %s bytes (assuming fields of %d bytes); the limit is %d",
			human(v.bytes), budgetInput, maxBuild)
	case b.built > maxBuilt:
		return b.fail(n, "can build up to %s bytes of strings per evaluation (assuming fields of %d bytes); the limit is %d",
			human(b.built), budgetInput, maxBuilt)
	}
	return v
}

// fixedSize reports whether expr's checker typed n as a number or a boolean,
// whose size is fixed whatever the operands.
func fixedSize(n exprast.Node) bool {
	t := n.Type()
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func (b *budget) node(n exprast.Node) bound {
	switch x := n.(type) {
	case *exprast.NilNode, *exprast.IntegerNode, *exprast.FloatNode, *exprast.BoolNode:
		return scalar
	case *exprast.StringNode:
		l := float64(len(x.Value))
		return bound{bytes: l, count: l, elem: 1}
	case *exprast.BytesNode:
		l := float64(len(x.Value))
		return bound{bytes: l, count: l, elem: 1}
	case *exprast.ConstantNode:
		return constBound(x.Value)
	case *exprast.IdentifierNode:
		if v, ok := b.vars[x.Value]; ok {
			return v
		}
		if x.Value == "time" {
			return scalar
		}
		return input
	case *exprast.PointerNode:
		return b.pointer(x)
	case *exprast.UnaryNode:
		return b.walk(x.Node)
	case *exprast.BinaryNode:
		return b.binary(x)
	case *exprast.ChainNode:
		return b.walk(x.Node)
	case *exprast.MemberNode:
		v := b.walk(x.Node)
		b.walk(x.Property)
		return bound{bytes: v.elem, count: v.elem, elem: v.elem}
	case *exprast.SliceNode:
		v := b.walk(x.Node)
		for _, m := range []exprast.Node{x.From, x.To} {
			if m != nil {
				b.walk(m)
			}
		}
		return v
	case *exprast.CallNode:
		// lookup (the only function): a table row, like a field.
		for _, a := range x.Arguments {
			b.walk(a)
		}
		return input
	case *exprast.BuiltinNode:
		return b.builtin(x)
	case *exprast.PredicateNode:
		return b.walk(x.Node)
	case *exprast.ConditionalNode:
		b.walk(x.Cond)
		return maxBound(b.walk(x.Exp1), b.walk(x.Exp2))
	case *exprast.VariableDeclaratorNode:
		v := b.walk(x.Value)
		old, had := b.vars[x.Name]
		b.vars[x.Name] = v
		out := b.walk(x.Expr)
		if had {
			b.vars[x.Name] = old
		} else {
			delete(b.vars, x.Name)
		}
		return out
	case *exprast.SequenceNode:
		var out bound
		for _, m := range x.Nodes {
			out = b.walk(m)
		}
		return out
	case *exprast.ArrayNode:
		return b.items(x.Nodes)
	case *exprast.MapNode:
		return b.items(x.Pairs)
	case *exprast.PairNode:
		k, v := b.walk(x.Key), b.walk(x.Value)
		return bound{bytes: k.bytes + v.bytes, count: 1, elem: v.bytes}
	}
	// A node kind this walk does not know: as large as an input.
	return input
}

// items bounds an array or map literal.
func (b *budget) items(nodes []exprast.Node) bound {
	out := bound{count: float64(len(nodes))}
	for _, m := range nodes {
		v := b.walk(m)
		out.bytes += v.bytes
		out.elem = max(out.elem, v.bytes)
	}
	return out
}

func (b *budget) pointer(x *exprast.PointerNode) bound {
	switch x.Name {
	case "":
		if len(b.ptr) > 0 {
			return b.ptr[len(b.ptr)-1]
		}
	case "acc":
		if len(b.acc) > 0 {
			return b.acc[len(b.acc)-1]
		}
	case "index":
		return scalar
	}
	return input
}

func (b *budget) binary(x *exprast.BinaryNode) bound {
	l, r := b.walk(x.Left), b.walk(x.Right)
	switch x.Operator {
	case "+": // strings and arrays concatenate
		out := bound{bytes: l.bytes + r.bytes, count: l.count + r.count, elem: max(l.elem, r.elem)}
		if !fixedSize(x) {
			b.built += out.bytes
		}
		return out
	case "..":
		n := float64(memoryBudget) // bounds not constant: the VM's memory budget stops it
		lo, okl := intConst(x.Left)
		hi, okh := intConst(x.Right)
		if okl && okh {
			n = max(0, float64(hi)-float64(lo)+1)
			if n > maxRange {
				return b.fail(x, "range %d..%d has %s elements; the limit is %d", lo, hi, human(n), maxRange)
			}
		}
		return bound{bytes: n * scalarBytes, count: n, elem: scalarBytes}
	case "??":
		return maxBound(l, r)
	case "matches":
		// A pattern that is not a constant is compiled at every evaluation.
		if _, ok := x.Right.(*exprast.StringNode); !ok {
			b.built += 16 * r.bytes
		}
	}
	return scalar
}

func intConst(n exprast.Node) (int, bool) {
	switch x := n.(type) {
	case *exprast.IntegerNode:
		return x.Value, true
	case *exprast.ConstantNode:
		i, ok := x.Value.(int)
		return i, ok
	case *exprast.UnaryNode:
		if i, ok := intConst(x.Node); ok && x.Operator == "-" {
			return -i, true
		}
	}
	return 0, false
}

// builtin bounds a call of one of expr's builtins: a closure (the first
// argument a collection, a later one a predicate) or a plain function.
func (b *budget) builtin(x *exprast.BuiltinNode) bound {
	var pred *exprast.PredicateNode
	for _, a := range x.Arguments {
		if p, ok := a.(*exprast.PredicateNode); ok {
			pred = p
		}
	}
	if pred != nil && len(x.Arguments) > 0 {
		return b.closure(x, pred)
	}
	args := make([]bound, len(x.Arguments))
	for i, a := range x.Arguments {
		args[i] = b.walk(a)
	}
	arg := func(i int) bound {
		if i < len(args) {
			return args[i]
		}
		return scalar
	}
	text := func(bytes float64) bound {
		b.built += bytes
		return bound{bytes: bytes, count: bytes, elem: 1}
	}
	switch x.Name {
	case "join":
		s, sep := arg(0), arg(1)
		if len(args) < 2 {
			sep = bound{}
		}
		// Numbers become text of up to three times their size.
		return text(3*s.bytes + s.count*sep.bytes)
	case "replace":
		return text((arg(0).bytes + 1) * max(1, arg(2).bytes))
	case "repeat": // switched off, but bounded should it come back
		return text(arg(0).bytes * memoryBudget)
	case "string", "toJSON":
		// A string escaped in JSON (\u00XX) is at most six times longer.
		return text(6*arg(0).bytes + 3*scalarBytes)
	case "upper", "lower", "toBase64":
		return text(2 * arg(0).bytes)
	case "split", "splitAfter":
		s := arg(0)
		b.built += s.bytes
		return bound{bytes: s.bytes, count: s.bytes + 1, elem: s.bytes}
	case "fromJSON", "fromBase64":
		b.built += arg(0).bytes
		return arg(0)
	case "concat":
		var out bound
		for _, a := range args {
			out.bytes += a.bytes
			out.count += a.count
			out.elem = max(out.elem, a.elem)
		}
		return out
	case "toPairs", "fromPairs", "keys", "values", "reverse", "uniq", "flatten", "sort", "take",
		"trim", "trimPrefix", "trimSuffix", "first", "last", "get":
		return arg(0)
	}
	return scalar // numbers, booleans, times: fixed size
}

// cost is what one walk of a closure's body found: its value and what
// computing it once costs.
type cost struct {
	v           bound
	work, built float64
}

// closure bounds any, all, map, filter, reduce, …: the body runs once per
// element of the collection.
//
// What the body costs may grow with the element it is given (`#.name +
// "x"`, or an inner closure over `#.tags`). Elements' sizes add up to at
// most the collection's, so that part is bounded by the collection's size,
// not by the number of elements times the largest element: the body is
// walked twice, with elements of their bound and of size zero, and only
// the difference scales with the collection's bytes.
func (b *budget) closure(x *exprast.BuiltinNode, pred *exprast.PredicateNode) bound {
	if b.depth >= maxClosureDepth {
		return b.fail(x, "closures nested %d deep; the limit is %d", b.depth+1, maxClosureDepth)
	}
	coll := b.walk(x.Arguments[0])
	var init bound
	// A reduce that starts from a number (or from the first element of a
	// range) and whose step is arithmetic accumulates numbers: expr
	// refuses a number + a string, so its step either stays a number or
	// fails.
	numAcc := false
	if x.Name == "reduce" {
		if len(x.Arguments) > 2 {
			init = b.walk(x.Arguments[2])
			numAcc = fixedSize(x.Arguments[2])
		} else {
			rng, ok := x.Arguments[0].(*exprast.BinaryNode)
			numAcc = ok && rng.Operator == ".."
		}
		numAcc = numAcc && arithmetic(pred.Node)
	}
	body := func(elem, acc float64) cost {
		work, built := b.work, b.built
		b.work, b.built = 0, 0
		b.depth++
		b.ptr = append(b.ptr, bound{bytes: elem, count: elem, elem: elem})
		if numAcc {
			b.acc = append(b.acc, scalar)
		} else {
			b.acc = append(b.acc, bound{bytes: acc, count: acc, elem: acc})
		}
		v := b.walk(pred.Node)
		if x.Map != nil { // filter and map fused by the optimizer
			v = b.walk(x.Map)
		}
		b.depth--
		b.ptr, b.acc = b.ptr[:len(b.ptr)-1], b.acc[:len(b.acc)-1]
		c := cost{v: v, work: b.work, built: b.built}
		b.work, b.built = work, built
		return c
	}
	full, none := body(coll.elem, 0), body(0, 0)
	if b.err != nil {
		return scalar
	}
	n := coll.count
	// total is n times what the body costs whatever the element, plus
	// what grows with the element, over all elements.
	total := func(f func(c cost) float64) float64 {
		t := n * f(none)
		if d := f(full) - f(none); d > 0 && coll.elem > 0 {
			t += d / coll.elem * coll.bytes
		}
		return t
	}
	b.work += n + total(func(c cost) float64 { return c.work })
	b.built += total(func(c cost) float64 { return c.built })
	per := total(func(c cost) float64 { return c.v.bytes }) // all the bodies' values
	switch x.Name {
	case "map":
		return bound{bytes: per, count: n, elem: full.v.bytes}
	case "filter", "sortBy", "groupBy":
		if x.Map != nil {
			return bound{bytes: per, count: n, elem: full.v.bytes}
		}
		return coll
	case "find", "findLast":
		return bound{bytes: coll.elem, count: coll.elem, elem: coll.elem}
	case "reduce":
		if numAcc {
			return scalar
		}
		// Each step may add its body's bytes to the accumulator; a body
		// that uses #acc twice doubles it every step.
		if grown := body(coll.elem, 1).v.bytes; grown-full.v.bytes > 1 {
			return b.fail(x, "reduce whose step uses #acc more than once (or enlarges it) can grow exponentially")
		}
		out := init.bytes + per
		// The accumulator is copied at every step it grows.
		b.built += n * out
		return bound{bytes: out, count: out, elem: max(init.elem, full.v.bytes)}
	}
	return scalar // all, any, none, one, count, sum, findIndex, …
}

// arithmetic reports whether n is built of arithmetic only: operators on
// numbers, fields, # and #acc, and calls typed as numbers. Such a node
// with a number among its operands is a number or an error.
func arithmetic(n exprast.Node) bool {
	if fixedSize(n) {
		return true
	}
	switch x := n.(type) {
	case *exprast.IntegerNode, *exprast.FloatNode, *exprast.PointerNode, *exprast.IdentifierNode:
		return true
	case *exprast.MemberNode:
		return arithmetic(x.Node)
	case *exprast.UnaryNode:
		return (x.Operator == "-" || x.Operator == "+") && arithmetic(x.Node)
	case *exprast.BinaryNode:
		switch x.Operator {
		case "+", "-", "*", "/", "%", "**", "^":
			return arithmetic(x.Left) && arithmetic(x.Right)
		}
	}
	return false
}

func maxBound(a, b bound) bound {
	return bound{bytes: max(a.bytes, b.bytes), count: max(a.count, b.count), elem: max(a.elem, b.elem)}
}

// constBound bounds a constant the optimizer folded (a list for `in`, an
// array literal).
func constBound(v any) bound {
	switch c := v.(type) {
	case string:
		l := float64(len(c))
		return bound{bytes: l, count: l, elem: 1}
	case nil, bool, int, float64:
		return scalar
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		n := float64(rv.Len())
		var bytes, elem float64
		if rv.Kind() == reflect.Map {
			for it := rv.MapRange(); it.Next(); {
				e := constBound(it.Key().Interface())
				bytes += e.bytes
				elem = max(elem, e.bytes)
			}
		} else {
			for i := 0; i < rv.Len(); i++ {
				e := constBound(rv.Index(i).Interface())
				bytes += e.bytes
				elem = max(elem, e.bytes)
			}
		}
		return bound{bytes: bytes + n, count: n, elem: elem}
	}
	return scalar
}

// human writes a large bound readably: 29360128, 1.1e+09, or "more than
// 1e18" once it has saturated.
func human(v float64) string {
	switch {
	case math.IsInf(v, 0) || v > 1e18:
		return "more than 1e18"
	case v < 1e9:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}
