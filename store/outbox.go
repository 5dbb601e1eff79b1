package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// severityRank orders severities for the outbox bound: the lowest rank is
// dropped first. An unknown severity ranks as warning, the contract's
// default.
func severityRank(s string) int {
	switch s {
	case "info":
		return 0
	case "critical":
		return 2
	}
	return 1
}

// Put adds alerts to the outbox and the history in one transaction and
// returns how many were new. An alert whose id the history already holds
// (waiting in the outbox, delivered, or dropped by the bound) is ignored, so
// an alert replayed after a crash is not sent twice. When the outbox grows
// past OutboxMax, the oldest info alerts are dropped first, then the oldest
// warning, then critical; Dropped counts them. An alert without an id gets
// event.AlertID's. An alert whose JSON form is over MaxAlertBytes is
// trimmed first (deadletter.go); the caller's slice is left alone.
func (db *DB) Put(alerts []event.Alert) (added int, err error) {
	if len(alerts) == 0 {
		return 0, nil
	}
	bodies := make([][]byte, len(alerts))
	for i := range alerts {
		if alerts[i].ID == "" {
			// The id is the idempotency key: never store an alert without
			// one. Copy, so the caller's slice is left alone.
			alerts = slices.Clone(alerts)
			for j := i; j < len(alerts); j++ {
				if a := &alerts[j]; a.ID == "" {
					a.ID = event.AlertID(a.Rule, a.Key, a.State, a.Time)
				}
			}
		}
		if bodies[i], err = marshalAlert(&alerts[i]); err != nil {
			return 0, fmt.Errorf("put alerts: %w", err)
		}
		if len(bodies[i]) > db.o.MaxAlertBytes {
			c, b, trimmed, err := capAlert(&alerts[i], bodies[i], db.o.MaxAlertBytes)
			if err != nil {
				return 0, fmt.Errorf("put alerts: %w", err)
			}
			if trimmed {
				alerts = slices.Clone(alerts)
				alerts[i], bodies[i] = c, b
				db.trimmed.Add(1)
			}
		}
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	added, dropped, err := db.put(alerts, bodies)
	if err != nil {
		return 0, db.wrap("put alerts", err)
	}
	db.outboxLen += added - dropped
	db.dropped.Add(uint64(dropped))
	return added, nil
}

func (db *DB) put(alerts []event.Alert, bodies [][]byte) (added, dropped int, err error) {
	tx, err := db.begin(false)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	hIns, hIDs, oIns := tx.Stmt(db.st.hInsert), tx.Stmt(db.st.hIDsAt), tx.Stmt(db.st.oInsert)
	recv := nanos(db.now())
	// The ids the history holds, by alert time: read once per time (a
	// window rule's 1,000 alerts share one), not per alert, which scanned
	// them all for each (BenchmarkPutWindowBurst).
	known := map[int64]map[string]bool{}
	for i := range alerts {
		a := &alerts[i]
		t := nanos(a.Time)
		ids, ok := known[t]
		if !ok {
			if ids, err = idsAt(hIDs, t); err != nil {
				return 0, 0, err
			}
			known[t] = ids
		}
		if ids[a.ID] {
			continue // seen before
		}
		ids[a.ID] = true
		res, err := hIns.Exec(a.ID, a.Rule, a.Key, a.Severity, string(a.State), t, recv, a.Topic, bodies[i])
		if err != nil {
			return 0, 0, err
		}
		hseq, err := res.LastInsertId()
		if err != nil {
			return 0, 0, err
		}
		res, err = oIns.Exec(a.ID, severityRank(a.Severity), a.Topic, hseq)
		if err != nil {
			return 0, 0, err
		}
		n, _ := res.RowsAffected()
		added += int(n)
	}
	if dropped, err = db.dropExcess(tx, added); err != nil {
		return 0, 0, err
	}
	return added, dropped, tx.Commit()
}

// idsAt reads the ids of the history's alerts at time t.
func idsAt(q *sql.Stmt, t int64) (map[string]bool, error) {
	rows, err := q.Query(t)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}

// dropExcess applies the outbox bound in tx after added alerts went in:
// the oldest info alerts first, then warning, then critical.
func (db *DB) dropExcess(tx *sql.Tx, added int) (dropped int, err error) {
	excess := db.outboxLen + added - db.o.OutboxMax
	drop := tx.Stmt(db.st.oDropSev)
	for rank := 0; rank <= 2 && excess > 0; rank++ {
		res, err := drop.Exec(rank, excess)
		if err != nil {
			return 0, err
		}
		n, _ := res.RowsAffected()
		excess -= int(n)
		dropped += int(n)
	}
	return dropped, nil
}

// marshalAlert writes the contract's JSON form. JSON has no NaN or ±Inf, and
// an aggregate over odd data can produce them: rather than lose the alert,
// such values are stored as null.
func marshalAlert(a *event.Alert) ([]byte, error) {
	b, err := a.AppendJSON(nil, true) // json.Marshal's bytes, faster
	if err == nil {
		return b, nil
	}
	c := *a
	c.Values, _ = finite(a.Values).(map[string]any)
	b, err2 := json.Marshal(&c)
	if err2 != nil {
		return nil, fmt.Errorf("alert %s: %w", a.ID, err)
	}
	return b, nil
}

func finite(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil
		}
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, y := range x {
			m[k] = finite(y)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, y := range x {
			s[i] = finite(y)
		}
		return s
	}
	return v
}

