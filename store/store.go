// Package store owns vigil's one SQLite database file (WAL mode): the input
// journal of MQTT messages written before they are acknowledged, the
// checkpoint of all operator state with the journal position it covers, the
// alert outbox drained to the upstream broker, and the alert history the UI
// reads.
//
// Every write is one transaction through one writer connection, so a crash
// or power cut at any moment leaves either all of a batch or none of it.
// Readers (UI, forwarder) use a separate read-only pool and never block the
// writer. The package uses modernc.org/sqlite (no cgo) and imports only the
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
	HistoryRetention time.Duration `yaml:"history"`
	// HistoryMax caps the history rows Prune keeps (default 200,000).
	HistoryMax int
	// Synchronous is SQLite's synchronous pragma for journal commits:
	// "FULL" (default) fsyncs each one, so an acknowledged message survives
	// a power cut; "NORMAL" survives a process crash but a power cut may
	// roll back the last commits before the WAL was synced. Everything else
	// (outbox, history, checkpoints, pruning) commits with NORMAL whatever
	// this says; see begin.
	Synchronous string
	// DedupWindow keeps the Dedup ids of messages a checkpoint removed from
	// the journal for this long (by receive time), so a redelivery that
	// arrives after the checkpoint is still reported Dup. 0 (the default)
	// recognises redeliveries only while the original is in the journal.
	// Enable it only with a Dedup id that a new message cannot repeat
	// within the window (not a bare MQTT packet id: brokers reuse those).
	DedupWindow time.Duration
	// BusyTimeout is how long a statement waits for a lock (default 5s).
	BusyTimeout time.Duration
	// JournalMax bounds the input journal's files (default 256 MiB). It
	// holds what no checkpoint covers yet — seconds of traffic normally —
	// so it fills only when checkpoints keep failing; appends then fail
	// with ErrDiskFull, as on a full disk.
	JournalMax int64 `yaml:"journal_max"`
	// MaxAlertBytes caps an alert's JSON form; Put trims a larger one
	// (deadletter.go). Default DefaultMaxAlertBytes.
	MaxAlertBytes int
}

// SetJournalMax changes the journal's size limit (Options.JournalMax).
func (db *DB) SetJournalMax(n int64) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	db.log.limit = n
}

// LogDir is where the input journal's segment files live, beside the
// database file at path.
func LogDir(path string) string { return path + "-log" }

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
	if o.JournalMax <= 0 {
		o.JournalMax = 256 << 20
	}
	if o.MaxAlertBytes <= 0 {
		o.MaxAlertBytes = DefaultMaxAlertBytes
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
	w       *sql.DB // one connection: every write goes through it
	r       *sql.DB // read-only pool
	movedTo string
	now     func() time.Time // wall clock for history's received time; tests replace it

	wmu        sync.Mutex // serialises writes and guards the fields below
	syncMode   string     // the writer connection's synchronous pragma
	lastPos    uint64     // last journal position assigned
	cpPos      uint64     // position of the saved checkpoint
	outboxLen  int
	partHashes map[string]partHash // parts of the saved checkpoint; nil = unknown

	st  stmts
	log *jlog // the input journal (seglog.go)

	dropped     atomic.Uint64
	writeErrors atomic.Uint64
	trimmed     atomic.Uint64 // alerts Put cut to MaxAlertBytes
	setAsideN   atomic.Uint64 // alerts SetAside moved to the dead letters
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
	db, err := open(o)
	if err == nil {
		return db, nil
	}
	if isDiskFull(err) {
		return nil, fmt.Errorf("open state db: %w: %w", ErrDiskFull, err)
	}
	if !isCorrupt(err) {
		return nil, fmt.Errorf("open state db: %w", err)
	}
	moved, merr := moveAside(o.Path, time.Now())
	if merr != nil {
		return nil, fmt.Errorf("open state db: %w (moving it aside failed: %w)", err, merr)
	}
	db, err2 := open(o)
	if err2 != nil {
		return nil, fmt.Errorf("open state db after moving damaged file to %s: %w", moved, err2)
	}
	db.movedTo = moved
	db.setErr(fmt.Errorf("damaged database moved to %s: %w", moved, err))
	return db, nil
}

