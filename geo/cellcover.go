package geo

import (
	"fmt"

	"github.com/uber/h3-go/v4"
)

// CellCover returns H3 cells at c's resolution that hold, for every fix
// whose IndexResolution cell descends from c, every point within radiusM
// metres of the fix and the ancestor at c's resolution of every such
// point's finer cells. It is a [Cover] that holds for all the fixes that a
// caller files under c by [Parent] arithmetic, so it can be computed once
// per cell and shared: a cache of covers keyed by cell, or one cover for all
// the stores in a cell.
//
// Such a fix lies within the children's fringe of c (see childFringe), so
// the bound assumes the fix that far beyond c's farthest point, and widens
// by the fringe again for the points' ancestors, as Cover does. At
// [CellCoverResolution](radiusM) it is a disk of k ≤ 2. One cgo call and
// one allocation (inside h3-go).
func CellCover(c h3.Cell, radiusM float64) ([]h3.Cell, error) {
	if !c.IsValid() {
		return nil, fmt.Errorf("cell cover: %w: %v is not a cell", ErrInvalid, c)
	}
	if !(radiusM >= 0 && radiusM <= MaxCoverRadiusM) {
		return nil, fmt.Errorf("cell cover: %w: radius %v m not in [0, %d]", ErrInvalid, radiusM, MaxCoverRadiusM)
	}
	res := c.Resolution()
	k := diskK((radiusM+2*fringeM[res])/avgEdgeM[res] + maxCentreOffset)
	if k > maxCoverK {
		return nil, fmt.Errorf("cell cover: radius %v m at resolution %d: %w", radiusM, res, ErrCoverTooLarge)
	}
	cells, err := h3.GridDisk(c, k)
	if err != nil {
		return nil, fmt.Errorf("cell cover: %w", err)
	}
	return cells, nil
}

// CellCoverResolution returns the finest resolution, no finer than
// IndexResolution, at which [CellCover] of radiusM is a disk of k ≤ 2 (at
// most 19 cells). O(1), no allocation.
func CellCoverResolution(radiusM float64) int {
	for res := IndexResolution; res >= 0; res-- {
		if radiusM < (diskReach[2]-maxCentreOffset)*avgEdgeM[res]-2*fringeM[res] {
			return res
		}
	}
	return 0
}
