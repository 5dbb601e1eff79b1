//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCrashRecoveryMosquitto runs the repository's crash test (kill -9 of
// the real `vigil run` at random moments, upstream compared with replay)
// against a Mosquitto instead of the embedded broker: VIGIL_E2E_BROKER
// makes it use lateness 0 and publish straight through the kills, which
// Mosquitto's ordered redelivery allows.
func TestCrashRecoveryMosquitto(t *testing.T) {
	m := startMosquitto(t, mosquittoOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd(), "test", "-run", "^TestCrashRecovery$", "-count=1", "-v", ".")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VIGIL_E2E_BROKER="+m.Addr())
	out, err := cmd.CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "kills,") || strings.HasPrefix(strings.TrimSpace(l), "--- ") {
			t.Log(strings.TrimSpace(l))
		}
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestCrashRecovery") {
		t.Fatalf("crash test against Mosquitto %s: %v\n%s", m.Addr(), err, tail(string(out), 8000))
	}
}
