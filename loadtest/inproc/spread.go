package inproc

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/loadtest/latency"
)

// Spread is how a run's slowest decisions are made up: each search
// decided once in each of several passes, in order, one goroutine.
type Spread struct {
	Passes, Searches int
	// P99 is the p99 of every decision; FastestP99 and MedianP99 are the
	// p99s, over the searches, of each search's fastest and median pass.
	// Were the slowest percent the same searches every pass, each slow by
	// the work it asks for, all three would be about the same.
	P99, FastestP99, MedianP99 time.Duration
	// Kept is, for each pass after the first, how many of its slowest
	// percent of searches were in the pass before's slowest percent, of
	// Top.
	Kept []int
	Top  int
}

func (s Spread) String() string {
	return fmt.Sprintf("%d searches × %d passes: p99 %v; p99 of each search's fastest pass %v, of its median pass %v; of the slowest %d of a pass, %v were among the slowest of the pass before",
		s.Searches, s.Passes, latency.Round(s.P99), latency.Round(s.FastestP99), latency.Round(s.MedianP99), s.Top, s.Kept)
}

// MeasureSpread decides every search of ds once a pass, for passes passes
// (users fresh each pass after FreshUsers), yielding every yieldEvery
// decisions as Run does, and returns how the slowest percent is made up.
func MeasureSpread(ctx context.Context, e *serving.Engine, ds Decisions, passes, yieldEvery int) (Spread, error) {
	n := len(ds.Requests)
	passes = max(passes, 2)
	took := make([][]time.Duration, passes)
	dst := make([]serving.Ad, 0, 10)
	y := yielder{every: yieldEvery}
	for p := range took {
		took[p] = make([]time.Duration, n)
		for i := range n {
			y.next()
			req, _ := ds.at(uint64(p*n + i))
			t0 := time.Now()
			_, err := e.Decide(ctx, &req, dst[:0])
			took[p][i] = time.Since(t0)
			if err != nil {
				return Spread{}, err
			}
		}
	}
	// The same histograms as Run's, so that the p99s compare with its.
	var all, fastest, median latency.Histogram
	one := make([]time.Duration, passes)
	for i := range n {
		for p := range passes {
			one[p] = took[p][i]
			all.Record(one[p])
		}
		slices.Sort(one)
		fastest.Record(one[0])
		median.Record(one[passes/2])
	}
	s := Spread{Passes: passes, Searches: n, P99: all.Quantile(0.99), FastestP99: fastest.Quantile(0.99), MedianP99: median.Quantile(0.99)}
	prev := slowest(took[0])
	s.Top = len(prev)
	for p := 1; p < passes; p++ {
		cur := slowest(took[p])
		kept := 0
		for i := range cur {
			if prev[i] {
				kept++
			}
		}
		s.Kept = append(s.Kept, kept)
		prev = cur
	}
	return s, nil
}

// slowest returns the indexes of the slowest percent of took (at least
// one).
func slowest(took []time.Duration) map[int]bool {
	idx := make([]int, len(took))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(took[b], took[a]) })
	top := make(map[int]bool)
	for _, i := range idx[:max(1, len(idx)/100)] {
		top[i] = true
	}
	return top
}
