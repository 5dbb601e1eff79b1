// Package store owns vigil's SQLite database (WAL mode), two files: the
// main file (Options.Path) holds the checkpoint of all operator state with
// the journal position it covers, the alert outbox drained to the upstream
// broker, and the alert history the UI reads; the journal file
// (JournalPath) holds the input journal of MQTT messages written before they
// are acknowledged. Apart, a journal commit, which every QoS 1 message's
// acknowledgement waits for, never waits behind an alert, a delivery mark
// or a checkpoint.
//
// Every write is one transaction through its file's one writer connection,
// so a crash or power cut at any moment leaves either all of a batch or
// none of it. Readers (UI, forwarder) use separate read-only pools and never
// block the writers. The package uses modernc.org/sqlite (no cgo) and imports only the
// event package of vigil: it must not import engine, conn, ui or any operator
// package.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Options configures the database. The zero value of every field but Path
// gets a default in Open.
type Options struct {
	// Path is the database file; "-wal" and "-shm" files live beside it.
	Path string `yaml:"path"`
	// OutboxMax bounds the alerts waiting for upstream (default 100,000).
	// When over, the oldest info alerts are dropped first, then warning,
	// then critical.
	OutboxMax int `yaml:"outbox_max"`
	// HistoryRetention is how long Prune keeps alert history (default 30 days).
	HistoryRetention time.Duration `yaml:"history_retention"`
	// HistoryMax caps the history rows Prune keeps (default 200,000).
	HistoryMax int `yaml:"history_max"`
	// Synchronous is SQLite's synchronous pragma for journal commits:
	// "FULL" (default) fsyncs each one, so an acknowledged message survives
	// a power cut; "NORMAL" survives a process crash but a power cut may
	// roll back the last commits before the WAL was synced. Checkpoints
	// always commit with FULL, everything else (outbox, history, pruning)
	// with NORMAL, whatever this says; see begin.
	Synchronous string `yaml:"synchronous"`
	// DedupWindow keeps the Dedup ids of messages a checkpoint removed from
	// the journal for this long (by receive time), so a redelivery that
	// arrives after the checkpoint is still reported Dup. 0 (the default)
	// recognises redeliveries only while the original is in the journal.
	// Enable it only with a Dedup id that a new message cannot repeat
	// within the window (not a bare MQTT packet id: brokers reuse those).
	DedupWindow time.Duration `yaml:"dedup_window"`
	// BusyTimeout is how long a statement waits for a lock (default 5s).
	BusyTimeout time.Duration `yaml:"busy_timeout"`
}

