package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder keeps the latest retained payload per topic, as a broker does.
type recorder struct {
	mu       sync.Mutex
	retained map[string][]byte
}

func (r *recorder) PublishRetained(_ context.Context, topic string, payload []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retained == nil {
		r.retained = map[string][]byte{}
	}
	r.retained[topic] = append([]byte{}, payload...)
	return nil
}

func (r *recorder) get(t *testing.T, topic string, v any) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := json.Unmarshal(r.retained[topic], v); err != nil {
		t.Fatalf("%s: %v", topic, err)
	}
}

// rig is an agent whose rule check refuses files holding "broken" (the
// real one, the gateway's, runs in the integration tests).
type rig struct {
	t       *testing.T
	a       *Agent
	rec     *recorder
	store   Store
	running map[string]string
	applies int
}

func newRig(t *testing.T, store Store) *rig {
	pub, _ := testKey(1)
	r := &rig{t: t, rec: &recorder{}, store: store}
	a, err := New(Options{Gateway: "gw1", Prefix: "vigil", Version: "test", Keys: Keys{"ops": pub}, Store: store, Publisher: r.rec,
		Apply: func(_ context.Context, files map[string]string) error {
			for name, text := range files {
				if strings.Contains(text, "broken") {
					return errors.New(name + ":1:1: broken\n" + name + ":2:1: also broken")
				}
			}
			r.running = files
			r.applies++
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	r.a = a
	return r
}

var issued0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// bundle signs one file's text, issued minutes after issued0, with key
// seed (1 is the gateway's key "ops").
func bundle(t *testing.T, version string, minutes int, text string, seed byte) []byte {
	t.Helper()
	_, priv := testKey(seed)
	b := &Bundle{Version: version, Issued: issued0.Add(time.Duration(minutes) * time.Minute).Format(time.RFC3339), Files: map[string]string{"f.yaml": text}}
	if err := b.Sign("ops", priv); err != nil {
		t.Fatal(err)
	}
	return b.Marshal()
}

const allTopic, ownTopic = "vigil/all/rules", "vigil/gw1/rules"

func (r *rig) step(topic string, payload []byte) {
	r.t.Helper()
	r.a.Receive(topic, payload)
	r.a.evaluate(context.Background())
}

func (r *rig) rulesStatus() RulesStatus {
	var rs RulesStatus
	r.rec.get(r.t, "vigil/gw1/rules/status", &rs)
	return rs
}

func (r *rig) status() Status {
	var s Status
	r.rec.get(r.t, "vigil/gw1/status", &s)
	return s
}

func (r *rig) runs(text string) {
	r.t.Helper()
	if r.running["f.yaml"] != text {
		r.t.Fatalf("running %q, want %q", r.running["f.yaml"], text)
	}
}

// TestAgentDecisions walks the decisions a gateway makes on what arrives on
// its two rules topics.
func TestAgentDecisions(t *testing.T) {
	r := newRig(t, Store{Dir: filepath.Join(t.TempDir(), "rules")})
	ctx := context.Background()
	if err := r.a.Connected(ctx); err != nil {
		t.Fatal(err)
	}
	if s := r.status(); s.State != Online || s.Rules.State != None {
		t.Fatalf("status after connect: %+v", s)
	}

	r.step(allTopic, bundle(t, "v1", 0, "one", 1))
	r.runs("one")
	if rs := r.rulesStatus(); rs.State != Applied || r.status().Rules.Version != "v1" {
		t.Fatalf("v1: %+v", rs)
	}
	if st, _ := r.store.Load(); st.Bundle == nil || st.Bundle.Version != "v1" || st.Topic != allTopic {
		t.Fatalf("v1 not stored: %+v", st)
	}
	// The same retained bundle again (a reconnect): nothing is applied.
	r.a.Connected(ctx)
	r.step(allTopic, bundle(t, "v1", 0, "one", 1))
	if r.applies != 1 {
		t.Fatalf("the same bundle was applied again (%d applies)", r.applies)
	}

	for _, tc := range []struct {
		name, version string
		payload       []byte
		want          string
	}{
		{"other key", "v2", bundle(t, "v2", 5, "two", 2), "signature does not verify"},
		{"tampered", "v2", []byte(strings.Replace(string(bundle(t, "v2", 5, "two", 1)), "two", "TWO", 1)), "signature does not verify"},
		{"older", "v0", bundle(t, "v0", -5, "zero", 1), "before 2026-12-07T10:00:00Z"},
		{"broken", "v3", bundle(t, "v3", 10, "broken", 1), "f.yaml:1:1: broken"},
		{"not a bundle", "", []byte("hello"), "bundle:"},
	} {
		r.step(allTopic, tc.payload)
		rs := r.rulesStatus()
		if rs.State != Rejected || rs.Version != tc.version || !strings.Contains(strings.Join(rs.Errors, "\n"), tc.want) {
			t.Fatalf("%s: rules status %+v, want rejected %s with %q", tc.name, rs, tc.version, tc.want)
		}
		r.runs("one")
		if s := r.status(); s.Rules.Version != "v1" || s.Rules.State != Rejected {
			t.Fatalf("%s: status rules %+v", tc.name, s.Rules)
		}
	}

	// The gateway's own topic wins, even over a newer "all" bundle.
	r.step(ownTopic, bundle(t, "g1", 20, "mine", 1))
	r.step(allTopic, bundle(t, "v4", 30, "four", 1))
	r.runs("mine")
	// A reconnect to a broker that lost its retained messages: nothing
	// arrives on the own topic, and "all" does not take over.
	r.a.Connected(ctx)
	r.step(allTopic, bundle(t, "v4", 30, "four", 1))
	r.runs("mine")
	// An own bundle older than the last one from the own topic is refused.
	r.step(ownTopic, bundle(t, "g0", 15, "old", 1))
	if rs := r.rulesStatus(); rs.State != Rejected || rs.Version != "g0" {
		t.Fatalf("older own bundle: %+v", rs)
	}
	r.runs("mine")
	// Clearing the own topic falls back to "all" (v4)...
	r.step(ownTopic, nil)
	r.runs("four")
	// ...and clearing "all" too removes the fleet rules; the issue times
	// stay: an older bundle is still refused afterwards.
	r.step(allTopic, nil)
	if r.running != nil || r.status().Rules.Version != "" {
		t.Fatalf("after clearing both: running %v status %+v", r.running, r.status().Rules)
	}
	if st, _ := r.store.Load(); st.Bundle != nil || st.Issued[allTopic] != "2026-12-07T10:30:00Z" {
		t.Fatalf("store after clearing: %+v", st)
	}
	r.step(allTopic, bundle(t, "v1", 0, "one", 1))
	if rs := r.rulesStatus(); rs.State != Rejected || r.running != nil {
		t.Fatalf("an old bundle after a clear: %+v running %v", rs, r.running)
	}
}

// TestAgentRetainedOrder: at a connect the two topics' retained bundles may
// come in either order; the gateway's own one runs in the end, even when
// it is older than the "all" one.
func TestAgentRetainedOrder(t *testing.T) {
	for _, allFirst := range []bool{true, false} {
		r := newRig(t, Store{Dir: t.TempDir()})
		r.a.Connected(context.Background())
		own, all := bundle(t, "g1", 0, "mine", 1), bundle(t, "v9", 60, "all", 1)
		if allFirst {
			r.step(allTopic, all)
			r.step(ownTopic, own)
		} else {
			r.step(ownTopic, own)
			r.step(allTopic, all)
		}
		r.runs("mine")
	}
}

// TestAgentStored: a new agent runs what the store holds, if it verifies,
// and keeps the issue times even when it does not.
func TestAgentStored(t *testing.T) {
	store := Store{Dir: t.TempDir()}
	first := newRig(t, store)
	first.step(ownTopic, bundle(t, "g1", 20, "mine", 1))

	r := newRig(t, store)
	if files := r.a.Stored(); files["f.yaml"] != "mine" || r.a.Info().Version != "g1" {
		t.Fatalf("stored bundle not used: %v %+v", files, r.a.Info())
	}
	// Connected to a broker that lost its retained messages: "all" does
	// not replace the own bundle, and an older own one is refused.
	r.a.Connected(context.Background())
	r.running = map[string]string{"f.yaml": "mine"}
	r.step(allTopic, bundle(t, "v9", 60, "all", 1))
	r.runs("mine")
	r.step(ownTopic, bundle(t, "g0", 10, "old", 1))
	r.runs("mine")

	r.a.StoredFailed(errors.New("x.yaml:1:1: clash"))
	if in := r.a.Info(); in.Version != "" || in.Last.State != Rejected {
		t.Fatalf("after StoredFailed: %+v", in)
	}
	// Its key was rotated out: the stored bundle is not run.
	otherPub, _ := testKey(2)
	a, _ := New(Options{Gateway: "gw1", Prefix: "vigil", Keys: Keys{"ops": otherPub}, Store: store, Publisher: &recorder{},
		Apply: func(context.Context, map[string]string) error { return nil }})
	if files := a.Stored(); files != nil {
		t.Fatal("a stored bundle that no longer verifies was used")
	}
}

// flaky is a recorder that refuses while down.
type flaky struct {
	recorder
	down bool
}

func (f *flaky) PublishRetained(ctx context.Context, topic string, payload []byte) error {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return errors.New("not connected")
	}
	return f.recorder.PublishRetained(ctx, topic, payload)
}

// TestAgentRepublish: a status that could not go out at the connect does
// not fail the connection (which carries the alerts too) and goes out
// with the next health.
func TestAgentRepublish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &flaky{down: true}
		a, err := New(Options{Gateway: "gw1", Prefix: "vigil", Store: Store{Dir: t.TempDir()}, Publisher: pub, HealthEvery: time.Second,
			Health: func() Health { return Health{Messages: 7} },
			Apply:  func(context.Context, map[string]string) error { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go a.Run(ctx)
		if err := a.Connected(ctx); err != nil {
			t.Fatalf("Connected failed the connection: %v", err)
		}
		pub.mu.Lock()
		pub.down = false
		pub.mu.Unlock()
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		var s Status
		var h Health
		pub.get(t, "vigil/gw1/status", &s)
		pub.get(t, "vigil/gw1/health", &h)
		if s.State != Online || h.Messages != 7 || h.Gateway != "gw1" {
			t.Fatalf("after the next health: status %+v health %+v", s, h)
		}
	})
}
