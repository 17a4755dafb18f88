package inproc

import (
	"context"
	"slices"
	"time"

	"github.com/navad/navad/loadtest/latency"
)

// Jitter measures the machine's own tail: a fixed computation that takes
// about work and touches no memory, timed over and over like a decision
// in Run (one goroutine, yielding every yieldEvery calls when above 0),
// for about d. Whatever tail it shows a decision of the same length shows
// too, whatever the engine does: it is the floor under Run's p99.
func Jitter(ctx context.Context, work, d time.Duration, yieldEvery int) latency.Summary {
	n := calibrate(work)
	var h latency.Histogram
	var sink uint64
	y := yielder{every: yieldEvery}
	end := time.Now().Add(d)
	for k := 0; ctx.Err() == nil; k++ {
		if k&255 == 0 && time.Now().After(end) {
			break
		}
		y.next()
		t0 := time.Now()
		sink += spin(n)
		h.Record(time.Since(t0))
	}
	jitterSink = sink
	return h.Summary()
}

// jitterSink keeps spin's results, so that its loop is not optimized away.
var jitterSink uint64

// spin steps a linear congruential generator n times: a chain of
// multiplications, each waiting for the one before, that needs no memory.
func spin(n int) uint64 {
	x := uint64(1)
	for range n {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

// calibrate returns how many steps of spin take about work: from the
// fastest of some timed runs, the nearest to the machine's speed with
// nothing in the way.
func calibrate(work time.Duration) int {
	const steps = 1 << 12
	times := make([]time.Duration, 0, 200)
	for range cap(times) {
		t0 := time.Now()
		jitterSink += spin(steps)
		times = append(times, time.Since(t0))
	}
	fastest := slices.Min(times)
	return max(1, int(float64(steps)*float64(work)/float64(max(fastest, 1))))
}
