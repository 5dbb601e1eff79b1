//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// vigilBin is the real binary, built once by TestMain.
var vigilBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigil-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	vigilBin = filepath.Join(dir, "vigil")
	build := exec.Command(goCmd(), "build", "-o", vigilBin, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goCmd is the go command make uses ($(GO) is passed as GO).
func goCmd() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// tool finds an external program: $env, then PATH, then Debian's place.
// A missing one fails the test: make e2e must not pass by skipping.
func tool(t *testing.T, env, name, debian string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat(debian); err == nil {
		return debian
	}
	t.Fatalf("%s not found (install the Debian package, or set %s)", name, env)
	return ""
}

// orphanKill makes the kernel kill a child when the test binary dies
// without running its cleanups (a -timeout panic), so no broker or gateway
// outlives a failed run.
func orphanKill() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before we listen; at our scale that does not happen in practice.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(port int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on 127.0.0.1:%d after %s: %w", port, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventually polls cond until it holds or within passes; cond returns what
// it saw, for the failure message.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	var saw string
	for {
		var ok bool
		if ok, saw = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last seen: %s", what, within, saw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logBuf is a process's output, safe to read while it is written.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) count(substr string) int { return strings.Count(l.String(), substr) }

// lines returns the lines holding every one of substrs.
func (l *logBuf) lines(substrs ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := true
		for _, s := range substrs {
			ok = ok && strings.Contains(line, s)
		}
		if ok && line != "" {
			out = append(out, line)
		}
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// vigil is one `vigil run` process.
type vigil struct {
	t    *testing.T
	dir  string
	cfg  string
	cmd  *exec.Cmd
	logs *logBuf
	done chan struct{}
	http string // base URL when the config enables HTTP
}

// startVigil writes cfg to dir/vigil.yaml and runs `vigil run -c` on it
// until the test ends: then SIGTERM, which must stop it cleanly. On a
// failure its log is shown.
func startVigil(t *testing.T, dir, cfg, httpAddr string) *vigil {
	t.Helper()
	v := &vigil{t: t, dir: dir, cfg: filepath.Join(dir, "vigil.yaml"), logs: &logBuf{}, done: make(chan struct{})}
	if httpAddr != "" {
		v.http = "http://" + httpAddr
	}
	if err := os.WriteFile(v.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	v.cmd = exec.Command(vigilBin, "run", "-c", v.cfg)
	v.cmd.Stdout, v.cmd.Stderr = v.logs, v.logs
	v.cmd.SysProcAttr = orphanKill()
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { v.cmd.Wait(); close(v.done) }()
	t.Cleanup(func() {
		if v.running() {
			v.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-v.done:
				if !v.cmd.ProcessState.Success() {
					t.Errorf("vigil did not stop cleanly on SIGTERM: %v", v.cmd.ProcessState)
				}
			case <-time.After(20 * time.Second):
				v.cmd.Process.Kill()
				<-v.done
				t.Errorf("vigil did not stop within 20 s of SIGTERM")
			}
		}
		if t.Failed() {
			t.Logf("vigil log (%s):\n%s", v.cfg, tail(v.logs.String(), 6000))
		}
	})
	return v
}

func (v *vigil) running() bool {
	select {
	case <-v.done:
		return false
	default:
		return true
	}
}

// waitLog waits until the log holds substr n times.
func (v *vigil) waitLog(substr string, n int, within time.Duration) {
	v.t.Helper()
	eventually(v.t, within, fmt.Sprintf("vigil logs %q %d times", substr, n), func() (bool, string) {
		if !v.running() {
			v.t.Fatalf("vigil exited: %v", v.cmd.ProcessState)
		}
		c := v.logs.count(substr)
		return c >= n, fmt.Sprintf("%d times", c)
	})
}

// get fetches a JSON endpoint of vigil's API into out and returns the
// status code.
func (v *vigil) get(path, token string, out any) int {
	v.t.Helper()
	req, _ := http.NewRequest("GET", v.http+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(body, out); err != nil {
			v.t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

// status is the part of /api/status the tests read.
type status struct {
	BrokerConnected   bool     `json:"broker_connected"`
	UpstreamConnected bool     `json:"upstream_connected"`
	OutboxDepth       int      `json:"outbox_depth"`
	MessagesTotal     int      `json:"messages_total"`
	AlertsTotal       int      `json:"alerts_total"`
	ReloadErrors      []string `json:"reload_errors"`
	LastError         string   `json:"last_error"`
}

func (v *vigil) status() status {
	var s status
	v.get("/api/status", "", &s)
	return s
}

// ruleNames lists the running rules (GET /api/rules).
func (v *vigil) ruleNames() []string {
	var body struct {
		Rules []struct {
			Name string `json:"name"`
		} `json:"rules"`
	}
	v.get("/api/rules", "", &body)
	var names []string
	for _, r := range body.Rules {
		names = append(names, r.Name)
	}
	return names
}
