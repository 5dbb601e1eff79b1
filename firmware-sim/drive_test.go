package sim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

type collector struct {
	topics   []string
	payloads [][]byte
}

func (c *collector) publish(topic string, payload []byte) error {
	c.topics = append(c.topics, topic)
	c.payloads = append(c.payloads, payload)
	return nil
}

func TestRun(t *testing.T) {
	tests := []struct {
		name  string
		speed float64
		cfg   Config
	}{
		{"as fast as possible", 0, Config{Seed: 2, Devices: 50, Rate: 100 * time.Millisecond, FaultEvery: time.Second, Until: t0.Add(time.Minute)}},
		{"accelerated", 2000, Config{Seed: 2, Devices: 4, FaultEvery: 5 * time.Second, Until: t0.Add(40 * time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := drain(mustNew(t, tt.cfg), tt.cfg.Until)
			var c collector
			if err := mustNew(t, tt.cfg).Run(context.Background(), c.publish, tt.speed); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(c.topics) != len(want) {
				t.Fatalf("published %d, want %d", len(c.topics), len(want))
			}
			for i, r := range want {
				if c.topics[i] != r.Topic || !bytes.Equal(c.payloads[i], r.Payload) {
					t.Fatalf("message %d: %s %q, want %s %q", i, c.topics[i], c.payloads[i], r.Topic, r.Payload)
				}
			}
		})
	}
}

// TestRunPaced: at speed 1 the second round of readings is a second away,
// so cancelling shortly after the start stops Run with the first round out.
func TestRunPaced(t *testing.T) {
	s := mustNew(t, Config{Seed: 2, Devices: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var c collector
	if err := s.Run(ctx, c.publish, 1); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Device 2 is staggered by half the interval: 0 s and 0.5 s are due.
	if len(c.topics) != 1 && len(c.topics) != 2 {
		t.Errorf("published %d readings in 200 ms at 1 reading/s per device", len(c.topics))
	}
}

func TestRunErrors(t *testing.T) {
	boom := errors.New("boom")
	s := mustNew(t, Config{})
	err := s.Run(context.Background(), func(string, []byte) error { return boom }, 0)
	if !errors.Is(err, boom) {
		t.Errorf("Run: %v, want the publish error", err)
	}
	if err := s.Run(context.Background(), nil, -1); err == nil {
		t.Error("negative speed accepted")
	}
}

func BenchmarkNext(b *testing.B) {
	for _, format := range []string{"json", "influx", "value"} {
		b.Run(format, func(b *testing.B) {
			s := mustNew(b, Config{Seed: 1, Devices: 1000, Rate: time.Millisecond, Format: format, FaultEvery: time.Second})
			b.ReportAllocs()
			for b.Loop() {
				s.Next()
			}
		})
	}
}

func BenchmarkRecord(b *testing.B) {
	s := mustNew(b, Config{Seed: 1, Devices: 1000, Rate: time.Second, Format: "mixed"})
	b.ReportAllocs()
	until := t0
	for b.Loop() {
		until = until.Add(time.Second) // 1000 readings
		if err := s.Record(io.Discard, until); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/reading")
}

// TestTruthWhileRunning: the program's progress line reads Truth while Run
// publishes; run with -race this checks the locking.
func TestTruthWhileRunning(t *testing.T) {
	s := mustNew(t, Config{Seed: 3, Devices: 20, Rate: 10 * time.Millisecond, FaultEvery: 50 * time.Millisecond, Until: t0.Add(20 * time.Second)})
	done := make(chan error)
	go func() { done <- s.Run(context.Background(), func(string, []byte) error { return nil }, 0) }()
	seen := 0
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
			seen = max(seen, len(s.Truth()))
		}
	}
	if n := len(s.Truth()); n < 100 || n < seen {
		t.Errorf("%d faults at the end, %d seen while running", n, seen)
	}
}
