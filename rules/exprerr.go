package rules

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	exprast "github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/parser"
)

// aggregateFuncs are the functions of `aggregate:` (see aggregates).
var aggregateFuncs = map[string]bool{"count": true, "sum": true, "avg": true, "min": true, "max": true,
	"stddev": true, "first": true, "last": true, "slope": true, "percentile": true, "count_distinct": true}

// userTerms rewrites a type-check error of expression src in the terms of
// a rule file: expr-lang reports a builtin function used as a value
// (`when: count > 3`) with its Go function type, and operand types with Go
// names (int, time.Time, interface {}). what is the expression's place
// ("rule \"x\": when"), vars its variables.
func userTerms(what, src, msg string, vars envSpec) string {
	if strings.Contains(msg, "func(") {
		if name := builtinAsValue(src, vars); name != "" {
			return builtinMessage(what, name, vars)
		}
	}
	return goTypeWords(msg)
}

// goTypeWords replaces Go's type names in msg with the rule file's words
// (int and float64: number; time.Time: time; map[string]interface {}:
// object …).
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

// builtinAsValue is the first identifier of src that names a builtin
// function but is not called: `count` in `count > 3`, `first` in
// `first.amount` where no earlier step is called first.
func builtinAsValue(src string, vars envSpec) string {
	tree, err := parser.Parse(src)
	if err != nil {
		return ""
	}
	v := &identFinder{vars: vars}
	exprast.Walk(&tree.Node, v)
	return v.name
}

type identFinder struct {
	vars envSpec
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
	if _, isBuiltin := builtin.Index[id.Value]; isBuiltin || aggregateFuncs[id.Value] {
		v.name = id.Value
	}
}

func builtinMessage(what, name string, vars envSpec) string {
	if strings.HasSuffix(what, ": when") && aggregateFuncs[name] {
		var aggs []string
		for k, t := range vars {
			if t == nil || t == any(typFloat) {
				aggs = append(aggs, k)
			}
		}
		sort.Strings(aggs)
		names := "none yet"
		if len(aggs) > 0 {
			names = strings.Join(aggs, ", ")
		}
		return fmt.Sprintf("%s is an aggregate function, not a value: when refers to aggregates by the names given in aggregate: (%s); add one such as c: %s(…) there and use c",
			name, names, name)
	}
	if strings.Contains(what, "pattern step") {
		return fmt.Sprintf("%s is not the alias of an earlier step (as: %s) but a built-in function; an event field named %s is $env.%s", name, name, name, name)
	}
	return fmt.Sprintf("%s is a built-in function, not a value: call it as %s(…); an event field named %s is $env.%s", name, name, name, name)
}
