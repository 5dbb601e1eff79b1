// Package pace reads a connection in fewer, larger reads while messages
// keep coming. It imports nothing of vigil's.
//
// At 1,000 MQTT messages a second over one connection (a subscription to
// the site's broker, a bridge, a simulator), reading each message as it
// arrives costs a wake-up of the network poller, of the reading goroutine
// and of every goroutine the message is handed to, a thousand times a
// second: on a gateway that was most of vigil's CPU (BENCHMARKS.md, "The
// Pi's budget"). A Reader instead reads at most once per interval while
// data keeps coming, each read taking what arrived meanwhile.
package pace

import (
	"io"
	"time"
)

// Reader paces the reads of an underlying reader (a socket). While data
// keeps coming — a read found it waiting, or waited less than Every for
// it — the next read comes no sooner than Every after that one returned,
// waiting out the rest first. A read after one that waited longer (a
// quiet connection: a device's reading a second), one after a read that
// filled its buffer (a flood: more is waiting), one after Poke and the one
// after that (what answers a write is not a flow) do not wait. So a
// message waits at most Every longer than it would, and a quiet connection
// costs nothing more, not even a timer. Not safe for concurrent Reads (nor
// is a socket's reader); Poke may be called from any goroutine.
type Reader struct {
	r     io.Reader
	every time.Duration
	last  time.Time // when the last read of a flow returned; zero: do not wait
	timer *time.Timer
	wake  chan struct{}
}

// New paces r to a read per every; every ≤ 0 reads straight through.
func New(r io.Reader, every time.Duration) *Reader {
	return &Reader{r: r, every: every, wake: make(chan struct{}, 1)}
}

func (p *Reader) Read(b []byte) (int, error) {
	if p.every <= 0 {
		return p.r.Read(b)
	}
	poked := false
	if !p.last.IsZero() {
		if wait := p.every - time.Since(p.last); wait > 0 {
			poked = p.sleep(wait)
		}
	}
	if !poked {
		select {
		case <-p.wake:
			poked = true
		default:
		}
	}
	start := time.Now()
	n, err := p.r.Read(b)
	now := time.Now()
	p.last = time.Time{}
	// What comes right after a write is its answer (a CONNACK, a SUBACK,
	// the messages an acknowledgement let through), not a flow: the next
	// read does not wait, or a client that has nothing to write would wait
	// a whole pace for its first message.
	if !poked && n < len(b) && now.Sub(start) < p.every {
		p.last = now
	}
	return n, err
}

// sleep waits d, or until a Poke (true).
func (p *Reader) sleep(d time.Duration) bool {
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	select {
	case <-p.timer.C:
		return false
	case <-p.wake:
		p.timer.Stop()
		return true
	}
}

// Poke ends the wait in progress, or else the next one. Call it after
// writing to the connection (an acknowledgement, a ping: the peer will
// answer or send more, and a sender held by its in-flight window must not
// wait for the pace) and after closing it.
func (p *Reader) Poke() {
	if p.every <= 0 {
		return
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}
