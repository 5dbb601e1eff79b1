package store

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// Alerts upstream refuses, and alerts too large to send.
//
// An alert's JSON form is capped at Options.MaxAlertBytes when it is Put:
// a larger one has its message and values cut (and "trimmed": true set)
// before it is stored, so the outbox never holds what a broker with a
// packet limit would refuse for its size alone.
//
// An alert upstream refuses again and again anyway (the forwarder decides
// when: conn.Forwarder's DeadAfter) is set aside: moved from the outbox to
// the dead_letter table, counted, listed for the operator, who can send it
// again (RetryDeadLetters puts it back at the end of the outbox). The
// alerts behind it flow on in order. The table holds at most
// DeadLetterMax rows; beyond that the oldest are dropped and counted.

// DefaultMaxAlertBytes is Options.MaxAlertBytes' default.
const DefaultMaxAlertBytes = 16 << 10

// DeadLetterMax bounds the dead-letter table.
const DeadLetterMax = 1000

// trimmedText is how long a string value or the key may stay in a trimmed
// alert; the message gets a quarter of the limit.
const trimmedText = 256

// capAlert returns a's JSON form within max bytes when it can: when body
// is larger, a copy of a with its message, key and values cut, marked
// Trimmed, and its JSON. What is left of a trimmed alert that is still too
// large is stored as it is: the forwarder sets it aside if upstream
// refuses it.
func capAlert(a *event.Alert, body []byte, max int) (event.Alert, []byte, bool, error) {
	if len(body) <= max {
		return *a, body, false, nil
	}
	c := *a
	c.Trimmed = true
	c.Message = event.Cut(c.Message, max/4)
	c.Key = event.Cut(c.Key, trimmedText)
	c.Values = make(map[string]any, len(a.Values))
	for k, v := range a.Values {
		c.Values[event.Cut(k, trimmedText)] = trimValue(v)
	}
	b, err := marshalAlert(&c)
	if err != nil {
		return c, nil, false, err
	}
	if len(b) > max {
		// Many values: keep the numbers and booleans (what an aggregate
		// or a reading is), drop the rest.
		for k, v := range c.Values {
			switch v.(type) {
			case float64, int, int64, bool, nil:
			default:
				delete(c.Values, k)
			}
		}
		if b, err = marshalAlert(&c); err != nil {
			return c, nil, false, err
		}
	}
	if len(b) > max {
		c.Values = map[string]any{}
		c.Message = event.Cut(c.Message, trimmedText)
		if b, err = marshalAlert(&c); err != nil {
			return c, nil, false, err
		}
	}
	return c, b, true, nil
}

// trimValue cuts a string value; a nested value becomes its JSON text, cut.
func trimValue(v any) any {
	switch x := v.(type) {
	case string:
		return event.Cut(x, trimmedText)
	case map[string]any, []any:
		b, err := marshalAlert(&event.Alert{Values: map[string]any{"": x}})
		if err != nil {
			return nil
		}
		return event.Cut(string(b), trimmedText)
	}
	return v
}

// DeadLetter is an alert upstream refused, set aside.
type DeadLetter struct {
	Alert    event.Alert
	Reason   string    // the last publish error
	Attempts int       // how many times it was sent and refused
	At       time.Time // when it was set aside (gateway clock)
}

// SetAside moves the alert with this id from the outbox to the dead-letter
// table, with why and after how many attempts. An id no longer in the
// outbox is ignored.
func (db *DB) SetAside(id, reason string, attempts int) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	moved, dropped, err := db.setAside(id, reason, attempts)
	if err != nil {
		return db.wrap("set alert aside", err)
	}
	db.outboxLen -= moved
	db.setAsideN.Add(uint64(moved))
	db.dropped.Add(uint64(dropped))
	return nil
}

