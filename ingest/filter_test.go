package ingest

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseFilterErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", "empty topic filter"},
		{"a/#/b", `level 2 "#": # must be the last level`},
		{"#/a", `level 1 "#": # must be the last level`},
		{"a+", `level 1 "a+": a wildcard must be the whole level`},
		{"a/b#", `level 2 "b#": a wildcard must be the whole level`},
		{"a/+#", "a wildcard must be the whole level"},
		{"a/{dev", `level 2 "{dev": a capture must be the whole level, written {name}`},
		{"a/dev}", "a capture must be the whole level"},
		{"a/x{dev}", "a capture must be the whole level"},
		{"a/{dev}x", "a capture must be the whole level"},
		{"a/{}", `capture name "" must match [a-z_][a-z0-9_]*`},
		{"a/{Dev}", `capture name "Dev"`},
		{"a/{1dev}", `capture name "1dev"`},
		{"a/{de-v}", `capture name "de-v"`},
		{"a/{{dev}}", `capture name "{dev}"`},
		{"{dev}/x/{dev}", "level 3: capture {dev} used twice"},
		{"a/b\x00c", "contains a null byte"},
		{strings.Repeat("a/", 32) + "a", "33 levels exceed 32"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			f, err := ParseFilter(tc.in)
			if err == nil {
				t.Fatalf("ParseFilter(%q) = %v, want error containing %q", tc.in, f, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseFilter(%q) error %q, want it to contain %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		in, mqtt string
		names    []string
	}{
		{"a/b", "a/b", nil},
		{"+", "+", nil},
		{"#", "#", nil},
		{"/", "/", nil},
		{"a//b", "a//b", nil},
		{"sensors/{device}/temperature", "sensors/+/temperature", []string{"device"}},
		{"{site}/{_x9}/+/#", "+/+/+/#", []string{"site", "_x9"}},
		{"$SYS/{metric}", "$SYS/+", []string{"metric"}},
		{strings.Repeat("a/", 31) + "#", strings.Repeat("a/", 31) + "#", nil},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			f, err := ParseFilter(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if f.String() != tc.in || f.MQTT() != tc.mqtt || !reflect.DeepEqual(f.Names(), tc.names) {
				t.Errorf("ParseFilter(%q): String %q MQTT %q Names %q; want MQTT %q Names %q",
					tc.in, f.String(), f.MQTT(), f.Names(), tc.mqtt, tc.names)
			}
			if _, err := ParseFilter(f.MQTT()); err != nil {
				t.Errorf("MQTT() %q does not re-parse: %v", f.MQTT(), err)
			}
		})
	}
}

func TestFilterNamesIsACopy(t *testing.T) {
	f := mustFilter(t, "{a}/{b}")
	f.Names()[0] = "zzz"
	if got := f.Names(); got[0] != "a" {
		t.Fatalf("Names() shares its slice: %q", got)
	}
}

func mustFilter(t testing.TB, s string) *Filter {
	t.Helper()
	f, err := ParseFilter(s)
	if err != nil {
		t.Fatalf("ParseFilter(%q): %v", s, err)
	}
	return f
}

func TestFilterMatch(t *testing.T) {
	tests := []struct {
		filter, topic string
		ok            bool
		caps          []Capture
	}{
		{"a/b", "a/b", true, nil},
		{"a/b", "a/c", false, nil},
		{"a/b", "a/b/c", false, nil},
		{"a/b", "a", false, nil},
		{"a/b", "a/b/", false, nil},
		{"+", "a", true, nil},
		{"+", "a/b", false, nil},
		{"+", "/a", false, nil},
		{"+/+", "/a", true, nil},
		{"a/+", "a/", true, nil},
		{"a/+", "a", false, nil},
		{"a/+/c", "a/b/c", true, nil},
		{"a/+/c", "a//c", true, nil},
		{"a//b", "a//b", true, nil},
		{"a//b", "a/b", false, nil},
		{"#", "a", true, nil},
		{"#", "a/b/c", true, nil},
		{"#", "/", true, nil},
		{"a/#", "a", true, nil}, // MQTT: # also matches the parent level
		{"a/#", "a/b/c", true, nil},
		{"a/#", "ab", false, nil},
		{"a/#", "b/a", false, nil},
		{"", "", false, nil},
		{"a", "", false, nil},
		{"#", "$SYS/broker", false, nil},
		{"+/broker", "$SYS/broker", false, nil},
		{"{x}/broker", "$SYS/broker", false, nil},
		{"$SYS/#", "$SYS/broker", true, nil},
		{"$SYS/+", "$SYS/broker", true, nil},
		{"a/#", "a/$b", true, nil}, // $ matters only in the first level
		{"sensors/{device}/temperature", "sensors/pump1/temperature", true, []Capture{{"device", "pump1"}}},
		{"sensors/{device}/temperature", "sensors/pump1/humidity", false, nil},
		{"sensors/{device}/#", "sensors/pump1", true, []Capture{{"device", "pump1"}}},
		{"sensors/{device}/#", "sensors/pump1/a/b", true, []Capture{{"device", "pump1"}}},
		{"{site}/+/{dev}", "home/x/tv", true, []Capture{{"site", "home"}, {"dev", "tv"}}},
		{"{site}/{dev}", "home/", true, []Capture{{"site", "home"}, {"dev", ""}}},
		{"{site}/{dev}", "home", false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.filter+" ~ "+tc.topic, func(t *testing.T) {
			if tc.filter == "" {
				return // not a filter; kept to document the empty topic
			}
			f := mustFilter(t, tc.filter)
			caps, ok := f.Match(tc.topic)
			if ok != tc.ok || !reflect.DeepEqual(caps, tc.caps) {
				t.Errorf("%q.Match(%q) = %v, %v; want %v, %v", tc.filter, tc.topic, caps, ok, tc.caps, tc.ok)
			}
		})
	}
}

