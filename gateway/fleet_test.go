package gateway

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/config"
	"github.com/vigil-gw/vigil/fleet"
)

// TestFleetBundle: a pushed bundle runs beside the local rule files and is
// applied as a reload is, keeping the state of unchanged rules; a bundle
// defining a local rule's name again is rejected with its file's name and
// changes nothing that runs. In-process, against the embedded broker over
// TCP as the fleet's broker (TestFleet in the main package runs the real
// binaries).
func TestFleetBundle(t *testing.T) {
	b := startBroker(t, "")
	dir := t.TempDir()
	up := watchUpstream(t, b.Addr())
	pubPath, keyPath, err := fleet.GenerateKey(filepath.Join(dir, "ops"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := fleet.ReadPrivateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	c := inProcessConfig(t, dir, b.Addr(), `
rules:
  - name: three
    from: meters/{m}/kwh
    key: m
    window: {count: 3}
    aggregate: {total: sum(kwh)}
`)
	// Another prefix than the alerts topics watched (vigil/#).
	c.Fleet = fleetConfig(dir, pubPath)
	g, _ := start(t, c)
	dev := device(t, g.Broker().Addr())
	base := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	send := func(i int, topic, field string) {
		publish(t, dev, topic, fmt.Sprintf(`{%q: %d, "ts": %q}`, field, i, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339)))
	}
	send(1, "meters/m1/kwh", "kwh")
	send(2, "meters/m1/kwh", "kwh")
	waitEvents(t, g, 2)

	// One pusher for every push: two clients with one id would take the
	// session from each other.
	pusher := device(t, b.Addr())
	pushed := 0
	push := func(version string, files map[string]string) {
		t.Helper()
		bd := &fleet.Bundle{Version: version, Issued: time.Now().UTC().Format(time.RFC3339Nano), Files: files}
		if err := bd.Sign("ops", priv); err != nil {
			t.Fatal(err)
		}
		if err := pusher.Publish("site/all/rules", bd.Marshal(), 1, true); err != nil {
			t.Fatal(err)
		}
		pushed++
		waitFleet(t, g, func(in fleet.Info) bool { return in.Last != nil && in.Last.Version == version })
	}
	push("b1", map[string]string{"water.yaml": "rules:\n  - name: water\n    from: water/{m}\n    key: m\n    where: litres > 100\n"})
	if in, _ := g.Fleet(); in.Last.State != fleet.Applied || in.Version != "b1" || len(in.Files) != 1 {
		t.Fatalf("b1: %+v %+v", in, in.Last)
	}
	send(3, "meters/m1/kwh", "kwh")
	send(150, "water/w1", "litres")
	got := up.waitFor(t, 2, 10*time.Second)
	if got[0].Rule != "three" || got[0].Values["total"] != 6.0 || got[1].Rule != "water" {
		t.Fatalf("after the bundle: %+v", got)
	}
	if st, _ := (fleet.Store{Dir: c.Fleet.RulesDir}).Load(); st.Bundle == nil || st.Bundle.Version != "b1" || st.Topic != "site/all/rules" {
		t.Fatalf("stored bundle: %+v", st)
	}

	push("b2", map[string]string{"dup.yaml": "rules:\n  - name: three\n    from: meters/{m}/kwh\n"})
	in, _ := g.Fleet()
	if in.Last.State != fleet.Rejected || in.Version != "b1" || len(in.Last.Errors) != 1 ||
		!strings.HasPrefix(in.Last.Errors[0], "dup.yaml:2:5: rule \"three\": duplicate name") || !strings.Contains(in.Last.Errors[0], "duplicate name") {
		t.Fatalf("b2: %+v %+v", in, in.Last)
	}
	send(200, "water/w1", "litres")
	if got := up.waitFor(t, 3, 10*time.Second); got[2].Rule != "water" {
		t.Fatalf("b1's rule after b2 was rejected: %+v", got)
	}
}

func fleetConfig(dir, pub string) config.Fleet {
	return config.Fleet{Enabled: true, Prefix: "site", RulesDir: filepath.Join(dir, "fleet-rules"), PublicKeys: []string{pub}, HealthEvery: time.Second}
}

func waitFleet(t *testing.T, g *Gateway, cond func(fleet.Info) bool) {
	t.Helper()
	// A bundle is applied through a reload, which changes the status.
	waitFor(t, g, 10*time.Second, "the bundle's outcome", func() bool { in, _ := g.Fleet(); return cond(in) })
}
