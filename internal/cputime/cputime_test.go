//go:build unix

package cputime

import (
	"testing"
	"time"
)

// TestProcessGrowsWithWork spins until the process's CPU time has grown by
// 20 ms, which takes 20 ms of work on an idle machine and longer on a busy
// one; it fails only if that has not happened after 10 s of trying.
func TestProcessGrowsWithWork(t *testing.T) {
	before := Process()
	if before <= 0 {
		t.Fatalf("CPU time %v at the start of a test run", before)
	}
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for Process()-before < 20*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("CPU time grew by %v in 10 s of spinning (%d loops)", Process()-before, x)
		}
		for range 100_000 {
			x++
		}
	}
}