func (o *Options) defaults() error {
	if o.Path == "" {
		return errors.New("no path")
	}
	if o.OutboxMax <= 0 {
		o.OutboxMax = 100_000
	}
	if o.HistoryRetention <= 0 {
		o.HistoryRetention = 30 * 24 * time.Hour
	}
	if o.HistoryMax <= 0 {
		o.HistoryMax = 200_000
	}
	o.Synchronous = strings.ToUpper(o.Synchronous)
	switch o.Synchronous {
	case "":
		o.Synchronous = "FULL"
	case "NORMAL", "FULL":
	default:
		return fmt.Errorf("synchronous %q: want NORMAL or FULL", o.Synchronous)
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	return nil
}

// ErrDiskFull is returned (wrapped) when SQLite reports a full disk
// (SQLITE_FULL) or an I/O error (SQLITE_IOERR), which on an SD card usually
// means the same thing. Nothing of the failed call was written; once space
// returns the next call works again.
var ErrDiskFull = errors.New("disk full or failing")

// ErrCorrupt is returned (wrapped) when SQLite finds the file damaged
// (SQLITE_CORRUPT, SQLITE_NOTADB) while running. The daemon should Close and
// Open again: Open moves a damaged file aside and starts a fresh one.
var ErrCorrupt = errors.New("database file is damaged")

// DB is vigil's state database. Its methods are safe for concurrent use;
// writes are serialised.
type DB struct {
	o       Options
	w       *wconn  // main file, one connection: every write goes through it
	r       *sql.DB // main file, read-only pool
	jw      *wconn  // journal file, one connection
	jr      *sql.DB // journal file, read-only pool
	movedTo string
	now     func() time.Time // wall clock for history's received time; tests replace it

	wmu        sync.Mutex // serialises the main file's writes and guards the fields below
	outboxLen  int
	partHashes map[string]partHash // parts of the saved checkpoint; nil = unknown

	jmu sync.Mutex // serialises the journal's writes

	// lastPos (last journal position assigned) is written under jmu,
	// cpPos (position of the saved checkpoint) under wmu; both are read
	// anywhere.
	lastPos, cpPos atomic.Uint64

	st  stmts
	jst jstmts

	dropped     atomic.Uint64
	writeErrors atomic.Uint64
	errMu       sync.Mutex
	lastErr     string
	lastErrAt   time.Time
}

// Open opens or creates the database at o.Path, creates or migrates the
// schema and verifies the file. A file that SQLite reports as damaged (or
// not a database at all) is moved aside to Path+".corrupt-<unix>" together
// with its -wal and -shm files, and a fresh database is started: a gateway
// must come back up rather than crash-loop on a broken SD card file.
// Recovered reports when that happened.
func Open(o Options) (*DB, error) {
	if err := o.defaults(); err != nil {
		return nil, fmt.Errorf("open state db: %w", err)
	}
	var moved []string
	for {
		db, err := open(o)
		if err == nil {
			if len(moved) > 0 {
				db.movedTo = strings.Join(moved, ", ")
				db.setErr(fmt.Errorf("damaged database moved to %s", db.movedTo))
			}
			return db, nil
		}
		if isDiskFull(err) {
			return nil, fmt.Errorf("open state db: %w: %w", ErrDiskFull, err)
		}
		var fe *fileError
		if !isCorrupt(err) || !errors.As(err, &fe) || len(moved) >= 2 {
			if len(moved) > 0 {
				return nil, fmt.Errorf("open state db after moving damaged files to %s: %w", strings.Join(moved, ", "), err)
			}
			return nil, fmt.Errorf("open state db: %w", err)
		}
		to, merr := moveAside(fe.path, time.Now())
		if merr != nil {
			return nil, fmt.Errorf("open state db: %w (moving it aside failed: %w)", err, merr)
		}
		moved = append(moved, to)
	}
}

// JournalPath is the journal file of the database at path: vigil.db's is
// vigil.journal.db, beside it (with its own -wal and -shm files).
func JournalPath(path string) string {
	return strings.TrimSuffix(path, ".db") + ".journal.db"
}

// fileError names the file an error of open is about, so Open moves the
// damaged one aside and keeps the other.
type fileError struct {
	path string
	err  error
}

func (e *fileError) Error() string { return e.path + ": " + e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

// Page cache per connection, in KiB. SQLite's default is 2,000 KiB for
// every connection, outside the Go heap (modernc's libc allocates it): up
// to 10 MB for the writer and four readers, which is most of what SQLite
// costs a gateway. The writer's hot pages (the journal's and outbox's last
// leaves and their interior pages) fit in 1 MiB; a checkpoint's large parts
// go through it once and need not stay. The readers scan the outbox and
// page through history once per request, where a cache helps little.
// The journal's writer only appends at the end of one table and deletes at
// its start: a few pages.
const (
	writerCacheKiB  = 1024
	journalCacheKiB = 256
	readerCacheKiB  = 256
)

func dsn(o Options, path string, cacheKiB int, readonly bool) string {
	q := []string{fmt.Sprintf("_pragma=busy_timeout(%d)", o.BusyTimeout.Milliseconds()),
		fmt.Sprintf("_pragma=cache_size(-%d)", cacheKiB)}
	if readonly {
		q = append(q, "_pragma=query_only(1)")
	} else {
		// journal_size_limit: truncate the WAL after a checkpoint rather than
		// keep a large checkpoint's worth of WAL on the card forever.
		q = append(q, "_pragma=journal_mode(WAL)", "_pragma=synchronous("+o.Synchronous+")",
			"_pragma=journal_size_limit(33554432)", "_txlock=immediate")
	}
	return path + "?" + strings.Join(q, "&")
}

// wconn is a file's writer: one connection, and the synchronous pragma it
// runs with (see begin).
type wconn struct {
	*sql.DB
	full string // Options.Synchronous
	mode string // the connection's synchronous pragma now
}

func open(o Options) (_ *DB, err error) {
	db := &DB{o: o, now: time.Now}
	defer func() {
		if err != nil {
			db.closeAll()
		}
	}()
	jpath := JournalPath(o.Path)
	if db.w, err = openWriter(o, o.Path, writerCacheKiB); err != nil {
		return nil, &fileError{o.Path, err}
	}
	if db.jw, err = openWriter(o, jpath, journalCacheKiB); err != nil {
		return nil, &fileError{jpath, err}
	}
	if err := migrate(db.jw.DB, journalMigrations, nil); err != nil {
		return nil, &fileError{jpath, err}
	}
	// Main version 3 to 4 moves the journal out: copy it first.
	legacy := func(v int) error {
		if v == 3 {
			return db.moveLegacyJournal()
		}
		return nil
	}
	if err := migrate(db.w.DB, migrations, legacy); err != nil {
		return nil, &fileError{o.Path, err}
	}
	if err := db.loadCounters(); err != nil {
		return nil, err
	}
	if err := db.st.prepare(db.w.DB); err != nil {
		return nil, err
	}
	if err := db.jst.prepare(db.jw.DB); err != nil {
		return nil, err
	}
	if db.r, err = openReaders(o, o.Path, 4); err != nil {
		return nil, err
	}
	if db.jr, err = openReaders(o, jpath, 2); err != nil {
		return nil, err
	}
	return db, nil
}

// openWriter opens path's writer connection, creating the file (private:
// it holds payloads and alerts, and SQLite gives the -wal and -shm files
// the main file's permissions), and checks it is in WAL mode and sound.
func openWriter(o Options, path string, cacheKiB int) (*wconn, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	d, err := sql.Open("sqlite", dsn(o, path, cacheKiB, false))
	if err != nil {
		return nil, err
	}
	w := &wconn{DB: d, full: o.Synchronous, mode: o.Synchronous}
	d.SetMaxOpenConns(1)
	d.SetMaxIdleConns(1)
	d.SetConnMaxLifetime(0)
	d.SetConnMaxIdleTime(0)
	var mode string
	if err := d.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		d.Close()
		return nil, fmt.Errorf("read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		d.Close()
		return nil, fmt.Errorf("journal_mode is %q, not wal", mode)
	}
	if err := quickCheck(d); err != nil {
		d.Close()
		return nil, err
	}
	return w, nil
}

func openReaders(o Options, path string, n int) (*sql.DB, error) {
	r, err := sql.Open("sqlite", dsn(o, path, readerCacheKiB, true))
	if err != nil {
		return nil, err
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(min(n, 2))
	if err := r.Ping(); err != nil {
		r.Close()
		return nil, fmt.Errorf("open reader: %w", err)
	}
	return r, nil
}

// moveLegacyJournal copies the journal and dedup_seen tables of a main file
// written by schema version 3 or older into the journal file, in one
// transaction there, before main migration 4 drops them. A crash between
// the two leaves both copies; the next Open finds the journal file holding
// rows and copies nothing again.
func (db *DB) moveLegacyJournal() error {
	var n int
	if err := db.jw.QueryRow("SELECT (SELECT count(*) FROM journal) + (SELECT count(*) FROM dedup_seen)").Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := db.jw.Exec("ATTACH DATABASE ? AS legacy", db.o.Path); err != nil {
		return fmt.Errorf("attach %s: %w", db.o.Path, err)
	}
	defer db.jw.Exec("DETACH DATABASE legacy")
	tx, err := db.jw.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`INSERT INTO journal(pos, topic, payload, received, dedup) SELECT pos, topic, payload, received, dedup FROM legacy.journal`,
		`INSERT INTO dedup_seen(dedup, pos, received) SELECT dedup, pos, received FROM legacy.dedup_seen`,
	} {
		if _, err := tx.Exec(q); err != nil {
			return fmt.Errorf("copy the journal to %s: %w", JournalPath(db.o.Path), err)
		}
	}
	return tx.Commit()
}

// begin starts a write transaction on c (its file's mutex held). Only
// journal commits and checkpoints must be durable when they return — a
// message is acknowledged after its commit, and journal rows a checkpoint
// covers are deleted after it — so only they run with Options.Synchronous
// (checkpoints: always FULL), fsyncing the WAL; the others commit with
// NORMAL and skip the fsync, which on an SD card costs milliseconds per
// commit. That loses nothing a power cut must keep: within a file WAL
// frames survive only as a prefix (each frame's checksum covers all before
// it), and a FULL commit syncs every frame before it, so
//   - in the main file an alert or delivery mark is lost only with
//     everything after it: a checkpoint never survives without the alerts
//     put before it;
//   - in the journal file a prune is lost only with later appends, and
//     it runs only once the checkpoint that covers its rows is durable in
//     the main file, so no file ever lacks rows the other needs;
//   - what is lost is rebuilt after the restart by replaying the journal
//     after the surviving checkpoint (alerts come out again with the same
//     ids; a lost Delivered sends an alert again with an id already sent,
//     as a crash between PUBACK and Delivered does).
//
// A connection database/sql opens again starts at Options.Synchronous, the
// stronger setting, so a stale mode errs on the durable side.
func (c *wconn) begin(durable bool) (*sql.Tx, error) {
	if durable {
		return c.beginSync(c.full)
	}
	return c.beginSync("NORMAL")
}

func (c *wconn) beginSync(want string) (*sql.Tx, error) {
	if c.mode != want {
		if _, err := c.Exec("PRAGMA synchronous = " + want); err != nil {
			return nil, err
		}
		c.mode = want
	}
	return c.Begin()
}

func quickCheck(w *sql.DB) error {
	rows, err := w.Query("PRAGMA quick_check(5)")
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: quick_check: %s", ErrCorrupt, strings.Join(problems, "; "))
	}
	return nil
}

func (db *DB) loadCounters() error {
	var jmax, cp sql.NullInt64
	if err := db.jw.QueryRow("SELECT max(pos) FROM journal").Scan(&jmax); err != nil {
		return fmt.Errorf("read journal head: %w", err)
	}
	if err := db.w.QueryRow("SELECT pos FROM checkpoint WHERE id = 1").Scan(&cp); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read checkpoint position: %w", err)
	}
	// A journal file moved aside (damaged) starts empty: positions go on
	// after the checkpoint's.
	db.cpPos.Store(uint64(cp.Int64))
	db.lastPos.Store(max(uint64(jmax.Int64), uint64(cp.Int64)))
	if err := db.w.QueryRow("SELECT count(*) FROM outbox").Scan(&db.outboxLen); err != nil {
		return fmt.Errorf("count outbox: %w", err)
	}
	return nil
}

