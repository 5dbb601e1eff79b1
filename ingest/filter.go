package ingest

import (
	"fmt"
	"strings"
)

// MaxLevels caps the levels of a topic filter. Real topics have a handful;
// the cap keeps matching and Overlap trivially cheap.
const MaxLevels = 32

type levelKind uint8

const (
	literal levelKind = iota
	plus              // + : exactly one level
	hash              // # : this and every following level, or none
	capture           // {name}: like +, and the level's text is kept
)

type level struct {
	kind levelKind
	text string // literal text or capture name
}

// Filter is a parsed MQTT topic filter with optional {name} captures.
// A Filter is immutable and safe for concurrent use.
type Filter struct {
	src    string
	mqtt   string
	levels []level
	names  []string
}

// Capture is the topic level matched by a {name} level of a filter.
type Capture struct {
	Name, Value string
}

// ParseFilter parses an MQTT topic filter in which a level may also be a
// capture `{name}`: it matches like `+` and keeps the level's text under
// name. Errors name the offending level (1-based) so rule files can point
// at it.
func ParseFilter(s string) (*Filter, error) {
	if s == "" {
		return nil, fmt.Errorf("empty topic filter")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return nil, fmt.Errorf("topic filter %q: contains a null byte", s)
	}
	n := strings.Count(s, "/") + 1
	if n > MaxLevels {
		return nil, fmt.Errorf("topic filter %q: %d levels exceed %d", s, n, MaxLevels)
	}
	f := &Filter{src: s, levels: make([]level, 0, n)}
	var mq strings.Builder
	for i, part := range strings.Split(s, "/") {
		lv, err := parseLevel(part, i == n-1)
		if err != nil {
			return nil, fmt.Errorf("topic filter %q: level %d %q: %v", s, i+1, part, err)
		}
		if lv.kind == capture {
			for _, have := range f.names {
				if have == lv.text {
					return nil, fmt.Errorf("topic filter %q: level %d: capture {%s} used twice", s, i+1, lv.text)
				}
			}
			f.names = append(f.names, lv.text)
		}
		f.levels = append(f.levels, lv)
		if i > 0 {
			mq.WriteByte('/')
		}
		if lv.kind == capture {
			mq.WriteByte('+')
		} else {
			mq.WriteString(part)
		}
	}
	f.mqtt = mq.String()
	return f, nil
}

func parseLevel(p string, last bool) (level, error) {
	switch p {
	case "+":
		return level{kind: plus}, nil
	case "#":
		if !last {
			return level{}, fmt.Errorf("# must be the last level")
		}
		return level{kind: hash}, nil
	}
	if strings.ContainsAny(p, "+#") {
		return level{}, fmt.Errorf("a wildcard must be the whole level")
	}
	if !strings.ContainsAny(p, "{}") {
		return level{kind: literal, text: p}, nil
	}
	if len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}' {
		return level{}, fmt.Errorf("a capture must be the whole level, written {name}")
	}
	name := p[1 : len(p)-1]
	if !validName(name) {
		return level{}, fmt.Errorf("capture name %q must match [a-z_][a-z0-9_]*", name)
	}
	return level{kind: capture, text: name}, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// String returns the filter as written.
func (f *Filter) String() string { return f.src }

// MQTT returns the filter to subscribe with: captures become +.
func (f *Filter) MQTT() string { return f.mqtt }

// Names returns the capture names in level order.
func (f *Filter) Names() []string { return append([]string(nil), f.names...) }

// Match reports whether topic matches the filter and returns the captured
// levels. It allocates only the captures slice, and only when the filter
// has captures. As MQTT requires, a topic starting with '$' is not matched
// by a wildcard in the first level.
func (f *Filter) Match(topic string) ([]Capture, bool) {
	if topic == "" {
		return nil, false
	}
	if topic[0] == '$' && f.levels[0].kind != literal {
		return nil, false
	}
	// First pass without allocating: most topics a gateway sees do not
	// match most filters.
	if !f.walk(topic, nil) {
		return nil, false
	}
	if len(f.names) == 0 {
		return nil, true
	}
	caps := make([]Capture, 0, len(f.names))
	f.walk(topic, &caps)
	return caps, true
}

// walk matches topic level by level, appending captures to caps if not nil.
func (f *Filter) walk(topic string, caps *[]Capture) bool {
	rest, more := topic, true
	for _, lv := range f.levels {
		if lv.kind == hash {
			return true
		}
		if !more {
			return false
		}
		var part string
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			part, rest = rest[:i], rest[i+1:]
		} else {
			part, rest, more = rest, "", false
		}
		switch lv.kind {
		case literal:
			if part != lv.text {
				return false
			}
		case capture:
			if caps != nil {
				*caps = append(*caps, Capture{lv.text, part})
			}
		}
	}
	return !more
}

// Overlap reports whether some topic matches both a and b. Sources use it
// to find the rules they feed, and subscriptions to find redundant filters.
func Overlap(a, b *Filter) bool {
	la, lb := a.levels, b.levels
	for i := 0; ; i++ {
		if i == len(la) || i == len(lb) {
			// One filter ran out: the other may only continue with a
			// final #, which also matches zero levels.
			rest := la[i:]
			if i == len(la) {
				rest = lb[i:]
			}
			if i == 1 && (la[0] == level{} || lb[0] == level{}) { // level{}: literal ""
				// The only topic left is "" (one empty level), which is
				// not a valid topic name.
				return false
			}
			return len(rest) == 0 || (len(rest) == 1 && rest[0].kind == hash)
		}
		x, y := la[i], lb[i]
		if i == 0 && x.kind != y.kind && (dollar(x) || dollar(y)) {
			// A $-topic is matched only by literals in the first level.
			return false
		}
		if x.kind == hash || y.kind == hash {
			return true
		}
		if x.kind == literal && y.kind == literal && x.text != y.text {
			return false
		}
	}
}

// dollar reports a literal level naming a $-topic such as $SYS.
func dollar(l level) bool {
	return l.kind == literal && strings.HasPrefix(l.text, "$")
}
