// Package rules owns vigil's file formats: rule files (sources, tables,
// rules) and the daemon config. It parses YAML keeping the line and column of
// every node, validates everything the contract defines, compiles and
// type-checks every expression, and reports all problems as FILE:LINE:COL.
//
// Expressions are compiled by expr, which knows nothing of files: rules
// gives it each expression's declared variables and maps its errors to the
// file's lines and columns (compile.go).
//
// It imports event, ingest and expr, never windows, cep or detect: operator
// parameters are carried as plain values and built by the engine.
package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/expr"
	"github.com/vigil-gw/vigil/ingest"
)

// Kind is what fires a rule.
type Kind string

const (
	Stateless Kind = "stateless"
	Window    Kind = "window"
	Detect    Kind = "detect"
	Pattern   Kind = "pattern"
	Absent    Kind = "absent"
)

// Set is a loaded, valid rule set.
type Set struct {
	Files   []string
	Sources []*Source
	Tables  []*Table
	Rules   []*Rule
}

// Source says how the topics it matches are read.
type Source struct {
	Pos         Pos
	Filter      *ingest.Filter
	Format      ingest.Format
	TimeField   string
	DedupeField string
	DedupeFor   time.Duration
	Lateness    time.Duration
}

// Table keeps the latest event per key for lookup().
type Table struct {
	Pos     Pos
	Name    string
	From    []*ingest.Filter
	Key     *expr.Program // nil: the topic
	KeyName string        // the key expression's text ("" for the topic)
}

// Rule is one compiled rule.
type Rule struct {
	Pos      Pos
	File     string
	Name     string
	From     []*ingest.Filter
	Where    *expr.Program // nil: every event
	Key      *expr.Program // nil: the topic
	Severity string
	Message  *expr.Template
	Cooldown time.Duration
	Topic    string // upstream topic template; "" = the config's default
	Kind     Kind

	WindowSpec *WindowSpec
	Aggregates []Aggregate
	When       *expr.Program

	DetectSpec *DetectSpec
	Steps      []Step
	AbsentFor  time.Duration

	// Lateness is the largest lateness of the sources whose filters overlap
	// the rule's.
	Lateness time.Duration
	// Hash identifies the rule's definition: state is kept across a reload
	// only for rules whose hash is unchanged.
	Hash string
	// Halt disables the rule when one of its expressions goes over its
	// run-time budget (expr/budget.go); Halt.Reason says why.
	Halt *expr.Halt
}

// Disabled is why the rule was disabled at run time, "" while it runs.
func (r *Rule) Disabled() string { return r.Halt.Reason() }

// WindowSpec is a rule's `window:`.
type WindowSpec struct {
	Pos   Pos
	Type  string // sliding, tumbling, hopping, session, count
	Size  time.Duration
	Every time.Duration
	N     int
}

// Aggregate is one entry of `aggregate:`, e.g. total: sum(amount).
type Aggregate struct {
	Pos  Pos
	Name string
	Func string
	Arg  *expr.Program // nil for count()
	P    float64       // percentile
}

// DetectSpec is a rule's `detect:`.
type DetectSpec struct {
	Pos      Pos
	Field    string
	Value    *expr.Program
	Method   string
	Params   map[string]any
	ParamPos map[string]Pos
}

// Step is one step of a pattern.
type Step struct {
	Pos    Pos
	Alias  string
	Where  *expr.Program
	Within time.Duration
	Times  int
	Not    bool
}

// AggregateFuncs are the aggregate functions and their argument counts.
var AggregateFuncs = map[string]int{
	"count": 0, "sum": 1, "avg": 1, "min": 1, "max": 1, "stddev": 1,
	"first": 1, "last": 1, "slope": 1, "percentile": 2, "count_distinct": 1,
}

var (
	nameRe  = regexp.MustCompile(`^[a-z0-9_]+$`)
	identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	aggRe   = regexp.MustCompile(`^\s*([a-z_]+)\s*\((.*)\)\s*$`)
)

// reserved names cannot be aliases or aggregate names: they are taken by
// the expression environment.
var reserved = map[string]bool{"topic": true, "time": true, "lookup": true, "key": true, "rule": true}

