package pace

import (
	"io"
	"testing"
	"testing/synctest"
	"time"
)

// feed is a socket stand-in: a Read blocks for the first chunk and returns
// every chunk that has arrived by then, as a socket's read(2) does.
type feed chan []byte

func (f feed) Read(b []byte) (int, error) {
	c, ok := <-f
	if !ok {
		return 0, io.EOF
	}
	n := copy(b, c)
	for n < len(b) {
		select {
		case c, ok := <-f:
			if !ok {
				return n, nil
			}
			n += copy(b[n:], c)
		default:
			return n, nil
		}
	}
	return n, nil
}

// sendEvery sends each chunk d after the one before.
func sendEvery(f feed, d time.Duration, chunks ...string) {
	for _, c := range chunks {
		time.Sleep(d)
		f <- []byte(c)
	}
}

func TestPacedReadsTakeWhatArrivedMeanwhile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := make(feed, 100)
		p := New(f, 10*time.Millisecond)
		go sendEvery(f, time.Millisecond, "a", "b", "c", "d", "e", "f")
		buf := make([]byte, 64)
		start := time.Now()
		n, _ := p.Read(buf) // after a quiet spell: no wait
		if got := string(buf[:n]); got != "a" || time.Since(start) != time.Millisecond {
			t.Fatalf("first read %q after %v, want \"a\" at once (1ms)", got, time.Since(start))
		}
		n, _ = p.Read(buf)
		if got := string(buf[:n]); got != "bcdef" {
			t.Fatalf("second read %q, want the five that arrived within the pace", got)
		}
		if d := time.Since(start); d != 11*time.Millisecond {
			t.Fatalf("second read returned %v after the start, want 11ms (the first read's return + 10ms)", d)
		}
	})
}

func TestRareMessagesDoNotWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := make(feed, 1)
		p := New(f, 10*time.Millisecond)
		go sendEvery(f, time.Second, "a", "b", "c")
		buf := make([]byte, 8)
		start := time.Now()
		p.Read(buf)
		p.Read(buf)
		p.Read(buf)
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("third message read %v after the start, want 3s: each came long after the pace", d)
		}
		if p.timer != nil {
			t.Fatal("a quiet connection armed a timer: a wake-up more a message, not fewer")
		}
	})
}

func TestFullReadIsNotPaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := make(feed, 10)
		f <- []byte("abcdefgh")
		p := New(f, time.Hour)
		buf := make([]byte, 4)
		start := time.Now()
		p.Read(buf) // fills buf: a flood, more waiting
		f <- []byte("ijkl")
		n, _ := p.Read(buf)
		if time.Since(start) != 0 || string(buf[:n]) != "ijkl" {
			t.Fatalf("read after a full one: %q after %v, want at once", buf[:n], time.Since(start))
		}
	})
}

func TestPokeEndsTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := make(feed, 10)
		p := New(f, time.Hour)
		f <- []byte("a")
		buf := make([]byte, 8)
		p.Read(buf)
		f <- []byte("b")
		go func() {
			time.Sleep(time.Second)
			p.Poke() // an acknowledgement written: the peer sends more
		}()
		start := time.Now()
		n, _ := p.Read(buf)
		if string(buf[:n]) != "b" || time.Since(start) != time.Second {
			t.Fatalf("read %q after %v, want \"b\" when poked (1s), not after the hour's pace", buf[:n], time.Since(start))
		}
	})
}

func TestUnpacedReadsStraightThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := make(feed, 10)
		p := New(f, 0)
		go sendEvery(f, time.Millisecond, "a", "b")
		buf := make([]byte, 8)
		start := time.Now()
		for i, want := range []string{"a", "b"} {
			n, _ := p.Read(buf)
			at := time.Duration(i+1) * time.Millisecond
			if string(buf[:n]) != want || time.Since(start) != at {
				t.Fatalf("read %d: %q after %v, want %q as it arrives (%v)", i, buf[:n], time.Since(start), want, at)
			}
		}
		p.Poke() // a no-op unpaced: must not block
	})
}

// What answers a write (a SUBACK after SUBSCRIBE) is not a flow: a
// subscriber that has nothing to write reads its first message as it
// comes, not a pace later.
func TestAnswerToAWriteIsNotAFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := make(feed, 10)
		p := New(f, time.Hour)
		p.Poke() // SUBSCRIBE written
		go func() {
			time.Sleep(time.Millisecond)
			f <- []byte("suback")
			time.Sleep(time.Second)
			f <- []byte("publish")
		}()
		buf := make([]byte, 16)
		start := time.Now()
		n, _ := p.Read(buf)
		if string(buf[:n]) != "suback" {
			t.Fatalf("read %q", buf[:n])
		}
		n, _ = p.Read(buf)
		if string(buf[:n]) != "publish" || time.Since(start) != time.Second+time.Millisecond {
			t.Fatalf("first message %q after %v, want it as it came (1.001s), not after the hour's pace", buf[:n], time.Since(start))
		}
	})
}
