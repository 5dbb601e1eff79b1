// Command vigil-load measures the real `vigil run` binary under load from the
// real simulator binary (firmware-sim), both as subprocesses: vigil with its
// embedded broker (which the simulator publishes to, and which is also its
// upstream), the rules of rules10.yaml, the web UI on (the product default)
// and the journal on or off.
//
//	vigil-load -mode rss        10,000 devices at a modest rate in real time;
//	                            after a warm-up covering every device several
//	                            times, VmRSS and VmHWM from /proc/<pid>/status
//	vigil-load -mode throughput as fast as the simulator gets readings into
//	                            the broker (or paced with -speed 1: devices/rate
//	                            readings a second); messages processed per
//	                            second, readings lost, and vigil's CPU time
//	vigil-load -mode budget     the Pi's budget at a steady rate (devices/rate
//	                            readings a second, real time): vigil's CPU while
//	                            idle and under load, bytes it wrote to disk per
//	                            message (/proc/PID/io write_bytes) and its
//	                            fsync/fdatasync calls a second (vigil runs under
//	                            strace --seccomp-bpf, which stops it only on
//	                            those two calls)
//
// With -ingest mosquitto, a Mosquitto on a free loopback port is the broker
// (vigil subscribes to it and sends its alerts there) instead of vigil's
// embedded broker.
//
// It reads vigil's counters from GET /api/status and its memory and CPU from
// /proc. Build the binaries first (`make bench-e2e` does):
//
//	go build -o bin/vigil . && go build -o bin/firmware-sim ./firmware-sim/cmd/firmware-sim
//	go run ./cmd/vigil-load -mode rss
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/store"
)

type options struct {
	mode, vigil, sim, rules string
	devices, connections    int
	qos                     int
	rate, warmup, measure   time.Duration
	simDuration             time.Duration
	checkpointEvery         time.Duration
	speed                   float64
	journal                 bool
	keep                    bool
	ingest                  string
	idle                    time.Duration
	prefill                 int
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "rss", "rss | throughput | budget")
	flag.StringVar(&o.ingest, "ingest", "embedded", "embedded (vigil's own broker) | mosquitto (a Mosquitto on a free port)")
	flag.DurationVar(&o.idle, "idle", 10*time.Second, "budget: wall time measured idle before the load")
	flag.IntVar(&o.prefill, "prefill", 0, "alerts in the history before vigil starts (a gateway that has run for days holds up to state.history_max, 200,000)")
	flag.StringVar(&o.vigil, "vigil", "bin/vigil", "vigil binary")
	flag.StringVar(&o.sim, "sim", "bin/firmware-sim", "firmware-sim binary")
	flag.StringVar(&o.rules, "rules", "cmd/vigil-load/rules10.yaml", "rule file")
	flag.IntVar(&o.devices, "devices", 0, "simulated devices (default: rss 10000, throughput 1000)")
	flag.IntVar(&o.connections, "connections", 4, "simulator MQTT connections")
	flag.IntVar(&o.qos, "qos", 1, "simulator QoS (0 or 1)")
	flag.DurationVar(&o.rate, "rate", 0, "each device's interval (default: rss 5s, throughput 20ms)")
	flag.DurationVar(&o.warmup, "warmup", 60*time.Second, "rss: wall time before measuring")
	flag.DurationVar(&o.measure, "measure", 30*time.Second, "rss: wall time measured after the warm-up")
	flag.DurationVar(&o.simDuration, "sim-duration", 4*time.Second, "throughput: simulated time to publish (devices × duration/rate readings)")
	flag.Float64Var(&o.speed, "speed", 0, "throughput: simulator speed (0 as fast as the broker takes them; 1 real time: devices/rate msg/s for sim-duration)")
	flag.BoolVar(&o.journal, "journal", true, "state.journal")
	flag.DurationVar(&o.checkpointEvery, "checkpoint-every", 0, "state.checkpoint_every (0: vigil's default)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.Parse()
	if o.devices == 0 {
		o.devices = map[string]int{"rss": 10000, "throughput": 1000, "budget": 1000}[o.mode]
	}
	if o.rate == 0 {
		o.rate = map[string]time.Duration{"rss": 5 * time.Second, "throughput": 20 * time.Millisecond, "budget": time.Second}[o.mode]
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-load:", err)
		os.Exit(1)
	}
}

