//go:build unix

// Package cputime reads the processor time this process has used, for
// benchmarks that report CPU per operation besides wall time (the machine
// is shared, and wall time counts other processes' work too).
package cputime

import (
	"syscall"
	"time"
)

// Process returns the CPU time, user and system, the process has used so
// far; 0 when it cannot be read.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
