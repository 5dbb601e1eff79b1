package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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

func (r *recorder) rulesStatus(t *testing.T) RulesStatus {
	t.Helper()
	var rs RulesStatus
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := json.Unmarshal(r.retained["vigil/gw1/rules/status"], &rs); err != nil {
		t.Fatalf("rules status: %v", err)
	}
	return rs
}

func (r *recorder) status(t *testing.T) Status {
	t.Helper()
	var s Status
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := json.Unmarshal(r.retained["vigil/gw1/status"], &s); err != nil {
		t.Fatalf("status: %v", err)
	}
	return s
}

// TestAgentDecisions walks the decisions a gateway makes on what arrives on
// its two rules topics. The rule check itself is the gateway's (here a
// function that refuses files holding "broken"); the real one runs in the
// integration tests.
func TestAgentDecisions(t *testing.T) {
	pub, priv := testKey(1)
	_, otherPriv := testKey(2)
	rec := &recorder{}
	var running map[string]string
	applies := 0
	store := Store{Dir: filepath.Join(t.TempDir(), "rules")}
	a, err := New(Options{Gateway: "gw1", Prefix: "vigil", Version: "test", Keys: Keys{"ops": pub}, Store: store, Publisher: rec,
		Apply: func(_ context.Context, files map[string]string) error {
			for name, text := range files {
				if strings.Contains(text, "broken") {
					return errors.New(name + ":1:1: broken\n" + name + ":2:1: also broken")
				}
			}
			running = files
			applies++
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	issued := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	bundle := func(version string, minutes int, text string, k func() ([]byte, string)) []byte {
		b := &Bundle{Version: version, Issued: issued.Add(time.Duration(minutes) * time.Minute).Format(time.RFC3339), Files: map[string]string{"f.yaml": text}}
		key := priv
		if k != nil {
			_, name := k()
			if err := b.Sign(name, otherPriv); err != nil {
				t.Fatal(err)
			}
			return b.Marshal()
		}
		if err := b.Sign("ops", key); err != nil {
			t.Fatal(err)
		}
		return b.Marshal()
	}
	all, own := "vigil/all/rules", "vigil/gw1/rules"
	step := func(topic string, payload []byte) {
		t.Helper()
		a.Receive(topic, payload)
		a.evaluate(ctx)
	}
	if err := a.Connected(ctx); err != nil {
		t.Fatal(err)
	}
	if s := rec.status(t); s.State != Online || s.Rules.State != None {
		t.Fatalf("status after connect: %+v", s)
	}

	step(all, bundle("v1", 0, "one", nil))
	if running["f.yaml"] != "one" || rec.rulesStatus(t).State != Applied || rec.status(t).Rules.Version != "v1" {
		t.Fatalf("v1 not applied: %v %+v", running, rec.rulesStatus(t))
	}
	if b, _ := store.Load(); b == nil || b.Version != "v1" {
		t.Fatalf("v1 not stored: %+v", b)
	}
	// The same retained bundle again (a reconnect): nothing is applied.
	step(all, bundle("v1", 0, "one", nil))
	if applies != 1 {
		t.Fatalf("the same bundle was applied again (%d applies)", applies)
	}

	for _, tc := range []struct {
		name, version string
		payload       []byte
		want          string
	}{
		{"other key", "v2", bundle("v2", 5, "two", func() ([]byte, string) { return nil, "ops" }), "signature does not verify"},
		{"tampered", "v2", []byte(strings.Replace(string(bundle("v2", 5, "two", nil)), "two", "TWO", 1)), "signature does not verify"},
		{"older", "v0", bundle("v0", -5, "zero", nil), "before the running bundle"},
		{"broken", "v3", bundle("v3", 10, "broken", nil), "f.yaml:1:1: broken"},
		{"not a bundle", "", []byte("hello"), "bundle:"},
	} {
		step(all, tc.payload)
		rs := rec.rulesStatus(t)
		if rs.State != Rejected || rs.Version != tc.version || len(rs.Errors) == 0 || !strings.Contains(strings.Join(rs.Errors, "\n"), tc.want) {
			t.Fatalf("%s: rules status %+v, want rejected %s with %q", tc.name, rs, tc.version, tc.want)
		}
		if running["f.yaml"] != "one" {
			t.Fatalf("%s: running %v, want v1 kept", tc.name, running)
		}
		if s := rec.status(t); s.Rules.Version != "v1" || s.Rules.State != Rejected {
			t.Fatalf("%s: status rules %+v", tc.name, s.Rules)
		}
	}
	if got := len(rec.rulesStatus(t).Errors); got != 1 {
		t.Fatalf("errors of the last rejection: %d lines", got)
	}

	// The gateway's own topic wins, even over a newer "all" bundle.
	step(own, bundle("g1", 20, "mine", nil))
	step(all, bundle("v4", 30, "four", nil))
	if running["f.yaml"] != "mine" {
		t.Fatalf("running %v, want the gateway's own bundle", running)
	}
	// Clearing the own topic falls back to "all" (v4).
	step(own, nil)
	if running["f.yaml"] != "four" {
		t.Fatalf("running %v after clearing the own topic, want v4", running)
	}
	// An own bundle older than v4 is refused...
	step(own, bundle("g0", 25, "old", nil))
	if rs := rec.rulesStatus(t); rs.State != Rejected || running["f.yaml"] != "four" {
		t.Fatalf("older own bundle: %+v running %v", rs, running)
	}
	// ...and clearing both removes the fleet rules.
	step(own, nil)
	step(all, nil)
	if running != nil || rec.status(t).Rules.Version != "" {
		t.Fatalf("after clearing both: running %v status %+v", running, rec.status(t).Rules)
	}
	if b, _ := store.Load(); b != nil {
		t.Fatalf("store still holds %s", b.Version)
	}
}

// TestAgentStored: a new agent runs what the store holds, if it verifies.
func TestAgentStored(t *testing.T) {
	pub, priv := testKey(1)
	otherPub, _ := testKey(2)
	store := Store{Dir: t.TempDir()}
	b := goldenBundle()
	b.Sign("ops", priv)
	if err := store.Save(b); err != nil {
		t.Fatal(err)
	}
	mk := func(keys Keys) *Agent {
		a, err := New(Options{Gateway: "gw1", Prefix: "vigil", Keys: keys, Store: store, Publisher: &recorder{},
			Apply: func(context.Context, map[string]string) error { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := mk(Keys{"ops": pub})
	if files := a.Stored(); len(files) != 3 || a.Info().Version != b.Version {
		t.Fatalf("stored bundle not used: %v %+v", files, a.Info())
	}
	a.StoredFailed(errors.New("x.yaml:1:1: clash"))
	if in := a.Info(); in.Version != "" || in.Last.State != Rejected {
		t.Fatalf("after StoredFailed: %+v", in)
	}
	// Its key was rotated out: the stored bundle is not run.
	if files := mk(Keys{"ops": otherPub}).Stored(); files != nil {
		t.Fatal("a stored bundle that no longer verifies was used")
	}
}