// freePorts returns n distinct free loopback ports: their listeners are
// all open at once, so two cannot be the same port.
func freePorts(n int) []int {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

type vigilProc struct {
	cmd    *exec.Cmd
	http   string
	exited chan struct{} // closed when the process has exited; err is then set
	err    error
}

func run(o options) error {
	if o.mode != "rss" && o.mode != "throughput" && o.mode != "budget" {
		return fmt.Errorf("-mode %q: want rss, throughput or budget", o.mode)
	}
	if o.ingest != "embedded" && o.ingest != "mosquitto" {
		return fmt.Errorf("-ingest %q: want embedded or mosquitto", o.ingest)
	}
	dir, err := os.MkdirTemp("", "vigil-load-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	rulesYAML, err := os.ReadFile(o.rules)
	if err != nil {
		return err
	}
	os.MkdirAll(filepath.Join(dir, "rules"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "rules", "rules.yaml"), rulesYAML, 0o644); err != nil {
		return err
	}
	ports := freePorts(2)
	bport, hport := ports[0], ports[1]
	cpEvery := ""
	if o.checkpointEvery > 0 {
		cpEvery = ", checkpoint_every: " + o.checkpointEvery.String()
	}
	// All the simulator's connections come from 127.0.0.1: past the
	// broker's per-address default (100) the limits are raised to fit.
	limits := ""
	if o.connections > 90 {
		limits = fmt.Sprintf(", max_clients: %d, max_clients_per_address: %d", o.connections+20, o.connections+20)
	}
	brokerCfg := fmt.Sprintf("broker: {listen: \"127.0.0.1:%d\"%s}", bport, limits)
	if o.ingest == "mosquitto" {
		stop, err := startMosquitto(dir, bport)
		if err != nil {
			return err
		}
		defer stop()
		brokerCfg = fmt.Sprintf("mqtt: {broker: \"tcp://127.0.0.1:%d\"}", bport)
	}
	cfg := fmt.Sprintf(`gateway: load
%s
upstream: {broker: "tcp://127.0.0.1:%d", topic: "vigil/{gateway}/alerts/{rule}"}
state: {path: %s, journal: %v%s}
rules: %s
http: {listen: "127.0.0.1:%d"}
log: {level: warn}
`, brokerCfg, bport, filepath.Join(dir, "vigil.db"), o.journal, cpEvery, filepath.Join(dir, "rules"), hport)
	if o.prefill > 0 {
		if err := prefill(filepath.Join(dir, "vigil.db"), o.prefill); err != nil {
			return err
		}
	}
	cfgPath := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "vigil.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	v := &vigilProc{http: fmt.Sprintf("http://127.0.0.1:%d", hport), exited: make(chan struct{})}
	var syncLog string
	if o.mode == "budget" {
		// strace stops vigil only on the two calls the seccomp filter
		// lets through; every other call runs at full speed.
		syncLog = filepath.Join(dir, "syncs.log")
		v.cmd = exec.Command("strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=fsync,fdatasync", "-o", syncLog,
			o.vigil, "run", "-c", cfgPath)
	} else {
		v.cmd = exec.Command(o.vigil, "run", "-c", cfgPath)
	}
	v.cmd.Stderr = logf
	v.cmd.Stdout = logf
	if err := v.cmd.Start(); err != nil {
		return err
	}
	go func() {
		v.err = v.cmd.Wait()
		close(v.exited)
	}()
	pid := v.cmd.Process.Pid
	defer func() {
		syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-v.exited:
		case <-time.After(20 * time.Second):
			v.cmd.Process.Kill()
			<-v.exited
		}
	}()
	if err := waitUp(v, 20*time.Second); err != nil {
		return fmt.Errorf("%w (log: %s)", err, logf.Name())
	}
	if syncLog != "" {
		if pid, err = tracedChild(v.cmd.Process.Pid); err != nil {
			return err
		}
	}
	fmt.Printf("vigil-load: mode=%s ingest=%s vigil=%s pid=%d rules=%s (%d rules) journal=%v devices=%d rate=%s qos=%d connections=%d\n",
		o.mode, o.ingest, o.vigil, pid, o.rules, strings.Count(string(rulesYAML), "\n  - name:"), o.journal, o.devices, o.rate, o.qos, o.connections)
	fmt.Printf("vigil-load: machine: %s, %d cpus, load average %s\n", cpuModel(), numCPU(), loadavg())
	cal := calibrate()
	fmt.Printf("vigil-load: calibration: %.0f ms for a fixed piece of work (lower is a faster machine at this moment)\n", cal.Seconds()*1e3)
	st0, _ := status(v)
	rss0, hwm0 := procMem(pid)
	fmt.Printf("vigil-load: idle: VmRSS %.1f MB, VmHWM %.1f MB\n", rss0/1024, hwm0/1024)
	if o.mode == "budget" && o.idle > 0 {
		c0, w0, s0, t := procCPU(pid), procWrites(pid), countSyncs(syncLog), time.Now()
		time.Sleep(o.idle)
		el := time.Since(t).Seconds()
		fmt.Printf("vigil-load: RESULT idle %.0fs: vigil CPU %.2f%% of one core, %.0f bytes written/s, %.1f fsync/s\n",
			el, 100*(procCPU(pid)-c0)/el, float64(procWrites(pid)-w0)/el, float64(countSyncs(syncLog)-s0)/el)
		st0, _ = status(v)
	}

	simArgs := []string{"-broker", fmt.Sprintf("tcp://127.0.0.1:%d", bport), "-client-id", "load",
		"-devices", strconv.Itoa(o.devices), "-kinds", "temperature", "-rate", o.rate.String(),
		"-fault-every", "0", "-qos", strconv.Itoa(o.qos), "-connections", strconv.Itoa(o.connections), "-progress", "0"}
	if o.mode == "rss" || o.mode == "budget" {
		simArgs = append(simArgs, "-speed", "1")
	} else {
		simArgs = append(simArgs, "-speed", strconv.FormatFloat(o.speed, 'g', -1, 64), "-duration", o.simDuration.String())
	}
	sim := exec.Command(o.sim, simArgs...)
	simOut, _ := sim.StderrPipe()
	fmt.Printf("vigil-load: %s %s\n", o.sim, strings.Join(simArgs, " "))
	t0 := time.Now()
	cpu0 := procCPU(pid)
	if err := sim.Start(); err != nil {
		return err
	}
	simLines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(simOut)
		for sc.Scan() {
			simLines <- sc.Text()
		}
		close(simLines)
	}()
	simDone := make(chan error, 1)
	simCPU := new(float64) // the simulator's CPU seconds, set before simDone
	go func() {
		var last string
		for l := range simLines {
			last = l
		}
		err := sim.Wait()
		if ps := sim.ProcessState; ps != nil {
			*simCPU = (ps.UserTime() + ps.SystemTime()).Seconds()
		}
		if last != "" {
			fmt.Printf("vigil-load: firmware-sim: %s\n", last)
		}
		simDone <- err
	}()

	switch o.mode {
	case "rss":
		return measureRSS(o, v, pid, sim, simDone, t0, st0, cpu0)
	case "budget":
		return measureBudget(o, v, pid, sim, simDone, syncLog)
	}
	return measureThroughput(o, v, pid, simDone, simCPU, cal, t0, st0, cpu0)
}

