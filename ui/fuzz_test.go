package ui

import (
	"net/url"
	"testing"
)

// FuzzAlertQuery: any query string either fails with an error naming the
// parameter or yields a query the store can take as is.
func FuzzAlertQuery(f *testing.F) {
	for _, s := range []string{"", "rule=hot_motor&key=pump-01", "severity=critical&state=resolved",
		"since=1h&until=2026-01-05T10:00:00Z", "limit=1000&before=42", "limit=0", "since=-1h", "before=-3",
		"limit=1e3", "severity=%00", "since=9999999h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseAlertQuery(v, t0)
		if err != nil {
			return
		}
		if q.Limit < 1 || q.Limit > 1000 || q.Before < 0 {
			t.Fatalf("%q: limit %d before %d", raw, q.Limit, q.Before)
		}
		switch q.Severity {
		case "", "info", "warning", "critical":
		default:
			t.Fatalf("%q: severity %q", raw, q.Severity)
		}
		switch q.State {
		case "", "firing", "resolved":
		default:
			t.Fatalf("%q: state %q", raw, q.State)
		}
	})
}
