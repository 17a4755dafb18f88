package geo

import (
	"fmt"

	"github.com/uber/h3-go/v4"
)

// CellCover returns H3 cells at c's resolution whose union contains every
// point within radiusM metres of every point of c: a [Cover] that holds for
// any fix inside c, since it assumes the fix as far from c's centre as a
// point of a cell can be. It is the disk [Cover] would return for the worst
// fix in c, so callers can compute it once per cell and share it among all
// fixes there (a cache of covers keyed by cell, or one cover for all stores
// in a cell). At [CoverResolution](radiusM) it is a disk of k ≤ 2. One cgo
// call and one allocation.
func CellCover(c h3.Cell, radiusM float64) ([]h3.Cell, error) {
	if !c.IsValid() {
		return nil, fmt.Errorf("cell cover: %w: %v is not a cell", ErrInvalid, c)
	}
	if !(radiusM >= 0 && radiusM <= MaxCoverRadiusM) {
		return nil, fmt.Errorf("cell cover: %w: radius %v m not in [0, %d]", ErrInvalid, radiusM, MaxCoverRadiusM)
	}
	res := c.Resolution()
	k := diskK(radiusM/avgEdgeM[res] + maxCentreOffset)
	if k > maxCoverK {
		return nil, fmt.Errorf("cell cover: radius %v m at resolution %d: %w", radiusM, res, ErrCoverTooLarge)
	}
	cells, err := h3.GridDisk(c, k)
	if err != nil {
		return nil, fmt.Errorf("cell cover: %w", err)
	}
	return cells, nil
}