// Page cache per connection, in KiB. SQLite's default is 2,000 KiB for
// every connection, outside the Go heap (modernc's libc allocates it): up
// to 10 MB for the writer and four readers, which is most of what SQLite
// costs a gateway. The writer's hot pages (the journal's and outbox's last
// leaves and their interior pages) fit in 1 MiB; a checkpoint's large parts
// go through it once and need not stay. The readers scan the outbox and
// page through history once per request, where a cache helps little.
const (
	writerCacheKiB = 1024
	readerCacheKiB = 256
)

func dsn(o Options, readonly bool) string {
	q := []string{fmt.Sprintf("_pragma=busy_timeout(%d)", o.BusyTimeout.Milliseconds())}
	if readonly {
		q = append(q, "_pragma=query_only(1)", fmt.Sprintf("_pragma=cache_size(-%d)", readerCacheKiB))
	} else {
		q = append(q, fmt.Sprintf("_pragma=cache_size(-%d)", writerCacheKiB))
		// journal_size_limit: truncate the WAL after a checkpoint rather than
		// keep a large checkpoint's worth of WAL on the card forever.
		// wal_autocheckpoint(4000): the writer copies its WAL into the file
		// only as a backstop; CheckpointWAL does it from a reader.
		q = append(q, "_pragma=journal_mode(WAL)", "_pragma=synchronous("+o.Synchronous+")",
			"_pragma=journal_size_limit(33554432)", "_pragma=wal_autocheckpoint(4000)", "_txlock=immediate")
	}
	return o.Path + "?" + strings.Join(q, "&")
}

func open(o Options) (_ *DB, err error) {
	// Create the file ourselves, private: it holds payloads and alerts, and
	// SQLite gives the -wal and -shm files the main file's permissions.
	f, err := os.OpenFile(o.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	db := &DB{o: o, now: time.Now, syncMode: o.Synchronous}
	db.w, err = sql.Open("sqlite", dsn(o, false))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			db.closeAll()
		}
	}()
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)

	var mode string
	if err := db.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("journal_mode is %q, not wal", mode)
	}
	if err := quickCheck(db.w); err != nil {
		return nil, err
	}
	if err := migrate(db.w); err != nil {
		return nil, err
	}
	if err := db.loadCounters(); err != nil {
		return nil, err
	}
	if db.log, err = openLog(LogDir(o.Path), o.JournalMax); err != nil {
		return nil, err
	}
	if err := db.moveTableJournal(); err != nil {
		return nil, err
	}
	db.lastPos = max(db.lastPos, db.log.last())
	if err := db.st.prepare(db.w); err != nil {
		return nil, err
	}
	db.r, err = sql.Open("sqlite", dsn(o, true))
	if err != nil {
		return nil, err
	}
	db.r.SetMaxOpenConns(4)
	db.r.SetMaxIdleConns(2)
	if err := db.r.Ping(); err != nil {
		return nil, fmt.Errorf("open reader: %w", err)
	}
	return db, nil
}

// begin starts a write transaction (db.wmu held). Only a journal commit
// must be durable when it returns — the message is acknowledged after it —
// so only it runs with Options.Synchronous (FULL: fsync the WAL); the
// others commit with NORMAL and skip the fsync, which on an SD card costs
// milliseconds per commit. That loses nothing a power cut must keep: WAL
// frames survive only as a prefix (each frame's checksum covers all before
// it), and a FULL commit syncs every frame before it, so
//   - an alert, checkpoint or prune is lost only with everything after it:
//     a checkpoint never survives without the alerts put before it, nor a
//     journal prune without its checkpoint;
//   - what is lost is rebuilt after the restart by replaying the journal
//     after the surviving checkpoint (alerts come out again with the same
//     ids; a lost Delivered sends an alert again with an id already sent,
//     as a crash between PUBACK and Delivered does).
//
// A connection database/sql opens again starts at Options.Synchronous, the
// stronger setting, so a stale syncMode errs on the durable side.
func (db *DB) begin(durable bool) (*sql.Tx, error) {
	want := "NORMAL"
	if durable {
		want = db.o.Synchronous
	}
	if db.syncMode != want {
		if _, err := db.w.Exec("PRAGMA synchronous = " + want); err != nil {
			return nil, err
		}
		db.syncMode = want
	}
	return db.w.Begin()
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
	if err := db.w.QueryRow("SELECT max(pos) FROM journal").Scan(&jmax); err != nil {
		return fmt.Errorf("read journal head: %w", err)
	}
	if err := db.w.QueryRow("SELECT pos FROM checkpoint WHERE id = 1").Scan(&cp); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read checkpoint position: %w", err)
	}
	db.cpPos = uint64(cp.Int64)
	db.lastPos = max(uint64(jmax.Int64), db.cpPos)
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