// isCorrupt reports whether err means the file itself is damaged, as opposed
// to a problem (permissions, a missing directory, a full disk) that moving
// the file aside would not cure.
func isCorrupt(err error) bool {
	if errors.Is(err, ErrCorrupt) {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return true
		}
	}
	return false
}

func isDiskFull(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
			return true
		}
	}
	return false
}

// moveAside renames path and its -wal and -shm files to
// path.corrupt-<unix>[-wal|-shm]. The -shm file is only an index of the WAL
// and is rebuilt, but keeping the three together keeps the evidence whole.
func moveAside(path string, now time.Time) (string, error) {
	to := fmt.Sprintf("%s.corrupt-%d", path, now.Unix())
	for i := 1; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, os.ErrNotExist) {
			break
		}
		to = fmt.Sprintf("%s.corrupt-%d.%d", path, now.Unix(), i)
	}
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	for _, sfx := range []string{"-wal", "-shm"} {
		if err := os.Rename(path+sfx, to+sfx); err != nil && !errors.Is(err, os.ErrNotExist) {
			return to, err
		}
	}
	return to, nil
}

// Recovered reports whether Open found the file damaged, moved it aside and
// started a fresh database, and where the damaged file went.
func (db *DB) Recovered() (movedTo string, ok bool) { return db.movedTo, db.movedTo != "" }

