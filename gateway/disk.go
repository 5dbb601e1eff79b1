package gateway

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// diskRate follows what the process writes to disk (/proc/self/io
// write_bytes: bytes sent to the storage layer, which is what wears an SD
// card) and its journal commits, sampled once a tick, so operators see
// bytes and commits a second over the last minute and an estimate of a
// day's writes. On a system without /proc the bytes read 0.
type diskRate struct {
	samples [61]diskSample
	n, next int
}

type diskSample struct {
	at               time.Time
	written, commits uint64
}

// writtenBytes is /proc/self/io's write_bytes.
func writtenBytes() uint64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(b, []byte("\nwrite_bytes: "))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	v, _ := strconv.ParseUint(string(bytes.TrimSpace(line)), 10, 64)
	return v
}

// add records a sample and returns the rates over the samples kept (up to
// a minute of ticks): bytes written and commits a second.
func (r *diskRate) add(s diskSample) (written, commits float64) {
	r.samples[r.next] = s
	r.next = (r.next + 1) % len(r.samples)
	r.n = min(r.n+1, len(r.samples))
	oldest := r.samples[(r.next-r.n+len(r.samples))%len(r.samples)]
	dt := s.at.Sub(oldest.at).Seconds()
	if dt <= 0 || s.written < oldest.written || s.commits < oldest.commits {
		return 0, 0
	}
	return float64(s.written-oldest.written) / dt, float64(s.commits-oldest.commits) / dt
}