// Load reads rule files and directories (*.yaml, *.yml, not recursing into
// hidden entries) and returns the compiled set, or every problem found as
// Errors.
func Load(paths ...string) (*Set, error) {
	files, errs := Expand(paths)
	srcs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, Error{Pos{f, 1, 1}, fmt.Sprintf("read: %v", err)})
			continue
		}
		srcs[f] = b
	}
	if len(files) == 0 && len(errs) == 0 {
		// An empty directory is a deploy in progress or a mistake, never a
		// rule set to switch to: the running rules would all be dropped.
		errs = append(errs, Error{Pos{strings.Join(paths, ","), 1, 1}, "no rule files (*.yaml, *.yml) found"})
	}
	set, perr := Parse(files, srcs)
	if es := AsErrors(perr); es != nil || len(errs) > 0 {
		return nil, append(errs, es...)
	}
	if len(set.Rules) == 0 {
		return nil, Errors{{Pos{files[0], 1, 1}, "no rules in " + strings.Join(files, ", ")}}
	}
	return set, perr
}

// Expand lists the files named and the *.yaml and *.yml files below the
// directories named, sorted, hidden entries skipped.
func Expand(paths []string) ([]string, Errors) {
	var files []string
	var errs Errors
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, Error{Pos{p, 1, 1}, fmt.Sprintf("read: %v", err)})
			continue
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		_ = filepath.WalkDir(p, func(path string, de os.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, Error{Pos{path, 1, 1}, fmt.Sprintf("read: %v", err)})
				return nil
			}
			name := de.Name()
			if path != p && strings.HasPrefix(name, ".") {
				if de.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !de.IsDir() && (strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
				files = append(files, path)
			}
			return nil
		})
	}
	sort.Strings(files)
	return files, errs
}

// fileParts holds the raw members of one file until every file is read, so
// that tables and sources from any file are known when rules compile.
type fileParts struct {
	d       *doc
	sources []yamlNode
	tables  []yamlNode
	rules   []yamlNode
}

// Parse compiles files given as contents; the order of names is kept.
func Parse(names []string, srcs map[string][]byte) (*Set, error) {
	set, errs := parse(names, srcs)
	if len(errs) > 0 {
		return nil, errs
	}
	return set, nil
}

func parse(names []string, srcs map[string][]byte) (*Set, Errors) {
	var errs Errors
	set := &Set{Files: names}
	c := &compiler{tables: map[string]bool{}}
	var parts []fileParts
	for _, name := range names {
		root, d := parseYAML(name, srcs[name], &errs)
		if root == nil {
			if len(errs) == 0 || errs[len(errs)-1].Pos.File != name {
				d.ErrAt(Pos{name, 1, 1}, "empty file: want `rules:`")
			}
			continue
		}
		fs, ok := d.fields(root, "file", "rules", "sources", "tables")
		if !ok {
			continue
		}
		fp := fileParts{d: d}
		hasRules := false
		for _, f := range fs {
			list := d.list(f.val, f.key)
			switch f.key {
			case "rules":
				hasRules = true
				fp.rules = list
			case "sources":
				fp.sources = list
			case "tables":
				fp.tables = list
			}
		}
		if !hasRules {
			d.Errf(root, "file: missing `rules:`")
		}
		parts = append(parts, fp)
	}
	for _, fp := range parts {
		for _, n := range fp.sources {
			if s := fp.d.source(n); s != nil {
				set.Sources = append(set.Sources, s)
			}
		}
	}
	tableAt := map[string]Pos{}
	for _, fp := range parts {
		for _, n := range fp.tables {
			if t := c.table(fp.d, n); t != nil {
				if prev, dup := tableAt[t.Name]; dup {
					fp.d.ErrAt(t.Pos, "table %q: already defined at %s", t.Name, prev)
					continue
				}
				tableAt[t.Name] = t.Pos
				set.Tables = append(set.Tables, t)
			}
		}
	}
	for _, t := range set.Tables {
		c.tables[t.Name] = true
	}
	ruleAt := map[string]Pos{}
	for _, fp := range parts {
		for _, n := range fp.rules {
			// Names are checked before the rule compiles, so a duplicate
			// is reported even where either rule has other errors.
			dup := false
			if name, ok := fp.d.ruleName(n); ok {
				pos := fp.d.Pos(n)
				var prev Pos
				if prev, dup = ruleAt[name]; dup {
					fp.d.ErrAt(pos, "rule %q: duplicate name, first defined at %s", name, prev)
				} else {
					ruleAt[name] = pos
				}
			}
			r := c.rule(fp.d, n)
			if r == nil || dup {
				continue
			}
			r.Lateness = set.lateness(r.From)
			set.Rules = append(set.Rules, r)
		}
	}
	SortErrors(errs, names)
	return set, errs
}

