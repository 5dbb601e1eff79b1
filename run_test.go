package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-gw/vigil/internal/freeport"
)

// TestRunCreatesStateDir: `vigil run` with a state path whose directory
// does not exist creates it, mode 0700, and starts; it leaves an existing
// directory's mode alone.
func TestRunCreatesStateDir(t *testing.T) {
	dir := t.TempDir()
	addr, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("rules:\n  - {name: hot, from: \"s/{d}/t\", where: t > 80}\n"), 0o644)
	state := filepath.Join(dir, "var", "lib", "vigil")
	cfg := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("gateway: g\nbroker: {listen: %q}\nupstream: {broker: \"tcp://%s\"}\nstate: {path: %s}\nrules: rules.yaml\nhttp: {listen: \"off\"}\nlog: {level: error}\n",
		addr, addr, filepath.Join(state, "vigil.db"))), 0o644)

	// A stopped context: run starts, finds it done and stops cleanly.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb syncBuf
	if err := run(ctx, []string{"run", "-c", cfg}, stdio{nil, &out, &errb}); err != nil {
		t.Fatalf("run: %v\n%s", err, errb.String())
	}
	fi, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %v, want 0700", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(state, "vigil.db")); err != nil {
		t.Errorf("no database: %v", err)
	}

	// An existing directory keeps its mode.
	if err := os.Chmod(state, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"run", "-c", cfg}, stdio{nil, &out, &errb}); err != nil {
		t.Fatalf("second run: %v\n%s", err, errb.String())
	}
	if fi, _ := os.Stat(state); fi.Mode().Perm() != 0o750 {
		t.Errorf("existing directory's mode changed to %v", fi.Mode().Perm())
	}
}
