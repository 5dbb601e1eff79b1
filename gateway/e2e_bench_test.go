package gateway

// End-to-end benchmarks with the ten rules of cmd/vigil-load/rules10.yaml:
// publishers (4 MQTT connections, QoS 0 or QoS 1 with up to 4,000 messages
// in flight each: 16 for each of their 250 devices, as firmware-sim does) → broker over TCP → vigil's subscriber →
// journal → engine → outbox → forwarder → the same broker upstream. Nothing
// here asserts a time; they run only with -bench.
//
//	go test -run '^$' -bench 'E2EThroughput' -benchtime 200000x -count 3 ./gateway
//	go test -run '^$' -bench 'E2ELatency' -benchtime 1x -count 3 ./gateway
//	go test -run '^$' -bench 'E2EStateMemory10k' -benchtime 1x ./gateway
//
// `make bench-e2e` runs them (mk/bench.mk). The real binary with the real simulator is measured by cmd/vigil-load.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-gw/vigil/broker"
	"github.com/vigil-gw/vigil/config"
	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/internal/freeport"
	"github.com/vigil-gw/vigil/store"
)

const (
	e2eRulesPath = "../cmd/vigil-load/rules10.yaml"
	e2eDevices   = 1000
	e2ePubs      = 4                         // publisher connections
	e2eInflight  = 16 * e2eDevices / e2ePubs // QoS 1 messages awaiting PUBACK per connection (firmware-sim's window)
	e2eMarkEvery = 50                        // one reading in 50 carries a latency mark
)

type e2eRig struct {
	brk    *broker.Broker
	blog   *countHandler
	g      *Gateway
	cancel context.CancelFunc
	done   chan error
}

// e2eConfig is the gateway config of the end-to-end benchmarks: the ten
// rules copied into a temporary directory, state in it too.
func e2eConfig(b *testing.B, journal bool) *config.Config {
	b.Helper()
	rulesYAML, err := os.ReadFile(e2eRulesPath)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	rd := filepath.Join(dir, "rules")
	os.MkdirAll(rd, 0o755)
	os.WriteFile(filepath.Join(rd, "rules10.yaml"), rulesYAML, 0o644)
	c := config.Default()
	c.Gateway = "bench"
	c.State.Path = filepath.Join(dir, "vigil.db")
	c.State.Journal = journal
	c.Rules = []string{rd}
	return c
}

// e2eIngests are the ingest modes the benchmarks compare: vigil
// subscribing to a broker over TCP ("sub"), and vigil's embedded broker with
// in-process ingest ("inproc"). VIGIL_E2E_INGEST=sub or inproc picks one.
func e2eIngests() []string {
	if m := os.Getenv("VIGIL_E2E_INGEST"); m != "" {
		return []string{m}
	}
	return []string{"sub", "inproc"}
}

// startE2E starts a broker and a gateway with the ten rules, its upstream
// on the same broker (topic vigil/bench/alerts/<rule>). With ingest
// "inproc" the broker is the gateway's own.
func startE2E(b *testing.B, journal bool, ingest, name string) *e2eRig {
	b.Helper()
	blog := &countHandler{}
	c := e2eConfig(b, journal)
	var brk *broker.Broker
	if ingest == "inproc" {
		c.Broker.Listen = "127.0.0.1:0"
		c.MQTT.InProcess = true
	} else {
		var err error
		brk, err = broker.New(broker.Options{Listen: "127.0.0.1:0", Logger: slog.New(blog)})
		if err == nil {
			err = brk.Start()
		}
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { brk.Close() })
		c.MQTT.Broker = "tcp://" + brk.Addr()
		c.MQTT.ClientID = "vigil-e2e-" + name
	}
	c.Upstream.ClientID = "vigil-e2e-up-" + name
	c.Upstream.Topic = "vigil/{gateway}/alerts/{rule}"
	var g *Gateway
	var err error
	if brk != nil {
		c.Upstream.Broker = "tcp://" + brk.Addr()
		g, err = New(Options{Config: c, Logger: quiet})
	} else {
		// Upstream is the embedded broker too, whose port is known only
		// once it listens: a free one is picked first.
		if c.Broker.Listen, err = freeport.Addr("127.0.0.1"); err != nil {
			b.Fatal(err)
		}
		c.Upstream.Broker = "tcp://" + c.Broker.Listen
		g, err = New(Options{Config: c, Logger: slog.New(blog)})
	}
	if err != nil {
		b.Fatal(err)
	}
	if brk == nil {
		brk = g.Broker()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &e2eRig{brk: brk, blog: blog, g: g, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- g.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-r.done })
	waitConnected(b, g)
	return r
}

