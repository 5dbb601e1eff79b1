package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/config"
	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/engine"
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/rules"
	"github.com/vigil-gw/vigil/store"
)

const benchRules = `
rules:
  - name: hot
    from: sensors/{device}/temperature
    where: temperature > 80
    key: device
  - name: avg
    from: sensors/{device}/temperature
    key: device
    window: {tumbling: 1m}
    aggregate: {avg: avg(temperature), n: count()}
  - name: rising
    from: sensors/{device}/temperature
    key: device
    window: {sliding: 10m}
    aggregate: {s: slope(temperature), n: count()}
    when: n > 10 && s > 1
  - name: silent
    from: sensors/{device}/#
    key: device
    absent: 5m
`

func benchGateway(b *testing.B, journal bool) *Gateway {
	dir := b.TempDir()
	rd := filepath.Join(dir, "rules")
	os.MkdirAll(rd, 0o755)
	os.WriteFile(filepath.Join(rd, "r.yaml"), []byte(benchRules), 0o644)
	c := config.Default()
	c.State.Path = filepath.Join(dir, "vigil.db")
	c.State.Journal = journal
	c.Rules = []string{rd}
	g, err := New(Options{Config: c, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.db.Close() })
	return g
}

func benchMessages(n, devices int) []conn.Message {
	base := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	msgs := make([]conn.Message, n)
	for i := range msgs {
		t := base.Add(time.Duration(i) * time.Second / time.Duration(devices))
		msgs[i] = conn.Message{
			Topic:    fmt.Sprintf("sensors/dev-%04d/temperature", i%devices),
			Payload:  []byte(fmt.Sprintf(`{"temperature":%.2f,"ts":%q}`, 50+float64(i%37)/3, t.Format(time.RFC3339Nano))),
			QoS:      1,
			ID:       uint16(i),
			Received: t,
		}
	}
	return msgs
}

// BenchmarkPipeline measures the gateway's own path from a received
// message to its alerts — journal commit (or not), ack, decode, every rule
// — in batches as the journal loop forms them under load. With the journal
// off the same path runs without SQLite.
//
//	go test -run '^$' -bench Pipeline -benchtime 50000x ./gateway
func BenchmarkPipeline(b *testing.B) {
	for _, tc := range []struct {
		name    string
		journal bool
		batch   int
	}{{"journal=off", false, 1000}, {"journal=on/batch=1000", true, 1000}, {"journal=on/batch=100", true, 100}, {"journal=on/batch=10", true, 10}} {
		b.Run(tc.name, func(b *testing.B) {
			g := benchGateway(b, tc.journal)
			msgs := benchMessages(b.N, 1000)
			done := make(chan struct{})
			go func() {
				for batch := range g.batches {
					g.process(batch)
				}
				close(done)
			}()
			st0, _ := os.Stat(g.cfg.State.Path)
			_ = st0
			w0 := walBytes(g)
			b.ResetTimer()
			for i := 0; i < len(msgs); i += tc.batch {
				g.commit(msgs[i:min(i+tc.batch, len(msgs))])
			}
			close(g.batches)
			<-done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if tc.journal {
				b.ReportMetric(float64(walBytes(g)-w0)/float64(b.N), "journal-B/msg")
			}
		})
	}
}

// walBytes is how many bytes the state database's files hold now: with
// checkpoints off during the benchmark the WAL grows by what was written.
func walBytes(g *Gateway) int64 {
	var n int64
	for _, suf := range []string{"", "-wal"} {
		if st, err := os.Stat(g.cfg.State.Path + suf); err == nil {
			n += st.Size()
		}
	}
	return n
}

