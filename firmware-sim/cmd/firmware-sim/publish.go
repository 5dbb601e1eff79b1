package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	sim "github.com/vigil-gw/vigil/firmware-sim"
)

// perDevice is how many QoS 1 messages each simulated device may have
// awaiting their PUBACK: a connection carries many devices, and its window
// is theirs together (Mosquitto's default for one client is 20). A stalled
// broker stops the simulator when the window is full instead of filling
// memory.
const perDevice = 16

// window is the QoS 1 window of a connection carrying devices devices:
// perDevice each, between 64 and 4,096.
func window(devices int) int {
	return min(max(perDevice*devices, 64), 4096)
}

// queued bounds each connection's queue when there are several. A full
// queue makes the simulator wait: a load generator that dropped its own
// messages would measure nothing.
const queued = 256

// counts are shared by the connections and read by the progress line.
type counts struct {
	sent, dropped atomic.Int64
}

// link is one MQTT connection.
type link struct {
	c      mqtt.Client
	qos    byte
	counts *counts
	ring   []mqtt.Token // QoS 1 messages awaiting their PUBACK
	head   int
	window int // the ring's capacity
}

func (l *link) publish(ctx context.Context, topic string, payload []byte) {
	l.counts.sent.Add(1)
	if l.qos == 0 && !l.c.IsConnectionOpen() {
		// A device without a buffer loses what it measures offline.
		l.counts.dropped.Add(1)
		return
	}
	t := l.c.Publish(topic, l.qos, false, payload)
	if l.qos == 0 {
		select {
		case <-t.Done():
			if t.Error() != nil {
				l.counts.dropped.Add(1)
			}
		default:
		}
		return
	}
	if len(l.ring) < l.window {
		l.ring = append(l.ring, t)
		return
	}
	oldest := l.ring[l.head]
	if !done(oldest) {
		// WaitTimeout makes a timer per call: only when there is a wait.
		for !oldest.WaitTimeout(time.Second) {
			if ctx.Err() != nil {
				break // settled (and counted) when the link closes
			}
		}
	}
	l.settle(oldest, time.Second)
	l.ring[l.head] = t
	l.head = (l.head + 1) % l.window
}

// settle counts a QoS 1 message that failed or was never acknowledged as
// dropped. (Not WaitTimeout(0): its select may pick the timer over a token
// that is already complete.)
func (l *link) settle(t mqtt.Token, wait time.Duration) {
	if done(t) { // the usual case, without a timer
		if t.Error() != nil {
			l.counts.dropped.Add(1)
		}
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-t.Done():
		if t.Error() != nil {
			l.counts.dropped.Add(1)
		}
	case <-timer.C:
		l.counts.dropped.Add(1)
	}
}

// done reports whether t is complete, without waiting.
func done(t mqtt.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

// close waits for outstanding acknowledgements and disconnects.
func (l *link) close() {
	for i := range l.ring {
		l.settle(l.ring[(l.head+i)%len(l.ring)], 5*time.Second)
	}
	l.ring = nil
	l.c.Disconnect(500)
}

func publish(ctx context.Context, s *sim.Sim, o options, log *logger) error {
	var c counts
	links := make([]*link, 0, o.connections)
	defer func() {
		for _, l := range links {
			l.close()
		}
	}()
	for i := range o.connections {
		id := o.clientID
		if o.connections > 1 {
			id = fmt.Sprintf("%s-%d", o.clientID, i+1)
		}
		mc, err := connect(ctx, o, id, log)
		if err != nil || mc == nil {
			return err
		}
		perLink := (o.cfg.Devices + o.connections - 1) / o.connections
		links = append(links, &link{c: mc, qos: byte(o.qos), counts: &c, window: window(perLink)})
	}

	began := time.Now()
	pub, stop := spread(ctx, links)
	stopProgress := startProgress(o.progress, log, &c, s)
	err := s.Run(ctx, pub, o.speed)
	stop()
	stopProgress()
	for _, l := range links {
		l.close()
	}
	links = nil
	elapsed := time.Since(began)
	ok := c.sent.Load() - c.dropped.Load()
	log.printf("published %d messages in %s (%.0f/s), %d dropped, %d faults injected",
		ok, elapsed.Round(time.Millisecond), float64(ok)/elapsed.Seconds(), c.dropped.Load(), len(s.Truth()))
	return err
}

// spread returns a PublishFunc that sends each device's messages over one
// of links, always the same (so each device's messages stay in order), and
// a func that waits until everything queued has been handed to the client.
// One link is used directly, without a queue or a goroutine.
func spread(ctx context.Context, links []*link) (sim.PublishFunc, func()) {
	if len(links) == 1 {
		return func(topic string, payload []byte) error {
			links[0].publish(ctx, topic, payload)
			return nil
		}, func() {}
	}
	type msg struct {
		topic   string
		payload []byte
	}
	var wg sync.WaitGroup
	queues := make([]chan msg, len(links))
	for i, l := range links {
		q := make(chan msg, queued)
		queues[i] = q
		wg.Go(func() {
			for m := range q {
				l.publish(ctx, m.topic, m.payload)
			}
		})
	}
	pub := func(topic string, payload []byte) error {
		// FNV-1a of the topic: the device decides the connection.
		h := uint32(2166136261)
		for i := 0; i < len(topic); i++ {
			h = (h ^ uint32(topic[i])) * 16777619
		}
		select {
		case queues[h%uint32(len(queues))] <- msg{topic, payload}:
		case <-ctx.Done():
		}
		return nil
	}
	return pub, func() {
		for _, q := range queues {
			close(q)
		}
		wg.Wait()
	}
}