func unmarshalAlert(body []byte, topic string) (event.Alert, error) {
	var a event.Alert
	if err := json.Unmarshal(body, &a); err != nil {
		return a, err
	}
	a.Topic = topic
	return a, nil
}

// Pending returns up to limit alerts waiting for upstream, oldest first.
func (db *DB) Pending(limit int) ([]event.Alert, error) {
	return db.PendingExcept(limit, nil)
}

// PendingExcept is Pending without the alerts whose id skip reports.
// Skipped rows are not decoded, and the read stops at limit alerts.
func (db *DB) PendingExcept(limit int, skip func(id string) bool) ([]event.Alert, error) {
	out, err := db.PendingBodies(limit, skip)
	if err != nil {
		return nil, err
	}
	alerts := make([]event.Alert, len(out))
	for i, o := range out {
		if alerts[i], err = unmarshalAlert(o.Body, o.Topic); err != nil {
			return nil, classify("read outbox", err)
		}
	}
	return alerts, nil
}

// PendingBodies returns up to limit alerts waiting for upstream, oldest
// first, as stored: the forwarder publishes the bytes without decoding and
// encoding each alert again. Alerts whose id skip reports (the forwarder's:
// sent and acknowledged, removal under way) are left out, and the read
// stops at limit alerts.
func (db *DB) PendingBodies(limit int, skip func(id string) bool) ([]event.Outgoing, error) {
	if limit <= 0 {
		limit = 100
	}
	const sel = "SELECT o.id, o.topic, h.body FROM outbox o JOIN history h ON h.seq = o.hseq ORDER BY o.seq"
	q, args := sel+" LIMIT ?", []any{limit}
	if skip != nil {
		q, args = sel, nil
	}
	rows, err := db.r.Query(q, args...)
	if err != nil {
		return nil, classify("read outbox", err)
	}
	defer rows.Close()
	var out []event.Outgoing
	for len(out) < limit && rows.Next() {
		var o event.Outgoing
		if err := rows.Scan(&o.ID, &o.Topic, &o.Body); err != nil {
			return nil, classify("read outbox", err)
		}
		if skip != nil && skip(o.ID) {
			continue
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("read outbox", err)
	}
	return out, nil
}

// Delivered removes the alerts with these ids from the outbox and marks
// them delivered in the history, in one transaction. Unknown ids are
// ignored.
func (db *DB) Delivered(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	removed, err := db.delivered(ids)
	if err != nil {
		return db.wrap("mark delivered", err)
	}
	db.outboxLen -= removed
	return nil
}

func (db *DB) delivered(ids []string) (int, error) {
	tx, err := db.begin(false)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	del, mark := tx.Stmt(db.st.oDelete), tx.Stmt(db.st.hDelivered)
	now := nanos(db.now())
	removed := 0
	for _, id := range ids {
		// The mark first: it finds the history row through the outbox's.
		if _, err := mark.Exec(now, id); err != nil {
			return 0, err
		}
		res, err := del.Exec(id)
		if err != nil {
			return 0, err
		}
		n, _ := res.RowsAffected()
		removed += int(n)
	}
	return removed, tx.Commit()
}

// OutboxLen is the number of alerts waiting for upstream.
func (db *DB) OutboxLen() (int, error) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	return db.outboxLen, nil
}

