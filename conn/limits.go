package conn

import (
	"sync/atomic"
	"time"
)

// IngestLimits cap what a message may bring before it is queued, let alone
// journaled: a 60 KB topic or a megabyte payload is refused at the door
// (acknowledged, so no broker or device sends it again, and counted), and
// the memory and disk it could take stays bounded. Zero: no limit.
type IngestLimits struct {
	MaxTopic   int `yaml:"max_topic_length"` // bytes of a topic
	MaxPayload int `yaml:"max_payload"`      // bytes of a payload
}

// Reasons a message is refused at the door, as counted.
const (
	TopicTooLong    = "topic_too_long"
	PayloadTooLarge = "payload_too_large"
)

// Refuse is why a message with this topic and payload is refused, or "".
func (l IngestLimits) Refuse(topic string, payload []byte) string {
	switch {
	case l.MaxTopic > 0 && len(topic) > l.MaxTopic:
		return TopicTooLong
	case l.MaxPayload > 0 && len(payload) > l.MaxPayload:
		return PayloadTooLarge
	}
	return ""
}

// Refusals count the messages refused at the door, by reason.
type Refusals struct {
	topic, payload atomic.Uint64
	logged         atomic.Int64 // Unix ns of the last log line
}

// LogNow reports whether a refusal may be logged now: at most one line
// every 10 s, whatever a device sends.
func (r *Refusals) LogNow() bool {
	now, last := time.Now().UnixNano(), r.logged.Load()
	return now-last >= int64(10*time.Second) && r.logged.CompareAndSwap(last, now)
}

// Add counts one refusal for reason.
func (r *Refusals) Add(reason string) {
	if reason == TopicTooLong {
		r.topic.Add(1)
	} else {
		r.payload.Add(1)
	}
}

// Counts returns the counts by reason.
func (r *Refusals) Counts() map[string]uint64 {
	return map[string]uint64{TopicTooLong: r.topic.Load(), PayloadTooLarge: r.payload.Load()}
}
