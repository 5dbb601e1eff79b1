package main

import (
	"bufio"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimit is the soft memory limit `vigil run` gives the Go runtime when
// GOMEMLIMIT does not set one: a quarter of the machine's memory (or of its
// cgroup's limit, if lower), 256 MiB on a 1 GB Raspberry Pi. Without a limit
// the heap may grow to twice what is live before the collector runs
// (GOGC=100), and a burst (10,000 tumbling results at once) can briefly
// double that; near the limit the collector runs earlier instead. It is a
// soft limit: state that needs more is not refused, the collector only works
// harder. 0 means no limit could be determined.
func memoryLimit() int64 {
	total := meminfoTotal()
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return total / 4
}

func meminfoTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	return parseMemTotal(f)
}

// parseMemTotal reads MemTotal (kB) from /proc/meminfo, in bytes.
func parseMemTotal(r io.Reader) int64 {
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// defaultGOGC is the collector's target `vigil run` sets when GOGC does not
// set one: a collection once the heap has grown by half of what was live
// after the last one, where Go's default waits for it to double. A
// gateway's state is mostly long-lived per-device state while its
// allocation is short-lived per message, so the heap's size follows GOGC
// almost linearly. With 10,000 devices at 2,000 msg/s and the light rule
// mix, mean RSS is 91-94 MB at 100 and 78-80 MB at 50; the collector's CPU
// doubles (its work is proportional to the allocation rate divided by
// GOGC), from 8 to 16 s per 90 s there, about a tenth of a core. 25 saved
// only 3 MB more for 35 s. The trade-off is documented in
// docs/operations.md ("Memory").
const defaultGOGC = 50

// setMemoryLimit applies memoryLimit unless GOMEMLIMIT is set (the runtime
// has applied that one already), and defaultGOGC unless GOGC is set, and
// returns the limit in force (0: none).
func setMemoryLimit() int64 {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if l := memoryLimit(); l > 0 {
			debug.SetMemoryLimit(l)
		}
	}
	if l := debug.SetMemoryLimit(-1); l != int64(^uint64(0)>>1) {
		return l
	}
	return 0
}
