package geo

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/uber/h3-go/v4"
)

// PointCovers is the [CellCover] of a cell c with the centre of each of its
// cells, from which [PointCovers.Append] (or [PointCovers.Mark], for many)
// picks the cover of one point filed under c: the cells that come within
// the radius of that point, rather than of any point of c. Where many points share a cell (the stores of a
// national chain), it gives each a cover about half the size of the cell's
// for one dot product a cell of it.
//
// A PointCovers is immutable once made, so safe for concurrent use.
type PointCovers struct {
	cells   []uint64
	centres []vec3
	minDot  float64 // cos of the farthest a kept cell's centre may lie
	radiusM float64
	res     int
}

// NewPointCovers returns the covers of radiusM for the points filed under
// c, that is whose IndexResolution cell descends from c. It makes the cgo
// calls of CellCover and one more for each cell of the cover, some 20–50 µs
// at the resolution CellCoverResolution picks.
func NewPointCovers(c h3.Cell, radiusM float64) (*PointCovers, error) {
	cells, err := CellCover(c, radiusM)
	if err != nil {
		return nil, fmt.Errorf("point covers: %w", err)
	}
	pc := &PointCovers{cells: make([]uint64, len(cells)), centres: make([]vec3, len(cells))}
	for i, x := range cells {
		ll, err := x.LatLng()
		if err != nil {
			return nil, fmt.Errorf("point covers: %w", err)
		}
		pc.cells[i], pc.centres[i] = uint64(x), unitVec(ll)
	}
	pc.radiusM, pc.res = radiusM, c.Resolution()
	pc.minDot = reachDot(radiusM, pc.res)
	return pc, nil
}

// reachDot returns the cosine of the farthest from a point the centre of a
// cell at resolution res in the point's cover of radiusM may lie. Why a
// cell whose centre lies farther can be left out: a fix within radiusM of
// the point lies in its cell at the resolution, or at most the children's
// fringe outside the cell it is filed under (see childFringe), and no point
// of a cell lies farther than maxCentreOffset from its centre.
func reachDot(radiusM float64, res int) float64 {
	reach := radiusM + fringeM[res] + maxCentreOffset*avgEdgeM[res]
	reach = reach*(1+boundarySlack) + boundarySlackM
	return math.Cos(min(reach/EarthRadiusM, math.Pi))
}

// Within returns the point covers of a radius no larger than pc's over
// pc's cells, which hold the smaller cover of every point filed under the
// cell: no cgo call, and the cells and centres are shared. A caller that
// needs covers of several radii at one resolution (navad's presence tiers)
// makes the largest once per cell; the smaller ones cost one more dot
// product a point for each cell between the two covers.
func (pc *PointCovers) Within(radiusM float64) (*PointCovers, error) {
	if !(radiusM >= 0 && radiusM <= pc.radiusM) {
		return nil, fmt.Errorf("point covers: %w: radius %v m not in [0, %v]", ErrInvalid, radiusM, pc.radiusM)
	}
	w := *pc
	w.radiusM, w.minDot = radiusM, reachDot(radiusM, pc.res)
	return &w, nil
}

// Append appends to dst the cells of the cover of radiusM around the point
// lat, lng, which must be filed under the cell pc was made for: every cell
// at the resolution that holds, or is the ancestor of the finer cells of, a
// point within radiusM of lat, lng. They are a subset of CellCover's, in its
// order. Append is pure Go and does not allocate beyond growing dst: about
// 0.1 µs for 19 cells.
func (pc *PointCovers) Append(dst []uint64, lat, lng float64) []uint64 {
	p := unitVec(h3.LatLng{Lat: lat, Lng: lng})
	for i := range pc.centres {
		if pc.near(p, i) {
			dst = append(dst, pc.cells[i])
		}
	}
	return dst
}

// near reports whether the cover of point p holds Cells()[i].
func (pc *PointCovers) near(p vec3, i int) bool { return p.dot(pc.centres[i]) >= pc.minDot }

// Words is the length of the bitsets [PointCovers.Mark] and
// [PointCovers.AppendMarked] take: a bit for each cell of
// [PointCovers.Cells].
func (pc *PointCovers) Words() int { return (len(pc.cells) + 63) / 64 }

// Mark sets in near, a bitset of [PointCovers.Words] words, the bit of each
// cell of the cover of the point lat, lng (filed under the cell pc was made
// for): bit i, near[i/64]&(1<<(i%64)), for Cells()[i]. Marking many points
// and then appending the marked cells once gives the union of their covers
// without repeats: the stores of one cell share most of their cells. Pure
// Go and no allocation: one dot product a cell.
func (pc *PointCovers) Mark(near []uint64, lat, lng float64) {
	p := unitVec(h3.LatLng{Lat: lat, Lng: lng})
	for i := range pc.centres {
		if pc.near(p, i) {
			near[i/64] |= 1 << (i % 64)
		}
	}
}

// AppendMarked appends to dst the cells whose bits are set in near, in the
// order of [PointCovers.Cells], and clears near for the next use.
func (pc *PointCovers) AppendMarked(dst, near []uint64) []uint64 {
	for w, word := range near[:pc.Words()] {
		for word != 0 {
			dst = append(dst, pc.cells[w*64+bits.TrailingZeros64(word)])
			word &= word - 1
		}
		near[w] = 0
	}
	return dst
}

// Cells returns the cover of the whole cell, CellCover's, which holds every
// point's. The slice is pc's own: the caller must not change it.
func (pc *PointCovers) Cells() []uint64 { return pc.cells }
