package cputime

import (
	"runtime"
	"testing"
	"time"
)

func TestProcessGrowsWithWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("not read on this system")
	}
	before := Process()
	x := 0
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		x++
	}
	after := Process()
	if after <= before || after-before < 10*time.Millisecond {
		t.Fatalf("CPU time %v → %v after 50 ms of work (%d loops)", before, after, x)
	}
}
