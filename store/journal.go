package store

import (
	"database/sql"
	"math/bits"
	"strings"
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
	// Redelivered says the broker (or, with in-process ingest, the device)
	// flagged the message as possibly sent before (MQTT DUP): only such a
	// message is looked up by its Dedup id, in the journal and among the
	// ids a checkpoint has already covered (Options.DedupWindow). A message
	// not flagged is always appended, even if it repeats an earlier id: a
	// fresh session starts packet ids again, and a sensor may send "21.5"
	// twice.
	Redelivered bool
	// Dup is set by Append for a Redelivered message whose Dedup id is
	// already journaled (in the journal not yet truncated by a checkpoint,
	// or, with Options.DedupWindow, truncated within the window): it was
	// not appended again and Pos is the earlier message's position. The
	// pipeline acks it and does not process it a second time.
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
	orig, err := db.originals(tx, msgs)
	if err != nil {
		return 0, err
	}
	next := db.lastPos
	fresh := msgs
	if orig != nil {
		// Redeliveries of journaled messages are left out, and a message
		// redelivered within the batch finds its original in it too.
		fresh = make([]Message, 0, len(msgs))
		for i := range msgs {
			m := &msgs[i]
			if m.Redelivered && m.Dedup != "" {
				if p, ok := orig[m.Dedup]; ok {
					m.Pos, m.Dup = p, true
					continue
				}
			}
			next++
			m.Pos, m.Dup = next, false
			if m.Dedup != "" {
				orig[m.Dedup] = next
			}
			fresh = append(fresh, *m)
		}
	} else {
		for i := range msgs {
			next++
			msgs[i].Pos, msgs[i].Dup = next, false
		}
	}
	if err := db.insert(tx, fresh); err != nil {
		return 0, err
	}
	return next, tx.Commit()
}

// originals returns the journal positions of the Dedup ids that msgs'
// redelivered messages carry, found in the journal or in dedup_seen (the
// latest position of an id journaled more than once); nil when no message
// is redelivered. Neither table indexes ids (see the schema), so this
// scans both: rare, since only a redelivery asks.
func (db *DB) originals(tx *sql.Tx, msgs []Message) (map[string]uint64, error) {
	var ids []any
	for i := range msgs {
		if msgs[i].Redelivered && msgs[i].Dedup != "" {
			ids = append(ids, msgs[i].Dedup)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	orig := map[string]uint64{}
	tables := []string{"journal"}
	if db.o.DedupWindow > 0 {
		tables = append(tables, "dedup_seen")
	}
	for start := 0; start < len(ids); start += maxLookup {
		chunk := ids[start:min(start+maxLookup, len(ids))]
		in := strings.Repeat(",?", len(chunk))[1:]
		for _, table := range tables {
			rows, err := tx.Query("SELECT dedup, max(pos) FROM "+table+" WHERE dedup IN ("+in+") GROUP BY dedup", chunk...)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var id string
				var pos int64
				if err := rows.Scan(&id, &pos); err != nil {
					rows.Close()
					return nil, err
				}
				orig[id] = max(orig[id], uint64(pos))
			}
			if err := rows.Close(); err != nil {
				return nil, err
			}
		}
	}
	return orig, nil
}

// maxLookup bounds the ids one lookup query carries.
const maxLookup = 500

// insert journals msgs, whose Pos are set, with multi-row INSERTs of up to
// bulkRows rows: one database/sql call per 128 messages instead of one
// each, which was most of the journal's cost per message. The rest of a
// batch goes in with the prepared statements of 64, 32, ... rows.
func (db *DB) insert(tx *sql.Tx, msgs []Message) error {
	args := make([]any, 0, 5*min(len(msgs), bulkRows))
	for len(msgs) > 0 {
		k := bits.Len(uint(min(len(msgs), bulkRows))) - 1 // the largest 1<<k <= len(msgs)
		chunk := msgs[:1<<k]
		msgs = msgs[len(chunk):]
		args = args[:0]
		for i := range chunk {
			m := &chunk[i]
			var dedup any // NULL when unknown
			if m.Dedup != "" {
				dedup = m.Dedup
			}
			payload := m.Payload
			if payload == nil {
				payload = []byte{} // NOT NULL column; an empty payload is valid MQTT
			}
			args = append(args, int64(m.Pos), m.Topic, payload, nanos(m.Received), dedup)
		}
		if _, err := tx.Stmt(db.st.jBulk[k]).Exec(args...); err != nil {
			return err
		}
	}
	return nil
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
