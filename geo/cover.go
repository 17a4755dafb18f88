package geo

import (
	"fmt"

	"github.com/uber/h3-go/v4"
)

// MaxCoverRadiusM is the largest radius [Cover] accepts, 100 km: ten times
// the widest presence filter, and as far as the bounds behind Cover are
// tested. Store searches never need more.
const MaxCoverRadiusM = 100_000

// MaxCoverCells is the most cells [Cover] returns. A circle that needs a
// larger disk at the requested resolution gets [ErrCoverTooLarge] instead of
// a slice of hundreds of kilobytes.
const MaxCoverCells = 10_000

// avgEdgeM is H3's average hexagon edge length in metres at each resolution
// (h3.HexagonEdgeLengthAvgM, copied so that the hot path makes no cgo call
// for it). It is the unit of the bounds below.
var avgEdgeM = [maxRes + 1]float64{
	1281256.011, 483056.8391, 182512.9565, 68979.22179,
	26071.75968, 9854.090990, 3724.532667, 1406.475763,
	531.4140101, 200.7861476, 75.86378287, 28.66389748,
	10.83018784, 4.092010473, 1.546099657, 0.584168630,
}

// Why a grid disk covers a circle. Let ρ_k(c) be the distance from the centre
// of cell c to the nearest point outside GridDisk(c, k). Take a fix at
// distance d0 from the centre of its cell c. Every point within r of the fix
// lies within r+d0 of the centre (triangle inequality), so GridDisk(c, k)
// covers the circle once ρ_k(c) > r+d0. For ancestors (see childFringe): a
// point whose fine cell descends from cell a lies within fringeM of a, so
// some point of a lies within r+fringeM+d0 of the centre, and a is in the
// disk once ρ_k(c) > r+fringeM+d0. Cover measures d0 exactly and takes ρ_k
// from a lower bound, diskReach.
//
// On a regular hexagonal grid of edge e, ρ_k = (1.5k+0.5)e for k ≥ 1. H3
// cells are not regular: their area varies by about a factor of two over the
// globe, they are smallest and most distorted next to the twelve pentagons,
// and they are sheared along icosahedron edges. So the bounds are measured,
// not derived: TestCoverBounds (go test -run TestCoverBounds -v -calibrate)
// computes them exactly from cell boundaries for every cell near every
// pentagon, along every icosahedron edge and at random over the globe, at
// all sixteen resolutions. The extremes are found next to the pentagons and
// differ little between resolutions, so one table serves all. Each bound is
// the extreme found with 2% added for cells not sampled.

// diskReach[k] bounds ρ_k from below in units of avgEdgeM
// (measured minima: 0.602, 1.405, 2.509, 3.514, 4.566, 5.623, 6.656,
// 7.732, 8.755).
var diskReach = [...]float64{0.59, 1.37, 2.45, 3.44, 4.47, 5.51, 6.52, 7.57, 8.57}

// reachSlope bounds from below how much each ring beyond diskReach adds to
// ρ_k, in units of avgEdgeM (measured: 0.956 on average over the next four
// rings). Over many rings the gain averages about 1.05, so far beyond the
// table the bound is loose, not wrong.
const reachSlope = 0.93

// maxCentreOffset bounds from above the distance from a cell's centre to any
// point of the cell, in units of avgEdgeM (measured: 1.104). It is the worst
// d0, which [CoverResolution] must assume before there is a fix.
const maxCentreOffset = 1.13

// childFringe bounds from above how far the children of a cell stick out of
// it, in units of avgEdgeM of the cell's resolution (measured: 0.1369).
//
// H3 cells do not nest exactly: the seven children of a cell cover it but
// poke out of its edges, so the ancestor at resolution r of a point's fine
// cell can be a neighbour of the point's own cell at r. The store index
// finds stores by ancestry (see [DescendantRange]), so a cover must hold the
// ancestors too. A cell lies within childFringe of its parent, the parent
// within childFringe (at its own scale) of the grandparent, and so on, so a
// descendant at any depth lies within fringeM of its ancestor.
const childFringe = 0.14

// fringeM[res] bounds how far, in metres, a descendant of a cell at res (at
// any finer resolution) lies outside the cell: the children's fringe, plus
// their children's, and so on down to resolution 15 (the sum shrinks by
// √7 a level, to about 0.22 edges).
var fringeM = func() (f [maxRes + 1]float64) {
	for res := maxRes - 1; res >= 0; res-- {
		f[res] = f[res+1] + childFringe*avgEdgeM[res]
	}
	return f
}()

