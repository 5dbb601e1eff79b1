// Package expr compiles and evaluates the expressions of rule files
// (expr-lang, github.com/expr-lang/expr): type checking against declared
// variables, the compile-time budgets (budget.go), the run-time budget
// switch (Halt), templates with {{ expr }} placeholders, and the format of
// values in keys and messages. An expression evaluates in an Env: an
// event's variables and the tables lookup() reads.
//
// Evaluation has one speed path, contained here: the closures of fast.go,
// which answer the simple comparisons most rules are made of without the
// VM (FuzzFastPath holds them to the VM).
//
// It imports the standard library, expr-lang and event; it must not
// import rules, engine, ingest or the operators.
package expr

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	exprlang "github.com/expr-lang/expr"
	exprast "github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"github.com/vigil-gw/vigil/event"
)

// Limits on expressions: rule files may come from many hands, and an
// expression must never be able to stall or exhaust the gateway.
const (
	MaxLen       = 4096   // characters in one expression
	maxExprNodes = 2000   // AST nodes after parsing
	memoryBudget = 100000 // expr VM allocation budget per run
)

// Env is what an expression evaluates in: an event's variables by name,
// and the tables lookup(table, key) reads.
type Env struct {
	Vars   map[string]any
	Lookup LookupFunc // nil: every lookup finds nothing
}

// LookupFunc serves lookup(table, key): the latest event of the table's
// key, or nil.
type LookupFunc func(table, key string) map[string]any

// Program is a compiled expression. It is not safe for concurrent use: the
// engine evaluates on one goroutine and Program reuses one VM.
type Program struct {
	Src  string
	prog *vm.Program
	vm   vm.VM
	// fast is the closure form of the expression (fast.go), nil when the
	// expression is outside the fast subset; ident is set when the whole
	// expression is one variable.
	fast  fexpr
	ident string
	// lookup is the Env's LookupFunc while the VM runs: the lookup
	// function compiled into the program calls it.
	lookup *LookupFunc
	// halt is the rule's budget switch (budget.go); timed is set when the
	// expression has closures or calls, whose evaluations are timed.
	halt  *Halt
	timed bool
	slow  int // evaluations in a row slower than evalTimeLimit
}

