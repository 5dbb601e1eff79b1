package expr

import (
	"fmt"
	"regexp"
	"slices"

	exprast "github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/parser"
)

// goTypeWords replaces Go's type names in msg with the rule file's words
// (int and float64: number; time.Time: time; map[string]interface {}:
// object …): expr-lang reports operand types with Go names.
func goTypeWords(msg string) string {
	return goTypes.ReplaceAllStringFunc(msg, func(t string) string { return goTypeNames[t] })
}

// valueKind names a value's kind in the rule file's words.
func valueKind(v any) string {
	return goTypeWords(fmt.Sprintf("%T", v))
}

var goTypeNames = map[string]string{
	"int": "number", "int64": "number", "float64": "number", "string": "string", "bool": "boolean",
	"time.Time": "time", "time.Duration": "duration",
	"map[string]interface {}": "object", "[]interface {}": "list", "interface {}": "any value",
}

var goTypes = regexp.MustCompile(`map\[string\]interface \{\}|\[\]interface \{\}|interface \{\}|time\.Time|time\.Duration|\b(?:int|int64|float64|bool)\b`)

// BuiltinAsValue is the first identifier of src that names a builtin
// function (or one for which also says so) but is not declared in vars:
// `count` in `count > 3`. expr-lang reports such a use with the function's
// Go type; the caller says it in its own terms.
func BuiltinAsValue(src string, vars Vars, also func(string) bool) string {
	tree, err := parser.Parse(src)
	if err != nil {
		return ""
	}
	v := &identFinder{vars: vars, also: also}
	exprast.Walk(&tree.Node, v)
	return v.name
}

type identFinder struct {
	vars Vars
	also func(string) bool
	name string
}

func (v *identFinder) Visit(node *exprast.Node) {
	id, ok := (*node).(*exprast.IdentifierNode)
	if !ok || v.name != "" {
		return
	}
	if _, declared := v.vars[id.Value]; declared {
		return
	}
	if slices.Contains(disabledBuiltins, id.Value) {
		return // a field here
	}
	if _, isBuiltin := builtin.Index[id.Value]; isBuiltin || v.also != nil && v.also(id.Value) {
		v.name = id.Value
	}
}