func measureRSS(o options, v *vigilProc, pid int, sim *exec.Cmd, simDone chan error, t0 time.Time, st0 apiStatus, cpu0 float64) error {
	end := t0.Add(o.warmup + o.measure)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	// VmRSS saw-tooths with the collector's cycles (tens of MB, a cycle
	// or two a second): one reading says little, so it is also read every
	// second while measuring, for the mean and the maximum.
	sample := time.NewTicker(time.Second)
	defer sample.Stop()
	perDevice := o.rate.Seconds()
	var maxRSS, sumRSS float64
	var nRSS int
	for time.Now().Before(end) {
		select {
		case err := <-simDone:
			return fmt.Errorf("firmware-sim ended early: %v", err)
		case <-v.exited:
			return fmt.Errorf("vigil ended: %v", v.err)
		case <-sample.C:
			if time.Since(t0) >= o.warmup {
				rss, _ := procMem(pid)
				maxRSS = max(maxRSS, rss)
				sumRSS += rss
				nRSS++
			}
			continue
		case <-tick.C:
		}
		st, err := status(v)
		if err != nil {
			return err
		}
		rss, hwm := procMem(pid)
		el := time.Since(t0).Seconds()
		phase := "warm-up"
		if time.Since(t0) >= o.warmup {
			phase = "measure"
			maxRSS = max(maxRSS, rss)
		}
		fmt.Printf("vigil-load: t=%3.0fs %-7s messages %8d (%.1f per device, %5.0f/s) devices %5d alerts %6d dropped %d outbox %d VmRSS %.1f MB VmHWM %.1f MB\n",
			el, phase, st.Messages-st0.Messages, float64(st.Messages-st0.Messages)/float64(o.devices), float64(st.Messages-st0.Messages)/el,
			st.Devices, st.Alerts-st0.Alerts, st.Dropped, st.OutboxDepth, rss/1024, hwm/1024)
	}
	st, _ := status(v)
	rss, hwm := procMem(pid)
	cpu := procCPU(pid) - cpu0
	took := time.Since(t0)
	sim.Process.Signal(syscall.SIGINT)
	<-simDone
	fmt.Printf("vigil-load: RESULT rss devices=%d rate=%s per device (%.0f msg/s) after %s: messages %d (%.1f per device), devices seen %d, VmRSS %.1f MB (while measuring: mean %.1f MB, max %.1f MB, read every second), VmHWM %.1f MB, vigil CPU %.1f s (%.0f%% of one core), load average %s\n",
		o.devices, o.rate, float64(o.devices)/perDevice, took.Round(time.Second), st.Messages-st0.Messages,
		float64(st.Messages-st0.Messages)/float64(o.devices), st.Devices, rss/1024, sumRSS/float64(max(nRSS, 1))/1024, max(maxRSS, rss)/1024, hwm/1024,
		cpu, 100*cpu/took.Seconds(), loadavg())
	return nil
}

