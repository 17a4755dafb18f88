package driver

import (
	"fmt"
	"time"
)

// Tail is when the slow requests of a measured window were sent: how many
// took longer than Over, counted by Window of sending time from the
// window's start. A p99 says how slow the slowest percent was; Tail says
// whether they came spread out (a machine short of headroom everywhere)
// or together (a pause: a collection, a periodic flush, the hypervisor).
type Tail struct {
	Over   time.Duration `json:"over_ns"`
	Window time.Duration `json:"window_ns"`
	Counts []uint32      `json:"counts"` // Counts[i]: sent in [i·Window, (i+1)·Window)
}

// Defaults of a Result's Tail.
const (
	tailOver   = 10 * time.Millisecond
	tailWindow = 250 * time.Millisecond
)

// add counts a request sent at offset from the window's start that took
// lat.
func (t *Tail) add(offset, lat time.Duration) {
	if lat <= t.Over {
		return
	}
	i := max(int(offset/t.Window), 0)
	if i >= len(t.Counts) {
		t.Counts = append(t.Counts, make([]uint32, i+1-len(t.Counts))...)
	}
	t.Counts[i]++
}

// Total returns how many requests took longer than Over.
func (t *Tail) Total() uint64 {
	var n uint64
	for _, c := range t.Counts {
		n += uint64(c)
	}
	return n
}

// Worst returns the most slow requests sent within any span of the given
// length (a whole number of windows, at least one) and where that span
// starts.
func (t *Tail) Worst(span time.Duration) (n uint64, at time.Duration) {
	k := max(int(span/t.Window), 1)
	var sum uint64
	for i, c := range t.Counts {
		sum += uint64(c)
		if i >= k {
			sum -= uint64(t.Counts[i-k])
		}
		if sum > n {
			n, at = sum, time.Duration(max(i-k+1, 0))*t.Window
		}
	}
	return n, at
}

// String sums the tail up for a report line: how many requests were slow,
// in how many windows, and how many of them came in the worst second.
func (t *Tail) String() string {
	total := t.Total()
	if total == 0 {
		return fmt.Sprintf("none over %v", t.Over)
	}
	windows := 0
	for _, c := range t.Counts {
		if c > 0 {
			windows++
		}
	}
	n, at := t.Worst(time.Second)
	return fmt.Sprintf("%d over %v in %d windows of %v; %d (%.0f%%) in the worst second, from +%.2fs",
		total, t.Over, windows, t.Window, n, 100*float64(n)/float64(total), at.Seconds())
}