// ParseValid is Parse that also returns the rules that are valid when others
// are not, so that `vigil check` can check those further and report every
// problem at once.
func ParseValid(names []string, srcs map[string][]byte) (*Set, Errors) {
	return parse(names, srcs)
}

// SortErrors orders errors by file (in the order of names), line, column.
func SortErrors(errs Errors, names []string) {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].Pos, errs[j].Pos
		if a.File != b.File {
			return indexOf(names, a.File) < indexOf(names, b.File)
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return len(list)
}

func (d *doc) list(n yamlNode, what string) []yamlNode {
	n = d.Unwrap(n)
	switch x := n.(type) {
	case *ast.SequenceNode:
		return x.Values
	case nil, *ast.NullNode:
		return nil
	default:
		d.Errf(n, "%s: want a list, got %s", what, Describe(n))
		return nil
	}
}

// SourceFor returns the source settings for a topic: the first source whose
// filter matches it, or nil.
func (s *Set) SourceFor(topic string) *Source {
	for _, src := range s.Sources {
		if _, ok := src.Filter.Match(topic); ok {
			return src
		}
	}
	return nil
}

func (s *Set) lateness(from []*ingest.Filter) time.Duration {
	var l time.Duration
	for _, src := range s.Sources {
		for _, f := range from {
			if ingest.Overlap(src.Filter, f) && src.Lateness > l {
				l = src.Lateness
			}
		}
	}
	return l
}