// Query selects history entries. Empty fields do not filter.
type Query struct {
	Rule, Key, Severity, State string
	// Since and Until bound the alert's event time: Since <= time < Until.
	Since, Until time.Time
	// Limit is the page size (default 100, at most 1,000).
	Limit int
	// Before is the paging cursor: only entries with Seq < Before. Pass the
	// last Seq of a page to get the next (older) page.
	Before int64
}

// HistoryEntry is one alert of the history.
type HistoryEntry struct {
	Seq       int64
	Alert     event.Alert
	Received  time.Time // when Put stored it (gateway clock)
	Delivered time.Time // when upstream acknowledged it; zero if not (yet)
}

// History returns the entries matching q, newest first.
func (db *DB) History(q Query) ([]HistoryEntry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if q.Rule != "" {
		add("rule = ?", q.Rule)
	}
	if q.Key != "" {
		add("key = ?", q.Key)
	}
	if q.Severity != "" {
		add("severity = ?", q.Severity)
	}
	if q.State != "" {
		add("state = ?", q.State)
	}
	if !q.Since.IsZero() {
		add("time >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		add("time < ?", q.Until.UnixNano())
	}
	if q.Before > 0 {
		add("seq < ?", q.Before)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	s := "SELECT seq, received, coalesce(d.at, 0), topic, body FROM history LEFT JOIN delivered d ON d.hseq = seq"
	if len(where) > 0 {
		s += " WHERE " + strings.Join(where, " AND ")
	}
	s += " ORDER BY seq DESC LIMIT ?"
	args = append(args, limit)
	rows, err := db.r.Query(s, args...)
	if err != nil {
		return nil, classify("read history", err)
	}
	defer rows.Close()
	var out []HistoryEntry
	for rows.Next() {
		var e HistoryEntry
		var recv, deliv int64
		var topic string
		var body []byte
		if err := rows.Scan(&e.Seq, &recv, &deliv, &topic, &body); err != nil {
			return nil, classify("read history", err)
		}
		if e.Alert, err = unmarshalAlert(body, topic); err != nil {
			return nil, classify("read history", err)
		}
		e.Received, e.Delivered = fromNanos(recv), fromNanos(deliv)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("read history", err)
	}
	return out, nil
}

// Prune deletes history older than HistoryRetention (by received time) and
// beyond the newest HistoryMax rows, and returns how many rows went. Rows of
// alerts still in the outbox are kept: the history is the outbox's
// idempotency ledger.
func (db *DB) Prune(now time.Time) (int, error) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	tx, err := db.begin(false)
	if err != nil {
		return 0, db.wrap("prune history", err)
	}
	defer tx.Rollback()
	res, err := tx.Exec(`DELETE FROM history WHERE received < ?
		AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.id = history.id)
		AND NOT EXISTS (SELECT 1 FROM dead_letter WHERE dead_letter.id = history.id)`,
		now.Add(-db.o.HistoryRetention).UnixNano())
	if err != nil {
		return 0, db.wrap("prune history", err)
	}
	n1, _ := res.RowsAffected()
	res, err = tx.Exec(`DELETE FROM history WHERE seq <=
		(SELECT seq FROM history ORDER BY seq DESC LIMIT 1 OFFSET ?)
		AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.id = history.id)
		AND NOT EXISTS (SELECT 1 FROM dead_letter WHERE dead_letter.id = history.id)`, db.o.HistoryMax)
	if err != nil {
		return 0, db.wrap("prune history", err)
	}
	n2, _ := res.RowsAffected()
	if _, err := tx.Exec(`DELETE FROM delivered WHERE hseq < (SELECT coalesce(min(seq), 0) FROM history)`); err != nil {
		return 0, db.wrap("prune history", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, db.wrap("prune history", err)
	}
	return int(n1 + n2), nil
}
