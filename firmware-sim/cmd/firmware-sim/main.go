// Command firmware-sim publishes a simulated sensor fleet, with scheduled
// faults, to any MQTT broker, or records it as vigil replay input. It writes
// the ground truth of the faults it injected so detectors can be scored, and
// doubles as the load generator for `make bench`.
//
// It uses only the sim package and the MQTT client: like a real device it
// knows nothing of vigil's internals.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-gw/vigil/conn"
	sim "github.com/vigil-gw/vigil/firmware-sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "firmware-sim:", err)
		os.Exit(1)
	}
}

// options are the parsed flags.
type options struct {
	cfg          sim.Config
	broker       string
	username     string
	passwordFile string
	clientID     string
	qos          int
	connections  int
	speed        float64
	record       string
	truth        string
	progress     time.Duration
	cpuProfile   string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var (
		o                                  options
		kinds, faults, start, until, fmtOp string
		duration                           time.Duration
	)
	fs := flag.NewFlagSet("firmware-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: firmware-sim [flags]\n\n"+
			"Publishes simulated sensors to <prefix>/<device>/<kind> on an MQTT broker,\n"+
			"or with -record writes them as vigil replay input (JSON lines).\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.broker, "broker", "tcp://127.0.0.1:1883", "MQTT broker URL (tcp://, ssl://, ws://)")
	fs.StringVar(&o.username, "username", "", "MQTT username")
	fs.StringVar(&o.passwordFile, "password-file", "", "file holding the MQTT password")
	fs.StringVar(&o.clientID, "client-id", "firmware-sim", "MQTT client id")
	fs.IntVar(&o.qos, "qos", 0, "publish QoS, 0 or 1")
	fs.IntVar(&o.connections, "connections", 1, "MQTT connections; devices are spread over them (more is faster with -speed 0)")
	fs.IntVar(&o.cfg.Devices, "devices", 6, "number of devices")
	fs.StringVar(&kinds, "kinds", "", "comma-separated sensor kinds (default all: "+strings.Join(sim.Kinds(), ",")+")")
	fs.DurationVar(&o.cfg.Rate, "rate", time.Second, "reading interval of each device")
	fs.StringVar(&fmtOp, "format", "json", "payload format: json, influx, value or mixed")
	fs.StringVar(&o.cfg.TopicPrefix, "topic-prefix", "sensors", "first topic level(s)")
	fs.Int64Var(&o.cfg.Seed, "seed", 1, "random seed: the same seed and -start give the same messages")
	fs.StringVar(&start, "start", "", "simulated start, RFC 3339 (default now)")
	fs.DurationVar(&o.cfg.FaultEvery, "fault-every", time.Minute, "inject a random fault about this often (0: none)")
	fs.StringVar(&faults, "faults", "", "comma-separated fault kinds to draw from (default all: "+strings.Join(sim.FaultKinds(), ",")+")")
	fs.DurationVar(&duration, "duration", 0, "stop after this much simulated time (0: run until interrupted)")
	fs.StringVar(&until, "until", "", "stop at this simulated time, RFC 3339 (instead of -duration)")
	fs.Float64Var(&o.speed, "speed", 1, "playback speed: 1 real time, 10 ten times faster, 0 as fast as possible")
	fs.StringVar(&o.record, "record", "", "write vigil replay input to FILE (- for stdout) instead of publishing")
	fs.StringVar(&o.truth, "truth", "", "write the injected faults to FILE as JSON lines at exit")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "progress line interval on stderr (0: none)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to FILE (for measuring the load generator itself)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.cfg.Format = fmtOp
	o.cfg.Kinds = splitList(kinds)
	o.cfg.FaultKinds = splitList(faults)
	o.cfg.Start = time.Now().UTC().Truncate(time.Millisecond)
	if start != "" {
		t, err := time.Parse(time.RFC3339Nano, start)
		if err != nil {
			return o, fmt.Errorf("-start: %w", err)
		}
		o.cfg.Start = t
	}
	switch {
	case until != "" && duration != 0:
		return o, errors.New("-until and -duration exclude each other")
	case until != "":
		t, err := time.Parse(time.RFC3339Nano, until)
		if err != nil {
			return o, fmt.Errorf("-until: %w", err)
		}
		o.cfg.Until = t
	case duration < 0:
		return o, errors.New("-duration: must not be negative")
	case duration > 0:
		o.cfg.Until = o.cfg.Start.Add(duration)
	}
	if o.record != "" && o.cfg.Until.IsZero() {
		return o, errors.New("-record needs -duration or -until")
	}
	if o.qos != 0 && o.qos != 1 {
		return o, fmt.Errorf("-qos %d: want 0 or 1", o.qos)
	}
	if o.connections < 1 || o.connections > 1000 {
		return o, fmt.Errorf("-connections %d: want 1 to 1000", o.connections)
	}
	if o.speed < 0 {
		return o, errors.New("-speed: must not be negative")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// run is the program: main only adds signal handling and the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	s, err := sim.New(o.cfg)
	if err != nil {
		return err
	}
	log := &logger{w: stderr}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if o.record != "" {
		err = record(s, o, stdout, log)
	} else {
		err = publish(ctx, s, o, log)
	}
	if o.truth != "" {
		if terr := writeTruth(o.truth, s.Truth()); terr != nil && err == nil {
			err = terr
		}
	}
	return err
}

func record(s *sim.Sim, o options, stdout io.Writer, log *logger) error {
	cw := &countWriter{w: stdout}
	if o.record == "-" {
		if err := s.Record(cw, o.cfg.Until); err != nil {
			return err
		}
	} else {
		f, err := os.Create(o.record)
		if err != nil {
			return fmt.Errorf("record: %w", err)
		}
		cw.w = f
		err = s.Record(cw, o.cfg.Until)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("record: %w", cerr)
		}
		if err != nil {
			return err
		}
	}
	log.printf("recorded %d messages (%s) from %s to %s, %d faults",
		cw.lines, o.record, o.cfg.Start.Format(time.RFC3339), o.cfg.Until.Format(time.RFC3339), len(s.Truth()))
	return nil
}

func writeTruth(path string, faults []sim.Fault) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("truth: %w", err)
	}
	if err := sim.WriteTruth(f, faults); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("truth: %w", err)
	}
	return nil
}

