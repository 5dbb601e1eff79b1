package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/vigil-gw/vigil/conn"
)

// TestDedupKeyFormat: dedup keys are stored in the journal and compared
// with those of messages redelivered after a restart, possibly by another
// version: the key must stay exactly "<packet id>:<hex of the first 12
// bytes of SHA-256([client NUL] topic NUL payload)>", and a keyer reused
// for many messages must give each the key a fresh one would.
func TestDedupKeyFormat(t *testing.T) {
	reference := func(m conn.Message) string {
		if m.QoS == 0 {
			return ""
		}
		h := sha256.New()
		if m.Client != "" {
			h.Write([]byte(m.Client))
			h.Write([]byte{0})
		}
		h.Write([]byte(m.Topic))
		h.Write([]byte{0})
		h.Write(m.Payload)
		return strconv.Itoa(int(m.ID)) + ":" + hex.EncodeToString(h.Sum(nil)[:12])
	}
	msgs := []conn.Message{
		{Topic: "sensors/pump1/temperature", Payload: []byte(`{"temperature": 21.5}`), QoS: 1, ID: 1},
		{Topic: "sensors/pump1/temperature", Payload: []byte(`{"temperature": 21.5}`), QoS: 1, ID: 65535, Client: "dev-7"},
		{Topic: "sensors/pump1/temperature", Payload: []byte(`{"temperature": 21.5}`), QoS: 0, ID: 3},
		{Topic: "a", Payload: nil, QoS: 1, ID: 2},
		{Topic: "a", Payload: []byte{0}, QoS: 2, ID: 2},
		{Topic: "b/c", Payload: bytes.Repeat([]byte("x"), 100<<10), QoS: 1, ID: 9, Client: "big"},
		{Topic: "a", Payload: []byte("z"), QoS: 1, ID: 4, Client: "c"},
	}
	if got, want := dedupKey(msgs[0]), "1:"; got[:2] != want || len(got) != 2+24 {
		t.Fatalf("key %q: want %q and 24 hex digits", got, want)
	}
	var k keyer
	for i, m := range msgs {
		want := reference(m)
		if got := k.key(m); got != want {
			t.Errorf("message %d, reused keyer: %q, want %q", i, got, want)
		}
		if got := dedupKey(m); got != want {
			t.Errorf("message %d: %q, want %q", i, got, want)
		}
	}
	// "a" from client "c" and "ca" from no client must differ: the NUL
	// separates them.
	if dedupKey(conn.Message{Topic: "ca", QoS: 1}) == dedupKey(conn.Message{Topic: "a", Client: "c", QoS: 1}) {
		t.Error("client and topic run together")
	}
}
