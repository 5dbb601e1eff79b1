package ui

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// TestDeadLetters: the list, a retry of one id, of all, and bad bodies.
func TestDeadLetters(t *testing.T) {
	src := newMemSource()
	for i, id := range []string{"a1", "a2", "a3"} {
		src.dead = append(src.dead, DeadLetter{
			Alert:  event.Alert{ID: id, Rule: "hot_motor", Key: "pump-01", State: event.Firing, Severity: "critical", Time: t0, Topic: "up/x", Values: map[string]any{"text": "big"}},
			Reason: "mqtt publish: connection lost before Publish completed", Attempts: 5, At: t0.Add(time.Duration(i) * time.Second),
		})
	}
	src.status.DeadLetters, src.status.SetAside, src.status.AlertsTrimmed = 3, 4, 2
	s := newTestServer(t, "", src)

	w := do(t, s, "GET", "/api/dead-letters", nil)
	body := decode[struct {
		DeadLetters []struct {
			ID       string         `json:"id"`
			Rule     string         `json:"rule"`
			Values   map[string]any `json:"values"`
			Reason   string         `json:"reason"`
			Attempts int            `json:"attempts"`
			At       time.Time      `json:"set_aside_at"`
			Topic    string         `json:"topic"`
		} `json:"dead_letters"`
	}](t, w)
	if len(body.DeadLetters) != 3 || body.DeadLetters[0].ID != "a1" || body.DeadLetters[0].Attempts != 5 ||
		!strings.Contains(body.DeadLetters[0].Reason, "connection lost") || body.DeadLetters[0].Topic != "up/x" ||
		body.DeadLetters[2].At != t0.Add(2*time.Second) || body.DeadLetters[0].Values["text"] != "big" {
		t.Fatalf("dead letters %s", w.Body)
	}

	post := func(b string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/api/dead-letters/retry", strings.NewReader(b))
		r.Host, r.RemoteAddr = "127.0.0.1:8080", "127.0.0.1:5000"
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		return w
	}
	if w := post(`{"ids": ["a2"]}`); w.Code != 200 || !strings.Contains(w.Body.String(), `"retried":1`) {
		t.Fatalf("retry a2: %d %s", w.Code, w.Body)
	}
	if w := post(`{"ids": [`); w.Code != 400 {
		t.Fatalf("bad JSON: %d %s", w.Code, w.Body)
	}
	if w := post(`{"ids": ["` + strings.Repeat("x", maxRetryBody) + `"]}`); w.Code != 413 {
		t.Fatalf("huge body: %d", w.Code)
	}
	if w := post(``); w.Code != 200 || !strings.Contains(w.Body.String(), `"retried":2`) {
		t.Fatalf("retry all: %d %s", w.Code, w.Body)
	}
	if !slices.Equal(src.retried, []string{"a2", "*"}) {
		t.Fatalf("retried %v", src.retried)
	}

	st := decode[map[string]any](t, do(t, s, "GET", "/api/status", nil))
	if st["set_aside_total"] != 4.0 || st["alerts_trimmed_total"] != 2.0 {
		t.Fatalf("status %v", st)
	}
	fams := scrape(t, s)
	if v, _, _ := value(t, fams, "vigil_alerts_set_aside_total"); v != 4 {
		t.Errorf("set aside: %v", v)
	}
	if v, _, _ := value(t, fams, "vigil_alerts_trimmed_total"); v != 2 {
		t.Errorf("trimmed: %v", v)
	}
	if v, _, ok := value(t, fams, "vigil_dead_letters"); !ok || v != 0 {
		t.Errorf("dead letters after retries: %v %v", v, ok)
	}
}

// TestStateRecovered: a damaged state database set aside at start shows in
// /api/status and /metrics (the UI's banner reads the status).
func TestStateRecovered(t *testing.T) {
	src := newMemSource()
	s := newTestServer(t, "", src)
	if v, _, ok := value(t, scrape(t, s), "vigil_state_recovered"); !ok || v != 0 {
		t.Fatalf("state_recovered before: %v %v", v, ok)
	}
	src.mu.Lock()
	src.status.StateRecoveredTo = "/var/lib/vigil/vigil.db.corrupt-1767607200"
	src.mu.Unlock()
	if v, _, _ := value(t, scrape(t, s), "vigil_state_recovered"); v != 1 {
		t.Fatalf("state_recovered: %v", v)
	}
	st := decode[map[string]any](t, do(t, s, "GET", "/api/status", nil))
	if st["state_recovered_to"] != "/var/lib/vigil/vigil.db.corrupt-1767607200" {
		t.Fatalf("status %v", st)
	}
}