// Close closes the database. The WAL is checkpointed by SQLite when the
// last connection closes.
func (db *DB) Close() error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	db.jmu.Lock()
	defer db.jmu.Unlock()
	// Refresh the query planner's statistics where SQLite thinks they are
	// stale; cheap, and a failure here must not keep the file open.
	db.w.Exec("PRAGMA optimize")
	db.jw.Exec("PRAGMA optimize")
	return db.closeAll()
}

func (db *DB) closeAll() error {
	var errs []error
	db.st.close()
	db.jst.close()
	for _, r := range []*sql.DB{db.r, db.jr} {
		if r != nil {
			errs = append(errs, r.Close())
		}
	}
	for _, w := range []*wconn{db.w, db.jw} {
		if w != nil {
			errs = append(errs, w.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close state db: %w", err)
	}
	return nil
}

// Backup writes a consistent copy of the live database to path and
// JournalPath(path) (which must not exist) with VACUUM INTO: the main file
// first, then the journal, so the copy's journal holds at least every
// message after the copy's checkpoint. It uses connections of its own
// (VACUUM INTO is refused on the query_only pools), which only read the
// live files: writes go on meanwhile.
func (db *DB) Backup(ctx context.Context, path string) error {
	for _, f := range [][2]string{{db.o.Path, path}, {JournalPath(db.o.Path), JournalPath(path)}} {
		c, err := sql.Open("sqlite", fmt.Sprintf("%s?_pragma=busy_timeout(%d)", f[0], db.o.BusyTimeout.Milliseconds()))
		if err != nil {
			return fmt.Errorf("backup state db: %w", err)
		}
		_, err = c.ExecContext(ctx, "VACUUM INTO ?", f[1])
		c.Close()
		if err != nil {
			return fmt.Errorf("backup state db: %w", err)
		}
	}
	return nil
}

// wrap names the operation, marks disk-full and corruption errors with
// their sentinels, and records the error for Stats. It is for writes.
func (db *DB) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	db.writeErrors.Add(1)
	err = classify(op, err)
	db.setErr(err)
	return err
}

// classify names the operation and marks the errors a caller acts on.
func classify(op string, err error) error {
	switch {
	case isDiskFull(err):
		return fmt.Errorf("%s: %w: %w", op, ErrDiskFull, err)
	case isCorrupt(err) && !errors.Is(err, ErrCorrupt):
		return fmt.Errorf("%s: %w: %w", op, ErrCorrupt, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func (db *DB) setErr(err error) {
	db.errMu.Lock()
	db.lastErr = err.Error()
	db.lastErrAt = time.Now()
	db.errMu.Unlock()
}

// Stats is a snapshot of the database's size and counters, for /metrics and
// the UI.
type Stats struct {
	Path          string
	FileBytes     int64 // main file
	WALBytes      int64 // -wal file
	JournalBytes  int64 // journal file and its -wal file
	LastPos       uint64
	CheckpointPos uint64
	JournalRows   int // journaled messages not yet covered by a checkpoint
	OutboxRows    int
	Dropped       uint64 // alerts dropped by the outbox bound since Open
	WriteErrors   uint64 // failed write calls since Open
	LastError     string
	LastErrorAt   time.Time
	RecoveredTo   string // where Open moved a damaged file, if it did
}

// Stats reports sizes and counters. It does not fail: what cannot be read
// is left zero.
func (db *DB) Stats() Stats {
	s := Stats{Path: db.o.Path, RecoveredTo: db.movedTo}
	if fi, err := os.Stat(db.o.Path); err == nil {
		s.FileBytes = fi.Size()
	}
	if fi, err := os.Stat(db.o.Path + "-wal"); err == nil {
		s.WALBytes = fi.Size()
	}
	for _, f := range []string{JournalPath(db.o.Path), JournalPath(db.o.Path) + "-wal"} {
		if fi, err := os.Stat(f); err == nil {
			s.JournalBytes += fi.Size()
		}
	}
	db.wmu.Lock()
	s.OutboxRows = db.outboxLen
	db.wmu.Unlock()
	s.CheckpointPos = db.cpPos.Load()
	s.LastPos = max(db.lastPos.Load(), s.CheckpointPos)
	// Positions are contiguous and a checkpoint deletes exactly those at or
	// below it, so the journal holds (CheckpointPos, LastPos]: no count(*)
	// over a journal that may have grown large.
	s.JournalRows = int(s.LastPos - s.CheckpointPos)
	s.Dropped = db.dropped.Load()
	s.WriteErrors = db.writeErrors.Load()
	db.errMu.Lock()
	s.LastError, s.LastErrorAt = db.lastErr, db.lastErrAt
	db.errMu.Unlock()
	return s
}

// Dropped is the number of alerts the outbox bound dropped since Open.
func (db *DB) Dropped() uint64 { return db.dropped.Load() }

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
