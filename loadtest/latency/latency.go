// Package latency records durations into a log-linear histogram in the
// manner of HdrHistogram: every value lands in a bucket whose width is at
// most 1/128 of the value, so any quantile is reported within 0.8% of the
// true sample, however long the tail.
//
// It is written here rather than taken from a library because vegeta's own
// latency metrics come from a t-digest (an estimate with no stated error
// bound, and no p99.9), and HdrHistogram-go is not a dependency of navad: the
// whole thing is a few dozen lines and its accuracy is tested.
package latency

import (
	"fmt"
	"math"
	"math/bits"
	"time"
)

// subBits sets the precision: 2^subBits buckets per power of two.
const subBits = 7

const (
	subCount = 1 << subBits
	nBuckets = (64 - subBits) << subBits
)

// Histogram counts durations. The zero value is ready to use. Record costs a
// few nanoseconds and never allocates after the first call; a Histogram is
// not safe for concurrent use (give each goroutine its own and Merge them).
type Histogram struct {
	counts   []uint64
	n        uint64
	sum      float64
	min, max int64
}

// index returns the bucket of v ≥ 0.
func index(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	top := v >> shift // in [subCount, 2·subCount)
	return (shift+1)<<subBits + int(top-subCount)
}

// upper returns the largest value that falls in bucket i.
func upper(i int) uint64 {
	shift := i>>subBits - 1
	if shift < 0 {
		return uint64(i)
	}
	low := (subCount + uint64(i&(subCount-1))) << shift
	return low + (1 << shift) - 1
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]uint64, nBuckets)
		h.min = math.MaxInt64
	}
	v := max(int64(d), 0)
	h.counts[index(uint64(v))]++
	h.n++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// Reset forgets every value but keeps the buckets, so that recording
// into h again allocates nothing.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.n, h.sum, h.min, h.max = 0, 0, math.MaxInt64, 0
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, nBuckets)
		h.min = math.MaxInt64
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest value recorded, or 0.
func (h *Histogram) Min() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Max returns the largest value recorded, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the exact mean.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value at quantile q in [0, 1]: the smallest recorded
// value v such that at least q of all values are ≤ v, rounded up to its
// bucket's upper edge (never above Max). It is 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(int64(upper(i)), h.max))
		}
	}
	return time.Duration(h.max)
}

// Summary is the usual quantiles of a histogram.
type Summary struct {
	Count                          uint64
	Mean, P50, P90, P99, P999, Max time.Duration
}

// Summary returns h's count, mean, p50, p90, p99, p99.9 and max.
func (h *Histogram) Summary() Summary {
	return Summary{
		Count: h.n, Mean: h.Mean(),
		P50: h.Quantile(0.50), P90: h.Quantile(0.90), P99: h.Quantile(0.99), P999: h.Quantile(0.999),
		Max: h.Max(),
	}
}

// String formats the summary on one line.
func (s Summary) String() string {
	return fmt.Sprintf("n=%d mean=%v p50=%v p90=%v p99=%v p99.9=%v max=%v",
		s.Count, Round(s.Mean), Round(s.P50), Round(s.P90), Round(s.P99), Round(s.P999), Round(s.Max))
}

// Round rounds d to three significant digits for display.
func Round(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= 100*time.Microsecond:
		return d.Round(time.Microsecond)
	case d >= 10*time.Microsecond:
		return d.Round(100 * time.Nanosecond)
	case d >= time.Microsecond:
		return d.Round(10 * time.Nanosecond)
	}
	return d
}