// waitProcessed waits, on g's status, until g has processed n messages in
// all, or none more for idle: then it returns false.
func waitProcessed(g *Gateway, n uint64, idle time.Duration) bool {
	t := time.NewTimer(idle)
	defer t.Stop()
	last := g.Status().Messages
	for {
		changed := g.statusSig.changed()
		m := g.Status().Messages
		if m >= n {
			return true
		}
		if m != last {
			last = m
			t.Reset(idle)
		}
		select {
		case <-changed:
		case <-t.C:
			return false
		}
	}
}

// countHandler counts the broker's warnings (it logs a message it drops,
// e.g. "client store quota reached", at Warn; the broker passes on at most a
// burst of 10 per 10 s) and keeps the first one.
type countHandler struct {
	n     atomic.Int64
	mu    sync.Mutex
	first string
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return nil
	}
	h.n.Add(1)
	h.mu.Lock()
	if h.first == "" {
		h.first = r.Message
		r.Attrs(func(a slog.Attr) bool { h.first += " " + a.String(); return true })
	}
	h.mu.Unlock()
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// e2ePublisher is one device connection. QoS 1 messages are pipelined: up to
// e2eInflight await their PUBACK, as a real device fleet behind one
// connection (or firmware-sim) does.
type e2ePublisher struct {
	c    paho.Client
	qos  byte
	ring []paho.Token
	head int
	errs atomic.Int64
}

// dialE2EPubs connects the n publishers of one benchmark run.
func dialE2EPubs(b *testing.B, addr, id string, qos byte, n int) []*e2ePublisher {
	pubs := make([]*e2ePublisher, n)
	for p := range pubs {
		pubs[p] = dialE2E(b, addr, fmt.Sprintf("%s-pub-%d", id, p), qos)
	}
	return pubs
}

func dialE2E(b *testing.B, addr, id string, qos byte) *e2ePublisher {
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetCleanSession(true).SetAutoReconnect(false).SetMaxResumePubInFlight(e2eInflight).
		SetWriteTimeout(10 * time.Second).
		// As firmware-sim: back-to-back messages share a write(2), so the
		// load generator takes less of the CPU it shares with the gateway.
		SetCustomOpenConnectionFn(conn.DialCoalesced)
	c := paho.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.Fatalf("publisher connect: %v", t.Error())
	}
	p := &e2ePublisher{c: c, qos: qos}
	b.Cleanup(func() { c.Disconnect(100) })
	return p
}

func (p *e2ePublisher) publish(topic string, payload []byte) {
	t := p.c.Publish(topic, p.qos, false, payload)
	if p.qos == 0 {
		return
	}
	if len(p.ring) < e2eInflight {
		p.ring = append(p.ring, t)
		return
	}
	p.settle(p.ring[p.head])
	p.ring[p.head] = t
	p.head = (p.head + 1) % e2eInflight
}

func (p *e2ePublisher) settle(t paho.Token) {
	if !t.WaitTimeout(30*time.Second) || t.Error() != nil {
		p.errs.Add(1)
	}
}

// flush waits for every outstanding PUBACK.
func (p *e2ePublisher) flush() {
	for _, t := range p.ring {
		p.settle(t)
	}
	p.ring, p.head = p.ring[:0], 0
}

var e2eTopics = func() []string {
	ts := make([]string, e2eDevices)
	for i := range ts {
		ts[i] = fmt.Sprintf("sensors/dev-%04d/temperature", i)
	}
	return ts
}()

