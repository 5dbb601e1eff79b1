package rules

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	exprast "github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"github.com/vigil-gw/vigil/event"
)

// Limits on expressions: rule files may come from many hands, and an
// expression must never be able to stall or exhaust the gateway.
const (
	MaxExprLen   = 4096   // characters in one expression
	maxExprNodes = 2000   // AST nodes after parsing
	memoryBudget = 100000 // expr VM allocation budget per run
)

// Program is a compiled expression. It is not safe for concurrent use: the
// engine evaluates on one goroutine and Program reuses one VM.
type Program struct {
	Src  string
	Pos  Pos
	prog *vm.Program
	vm   vm.VM
	// fast is the closure form of the expression (fast.go), nil when the
	// expression is outside the fast subset; ident is set when the whole
	// expression is one variable.
	fast  fexpr
	ident string
	id    *ident // ident's, for Flat
	// halt is the rule's budget switch (budget.go); timed is set when the
	// expression has closures or calls, whose evaluations are timed.
	halt  *Halt
	timed bool
	slow  int // evaluations in a row slower than evalTimeLimit
}

func newProgram(src string, pos Pos, prog *vm.Program) *Program {
	p := &Program{Src: src, Pos: pos, prog: prog}
	n := prog.Node()
	if id, ok := n.(*exprast.IdentifierNode); ok && !strings.HasPrefix(id.Value, "$") {
		p.ident, p.id = id.Value, newIdent(id.Value)
	}
	p.fast = compileFast(n)
	exprast.Find(n, func(n exprast.Node) bool {
		switch n.(type) {
		case *exprast.BuiltinNode, *exprast.CallNode, *exprast.VariableDeclaratorNode:
			p.timed = true
		}
		return false
	})
	return p
}

// Run evaluates the expression in env.
func (p *Program) Run(env map[string]any) (any, error) {
	if p.ident != "" {
		return env[p.ident], nil
	}
	if p.fast != nil {
		if v, ok := p.fast(MapVars(env)); ok {
			return v.box(), nil
		}
	}
	return p.runVM(env)
}

// Fast reports whether the expression has a fast form (see fast.go), the
// condition for RunFlat and BoolFlat to skip building a map.
func (p *Program) Fast() bool { return p.ident != "" || p.fast != nil }

// RunFlat is Run on a Flat event; it builds the event's map only when the
// VM has to run.
func (p *Program) RunFlat(f *Flat) (any, error) {
	if p.ident != "" {
		return f.Var(p.id), nil
	}
	if p.fast != nil {
		if v, ok := p.fast(f); ok {
			return v.box(), nil
		}
	}
	return p.runVM(f.Map())
}

// BoolFlat is Bool on a Flat event.
func (p *Program) BoolFlat(f *Flat) (bool, error) {
	if p.fast != nil {
		if v, ok := p.fast(f); ok {
			switch v.k {
			case fBool:
				return v.b, nil
			case fNil:
				return false, nil
			}
		}
	}
	return p.Bool(f.Map())
}

func (p *Program) runVM(env map[string]any) (any, error) {
	if p.halt != nil && p.halt.reason.Load() != nil {
		return nil, ErrBudget
	}
	p.vm.MemoryBudget = memoryBudget
	var start time.Time
	if p.timed {
		start = time.Now()
	}
	out, err := p.vm.Run(p.prog, env)
	if err != nil {
		msg := goTypeWords(firstLine(err.Error()))
		if strings.Contains(msg, "memory budget exceeded") {
			p.halt.trip(fmt.Sprintf("%s: %s", p.Src, msg))
			return nil, fmt.Errorf("%s: %s: %w", p.Src, msg, ErrBudget)
		}
		return nil, fmt.Errorf("%s: %s", p.Src, msg)
	}
	if p.timed {
		if d := time.Since(start); d <= evalTimeLimit {
			p.slow = 0
		} else if p.slow++; p.slow >= slowEvals {
			p.halt.trip(fmt.Sprintf("%s: %d evaluations in a row took over %v, the last %v", p.Src, p.slow, evalTimeLimit, d.Round(time.Millisecond)))
			return nil, fmt.Errorf("%s: evaluation took %v: %w", p.Src, d.Round(time.Millisecond), ErrBudget)
		}
		if s, ok := out.(string); ok && len(s) > maxBuild {
			p.halt.trip(fmt.Sprintf("%s: built a string of %d bytes; the limit is %d", p.Src, len(s), maxBuild))
			return nil, fmt.Errorf("%s: result of %d bytes: %w", p.Src, len(s), ErrBudget)
		}
	}
	return out, nil
}