func measureThroughput(o options, v *vigilProc, pid int, simDone chan error, simCPU *float64, cal time.Duration, t0 time.Time, st0 apiStatus, cpu0 float64) error {
	want := uint64(float64(o.devices) * o.simDuration.Seconds() / o.rate.Seconds())
	var simErr error
	simRunning := true
	var simTook time.Duration
	last, lastChange := st0.Messages, time.Now()
	for {
		select {
		case simErr = <-simDone:
			simRunning = false
			simTook = time.Since(t0)
		case <-v.exited:
			return fmt.Errorf("vigil ended: %v", v.err)
		case <-time.After(20 * time.Millisecond):
		}
		st, err := status(v)
		if err != nil {
			return err
		}
		if st.Messages != last {
			last, lastChange = st.Messages, time.Now()
		}
		if !simRunning && (st.Messages-st0.Messages >= want || time.Since(lastChange) > 5*time.Second) {
			break
		}
	}
	if simErr != nil {
		return fmt.Errorf("firmware-sim: %v", simErr)
	}
	st, _ := status(v)
	took := lastChange.Sub(t0)
	n := st.Messages - st0.Messages
	cpu := procCPU(pid) - cpu0
	rss, hwm := procMem(pid)
	fmt.Printf("vigil-load: RESULT throughput qos=%d journal=%v speed=%g offered=%.0f/s: %d of %d readings processed (%.1f%% lost) in %s: %.0f msgs/s (simulator done after %s); vigil CPU %.2f s = %.1f µs/msg processed, %.1f µs/msg offered (%.0f%% of one core); simulator CPU %.2f s = %.1f µs/msg; journal commits %d (%.0f msgs each); calibration %.0f ms; alerts %d, subscriber dropped %d; VmRSS %.1f MB, VmHWM %.1f MB; load average %s\n",
		o.qos, o.journal, o.speed, float64(o.devices)/o.rate.Seconds(), n, want, 100*(1-float64(n)/float64(want)), took.Round(time.Millisecond), float64(n)/took.Seconds(), simTook.Round(time.Millisecond),
		cpu, cpu/float64(n)*1e6, cpu/float64(want)*1e6, 100*cpu/took.Seconds(), *simCPU, *simCPU/float64(want)*1e6,
		st.Commits-st0.Commits, float64(n)/float64(max(st.Commits-st0.Commits, 1)), cal.Seconds()*1e3, st.Alerts-st0.Alerts, st.Dropped-st0.Dropped, rss/1024, hwm/1024, loadavg())
	return nil
}