// e2ePayload is reading i: a temperature around 50 °C with noise, a spike to
// 95 °C once in 997 readings (hot fires, then its cooldown holds), stamped
// with the current time in Unix ms; mark > 0 adds the latency mark.
func e2ePayload(buf []byte, i int, now time.Time, mark int) []byte {
	dev := i % e2eDevices
	v := 50 + 5*math.Sin(float64(dev)) + float64((i*7919)%100)/50
	if i%997 == 0 {
		v = 95
	}
	buf = append(buf[:0], `{"temperature":`...)
	buf = strconv.AppendFloat(buf, v, 'f', 2, 64)
	buf = append(buf, `,"ts":`...)
	buf = strconv.AppendInt(buf, now.UnixMilli(), 10)
	if mark > 0 {
		buf = append(buf, `,"mark":`...)
		buf = strconv.AppendInt(buf, int64(mark), 10)
	}
	return append(buf, '}')
}

// BenchmarkE2EThroughput: b.N readings from 1,000 devices, as fast as four
// publisher connections get them into the broker, until the gateway has
// processed them all (QoS 1) or has stopped receiving (QoS 0: the broker may
// drop QoS 0 messages for a slow subscriber; they are reported as lost).
// msgs/s is processed messages over the time from the first publish to the
// last message processed.
//
//	go test -run '^$' -bench E2EThroughput -benchtime 200000x -count 3 ./gateway
func BenchmarkE2EThroughput(b *testing.B) {
	for _, ingest := range e2eIngests() {
		for _, qos := range []byte{0, 1} {
			for _, journal := range []bool{true, false} {
				name := fmt.Sprintf("ingest=%s/qos=%d/journal=%v", ingest, qos, map[bool]string{true: "on", false: "off"}[journal])
				b.Run(name, func(b *testing.B) {
					id := fmt.Sprintf("tp-%s-%d-%v-%d", ingest, qos, journal, time.Now().UnixNano())
					r := startE2E(b, journal, ingest, id)
					pubs := dialE2EPubs(b, r.brk.Addr(), id, qos, e2ePubs)
					m0 := r.g.Status().Messages
					cpu0 := processCPU()
					b.ResetTimer()
					t0 := time.Now()
					var wg sync.WaitGroup
					for p := range pubs {
						wg.Add(1)
						go func(p int) {
							defer wg.Done()
							var buf []byte
							for i := p; i < b.N; i += len(pubs) {
								// paho keeps the payload until it is written: a fresh slice each time.
								buf = e2ePayload(make([]byte, 0, 64), i, time.Now(), 0)
								pubs[p].publish(e2eTopics[i%e2eDevices], buf)
							}
							pubs[p].flush()
						}(p)
					}
					wg.Wait()
					published := time.Since(t0)
					// Wait for the gateway: all of them, or no progress for 5 s.
					waitProcessed(r.g, m0+uint64(b.N), 5*time.Second)
					processed := r.g.Status().Messages - m0
					elapsed := time.Since(t0)
					if processed < uint64(b.N) {
						elapsed -= 5 * time.Second // the idle wait
					}
					b.StopTimer()
					var errs int64
					for _, p := range pubs {
						errs += p.errs.Load()
					}
					b.ReportMetric(float64(processed)/elapsed.Seconds(), "msgs/s")
					if processed > 0 {
						b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(processed), "cpu-µs/msg")
					}
					b.ReportMetric(float64(b.N)/published.Seconds(), "pub-msgs/s")
					b.ReportMetric(float64(uint64(b.N)-processed)/float64(b.N)*100, "lost-%")
					if errs > 0 {
						b.ReportMetric(float64(errs), "pub-errors")
					}
					st := r.g.Status()
					ss := r.g.Subscriber().Stats()
					b.ReportMetric(float64(st.Alerts), "alerts")
					b.ReportMetric(float64(ss.Dropped), "sub-dropped")
					b.ReportMetric(float64(ss.Reconnects), "sub-reconnects")
					if n := r.blog.n.Load(); n > 0 {
						b.ReportMetric(float64(n), "broker-warnings")
						b.Logf("broker: %d warnings logged (rate-limited), first: %s", n, r.blog.first)
					}
				})
			}
		}
	}
}

