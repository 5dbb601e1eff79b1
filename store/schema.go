package store

import (
	"database/sql"
	"fmt"
	"strings"
)

// migrations[i] takes the schema from user_version i to i+1. Append only:
// a released step is never edited, because files in the field already ran it.
var migrations = []string{
	`
	-- Input journal. pos is assigned by Append and never reused; dedup is
	-- the broker-side id used to recognise a redelivery (NULL when unknown).
	CREATE TABLE journal (
		pos      INTEGER PRIMARY KEY,
		topic    TEXT    NOT NULL,
		payload  BLOB    NOT NULL,
		received INTEGER NOT NULL,
		dedup    TEXT
	);
	CREATE UNIQUE INDEX journal_dedup ON journal(dedup) WHERE dedup IS NOT NULL;

	-- The one checkpoint: the journal position it covers and its parts.
	CREATE TABLE checkpoint (
		id      INTEGER PRIMARY KEY CHECK (id = 1),
		pos     INTEGER NOT NULL,
		version INTEGER NOT NULL,
		taken   INTEGER NOT NULL
	);
	-- A rowid table, not WITHOUT ROWID: there a ~2 KB part would spill
	-- into an overflow page (index b-tree cells keep ~1 KB inline), which
	-- more than doubled the bytes a checkpoint writes.
	CREATE TABLE checkpoint_part (
		name TEXT NOT NULL UNIQUE,
		data BLOB NOT NULL
	);

	-- Alerts waiting for upstream, in insertion (seq) order. severity is
	-- 0 info, 1 warning, 2 critical: the bound drops the lowest first.
	CREATE TABLE outbox (
		seq      INTEGER PRIMARY KEY,
		id       TEXT    NOT NULL UNIQUE,
		severity INTEGER NOT NULL,
		topic    TEXT    NOT NULL,
		body     BLOB    NOT NULL
	);
	CREATE INDEX outbox_severity ON outbox(severity, seq);

	-- Every alert ever Put (until pruned). It is also the idempotency
	-- ledger: an id found here is not put into the outbox again.
	CREATE TABLE history (
		seq       INTEGER PRIMARY KEY,
		id        TEXT    NOT NULL UNIQUE,
		rule      TEXT    NOT NULL,
		key       TEXT    NOT NULL,
		severity  TEXT    NOT NULL,
		state     TEXT    NOT NULL,
		time      INTEGER NOT NULL,
		received  INTEGER NOT NULL,
		delivered INTEGER NOT NULL DEFAULT 0,
		topic     TEXT    NOT NULL,
		body      BLOB    NOT NULL
	);
	CREATE INDEX history_rule ON history(rule, seq);
	CREATE INDEX history_time ON history(time);
	CREATE INDEX history_received ON history(received);
	`,
	`
	-- Dedup ids of journal rows a checkpoint truncated, kept for
	-- Options.DedupWindow so a redelivery that arrives after the checkpoint
	-- is still recognised. received is the original's receive time.
	CREATE TABLE dedup_seen (
		dedup    TEXT    PRIMARY KEY,
		pos      INTEGER NOT NULL,
		received INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE INDEX dedup_seen_received ON dedup_seen(received);

	-- The UI filters by key (a device): without it that query scanned the
	-- whole history (~100 ms for 100,000 rows).
	CREATE INDEX history_key ON history(key, seq);
	`,
	`
	-- No index on dedup ids. Ids are hashes: every new message inserted
	-- one at a random place in the unique index, and a batch of 1,000
	-- touched as many index pages, tripling the bytes each message wrote
	-- (1.6 KB instead of 0.5) and halving the journal's speed. Only a
	-- message flagged as a redelivery is looked up, by scanning the
	-- journal and dedup_seen (Append, originals): rare, and bounded by
	-- what a checkpoint interval and the dedup window hold.
	DROP INDEX journal_dedup;
	CREATE TABLE dedup_seen_v3 (
		dedup    TEXT    NOT NULL,
		pos      INTEGER NOT NULL,
		received INTEGER NOT NULL
	);
	INSERT INTO dedup_seen_v3(dedup, pos, received) SELECT dedup, pos, received FROM dedup_seen;
	DROP TABLE dedup_seen;
	ALTER TABLE dedup_seen_v3 RENAME TO dedup_seen;
	CREATE INDEX dedup_seen_received ON dedup_seen(received);
	`,
	`
	-- Alerts upstream refused again and again, set aside so the alerts
	-- behind them flow (deadletter.go); the operator may send them again.
	CREATE TABLE dead_letter (
		seq      INTEGER PRIMARY KEY,
		id       TEXT    NOT NULL UNIQUE,
		severity INTEGER NOT NULL,
		topic    TEXT    NOT NULL,
		body     BLOB    NOT NULL,
		reason   TEXT    NOT NULL,
		attempts INTEGER NOT NULL,
		failed   INTEGER NOT NULL
	);
	`,
}

