//go:build !unix

// Package cputime reads the processor time this process has used, for
// benchmarks that report CPU per operation besides wall time (the machine
// is shared, and wall time counts other processes' work too).
package cputime

import "time"

// Process returns 0: the CPU time is not read on this system.
func Process() time.Duration { return 0 }
