package store

import (
	"database/sql"
	"fmt"
	"math"
	"slices"
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
	return db.appendSync(msgs, true)
}

// AppendNoSync is Append without a sync of its own (SQLite's synchronous
// NORMAL): it survives a crash of the process, and a power cut once the
// next synced commit or WAL checkpoint has written it. For what nobody was
// promised durability (QoS 0 messages): an SD card then sees a sync only
// with the next QoS 1 commit or WAL checkpoint.
func (db *DB) AppendNoSync(msgs []Message) (int, error) {
	return db.appendSync(msgs, false)
}

func (db *DB) appendSync(msgs []Message, durable bool) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	next, err := db.append(msgs, durable)
	if err != nil {
		return 0, db.wrap("append journal", err)
	}
	n := int(next - db.lastPos)
	db.lastPos = next
	return n, nil
}

func (db *DB) append(msgs []Message, durable bool) (uint64, error) {
	orig, err := db.originals(msgs)
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
	if len(fresh) == 0 {
		return next, nil
	}
	sync := durable && db.o.Synchronous == "FULL"
	return next, db.log.appendRecords(fresh, sync)
}

// originals returns the journal positions of the Dedup ids that msgs'
// redelivered messages carry (the latest position of an id journaled more
// than once): among the messages no checkpoint covers yet and, with
// Options.DedupWindow, those received within it. nil when no message is
// redelivered. The log has no index of ids, so this scans it: rare, since
// only a redelivery asks, and bounded by what a checkpoint interval and
// the dedup window hold.
func (db *DB) originals(msgs []Message) (map[string]uint64, error) {
	ids := map[string]struct{}{}
	for i := range msgs {
		if msgs[i].Redelivered && msgs[i].Dedup != "" {
			ids[msgs[i].Dedup] = struct{}{}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var since int64 = math.MaxInt64
	if w := db.o.DedupWindow; w > 0 {
		since = db.now().Add(-w).UnixNano()
	}
	orig := map[string]uint64{}
	err := db.log.originals(ids, func(m *Message) bool {
		return m.Pos > db.cpPos || m.Received.UnixNano() >= since
	}, orig)
	return orig, err
}

// Journal calls fn for every journaled message with Pos > after that no
// checkpoint covers, in position order. It stops at the first error fn
// returns and returns it. fn may append to the journal meanwhile (it reads
// what was there when it began).
func (db *DB) Journal(after uint64, fn func(Message) error) error {
	for {
		db.wmu.Lock()
		segs := slices.Clone(db.log.segs)
		after = max(after, db.cpPos)
		head := db.log.last()
		db.wmu.Unlock()
		if head <= after {
			return nil
		}
		err := read(segs, after, func(m Message) error {
			after = m.Pos
			return fn(m)
		})
		if err != nil || after < head {
			return err // an error, or the rest was pruned meanwhile
		}
	}
}

// JournalLen is the number of journaled messages not yet covered by a
// checkpoint (rows it covers wait for PruneJournal and do not count).
func (db *DB) JournalLen() (int, error) {
	db.wmu.Lock()
	cp := db.cpPos
	db.wmu.Unlock()
	n := 0
	err := db.Journal(cp, func(Message) error { n++; return nil })
	return n, err
}

// LastPos is the position of the last journaled message (or of the
// checkpoint, when the journal is empty): the next Append starts after it.
func (db *DB) LastPos() uint64 {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	return db.lastPos
}

// moveTableJournal moves what an older vigil left in the journal table
// (schema 1–3 kept the journal in SQLite) into the log, once, at Open:
// the messages no checkpoint covers are appended with their positions and
// synced, then the table is emptied. A crash in between appends them again
// only past what the log already holds.
func (db *DB) moveTableJournal() error {
	var n int
	if err := db.w.QueryRow("SELECT count(*) FROM journal").Scan(&n); err != nil {
		return fmt.Errorf("read journal table: %w", err)
	}
	if n == 0 {
		return nil
	}
	after := max(db.cpPos, db.log.last())
	rows, err := db.w.Query(`SELECT pos, topic, payload, received, dedup FROM journal WHERE pos > ? ORDER BY pos`, int64(after))
	if err != nil {
		return fmt.Errorf("read journal table: %w", err)
	}
	var msgs []Message
	for rows.Next() {
		var m Message
		var pos, recv int64
		var dedup sql.NullString
		if err := rows.Scan(&pos, &m.Topic, &m.Payload, &recv, &dedup); err != nil {
			rows.Close()
			return fmt.Errorf("read journal table: %w", err)
		}
		m.Pos, m.Received, m.Dedup = uint64(pos), fromNanos(recv), dedup.String
		msgs = append(msgs, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read journal table: %w", err)
	}
	for len(msgs) > 0 {
		k := 1
		for k < len(msgs) && k < 4096 && msgs[k].Pos == msgs[k-1].Pos+1 {
			k++
		}
		if err := db.log.appendRecords(msgs[:k], true); err != nil {
			return fmt.Errorf("move journal table into the log: %w", err)
		}
		msgs = msgs[k:]
	}
	if _, err := db.w.Exec("DELETE FROM journal; DELETE FROM dedup_seen"); err != nil {
		return fmt.Errorf("empty the journal table: %w", err)
	}
	return nil
}
