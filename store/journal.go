package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Message is one journaled MQTT message.
type Message struct {
	// Pos is the journal position, set by Append: increasing, contiguous
	// for the messages it appends, never reused.
	Pos      uint64
	Topic    string
	Payload  []byte
	Received time.Time
	// Dedup is a broker-side id that recognises a redelivery (e.g. a
	// QoS 1 message whose ack was lost in a disconnect); "" when unknown.
	Dedup string
	// Redelivered says the broker flagged the message as possibly sent
	// before (MQTT DUP): only then is it also looked up among the ids a
	// checkpoint has already covered (Options.DedupWindow), a lookup that
	// would otherwise cost every message.
	Redelivered bool
	// Dup is set by Append when a message with the same Dedup is already in
	// the journal (not yet truncated by a checkpoint; with
	// Options.DedupWindow, also one truncated within the window): it was
	// not appended again and Pos is the earlier message's position. The pipeline acks it
	// and does not process it a second time.
	Dup bool
}

// Append journals msgs in one transaction and sets each message's Pos and
// Dup. It returns how many were appended (not Dup). On error nothing was
// journaled and the Pos/Dup fields are meaningless; errors.Is(err,
// ErrDiskFull) tells a full disk.
func (db *DB) Append(msgs []Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	next, err := db.append(msgs)
	if err != nil {
		return 0, db.wrap("append journal", err)
	}
	n := int(next - db.lastPos)
	db.lastPos = next
	return n, nil
}

func (db *DB) append(msgs []Message) (uint64, error) {
	tx, err := db.begin(true)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if ok, err := db.appendBulk(tx, msgs); err != nil {
		return 0, err
	} else if ok {
		for i := range msgs {
			msgs[i].Pos, msgs[i].Dup = db.lastPos+uint64(i)+1, false
		}
		return db.lastPos + uint64(len(msgs)), tx.Commit()
	}
	sel, ins := tx.Stmt(db.st.jDedup), tx.Stmt(db.st.jInsert)
	var seen *sql.Stmt
	if db.o.DedupWindow > 0 {
		seen = tx.Stmt(db.st.seenGet)
	}
	next := db.lastPos
	for i := range msgs {
		m := &msgs[i]
		m.Dup = false
		var dedup any // NULL unless set, so the unique index ignores it
		if m.Dedup != "" {
			dedup = m.Dedup
			if seen != nil && m.Redelivered { // the original may be checkpointed already
				var p int64
				switch err := seen.QueryRow(m.Dedup).Scan(&p); {
				case err == nil:
					m.Pos, m.Dup = uint64(p), true
					continue
				case !errors.Is(err, sql.ErrNoRows):
					return 0, err
				}
			}
		}
		payload := m.Payload
		if payload == nil {
			payload = []byte{} // NOT NULL column; an empty payload is valid MQTT
		}
		// Insert first and look the earlier position up only on a conflict:
		// redeliveries are rare, and a lookup per message cost a third of
		// Append's time.
		res, err := ins.Exec(int64(next+1), m.Topic, payload, nanos(m.Received), dedup)
		if err != nil {
			return 0, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return 0, err
		} else if n == 0 {
			var p int64
			if err := sel.QueryRow(m.Dedup).Scan(&p); err != nil {
				return 0, fmt.Errorf("look up redelivered %q: %w", m.Dedup, err)
			}
			m.Pos, m.Dup = uint64(p), true
			continue
		}
		next++
		m.Pos = next
	}
	return next, tx.Commit()
}

// appendBulk journals msgs with multi-row INSERTs (bulkRows per statement):
// one database/sql call per 128 messages instead of one each, which was
// most of the journal's cost per message. It applies only when no message
// is a redelivery and none collides with a journaled id — the common case;
// otherwise (ok=false) it leaves the transaction as it found it and append
// takes the row-by-row path, which looks each collision up.
func (db *DB) appendBulk(tx *sql.Tx, msgs []Message) (ok bool, err error) {
	if len(msgs) < 2 {
		return false, nil
	}
	for i := range msgs {
		if msgs[i].Redelivered {
			return false, nil
		}
	}
	if _, err := tx.Exec("SAVEPOINT bulk"); err != nil {
		return false, err
	}
	args := make([]any, 0, 5*min(len(msgs), bulkRows))
	for start := 0; start < len(msgs); start += bulkRows {
		chunk := msgs[start:min(start+bulkRows, len(msgs))]
		args = args[:0]
		for i := range chunk {
			m := &chunk[i]
			var dedup any
			if m.Dedup != "" {
				dedup = m.Dedup
			}
			payload := m.Payload
			if payload == nil {
				payload = []byte{}
			}
			args = append(args, int64(db.lastPos+uint64(start+i)+1), m.Topic, payload, nanos(m.Received), dedup)
		}
		var res sql.Result
		if len(chunk) == bulkRows {
			res, err = tx.Stmt(db.st.jBulk).Exec(args...)
		} else {
			res, err = tx.Exec(bulkInsertSQL(len(chunk)), args...)
		}
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return false, err
		} else if int(n) != len(chunk) {
			// A collision: undo the bulk rows, go row by row.
			if _, err := tx.Exec("ROLLBACK TO bulk"); err != nil {
				return false, err
			}
			_, err := tx.Exec("RELEASE bulk")
			return false, err
		}
	}
	_, err = tx.Exec("RELEASE bulk")
	return err == nil, err
}

// journalChunk is how many rows Journal reads per query. Reading in chunks
// means fn runs with no read transaction open, so a slow consumer does not
// hold back WAL checkpoints.
const journalChunk = 512

// Journal calls fn for every journaled message with Pos > after, in position
// order. It stops at the first error fn returns and returns it.
func (db *DB) Journal(after uint64, fn func(Message) error) error {
	buf := make([]Message, 0, journalChunk)
	for {
		buf = buf[:0]
		rows, err := db.r.Query(`SELECT pos, topic, payload, received, dedup FROM journal
			WHERE pos > ? ORDER BY pos LIMIT ?`, int64(after), journalChunk)
		if err != nil {
			return classify("read journal", err)
		}
		for rows.Next() {
			var m Message
			var pos, recv int64
			var dedup sql.NullString
			if err := rows.Scan(&pos, &m.Topic, &m.Payload, &recv, &dedup); err != nil {
				rows.Close()
				return classify("read journal", err)
			}
			m.Pos, m.Received, m.Dedup = uint64(pos), fromNanos(recv), dedup.String
			if m.Payload == nil {
				m.Payload = []byte{} // SQLite hands back an empty blob as nil
			}
			buf = append(buf, m)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return classify("read journal", err)
		}
		for _, m := range buf {
			if err := fn(m); err != nil {
				return err
			}
		}
		if len(buf) < journalChunk {
			return nil
		}
		after = buf[len(buf)-1].Pos
	}
}

// JournalLen is the number of journaled messages not yet covered by a
// checkpoint (rows it covers wait for PruneJournal and do not count).
func (db *DB) JournalLen() (int, error) {
	db.wmu.Lock()
	cp := db.cpPos
	db.wmu.Unlock()
	var n int
	if err := db.r.QueryRow("SELECT count(*) FROM journal WHERE pos > ?", int64(cp)).Scan(&n); err != nil {
		return 0, classify("count journal", err)
	}
	return n, nil
}

// LastPos is the position of the last journaled message (or of the
// checkpoint, when the journal is empty): the next Append starts after it.
func (db *DB) LastPos() uint64 {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	return db.lastPos
}