type apiStatus struct {
	Messages uint64 `json:"messages_total"`
	Alerts   uint64 `json:"alerts_total"`
	Dropped  uint64 `json:"dropped_total"`
	Commits  uint64 `json:"journal_commits_total"`
	// PayloadBytes is absent from vigil before session 16: bytes per
	// message then read 0.
	PayloadBytes uint64 `json:"payload_bytes_total"`
	OutboxDepth  int    `json:"outbox_depth"`
	Devices      int    `json:"devices"`
}

var client = &http.Client{Timeout: 5 * time.Second}

func status(v *vigilProc) (apiStatus, error) {
	var st apiStatus
	resp, err := client.Get(v.http + "/api/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("GET /api/status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func waitUp(v *vigilProc, max time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), max)
	defer cancel()
	for {
		select {
		case <-v.exited:
			return fmt.Errorf("vigil exited: %v", v.err)
		case <-ctx.Done():
			return fmt.Errorf("vigil not up after %s", max)
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := client.Get(v.http + "/api/status")
		if err != nil {
			continue
		}
		var st struct {
			Broker   bool `json:"broker_connected"`
			Upstream bool `json:"upstream_connected"`
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.Broker && st.Upstream {
			return nil
		}
	}
}

// procMem returns VmRSS and VmHWM in kB.
func procMem(pid int) (rss, hwm float64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.ParseFloat(f[1], 64)
		case "VmHWM:":
			hwm, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	return
}

// procCPU is the process's user + system CPU time in seconds.
func procCPU(pid int) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "?"
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

// calibrate times a fixed piece of single-threaded work of the kind a
// message costs vigil (JSON, maps, strings, hashing), run while vigil is
// idle. This shared machine's speed varies up to 2x within an hour; the
// figure, printed with each result, tells which phase a run was in.
func calibrate() time.Duration {
	type reading struct {
		Device string  `json:"device"`
		Temp   float64 `json:"temperature"`
		Seq    int     `json:"seq"`
	}
	start := time.Now()
	m := map[string]float64{}
	var sum [32]byte
	for i := range 100000 {
		b, _ := json.Marshal(reading{Device: "pump-" + strconv.Itoa(i%1000), Temp: float64(i%400) / 10, Seq: i})
		var r reading
		json.Unmarshal(b, &r)
		m[r.Device] += r.Temp
		if i%64 == 0 {
			sum = sha256.Sum256(append(b, sum[:]...))
		}
	}
	if len(m) != 1000 || sum == [32]byte{} {
		panic("calibration went wrong")
	}
	return time.Since(start)
}

// measureBudget waits -warmup, then measures -measure of the steady load:
// vigil's CPU, the bytes it wrote to disk and its syncs, per second and per
// message processed.
func measureBudget(o options, v *vigilProc, pid int, sim *exec.Cmd, simDone chan error, syncLog string) error {
	select {
	case err := <-simDone:
		return fmt.Errorf("firmware-sim ended early: %v", err)
	case <-v.exited:
		return fmt.Errorf("vigil ended: %v", v.err)
	case <-time.After(o.warmup):
	}
	st0, err := status(v)
	if err != nil {
		return err
	}
	c0, w0, s0, t0 := procCPU(pid), procWrites(pid), countSyncs(syncLog), time.Now()
	select {
	case err := <-simDone:
		return fmt.Errorf("firmware-sim ended early: %v", err)
	case <-v.exited:
		return fmt.Errorf("vigil ended: %v", v.err)
	case <-time.After(o.measure):
	}
	st, err := status(v)
	if err != nil {
		return err
	}
	el := time.Since(t0).Seconds()
	cpu, wr, syncs := procCPU(pid)-c0, float64(procWrites(pid)-w0), float64(countSyncs(syncLog)-s0)
	n := float64(st.Messages - st0.Messages)
	pb := float64(st.PayloadBytes - st0.PayloadBytes)
	commits := float64(st.Commits - st0.Commits)
	rss, _ := procMem(pid)
	sim.Process.Signal(syscall.SIGINT)
	<-simDone
	fmt.Printf("vigil-load: RESULT budget ingest=%s qos=%d offered=%.0f/s over %.0fs: %.0f msgs/s processed, dropped %d; vigil CPU %.1f%% of one core (%.1f µs/msg); disk writes %.0f bytes/s = %.0f bytes/msg (payload %.0f bytes/msg, %.1f×), %.1f GB/day; fsync %.1f/s (%.3f per msg); journal commits %.1f/s (%.0f msgs each); VmRSS %.1f MB; calibration-free; load average %s\n",
		o.ingest, o.qos, float64(o.devices)/o.rate.Seconds(), el, n/el, st.Dropped-st0.Dropped,
		100*cpu/el, cpu/max(n, 1)*1e6, wr/el, wr/max(n, 1), pb/max(n, 1), wr/max(pb, 1), wr/el*86400/1e9,
		syncs/el, syncs/max(n, 1), commits/el, n/max(commits, 1), rss/1024, loadavg())
	return nil
}

// procWrites is /proc/PID/io's write_bytes: what the process caused to be
// sent to the storage layer.
func procWrites(pid int) uint64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes: "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// countSyncs counts the fsync and fdatasync calls strace logged so far.
func countSyncs(path string) int {
	if path == "" {
		return 0
	}
	b, _ := os.ReadFile(path)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if (strings.Contains(l, "fsync(") || strings.Contains(l, "fdatasync(")) && !strings.Contains(l, "resumed>") {
			n++
		}
	}
	return n
}

// tracedChild is the pid of vigil under strace.
func tracedChild(stracePid int) (int, error) {
	for range 100 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", stracePid, stracePid))
		if f := strings.Fields(string(b)); len(f) > 0 {
			return strconv.Atoi(f[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("no child of strace (pid %d)", stracePid)
}

// startMosquitto runs a Mosquitto on 127.0.0.1:port for the run; stop
// ends it.
func startMosquitto(dir string, port int) (stop func(), err error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	// Mosquitto's defaults but for the queue of a subscriber: at 50,000
	// msg/s a 1,000-message queue overflows within a commit.
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n", port)), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", conf)
	logf, _ := os.Create(filepath.Join(dir, "mosquitto.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mosquitto: %w", err)
	}
	for range 100 {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() }, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, fmt.Errorf("mosquitto did not listen on port %d", port)
}

// prefill puts n delivered alerts of 1,000 devices into the history, as a
// gateway that has run for a while holds them.
func prefill(path string, n int) error {
	db, err := store.Open(store.Options{Path: path, HistoryMax: n + 1})
	if err != nil {
		return err
	}
	defer db.Close()
	t0 := time.Now().Add(-24 * time.Hour)
	for i := 0; i < n; i += 1000 {
		batch := make([]event.Alert, 0, 1000)
		var ids []string
		for j := i; j < min(n, i+1000); j++ {
			a := event.Alert{Rule: "avg_10s", Key: fmt.Sprintf("dev-%04d", j%1000), State: event.Firing, Severity: "warning",
				Time: t0.Add(time.Duration(j) * 10 * time.Millisecond), Message: "",
				Values: map[string]any{"avg": 21.5 + float64(j%100)/10, "n": 10}, Topic: "vigil/load/alerts/avg_10s"}
			a.ID = event.AlertID(a.Rule, a.Key, a.State, a.Time)
			batch = append(batch, a)
			ids = append(ids, a.ID)
		}
		if _, err := db.Put(batch); err != nil {
			return err
		}
		if err := db.Delivered(ids); err != nil {
			return err
		}
	}
	return nil
}