func TestMatchAllocations(t *testing.T) {
	plain := mustFilter(t, "sensors/+/temperature/#")
	if n := testing.AllocsPerRun(100, func() { plain.Match("sensors/pump1/temperature/x") }); n != 0 {
		t.Errorf("Match without captures allocates %v times", n)
	}
	capt := mustFilter(t, "sensors/{device}/temperature")
	if n := testing.AllocsPerRun(100, func() { capt.Match("sensors/pump1/humidity") }); n != 0 {
		t.Errorf("a failed Match with captures allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { capt.Match("sensors/pump1/temperature") }); n != 1 {
		t.Errorf("Match with captures allocates %v times, want 1", n)
	}
}

func TestOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/b", "a/b/c", false},
		{"a/+", "a/b", true},
		{"a/+", "+/b", true},
		{"a/+", "b/+", false},
		{"+/+", "a", false},
		{"+/+", "a/b/c", false},
		{"#", "a/b/c", true},
		{"#", "+", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/#", "b/#", false},
		{"a/#", "+/x", true},
		{"a/+/c", "a/#", true},
		{"a", "a/+", false},
		{"a", "a/+/#", false},
		{"a/+/#", "a", false},
		{"a/b/#", "a/+", true},
		{"{d}/t", "x/{e}", true},
		{"sensors/{device}/temperature", "sensors/#", true},
		{"sensors/{device}/temperature", "shop/#", false},
		{"a//b", "a/+/b", true},
		{"a//b", "a/b", false},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"{d}/#", "$SYS/#", false},
		{"$SYS/#", "$SYS/+", true},
		{"$SYS/x", "$SYS/x", true},
		{"$SYS", "#", false},
		{"a/#", "a/$x", true},
	}
	for _, tc := range tests {
		t.Run(tc.a+" ∩ "+tc.b, func(t *testing.T) {
			a, b := mustFilter(t, tc.a), mustFilter(t, tc.b)
			if got := Overlap(a, b); got != tc.want {
				t.Errorf("Overlap(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
			if got := Overlap(b, a); got != tc.want {
				t.Errorf("Overlap(%q, %q) = %v, want %v (not symmetric)", tc.b, tc.a, got, tc.want)
			}
		})
	}
}

// TestOverlapAgreesWithMatch checks Overlap against brute force: a pair
// overlaps exactly when some topic from a small universe matches both.
func TestOverlapAgreesWithMatch(t *testing.T) {
	var filters []string
	parts := []string{"a", "b", "$s", "+", "", "{c}", "{d}"}
	for _, p := range parts {
		if p != "" {
			filters = append(filters, p)
		}
		filters = append(filters, p+"/#")
		for _, q := range parts {
			if p == q && p[0:min(1, len(p))] == "{" {
				continue // a capture name may appear once
			}
			filters = append(filters, p+"/"+q, p+"/"+q+"/#")
		}
	}
	filters = append(filters, "#")
	var topics []string
	words := []string{"a", "b", "$s", "", "z"}
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		if depth == 0 {
			return
		}
		for _, w := range words {
			tp := w
			if prefix != "\x00" {
				tp = prefix + "/" + w
			}
			if tp != "" {
				topics = append(topics, tp)
			}
			gen(tp, depth-1)
		}
	}
	gen("\x00", 4)
	for _, as := range filters {
		a := mustFilter(t, as)
		for _, bs := range filters {
			b := mustFilter(t, bs)
			want := false
			for _, tp := range topics {
				_, ma := a.Match(tp)
				_, mb := b.Match(tp)
				if ma && mb {
					want = true
					break
				}
			}
			if got := Overlap(a, b); got != want {
				t.Errorf("Overlap(%q, %q) = %v, brute force says %v", as, bs, got, want)
			}
		}
	}
}
