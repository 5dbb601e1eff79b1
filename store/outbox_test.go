package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

func testAlert(id, severity string, ts time.Time) event.Alert {
	return event.Alert{
		ID: id, Rule: "hot_motor", Key: "pump1", State: event.Firing, Severity: severity,
		Time: ts.UTC(), Message: "pump1 at 81.5 °C", Values: map[string]any{"temperature": 81.5},
		Topic: "vigil/gw/alerts/hot_motor",
	}
}

func ids(as []event.Alert) []string {
	var s []string
	for _, a := range as {
		s = append(s, a.ID)
	}
	return s
}

func TestOutboxPutPendingDelivered(t *testing.T) {
	db := openTest(t, Options{})
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	a := testAlert("a", "warning", t0)
	a.Window = &event.Window{Start: t0.Add(-time.Minute), End: t0}
	b := testAlert("b", "critical", t0.Add(time.Second))
	b.Topic = "other/topic"

	steps := []struct {
		name      string
		put       []event.Alert
		delivered []string
		wantAdded int
		wantPend  []string
	}{
		{"insert", []event.Alert{a, b}, nil, 2, []string{"a", "b"}},
		{"same id again", []event.Alert{a, a}, nil, 0, []string{"a", "b"}},
		{"same id twice in a batch", []event.Alert{testAlert("c", "info", t0), testAlert("c", "info", t0)}, nil, 1, []string{"a", "b", "c"}},
		{"deliver", nil, []string{"a", "unknown"}, 0, []string{"b", "c"}},
		{"delivered id replayed", []event.Alert{a, testAlert("d", "info", t0)}, nil, 1, []string{"b", "c", "d"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.put != nil {
				n, err := db.Put(s.put)
				if err != nil || n != s.wantAdded {
					t.Fatalf("put: added %d, %v; want %d", n, err, s.wantAdded)
				}
			}
			if s.delivered != nil {
				if err := db.Delivered(s.delivered); err != nil {
					t.Fatal(err)
				}
			}
			p, err := db.Pending(100)
			if err != nil || !reflect.DeepEqual(ids(p), s.wantPend) {
				t.Fatalf("pending %v (%v), want %v", ids(p), err, s.wantPend)
			}
			if n, _ := db.OutboxLen(); n != len(s.wantPend) {
				t.Fatalf("outbox len %d, want %d", n, len(s.wantPend))
			}
		})
	}

	// Round trip of the contract form plus Topic, and the in-memory count
	// agrees with the file after a restart.
	db = reopen(t, db)
	p, err := db.Pending(1)
	if err != nil || len(p) != 1 {
		t.Fatalf("pending: %v %v", p, err)
	}
	if !reflect.DeepEqual(p[0], b) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", p[0], b)
	}
	if n, _ := db.OutboxLen(); n != 3 {
		t.Fatalf("outbox len after reopen %d", n)
	}
	h, err := db.History(Query{})
	if err != nil || len(h) != 4 {
		t.Fatalf("history %d entries, %v", len(h), err)
	}
	if h[3].Alert.ID != "a" || h[3].Delivered.IsZero() || !h[0].Delivered.IsZero() {
		t.Fatalf("delivered marks wrong: %+v", h)
	}
	if !reflect.DeepEqual(h[3].Alert.Window, a.Window) {
		t.Fatalf("window %+v", h[3].Alert.Window)
	}
}

