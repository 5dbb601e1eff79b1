package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
	"go.uber.org/goleak"
)

func openTest(t testing.TB, o Options) *DB {
	t.Helper()
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "vigil.db")
	}
	db, err := Open(o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func reopen(t *testing.T, db *DB) *DB {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	db2, err := Open(db.o)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { db2.Close() })
	return db2
}

func TestOpenSchemaAndPragmas(t *testing.T) {
	for _, sync := range []string{"", "normal", "FULL"} {
		t.Run("sync="+sync, func(t *testing.T) {
			db := openTest(t, Options{Synchronous: sync})
			var mode string
			var v, syncLevel int
			if err := db.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
				t.Fatalf("journal_mode %q, %v", mode, err)
			}
			if err := db.w.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != SchemaVersion {
				t.Fatalf("user_version %d, %v", v, err)
			}
			if err := db.w.QueryRow("PRAGMA synchronous").Scan(&syncLevel); err != nil {
				t.Fatal(err)
			}
			want := 2 // FULL is the default
			if strings.EqualFold(sync, "normal") {
				want = 1
			}
			if syncLevel != want {
				t.Fatalf("synchronous %d, want %d", syncLevel, want)
			}
			for _, p := range []string{db.o.Path, db.o.Path + "-wal"} {
				if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("%s: %v, %v; want private (0600)", p, fi.Mode(), err)
				}
			}
			// The read pool really is read-only.
			if _, err := db.r.Exec("DELETE FROM journal"); err == nil {
				t.Fatal("reader pool accepted a write")
			}
			db2 := reopen(t, db)
			if _, ok := db2.Recovered(); ok {
				t.Fatal("a healthy file was moved aside")
			}
			if err := db2.w.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != SchemaVersion {
				t.Fatalf("after reopen user_version %d, %v", v, err)
			}
		})
	}
}

func TestOpenOptionErrors(t *testing.T) {
	for name, o := range map[string]Options{
		"no path":     {},
		"bad sync":    {Path: filepath.Join(t.TempDir(), "x.db"), Synchronous: "OFF"},
		"missing dir": {Path: filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")},
	} {
		t.Run(name, func(t *testing.T) {
			if db, err := Open(o); err == nil {
				db.Close()
				t.Fatal("open succeeded")
			}
		})
	}
}

func TestOpenNewerSchemaRefused(t *testing.T) {
	db := openTest(t, Options{})
	if _, err := db.w.Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(db.o)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("want a newer-schema error, got %v", err)
	}
	// Not damage: the file must still be where it was.
	if _, err := os.Stat(db.o.Path); err != nil {
		t.Fatalf("file moved: %v", err)
	}
}

