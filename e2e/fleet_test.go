//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFleetMosquitto runs the repository's fleet test (two real `vigil
// run` processes: presence, pushed bundles applied and rejected, the will
// after kill -9, a restart with the broker down) against a Mosquitto
// instead of the embedded broker. The test stops the Mosquitto itself for
// its last step, by the pid given in VIGIL_E2E_BROKER_PID.
func TestFleetMosquitto(t *testing.T) {
	m := startMosquitto(t, mosquittoOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd(), "test", "-run", "^TestFleet$", "-count=1", "-v", ".")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VIGIL_E2E_BROKER="+m.Addr(), "VIGIL_E2E_BROKER_PID="+strconv.Itoa(m.cmd.Process.Pid))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestFleet") {
		t.Fatalf("fleet test against Mosquitto %s: %v\n%s", m.Addr(), err, tail(string(out), 8000))
	}
}