func TestOutboxBoundDropsInfoFirst(t *testing.T) {
	db := openTest(t, Options{OutboxMax: 4})
	t0 := time.Unix(1000, 0)
	put := func(id, sev string) {
		t.Helper()
		if _, err := db.Put([]event.Alert{testAlert(id, sev, t0)}); err != nil {
			t.Fatal(err)
		}
	}
	put("c1", "critical")
	put("i1", "info")
	put("w1", "warning")
	put("i2", "info")
	steps := []struct {
		id, sev string
		want    []string
		dropped uint64
	}{
		{"w2", "warning", []string{"c1", "w1", "i2", "w2"}, 1},  // oldest info
		{"c2", "critical", []string{"c1", "w1", "w2", "c2"}, 2}, // next info
		{"i3", "info", []string{"c1", "w1", "w2", "c2"}, 3},     // the new info itself is the oldest info
		{"c3", "critical", []string{"c1", "w2", "c2", "c3"}, 4}, // no info left: oldest warning
		{"x1", "bogus", []string{"c1", "c2", "c3", "x1"}, 5},    // unknown ranks as warning
		{"c4", "critical", []string{"c1", "c2", "c3", "c4"}, 6}, // oldest warning (x1)
		{"c5", "critical", []string{"c2", "c3", "c4", "c5"}, 7}, // oldest critical last
	}
	for _, s := range steps {
		t.Run(s.id, func(t *testing.T) {
			put(s.id, s.sev)
			p, err := db.Pending(10)
			if err != nil || !reflect.DeepEqual(ids(p), s.want) {
				t.Fatalf("pending %v (%v), want %v", ids(p), err, s.want)
			}
			if db.Dropped() != s.dropped || db.Stats().Dropped != s.dropped {
				t.Fatalf("dropped %d, want %d", db.Dropped(), s.dropped)
			}
		})
	}
	// A dropped alert replayed is not re-added: it was counted, not lost silently.
	if n, err := db.Put([]event.Alert{testAlert("i1", "info", t0)}); err != nil || n != 0 {
		t.Fatalf("dropped id re-added: %d %v", n, err)
	}
	// One big batch over the bound keeps the newest critical ones.
	var batch []event.Alert
	for i := 0; i < 10; i++ {
		batch = append(batch, testAlert(fmt.Sprint("b", i), []string{"info", "critical"}[i%2], t0))
	}
	if _, err := db.Put(batch); err != nil {
		t.Fatal(err)
	}
	p, _ := db.Pending(10)
	if want := []string{"b3", "b5", "b7", "b9"}; !reflect.DeepEqual(ids(p), want) {
		t.Fatalf("after big batch %v, want %v", ids(p), want)
	}
}

func TestOutboxNonFiniteValues(t *testing.T) {
	db := openTest(t, Options{})
	a := testAlert("nan", "info", time.Unix(5, 0))
	a.Values = map[string]any{"avg": math.NaN(), "max": math.Inf(1), "n": 3.0,
		"nested": map[string]any{"x": math.Inf(-1)}}
	if n, err := db.Put([]event.Alert{a}); err != nil || n != 1 {
		t.Fatalf("put: %d %v", n, err)
	}
	p, err := db.Pending(1)
	if err != nil || len(p) != 1 {
		t.Fatal(err)
	}
	want := map[string]any{"avg": nil, "max": nil, "n": 3.0, "nested": map[string]any{"x": nil}}
	if !reflect.DeepEqual(p[0].Values, want) {
		t.Fatalf("values %v", p[0].Values)
	}
}