// maxCoverK is the largest disk radius whose disk fits in MaxCoverCells.
var maxCoverK = func() int {
	k := 0
	for diskSize(k+1) <= MaxCoverCells {
		k++
	}
	return k
}()

// diskSize is the number of cells in a grid disk of radius k away from
// pentagons (pentagon disks have fewer).
func diskSize(k int) int { return 3*k*(k+1) + 1 }

// diskK returns the smallest k whose disk reaches beyond u avgEdgeM from the
// centre of the cell, or maxCoverK+1 if that is more than maxCoverK.
func diskK(u float64) int {
	for k, reach := range diskReach {
		if u < reach {
			return k
		}
	}
	last := len(diskReach) - 1
	rings := (u - diskReach[last]) / reachSlope
	if rings >= float64(maxCoverK) {
		return maxCoverK + 1
	}
	return last + 1 + int(rings)
}

// coverLimitM[res] is the largest radius whose cover at res is a disk of
// k ≤ 2 wherever the fix lies in its cell.
var coverLimitM = func() (lim [maxRes + 1]float64) {
	for res, e := range avgEdgeM {
		lim[res] = (diskReach[2]-maxCentreOffset)*e - fringeM[res]
	}
	return lim
}()

// CoverResolution returns the finest resolution, no finer than
// [IndexResolution], at which [Cover] of a circle of radius radiusM is a
// grid disk of k ≤ 2 (at most 19 cells) wherever the centre lies: for
// example 10 for 50 m, 9 for 200 m, 7 for 800 m, 6 for 2 km and 5 for 5 km.
// A caller that widens its search ring by ring calls it for each radius and
// looks up at most 19 cells each time. A radius of 0 or less gives
// IndexResolution; NaN, an infinite radius, or one too wide even for
// resolution 0 gives 0 (Cover rejects the invalid ones). O(1), no allocation.
func CoverResolution(radiusM float64) int {
	for res := IndexResolution; res >= 0; res-- {
		if radiusM < coverLimitM[res] {
			return res
		}
	}
	return 0
}

// Cover returns H3 cells at resolution res that cover the circle of radius
// radiusM metres (great-circle, as [DistanceM]) around lat, lng, boundary
// included, in both of H3's senses: for every point p of the circle, the
// cell at res containing p is in the cover, and so is the ancestor at res of
// p's cell at any finer resolution, such as the [IndexResolution] cell a
// store is indexed by. The second is what makes [DescendantRange] lookups of
// the cover find every store in the circle; the two differ near cell edges
// because H3 children do not nest exactly in their parents.
//
// The cover is conservative, never missing a point, and small: a grid disk
// around the centre's cell whose radius k comes from the centre's distance
// to its cell's centre and measured bounds on H3's geometry (see diskReach
// and childFringe in the source). The cells are in no particular order,
// each once.
//
// At the resolution [CoverResolution] picks, k ≤ 2: three cgo calls, about
// 2 µs, and four small allocations (about 200 bytes), one of them the slice
// of at most 19 cells. h3-go allocates the slice itself and has no variant
// that fills a caller's buffer, so there is no append form. At finer
// resolutions the disk grows as (radiusM / edge length)²; past
// [MaxCoverCells] cells Cover returns [ErrCoverTooLarge].
//
// radiusM must be in [0, MaxCoverRadiusM].
func Cover(lat, lng, radiusM float64, res int) ([]h3.Cell, error) {
	if err := checkLatLng(lat, lng); err != nil {
		return nil, fmt.Errorf("cover: %w", err)
	}
	if err := checkRes(res); err != nil {
		return nil, fmt.Errorf("cover: %w", err)
	}
	// The negated comparison also rejects NaN.
	if !(radiusM >= 0 && radiusM <= MaxCoverRadiusM) {
		return nil, fmt.Errorf("cover: %w: radius %v m not in [0, %d]", ErrInvalid, radiusM, MaxCoverRadiusM)
	}
	c, err := h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, res)
	if err != nil {
		return nil, fmt.Errorf("cover: %w", err)
	}
	centre, err := h3.CellToLatLng(c)
	if err != nil {
		return nil, fmt.Errorf("cover: %w", err)
	}
	d0 := DistanceM(lat, lng, centre.Lat, centre.Lng)
	k := diskK((radiusM + fringeM[res] + d0) / avgEdgeM[res])
	if k > maxCoverK {
		return nil, fmt.Errorf("cover: radius %v m at resolution %d: %w", radiusM, res, ErrCoverTooLarge)
	}
	cells, err := h3.GridDisk(c, k)
	if err != nil {
		return nil, fmt.Errorf("cover: %w", err)
	}
	return cells, nil
}
