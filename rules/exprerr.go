package rules

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vigil-gw/vigil/expr"
)

// aggregateFuncs are the functions of `aggregate:` (see aggregates).
var aggregateFuncs = map[string]bool{"count": true, "sum": true, "avg": true, "min": true, "max": true,
	"stddev": true, "first": true, "last": true, "slope": true, "percentile": true, "count_distinct": true}

// userTerms rewrites a type-check error of expression src in the terms of
// a rule file: expr-lang reports a builtin function used as a value
// (`when: count > 3`) with its Go function type, and operand types with Go
// names (int, time.Time, interface {}). what is the expression's place
// ("rule \"x\": when"), vars its variables.
func userTerms(what, src, msg string, vars expr.Vars) string {
	if strings.Contains(msg, "func(") {
		if name := expr.BuiltinAsValue(src, vars, func(s string) bool { return aggregateFuncs[s] }); name != "" {
			return builtinMessage(what, name, vars)
		}
	}
	return msg
}

func builtinMessage(what, name string, vars expr.Vars) string {
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
