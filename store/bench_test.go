package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// wchar is the bytes this process has passed to write(2) so far (Linux):
// what SQLite wrote to the WAL and, at WAL checkpoints, to the main file.
// It is the figure that wears an SD card. ok is false elsewhere.
func wchar() (n int64, ok bool) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "wchar: "); found {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

func fileBytes(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// BenchmarkAppend journals ~100-byte messages with a Dedup id as the
// gateway makes one (packet id and a hash: random, not ordered) in batches
// of 1 to 1,000 per transaction.
func BenchmarkAppend(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 100)
	for _, syncMode := range []string{"NORMAL", "FULL"} {
		for _, size := range []int{1, 10, 100, 1000} {
			b.Run(fmt.Sprintf("sync=%s/batch=%d", syncMode, size), func(b *testing.B) {
				db := openTest(b, Options{Synchronous: syncMode})
				batch := make([]Message, size)
				w0, wok := wchar()
				var seq int
				for b.Loop() {
					for i := range batch {
						seq++
						h := sha256.Sum256(strconv.AppendInt(nil, int64(seq), 10))
						batch[i] = Message{Topic: "sensors/pump1/temperature", Payload: payload,
							Received: time.Unix(0, int64(seq)), Dedup: strconv.Itoa(seq%65535) + ":" + hex.EncodeToString(h[:12])}
					}
					if _, err := db.Append(batch); err != nil {
						b.Fatal(err)
					}
				}
				msgs := float64(b.N * size)
				b.ReportMetric(msgs/b.Elapsed().Seconds(), "msgs/s")
				if w1, ok := wchar(); ok && wok {
					b.ReportMetric(float64(w1-w0)/msgs, "written-B/msg")
				}
				b.ReportMetric(float64(fileBytes(db.o.Path))/msgs, "file-B/msg")
			})
		}
	}
}

// BenchmarkSaveCheckpoint saves 10,000 parts of ~2 KB (20 MB of state):
//   - all: every part changed since the last checkpoint (the worst case);
//   - 1pct: 100 parts changed (the usual case: most keys are idle);
//   - 1pct-nohash: as 1pct, but without the part hashes (the first save
//     after a start without LoadCheckpoint): every part is rewritten in
//     place, and SQLite skips writing the pages whose bytes did not change.
func BenchmarkSaveCheckpoint(b *testing.B) {
	const nParts, partSize = 10_000, 2048
	for _, mode := range []string{"all", "1pct", "1pct-nohash"} {
		b.Run(mode, func(b *testing.B) {
			db := openTest(b, Options{})
			parts := make(map[string][]byte, nParts)
			for i := 0; i < nParts; i++ {
				p := bytes.Repeat([]byte{byte(i)}, partSize)
				copy(p, fmt.Sprint(i))
				parts[fmt.Sprint("rule/r", i)] = p
			}
			if err := db.SaveCheckpoint(Checkpoint{Parts: parts}); err != nil {
				b.Fatal(err)
			}
			w0, wok := wchar()
			gen := 0
			for b.Loop() {
				gen++
				changed := nParts / 100
				if mode == "all" {
					changed = nParts
				}
				if mode == "1pct-nohash" {
					db.partHashes = nil
				}
				for i := 0; i < changed; i++ {
					name := fmt.Sprint("rule/r", (gen*97+i*101)%nParts)
					p := bytes.Clone(parts[name])
					copy(p[100:], fmt.Sprint("gen", gen))
					parts[name] = p
				}
				if err := db.SaveCheckpoint(Checkpoint{Parts: parts, Taken: time.Unix(int64(gen), 0)}); err != nil {
					b.Fatal(err)
				}
			}
			if w1, ok := wchar(); ok && wok {
				b.ReportMetric(float64(w1-w0)/float64(b.N)/1e6, "written-MB/op")
			}
			b.ReportMetric(float64(fileBytes(db.o.Path))/1e6, "file+wal-MB")
		})
	}
}

// BenchmarkOutbox runs the forwarder's cycle: Put a batch of alerts, read
// them with Pending and acknowledge them with Delivered.
func BenchmarkOutbox(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
			db := openTest(b, Options{})
			batch := make([]event.Alert, size)
			ids := make([]string, size)
			t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
			var seq int
			for b.Loop() {
				for i := range batch {
					seq++
					batch[i] = testAlert("", "warning", t0.Add(time.Duration(seq)*time.Second))
					batch[i].ID = event.AlertID(batch[i].Rule, batch[i].Key, batch[i].State, batch[i].Time)
				}
				if _, err := db.Put(batch); err != nil {
					b.Fatal(err)
				}
				p, err := db.Pending(size)
				if err != nil || len(p) != size {
					b.Fatalf("pending %d, %v", len(p), err)
				}
				for i := range p {
					ids[i] = p[i].ID
				}
				if err := db.Delivered(ids); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "alerts/s")
		})
	}
}

