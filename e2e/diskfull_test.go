//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

const everyReading = `rules:
  - name: every
    from: sensors/{device}/reading
    key: string(seq)
    severity: info
`

// mountTmpfs mounts a tmpfs of size bytes at dir for the test (root only).
func mountTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (CI runs as root)")
	}
	os.MkdirAll(dir, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// fill writes a file at path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatal(err)
		}
	}
	for n := len(buf) / 2; n > 0; n /= 2 { // the last crumbs too
		f.Write(buf[:n])
	}
}

// TestDiskFull: the contract's disk-full guarantee against a real `vigil
// run` whose state lives on a small, really full file system. With the
// disk full, a device's QoS 1 messages are not acknowledged, /healthz says
// 503 and the status degraded; vigil is then killed (-9), space returns,
// vigil starts again, the device sends the unacknowledged messages again,
// and every message — acknowledged before, or held — gives its alert
// upstream: nothing acknowledged is lost.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	mountTmpfs(t, state, 8<<20)
	writeFile(t, filepath.Join(dir, "rules", "every.yaml"), everyReading)
	up := startMosquitto(t, mosquittoOptions{})
	alerts := watchUpstream(t, up.Addr())
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`gateway: e2e
broker: {listen: "%s"}
upstream: {broker: "tcp://%s"}
state: {path: state/vigil.db, checkpoint_every: 1h}
rules: rules
http: {listen: "%s"}
`, brokerAddr, up.Addr(), httpAddr)
	v := startVigil(t, dir, cfg, httpAddr)
	if err := waitPort(portOf(brokerAddr), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	o := paho.NewClientOptions().AddBroker("tcp://" + brokerAddr).SetClientID("diskfull-device").
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(300 * time.Millisecond)
	dev := paho.NewClient(o)
	if tok := dev.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	t.Cleanup(func() { dev.Disconnect(100) })
	send := func(seq int) paho.Token {
		return dev.Publish("sensors/d1/reading", 1, false, fmt.Sprintf(`{"seq": %d, "pad": %q}`, seq, strings.Repeat("p", 200)))
	}
	for seq := range 20 {
		if tok := send(seq); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", seq, tok.Error())
		}
	}
	alerts.waitRule(t, "every", 20, 20*time.Second)

	fill(t, filepath.Join(state, "filler"))
	// The journal's last page may still have room for a few messages:
	// send until one is not acknowledged, then a few more.
	n := 20
	var held []paho.Token
	for ; n < 500 && len(held) == 0; n++ {
		if tok := send(n); !tok.WaitTimeout(2 * time.Second) {
			held = append(held, tok)
		} else if tok.Error() != nil {
			t.Fatalf("publish %d: %v", n, tok.Error())
		}
	}
	if len(held) == 0 {
		t.Fatalf("500 messages acknowledged with the disk full")
	}
	for i := 0; i < 5; i++ {
		held = append(held, send(n))
		n++
	}
	eventually(t, 20*time.Second, "degraded, /healthz 503", func() (bool, string) {
		var s struct {
			Degraded bool `json:"degraded"`
		}
		v.get("/api/status", "", &s)
		code := v.get("/healthz", "", nil)
		return s.Degraded && code == 503, fmt.Sprintf("degraded %v, /healthz %d", s.Degraded, code)
	})
	time.Sleep(2 * time.Second) // a few retries of the journal (once a second)
	for i, tok := range held {
		if tok.WaitTimeout(0) {
			t.Fatalf("held message %d acknowledged while the disk was full (err %v)", i, tok.Error())
		}
	}

	v.cmd.Process.Signal(syscall.SIGKILL)
	<-v.done
	if err := os.Remove(filepath.Join(state, "filler")); err != nil {
		t.Fatal(err)
	}
	startVigil(t, dir, cfg, httpAddr)
	for i, tok := range held {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("held message %d: no PUBACK after the restart with space: %v", i, tok.Error())
		}
	}
	// An alert may come twice (the same id: upstream drops the copy); none
	// may be missing.
	eventually(t, 30*time.Second, fmt.Sprintf("an alert for each of the %d messages", n), func() (bool, string) {
		keys := map[string]bool{}
		for _, a := range alerts.of("every") {
			keys[a.Key] = true
		}
		var missing []int
		for seq := range n {
			if !keys[fmt.Sprint(seq)] {
				missing = append(missing, seq)
			}
		}
		return len(missing) == 0, fmt.Sprintf("missing %v", missing)
	})
}
