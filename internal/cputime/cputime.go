// Package cputime reads the CPU time the process has used, for benchmarks
// that report work per CPU-second: on a shared machine, wall time also
// counts the other tenants.
package cputime

import (
	"syscall"
	"time"
)

// Now returns the process's user and system CPU time so far (0 if the
// system cannot tell).
func Now() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