// SchemaVersion is the PRAGMA user_version this code writes.
var SchemaVersion = len(migrations)

func migrate(w *sql.DB) error {
	var v int
	if err := w.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		// A newer vigil wrote this file: refuse rather than guess. This is
		// not damage, so Open does not move the file aside.
		return fmt.Errorf("schema version %d is newer than this vigil's %d", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := w.Begin()
		if err != nil {
			return fmt.Errorf("migrate schema to %d: %w", v+1, err)
		}
		if _, err := tx.Exec(migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate schema to %d: %w", v+1, err)
		}
		// user_version in the same transaction: a crash mid-migration
		// leaves the old version and the old schema.
		if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate schema to %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate schema to %d: %w", v+1, err)
		}
	}
	return nil
}

// stmts are the writer's prepared statements; transactions use them via
// tx.Stmt, which reuses the preparation on the single writer connection.
type stmts struct {
	jTruncate                     *sql.Stmt
	seenKeep, seenExpire          *sql.Stmt
	cpUpsert, partUpsert, partDel *sql.Stmt
	hInsert, oInsert, oDropSev    *sql.Stmt
	oDelete, hDelivered           *sql.Stmt
	// jBulk[i] inserts 1<<i journal rows: a batch goes in with the
	// largest that fit, so no batch size has its statement prepared
	// again (a batch of 1,000 left 104 rows whose SQL was parsed on every
	// commit: 9 % of the journal's CPU).
	jBulk [bulkBits]*sql.Stmt
}

// bulkRows is how many journal rows one multi-row INSERT carries at most: 5
// parameters each, well below SQLite's limit of 32,766.
const (
	bulkBits = 8
	bulkRows = 1 << (bulkBits - 1)
)

// bulkInsertSQL is the journal INSERT for n rows.
func bulkInsertSQL(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO journal(pos, topic, payload, received, dedup) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?)")
	}
	return b.String()
}

func (s *stmts) prepare(w *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.jTruncate, `DELETE FROM journal WHERE pos <= ?`},
		{&s.seenKeep, `INSERT INTO dedup_seen(dedup, pos, received)
			SELECT dedup, pos, received FROM journal WHERE pos <= ? AND dedup IS NOT NULL AND received >= ?`},
		{&s.seenExpire, `DELETE FROM dedup_seen WHERE received < ?`},
		{&s.cpUpsert, `INSERT INTO checkpoint(id, pos, version, taken) VALUES (1, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET pos = excluded.pos, version = excluded.version, taken = excluded.taken`},
		{&s.partUpsert, `INSERT INTO checkpoint_part(name, data) VALUES (?, ?)
			ON CONFLICT(name) DO UPDATE SET data = excluded.data`},
		{&s.partDel, `DELETE FROM checkpoint_part WHERE name = ?`},
		// ON CONFLICT(id), not OR IGNORE: only a known id is skipped; any
		// other constraint failure is an error, not a silently lost alert.
		{&s.hInsert, `INSERT INTO history(id, rule, key, severity, state, time, received, topic, body)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`},
		{&s.oInsert, `INSERT INTO outbox(id, severity, topic, body) VALUES (?, ?, ?, ?)
			ON CONFLICT(id) DO NOTHING`},
		{&s.oDropSev, `DELETE FROM outbox WHERE seq IN
			(SELECT seq FROM outbox WHERE severity = ? ORDER BY seq LIMIT ?)`},
		{&s.oDelete, `DELETE FROM outbox WHERE id = ?`},
		{&s.hDelivered, `UPDATE history SET delivered = ? WHERE id = ? AND delivered = 0`},
	} {
		st, err := w.Prepare(p.sql)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.sql, err)
		}
		*p.dst = st
	}
	for i := range s.jBulk {
		st, err := w.Prepare(bulkInsertSQL(1 << i))
		if err != nil {
			return fmt.Errorf("prepare the journal insert of %d rows: %w", 1<<i, err)
		}
		s.jBulk[i] = st
	}
	return nil
}

func (s *stmts) close() {
	all := []*sql.Stmt{s.jTruncate, s.seenKeep, s.seenExpire, s.cpUpsert, s.partUpsert,
		s.partDel, s.hInsert, s.oInsert, s.oDropSev, s.oDelete, s.hDelivered}
	for _, st := range append(all, s.jBulk[:]...) {
		if st != nil {
			st.Close()
		}
	}
}