// BenchmarkHistory queries a history of 100,000 alerts (half the default
// cap) the way the UI does, and measures Open on that file (quick_check
// reads every page).
func BenchmarkHistory(b *testing.B) {
	const rows = 100_000
	db := openTest(b, Options{Synchronous: "NORMAL"})
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	batch := make([]event.Alert, 0, 1000)
	for i := 0; i < rows; i++ {
		a := testAlert(fmt.Sprint("id", i), []string{"info", "warning", "critical"}[i%3], t0.Add(time.Duration(i)*time.Second))
		a.Rule = fmt.Sprint("rule", i%20)
		a.Key = fmt.Sprint("dev", i%500)
		batch = append(batch, a)
		if len(batch) == cap(batch) {
			if _, err := db.Put(batch); err != nil {
				b.Fatal(err)
			}
			if err := db.Delivered(ids(batch)); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for _, q := range []struct {
		name string
		q    Query
	}{
		{"latest", Query{Limit: 100}},
		{"rule", Query{Rule: "rule7", Limit: 100}},
		{"key", Query{Key: "dev42", Limit: 100}},
		{"rare-key+severity", Query{Key: "dev42", Severity: "info", Limit: 100}},
		{"time-range", Query{Since: t0.Add(50_000 * time.Second), Until: t0.Add(50_100 * time.Second), Limit: 100}},
		{"page-deep", Query{Limit: 100, Before: 1000}},
	} {
		b.Run("query="+q.name, func(b *testing.B) {
			for b.Loop() {
				if h, err := db.History(q.q); err != nil || len(h) == 0 {
					b.Fatalf("%d entries, %v", len(h), err)
				}
			}
		})
	}
	b.Run("open", func(b *testing.B) {
		path := db.o.Path
		db.Close()
		for b.Loop() {
			d, err := Open(Options{Path: path})
			if err != nil {
				b.Fatal(err)
			}
			d.Close()
		}
		b.ReportMetric(float64(fileBytes(path))/1e6, "file-MB")
	})
}

// BenchmarkAppendRedelivered: the cost of a batch of 100 redeliveries (DUP)
// looked up in a journal of 100,000 messages and a dedup window of as many,
// which no index serves (see the schema): a scan of both, done only for a
// batch with a redelivery in it.
func BenchmarkAppendRedelivered(b *testing.B) {
	db := openTest(b, Options{Synchronous: "NORMAL", DedupWindow: time.Hour})
	mk := func(seq int) Message {
		h := sha256.Sum256(strconv.AppendInt(nil, int64(seq), 10))
		return Message{Topic: "sensors/pump1/temperature", Payload: []byte("21.5"), Received: time.Now(),
			Dedup: strconv.Itoa(seq%65535) + ":" + hex.EncodeToString(h[:12])}
	}
	seq := 0
	fill := func() {
		batch := make([]Message, 1000)
		for range 100 {
			for i := range batch {
				seq++
				batch[i] = mk(seq)
			}
			if _, err := db.Append(batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	fill()
	if err := db.SaveCheckpoint(Checkpoint{Pos: db.LastPos()}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.PruneJournal(); err != nil {
		b.Fatal(err)
	}
	fill() // 100,000 in dedup_seen, 100,000 in the journal
	batch := make([]Message, 100)
	for b.Loop() {
		for i := range batch {
			batch[i] = mk(1 + (i*1999)%seq)
			batch[i].Redelivered = true
		}
		if n, err := db.Append(batch); err != nil || n != 0 {
			b.Fatalf("added %d, %v", n, err)
		}
	}
}

// BenchmarkPutWindowBurst puts the alerts of 1,000 keys' windows closing
// at the same time, as a tumbling window rule does at each boundary: Put's
// check that an id is new looks it up by (time, id).
func BenchmarkPutWindowBurst(b *testing.B) {
	db := openTest(b, Options{})
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	batch := make([]event.Alert, 1000)
	for n := 0; b.Loop(); n++ {
		end := t0.Add(time.Duration(n) * 10 * time.Second)
		for i := range batch {
			a := testAlert("", "warning", end)
			a.Key = fmt.Sprintf("dev-%04d", i)
			a.ID = event.AlertID(a.Rule, a.Key, a.State, a.Time)
			batch[i] = a
		}
		if _, err := db.Put(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "alerts/s")
}
