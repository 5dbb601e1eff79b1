package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// runCmd runs a vigil command in-process.
func runCmd(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, stdio{strings.NewReader(stdin), &out, &errb})
	code = 0
	if err != nil {
		code = 1
		if ee, ok := err.(*exitError); ok {
			code = ee.code
		}
		if msg := err.Error(); msg != "" {
			errb.WriteString("vigil: " + msg + "\n")
		}
	}
	return out.String(), errb.String(), code
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -run %s -update rewrites it)\n--- got\n%s\n--- want\n%s", path, t.Name(), got, want)
	}
}

// TestReplayGolden runs every case under testdata/replay: rules.yaml over
// input.jsonl must print want.jsonl; want.summary, when present, is the
// summary replay writes to stderr.
func TestReplayGolden(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/replay/*")
	if len(dirs) == 0 {
		t.Fatal("no replay cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out, errs, code := runCmd(t, "", "replay", "--rules", filepath.Join(dir, "rules.yaml"), filepath.Join(dir, "input.jsonl"))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			golden(t, filepath.Join(dir, "want.jsonl"), out)
			// A case opts into checking the summary by having the file
			// (touch it, then run with -update).
			if _, err := os.Stat(filepath.Join(dir, "want.summary")); err == nil {
				golden(t, filepath.Join(dir, "want.summary"), errs)
			}
		})
	}
}

// TestCheckErrors runs `vigil check` over every testdata/check/*.bad.yaml; its
// stderr must equal the .err file beside it, and every *.good.yaml passes.
func TestCheckErrors(t *testing.T) {
	bad, _ := filepath.Glob("testdata/check/*.bad.yaml")
	if len(bad) == 0 {
		t.Fatal("no bad cases")
	}
	for _, f := range bad {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, errs, code := runCmd(t, "", "check", f)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, errs)
			}
			golden(t, strings.TrimSuffix(f, ".yaml")+".err", errs)
		})
	}
	good, _ := filepath.Glob("testdata/check/*.good.yaml")
	for _, f := range good {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, errs, code := runCmd(t, "", "check", f)
			if code != 0 || !strings.HasPrefix(out, "ok:") {
				t.Fatalf("exit %d: %s%s", code, out, errs)
			}
		})
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemo: `vigil demo` needs no files and no other program, prints its
// addresses, and a newcomer sees a real alert within a minute.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for up to a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb syncBuf
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "-http", "127.0.0.1:0", "-state", t.TempDir()}, stdio{strings.NewReader(""), &out, &errb})
	}()
	for !strings.Contains(out.String(), "hot_motor") {
		select {
		case err := <-done:
			t.Fatalf("demo ended early: %v\n%s%s", err, out.String(), errb.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo after Ctrl-C: %v", err)
	}
	s := out.String()
	for _, want := range []string{"broker mqtt://127.0.0.1:", "web UI: http://127.0.0.1:", "CRITICAL hot_motor", "pump-01 at "} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
}

// TestExamplesCheck: the shipped example config and rules are valid.
func TestExamplesCheck(t *testing.T) {
	out, errs, code := runCmd(t, "", "check", "examples/")
	if code != 0 || !strings.HasPrefix(out, "ok: ") || !strings.Contains(out, "1 config files") {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
}

// TestReplayExitCodes: 1 for invalid rules, 2 for unreadable input, 0 for
// a run with bad lines in it.
func TestReplayExitCodes(t *testing.T) {
	if _, errs, code := runCmd(t, "", "replay", "--rules", "testdata/check/syntax.bad.yaml", "testdata/replay/cooldown/input.jsonl"); code != 1 || !strings.Contains(errs, "syntax.bad.yaml:4:4:") {
		t.Fatalf("invalid rules: exit %d, %s", code, errs)
	}
	if _, errs, code := runCmd(t, "", "replay", "--rules", "testdata/replay/cooldown/rules.yaml", "testdata/no/such/file"); code != 2 {
		t.Fatalf("missing input: exit %d, %s", code, errs)
	}
	out, errs, code := runCmd(t, "{\"topic\": \"doors/d1/state\", \"payload\": {\"open\": true, \"ts\": 1}}\nnot json\n", "replay", "--rules", "testdata/replay/cooldown/rules.yaml", "-")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(errs, "stdin:2: not a JSON object") {
		t.Fatalf("stdin: exit %d\n%s%s", code, out, errs)
	}
	if out, _, code := runCmd(t, "", "version"); code != 0 || !strings.HasPrefix(out, "vigil ") {
		t.Fatalf("version: %d %s", code, out)
	}
}
