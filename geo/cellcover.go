package geo

import (
	"fmt"
	"math"

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
// A fix filed under c lies at most the children's fringe (see childFringe)
// beyond c, and a point filed under another cell at most that beyond it, so
// the cover must hold every cell that comes within radiusM plus twice the
// fringe of c. It is the grid disk around c of the smallest k for which
// every cell at grid distance k+1 is farther than that from c, measured
// between the boundaries of c and of those cells (see tightDiskK). Where
// H3's cells are regular that is often a ring less than the bound [Cover]
// takes from the worst cell on the globe, next to a pentagon, and it is
// never more: at [CellCoverResolution](radiusM) it is a disk of k ≤ 2. At
// resolution 8 an 800 m cover is a disk of k = 2 (19 cells) for most cells
// and k = 3 (37) only for the smallest.
//
// It makes one cgo call for the disk, one for c's boundary and one for each
// cell it measures at the next ring or two, about 20 calls and 20–40 µs at
// the resolution CellCoverResolution picks, and allocates the disk.
func CellCover(c h3.Cell, radiusM float64) ([]h3.Cell, error) {
	kMax, err := worstDiskK(c, radiusM)
	if err != nil {
		return nil, fmt.Errorf("cell cover: %w", err)
	}
	res := c.Resolution()
	rings, err := h3.GridDiskDistances(c, kMax)
	if err != nil {
		return nil, fmt.Errorf("cell cover: %w", err)
	}
	k, err := tightDiskK(c, rings, radiusM+2*fringeM[res])
	if err != nil {
		return nil, fmt.Errorf("cell cover: %w", err)
	}
	cells := make([]h3.Cell, 0, diskSize(k))
	for _, ring := range rings[:k+1] {
		for _, x := range ring {
			if x != 0 { // pentagon distortion leaves gaps
				cells = append(cells, x)
			}
		}
	}
	return cells, nil
}

// worstDiskK checks c and radiusM and returns the radius of the grid disk
// around c that holds the cover of radiusM for every fix filed under c: the
// bound for the worst cell and the worst fix in it, as Cover's.
func worstDiskK(c h3.Cell, radiusM float64) (int, error) {
	if !c.IsValid() {
		return 0, fmt.Errorf("%w: %v is not a cell", ErrInvalid, c)
	}
	if !(radiusM >= 0 && radiusM <= MaxCoverRadiusM) {
		return 0, fmt.Errorf("%w: radius %v m not in [0, %d]", ErrInvalid, radiusM, MaxCoverRadiusM)
	}
	res := c.Resolution()
	kMax := diskK((radiusM+2*fringeM[res])/avgEdgeM[res] + maxCentreOffset)
	if kMax > maxCoverK {
		return 0, fmt.Errorf("radius %v m at resolution %d: %w", radiusM, res, ErrCoverTooLarge)
	}
	return kMax, nil
}

// boundarySlack widens the distance that tightDiskK asks of cell boundaries,
// relatively and in metres, for rounding in H3's boundaries and in the
// arithmetic here (both far smaller).
const (
	boundarySlack  = 0.01
	boundarySlackM = 1
)

// tightDiskK returns the smallest k < len(rings)-1 such that every cell of
// rings[k+1] (rings as h3.GridDiskDistances gives them around c) lies
// farther than reachM from c, boundary to boundary, or len(rings)-1, the
// disk the caller's worst-case bound chose, if none does.
//
// Why that disk holds every cell within reachM of c: a shortest path from
// a point of c to a point of a cell outside GridDisk(c, k) leaves the disk
// across the boundary of a cell at grid distance k+1 (cells that share an
// edge differ by at most one in grid distance), so that cell is no farther
// from c than the point. Cell edges are great-circle arcs, straight in
// H3's gnomonic projection of each icosahedron face, so the distance from
// a point to a cell is that to the nearest of its edges, and between two
// cells that of a vertex of one to an edge of the other.
//
// A ring cell is first measured by its centre (a cgo call a quarter the
// cost of its boundary): its distance to c less maxCentreOffset, the
// farthest any cell reaches from its centre (and that distance is bounded
// first from c's centre, a point inside c, less the farthest c reaches from
// it). Only a cell too close for those bounds has its boundary measured. Only the two disks below the
// worst-case one are tried: that bound is never more than two rings loose,
// and a disk too small fails on its first cells.
func tightDiskK(c h3.Cell, rings [][]h3.Cell, reachM float64) (int, error) {
	kMax := len(rings) - 1
	if kMax == 0 {
		return 0, nil
	}
	need := (reachM*(1+boundarySlack) + boundarySlackM) / EarthRadiusM // radians
	home, err := cellBoundary(nil, c)
	if err != nil {
		return 0, err
	}
	// A point inside c and the farthest c reaches from it, for a first
	// bound cheaper than the distance to each edge.
	var centre vec3
	for _, v := range home {
		centre = centre.add(v)
	}
	centre = centre.unit()
	radius := 0.0
	for _, v := range home {
		radius = max(radius, angle(centre, v))
	}
	offset := maxCentreOffset * avgEdgeM[c.Resolution()] / EarthRadiusM
	var other []vec3
	// far reports whether every cell of ring lies farther than need from c.
	far := func(ring []h3.Cell) (bool, error) {
		for _, x := range ring {
			if x == 0 {
				continue
			}
			ll, err := x.LatLng()
			if err != nil {
				return false, err
			}
			p := unitVec(ll)
			if angle(p, centre)-radius-offset > need || pointDistance(p, home)-offset > need {
				continue
			}
			if other, err = cellBoundary(other, x); err != nil {
				return false, err
			}
			if polygonDistance(home, other) <= need {
				return false, nil
			}
		}
		return true, nil
	}
	// From the largest disk down: the smaller a disk, the more likely it
	// fails, and once one fails every smaller one does.
	k := kMax
	for ; k > max(0, kMax-2); k-- {
		ok, err := far(rings[k])
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
	}
	return k, nil
}

// cellBoundary appends the vertices of c's boundary, on the unit sphere, to
// dst[:0].
func cellBoundary(dst []vec3, c h3.Cell) ([]vec3, error) {
	b, err := c.Boundary()
	if err != nil {
		return nil, err
	}
	dst = dst[:0]
	for _, v := range b {
		dst = append(dst, unitVec(v))
	}
	return dst, nil
}

// pointDistance is the angle from p to the nearest edge of the polygon poly:
// p's distance to the polygon if p lies outside it. Cells are far smaller
// than a hemisphere, so edges are minor arcs.
func pointDistance(p vec3, poly []vec3) float64 {
	d := math.Inf(1)
	for i := range poly {
		d = min(d, arcDistance(p, poly[i], poly[(i+1)%len(poly)]))
	}
	return d
}

// polygonDistance is the angle between the boundaries of two spherical
// polygons: the least from a vertex of either to an edge of the other. For
// two cells, which never overlap, it is the distance between them.
func polygonDistance(a, b []vec3) float64 {
	d := math.Inf(1)
	for _, p := range a {
		d = min(d, pointDistance(p, b))
	}
	for _, p := range b {
		d = min(d, pointDistance(p, a))
	}
	return d
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
