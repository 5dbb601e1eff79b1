package event

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello", 4, "h…"},
		{"héllo", 5, "h…"},
		{"éééé", 6, "é…"},
		{"abc", 2, "…"},
		{"abc", 0, "…"},
	} {
		if got := Cut(tc.s, tc.n); got != tc.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func FuzzCut(f *testing.F) {
	f.Add("héllo wörld", 7)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 3 || n > 1<<20 {
			return
		}
		got := Cut(s, n)
		if len(got) > n || utf8.ValidString(s) && !utf8.ValidString(got) || len(s) <= n && got != s ||
			len(s) > n && !strings.HasSuffix(got, "…") {
			t.Fatalf("Cut(%q, %d) = %q", s, n, got)
		}
	})
}