// connect returns a connected client, or nil when ctx ends first. Like a
// device, it keeps retrying a broker that is not there yet.
func connect(ctx context.Context, o options, clientID string, log *logger) (mqtt.Client, error) {
	opts := mqtt.NewClientOptions().
		AddBroker(o.broker).
		SetClientID(clientID).
		SetCleanSession(true).
		SetStore(newIDStore()).
		// Our own loop retries the first connection (paho's ConnectRetry
		// sleeps in a goroutine nobody can stop); paho reconnects later.
		SetAutoReconnect(true).
		SetMaxReconnectInterval(10 * time.Second).
		SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			log.printf("connection lost: %v (reconnecting)", err)
		}).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) {
			log.printf("reconnecting to %s", o.broker)
		}).
		// Messages published back to back leave in one write(2) per batch,
		// not one each: as a load generator on the gateway's own machine,
		// the simulator should take little of the CPU it measures.
		SetCustomOpenConnectionFn(conn.DialCoalesced)
	if o.username != "" {
		opts.SetUsername(o.username)
	}
	if o.passwordFile != "" {
		b, err := os.ReadFile(o.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		opts.SetPassword(strings.TrimSpace(string(b)))
	}
	c := mqtt.NewClient(opts)
	for attempt := 0; ; attempt++ {
		t := c.Connect().(*mqtt.ConnectToken)
		select {
		case <-t.Done():
		case <-ctx.Done():
			t.Wait() // bounded by the connect timeout
			c.Disconnect(0)
			return nil, nil
		}
		err := t.Error()
		if err == nil {
			log.printf("connected to %s as %s", o.broker, clientID)
			return c, nil
		}
		if rc := t.ReturnCode(); rc >= 1 && rc <= 5 {
			// The broker answered and refused (CONNACK codes 1-5, e.g. bad
			// credentials): retrying will not help. Higher codes are paho's
			// own for network errors.
			return nil, fmt.Errorf("connect %s: %w", o.broker, err)
		}
		if attempt%15 == 0 {
			log.printf("waiting for broker %s: %v", o.broker, err)
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(2 * time.Second):
		}
	}
}

// startProgress prints a line every interval until the returned func is
// called.
func startProgress(every time.Duration, log *logger, c *counts, s *sim.Sim) func() {
	if every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		last, lastAt := int64(0), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				n := c.sent.Load()
				log.printf("sent %d (%.0f/s), dropped %d, faults %d",
					n, float64(n-last)/now.Sub(lastAt).Seconds(), c.dropped.Load(), len(s.Truth()))
				last, lastAt = n, now
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// logger serialises lines from the publisher, the progress ticker and the
// MQTT client's callbacks.
type logger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logger) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "firmware-sim: "+format+"\n", args...)
}

type countWriter struct {
	w     io.Writer
	lines int
}

func (c *countWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			c.lines++
		}
	}
	return c.w.Write(p)
}
