package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFleetCommands: keygen, push and fleet exit codes and messages that
// need no broker (TestFleet runs them against one).
func TestFleetCommands(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "ops")
	if _, errs, code := runCmd(t, "", "keygen"); code != 2 {
		t.Fatalf("keygen without a name: exit %d: %s", code, errs)
	}
	if out, errs, code := runCmd(t, "", "keygen", key); code != 0 || !strings.Contains(out, "ops.key") {
		t.Fatalf("keygen: exit %d: %s%s", code, out, errs)
	}
	if _, errs, code := runCmd(t, "", "keygen", key); code != 1 || !strings.Contains(errs, "exists") {
		t.Fatalf("keygen over an existing key: exit %d: %s", code, errs)
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("rules:\n  - {name: a, from: x/y}\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	twin := filepath.Join(dir, "sub", "good.yaml")
	os.WriteFile(twin, []byte("rules:\n  - {name: b, from: x/y}\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("rules:\n  - {name: a, from: x/y, where: \"x >\"}\n"), 0o644)
	cfg := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(cfg, []byte("gateway: g\nrules: good.yaml\n"), 0o644)
	// Port 9 (discard) on loopback: nothing listens, and a push that got
	// as far as connecting would fail with exit 1 and a connect error.
	broker := "tcp://127.0.0.1:9"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no broker", []string{"push", "--key", key + ".key", "--all", "--version", "1", good}, 2, "--broker is required"},
		{"all and gateway", []string{"push", "--broker", broker, "--key", key + ".key", "--all", "--gateway", "g", "--version", "1", good}, 2, "one of --all and --gateway"},
		{"no version", []string{"push", "--broker", broker, "--key", key + ".key", "--all", good}, 2, "--version"},
		{"gateway with a slash", []string{"push", "--broker", broker, "--key", key + ".key", "--gateway", "a/b", "--version", "1", good}, 2, "without / + #"},
		{"bad prefix", []string{"push", "--broker", broker, "--prefix", "a/#", "--all", "--clear"}, 2, "--prefix"},
		{"clear with a path", []string{"push", "--broker", broker, "--all", "--clear", good}, 2, "--clear takes no PATH"},
		{"invalid rules", []string{"push", "--broker", broker, "--key", key + ".key", "--all", "--version", "1", bad}, 1, bad + ":2:"},
		{"same base name", []string{"push", "--broker", broker, "--key", key + ".key", "--all", "--version", "1", good, twin}, 1, "same file name as"},
		{"a config", []string{"push", "--broker", broker, "--key", key + ".key", "--all", "--version", "1", cfg}, 1, "a daemon config"},
		{"not a key", []string{"push", "--broker", broker, "--key", good, "--all", "--version", "1", good}, 1, "key:"},
		{"broker unreachable", []string{"push", "--broker", broker, "--key", key + ".key", "--all", "--version", "1", good}, 1, "connect"},
		{"fleet without broker", []string{"fleet"}, 2, "usage: vigil fleet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := runCmd(t, "", tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, want %d; stderr:\n%s\nwant %q", code, tc.code, errs, tc.want)
			}
		})
	}
}
