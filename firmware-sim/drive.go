package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// PublishFunc publishes one message. Run stops at its first error, so a
// driver that should ride out a broker outage returns nil and counts.
type PublishFunc func(topic string, payload []byte) error

// Run publishes readings in Send order until ctx ends (then it returns nil)
// or, with Config.Until set, until every reading sent before Until is out.
// speed 1 paces them in real time, speed 10 ten times faster, speed 0 as
// fast as pub accepts them. The first reading goes out at once.
func (s *Sim) Run(ctx context.Context, pub PublishFunc, speed float64) error {
	if speed < 0 {
		return errors.New("run: negative speed")
	}
	until := s.cfg.Until
	var (
		wall0 = time.Now()
		sim0  = s.peek().Send
		timer *time.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	done := ctx.Done()
	for {
		select {
		case <-done:
			return nil
		default:
		}
		r := s.peek()
		if !until.IsZero() && !r.Send.Before(until) {
			return nil
		}
		if speed > 0 {
			due := wall0.Add(time.Duration(float64(r.Send.Sub(sim0)) / speed))
			if wait := time.Until(due); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-done:
					return nil
				case <-timer.C:
				}
			}
		}
		next := s.Next()
		if err := pub(next.Topic, next.Payload); err != nil {
			return fmt.Errorf("publish %s: %w", next.Topic, err)
		}
	}
}

// recorded is a line of vigil's replay input (CONTRACT.md, "Recorded
// messages").
type recorded struct {
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
	Time    time.Time       `json:"time"`
}

// Record writes every reading sent before until as one line of vigil's
// replay format: the payload verbatim when it is a JSON object or number,
// else as a JSON string of its text (bytes that are not UTF-8 become
// U+FFFD); time is the Send time, when the gateway would receive it.
func (s *Sim) Record(w io.Writer, until time.Time) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	for s.peek().Send.Before(until) {
		r := s.Next()
		line, err := json.Marshal(recorded{Topic: r.Topic, Payload: RecordedPayload(r.Payload), Time: r.Send})
		if err != nil {
			return fmt.Errorf("record %s: %w", r.Topic, err)
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("record: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return nil
}

// RecordedPayload is how payload appears in a recorded message: itself when
// it is a JSON object or number, else a JSON string holding its text.
func RecordedPayload(payload []byte) json.RawMessage {
	p := bytes.TrimSpace(payload)
	if len(p) > 0 && (p[0] == '{' || p[0] == '-' || (p[0] >= '0' && p[0] <= '9')) && json.Valid(p) {
		return json.RawMessage(p)
	}
	q, _ := json.Marshal(string(payload)) // a string always marshals
	return q
}

// truthLine is a line of the ground-truth file.
type truthLine struct {
	Device    string    `json:"device"`
	Kind      string    `json:"kind"`
	Fault     string    `json:"fault"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Magnitude float64   `json:"magnitude"`
	Readings  int       `json:"readings"`
}

// WriteTruth writes faults as JSON lines:
// {"device","kind","fault","start","end","magnitude","readings"}, where kind
// is the sensor kind and fault the fault kind.
func WriteTruth(w io.Writer, faults []Fault) error {
	enc := json.NewEncoder(w)
	for _, f := range faults {
		if err := enc.Encode(truthLine{f.Device, f.Sensor, f.Kind, f.Start, f.End, f.Magnitude, f.Readings}); err != nil {
			return fmt.Errorf("write truth: %w", err)
		}
	}
	return nil
}
