package store

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func msg(topic, payload, dedup string) Message {
	return Message{Topic: topic, Payload: []byte(payload), Dedup: dedup, Received: time.Unix(1700000000, 123).UTC()}
}

func readJournal(t *testing.T, db *DB, after uint64) []Message {
	t.Helper()
	var got []Message
	if err := db.Journal(after, func(m Message) error { got = append(got, m); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func positions(ms []Message) []uint64 {
	var p []uint64
	for _, m := range ms {
		p = append(p, m.Pos)
	}
	return p
}

func TestJournalAppendRead(t *testing.T) {
	db := openTest(t, Options{})
	batch := []Message{msg("a", "1", ""), msg("b", "", ""), {Topic: "c", Payload: nil}}
	n, err := db.Append(batch)
	if err != nil || n != 3 {
		t.Fatalf("append: %d, %v", n, err)
	}
	if !reflect.DeepEqual(positions(batch), []uint64{1, 2, 3}) {
		t.Fatalf("positions %v", positions(batch))
	}
	if _, err := db.Append([]Message{msg("d", "4", "")}); err != nil {
		t.Fatal(err)
	}
	got := readJournal(t, db, 0)
	if !reflect.DeepEqual(positions(got), []uint64{1, 2, 3, 4}) {
		t.Fatalf("read positions %v", positions(got))
	}
	if got[0].Topic != "a" || string(got[0].Payload) != "1" || !got[0].Received.Equal(batch[0].Received) {
		t.Fatalf("round trip: %+v", got[0])
	}
	if got[2].Payload == nil || len(got[2].Payload) != 0 || !got[2].Received.IsZero() {
		t.Fatalf("nil payload / zero time: %+v", got[2])
	}
	if got := readJournal(t, db, 2); !reflect.DeepEqual(positions(got), []uint64{3, 4}) {
		t.Fatalf("after 2: %v", positions(got))
	}
	// fn's error stops the walk and comes back unchanged.
	stop := errors.New("stop")
	calls := 0
	if err := db.Journal(0, func(Message) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("stop: %v after %d calls", err, calls)
	}
	if n, _ := db.JournalLen(); n != 4 {
		t.Fatalf("len %d", n)
	}
}

func TestJournalChunkedReadAllowsWrites(t *testing.T) {
	db := openTest(t, Options{})
	const total = 2*512 + 7
	msgs := make([]Message, total)
	for i := range msgs {
		msgs[i] = msg("t", fmt.Sprint(i+1), "")
	}
	if _, err := db.Append(msgs); err != nil {
		t.Fatal(err)
	}
	var want uint64 = 1
	err := db.Journal(0, func(m Message) error {
		if m.Pos != want || (m.Pos <= total && string(m.Payload) != fmt.Sprint(want)) {
			return fmt.Errorf("got pos %d payload %q, want %d", m.Pos, m.Payload, want)
		}
		want++
		// Writing from inside fn must not deadlock on the single writer.
		if m.Pos == 10 {
			if _, err := db.Append([]Message{msg("late", "x", "")}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want != total+2 { // the message appended during the walk is read too
		t.Fatalf("walked to %d, want %d", want-1, total+1)
	}
}

// redo is m flagged as a redelivery (MQTT DUP).
func redo(m Message) Message {
	m.Redelivered = true
	return m
}

func TestJournalDedup(t *testing.T) {
	db := openTest(t, Options{})
	first := []Message{msg("a", "1", "m1"), msg("a", "2", "m2"), msg("a", "3", "")}
	if _, err := db.Append(first); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		batch     []Message
		wantPos   []uint64
		wantDup   []bool
		wantAdded int
	}{
		{"redelivery of journaled", []Message{redo(msg("a", "1", "m1")), msg("a", "4", "m4")},
			[]uint64{1, 4}, []bool{true, false}, 1},
		{"redelivered twice in one batch", []Message{msg("a", "5", "m5"), redo(msg("a", "5", "m5")), msg("a", "6", "")},
			[]uint64{5, 5, 6}, []bool{false, true, false}, 2},
		{"a repeat not flagged is new", []Message{msg("a", "1", "m1")},
			[]uint64{7}, []bool{false}, 1},
		{"redelivery finds the latest", []Message{redo(msg("a", "1", "m1"))},
			[]uint64{7}, []bool{true}, 0},
		{"redelivery of an unknown id is new", []Message{redo(msg("a", "9", "m9"))},
			[]uint64{8}, []bool{false}, 1},
		{"no dedup id never dup", []Message{msg("a", "3", ""), redo(msg("a", "3", ""))},
			[]uint64{9, 10}, []bool{false, false}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := db.Append(tc.batch)
			if err != nil {
				t.Fatal(err)
			}
			var dups []bool
			for _, m := range tc.batch {
				dups = append(dups, m.Dup)
			}
			if n != tc.wantAdded || !reflect.DeepEqual(positions(tc.batch), tc.wantPos) || !reflect.DeepEqual(dups, tc.wantDup) {
				t.Fatalf("added %d pos %v dup %v; want %d %v %v", n, positions(tc.batch), dups, tc.wantAdded, tc.wantPos, tc.wantDup)
			}
		})
	}
	// Survives a restart.
	db = reopen(t, db)
	b := []Message{redo(msg("a", "2", "m2"))}
	if _, err := db.Append(b); err != nil || !b[0].Dup || b[0].Pos != 2 {
		t.Fatalf("after reopen: %+v %v", b[0], err)
	}
	// Once a checkpoint truncated it, the id is forgotten (without a
	// DedupWindow; see Message.Dedup).
	if err := saveAndPrune(db, Checkpoint{Pos: 2}); err != nil {
		t.Fatal(err)
	}
	b = []Message{redo(msg("a", "2", "m2"))}
	if _, err := db.Append(b); err != nil || b[0].Dup || b[0].Pos != 11 {
		t.Fatalf("after truncation: %+v %v", b[0], err)
	}
	// Many redeliveries at once.
	var many []Message
	for i := range 2003 {
		many = append(many, msg("b", fmt.Sprint(i), fmt.Sprint("k", i)))
	}
	if _, err := db.Append(many); err != nil {
		t.Fatal(err)
	}
	want := positions(many)
	for i := range many {
		many[i] = redo(many[i])
	}
	if n, err := db.Append(many); err != nil || n != 0 || !reflect.DeepEqual(positions(many), want) {
		t.Fatalf("redelivered %d: added %d (%v), positions equal %v", len(many), n, err, reflect.DeepEqual(positions(many), want))
	}
}

func TestCheckpointTruncatesJournal(t *testing.T) {
	db := openTest(t, Options{})
	for i := 0; i < 10; i++ {
		if _, err := db.Append([]Message{msg("t", fmt.Sprint(i), "")}); err != nil {
			t.Fatal(err)
		}
	}
	taken := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	c := Checkpoint{Pos: 6, Version: 3, Taken: taken, Parts: map[string][]byte{
		"engine": []byte("e1"), "rule/a": []byte("a1"), "rule/empty": {},
	}}
	if err := saveAndPrune(db, c); err != nil {
		t.Fatal(err)
	}
	if got := readJournal(t, db, 0); !reflect.DeepEqual(positions(got), []uint64{7, 8, 9, 10}) {
		t.Fatalf("journal after checkpoint: %v", positions(got))
	}
	db = reopen(t, db)
	got, ok, err := db.LoadCheckpoint()
	if err != nil || !ok {
		t.Fatalf("load: %v %v", ok, err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("loaded %+v, want %+v", got, c)
	}

	t.Run("replace", func(t *testing.T) {
		// Change one part, drop one, add one, keep one: only the
		// incremental path runs now that the parts were loaded.
		c2 := Checkpoint{Pos: 10, Version: 4, Taken: taken.Add(time.Minute), Parts: map[string][]byte{
			"engine": []byte("e2"), "rule/a": []byte("a1"), "rule/b": []byte("b1"),
		}}
		if err := saveAndPrune(db, c2); err != nil {
			t.Fatal(err)
		}
		// A fresh DB has no hashes: the full path must give the same result.
		db2 := reopen(t, db)
		got, _, err := db2.LoadCheckpoint()
		if err != nil || !reflect.DeepEqual(got, c2) {
			t.Fatalf("loaded %+v (%v), want %+v", got, err, c2)
		}
		if n, _ := db2.JournalLen(); n != 0 {
			t.Fatalf("journal len %d", n)
		}
		// Positions continue after the checkpoint even with an empty journal.
		b := []Message{msg("t", "x", "")}
		if _, err := db2.Append(b); err != nil || b[0].Pos != 11 {
			t.Fatalf("next pos %d %v", b[0].Pos, err)
		}
		db = db2
	})

	t.Run("rejects bad positions", func(t *testing.T) {
		for _, pos := range []uint64{9, 12} { // behind the saved one; beyond the head
			if err := saveAndPrune(db, Checkpoint{Pos: pos}); err == nil {
				t.Fatalf("pos %d accepted", pos)
			}
		}
	})

	t.Run("full rewrite without loaded hashes", func(t *testing.T) {
		db2 := reopen(t, db) // no LoadCheckpoint: hashes unknown
		c3 := Checkpoint{Pos: 11, Parts: map[string][]byte{"only": bytes.Repeat([]byte{1}, 10)}}
		if err := saveAndPrune(db2, c3); err != nil {
			t.Fatal(err)
		}
		got, _, err := db2.LoadCheckpoint()
		if err != nil || !reflect.DeepEqual(got.Parts, c3.Parts) {
			t.Fatalf("stale parts survived: %v %v", got.Parts, err)
		}
	})
}

func TestLoadCheckpointNone(t *testing.T) {
	db := openTest(t, Options{})
	if _, ok, err := db.LoadCheckpoint(); ok || err != nil {
		t.Fatalf("empty db: ok %v err %v", ok, err)
	}
}

// TestJournalDedupWindowOnlyRedelivered: the ids a checkpoint covered are
// consulted only for a message the broker flags as redelivered.
func TestJournalDedupWindowOnlyRedelivered(t *testing.T) {
	db := openTest(t, Options{DedupWindow: time.Hour})
	now := time.Now()
	if _, err := db.Append([]Message{{Topic: "t", Payload: []byte("1"), Dedup: "a", Received: now}}); err != nil {
		t.Fatal(err)
	}
	if err := saveAndPrune(db, Checkpoint{Pos: 1}); err != nil {
		t.Fatal(err)
	}
	fresh := []Message{{Topic: "t", Payload: []byte("1"), Dedup: "a", Received: now}}
	if _, err := db.Append(fresh); err != nil || fresh[0].Dup || fresh[0].Pos != 2 {
		t.Fatalf("fresh: %+v %v", fresh[0], err)
	}
	if err := saveAndPrune(db, Checkpoint{Pos: 2}); err != nil {
		t.Fatal(err)
	}
	again := []Message{{Topic: "t", Payload: []byte("1"), Dedup: "a", Received: now, Redelivered: true}}
	if _, err := db.Append(again); err != nil || !again[0].Dup {
		t.Fatalf("redelivered: %+v %v", again[0], err)
	}
}

func TestJournalDedupWindow(t *testing.T) {
	db := openTest(t, Options{DedupWindow: time.Minute})
	clock := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	db.now = func() time.Time { return clock }
	at := func(payload, dedup string, recv time.Time) Message {
		return Message{Topic: "t", Payload: []byte(payload), Dedup: dedup, Received: recv}
	}
	if _, err := db.Append([]Message{at("1", "a", clock), at("2", "b", clock.Add(-2*time.Minute)), at("3", "", clock)}); err != nil {
		t.Fatal(err)
	}
	if err := saveAndPrune(db, Checkpoint{Pos: 3}); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db) // the memory is in the file
	db.now = func() time.Time { return clock }

	steps := []struct {
		name    string
		advance time.Duration
		dedup   string
		wantDup bool
		wantPos uint64
	}{
		{"truncated within window", 0, "a", true, 1},
		{"received before the window", 0, "b", false, 4},
		{"window passed", 2 * time.Minute, "a", false, 5},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clock = clock.Add(s.advance)
			if s.advance > 0 { // expiry happens at checkpoints
				if err := saveAndPrune(db, Checkpoint{Pos: db.LastPos()}); err != nil {
					t.Fatal(err)
				}
			}
			b := []Message{at("x", s.dedup, clock)}
			b[0].Redelivered = true
			if _, err := db.Append(b); err != nil {
				t.Fatal(err)
			}
			if b[0].Dup != s.wantDup || b[0].Pos != s.wantPos {
				t.Fatalf("dup %v pos %d, want %v %d", b[0].Dup, b[0].Pos, s.wantDup, s.wantPos)
			}
		})
	}
}

// TestMigrateFromV1 opens a file written by schema version 1 (before
// dedup_seen) and checks that Open migrates it and keeps its data.
func TestMigrateFromV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{migrations[0], "PRAGMA user_version = 1",
		`INSERT INTO journal(pos, topic, payload, received, dedup) VALUES (7, 'old', x'01', 0, 'd7')`,
		`INSERT INTO checkpoint(id, pos, version, taken) VALUES (1, 6, 1, 0)`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db := openTest(t, Options{Path: path, DedupWindow: time.Hour})
	var v int
	if err := db.w.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != SchemaVersion || v < 2 {
		t.Fatalf("user_version %d (%v), want %d", v, err, SchemaVersion)
	}
	got := readJournal(t, db, 0)
	if len(got) != 1 || got[0].Pos != 7 || got[0].Topic != "old" || got[0].Dedup != "d7" {
		t.Fatalf("journal after migration: %+v", got)
	}
	b := []Message{redo(msg("new", "x", "d7")), msg("new", "y", "")}
	if _, err := db.Append(b); err != nil || !b[0].Dup || b[0].Pos != 7 || b[1].Pos != 8 {
		t.Fatalf("append after migration: %+v %v", b, err)
	}
	// The new table works.
	if err := saveAndPrune(db, Checkpoint{Pos: 8}); err != nil {
		t.Fatal(err)
	}
}

// saveAndPrune is SaveCheckpoint followed by pruning everything it covers,
// as the gateway does over the following moments.
func saveAndPrune(db *DB, c Checkpoint) error {
	if err := db.SaveCheckpoint(c); err != nil {
		return err
	}
	_, err := db.PruneJournal()
	return err
}

// TestPruneJournalBySegment: a checkpoint leaves the messages it covers
// for PruneJournal, which deletes whole segment files, oldest first, never
// the last one nor one holding a message after the checkpoint, and keeps
// those holding redelivery ids received within the dedup window.
func TestPruneJournalBySegment(t *testing.T) {
	db := openTest(t, Options{Path: filepath.Join(t.TempDir(), "v.db"), DedupWindow: time.Hour})
	db.log.segMax = 1 // a segment per append
	now := time.Now()
	db.now = func() time.Time { return now }
	for i := range 10 {
		recv := now.Add(-2 * time.Hour) // outside the window
		if i >= 4 {
			recv = now
		}
		if _, err := db.Append([]Message{{Topic: "t", Payload: []byte{byte(i)}, Received: recv, Dedup: fmt.Sprintf("id%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	files := func() int {
		ents, _ := os.ReadDir(LogDir(db.o.Path))
		return len(ents)
	}
	if files() != 10 {
		t.Fatalf("%d segment files, want 10", files())
	}
	if err := db.SaveCheckpoint(Checkpoint{Pos: 7}); err != nil {
		t.Fatal(err)
	}
	if files() != 10 {
		t.Fatalf("SaveCheckpoint deleted segments: %d left", files())
	}
	if n, err := db.JournalLen(); err != nil || n != 3 {
		t.Fatalf("JournalLen %d %v, want the 3 messages after the checkpoint", n, err)
	}
	if n, err := db.PruneJournal(); err != nil || n != 4 {
		t.Fatalf("PruneJournal = %d %v, want the 4 received before the window", n, err)
	}
	if n, err := db.PruneJournal(); err != nil || n != 0 {
		t.Fatalf("PruneJournal again = %d %v", n, err)
	}
	if files() != 6 {
		t.Fatalf("%d segment files left, want 6", files())
	}
	// A redelivery of a covered message is still recognised (within the window).
	again := []Message{{Topic: "t", Payload: []byte{5}, Received: now, Dedup: "id5", Redelivered: true}}
	if _, err := db.Append(again); err != nil || !again[0].Dup || again[0].Pos != 6 {
		t.Fatalf("redelivery after the checkpoint: %+v %v", again[0], err)
	}
	var got []uint64
	db.Journal(0, func(m Message) error { got = append(got, m.Pos); return nil })
	if fmt.Sprint(got) != "[8 9 10]" {
		t.Fatalf("journal after the checkpoint: %v", got)
	}
	// Past a quarter of the journal's limit, covered segments go even
	// within the window: the window is best effort, the limit is not.
	db.log.limit = 4 * db.log.total
	if n, err := db.PruneJournal(); err != nil || n != 0 {
		t.Fatalf("PruneJournal at a quarter of the limit = %d %v, want 0", n, err)
	}
	db.log.limit = 4*db.log.total - 1
	if n, err := db.PruneJournal(); err != nil || n != 1 {
		t.Fatalf("PruneJournal past a quarter of the limit = %d %v, want the oldest covered one", n, err)
	}
	// Out of the window, covered segments go.
	now = now.Add(2 * time.Hour)
	if n, err := db.PruneJournal(); err != nil || n != 2 {
		t.Fatalf("PruneJournal after the window = %d %v, want the 2 covered ones left", n, err)
	}
}

// TestAppendBulkAndFallback: a batch goes in whole (positions contiguous,
// contents intact); in a batch with an id already journaled, that one is
// marked Dup and the others go in.
func TestAppendBulkAndFallback(t *testing.T) {
	db := openTest(t, Options{})
	var big []Message
	for i := range 301 {
		big = append(big, Message{Topic: fmt.Sprint("t/", i), Payload: []byte(fmt.Sprint(i)), Received: time.Unix(int64(1000+i), 0), Dedup: fmt.Sprint("id", i)})
	}
	big[7].Dedup, big[8].Payload = "", nil // no id; an empty payload
	if n, err := db.Append(big); err != nil || n != len(big) {
		t.Fatalf("Append %d: %d %v", len(big), n, err)
	}
	i := 0
	err := db.Journal(0, func(m Message) error {
		want := big[i]
		if m.Pos != uint64(i+1) || m.Topic != want.Topic || string(m.Payload) != string(want.Payload) ||
			!m.Received.Equal(want.Received) || m.Dedup != want.Dedup {
			return fmt.Errorf("row %d: %+v, want %+v", i, m, want)
		}
		i++
		return nil
	})
	if err != nil || i != len(big) {
		t.Fatalf("read back %d rows: %v", i, err)
	}
	again := []Message{
		{Topic: "x", Payload: []byte("d"), Dedup: "new1"},
		{Topic: "t/5", Payload: []byte("5"), Dedup: "id5", Redelivered: true}, // its original is journaled
		{Topic: "x", Payload: []byte("e"), Dedup: "new2"},
		{Topic: "t/6", Payload: []byte("6"), Dedup: "id6"}, // repeats an id, not flagged: new
	}
	n, err := db.Append(again)
	last := uint64(len(big))
	if err != nil || n != 3 || again[0].Pos != last+1 || !again[1].Dup || again[1].Pos != 6 || again[2].Pos != last+2 || again[3].Dup || again[3].Pos != last+3 {
		t.Fatalf("redelivery among new: n %d err %v, %+v", n, err, again)
	}
	got := readJournal(t, db, last)
	if len(got) != 3 || got[0].Pos != last+1 || got[1].Pos != last+2 || got[2].Pos != last+3 || got[2].Topic != "t/6" {
		t.Fatalf("journal after %d: %+v", last, got)
	}
	last++
	if db.LastPos() != last+2 {
		t.Fatalf("LastPos %d, want %d", db.LastPos(), last+2)
	}
}

// TestMigrateFromV2: schema 3 drops the unique index on journal ids and
// rebuilds dedup_seen without one; the ids it held still find their
// originals.
func TestMigrateFromV2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v2.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, q := range []string{migrations[0], migrations[1], "PRAGMA user_version = 2",
		`INSERT INTO journal(pos, topic, payload, received, dedup) VALUES (7, 'old', x'01', 0, 'd7')`,
		fmt.Sprintf(`INSERT INTO dedup_seen(dedup, pos, received) VALUES ('d5', 5, %d)`, now.UnixNano()),
		`INSERT INTO checkpoint(id, pos, version, taken) VALUES (1, 6, 1, 0)`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db := openTest(t, Options{Path: path, DedupWindow: time.Hour})
	var v, idx int
	if err := db.w.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != SchemaVersion || v < 3 {
		t.Fatalf("user_version %d (%v), want %d", v, err, SchemaVersion)
	}
	if err := db.w.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'journal_dedup'`).Scan(&idx); err != nil || idx != 0 {
		t.Fatalf("journal_dedup still there (%d, %v)", idx, err)
	}
	// Schema 4 moved the journal into the log; the ids of messages a
	// checkpoint had covered (dedup_seen) were not kept: a redelivery of
	// one across the upgrade is journaled as new.
	b := []Message{redo(msg("new", "x", "d7")), redo(msg("new", "y", "d5")), msg("new", "z", "d7")}
	if _, err := db.Append(b); err != nil || !b[0].Dup || b[0].Pos != 7 || b[1].Dup || b[1].Pos != 8 || b[2].Dup || b[2].Pos != 9 {
		t.Fatalf("append after migration: %+v %v", b, err)
	}
}

// TestCheckpointWAL: the writer leaves its WAL to CheckpointWAL (it
// checkpoints by itself only at 4,000 pages), which copies the WAL into the
// database file from a reader.
func TestCheckpointWAL(t *testing.T) {
	db := openTest(t, Options{})
	var auto int
	if err := db.w.QueryRow("PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 4000 {
		t.Fatalf("writer's wal_autocheckpoint %d (%v), want 4000", auto, err)
	}
	size := func() int64 {
		fi, err := os.Stat(db.o.Path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	// ~1,500 pages: past SQLite's default of 1,000, below 4,000.
	parts := map[string][]byte{}
	for i := range 6 {
		parts[fmt.Sprint("p", i)] = bytes.Repeat([]byte{byte(i)}, 1000*1000)
	}
	if err := db.SaveCheckpoint(Checkpoint{Pos: 0, Parts: parts}); err != nil {
		t.Fatal(err)
	}
	if grown := size() - before; grown > 1<<20 {
		t.Fatalf("the writer checkpointed by itself: the file grew by %d bytes", grown)
	}
	if err := db.CheckpointWAL(); err != nil {
		t.Fatal(err)
	}
	if grown := size() - before; grown < 5<<20 {
		t.Fatalf("after CheckpointWAL the file grew by only %d bytes", grown)
	}
}

// TestAppendEveryBatchSize: a batch of any size goes in whole and in
// order.
func TestAppendEveryBatchSize(t *testing.T) {
	db := openTest(t, Options{})
	var want []Message
	for _, size := range []int{1, 2, 3, 7, 127, 128, 129, 255, 256, 1000} {
		batch := make([]Message, size)
		for i := range batch {
			n := len(want) + i
			batch[i] = Message{Topic: fmt.Sprint("t/", n), Payload: []byte(fmt.Sprint(n)), Received: time.Unix(int64(n), 0), Dedup: fmt.Sprint("id", n)}
		}
		if n, err := db.Append(batch); err != nil || n != size {
			t.Fatalf("Append %d: %d %v", size, n, err)
		}
		want = append(want, batch...)
	}
	i := 0
	err := db.Journal(0, func(m Message) error {
		w := want[i]
		if m.Pos != uint64(i+1) || m.Topic != w.Topic || string(m.Payload) != string(w.Payload) || m.Dedup != w.Dedup {
			return fmt.Errorf("row %d: %+v, want %+v", i, m, w)
		}
		i++
		return nil
	})
	if err != nil || i != len(want) {
		t.Fatalf("read back %d of %d rows: %v", i, len(want), err)
	}
}
