package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-gw/vigil/internal/freeport"
)

// TestLiveValuesWithStatelessRules: a real `vigil run` whose topics only
// stateless rules take shows each device's latest values, with the event's
// time, in GET /api/devices.
func TestLiveValuesWithStatelessRules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary") // as the crash tests: not under qemu (make test-arm)
	}
	bin := vigilBinary(t)
	dir := t.TempDir()
	brokerAddr, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(`rules:
  - {name: hot, from: "sensors/{device}/temperature", where: temperature > 80, key: device}
`), 0o644)
	cfg := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`gateway: live
broker: {listen: %q}
upstream: {broker: "tcp://%s"}
state: {path: %s}
rules: %s
http: {listen: %q}
`, brokerAddr, brokerAddr, filepath.Join(dir, "vigil.db"), filepath.Join(dir, "rules.yaml"), httpAddr)), 0o644)
	startRun(t, bin, cfg)

	dev := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + brokerAddr).SetClientID("live-dev").
		SetConnectRetry(true).SetConnectRetryInterval(50 * time.Millisecond))
	if tok := dev.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer dev.Disconnect(100)
	at := "2026-03-01T12:00:00Z"
	if tok := dev.Publish("sensors/d1/temperature", 1, false, `{"temperature": 21.5, "unit": "C", "time": "`+at+`"}`); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}

	type device struct {
		Key    string         `json:"key"`
		Values map[string]any `json:"values"`
	}
	var got []device
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + httpAddr + "/api/devices")
		if err == nil {
			var body struct{ Devices []device }
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if got = body.Devices; len(got) > 0 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != 1 || got[0].Key != "sensors/d1/temperature" {
		t.Fatalf("devices %+v, want sensors/d1/temperature", got)
	}
	v := got[0].Values
	if v["temperature"] != 21.5 || v["unit"] != "C" || !strings.HasPrefix(fmt.Sprint(v["time"]), at[:19]) || len(v) != 3 {
		t.Fatalf("values %v, want temperature 21.5, unit C and time %s", v, at)
	}
}
