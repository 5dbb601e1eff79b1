package rules

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
	"github.com/vigil-gw/vigil/event"
)

// Pos is a place in a file; Line and Col are 1-based.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Error is one problem in a file.
type Error struct {
	Pos Pos
	Msg string
}

func (e Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errors is every problem found in a set of files, in file order.
type Errors []Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// AsErrors extracts the positioned problems from err (nil if there are none).
func AsErrors(err error) Errors {
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	return nil
}

// doc walks one parsed YAML file, collecting errors with positions.
// Doc reads one YAML file with positions: the rule files' reader, and the
// daemon config's (package config). Errors go to the list it was given,
// each with the file, line and column of the node they are about.
type Doc struct {
	file    string
	errs    *Errors
	anchors map[string]ast.Node
}

type doc = Doc

// NewDoc reads file, reporting to errs.
func NewDoc(file string, errs *Errors) *Doc {
	return &Doc{file: file, errs: errs, anchors: map[string]ast.Node{}}
}

// Pos is where n starts.
func (d *Doc) Pos(n ast.Node) Pos {
	// A mapping's own token is the first ':'; people think of it as
	// starting at its first key.
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 && m.Values[0].Key != nil {
		n = m.Values[0].Key
	}
	if n == nil || n.GetToken() == nil {
		return Pos{File: d.file, Line: 1, Col: 1}
	}
	p := n.GetToken().Position
	return Pos{File: d.file, Line: p.Line, Col: p.Column}
}

// Errf reports an error at n.
func (d *Doc) Errf(n ast.Node, format string, args ...any) {
	*d.errs = append(*d.errs, Error{Pos: d.Pos(n), Msg: fmt.Sprintf(format, args...)})
}

// ErrAt reports an error at p.
func (d *Doc) ErrAt(p Pos, format string, args ...any) {
	*d.errs = append(*d.errs, Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// Parse returns the file's one document, nil if empty; a syntax error is
// reported with its position.
func (d *Doc) Parse(src []byte) ast.Node {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			p := ye.GetToken().Position
			d.ErrAt(Pos{d.file, p.Line, p.Column}, "yaml: %s", ye.GetMessage())
		} else {
			d.ErrAt(Pos{d.file, 1, 1}, "yaml: %v", err)
		}
		return nil
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return nil
	}
	if len(f.Docs) > 1 {
		d.Errf(f.Docs[1], "only one YAML document per file")
	}
	return f.Docs[0].Body
}

// parseYAML parses src; a syntax error is reported with its position.
func parseYAML(file string, src []byte, errs *Errors) (ast.Node, *doc) {
	d := NewDoc(file, errs)
	return d.Parse(src), d
}

// Unwrap follows anchors, aliases and tags to the node that holds the value.
func (d *Doc) Unwrap(n ast.Node) ast.Node {
	for i := 0; i < 32 && n != nil; i++ {
		switch x := n.(type) {
		case *ast.AnchorNode:
			if x.Name != nil {
				d.anchors[x.Name.String()] = x.Value
			}
			n = x.Value
		case *ast.AliasNode:
			if x.Value == nil {
				return nil
			}
			v, ok := d.anchors[x.Value.String()]
			if !ok {
				d.Errf(x, "unknown alias %q", x.Value.String())
				return nil
			}
			n = v
		case *ast.TagNode:
			n = x.Value
		default:
			return n
		}
	}
	return n
}

// field is one key of a mapping.
type field struct {
	key   string
	knode ast.Node
	val   ast.Node
}

// fields returns the mapping's members, reporting a non-mapping, duplicate
// keys and keys not in allowed (nil allowed: any key).
func (d *doc) fields(n ast.Node, what string, allowed ...string) ([]field, bool) {
	n = d.Unwrap(n)
	m, ok := n.(*ast.MappingNode)
	if !ok {
		if n == nil {
			return nil, true
		}
		if _, isNull := n.(*ast.NullNode); isNull {
			return nil, true
		}
		d.Errf(n, "%s: want a mapping, got %s", what, Describe(n))
		return nil, false
	}
	seen := map[string]bool{}
	var out []field
	for _, mv := range m.Values {
		k := d.Unwrap(mv.Key)
		ks := ""
		if k != nil {
			ks = k.String()
			if s, ok := k.(*ast.StringNode); ok {
				ks = s.Value
			}
		}
		if mv.Key != nil && mv.Key.IsMergeKey() {
			d.Errf(mv.Key, "%s: merge keys (<<) are not supported", what)
			continue
		}
		if seen[ks] {
			d.Errf(mv.Key, "%s: duplicate key %q", what, ks)
			continue
		}
		seen[ks] = true
		if allowed != nil && !contains(allowed, ks) {
			noun := "key"
			if strings.HasSuffix(what, ": window") {
				noun = "type" // window: {slidin: 24h}
			}
			d.Errf(mv.Key, "%s: unknown %s %q%s", what, noun, ks, Suggest(ks, allowed))
			continue
		}
		out = append(out, field{key: ks, knode: mv.Key, val: mv.Value})
	}
	return out, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Suggest names the closest allowed key when the typo is small, else
// lists them: " (did you mean \"x\"?)".
func Suggest(s string, allowed []string) string {
	best, bestD := "", 3
	for _, a := range allowed {
		if dd := editDistance(s, a); dd < bestD {
			best, bestD = a, dd
		}
	}
	if best == "" {
		list := append([]string(nil), allowed...)
		sort.Strings(list)
		return " (want one of " + strings.Join(list, ", ") + ")"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 40 || len(b) > 40 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Describe names what a node holds, for messages: "a list", "a number".
func Describe(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "nothing"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.IntegerNode, *ast.FloatNode:
		return "a number"
	default:
		return fmt.Sprintf("%q", n.String())
	}
}

// Scalar returns the text of a scalar node, or reports what it is
// instead ("what: want a single value, got a list").
func (d *Doc) Scalar(n ast.Node, what string) (string, bool) {
	n = d.Unwrap(n)
	switch x := n.(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.LiteralNode:
		if x.Value != nil {
			return x.Value.Value, true
		}
		return "", true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return x.GetToken().Value, true
	case nil, *ast.NullNode:
		d.Errf(n, "%s: missing value", what)
		return "", false
	default:
		d.Errf(n, "%s: want a single value, got %s", what, Describe(n))
		return "", false
	}
}

// str is a non-empty string scalar.
func (d *doc) str(n ast.Node, what string) (string, bool) {
	s, ok := d.Scalar(n, what)
	if ok && strings.TrimSpace(s) == "" {
		d.Errf(n, "%s: empty", what)
		return "", false
	}
	return s, ok
}

// strs is a string or a list of strings.
func (d *doc) strs(n ast.Node, what string) ([]string, []ast.Node, bool) {
	n = d.Unwrap(n)
	if seq, ok := n.(*ast.SequenceNode); ok {
		if len(seq.Values) == 0 {
			d.Errf(n, "%s: empty list", what)
			return nil, nil, false
		}
		var out []string
		var nodes []ast.Node
		good := true
		for _, v := range seq.Values {
			s, ok := d.str(v, what)
			good = good && ok
			out = append(out, s)
			nodes = append(nodes, v)
		}
		return out, nodes, good
	}
	s, ok := d.str(n, what)
	return []string{s}, []ast.Node{n}, ok
}

// duration parses a positive duration: Go syntax ("90s", "5m", "24h") plus
// days and weeks ("7d", "2w", "1d12h"), as event.ParseDuration reads them.
func (d *doc) duration(n ast.Node, what string) (time.Duration, bool) {
	s, ok := d.Scalar(n, what)
	if !ok {
		return 0, false
	}
	v, err := event.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		d.Errf(n, "%s: bad duration %q (write a number and a unit: 90s, 5m, 24h, 7d, 2w, 1d12h)", what, s)
		return 0, false
	}
	if v <= 0 {
		d.Errf(n, "%s: duration must be positive, got %s", what, s)
		return 0, false
	}
	return v, true
}

// integer parses a positive whole number.
func (d *doc) integer(n ast.Node, what string) (int, bool) {
	s, ok := d.Scalar(n, what)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || v < 1 {
		d.Errf(n, "%s: want a whole number >= 1, got %q", what, s)
		return 0, false
	}
	return v, true
}

func (d *doc) boolean(n ast.Node, what string) (bool, bool) {
	n = d.Unwrap(n)
	if b, ok := n.(*ast.BoolNode); ok {
		return b.Value, true
	}
	d.Errf(n, "%s: want true or false, got %s", what, Describe(n))
	return false, false
}

// raw returns a scalar's Go value (float64, int64, bool, string) for
// parameters passed through to an operator.
func (d *doc) raw(n ast.Node) any {
	n = d.Unwrap(n)
	switch x := n.(type) {
	case *ast.IntegerNode:
		switch v := x.Value.(type) {
		case int64:
			return float64(v)
		case uint64:
			return float64(v)
		}
		return x.GetValue()
	case *ast.FloatNode:
		return x.Value
	case *ast.BoolNode:
		return x.Value
	case *ast.StringNode:
		return x.Value
	case nil, *ast.NullNode:
		return nil
	default:
		return n.String()
	}
}

// valuePos is the position of an expression's first character: after the
// opening quote of a quoted scalar. For a block literal it is the literal's
// indicator, and exact reports false.
func (d *doc) valuePos(n ast.Node) (p Pos, exact bool) {
	n = d.Unwrap(n)
	p = d.Pos(n)
	if s, ok := n.(*ast.StringNode); ok && s.Token != nil {
		if s.Token.Type == token.DoubleQuoteType || s.Token.Type == token.SingleQuoteType {
			p.Col++
		}
		return p, true
	}
	_, literal := n.(*ast.LiteralNode)
	return p, !literal
}

type yamlNode = ast.Node