// fillDB writes enough rows that the file has many pages.
func fillDB(t *testing.T, db *DB) {
	t.Helper()
	msgs := make([]Message, 500)
	for i := range msgs {
		msgs[i] = Message{Topic: "t", Payload: []byte(strings.Repeat("x", 200)), Received: time.Unix(1, 0)}
	}
	if _, err := db.Append(msgs); err != nil {
		t.Fatal(err)
	}
	alerts := make([]event.Alert, 500)
	for i := range alerts {
		alerts[i] = testAlert(fmt.Sprint("fill", i), "info", time.Unix(int64(i), 0))
		alerts[i].Message = strings.Repeat("m", 200)
	}
	if _, err := db.Put(alerts); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"garbage header", func(t *testing.T, path string) {
			writeAt(t, path, 0, []byte(strings.Repeat("garbage!", 16)))
		}},
		{"garbage pages", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			// Keep page 1 (header and schema), overwrite the b-tree pages.
			junk := make([]byte, fi.Size()-4096)
			for i := range junk {
				junk[i] = byte(i*7 + 3)
			}
			writeAt(t, path, 4096, junk)
		}},
		{"not sqlite at all", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("this is a text file, not a database\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t, Options{})
			fillDB(t, db)
			db.Close()
			tc.damage(t, db.o.Path)

			db2, err := Open(db.o)
			if err != nil {
				t.Fatalf("open of damaged file failed: %v", err)
			}
			defer db2.Close()
			moved, ok := db2.Recovered()
			if !ok || !strings.HasPrefix(moved, db.o.Path+".corrupt-") {
				t.Fatalf("Recovered() = %q, %v", moved, ok)
			}
			if _, err := os.Stat(moved); err != nil {
				t.Fatalf("damaged file not kept: %v", err)
			}
			if s := db2.Stats(); s.RecoveredTo != moved || s.LastError == "" {
				t.Fatalf("stats do not tell: %+v", s)
			}
			// The fresh database works.
			if n, err := db2.JournalLen(); err != nil || n != 0 {
				t.Fatalf("fresh journal len %d, %v", n, err)
			}
			if _, err := db2.Append([]Message{{Topic: "a", Payload: []byte("1")}}); err != nil {
				t.Fatalf("append to fresh db: %v", err)
			}
		})
	}
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDiskFull(t *testing.T) {
	db := openTest(t, Options{})
	var pages int
	setMaxPages := func(n int) {
		t.Helper()
		if _, err := db.w.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", n)); err != nil {
			t.Fatal(err)
		}
		db.log.limit = db.log.total + int64(n-pages)*1024 // the journal's files likewise
	}
	if err := db.w.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	setMaxPages(pages + 2)

	big := make([]Message, 200)
	for i := range big {
		big[i] = Message{Topic: "t", Payload: make([]byte, 1000)}
	}
	alerts := make([]event.Alert, 200)
	for i := range alerts {
		alerts[i] = testAlert(fmt.Sprintf("full%d", i), "info", time.Unix(int64(i), 0))
		alerts[i].Message = strings.Repeat("m", 500)
	}
	parts := map[string][]byte{"engine": make([]byte, 100_000)}

	calls := []struct {
		name string
		call func() error
	}{
		{"append", func() error { _, err := db.Append(big); return err }},
		{"put", func() error { _, err := db.Put(alerts); return err }},
		{"checkpoint", func() error { return db.SaveCheckpoint(Checkpoint{Pos: db.LastPos(), Parts: parts}) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			before := db.Stats()
			err := c.call()
			if !errors.Is(err, ErrDiskFull) {
				t.Fatalf("want ErrDiskFull, got %v", err)
			}
			after := db.Stats()
			if after.WriteErrors != before.WriteErrors+1 || after.LastError == "" {
				t.Fatalf("error not counted: %+v", after)
			}
			if after.LastPos != before.LastPos || after.OutboxRows != before.OutboxRows {
				t.Fatalf("counters moved on a failed write: %+v -> %+v", before, after)
			}
		})
	}
	if n, _ := db.JournalLen(); n != 0 {
		t.Fatalf("failed append left %d rows", n)
	}

	setMaxPages(1 << 30) // space is back
	for _, c := range calls {
		if err := c.call(); err != nil {
			t.Fatalf("%s after space returned: %v", c.name, err)
		}
	}
	if db.LastPos() != 200 {
		t.Fatalf("positions after recovery: last %d, want 200", db.LastPos())
	}
	if n, _ := db.OutboxLen(); n != 200 {
		t.Fatalf("outbox %d, want 200", n)
	}
}

func TestBackup(t *testing.T) {
	db := openTest(t, Options{})
	fillDB(t, db)
	if err := db.SaveCheckpoint(Checkpoint{Pos: 300, Parts: map[string][]byte{"e": {1}}}); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy.db")
	if err := db.Backup(context.Background(), dst); err != nil {
		t.Fatal(err)
	}
	// The copy holds the database (checkpoint, outbox, history), not the
	// journal's files: it starts from its checkpoint.
	cp := openTest(t, Options{Path: dst})
	if n, err := cp.OutboxLen(); err != nil || n != db.Stats().OutboxRows || n == 0 {
		t.Fatalf("backup outbox %d, %v", n, err)
	}
	want, _, _ := db.LoadCheckpoint()
	if got, ok, err := cp.LoadCheckpoint(); err != nil || !ok || got.Pos != want.Pos {
		t.Fatalf("backup checkpoint %+v %v %v", got, ok, err)
	}
}

func TestMain(m *testing.M) {
	// database/sql starts goroutines per pool: every DB must be closed.
	goleak.VerifyTestMain(m)
}

