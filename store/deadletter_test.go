package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigil-gw/vigil/event"
)

// TestPutTrimsLargeAlerts: an alert over MaxAlertBytes is stored cut and
// marked trimmed, with its id; the caller's alert is left alone.
func TestPutTrimsLargeAlerts(t *testing.T) {
	db := openTest(t, Options{MaxAlertBytes: 1024})
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	big := testAlert("big", "warning", t0)
	big.Message = strings.Repeat("é", 3000)
	big.Values = map[string]any{"text": strings.Repeat("x", 5000), "n": 3.0, "nested": map[string]any{"a": strings.Repeat("y", 900)}}
	small := testAlert("small", "warning", t0.Add(time.Second))
	in := []event.Alert{big, small}
	if _, err := db.Put(in); err != nil {
		t.Fatal(err)
	}
	if len(in[0].Message) != 6000 || in[0].Trimmed {
		t.Fatal("Put changed the caller's alert")
	}
	out, err := db.PendingBodies(10, nil)
	if err != nil || len(out) != 2 {
		t.Fatalf("pending %d, %v", len(out), err)
	}
	if len(out[0].Body) > 1024 || out[0].ID != "big" {
		t.Fatalf("trimmed alert %s: %d bytes", out[0].ID, len(out[0].Body))
	}
	var got event.Alert
	if err := json.Unmarshal(out[0].Body, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Trimmed || !strings.HasSuffix(got.Message, "…") || !utf8.ValidString(got.Message) ||
		got.Values["n"] != 3.0 || got.ID != "big" {
		t.Fatalf("trimmed alert %s", out[0].Body)
	}
	if strings.Contains(string(out[1].Body), "trimmed") {
		t.Fatalf("small alert trimmed: %s", out[1].Body)
	}
	if st := db.Stats(); st.Trimmed != 1 {
		t.Fatalf("trimmed count %d", st.Trimmed)
	}
	// The history shows the stored (trimmed) form.
	h, err := db.History(Query{Rule: "hot_motor"})
	if err != nil || len(h) != 2 || !h[1].Alert.Trimmed {
		t.Fatalf("history %+v %v", h, err)
	}
}

// TestSetAsideAndRetry: a set-aside alert leaves the outbox (the next one
// is at its head), is listed, counted, and retried at the outbox's end.
func TestSetAsideAndRetry(t *testing.T) {
	db := openTest(t, Options{})
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	var as []event.Alert
	for i := range 3 {
		as = append(as, testAlert(fmt.Sprint("a", i), "warning", t0.Add(time.Duration(i)*time.Second)))
	}
	if _, err := db.Put(as); err != nil {
		t.Fatal(err)
	}
	if err := db.SetAside("a0", "mqtt publish: connection lost", 5); err != nil {
		t.Fatal(err)
	}
	if err := db.SetAside("nope", "x", 1); err != nil { // unknown: ignored
		t.Fatal(err)
	}
	p, _ := db.Pending(10)
	if fmt.Sprint(ids(p)) != "[a1 a2]" {
		t.Fatalf("pending %v", ids(p))
	}
	if n, _ := db.OutboxLen(); n != 2 {
		t.Fatalf("outbox len %d", n)
	}
	dl, err := db.DeadLetters(0)
	if err != nil || len(dl) != 1 || dl[0].Alert.ID != "a0" || dl[0].Reason != "mqtt publish: connection lost" ||
		dl[0].Attempts != 5 || dl[0].At.IsZero() || dl[0].Alert.Topic != as[0].Topic {
		t.Fatalf("dead letters %+v %v", dl, err)
	}
	if n, _ := db.DeadLetterCount(); n != 1 || db.Stats().SetAside != 1 {
		t.Fatalf("count %d, set aside %d", n, db.Stats().SetAside)
	}
	// Put again (a replay after a crash): the history knows the id, so it
	// does not come back into the outbox behind the operator's back.
	if added, _ := db.Put(as[:1]); added != 0 {
		t.Fatalf("re-put added %d", added)
	}
	if n, err := db.RetryDeadLetters([]string{"a0"}); err != nil || n != 1 {
		t.Fatalf("retry %d %v", n, err)
	}
	p, _ = db.Pending(10)
	if fmt.Sprint(ids(p)) != "[a1 a2 a0]" {
		t.Fatalf("pending after retry %v", ids(p))
	}
	if n, _ := db.OutboxLen(); n != 3 {
		t.Fatalf("outbox len %d", n)
	}
	// All at once; and the table survives a reopen.
	db.SetAside("a1", "r", 3)
	db.SetAside("a2", "r", 3)
	db = reopen(t, db)
	if n, _ := db.DeadLetterCount(); n != 2 {
		t.Fatalf("after reopen: %d", n)
	}
	if n, err := db.RetryDeadLetters(nil); err != nil || n != 2 {
		t.Fatalf("retry all %d %v", n, err)
	}
	if n, _ := db.DeadLetterCount(); n != 0 {
		t.Fatalf("left %d", n)
	}
}

// FuzzCapAlert: a trimmed alert is valid JSON with its id, marked, within
// the limit whenever the limit leaves room for its fixed members.
func FuzzCapAlert(f *testing.F) {
	f.Add("hello", "k", "v", 5000, 1024)
	f.Add(strings.Repeat("é", 700), strings.Repeat("k", 400), "\x00\"<>", 100, 600)
	f.Fuzz(func(t *testing.T, msg, key, val string, n, max int) {
		if n < 0 || n > 1<<16 || max < 0 || max > 1<<16 {
			return
		}
		a := testAlert("id1", "info", time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC))
		a.Message, a.Key = msg, key
		a.Values = map[string]any{"v": strings.Repeat(val, min(n, 1<<12)), "list": []any{val, 1.0}, "x": 2.0}
		body, err := marshalAlert(&a)
		if err != nil {
			t.Fatal(err)
		}
		c, b, trimmed, err := capAlert(&a, body, max)
		if err != nil {
			t.Fatal(err)
		}
		if !trimmed {
			if len(body) > max || string(b) != string(body) {
				t.Fatalf("not trimmed: %d > %d", len(body), max)
			}
			return
		}
		var got event.Alert
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		if !got.Trimmed || got.ID != "id1" || !c.Trimmed {
			t.Fatalf("trimmed alert %s", b)
		}
		// The fixed members take ~250 bytes; a key and a message are cut
		// to 256 bytes each, written escaped (up to six bytes a byte).
		if max >= 4096 && len(b) > max {
			t.Fatalf("%d bytes over the limit %d", len(b), max)
		}
	})
}
