package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/rules"
)

// The decoder walks the parsed file against the Config struct: a mapping
// key names a field by its yaml tag (an `,inline` field's keys belong to
// the mapping that holds it), and every value is handed to the yaml
// library's decoder (yaml.NodeToValue) for its field's type. The walk is
// ours so that every problem is reported, not only the first, each at its
// value and in vigil.yaml's words rather than Go's.

// sizes are the settings written as a byte count with an optional unit.
var sizes = map[string]bool{"state.journal_max": true, "limits.max_payload": true}

// zeroOK are the numbers and durations that may be 0; any other must be
// positive.
var zeroOK = map[string]bool{"upstream.qos": true, "state.commit_gap": true}

// wantInt says what a number setting takes, where that is not any whole
// number from 1 (check holds them to it).
var wantInt = map[string]string{"upstream.qos": "0 or 1"}

var durationType = reflect.TypeOf(time.Duration(0))

// parseDuration reads Go's durations plus days and weeks.
var parseDuration = yaml.CustomUnmarshaler(func(d *time.Duration, b []byte) error {
	var s string
	if err := yaml.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := event.ParseDuration(strings.TrimSpace(s))
	*d = v
	return err
})

type decoder struct {
	*rules.Doc
	file  string
	errs  rules.Errors
	keys  map[string]ast.Node   // the key node of each setting in the file, by path ("broker.max_inflight")
	vals  map[string]ast.Node   // its value node
	items map[string][]ast.Node // a list's element nodes
	bad   map[string]bool       // settings already reported: check leaves them alone
}

func newDecoder(file string) *decoder {
	d := &decoder{file: file, keys: map[string]ast.Node{},
		vals: map[string]ast.Node{}, items: map[string][]ast.Node{}, bad: map[string]bool{}}
	d.Doc = rules.NewDoc(file, &d.errs)
	return d
}

// errf reports an error at the value n holds (past anchors and aliases).
func (d *decoder) errf(n ast.Node, format string, args ...any) {
	d.ErrAt(d.Pos(d.Unwrap(n)), format, args...)
}

// sorted is the errors in file order.
func (d *decoder) sorted() rules.Errors {
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i].Pos, d.errs[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return d.errs
}

// seen reports whether the file sets path to a value that decoded.
func (d *decoder) seen(path string) bool { return d.keys[path] != nil && !d.bad[path] }

// what names a setting as messages do: "broker: max_inflight".
func what(path string) string {
	if path == "" {
		return "config"
	}
	return strings.ReplaceAll(path, ".", ": ")
}

// keyOf is a mapping key's text.
func (d *decoder) keyOf(k ast.Node) string {
	k = d.Unwrap(k)
	if k == nil {
		return ""
	}
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value
	}
	return k.String()
}

// section decodes mapping n into the struct v.
func (d *decoder) section(n ast.Node, path string, v reflect.Value) {
	n = d.Unwrap(n)
	switch n.(type) {
	case nil, *ast.NullNode:
		return
	}
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.errf(n, "%s: want a mapping, got %s", what(path), rules.Describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]bool{}
	for _, mv := range m.Values {
		key := d.keyOf(mv.Key)
		switch idx, known := fields[key]; {
		case mv.Key != nil && mv.Key.IsMergeKey():
			d.errf(mv.Key, "%s: merge keys (<<) are not supported", what(path))
		case seen[key]:
			d.errf(mv.Key, "%s: duplicate key %q", what(path), key)
		case !known:
			d.errf(mv.Key, "%s: unknown key %q%s", what(path), key, suggest(key, fields))
		default:
			seen[key] = true
			p := key
			if path != "" {
				p = path + "." + key
			}
			d.keys[p], d.vals[p] = mv.Key, mv.Value
			before := len(d.errs)
			d.value(mv.Value, p, v.FieldByIndex(idx))
			d.bad[p] = len(d.errs) > before
		}
	}
}

// fieldsOf maps the yaml keys of struct type t to their fields, those of
// `,inline` fields included. A field without a yaml tag is not a setting.
func fieldsOf(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("yaml")
		if !ok || tag == "-" || !f.IsExported() {
			continue
		}
		name, opt, _ := strings.Cut(tag, ",")
		if opt == "inline" {
			for k, idx := range fieldsOf(f.Type) {
				if _, shadowed := out[k]; !shadowed {
					out[k] = append([]int{i}, idx...)
				}
			}
			continue
		}
		out[name] = []int{i}
	}
	return out
}

