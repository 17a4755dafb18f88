package serving

import (
	"slices"
	"sync/atomic"

	"github.com/uber/h3-go/v4"

	"github.com/navad/navad/geo"
)

// coverCache remembers the cover ranges of (cell, ladder step) so that the
// fixes of one neighbourhood, where searches cluster, share one H3 disk
// computation. It is direct-mapped and lock-free: a slot holds one immutable
// entry, and a newer entry simply replaces an older one, so its memory is
// bounded (coverSlots entries of at most 19 ranges each).
type coverCache struct {
	slots [coverSlots]atomic.Pointer[coverEntry]
}

const coverSlots = 1 << 14

type coverEntry struct {
	cell   uint64
	step   int
	ranges []cellRange
}

// ranges returns the sorted, merged IndexResolution ranges of the cover of
// ladder step step for every fix in cell.
func (cc *coverCache) ranges(cell uint64, step int) ([]cellRange, error) {
	h := (cell ^ uint64(step)*0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
	slot := &cc.slots[h>>(64-14)]
	if e := slot.Load(); e != nil && e.cell == cell && e.step == step {
		return e.ranges, nil
	}
	cells, err := geo.CellCover(h3.Cell(cell), ladder[step])
	if err != nil {
		return nil, err
	}
	rs := make([]cellRange, 0, len(cells))
	for _, c := range cells {
		lo, hi := geo.DescendantRange(uint64(c), geo.IndexResolution)
		rs = append(rs, cellRange{lo, hi})
	}
	slices.SortFunc(rs, func(a, b cellRange) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	// Merge touching ranges: sibling cells are adjacent in H3 order.
	merged := rs[:0]
	for _, r := range rs {
		if n := len(merged); n > 0 && r.lo <= merged[n-1].hi {
			merged[n-1].hi = max(merged[n-1].hi, r.hi)
			continue
		}
		merged = append(merged, r)
	}
	slot.Store(&coverEntry{cell: cell, step: step, ranges: slices.Clip(merged)})
	return merged, nil
}
