package event

import "unicode/utf8"

// Cut shortens s to at most n bytes on a UTF-8 boundary, ending in "…"
// when it cut: how an alert's message and values are trimmed to a size
// limit.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:max(n, 0)] + "…"
}