// value decodes one setting into field v.
func (d *decoder) value(n ast.Node, path string, v reflect.Value) {
	n = d.Unwrap(n)
	w := what(path)
	if v.Kind() == reflect.Struct {
		d.section(n, path, v)
		return
	}
	if v.Kind() == reflect.Slice {
		d.list(n, path, v)
		return
	}
	text, ok := d.scalar(n, w)
	if !ok {
		return
	}
	switch {
	case v.Type() == durationType:
		var t time.Duration
		if err := yaml.NodeToValue(n, &t, parseDuration); err != nil {
			d.errf(n, "%s: bad duration %q (write a number and a unit: 90s, 5m, 24h, 7d, 2w, 1d12h)", w, text)
			return
		}
		if t < 0 || t == 0 && !zeroOK[path] {
			d.errf(n, "%s: duration must be positive, got %s", w, text)
			return
		}
		v.SetInt(int64(t))
	case sizes[path]:
		b, ok := parseSize(text)
		if !ok {
			d.errf(n, "%s: bad size %q (a whole number of bytes, or with KB, MB, GB, KiB, MiB, GiB)", w, text)
			return
		}
		if v.OverflowInt(b) {
			d.errf(n, "%s: %q is too large", w, text)
			return
		}
		v.SetInt(b)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		// The decoder would cut 1.5 to 1: only whole numbers go to it.
		i, err := strconv.Atoi(strings.TrimSpace(text))
		if err == nil {
			err = yaml.NodeToValue(n, v.Addr().Interface())
		}
		if err != nil || i < 0 || i == 0 && !zeroOK[path] {
			want := wantInt[path]
			if want == "" {
				want = "a whole number >= 1"
			}
			d.errf(n, "%s: want %s, got %q", w, want, text)
		}
	case v.Kind() == reflect.Bool:
		if _, isBool := n.(*ast.BoolNode); !isBool || yaml.NodeToValue(n, v.Addr().Interface()) != nil {
			d.errf(n, "%s: want true or false, got %s", w, rules.Describe(n))
		}
	case v.Kind() == reflect.String:
		if strings.TrimSpace(text) == "" {
			d.errf(n, "%s: empty", w)
			return
		}
		v.SetString(text)
	default:
		panic(fmt.Sprintf("config: %s: no decoding for %s", path, v.Type()))
	}
}

// list decodes a string or a list of strings.
func (d *decoder) list(n ast.Node, path string, v reflect.Value) {
	w := what(path)
	items := []ast.Node{n}
	if seq, ok := n.(*ast.SequenceNode); ok {
		if len(seq.Values) == 0 {
			d.errf(n, "%s: empty list", w)
			return
		}
		items = seq.Values
	}
	var out []string
	good := true
	for i, it := range items {
		it = d.Unwrap(it)
		items[i] = it
		s, ok := d.scalar(it, w)
		if ok && strings.TrimSpace(s) == "" {
			d.errf(it, "%s: empty", w)
			ok = false
		}
		good = good && ok
		out = append(out, s)
	}
	if good {
		v.Set(reflect.ValueOf(out))
		d.items[path] = items
	}
}

// scalar is the text of a single value (rules.Doc's, and .inf and .nan
// too, which a limit may be compared with).
func (d *decoder) scalar(n ast.Node, w string) (string, bool) {
	switch x := n.(type) {
	case *ast.InfinityNode, *ast.NanNode:
		return x.GetToken().Value, true
	}
	return d.Scalar(n, w)
}

// parseSize reads a byte count: a whole number, optionally with a unit (KB,
// MB, GB as powers of 1,000; KiB, MiB, GiB as powers of 1,024).
func parseSize(s string) (int64, bool) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		sfx string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if v, ok := strings.CutSuffix(t, u.sfx); ok {
			t, mult = strings.TrimSpace(v), u.m
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v <= 0 || v > (1<<62)/mult {
		return 0, false
	}
	return v * mult, true
}

// suggest names the closest key when the typo is small, else lists them.
func suggest(s string, keys map[string][]int) string {
	list := make([]string, 0, len(keys))
	for k := range keys {
		list = append(list, k)
	}
	return rules.Suggest(s, list)
}

func valueOf(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() }
