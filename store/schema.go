package store

import (
	"database/sql"
	"fmt"
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
	// Schema 4: the journal and the dedup ids moved to the log of segment
	// files beside the database (seglog.go); Open moves what the tables
	// hold there, and they stay, empty, for a downgrade to read.
	`SELECT 1;`,
	`
	-- Schema 5: what an alert costs the SD card (issue #17). At 100 alerts
	-- a second with 200,000 in the history, the unique index on ids and the
	-- (key, seq) index took a page each per alert (new alerts go into them
	-- at random places): 1.2 KB written per reading received. Now:
	--   - history has no index but on rule, time and received, which new
	--     alerts append to; ids are unique by Put's check (the ids of an
	--     alert's time, read once per time a batch holds),
	--     and a device's alerts are found by scanning back from the newest;
	--   - the outbox holds no copy of the alert: it points at the history
	--     row (hseq), whose body the forwarder sends;
	--   - a delivery is a row of its own (delivered) instead of an update
	--     that rewrote every history page of a burst of alerts.
	CREATE TABLE outbox_v5 (
		seq      INTEGER PRIMARY KEY,
		id       TEXT    NOT NULL UNIQUE,
		severity INTEGER NOT NULL,
		topic    TEXT    NOT NULL,
		hseq     INTEGER NOT NULL
	);
	INSERT INTO outbox_v5(seq, id, severity, topic, hseq)
		SELECT o.seq, o.id, o.severity, o.topic, h.seq FROM outbox o JOIN history h ON h.id = o.id;
	DROP TABLE outbox;
	ALTER TABLE outbox_v5 RENAME TO outbox;
	CREATE INDEX outbox_severity ON outbox(severity, seq);

	CREATE TABLE delivered (
		hseq INTEGER PRIMARY KEY,
		at   INTEGER NOT NULL
	);
	INSERT INTO delivered(hseq, at) SELECT seq, delivered FROM history WHERE delivered != 0;

	CREATE TABLE history_v5 (
		seq       INTEGER PRIMARY KEY,
		id        TEXT    NOT NULL,
		rule      TEXT    NOT NULL,
		key       TEXT    NOT NULL,
		severity  TEXT    NOT NULL,
		state     TEXT    NOT NULL,
		time      INTEGER NOT NULL,
		received  INTEGER NOT NULL,
		topic     TEXT    NOT NULL,
		body      BLOB    NOT NULL
	);
	INSERT INTO history_v5(seq, id, rule, key, severity, state, time, received, topic, body)
		SELECT seq, id, rule, key, severity, state, time, received, topic, body FROM history;
	DROP TABLE history;
	ALTER TABLE history_v5 RENAME TO history;
	CREATE INDEX history_rule ON history(rule, seq);
	CREATE INDEX history_time ON history(time);
	CREATE INDEX history_received ON history(received);
	`,
	`
	-- Schema 6: alerts upstream refused again and again, set aside so the
	-- alerts behind them flow (deadletter.go); the operator may send them
	-- again. Like the outbox, a row points at its alert's history row.
	CREATE TABLE dead_letter (
		seq      INTEGER PRIMARY KEY,
		id       TEXT    NOT NULL UNIQUE,
		severity INTEGER NOT NULL,
		topic    TEXT    NOT NULL,
		hseq     INTEGER NOT NULL,
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
	cpUpsert, partUpsert, partDel *sql.Stmt
	hInsert, hIDsAt, oInsert      *sql.Stmt
	oDropSev                      *sql.Stmt
	oDelete, hDelivered           *sql.Stmt
}

func (s *stmts) prepare(w *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.cpUpsert, `INSERT INTO checkpoint(id, pos, version, taken) VALUES (1, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET pos = excluded.pos, version = excluded.version, taken = excluded.taken`},
		{&s.partUpsert, `INSERT INTO checkpoint_part(name, data) VALUES (?, ?)
			ON CONFLICT(name) DO UPDATE SET data = excluded.data`},
		{&s.partDel, `DELETE FROM checkpoint_part WHERE name = ?`},
		// ON CONFLICT(id), not OR IGNORE: only a known id is skipped; any
		// other constraint failure is an error, not a silently lost alert.
		// An id already in the history is found through the time index
		// (hIDsAt): an alert's id derives from its time (event.AlertID).
		{&s.hInsert, `INSERT INTO history(id, rule, key, severity, state, time, received, topic, body)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.hIDsAt, `SELECT id FROM history WHERE time = ?`},
		{&s.oInsert, `INSERT INTO outbox(id, severity, topic, hseq) VALUES (?, ?, ?, ?)
			ON CONFLICT(id) DO NOTHING`},
		{&s.oDropSev, `DELETE FROM outbox WHERE seq IN
			(SELECT seq FROM outbox WHERE severity = ? ORDER BY seq LIMIT ?)`},
		{&s.oDelete, `DELETE FROM outbox WHERE id = ?`},
		{&s.hDelivered, `INSERT INTO delivered(hseq, at) SELECT hseq, ? FROM outbox WHERE id = ?
			ON CONFLICT(hseq) DO NOTHING`},
	} {
		st, err := w.Prepare(p.sql)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.sql, err)
		}
		*p.dst = st
	}
	return nil
}

func (s *stmts) close() {
	for _, st := range []*sql.Stmt{s.cpUpsert, s.partUpsert,
		s.partDel, s.hInsert, s.hIDsAt, s.oInsert, s.oDropSev, s.oDelete, s.hDelivered} {
		if st != nil {
			st.Close()
		}
	}
}
