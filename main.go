// Command vigil is a stream processor for IoT gateways: it evaluates rules
// over MQTT sensor data in event time and forwards alerts upstream.
//
// main only parses the command line and calls run; the commands are wired in
// cmd_*.go files of this package.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitf(code int, format string, args ...any) error {
	return &exitError{code, fmt.Errorf(format, args...)}
}

// errQuiet is an exit whose messages were already printed.
var errQuiet = errors.New("")

const usage = `vigil — rules over MQTT sensor data, in event time, for IoT gateways

Usage:
  vigil run -c vigil.yaml                      the daemon
  vigil demo [-listen 127.0.0.1:0] [-http 127.0.0.1:8080]
                                               everything in one process: broker, simulated fleet, rules, UI
  vigil check PATH...                          validate config and rule files (files or directories)
  vigil replay --rules PATH [-c vigil.yaml] [FILE|-]
                                               run rules over recorded messages, print alerts as JSON lines
  vigil passwd FILE USER [-role device|admin] [-prefix TOPIC]
                                               write a user of the embedded broker (password on stdin)
  vigil version                                version, commit, Go version, platform
  vigil keygen NAME                            an ed25519 key pair for signing rule bundles
  vigil push --broker URL --key NAME.key (--all | --gateway G) --version V PATH...
                                               check, sign and publish rules to a fleet of gateways
  vigil fleet --broker URL                     the fleet's gateways: status, rules, health

Docs: README.md, docs/rules.md, docs/operations.md, docs/fleet.md
`

// io bundles the standard streams so commands are testable in-process.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], stdio{os.Stdin, os.Stdout, os.Stderr})
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(os.Stderr, "vigil:", msg)
	}
	os.Exit(code)
}

func run(ctx context.Context, args []string, sio stdio) error {
	if len(args) == 0 {
		fmt.Fprint(sio.err, usage)
		return &exitError{2, errQuiet}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "-version", "--version":
		fmt.Fprintln(sio.out, versionString())
		return nil
	case "check":
		return cmdCheck(rest, sio)
	case "replay":
		return cmdReplay(ctx, rest, sio)
	case "run":
		return cmdRun(ctx, rest, sio)
	case "demo":
		return cmdDemo(ctx, rest, sio)
	case "passwd":
		return cmdPasswd(rest, sio)
	case "keygen":
		return cmdKeygen(rest, sio)
	case "push":
		return cmdPush(ctx, rest, sio)
	case "fleet":
		return cmdFleet(ctx, rest, sio)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(sio.out, usage)
		return nil
	default:
		fmt.Fprint(sio.err, usage)
		return exitf(2, "unknown command %q", cmd)
	}
}