// BenchmarkE2ELatency publishes 5,000 readings/s from 1,000 devices for
// VIGIL_E2E_SECONDS (default 15) seconds; one reading in 50 carries a mark
// that the `marked` rule turns into an alert. An upstream subscriber on the
// same broker takes each marked alert's arrival time minus the time just
// before its reading was published: publish → broker → subscriber →
// journal commit (fsync) → engine → outbox commit (fsync) → forwarder →
// broker → subscriber. The whole run is one iteration; use -benchtime 1x.
//
//	go test -run '^$' -bench E2ELatency -benchtime 1x -count 3 ./gateway
func BenchmarkE2ELatency(b *testing.B) {
	secs := 15.0
	if s, err := strconv.ParseFloat(os.Getenv("VIGIL_E2E_SECONDS"), 64); err == nil && s > 0 {
		secs = s
	}
	rate := 5000.0
	if s, err := strconv.ParseFloat(os.Getenv("VIGIL_E2E_RATE"), 64); err == nil && s > 0 {
		rate = s
	}
	for _, tc := range []struct {
		qos     byte
		journal bool
	}{{1, true}, {0, true}, {1, false}} {
		for _, ingest := range e2eIngests() {
			name := fmt.Sprintf("ingest=%s/qos=%d/journal=%v", ingest, tc.qos, map[bool]string{true: "on", false: "off"}[tc.journal])
			b.Run(name, func(b *testing.B) {
				id := fmt.Sprintf("lat-%s-%d-%v-%d", ingest, tc.qos, tc.journal, time.Now().UnixNano())
				r := startE2E(b, tc.journal, ingest, id)
				total := int(rate * secs)
				marks := (total + e2eMarkEvery - 1) / e2eMarkEvery
				sent := make([]atomic.Int64, marks+1)
				lat := make([]time.Duration, 0, marks)
				at := make([]time.Time, 0, marks) // send time of lat[i]
				var mu sync.Mutex
				var latSig signal // wakes at each latency measured
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				up, err := conn.Dial(ctx, conn.Options{Broker: "tcp://" + r.brk.Addr(), ClientID: id + "-up", Logger: quiet})
				if err != nil {
					b.Fatal(err)
				}
				defer up.Close()
				var bad atomic.Int64
				err = up.Subscribe("vigil/bench/alerts/marked", 1, func(_ string, payload []byte) {
					now := time.Now()
					var a struct {
						State  string         `json:"state"`
						Values map[string]any `json:"values"`
					}
					if json.Unmarshal(payload, &a) != nil || a.State != "firing" {
						bad.Add(1)
						return
					}
					m, ok := a.Values["mark"].(float64)
					if !ok || int(m) < 1 || int(m) > marks {
						bad.Add(1)
						return
					}
					t := sent[int(m)].Load()
					if t == 0 {
						bad.Add(1)
						return
					}
					mu.Lock()
					lat = append(lat, now.Sub(time.Unix(0, t)))
					at = append(at, time.Unix(0, t))
					mu.Unlock()
					latSig.wake()
				})
				if err != nil {
					b.Fatal(err)
				}
				// VIGIL_E2E_PROBE=1 adds a second subscriber on the sensor
				// topics, at the publishers' QoS, that times the marked readings
				// themselves: publish → broker → a subscriber, without vigil.
				// It adds load (every reading is delivered twice).
				var probe []time.Duration
				if os.Getenv("VIGIL_E2E_PROBE") == "1" {
					pc, err := conn.Dial(ctx, conn.Options{Broker: "tcp://" + r.brk.Addr(), ClientID: id + "-probe", Logger: quiet})
					if err != nil {
						b.Fatal(err)
					}
					defer pc.Close()
					err = pc.Subscribe("sensors/+/temperature", tc.qos, func(_ string, payload []byte) {
						now := time.Now()
						var m struct{ Mark int }
						if json.Unmarshal(payload, &m) != nil || m.Mark < 1 || m.Mark > marks {
							return
						}
						if t := sent[m.Mark].Load(); t != 0 {
							mu.Lock()
							probe = append(probe, now.Sub(time.Unix(0, t)))
							mu.Unlock()
						}
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				pubs := dialE2EPubs(b, r.brk.Addr(), id, tc.qos, e2ePubs)
				cpu0 := processCPU()
				b.ResetTimer()
				t0 := time.Now()
				var wg sync.WaitGroup
				for p := range pubs {
					wg.Add(1)
					go func(p int) {
						defer wg.Done()
						i := p
						tick := time.NewTicker(time.Millisecond) // the schedule's pace
						defer tick.Stop()
						for i < total {
							// Catch up with the schedule, then wait a tick.
							due := int(time.Since(t0).Seconds() * rate)
							for ; i < total && i <= due; i += len(pubs) {
								mark := 0
								if i%e2eMarkEvery == 0 {
									mark = i/e2eMarkEvery + 1
								}
								now := time.Now()
								buf := e2ePayload(make([]byte, 0, 80), i, now, mark)
								if mark > 0 {
									sent[mark].Store(now.UnixNano())
								}
								pubs[p].publish(e2eTopics[i%e2eDevices], buf)
							}
							<-tick.C
						}
						pubs[p].flush()
					}(p)
				}
				wg.Wait()
				pubTook := time.Since(t0)
				// Wait for the stragglers: every mark, or 10 s.
				stragglers := time.NewTimer(10 * time.Second)
			marks:
				for {
					changed := latSig.changed()
					mu.Lock()
					n := len(lat)
					mu.Unlock()
					if n >= marks {
						break
					}
					select {
					case <-changed:
					case <-stragglers.C:
						break marks
					}
				}
				stragglers.Stop()
				waitProcessed(r.g, uint64(total), 2*time.Second)
				b.StopTimer()
				mu.Lock()
				ls := slices.Clone(lat)
				// When the slowest alerts were published (seconds into the run):
				// stalls show as clusters.
				idx := make([]int, len(lat))
				for i := range idx {
					idx[i] = i
				}
				slices.SortFunc(idx, func(x, y int) int { return int(lat[y] - lat[x]) })
				var worst []string
				for _, i := range idx[:min(8, len(idx))] {
					worst = append(worst, fmt.Sprintf("%.0fms@%.2fs", float64(lat[i].Microseconds())/1000, at[i].Sub(t0).Seconds()))
				}
				var slow []int // seconds into the run with an alert slower than 50 ms
				for i := range lat {
					if sec := int(at[i].Sub(t0).Seconds()); lat[i] > 50*time.Millisecond && !slices.Contains(slow, sec) {
						slow = append(slow, sec)
					}
				}
				slices.Sort(slow)
				mu.Unlock()
				b.Logf("slowest: %v; seconds with an alert > 50 ms: %v", worst, slow)
				if len(ls) == 0 {
					b.Fatalf("no marked alert arrived upstream (bad %d)", bad.Load())
				}
				slices.Sort(ls)
				q := func(p float64) float64 {
					return float64(ls[min(len(ls)-1, int(p*float64(len(ls))))].Microseconds()) / 1000
				}
				b.ReportMetric(float64(total)/pubTook.Seconds(), "sent-msgs/s")
				b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(total), "cpu-µs/msg")
				b.ReportMetric(float64(len(ls)), "samples")
				b.ReportMetric(float64(marks-len(ls)), "missing")
				b.ReportMetric(float64(uint64(total)-min(uint64(total), r.g.Status().Messages)), "lost-msgs")
				b.ReportMetric(q(0.50), "p50-ms")
				b.ReportMetric(q(0.90), "p90-ms")
				b.ReportMetric(q(0.99), "p99-ms")
				b.ReportMetric(float64(ls[len(ls)-1].Microseconds())/1000, "max-ms")
				if n := r.blog.n.Load(); n > 0 {
					b.Logf("broker: %d warnings logged (rate-limited), first: %s", n, r.blog.first)
				}
				mu.Lock()
				if len(probe) > 0 {
					ps := slices.Clone(probe)
					slices.Sort(ps)
					pq := func(p float64) float64 {
						return float64(ps[min(len(ps)-1, int(p*float64(len(ps))))].Microseconds()) / 1000
					}
					b.ReportMetric(pq(0.50), "broker-p50-ms")
					b.ReportMetric(pq(0.99), "broker-p99-ms")
					b.Logf("probe (publish → broker → plain subscriber): %d samples, p50 %.1f ms p90 %.1f ms p99 %.1f ms max %.1f ms",
						len(ps), pq(0.5), pq(0.9), pq(0.99), float64(ps[len(ps)-1].Microseconds())/1000)
				}
				mu.Unlock()
				st := r.g.Status()
				// The same without the alerts published from 2 s before the
				// last checkpoint ended until it ended: what the checkpoint's
				// stall of the engine loop costs.
				if cp := st.LastCheckpoint; cp.After(t0) {
					var rest []time.Duration
					mu.Lock()
					for i := range lat {
						if at[i].Before(cp.Add(-2*time.Second)) || at[i].After(cp) {
							rest = append(rest, lat[i])
						}
					}
					mu.Unlock()
					if len(rest) > 0 {
						slices.Sort(rest)
						p99 := float64(rest[min(len(rest)-1, int(0.99*float64(len(rest))))].Microseconds()) / 1000
						b.ReportMetric(p99, "p99-excl-cp-ms")
						b.Logf("%s: without the 2 s before the checkpoint: %d samples, p99 %.1f ms, max %.1f ms", name, len(rest), p99, float64(rest[len(rest)-1].Microseconds())/1000)
					}
				}
				b.Logf("%s: last checkpoint took %s, of which the engine loop waited %s (%d bytes) at %.1fs",
					name, st.CheckpointTook.Round(time.Millisecond), st.CheckpointStall.Round(time.Millisecond), st.CheckpointBytes, st.LastCheckpoint.Sub(t0).Seconds())
				b.Logf("%s: %d msgs in %s (%.0f/s), processed %d, alerts %d, marked received %d/%d, p50 %.1f ms p90 %.1f ms p99 %.1f ms max %.1f ms",
					name, total, pubTook.Round(time.Millisecond), float64(total)/pubTook.Seconds(), st.Messages, st.Alerts, len(ls), marks, q(0.5), q(0.9), q(0.99), float64(ls[len(ls)-1].Microseconds())/1000)
			})
		}
	}
}

// BenchmarkE2EStateMemory10k measures what the ten rules keep in memory for
// 10,000 devices, one reading each every 5 s, after VIGIL_E2E_MINUTES
// (default 15) minutes of event time: the state that `vigil run` holds at
// steady state (the 10-minute sliding window is full after 10 minutes, the
// detector's 1-hour window after an hour). The readings go through the
// gateway's own path (journal off, no broker: the broker's and the MQTT
// clients' memory is measured by cmd/vigil-load) as fast as it takes them;
// then a GC and runtime.MemStats. VIGIL_E2E_HEAPPROFILE=FILE writes a heap
// profile (go tool pprof -top -sample_index=inuse_space FILE).
//
//	go test -run '^$' -bench E2EStateMemory10k -benchtime 1x -timeout 30m ./gateway
func BenchmarkE2EStateMemory10k(b *testing.B) {
	const devices = 10000
	const every = 5 * time.Second
	minutes := 15.0
	if s, err := strconv.ParseFloat(os.Getenv("VIGIL_E2E_MINUTES"), 64); err == nil && s > 0 {
		minutes = s
	}
	c := e2eConfig(b, false)
	// Event time ends now, so the gateway clock closes nothing early.
	start := time.Now().Add(-time.Duration(minutes * float64(time.Minute)))
	g, err := New(Options{Config: c, Logger: quiet, Now: func() time.Time { return start }})
	if err != nil {
		b.Fatal(err)
	}
	defer g.db.Close()
	topics := make([]string, devices)
	for i := range topics {
		topics[i] = fmt.Sprintf("sensors/pump-%05d/temperature", i+1)
	}
	var ms0 runtimeMem
	ms0.read()
	done := make(chan struct{})
	go func() {
		for batch := range g.batches {
			g.process(batch)
		}
		close(done)
	}()
	b.ResetTimer()
	steps := int(minutes * float64(time.Minute) / float64(every))
	batch := make([]conn.Message, 0, 1000)
	n := 0
	for s := 0; s < steps; s++ {
		for d := 0; d < devices; d++ {
			t := start.Add(time.Duration(s)*every + time.Duration(d)*every/devices)
			buf := e2ePayload(make([]byte, 0, 64), s*devices+d, t, 0)
			batch = append(batch, conn.Message{Topic: topics[d], Payload: buf, Received: t})
			if len(batch) == cap(batch) {
				g.commit(batch)
				batch = make([]conn.Message, 0, 1000)
			}
			n++
		}
	}
	if len(batch) > 0 {
		g.commit(batch)
	}
	close(g.batches)
	<-done
	b.StopTimer()
	var ms runtimeMem
	ms.read()
	st := g.eng.Stats()
	b.ReportMetric(float64(n), "readings")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(ms.heapInuse)/1e6, "heap-inuse-MB")
	b.ReportMetric(float64(ms.heapInuse-ms0.heapInuse)/devices, "heap-B/device")
	b.ReportMetric(float64(ms.sys)/1e6, "go-sys-MB")
	b.Logf("%d devices, %.0f min of event time, %d readings, %d alerts: heap in use %.1f MB (%.1f MB before), Go runtime Sys %.1f MB",
		devices, minutes, n, st.Alerts, float64(ms.heapInuse)/1e6, float64(ms0.heapInuse)/1e6, float64(ms.sys)/1e6)
	if p := os.Getenv("VIGIL_E2E_HEAPPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
	}
	runtime.KeepAlive(g)
}

type runtimeMem struct{ heapInuse, sys uint64 }

func (m *runtimeMem) read() {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heapInuse, m.sys = ms.HeapInuse, ms.Sys
}

// BenchmarkE2ECheckpoint splits a checkpoint of the ten rules' state into
// its two halves: the snapshot, which runs on the engine loop and delays
// every message behind it, and the SQLite write, which runs beside it. The
// state is what BenchmarkE2ELatency has at its first checkpoint: 1,000
// devices, 50 readings each (10 s at 5,000 msg/s).
//
//	go test -run '^$' -bench E2ECheckpoint -benchtime 20x ./gateway
func BenchmarkE2ECheckpoint(b *testing.B) {
	c := e2eConfig(b, true)
	start := time.Now().Add(-10 * time.Second)
	g, err := New(Options{Config: c, Logger: quiet, Now: func() time.Time { return start }})
	if err != nil {
		b.Fatal(err)
	}
	defer g.db.Close()
	done := make(chan struct{})
	go func() {
		for batch := range g.batches {
			g.process(batch)
		}
		close(done)
	}()
	batch := make([]conn.Message, 0, 1000)
	for i := 0; i < 50*e2eDevices; i++ {
		t := start.Add(time.Duration(i) * 200 * time.Microsecond)
		batch = append(batch, conn.Message{Topic: e2eTopics[i%e2eDevices], Payload: e2ePayload(nil, i, t, 0), Received: t, QoS: 1, ID: uint16(i)})
		if len(batch) == cap(batch) {
			g.commit(batch)
			batch = make([]conn.Message, 0, 1000)
		}
	}
	close(g.batches)
	<-done
	var snap, write time.Duration
	size := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		parts, err := g.eng.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		// The state moves between two checkpoints: every part differs.
		for name, p := range parts {
			parts[name] = append(p[:len(p):len(p)], byte(i))
		}
		if err := g.db.SaveCheckpoint(store.Checkpoint{Pos: g.lastPos, Version: 1, Parts: parts, Taken: start}); err != nil {
			b.Fatal(err)
		}
		snap += t1.Sub(t0)
		write += time.Since(t1)
		size = 0
		for _, p := range parts {
			size += len(p)
		}
	}
	b.ReportMetric(float64(snap.Microseconds())/1000/float64(b.N), "snapshot-ms")
	b.ReportMetric(float64(write.Microseconds())/1000/float64(b.N), "write-ms")
	b.ReportMetric(float64(size)/1e6, "MB")
}

// processCPU is the CPU time (user and system) this process has used:
// publishers, broker and gateway together. Per message it is a steadier
// figure than wall time on a shared machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