func (db *DB) setAside(id, reason string, attempts int) (moved, dropped int, err error) {
	tx, err := db.begin(false)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	res, err := tx.Exec(`INSERT INTO dead_letter(id, severity, topic, hseq, reason, attempts, failed)
		SELECT id, severity, topic, hseq, ?, ?, ? FROM outbox WHERE id = ?
		ON CONFLICT(id) DO NOTHING`, reason, attempts, nanos(db.now()), id)
	if err != nil {
		return 0, 0, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, 0, tx.Commit()
	}
	if res, err = tx.Exec(`DELETE FROM outbox WHERE id = ?`, id); err != nil {
		return 0, 0, err
	}
	n, _ := res.RowsAffected()
	res, err = tx.Exec(`DELETE FROM dead_letter WHERE seq <=
		(SELECT seq FROM dead_letter ORDER BY seq DESC LIMIT 1 OFFSET ?)`, DeadLetterMax)
	if err != nil {
		return 0, 0, err
	}
	d, _ := res.RowsAffected()
	return int(n), int(d), tx.Commit()
}

// DeadLetters returns up to limit set-aside alerts, oldest first (default
// and most: DeadLetterMax).
func (db *DB) DeadLetters(limit int) ([]DeadLetter, error) {
	if limit <= 0 || limit > DeadLetterMax {
		limit = DeadLetterMax
	}
	rows, err := db.r.Query(`SELECT d.topic, h.body, d.reason, d.attempts, d.failed
		FROM dead_letter d JOIN history h ON h.seq = d.hseq ORDER BY d.seq LIMIT ?`, limit)
	if err != nil {
		return nil, classify("read dead letters", err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var d DeadLetter
		var topic string
		var body []byte
		var at int64
		if err := rows.Scan(&topic, &body, &d.Reason, &d.Attempts, &at); err != nil {
			return nil, classify("read dead letters", err)
		}
		if d.Alert, err = unmarshalAlert(body, topic); err != nil {
			return nil, classify("read dead letters", err)
		}
		d.At = fromNanos(at)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("read dead letters", err)
	}
	return out, nil
}

// DeadLetterCount is how many alerts are set aside.
func (db *DB) DeadLetterCount() (int, error) {
	var n int
	if err := db.r.QueryRow(`SELECT count(*) FROM dead_letter`).Scan(&n); err != nil {
		return 0, classify("count dead letters", err)
	}
	return n, nil
}

// RetryDeadLetters puts the set-aside alerts with these ids (all of them
// when ids is empty) back at the end of the outbox, and returns how many
// it moved. The outbox bound applies as for Put.
func (db *DB) RetryDeadLetters(ids []string) (int, error) {
	if len(ids) > DeadLetterMax {
		return 0, fmt.Errorf("retry dead letters: %d ids; at most %d at once", len(ids), DeadLetterMax)
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	moved, dropped, err := db.retry(ids)
	if err != nil {
		return 0, db.wrap("retry dead letters", err)
	}
	db.outboxLen += moved - dropped
	db.dropped.Add(uint64(dropped))
	return moved, nil
}

func (db *DB) retry(ids []string) (moved, dropped int, err error) {
	tx, err := db.begin(false)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	// Always a WHERE: SQLite reads INSERT … SELECT … ON CONFLICT right
	// only with one.
	where, args := " WHERE 1", []any{}
	if len(ids) > 0 {
		where = " WHERE id IN (?" + strings.Repeat(",?", len(ids)-1) + ")"
		for _, id := range ids {
			args = append(args, id)
		}
	}
	res, err := tx.Exec(`INSERT INTO outbox(id, severity, topic, hseq)
		SELECT id, severity, topic, hseq FROM dead_letter`+where+` ORDER BY seq
		ON CONFLICT(id) DO NOTHING`, args...)
	if err != nil {
		return 0, 0, err
	}
	n, _ := res.RowsAffected()
	if _, err := tx.Exec(`DELETE FROM dead_letter`+where, args...); err != nil {
		return 0, 0, err
	}
	if dropped, err = db.dropExcess(tx, int(n)); err != nil {
		return 0, 0, err
	}
	return int(n), dropped, tx.Commit()
}