// moveAside renames path, its -wal and -shm files and its journal (-log) to
// path.corrupt-<unix>[-wal|-shm|-log]. The -shm file is only an index of
// the WAL and is rebuilt, but keeping them together keeps the evidence
// whole; the journal goes too, since the fresh database starts from nothing.
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
	for _, sfx := range []string{"-wal", "-shm", "-log"} {
		if err := os.Rename(path+sfx, to+sfx); err != nil && !errors.Is(err, os.ErrNotExist) {
			return to, err
		}
	}
	return to, nil
}

// CheckpointWAL copies the WAL into the database file (SQLite's PASSIVE
// checkpoint) through a reader connection: it neither waits for the writer
// nor makes it wait, and what it copied lets a later commit start the WAL
// over. The writer would otherwise do it itself after the commit that
// passes 1,000 pages (every few seconds at 5,000 msg/s), and that commit —
// a journal commit, which acknowledgements wait for — would wait for the
// copy and its fsyncs: 65-107 ms stalls in the latency benchmark. The
// writer still does it, at 4,000 pages, if CheckpointWAL is not called.
// The gateway calls it every second.
func (db *DB) CheckpointWAL() error {
	var busy, frames, copied int
	if err := db.r.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		return classify("checkpoint wal", err)
	}
	return nil
}

// Recovered reports whether Open found the file damaged, moved it aside and
// started a fresh database, and where the damaged file went.
func (db *DB) Recovered() (movedTo string, ok bool) { return db.movedTo, db.movedTo != "" }

// Close closes the database. The WAL is checkpointed by SQLite when the
// last connection closes.
func (db *DB) Close() error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	// Refresh the query planner's statistics where SQLite thinks they are
	// stale; cheap, and a failure here must not keep the file open.
	db.w.Exec("PRAGMA optimize")
	return db.closeAll()
}

func (db *DB) closeAll() error {
	var errs []error
	db.st.close()
	if db.log != nil {
		errs = append(errs, db.log.close())
	}
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close state db: %w", err)
	}
	return nil
}

// Backup writes a consistent copy of the live database to path (which must
// not exist) with VACUUM INTO. It uses a connection of its own (VACUUM INTO
// is refused on the query_only pool), which only reads the live file: writes
// go on meanwhile.
func (db *DB) Backup(ctx context.Context, path string) error {
	c, err := sql.Open("sqlite", fmt.Sprintf("%s?_pragma=busy_timeout(%d)", db.o.Path, db.o.BusyTimeout.Milliseconds()))
	if err != nil {
		return fmt.Errorf("backup state db: %w", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("backup state db: %w", err)
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
	LastPos       uint64
	CheckpointPos uint64
	JournalRows   int   // journaled messages not yet covered by a checkpoint
	JournalBytes  int64 // the journal's segment files, covered ones not yet deleted included
	JournalFiles  int
	JournalSyncs  uint64 // fsyncs of the journal's files
	OutboxRows    int
	Dropped       uint64 // alerts dropped by the outbox bound since Open
	WriteErrors   uint64 // failed write calls since Open
	LastError     string
	LastErrorAt   time.Time
	RecoveredTo   string // where Open moved a damaged file, if it did
	Trimmed       uint64 // alerts cut to MaxAlertBytes since Open
	SetAside      uint64 // alerts set aside as dead letters since Open
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
	db.wmu.Lock()
	s.LastPos, s.CheckpointPos, s.OutboxRows = db.lastPos, db.cpPos, db.outboxLen
	if db.log != nil {
		s.JournalBytes, s.JournalFiles, s.JournalSyncs = db.log.total, len(db.log.segs), db.log.syncs
	}
	db.wmu.Unlock()
	// Positions are contiguous and a checkpoint deletes exactly those at or
	// below it, so the journal holds (CheckpointPos, LastPos]: no count(*)
	// over a journal that may have grown large.
	s.JournalRows = int(s.LastPos - s.CheckpointPos)
	s.Dropped = db.dropped.Load()
	s.WriteErrors = db.writeErrors.Load()
	s.Trimmed, s.SetAside = db.trimmed.Load(), db.setAsideN.Load()
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