// Bool evaluates a boolean expression; nil counts as false.
func (p *Program) Bool(env map[string]any) (bool, error) {
	if p.fast != nil {
		if v, ok := p.fast(MapVars(env)); ok {
			switch v.k {
			case fBool:
				return v.b, nil
			case fNil:
				return false, nil
			}
		}
	}
	out, err := p.runVM(env)
	if err != nil {
		return false, err
	}
	switch b := out.(type) {
	case bool:
		return b, nil
	case nil:
		return false, nil
	default:
		return false, fmt.Errorf("%s: result is a %s, not a boolean", p.Src, valueKind(out))
	}
}

var disabledBuiltins = []string{"type", "now", "repeat"}

// envSpec describes the variables an expression may use, for type checking.
// Undeclared identifiers are payload fields of unknown type.
type envSpec map[string]any

var (
	typString = ""
	typTime   = time.Time{}
	typFloat  = 0.0
	typMap    = map[string]any{}
)

// compiler compiles the expressions of one rule set; it knows the tables for
// lookup() and where to report errors.
type compiler struct {
	set    *Set
	tables map[string]bool
	offset int   // column of the next expression within its scalar (templates)
	halt   *Halt // the run-time budget switch of the rule being compiled
}

type lookupCheck struct {
	tables map[string]bool
	errs   []string
}

func (v *lookupCheck) Visit(node *exprast.Node) {
	call, ok := (*node).(*exprast.CallNode)
	if !ok {
		return
	}
	id, ok := call.Callee.(*exprast.IdentifierNode)
	if !ok || id.Value != "lookup" {
		return
	}
	if len(call.Arguments) != 2 {
		v.errs = append(v.errs, "lookup takes (table, key)")
		return
	}
	name, ok := call.Arguments[0].(*exprast.StringNode)
	if !ok {
		v.errs = append(v.errs, "lookup: the table must be a quoted name")
		return
	}
	if !v.tables[name.Value] {
		v.errs = append(v.errs, fmt.Sprintf("lookup: unknown table %q", name.Value))
	}
}

// compile type-checks src. kind is "bool" or "any". Errors go to d at n.
func (c *compiler) compile(d *doc, n yamlNode, what, src string, vars envSpec, kind string) *Program {
	p, exact := d.valuePos(n)
	if exact {
		p.Col += c.offset
	}
	c.offset = 0
	lead := len(src) - len(strings.TrimLeft(src, " \t"))
	src = strings.TrimSpace(src)
	if exact {
		p.Col += lead
	}
	if len(src) > MaxExprLen {
		d.errAt(p, "%s: expression is %d characters long; the limit is %d", what, len(src), MaxExprLen)
		return nil
	}
	env := types.Map{}
	for k, v := range vars {
		if v == nil {
			env[k] = types.Any
		} else {
			env[k] = types.TypeOf(v)
		}
	}
	check := &lookupCheck{tables: c.tables}
	opts := []expr.Option{
		expr.Env(env),
		expr.AllowUndefinedVariables(),
		expr.MaxNodes(maxExprNodes),
		expr.Patch(check),
		expr.Function("lookup", c.set.lookupFunc, new(func(string, any) map[string]any)),
	}
	// Builtins whose names are common payload fields ("type") or that would
	// break determinism (now) or memory bounds (repeat) are switched off.
	for _, b := range disabledBuiltins {
		opts = append(opts, expr.DisableBuiltin(b))
	}
	if kind == "bool" {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if len(check.errs) > 0 {
		for _, e := range check.errs {
			d.errAt(p, "%s: %s", what, e)
		}
		return nil
	}
	if err == nil {
		// Checked here, on the optimized AST, so what is bounded is what
		// runs; reported at the offending node like a compile error.
		if fe := checkBudget(prog.Node(), src); fe != nil {
			err = fe
		}
	}
	if err != nil {
		msg := err.Error()
		if fe, ok := err.(*file.Error); ok {
			msg = fe.Message
			// Within a block scalar the expression's lines do not map onto
			// the file's simply: point at the scalar itself there.
			if exact && fe.Line <= 1 {
				p.Col += fe.Column
			} else if exact {
				p.Line += fe.Line - 1
				p.Col = fe.Column + 1
			}
		}
		if kind == "bool" && strings.Contains(msg, "expected bool") {
			msg = "must be a boolean expression: " + msg
		}
		d.errAt(p, "%s: %s", what, userTerms(what, src, firstLine(msg), vars))
		return nil
	}
	if kind == "bool" {
		if what2 := notBool(prog.Node()); what2 != "" {
			d.errAt(p, "%s: must be a boolean expression, but %q is %s", what, src, what2)
			return nil
		}
	}
	np := newProgram(src, p, prog)
	np.halt = c.halt
	return np
}

// notBool recognises expressions that can never be boolean even when their
// operands' types are unknown (payload fields): arithmetic, literals.
func notBool(n exprast.Node) string {
	switch x := n.(type) {
	case *exprast.BinaryNode:
		switch x.Operator {
		case "+", "-", "*", "/", "%", "**", "^", "..":
			return "arithmetic"
		}
	case *exprast.IntegerNode, *exprast.FloatNode:
		return "a number"
	case *exprast.StringNode:
		return "a string"
	case *exprast.UnaryNode:
		if x.Operator == "-" || x.Operator == "+" {
			return "arithmetic"
		}
	}
	return ""
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// lookupFunc is the runtime of lookup(table, key).
func (s *Set) lookupFunc(params ...any) (any, error) {
	name, _ := params[0].(string)
	if s.Lookup == nil {
		return map[string]any(nil), nil
	}
	return s.Lookup(name, KeyString(params[1])), nil
}

// KeyString turns a key value into the string alerts and state use.
func KeyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case float64:
		return FormatValue(x)
	default:
		return FormatValue(v)
	}
}