func newProgram(src string, prog *vm.Program) *Program {
	p := &Program{Src: src, prog: prog}
	n := prog.Node()
	if id, ok := n.(*exprast.IdentifierNode); ok && !strings.HasPrefix(id.Value, "$") {
		p.ident = id.Value
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
func (p *Program) Run(env Env) (any, error) {
	if p.ident != "" {
		return env.Vars[p.ident], nil
	}
	if p.fast != nil {
		if v, ok := p.fast(env.Vars); ok {
			return v.box(), nil
		}
	}
	return p.runVM(env)
}

func (p *Program) runVM(env Env) (any, error) {
	if p.halt != nil && p.halt.reason.Load() != nil {
		return nil, ErrBudget
	}
	if p.lookup != nil {
		*p.lookup = env.Lookup
		defer func() { *p.lookup = nil }()
	}
	p.vm.MemoryBudget = memoryBudget
	var start time.Time
	if p.timed {
		start = time.Now()
	}
	out, err := p.vm.Run(p.prog, env.Vars)
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
func (p *Program) Bool(env Env) (bool, error) {
	if p.fast != nil {
		if v, ok := p.fast(env.Vars); ok {
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

// Vars declares the variables an expression may use, each with a value of
// its type (nil: any type), for type checking. Undeclared identifiers are
// payload fields of unknown type.
type Vars map[string]any

// Options say how to compile an expression.
type Options struct {
	Vars Vars
	// Tables are the tables lookup(table, key) may name.
	Tables map[string]bool
	// Bool: the expression must be boolean.
	Bool bool
	// Halt is the run-time budget switch of the rule the expression
	// belongs to, shared by all its expressions; nil: none.
	Halt *Halt
}

// Error is what is wrong with an expression, where expr-lang can tell:
// Offset is where the expression starts in the text given (after leading
// blanks), Line and Column where within it (Line 0: no place).
type Error struct {
	Offset       int
	Line, Column int
	Msg          string
}

func (e Error) Error() string { return e.Msg }

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

// Compile type-checks src and compiles it; on failure it returns every
// error found (the messages in a rule file's words, not Go's).
func Compile(src string, o Options) (*Program, []Error) {
	lead := len(src) - len(strings.TrimLeft(src, " \t"))
	src = strings.TrimSpace(src)
	fail := func(line, col int, format string, args ...any) []Error {
		return []Error{{Offset: lead, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}}
	}
	if len(src) > MaxLen {
		return nil, fail(0, 0, "expression is %d characters long; the limit is %d", len(src), MaxLen)
	}
	env := types.Map{}
	for k, v := range o.Vars {
		if v == nil {
			env[k] = types.Any
		} else {
			env[k] = types.TypeOf(v)
		}
	}
	check := &lookupCheck{tables: o.Tables}
	lookup := new(LookupFunc)
	opts := []exprlang.Option{
		exprlang.Env(env),
		exprlang.AllowUndefinedVariables(),
		exprlang.MaxNodes(maxExprNodes),
		exprlang.Patch(check),
		exprlang.Function("lookup", func(params ...any) (any, error) {
			name, _ := params[0].(string)
			if *lookup == nil {
				return map[string]any(nil), nil
			}
			return (*lookup)(name, KeyString(params[1])), nil
		}, new(func(string, any) map[string]any)),
	}
	// Builtins whose names are common payload fields ("type") or that would
	// break determinism (now) or memory bounds (repeat) are switched off.
	for _, b := range disabledBuiltins {
		opts = append(opts, exprlang.DisableBuiltin(b))
	}
	if o.Bool {
		opts = append(opts, exprlang.AsBool())
	}
	prog, err := exprlang.Compile(src, opts...)
	if len(check.errs) > 0 {
		var errs []Error
		for _, e := range check.errs {
			errs = append(errs, Error{Offset: lead, Msg: e})
		}
		return nil, errs
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
		line, col := 0, 0
		if fe, ok := err.(*file.Error); ok {
			msg, line, col = fe.Message, fe.Line, fe.Column
		}
		if o.Bool && strings.Contains(msg, "expected bool") {
			msg = "must be a boolean expression: " + msg
		}
		return nil, fail(line, col, "%s", goTypeWords(firstLine(msg)))
	}
	if o.Bool {
		if what := notBool(prog.Node()); what != "" {
			return nil, fail(0, 0, "must be a boolean expression, but %q is %s", src, what)
		}
	}
	p := newProgram(src, prog)
	p.halt = o.Halt
	if usesLookup(prog.Node()) {
		p.lookup = lookup
	}
	return p, nil
}

// usesLookup reports whether the expression calls lookup.
func usesLookup(n exprast.Node) bool {
	return exprast.Find(n, func(n exprast.Node) bool {
		call, ok := n.(*exprast.CallNode)
		if !ok {
			return false
		}
		id, ok := call.Callee.(*exprast.IdentifierNode)
		return ok && id.Value == "lookup"
	}) != nil
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

// Placeholder is one {{ expr }} of a template's text: where its
// expression starts (the byte after {{) and ends (the byte of }}).
type Placeholder struct{ Start, End int }

// Placeholders finds the {{ expr }} of src; it reports an unclosed {{ and
// an empty {{ }}.
func Placeholders(src string) ([]Placeholder, error) {
	var out []Placeholder
	for at := 0; ; {
		i := strings.Index(src[at:], "{{")
		if i < 0 {
			return out, nil
		}
		j := strings.Index(src[at+i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("unclosed {{")
		}
		ph := Placeholder{Start: at + i + 2, End: at + i + j}
		if strings.TrimSpace(src[ph.Start:ph.End]) == "" {
			return nil, fmt.Errorf("empty {{ }}")
		}
		out = append(out, ph)
		at = ph.End + 2
	}
}

// NewTemplate is the template src whose placeholders (from Placeholders)
// were compiled into progs.
func NewTemplate(src string, phs []Placeholder, progs []*Program) *Template {
	t := &Template{Src: src, progs: progs}
	at := 0
	for _, ph := range phs {
		t.parts = append(t.parts, src[at:ph.Start-2])
		at = ph.End + 2
	}
	t.parts = append(t.parts, src[at:])
	return t
}

// Render fills the placeholders from env; a failing placeholder renders as
// "<error>" so an alert is never lost to its message.
func (t *Template) Render(env Env) (string, error) {
	return t.render(func(p *Program) (any, error) { return p.Run(env) })
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
