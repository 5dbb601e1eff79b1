package rules

import (
	"time"

	"github.com/vigil-gw/vigil/expr"
)

// The types of the variables rules declare, for type checking.
var (
	typString = ""
	typTime   = time.Time{}
	typFloat  = 0.0
	typMap    = map[string]any{}
)

// compiler compiles the expressions of one rule set; it knows the tables for
// lookup() and where to report errors.
type compiler struct {
	tables map[string]bool
	halt   *expr.Halt // the run-time budget switch of the rule being compiled
}

// compile compiles src, the expression at n (or the part of it from byte
// offset on, a template's placeholder). kind is "bool" or "any". Errors go
// to d at their line and column.
func (c *compiler) compile(d *doc, n yamlNode, what, src string, vars expr.Vars, kind string) *expr.Program {
	return c.compileAt(d, n, 0, what, src, vars, kind)
}

func (c *compiler) compileAt(d *doc, n yamlNode, offset int, what, src string, vars expr.Vars, kind string) *expr.Program {
	prog, errs := expr.Compile(src, expr.Options{Vars: vars, Tables: c.tables, Bool: kind == "bool", Halt: c.halt})
	for _, e := range errs {
		p, exact := d.valuePos(n)
		// Within a block scalar the expression's lines do not map onto
		// the file's simply: point at the scalar itself there.
		if exact {
			p.Col += offset + e.Offset
			if e.Line <= 1 {
				p.Col += e.Column
			} else {
				p.Line += e.Line - 1
				p.Col = e.Column + 1
			}
		}
		d.ErrAt(p, "%s: %s", what, userTerms(what, src, e.Msg, vars))
	}
	return prog
}

// template compiles a message with {{ expr }} placeholders.
func (c *compiler) template(d *doc, n yamlNode, what, src string, vars expr.Vars) *expr.Template {
	phs, err := expr.Placeholders(src)
	if err != nil {
		d.Errf(n, "%s: %v", what, err)
		return nil
	}
	progs := make([]*expr.Program, 0, len(phs))
	for _, ph := range phs {
		p := c.compileAt(d, n, ph.Start, what, src[ph.Start:ph.End], vars, "any")
		if p == nil {
			return nil
		}
		progs = append(progs, p)
	}
	return expr.NewTemplate(src, phs, progs)
}