// BenchmarkCheckpoint10kSliding measures a checkpoint of 10,000 keys, each
// with a 1 h sliding window full at one event a minute: snapshot plus the
// SQLite transaction, and its size.
//
//	go test -run '^$' -bench Checkpoint10k -benchtime 3x ./gateway
func BenchmarkCheckpoint10kSliding(b *testing.B) {
	set, err := rules.Parse([]string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(`
rules:
  - name: hour
    from: sensors/{device}/temperature
    key: device
    window: {sliding: 1h}
    aggregate: {avg: avg(temperature), max: max(temperature), s: slope(temperature), n: count()}
    when: n > 1000
`)})
	if err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(set, engine.Options{MaxKeys: 20000})
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	for m := 0; m < 60; m++ {
		for k := 0; k < 10000; k++ {
			t := base.Add(time.Duration(m)*time.Minute + time.Duration(k)*time.Millisecond)
			eng.Process(engine.Message{Topic: fmt.Sprintf("sensors/d%05d/temperature", k),
				Payload: []byte(fmt.Sprintf(`{"temperature":%d,"ts":%q}`, 40+m%7, t.Format(time.RFC3339Nano)))})
		}
	}
	db, err := store.Open(store.Options{Path: filepath.Join(b.TempDir(), "cp.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	size := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		parts, err := eng.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		size = 0
		for _, p := range parts {
			size += len(p)
		}
		// A checkpoint after the state moved on: every part differs.
		parts["engine"] = append(parts["engine"], byte(i))
		parts["rule/hour"] = append(parts["rule/hour"][:len(parts["rule/hour"]):len(parts["rule/hour"])], byte(i))
		if err := db.SaveCheckpoint(store.Checkpoint{Pos: 0, Version: 1, Parts: parts, Taken: base}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/1e6, "MB")
}

// BenchmarkRecovery measures a restart after a crash: open the database,
// restore the checkpoint and replay a journal of 10,000 messages.
//
//	go test -run '^$' -bench Recovery -benchtime 3x ./gateway
func BenchmarkRecovery(b *testing.B) {
	g := benchGateway(b, true)
	msgs := benchMessages(20000, 1000)
	done := make(chan struct{})
	go func() {
		for batch := range g.batches {
			g.process(batch)
		}
		close(done)
	}()
	for i := 0; i < 10000; i += 100 {
		g.commit(msgs[i : i+100])
	}
	close(g.batches)
	<-done // every batch processed: the checkpoint covers them
	g.checkpoint()
	for i := 10000; i < 20000; i += 100 {
		recs := make([]store.Message, 0, 100)
		for _, m := range msgs[i : i+100] {
			recs = append(recs, store.Message{Topic: m.Topic, Payload: m.Payload, Received: m.Received, Dedup: dedupKey(m)})
		}
		if _, err := g.db.Append(recs); err != nil {
			b.Fatal(err)
		}
	}
	cfg := g.cfg
	g.db.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		g2, err := New(Options{Config: cfg, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		if g2.status.Replayed != 10000 {
			b.Fatalf("replayed %d", g2.status.Replayed)
		}
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "ms/recovery")
		g2.db.Close()
	}
}

var _ = context.Background
var _ = event.Firing

// BenchmarkEndToEnd pushes readings through a real broker over TCP into a
// running gateway (journal on, QoS 1) and reports what it sustains, from the
// first publish to the last message processed. Several publishers run at
// once, as devices do.
//
//	go test -run '^$' -bench EndToEnd -benchtime 20000x ./gateway
func BenchmarkEndToEnd(b *testing.B) {
	for _, journal := range []bool{false, true} {
		b.Run(fmt.Sprintf("journal=%v", journal), func(b *testing.B) {
			brk := startBroker(b, "")
			dir := b.TempDir()
			rd := filepath.Join(dir, "rules")
			os.MkdirAll(rd, 0o755)
			os.WriteFile(filepath.Join(rd, "r.yaml"), []byte(benchRules), 0o644)
			c := config.Default()
			c.MQTT.Broker = "tcp://" + brk.Addr()
			c.MQTT.ClientID = fmt.Sprintf("vigil-bench-%v", journal)
			c.State.Path = filepath.Join(dir, "vigil.db")
			c.State.Journal = journal
			c.Rules = []string{rd}
			g, err := New(Options{Config: c, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- g.Run(ctx) }()
			defer func() { cancel(); <-done }()
			waitConnected(b, g)
			const pubs = 4
			msgs := benchMessages(b.N, 1000)
			var clients []*conn.Client
			for p := 0; p < pubs; p++ {
				cl, err := conn.Dial(ctx, conn.Options{Broker: "tcp://" + brk.Addr(), ClientID: fmt.Sprintf("bench-pub-%d-%v", p, journal), Logger: quiet})
				if err != nil {
					b.Fatal(err)
				}
				defer cl.Close()
				clients = append(clients, cl)
			}
			b.ResetTimer()
			errs := make(chan error, pubs)
			for p := 0; p < pubs; p++ {
				go func(p int) {
					for i := p; i < len(msgs); i += pubs {
						if err := clients[p].Publish(msgs[i].Topic, msgs[i].Payload, 1, false); err != nil {
							errs <- err
							return
						}
					}
					errs <- nil
				}(p)
			}
			for p := 0; p < pubs; p++ {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			waitFor(b, g, time.Minute, "every message processed", func() bool { return g.Status().Messages >= uint64(b.N) })
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