// FormatValue renders a value for messages and keys: whole numbers without
// a decimal point, others with up to six significant digits.
func FormatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', 6, 64)
	case float32:
		return FormatValue(float64(x))
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case time.Duration:
		return x.String()
	default:
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Map && rv.IsNil() {
			return ""
		}
		return fmt.Sprint(v)
	}
}

// Template is a message with {{ expr }} placeholders.
type Template struct {
	Src   string
	parts []string   // literal text, len(parts) == len(progs)+1
	progs []*Program // placeholders
}

// Render fills the placeholders from env; a failing placeholder renders as
// "<error>" so an alert is never lost to its message.
func (t *Template) Render(env map[string]any) (string, error) {
	return t.render(func(p *Program) (any, error) { return p.Run(env) })
}

// RenderFlat is Render with the variables of a Flat event.
func (t *Template) RenderFlat(f *Flat) (string, error) {
	return t.render(func(p *Program) (any, error) { return p.RunFlat(f) })
}

func (t *Template) render(run func(*Program) (any, error)) (string, error) {
	if t == nil {
		return "", nil
	}
	if len(t.progs) == 0 {
		return t.Src, nil
	}
	var b strings.Builder
	var firstErr error
	for i, p := range t.progs {
		b.WriteString(t.parts[i])
		if b.Len() > maxBuild {
			// Each placeholder is bounded (budget.go), but not how many a
			// message has: the rest is left out.
			return event.Cut(b.String(), maxBuild), firstErr
		}
		v, err := run(p)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			b.WriteString("<error>")
			continue
		}
		b.WriteString(FormatValue(v))
	}
	b.WriteString(t.parts[len(t.parts)-1])
	if b.Len() > maxBuild {
		return event.Cut(b.String(), maxBuild), firstErr
	}
	return b.String(), firstErr
}

func (c *compiler) template(d *doc, n yamlNode, what, src string, vars envSpec) *Template {
	t := &Template{Src: src}
	rest := src
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.parts = append(t.parts, rest)
			break
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			d.errf(n, "%s: unclosed {{", what)
			return nil
		}
		t.parts = append(t.parts, rest[:i])
		inner := rest[i+2 : i+j]
		if strings.TrimSpace(inner) == "" {
			d.errf(n, "%s: empty {{ }}", what)
			return nil
		}
		c.offset = len(src) - len(rest) + i + 2
		p := c.compile(d, n, what, inner, vars, "any")
		if p == nil {
			return nil
		}
		t.progs = append(t.progs, p)
		rest = rest[i+j+2:]
	}
	return t
}

// Names returns the variables the expression reads, each once. "$env"
// among them means it may read any variable.
func (p *Program) Names() []string {
	if p == nil {
		return nil
	}
	var names []string
	exprast.Find(p.prog.Node(), func(n exprast.Node) bool {
		if id, ok := n.(*exprast.IdentifierNode); ok && !slices.Contains(names, id.Value) {
			names = append(names, id.Value)
		}
		return false
	})
	return names
}

// Names returns the variables t's placeholders read, each once; see
// Program.Names.
func (t *Template) Names() []string {
	if t == nil {
		return nil
	}
	var names []string
	for _, p := range t.progs {
		for _, n := range p.Names() {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// ReadsOnly reports whether every variable in names is one of allowed: a
// rule whose expressions read only its aggregates (and key, rule) needs no
// event fields.
func ReadsOnly(names []string, allowed ...string) bool {
	for _, n := range names {
		if !slices.Contains(allowed, n) {
			return false
		}
	}
	return true
}