// Filters returns the MQTT subscriptions the set needs: every rule's and
// table's filters, deduplicated and sorted.
func (s *Set) Filters() []string {
	seen := map[string]bool{}
	var out []string
	add := func(fs []*ingest.Filter) {
		for _, f := range fs {
			if m := f.MQTT(); !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	for _, r := range s.Rules {
		add(r.From)
	}
	for _, t := range s.Tables {
		add(t.From)
	}
	sort.Strings(out)
	return out
}

func (d *doc) filters(n yamlNode, what string) []*ingest.Filter {
	ss, nodes, ok := d.strs(n, what)
	if !ok {
		return nil
	}
	var out []*ingest.Filter
	for i, s := range ss {
		f, err := ingest.ParseFilter(s)
		if err != nil {
			d.Errf(nodes[i], "%s: %v", what, err)
			return nil
		}
		if !d.noStar(nodes[i], s, what) {
			return nil
		}
		out = append(out, f)
	}
	return out
}

// noStar reports a `*` in a topic filter at its column. MQTT has no such
// wildcard: `sensors/*/temp` would match only a topic with a literal *
// level, which is never what its writer meant.
func (d *doc) noStar(n yamlNode, filter, what string) bool {
	i := strings.IndexByte(filter, '*')
	if i < 0 {
		return true
	}
	p, exact := d.valuePos(n)
	if exact {
		p.Col += i
	}
	level := strings.Count(filter[:i], "/") + 1
	d.ErrAt(p, "%s: topic filter %q: level %d: MQTT has no * wildcard; did you mean +? (+ matches one level, # all the rest, {name} one level kept as a field)", what, filter, level)
	return false
}

func (d *doc) source(n yamlNode) *Source {
	fs, ok := d.fields(n, "source", "from", "format", "time", "dedupe", "lateness")
	if !ok {
		return nil
	}
	s := &Source{Pos: d.Pos(n)}
	good := true
	for _, f := range fs {
		switch f.key {
		case "from":
			ss, nodes, ok := d.strs(f.val, "source: from")
			if ok && len(ss) != 1 {
				d.Errf(nodes[1], "source: from: one topic filter per source")
				ok = false
			}
			if ok {
				flt, err := ingest.ParseFilter(ss[0])
				if err != nil {
					d.Errf(nodes[0], "source: from: %v", err)
					ok = false
				} else if !d.noStar(nodes[0], ss[0], "source: from") {
					ok = false
				}
				s.Filter = flt
			}
			good = good && ok
		case "format":
			v, ok := d.str(f.val, "source: format")
			if ok {
				fm, err := ingest.ParseFormat(v)
				if err != nil {
					d.Errf(f.val, "source: format: %v", err)
					ok = false
				}
				s.Format = fm
			}
			good = good && ok
		case "time":
			v, ok := d.str(f.val, "source: time")
			s.TimeField = v
			good = good && ok
		case "lateness":
			v, ok := d.durationOrZero(f.val, "source: lateness")
			s.Lateness = v
			good = good && ok
		case "dedupe":
			dfs, ok := d.fields(f.val, "source: dedupe", "field", "within")
			if !ok {
				good = false
				continue
			}
			for _, df := range dfs {
				switch df.key {
				case "field":
					s.DedupeField, ok = d.str(df.val, "source: dedupe: field")
				case "within":
					s.DedupeFor, ok = d.duration(df.val, "source: dedupe: within")
				}
				good = good && ok
			}
			if s.DedupeField == "" || s.DedupeFor == 0 {
				if good {
					d.Errf(f.val, "source: dedupe: needs both field and within")
				}
				good = false
			}
		}
	}
	if s.Filter == nil {
		if good {
			d.Errf(n, "source: missing `from`")
		}
		return nil
	}
	if !good {
		return nil
	}
	return s
}

func (d *doc) durationOrZero(n yamlNode, what string) (time.Duration, bool) {
	if s, ok := d.Scalar(n, what); ok {
		if v, err := event.ParseDuration(strings.TrimSpace(s)); err == nil && v == 0 {
			return 0, true
		}
	}
	return d.duration(n, what)
}

func (c *compiler) table(d *doc, n yamlNode) *Table {
	fs, ok := d.fields(n, "table", "name", "from", "key")
	if !ok {
		return nil
	}
	t := &Table{Pos: d.Pos(n)}
	good := true
	var keyNode yamlNode
	for _, f := range fs {
		switch f.key {
		case "name":
			v, ok := d.str(f.val, "table: name")
			if ok && !nameRe.MatchString(v) {
				d.Errf(f.val, "table: name %q: use lowercase letters, digits and _", v)
				ok = false
			}
			t.Name = v
			good = good && ok
		case "from":
			t.From = d.filters(f.val, "table: from")
			good = good && t.From != nil
		case "key":
			keyNode = f.val
		}
	}
	if t.Name == "" {
		if good {
			d.Errf(n, "table: missing `name`")
		}
		return nil
	}
	if t.From == nil {
		if good {
			d.Errf(n, "table %q: missing `from`", t.Name)
		}
		return nil
	}
	if keyNode != nil {
		src, ok := d.str(keyNode, "table: key")
		if !ok {
			return nil
		}
		t.KeyName = src
		t.Key = c.compile(d, keyNode, fmt.Sprintf("table %q: key", t.Name), src, baseVars(t.From), "any")
		if t.Key == nil {
			return nil
		}
	}
	if !good {
		return nil
	}
	return t
}

// baseVars are the variables every event exposes to a rule with these
// filters.
func baseVars(from []*ingest.Filter) expr.Vars {
	v := expr.Vars{"topic": typString, "time": typTime}
	for _, f := range from {
		for _, name := range f.Names() {
			v[name] = typString
		}
	}
	return v
}

// ruleName is a rule's name as written, when it has one that is a string;
// it reports nothing (rule does).
func (d *doc) ruleName(n yamlNode) (string, bool) {
	m, ok := d.Unwrap(n).(*ast.MappingNode)
	if !ok {
		return "", false
	}
	for _, mv := range m.Values {
		k, ok := d.Unwrap(mv.Key).(*ast.StringNode)
		if !ok || k.Value != "name" {
			continue
		}
		if v, ok := d.Unwrap(mv.Value).(*ast.StringNode); ok && v.Value != "" {
			return v.Value, true
		}
		return "", false
	}
	return "", false
}

var ruleKeys = []string{"name", "from", "where", "key", "severity", "message", "cooldown", "topic",
	"window", "aggregate", "when", "detect", "pattern", "absent"}

func (c *compiler) rule(d *doc, n yamlNode) *Rule {
	fs, ok := d.fields(n, "rule", ruleKeys...)
	if !ok {
		return nil
	}
	r := &Rule{Pos: d.Pos(n), File: d.file, Severity: "warning", Kind: Stateless, Halt: &expr.Halt{}}
	c.halt = r.Halt
	defer func() { c.halt = nil }()
	by := map[string]field{}
	for _, f := range fs {
		by[f.key] = f
	}
	errsBefore := len(*d.errs)
	if f, ok := by["name"]; ok {
		v, ok := d.str(f.val, "rule: name")
		if ok && !nameRe.MatchString(v) {
			d.Errf(f.val, "rule: name %q: use lowercase letters, digits and _", v)
		}
		r.Name = v
		r.Halt.Rule = v
	} else {
		d.Errf(n, "rule: missing `name`")
	}
	what := fmt.Sprintf("rule %q", r.Name)
	if f, ok := by["from"]; ok {
		r.From = d.filters(f.val, what+": from")
	} else {
		d.Errf(n, "%s: missing `from`", what)
	}
	vars := baseVars(r.From)
	if f, ok := by["where"]; ok {
		if src, ok := d.str(f.val, what+": where"); ok {
			r.Where = c.compile(d, f.val, what+": where", src, vars, "bool")
		}
	}
	if f, ok := by["key"]; ok {
		if src, ok := d.str(f.val, what+": key"); ok {
			r.Key = c.compile(d, f.val, what+": key", src, vars, "any")
		}
	}
	if f, ok := by["severity"]; ok {
		if v, ok := d.str(f.val, what+": severity"); ok {
			switch v {
			case "info", "warning", "critical":
				r.Severity = v
			default:
				d.Errf(f.val, "%s: severity %q: want info, warning or critical", what, v)
			}
		}
	}
	if f, ok := by["cooldown"]; ok {
		r.Cooldown, _ = d.duration(f.val, what+": cooldown")
	}
	if f, ok := by["topic"]; ok {
		if v, ok := d.str(f.val, what+": topic"); ok {
			if err := CheckTopicTemplate(v); err != nil {
				d.Errf(f.val, "%s: topic: %v", what, err)
			}
			r.Topic = v
		}
	}
	// What fires the rule.
	var kinds []string
	for _, k := range []string{"window", "detect", "pattern", "absent"} {
		if _, ok := by[k]; ok {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) > 1 {
		d.Errf(by[kinds[1]].knode, "%s: %s and %s cannot be combined; use one per rule", what, kinds[0], kinds[1])
	}
	for _, k := range []string{"aggregate", "when"} {
		if f, ok := by[k]; ok {
			if _, w := by["window"]; !w {
				d.Errf(f.knode, "%s: %s needs a window", what, k)
			}
		}
	}
	msgVars := expr.Vars{}
	for k, v := range vars {
		msgVars[k] = v
	}
	msgVars["key"] = typString
	msgVars["rule"] = typString
	switch {
	case len(kinds) == 0:
	case kinds[0] == "window":
		r.Kind = Window
		r.WindowSpec = d.window(by["window"].val, what)
		if f, ok := by["aggregate"]; ok {
			r.Aggregates = c.aggregates(d, f.val, what, vars)
		} else {
			d.Errf(by["window"].knode, "%s: a window needs `aggregate:`", what)
		}
		whenVars := expr.Vars{}
		for k, v := range vars {
			whenVars[k] = v
		}
		for _, a := range r.Aggregates {
			whenVars[a.Name] = aggType(a.Func)
			msgVars[a.Name] = aggType(a.Func)
		}
		if f, ok := by["when"]; ok {
			if src, ok := d.str(f.val, what+": when"); ok {
				r.When = c.compile(d, f.val, what+": when", src, whenVars, "bool")
			}
		}
	case kinds[0] == "detect":
		r.Kind = Detect
		r.DetectSpec = c.detect(d, by["detect"].val, what, vars)
		for _, k := range []string{"value", "expected", "score", "low", "high", "threshold"} {
			msgVars[k] = typFloat
		}
		msgVars["method"] = typString
		msgVars["reason"] = typString
	case kinds[0] == "pattern":
		r.Kind = Pattern
		r.Steps = c.pattern(d, by["pattern"].val, what, vars)
		for _, s := range r.Steps {
			if s.Alias != "" {
				msgVars[s.Alias] = typMap
			}
		}
	case kinds[0] == "absent":
		r.Kind = Absent
		r.AbsentFor, _ = d.duration(by["absent"].val, what+": absent")
		msgVars["last_seen"] = typTime
		msgVars["silent_for"] = typFloat
	}
	if f, ok := by["message"]; ok {
		if src, ok := d.Scalar(f.val, what+": message"); ok {
			r.Message = c.template(d, f.val, what+": message", src, msgVars)
		}
	}
	if len(*d.errs) > errsBefore {
		return nil
	}
	r.Hash = hashRule(d, n)
	return r
}

func aggType(fn string) any {
	switch fn {
	case "first", "last":
		return nil
	}
	return typFloat
}

// hashRule digests the rule's definition (its YAML, normalised through a
// re-encoding so comments and layout do not count).
func hashRule(d *doc, n yamlNode) string {
	v := d.plain(n)
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// plain converts a node into plain Go values.
func (d *doc) plain(n yamlNode) any {
	n = d.Unwrap(n)
	switch x := n.(type) {
	case *ast.MappingNode:
		m := map[string]any{}
		for _, mv := range x.Values {
			m[d.Unwrap(mv.Key).String()] = d.plain(mv.Value)
		}
		return m
	case *ast.SequenceNode:
		var s []any
		for _, v := range x.Values {
			s = append(s, d.plain(v))
		}
		return s
	case *ast.LiteralNode:
		if x.Value != nil {
			return x.Value.Value
		}
		return ""
	default:
		return d.raw(n)
	}
}

func (d *doc) window(n yamlNode, what string) *WindowSpec {
	before := len(*d.errs)
	fs, ok := d.fields(n, what+": window", "sliding", "tumbling", "hopping", "every", "session", "count")
	if !ok || len(*d.errs) > before {
		return nil
	}
	w := &WindowSpec{Pos: d.Pos(n)}
	var every *field
	for i, f := range fs {
		switch f.key {
		case "every":
			every = &fs[i]
			continue
		}
		if w.Type != "" {
			d.Errf(f.knode, "%s: window: %s and %s cannot be combined", what, w.Type, f.key)
			return nil
		}
		w.Type = f.key
		if f.key == "count" {
			w.N, ok = d.integer(f.val, what+": window: count")
		} else {
			w.Size, ok = d.duration(f.val, what+": window: "+f.key)
		}
		if !ok {
			return nil
		}
	}
	if w.Type == "" {
		d.Errf(n, "%s: window: want one of sliding, tumbling, hopping, session, count", what)
		return nil
	}
	if w.Type == "hopping" {
		if every == nil {
			d.Errf(n, "%s: window: hopping needs `every`", what)
			return nil
		}
		if w.Every, ok = d.duration(every.val, what+": window: every"); !ok {
			return nil
		}
		if w.Every > w.Size {
			d.Errf(every.val, "%s: window: every (%s) must not exceed the window size (%s)", what, w.Every, w.Size)
			return nil
		}
	} else if every != nil {
		d.Errf(every.knode, "%s: window: every goes with hopping only", what)
		return nil
	}
	return w
}

func (c *compiler) aggregates(d *doc, n yamlNode, what string, vars expr.Vars) []Aggregate {
	fs, ok := d.fields(n, what+": aggregate")
	if !ok {
		return nil
	}
	if len(fs) == 0 {
		d.Errf(n, "%s: aggregate: empty", what)
	}
	var out []Aggregate
	cut := false // a previous value was cut at a comma: its rest is no name
	for _, f := range fs {
		if cut && !identRe.MatchString(f.key) {
			cut = false
			continue
		}
		cut = false
		if !identRe.MatchString(f.key) || reserved[f.key] {
			d.Errf(f.knode, "%s: aggregate: %q cannot be a name", what, f.key)
			continue
		}
		src, ok := d.str(f.val, what+": aggregate: "+f.key)
		if !ok {
			continue
		}
		m := aggRe.FindStringSubmatch(src)
		if m == nil && strings.Count(src, "(") > strings.Count(src, ")") {
			d.Errf(f.val, "%s: aggregate %s: %q is cut short: in a {flow: mapping} a comma ends the value, so quote calls with two arguments: %s: \"percentile(x, 95)\"", what, f.key, src, f.key)
			cut = true
			continue
		}
		if m == nil {
			d.Errf(f.val, "%s: aggregate %s: want a call such as sum(amount), got %q", what, f.key, src)
			continue
		}
		fn, argSrc := m[1], strings.TrimSpace(m[2])
		arity, known := AggregateFuncs[fn]
		if !known {
			names := make([]string, 0, len(AggregateFuncs))
			for k := range AggregateFuncs {
				names = append(names, k)
			}
			d.Errf(f.val, "%s: aggregate %s: unknown function %q%s", what, f.key, fn, Suggest(fn, names))
			continue
		}
		args := splitArgs(argSrc)
		if len(args) != arity {
			d.Errf(f.val, "%s: aggregate %s: %s takes %d argument(s), got %d", what, f.key, fn, arity, len(args))
			continue
		}
		a := Aggregate{Pos: d.Pos(f.val), Name: f.key, Func: fn}
		if arity >= 1 {
			a.Arg = c.compile(d, f.val, what+": aggregate "+f.key, args[0], vars, "any")
			if a.Arg == nil {
				continue
			}
		}
		if fn == "percentile" {
			p, err := strconv.ParseFloat(strings.TrimSpace(args[1]), 64)
			if err != nil || p < 0 || p > 100 {
				d.Errf(f.val, "%s: aggregate %s: percentile wants a number from 0 to 100, got %q", what, f.key, args[1])
				continue
			}
			a.P = p
		}
		out = append(out, a)
	}
	return out
}

// splitArgs splits on top-level commas.
func splitArgs(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	depth, start := 0, 0
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'' || r == '`':
			quote = r
		case r == '(' || r == '[' || r == '{':
			depth++
		case r == ')' || r == ']' || r == '}':
			depth--
		case r == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

func (c *compiler) detect(d *doc, n yamlNode, what string, vars expr.Vars) *DetectSpec {
	fs, ok := d.fields(n, what+": detect")
	if !ok {
		return nil
	}
	ds := &DetectSpec{Pos: d.Pos(n), Params: map[string]any{}, ParamPos: map[string]Pos{}}
	for _, f := range fs {
		switch f.key {
		case "field":
			v, ok := d.str(f.val, what+": detect: field")
			if ok {
				ds.Field = v
				ds.Value = c.compile(d, f.val, what+": detect: field", v, vars, "any")
			}
		case "method":
			ds.Method, _ = d.str(f.val, what+": detect: method")
			ds.ParamPos["method"] = d.Pos(f.val)
		default:
			ds.Params[f.key] = d.raw(f.val)
			ds.ParamPos[f.key] = d.Pos(f.val)
		}
	}
	if ds.Field == "" {
		d.Errf(n, "%s: detect: missing `field`", what)
		return nil
	}
	return ds
}

func (c *compiler) pattern(d *doc, n yamlNode, what string, vars expr.Vars) []Step {
	list := d.list(n, what+": pattern")
	if len(list) == 0 {
		d.Errf(n, "%s: pattern: want a list of steps", what)
		return nil
	}
	env := expr.Vars{}
	for k, v := range vars {
		env[k] = v
	}
	var steps []Step
	aliases := map[string]bool{}
	for i, sn := range list {
		sw := fmt.Sprintf("%s: pattern step %d", what, i+1)
		fs, ok := d.fields(sn, sw, "as", "where", "within", "times", "not")
		if !ok {
			continue
		}
		st := Step{Pos: d.Pos(sn), Times: 1}
		var whereNode yamlNode
		for _, f := range fs {
			switch f.key {
			case "as":
				v, ok := d.str(f.val, sw+": as")
				if ok && (!identRe.MatchString(v) || reserved[v] || vars[v] != nil) {
					d.Errf(f.val, "%s: as: %q cannot be an alias", sw, v)
				} else if ok && aliases[v] {
					d.Errf(f.val, "%s: as: alias %q is used twice", sw, v)
				}
				st.Alias = v
			case "where":
				whereNode = f.val
			case "within":
				st.Within, _ = d.duration(f.val, sw+": within")
			case "times":
				st.Times, _ = d.integer(f.val, sw+": times")
			case "not":
				st.Not, _ = d.boolean(f.val, sw+": not")
			}
		}
		if whereNode != nil {
			if src, ok := d.str(whereNode, sw+": where"); ok {
				st.Where = c.compile(d, whereNode, sw+": where", src, env, "bool")
			}
		}
		switch {
		case st.Not && i == 0:
			d.Errf(sn, "%s: a pattern cannot start with a `not` step", sw)
		case st.Not && st.Times > 1:
			d.Errf(sn, "%s: `not` and `times` cannot be combined", sw)
		case st.Not && st.Alias != "":
			d.Errf(sn, "%s: a `not` step matches nothing, so it takes no alias", sw)
		case st.Not && i == len(list)-1 && st.Within == 0:
			d.Errf(sn, "%s: a `not` step that ends a pattern needs `within`", sw)
		case st.Not && i > 0 && steps[len(steps)-1].Not:
			d.Errf(sn, "%s: two `not` steps in a row", sw)
		}
		if st.Alias != "" {
			aliases[st.Alias] = true
			env[st.Alias] = typMap
		}
		steps = append(steps, st)
	}
	return steps
}

var topicVarRe = regexp.MustCompile(`\{([^{}]*)\}`)

// CheckTopicTemplate validates an upstream topic template.
func CheckTopicTemplate(s string) error {
	for _, m := range topicVarRe.FindAllStringSubmatch(s, -1) {
		switch m[1] {
		case "gateway", "rule", "key", "severity":
		default:
			return fmt.Errorf("unknown placeholder {%s} (want {gateway}, {rule}, {key} or {severity})", m[1])
		}
	}
	if strings.ContainsAny(topicVarRe.ReplaceAllString(s, "x"), "+#{}") {
		return fmt.Errorf("%q: an upstream topic cannot contain + or # or stray braces", s)
	}
	return nil
}

// UpstreamTopic fills a topic template. Key values are cleaned of MQTT
// wildcards and separators so a key cannot redirect the alert.
// It runs for every alert, so it builds no Replacer per call (building one
// cost more than the rest of a stateless rule).
func UpstreamTopic(tmpl, gateway, rule, key, severity string) string {
	if !strings.Contains(tmpl, "{") {
		return tmpl
	}
	var sb strings.Builder
	sb.Grow(len(tmpl) + len(gateway) + len(rule) + len(key) + len(severity))
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			break
		}
		sb.WriteString(tmpl[:i])
		rest := tmpl[i:]
		switch {
		case strings.HasPrefix(rest, "{gateway}"):
			sb.WriteString(topicClean.Replace(gateway))
			tmpl = rest[len("{gateway}"):]
		case strings.HasPrefix(rest, "{rule}"):
			sb.WriteString(rule)
			tmpl = rest[len("{rule}"):]
		case strings.HasPrefix(rest, "{key}"):
			sb.WriteString(topicClean.Replace(key))
			tmpl = rest[len("{key}"):]
		case strings.HasPrefix(rest, "{severity}"):
			sb.WriteString(severity)
			tmpl = rest[len("{severity}"):]
		default:
			sb.WriteByte('{')
			tmpl = rest[1:]
		}
	}
	sb.WriteString(tmpl)
	return sb.String()
}

// topicClean keeps a key or gateway name to one topic level with no
// wildcards. A Replacer is safe for concurrent use once built.
var topicClean = strings.NewReplacer("/", "_", "+", "_", "#", "_", "\x00", "")
