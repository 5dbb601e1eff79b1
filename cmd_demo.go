package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-gw/vigil/config"
	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/expr"
	sim "github.com/vigil-gw/vigil/firmware-sim"
	"github.com/vigil-gw/vigil/gateway"
	"github.com/vigil-gw/vigil/internal/freeport"
)

//go:embed examples/demo-rules.yaml
var demoRules []byte

// cmdDemo runs everything in one process with no files and no other
// program: an embedded broker on loopback, a simulated fleet with scheduled
// faults, the example rules, the web UI; alerts print to the terminal.
func cmdDemo(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	listen := fs.String("listen", "127.0.0.1:0", "embedded MQTT broker address (port 0: any free port)")
	httpAddr := fs.String("http", "127.0.0.1:8080", `web UI address ("off" to disable; a busy port falls back to any free one)`)
	devices := fs.Int("devices", 12, "simulated devices")
	faultEvery := fs.Duration("fault-every", 30*time.Second, "inject a fault about this often")
	rulesPath := fs.String("rules", "", "rule files to use instead of the bundled examples")
	stateDir := fs.String("state", "", "directory for the state database (default: a temporary one)")
	seed := fs.Int64("seed", 0, "simulator seed (0: from the clock)")
	verbose := fs.Bool("v", false, "log the pipeline's debug lines")
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errQuiet}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(sio.err, &slog.HandlerOptions{Level: level}))

	dir := *stateDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "vigil-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	rulePaths := []string{*rulesPath}
	if *rulesPath == "" {
		p := filepath.Join(dir, "demo-rules.yaml")
		if err := os.WriteFile(p, demoRules, 0o644); err != nil {
			return err
		}
		rulePaths = []string{p}
	}

	// vigil's own embedded broker, ingested in-process (no mqtt.broker),
	// as docs/operations.md recommends for a small gateway. Its address is
	// fixed first, so the simulator and the banner know it.
	addr, err := demoAddr(*listen)
	if err != nil {
		return err
	}
	cfg := config.Default()
	cfg.Gateway = "demo"
	cfg.Broker.Listen = addr
	cfg.MQTT.Broker = "tcp://" + addr
	cfg.MQTT.InProcess = true
	cfg.Upstream.Broker = "tcp://" + addr
	cfg.State.Path = filepath.Join(dir, "vigil.db")
	cfg.Rules = rulePaths
	cfg.Limits.Grace = 2 * time.Second
	cfg.HTTP.Listen = *httpAddr
	if *httpAddr != "off" && !portFree(*httpAddr) {
		cfg.HTTP.Listen = "127.0.0.1:0"
	}

	if *seed == 0 {
		*seed = time.Now().UnixNano()
	}
	// A spike on the first pump 15 s in, so a newcomer sees a real alert
	// within the first minute whatever the random faults turn out to be.
	now := time.Now().UTC().Truncate(time.Second)
	fleet, err := sim.New(sim.Config{Seed: *seed, Devices: *devices, Rate: time.Second,
		FaultEvery: *faultEvery, Start: now,
		Faults: []sim.Fault{{Device: "pump-01", Kind: "spike", Start: now.Add(15 * time.Second), End: now.Add(17 * time.Second), Magnitude: 40}}})
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	defer wg.Wait() // runs after cancel: the fleet stops first
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		runFleet(ctx, fleet, addr, log)
	}()

	fmt.Fprintf(sio.out, "vigil demo: broker mqtt://%s, %d simulated devices, a fault about every %s\n", addr, *devices, *faultEvery)
	fmt.Fprintf(sio.out, "  subscribe to everything: mosquitto_sub -h %s -p %s -t '#' -v\n", hostOf(addr), portOf(addr))
	printer := &alertPrinter{w: sio.out}
	return runGateway(ctx, cfg, log, func(o *gateway.Options) {
		prev := o.OnAlert
		o.OnAlert = func(a event.Alert) {
			printer.print(a)
			if prev != nil {
				prev(a)
			}
		}
	}, func(url string) {
		fmt.Fprintf(sio.out, "  web UI: %s\n  Ctrl-C stops.\n\n", url)
	})
}

// demoAddr is listen, with port 0 replaced by a port free a moment ago.
func demoAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("-listen %q: %w", listen, err)
	}
	if port != "0" {
		return listen, nil
	}
	addr, err := freeport.Addr(host)
	if err != nil {
		return "", fmt.Errorf("-listen %q: %w", listen, err)
	}
	return addr, nil
}

// runFleet publishes the simulated fleet in real time until ctx ends,
// reconnecting if the broker goes away.
func runFleet(ctx context.Context, fleet *sim.Sim, addr string, log *slog.Logger) {
	// The broker starts with the gateway, a moment after this.
	var c *conn.Client
	var err error
	for start := time.Now(); ; {
		if c, err = conn.Dial(ctx, conn.Options{Broker: "tcp://" + addr, ClientID: "firmware-sim", Logger: log}); err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 30*time.Second {
			log.Error("simulator: connect", "err", err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer c.Close()
	err = fleet.Run(ctx, func(topic string, payload []byte) error {
		return c.Publish(topic, payload, 1, false)
	}, 1)
	if err != nil && ctx.Err() == nil {
		log.Error("simulator", "err", err)
	}
}

type alertPrinter struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *alertPrinter) print(a event.Alert) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sev := strings.ToUpper(a.Severity)
	msg := a.Message
	if msg == "" {
		msg = compactValues(a.Values)
	}
	fmt.Fprintf(p.w, "%s  %-8s %-20s %-12s %-8s %s\n", a.Time.Local().Format("15:04:05"), sev, a.Rule, a.Key, a.State, msg)
}

func compactValues(v map[string]any) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + expr.FormatValue(v[k])
	}
	return strings.Join(parts, " ")
}

// portFree reports whether addr can be listened on now.
func portFree(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func hostOf(addr string) string {
	h, _, _ := strings.Cut(addr, ":")
	return h
}

func portOf(addr string) string {
	i := strings.LastIndex(addr, ":")
	return addr[i+1:]
}
