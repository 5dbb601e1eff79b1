package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMakeDemoCtrlC: Ctrl-C on `make demo` (SIGINT to the terminal's whole
// process group: make, and the demo it runs) stops the demo with exit 0,
// and make reports no error ("make: *** [Makefile:…: demo] Error 1" was
// what a newcomer saw when the target used `go run`, which exits 1 on
// SIGINT).
func TestMakeDemoCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary with make and runs the demo")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	cmd := exec.Command("make", "--no-print-directory", "demo")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	ended := false
	defer func() {
		if !ended {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()

	var out bytes.Buffer
	ready := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "Ctrl-C stops.") {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-copied:
		t.Fatalf("make demo ended before it was ready:\n%s", out.String())
	case <-time.After(5 * time.Minute):
		t.Fatal("make demo: not ready after 5 minutes")
	}
	// As the terminal does: SIGINT to every process of the group.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
		ended = true
	case <-time.After(time.Minute):
		t.Fatal("make demo still running a minute after Ctrl-C")
	}
	<-copied
	// make itself got the SIGINT too: it may end by it (as any program
	// does), but with no error of its own.
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT) {
		t.Errorf("make demo after Ctrl-C: %v", err)
	}
	if s := out.String(); strings.Contains(s, "make: ***") || strings.Contains(s, "Error") || strings.Contains(s, "exit status") {
		t.Errorf("make demo reported an error after Ctrl-C:\n%s", s)
	}
}
