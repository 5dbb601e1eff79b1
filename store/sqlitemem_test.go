package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/vigil-gw/vigil/event"
)

// sqliteMem is the process's anonymous memory beyond what the Go runtime
// has mapped, now and at most since the last reset (sampled by
// gatewayWorkload): SQLite's, which modernc's libc allocates.
func sqliteMem(reset bool) (used, high int64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/smaps_rollup")
	var anon int64
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "Anonymous:" {
			anon, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	used = anon*1024 - int64(ms.Sys-ms.HeapReleased)
	if reset {
		peak = 0
	}
	peak = max(peak, used)
	return used, peak
}

var peak int64

func gatewayWorkload(t testing.TB, db *DB) {
	r := rand.New(rand.NewPCG(1, 2))
	parts := map[string][]byte{}
	for i := range 6 {
		parts[fmt.Sprintf("rule/r%d", i)] = make([]byte, 1<<20)
	}
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	msgs := make([]Message, 200)
	seq := 0
	for round := range 180 * 2000 / len(msgs) {
		for i := range msgs {
			seq++
			msgs[i] = Message{Topic: fmt.Sprintf("sensors/pump-%05d/temperature", seq%10000),
				Payload:  fmt.Appendf(nil, `{"temperature":%.2f,"ts":%d}`, 20+r.NormFloat64(), seq),
				Received: t0.Add(time.Duration(seq) * 500 * time.Microsecond)}
		}
		if _, err := db.Append(msgs); err != nil {
			t.Fatal(err)
		}
		if round%20 == 0 {
			sqliteMem(false)
		}
		if round%100 == 99 { // every 10 s at 2,000 msg/s
			for _, p := range parts {
				for j := range 4096 {
					p[r.IntN(len(p))] = byte(j)
				}
			}
			if err := db.SaveCheckpoint(Checkpoint{Pos: db.LastPos(), Version: 1, Parts: parts, Taken: t0}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.PruneJournal(); err != nil {
				t.Fatal(err)
			}
		}
		if round%600 == 599 { // every minute: a tumbling window's results
			alerts := make([]event.Alert, 10000)
			for i := range alerts {
				alerts[i] = event.Alert{ID: fmt.Sprintf("a%d-%d", round, i), Rule: "avg_1m", Key: fmt.Sprintf("pump-%05d", i),
					State: "firing", Severity: "warning", Time: t0, Values: map[string]any{"avg": 20.5, "max": 21.0, "n": 12}, Topic: "vigil/x/alerts/avg_1m"}
			}
			if _, err := db.Put(alerts); err != nil {
				t.Fatal(err)
			}
			for {
				p, err := db.PendingExcept(100, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(p) == 0 {
					break
				}
				ids := make([]string, len(p))
				for i := range p {
					ids[i] = p[i].ID
				}
				if err := db.Delivered(ids); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// BenchmarkSQLiteMemory: what SQLite holds outside the Go heap (process
// anonymous memory minus what the Go runtime has mapped) after 90 s of a
// 10,000-device gateway at 2,000 msg/s: journal batches, a 6 MB checkpoint
// every 10 s, 10,000 tumbling results a minute through the outbox. The
// timed loop only satisfies the framework.
//
//	go test -run '^$' -bench SQLiteMemory -benchtime 1x ./store
func BenchmarkSQLiteMemory(b *testing.B) {
	db := openTest(b, Options{})
	u0, _ := sqliteMem(true)
	gatewayWorkload(b, db)
	used, high := sqliteMem(false)
	b.ReportMetric(float64(used-u0)/1e6, "MB")
	b.ReportMetric(float64(high-u0)/1e6, "peak-MB")
	for range b.N {
	}
	b.ReportMetric(0, "ns/op")
}

// The page cache of every connection is bounded below SQLite's default of
// 2,000 KiB each: it lives outside the Go heap, and GOMEMLIMIT does not see it.
func TestCacheSize(t *testing.T) {
	db := openTest(t, Options{})
	check := func(name string, c *sql.Conn, want int) {
		t.Helper()
		var got int
		if err := c.QueryRowContext(context.Background(), "PRAGMA cache_size").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != -want {
			t.Errorf("%s: cache_size %d, want -%d (KiB)", name, got, want)
		}
	}
	w, err := db.w.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	check("writer", w, 1024)
	w.Close()
	var rs []*sql.Conn
	for range 4 {
		r, err := db.r.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		check("reader", r, 256)
		rs = append(rs, r)
	}
	for _, r := range rs {
		r.Close()
	}
}