func TestHistoryQueryPagingPrune(t *testing.T) {
	db := openTest(t, Options{HistoryRetention: 24 * time.Hour, HistoryMax: 8})
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	clock := t0
	db.now = func() time.Time { return clock }
	// 10 alerts, one an hour; received 1 h apart as well.
	var all []event.Alert
	for i := 0; i < 10; i++ {
		a := testAlert(fmt.Sprint("h", i), []string{"info", "warning"}[i%2], t0.Add(time.Duration(i)*time.Hour))
		a.Rule = []string{"r1", "r2"}[i/5]
		a.Key = fmt.Sprint("k", i%3)
		if i == 9 {
			a.State = event.Resolved
		}
		clock = t0.Add(time.Duration(i) * time.Hour)
		if _, err := db.Put([]event.Alert{a}); err != nil {
			t.Fatal(err)
		}
		all = append(all, a)
	}
	if err := db.Delivered(ids(all)); err != nil {
		t.Fatal(err)
	}

	histIDs := func(q Query) []string {
		t.Helper()
		h, err := db.History(q)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, e := range h {
			s = append(s, e.Alert.ID)
		}
		return s
	}
	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"all newest first", Query{}, []string{"h9", "h8", "h7", "h6", "h5", "h4", "h3", "h2", "h1", "h0"}},
		{"rule", Query{Rule: "r1"}, []string{"h4", "h3", "h2", "h1", "h0"}},
		{"key", Query{Key: "k0"}, []string{"h9", "h6", "h3", "h0"}},
		{"severity", Query{Severity: "warning", Rule: "r2"}, []string{"h9", "h7", "h5"}},
		{"state", Query{State: "resolved"}, []string{"h9"}},
		{"since until", Query{Since: t0.Add(2 * time.Hour), Until: t0.Add(5 * time.Hour)}, []string{"h4", "h3", "h2"}},
		{"limit", Query{Limit: 3}, []string{"h9", "h8", "h7"}},
		{"no match", Query{Rule: "nope"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := histIDs(tc.q); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("paging", func(t *testing.T) {
		var got []string
		q := Query{Limit: 4}
		for {
			h, err := db.History(q)
			if err != nil {
				t.Fatal(err)
			}
			if len(h) == 0 {
				break
			}
			for _, e := range h {
				got = append(got, e.Alert.ID)
			}
			q.Before = h[len(h)-1].Seq
		}
		if want := histIDs(Query{}); !reflect.DeepEqual(got, want) {
			t.Fatalf("pages gave %v, want %v", got, want)
		}
	})

	t.Run("prune", func(t *testing.T) {
		// An undelivered old alert is kept: it is still the outbox's ledger.
		clock = t0.Add(-48 * time.Hour)
		old := testAlert("old-pending", "info", clock)
		if _, err := db.Put([]event.Alert{old}); err != nil {
			t.Fatal(err)
		}
		// now = t0+27h30m: retention 24 h removes received < t0+3h30m
		// (h0..h3); the cap of 8 then removes nothing more (6 left + old).
		n, err := db.Prune(t0.Add(27*time.Hour + 30*time.Minute))
		if err != nil || n != 4 {
			t.Fatalf("pruned %d, %v; want 4", n, err)
		}
		want := []string{"old-pending", "h9", "h8", "h7", "h6", "h5", "h4"}
		if got := histIDs(Query{}); !reflect.DeepEqual(got, want) {
			t.Fatalf("after retention %v", got)
		}
		db.o.HistoryMax = 3
		if n, err := db.Prune(t0); err != nil || n != 4 {
			t.Fatalf("cap pruned %d, %v; want 4", n, err)
		}
		want = []string{"old-pending", "h9", "h8"}
		if got := histIDs(Query{}); !reflect.DeepEqual(got, want) {
			t.Fatalf("after cap %v, want %v", got, want)
		}
	})
}

// TestConcurrentUse runs the pipeline's writers and the UI's readers at
// once; the in-memory counters must agree with the file afterwards.
func TestConcurrentUse(t *testing.T) {
	db := openTest(t, Options{OutboxMax: 150})
	const rounds = 40
	t0 := time.Unix(1000, 0)
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	wg.Add(4)
	go func() { // ingest
		defer wg.Done()
		for i := 0; i < rounds; i++ {
			batch := []Message{msg("t", "x", fmt.Sprint("d", i)), msg("t", "y", "")}
			if _, err := db.Append(batch); err != nil {
				errc <- err
				return
			}
			if i%10 == 9 {
				if err := db.SaveCheckpoint(Checkpoint{Pos: batch[1].Pos, Parts: map[string][]byte{"e": {byte(i)}}}); err != nil {
					errc <- err
					return
				}
			}
		}
	}()
	go func() { // engine
		defer wg.Done()
		for i := 0; i < rounds; i++ {
			batch := []event.Alert{testAlert(fmt.Sprint("a", i), "info", t0), testAlert(fmt.Sprint("b", i), "critical", t0)}
			if _, err := db.Put(batch); err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() { // forwarder
		defer wg.Done()
		for i := 0; i < rounds; i++ {
			p, err := db.Pending(3)
			if err == nil && len(p) > 0 {
				err = db.Delivered(ids(p[:1]))
			}
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() { // ui
		defer wg.Done()
		for i := 0; i < rounds; i++ {
			if _, err := db.History(Query{Severity: "critical", Limit: 10}); err != nil {
				errc <- err
				return
			}
			db.Stats()
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	var inFile int
	if err := db.w.QueryRow("SELECT count(*) FROM outbox").Scan(&inFile); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.OutboxLen(); n != inFile {
		t.Fatalf("OutboxLen %d, file %d", n, inFile)
	}
	if db.LastPos() != 2*rounds {
		t.Fatalf("LastPos %d", db.LastPos())
	}
}

func TestPutFillsMissingID(t *testing.T) {
	db := openTest(t, Options{})
	ts := time.Unix(77, 0).UTC()
	in := []event.Alert{testAlert("given", "info", ts), testAlert("", "info", ts)}
	if n, err := db.Put(in); err != nil || n != 2 {
		t.Fatalf("put %d %v", n, err)
	}
	if in[1].ID != "" {
		t.Fatal("caller's slice modified")
	}
	want := event.AlertID("hot_motor", "pump1", event.Firing, ts)
	p, _ := db.Pending(10)
	if got := ids(p); !reflect.DeepEqual(got, []string{"given", want}) {
		t.Fatalf("ids %v", got)
	}
	// The derived id makes the replay idempotent too.
	if n, err := db.Put(in[1:]); err != nil || n != 0 {
		t.Fatalf("replayed id-less alert added %d, %v", n, err)
	}
}

// TestPendingExcept: skipped ids are left out and the limit counts only
// what is returned.
func TestPendingExcept(t *testing.T) {
	db := openTest(t, Options{})
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if _, err := db.Put([]event.Alert{testAlert(id, "info", t0)}); err != nil {
			t.Fatal(err)
		}
	}
	skip := map[string]bool{"a": true, "c": true}
	got, err := db.PendingExcept(2, func(id string) bool { return skip[id] })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "b" || got[1].ID != "d" {
		t.Fatalf("PendingExcept(2, skip a c) = %+v, want b and d", got)
	}
	if all, _ := db.Pending(10); len(all) != 5 {
		t.Fatalf("Pending(10) = %d alerts, want 5", len(all))
	}
}

// TestPendingBodies: the forwarder's read gives each alert's upstream topic
// and exactly the JSON json.Marshal makes of it (NaN and ±Inf as null), in
// order, without the skipped ones.
func TestPendingBodies(t *testing.T) {
	db := openTest(t, Options{})
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	var put []event.Alert
	for i, id := range []string{"a", "b", "c"} {
		a := testAlert(id, "warning", t0)
		a.Topic = "vigil/gw/alerts/" + id
		a.Message = "<&> \u2028 é"
		a.Values = map[string]any{"n": float64(i), "s": "x"}
		if id == "c" {
			a.Values["bad"] = math.NaN()
		}
		put = append(put, a)
	}
	if _, err := db.Put(put); err != nil {
		t.Fatal(err)
	}
	got, err := db.PendingBodies(10, func(id string) bool { return id == "b" })
	if err != nil || len(got) != 2 || got[0].ID != "a" || got[1].ID != "c" {
		t.Fatalf("PendingBodies = %+v, %v", got, err)
	}
	want, _ := json.Marshal(put[0])
	if got[0].Topic != "vigil/gw/alerts/a" || string(got[0].Body) != string(want) {
		t.Fatalf("a: %s %s, want %s", got[0].Topic, got[0].Body, want)
	}
	finite := put[2]
	finite.Values = map[string]any{"n": 2.0, "s": "x", "bad": nil}
	want, _ = json.Marshal(finite)
	if string(got[1].Body) != string(want) {
		t.Fatalf("c: %s, want %s", got[1].Body, want)
	}
}

// TestMigrateToV5 opens a schema-4 file holding delivered and pending
// alerts: the history keeps every row, the pending ones point at theirs
// (hseq), a delivery marks the right row, and an alert put again is still
// ignored. Schema 5 has no index a new alert inserts into at a random
// place (ids, keys): those cost the SD card a page per alert.
func TestMigrateToV5(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v4.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range append(slices.Clone(migrations[:4]), "PRAGMA user_version = 4") {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	for i, st := range []struct {
		id        string
		delivered int
	}{{"old1", 5}, {"old2", 0}, {"old3", 0}} {
		if _, err := raw.Exec(`INSERT INTO history(id, rule, key, severity, state, time, received, delivered, topic, body)
			VALUES (?, 'r', 'k', 'info', 'firing', ?, 1, ?, 't', ?)`, st.id, t0.Add(time.Duration(i)*time.Second).UnixNano(), st.delivered,
			fmt.Sprintf(`{"id": %q}`, st.id)); err != nil {
			t.Fatal(err)
		}
		if st.delivered == 0 {
			if _, err := raw.Exec(`INSERT INTO outbox(id, severity, topic, body) VALUES (?, 0, 't', '{}')`, st.id); err != nil {
				t.Fatal(err)
			}
		}
	}
	raw.Close()

	db := openTest(t, Options{Path: path})
	var idx []string
	rows, err := db.r.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'history' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		idx = append(idx, n)
	}
	rows.Close()
	if fmt.Sprint(idx) != "[history_received history_rule history_time]" {
		t.Fatalf("history's indexes %v", idx)
	}
	if n, _ := db.OutboxLen(); n != 2 {
		t.Fatalf("outbox %d, want 2", n)
	}
	if err := db.Delivered([]string{"old3"}); err != nil {
		t.Fatal(err)
	}
	h, err := db.History(Query{Limit: 10})
	if err != nil || len(h) != 3 {
		t.Fatalf("history %d rows, %v", len(h), err)
	}
	marked := map[string]bool{}
	for _, e := range h {
		marked[e.Alert.ID] = !e.Delivered.IsZero()
	}
	if !marked["old1"] || marked["old2"] || !marked["old3"] {
		t.Fatalf("delivered marks %v, want old1 and old3", marked)
	}
	// Put again (a replay after a crash): ignored, found by time and id.
	again := event.Alert{ID: "old2", Rule: "r", Key: "k", State: event.Firing, Severity: "info", Time: t0.Add(time.Second)}
	if n, err := db.Put([]event.Alert{again}); err != nil || n != 0 {
		t.Fatalf("put of a known alert: added %d, %v", n, err)
	}
}