// TestReadersDoNotBlockWriter holds a read transaction open on the reader
// pool (a UI page being read) while the writer appends and checkpoints: in
// WAL mode neither waits for the other, so a short busy timeout suffices.
func TestReadersDoNotBlockWriter(t *testing.T) {
	db := openTest(t, Options{BusyTimeout: 50 * time.Millisecond})
	fillDB(t, db)
	rows, err := db.r.Query("SELECT seq FROM history ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatal("no rows")
	}
	if _, err := db.Put([]event.Alert{testAlert("w", "info", time.Unix(1000, 0))}); err != nil {
		t.Fatalf("put during a read: %v", err)
	}
	if err := db.SaveCheckpoint(Checkpoint{Pos: db.LastPos(), Parts: map[string][]byte{"e": {1}}}); err != nil {
		t.Fatalf("checkpoint during a read: %v", err)
	}
	// The open read still sees its snapshot: the 500 rows, not the one
	// put since.
	n := 1
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil || n != 500 {
		t.Fatalf("reader saw %d rows, %v", n, err)
	}
}

// TestCorruptWhileRunning damages the file under an open DB: reads report
// ErrCorrupt, and the next Open moves the file aside.
func TestCorruptWhileRunning(t *testing.T) {
	db := openTest(t, Options{})
	fillDB(t, db)
	db = reopen(t, db) // the WAL is checkpointed into the main file on close
	fi, err := os.Stat(db.o.Path)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, fi.Size()-4096)
	for i := range junk {
		junk[i] = byte(i*13 + 5)
	}
	writeAt(t, db.o.Path, 4096, junk)
	_, err = db.History(Query{Limit: 1000})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("want ErrCorrupt, got %v", err)
	}
	db.Close()
	db2 := openTest(t, db.o)
	if _, ok := db2.Recovered(); !ok {
		t.Fatal("damaged file not moved aside")
	}
}

// TestGarbageWALAndShm damages the -wal and -shm files of a file caught
// mid-run (copied while open, as a power cut leaves it). SQLite ignores WAL
// frames whose checksums fail, so Open must work without moving the file
// aside: the commits that lived only in the WAL are gone, and positions
// continue from what the main file holds.
func TestGarbageWALAndShm(t *testing.T) {
	db := openTest(t, Options{})
	fillDB(t, db)
	dst := filepath.Join(t.TempDir(), "snap.db")
	for _, sfx := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(db.o.Path + sfx)
		if err != nil {
			t.Fatal(err)
		}
		if sfx != "" {
			for i := 0; i < len(b); i += 3 {
				b[i] ^= 0x5a
			}
		}
		if err := os.WriteFile(dst+sfx, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db2 := openTest(t, Options{Path: dst})
	if moved, ok := db2.Recovered(); ok {
		t.Fatalf("moved aside to %s", moved)
	}
	n, err := db2.JournalLen()
	if err != nil || uint64(n) != db2.LastPos() {
		t.Fatalf("journal len %d (%v), last pos %d", n, err, db2.LastPos())
	}
	b := []Message{{Topic: "t", Payload: []byte("after")}}
	if _, err := db2.Append(b); err != nil || b[0].Pos != uint64(n)+1 {
		t.Fatalf("append: pos %d, %v", b[0].Pos, err)
	}
}

// TestSynchronousPerCommit: only checkpoints commit with the configured
// synchronous level (the journal's files are synced by the log itself); the
// outbox and history commit with NORMAL (see begin for why a power cut loses
// nothing it must keep).
func TestSynchronousPerCommit(t *testing.T) {
	level := func(db *DB) int {
		t.Helper()
		var l int
		if err := db.w.QueryRow("PRAGMA synchronous").Scan(&l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		sync          string
		journal, rest int
	}{{"FULL", 2, 1}, {"NORMAL", 1, 1}} {
		t.Run(tc.sync, func(t *testing.T) {
			db := openTest(t, Options{Synchronous: tc.sync})
			steps := []struct {
				name string
				do   func() error
				want int
			}{
				{"put", func() error { _, err := db.Put([]event.Alert{testAlert("a1", "info", t0)}); return err }, tc.rest},
				{"append", func() error { _, err := db.Append([]Message{msg("d", "1", "")}); return err }, tc.rest},
				{"delivered", func() error { return db.Delivered([]string{"a1"}) }, tc.rest},
				{"checkpoint", func() error { return db.SaveCheckpoint(Checkpoint{Pos: 1, Version: 1, Taken: t0}) }, tc.journal},
				{"put again", func() error { _, err := db.Put([]event.Alert{testAlert("a2", "info", t0)}); return err }, tc.rest},
				{"prune journal", func() error { _, err := db.PruneJournal(); return err }, tc.rest},
			}
			for _, s := range steps {
				if err := s.do(); err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				if l := level(db); l != s.want {
					t.Fatalf("after %s: synchronous %d, want %d", s.name, l, s.want)
				}
			}
		})
	}
}
