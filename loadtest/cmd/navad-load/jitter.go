package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/navad/navad/loadtest/inproc"
)

// cmdJitter measures the machine's own tail under decide's harness: a
// fixed computation of about -work, touching no memory, timed as decide
// times a decision.
func cmdJitter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("jitter", stderr)
	work := fs.Duration("work", 12*time.Microsecond, "how long the fixed computation takes on its own (decide's mean decision is 9–13 µs)")
	d := fs.Duration("duration", 10*time.Second, "how long to measure")
	yield := fs.Int("yield", 64, "computations between two yields of the processor, as in decide; 0 never yields")
	if err := parse(fs, args); err != nil {
		return err
	}
	s := inproc.Jitter(ctx, *work, *d, *yield)
	fmt.Fprintf(stdout, "a fixed computation of about %v, timed as decide times a decision (1 goroutine %s, GOMAXPROCS %d):\n  %v\n",
		*work, yielding(*yield, ""), runtime.GOMAXPROCS(0), s)
	return nil
}

// yielding describes how often a goroutine of decide's harness yields its
// processor: every `every` units (a -yield flag's value), or never.
func yielding(every int, units string) string {
	if every <= 0 {
		return "never yielding"
	}
	return fmt.Sprintf("yielding every %d%s", every, units)
}
