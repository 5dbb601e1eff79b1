package store

import (
	"database/sql"
	"errors"
	"fmt"
	"hash/maphash"
	"time"
)

// Checkpoint is the saved state of all operators and the journal position
// it covers: after a restart the engine restores Parts and replays the
// journal after Pos.
type Checkpoint struct {
	Pos     uint64
	Version int               // the engine's snapshot format version
	Parts   map[string][]byte // "engine", "rule/<name>", …: opaque bytes
	Taken   time.Time
}

// partHash identifies a part's bytes within this process, so SaveCheckpoint
// rewrites only the parts that changed: on an SD card the bytes not written
// are the ones that matter. Two independent 64-bit hashes plus the length
// make an accidental match (a changed part left stale) practically
// impossible.
type partHash struct {
	a, b uint64
	n    int
}

var seedA, seedB = maphash.MakeSeed(), maphash.MakeSeed()

func hashPart(p []byte) partHash {
	return partHash{maphash.Bytes(seedA, p), maphash.Bytes(seedB, p), len(p)}
}

// SaveCheckpoint replaces the checkpoint in one transaction: after a crash
// either the old checkpoint or the new one is there, with the journal after
// it. The journal rows it covers (Pos <= c.Pos) are left for PruneJournal.
// Only parts whose bytes differ from the last saved or loaded checkpoint are
// written. c.Pos must not go backwards nor beyond the journal's head.
func (db *DB) SaveCheckpoint(c Checkpoint) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if c.Pos < db.cpPos {
		return fmt.Errorf("save checkpoint: position %d is before the saved checkpoint's %d", c.Pos, db.cpPos)
	}
	if c.Pos > db.lastPos {
		return fmt.Errorf("save checkpoint: position %d is beyond the journal head %d", c.Pos, db.lastPos)
	}
	hashes := make(map[string]partHash, len(c.Parts))
	for name, p := range c.Parts {
		hashes[name] = hashPart(p)
	}
	if err := db.saveCheckpoint(c, hashes); err != nil {
		// The file holds the old checkpoint, but do not trust the cache to
		// describe it: the next save rewrites every part.
		db.partHashes = nil
		return db.wrap("save checkpoint", err)
	}
	db.cpPos = c.Pos
	db.partHashes = hashes
	return nil
}

func (db *DB) saveCheckpoint(c Checkpoint, hashes map[string]partHash) error {
	tx, err := db.begin(true) // synced: PruneJournal deletes what it covers
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Stmt(db.st.cpUpsert).Exec(int64(c.Pos), c.Version, nanos(c.Taken)); err != nil {
		return err
	}
	old := db.partHashes
	stale := map[string]bool{} // names in the file that c does not have
	if old == nil {
		// Hashes unknown (no LoadCheckpoint yet, or a failed save): write
		// every part, in place. Deleting all rows and inserting them again
		// would push every page through the freelist and write it twice.
		rows, err := tx.Query("SELECT name FROM checkpoint_part")
		if err != nil {
			return err
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return err
			}
			if _, ok := c.Parts[name]; !ok {
				stale[name] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for name := range old {
		if _, ok := c.Parts[name]; !ok {
			stale[name] = true
		}
	}
	up := tx.Stmt(db.st.partUpsert)
	for name, p := range c.Parts {
		if h, ok := old[name]; ok && h == hashes[name] {
			continue
		}
		if p == nil {
			p = []byte{}
		}
		if _, err := up.Exec(name, p); err != nil {
			return err
		}
	}
	del := tx.Stmt(db.st.partDel)
	for name := range stale {
		if _, err := del.Exec(name); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// PruneJournal deletes the journal's segment files that the saved
// checkpoint covers whole (and, with DedupWindow, that hold nothing
// received within it) and returns how many messages they held. Deleting a
// file writes nothing but the directory, whatever it held.
//
// The checkpoint is committed with a sync (SaveCheckpoint), so no power cut
// can bring back an older checkpoint that needs what this deletes.
func (db *DB) PruneJournal() (int, error) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	var keepSince int64
	if w := db.o.DedupWindow; w > 0 {
		keepSince = db.now().Add(-w).UnixNano()
	}
	n, err := db.log.prune(db.cpPos, keepSince)
	if err != nil {
		return n, db.wrap("prune journal", err)
	}
	return n, nil
}

// LoadCheckpoint returns the saved checkpoint; ok is false when there is
// none yet.
func (db *DB) LoadCheckpoint() (c Checkpoint, ok bool, err error) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	// Through the writer, under the write lock: what is read is exactly
	// what the file holds, so the part hashes can be trusted.
	tx, err := db.w.Begin()
	if err != nil {
		return c, false, fmt.Errorf("load checkpoint: %w", err)
	}
	defer tx.Rollback()
	var pos, taken int64
	switch err := tx.QueryRow("SELECT pos, version, taken FROM checkpoint WHERE id = 1").Scan(&pos, &c.Version, &taken); {
	case errors.Is(err, sql.ErrNoRows):
		db.partHashes = map[string]partHash{}
		return Checkpoint{}, false, nil
	case err != nil:
		return c, false, fmt.Errorf("load checkpoint: %w", err)
	}
	c.Pos, c.Taken = uint64(pos), fromNanos(taken)
	rows, err := tx.Query("SELECT name, data FROM checkpoint_part")
	if err != nil {
		return c, false, fmt.Errorf("load checkpoint parts: %w", err)
	}
	defer rows.Close()
	c.Parts = make(map[string][]byte)
	hashes := make(map[string]partHash)
	for rows.Next() {
		var name string
		var data []byte
		if err := rows.Scan(&name, &data); err != nil {
			return c, false, fmt.Errorf("load checkpoint parts: %w", err)
		}
		if data == nil {
			data = []byte{}
		}
		c.Parts[name] = data
		hashes[name] = hashPart(data)
	}
	if err := rows.Err(); err != nil {
		return c, false, fmt.Errorf("load checkpoint parts: %w", err)
	}
	db.partHashes = hashes
	return c, true, nil
}
