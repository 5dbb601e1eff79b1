package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/conn"
)

// TestIngestLimits: a topic or payload over limits.max_topic_length or
// limits.max_payload is refused at the door — acknowledged (the device is
// not left resending it), never journaled, counted by reason — through a
// broker subscription and through in-process ingest alike, while the
// messages around it go through.
func TestIngestLimits(t *testing.T) {
	for _, inProcess := range []bool{false, true} {
		name := map[bool]string{false: "subscription", true: "in-process"}[inProcess]
		t.Run(name, func(t *testing.T) {
			upb := startBroker(t, "")
			up := watchUpstream(t, upb.Addr())
			var c = testConfig(t, t.TempDir(), upb.Addr(), upb.Addr(), hotRules)
			if inProcess {
				c = inProcessConfig(t, t.TempDir(), upb.Addr(), hotRules)
			}
			c.Limits.MaxTopic, c.Limits.MaxPayload = 64, 1024
			g, _ := start(t, c)
			addr := upb.Addr()
			if inProcess {
				addr = g.Broker().Addr()
			}
			dev := device(t, addr)
			before := g.DB().LastPos()
			long := "sensors/" + strings.Repeat("x", 100) + "/temperature" // matches sensors/{device}/temperature
			publish(t, dev, long, `{"temperature": 99}`)
			publish(t, dev, "sensors/big/temperature", `{"temperature": 99, "pad": "`+strings.Repeat("p", 2000)+`"}`)
			publish(t, dev, "sensors/pump1/temperature", `{"temperature": 90}`)
			got := up.waitFor(t, 1, 10*time.Second)
			if got[0].Key != "pump1" {
				t.Fatalf("alert %+v: want pump1's only", got[0])
			}
			waitFor(t, g, 5*time.Second, "both refusals counted", func() bool {
				r := g.Subscriber().Stats().Refused
				return r[conn.TopicTooLong] == 1 && r[conn.PayloadTooLarge] == 1
			})
			if n := g.DB().LastPos() - before; n != 1 {
				t.Fatalf("%d messages journaled, want 1 (the refused ones never are)", n)
			}
			if st := g.Status(); st.Events != 1 {
				t.Fatalf("%d events, want 1", st.Events)
			}
		})
	}
}
