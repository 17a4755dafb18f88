package geo

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/uber/h3-go/v4"
)

// PointCovers is a set of cells around a cell c, each with its centre, that
// holds the cover of every point filed under c, from which
// [PointCovers.Append] (or [PointCovers.Mark], for many) picks the cover of
// one point filed under c: the cells that come within the radius of that
// point, rather than of any point of c. Where many points share a cell (the
// stores of a national chain), it gives each a cover about half the size of
// the cell's for one dot product a cell of it.
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
// c, that is whose IndexResolution cell descends from c. Its cells are those
// of the worst-case disk around c (see worstDiskK) whose centres some point
// filed under c could reach: a superset of the cells each point's cover may
// hold. It makes one cgo call for the disk and one for each of its cells'
// centres (37–61 at navad's presence tiers: 500 m to 5 km at resolutions 8
// to 6), and measures no cell boundaries, which would cost twice as much
// where a caller makes covers for every cell of a national catalogue.
func NewPointCovers(c h3.Cell, radiusM float64) (*PointCovers, error) {
	// Every cell a point's cover needs is within the worst-case disk.
	kMax, err := worstDiskK(c, radiusM)
	if err != nil {
		return nil, fmt.Errorf("point covers: %w", err)
	}
	res := c.Resolution()
	disk, err := h3.GridDisk(c, kMax)
	if err != nil {
		return nil, fmt.Errorf("point covers: %w", err)
	}
	home, err := c.LatLng()
	if err != nil {
		return nil, fmt.Errorf("point covers: %w", err)
	}
	hc := unitVec(home)
	pc := &PointCovers{radiusM: radiusM, res: res, minDot: reachDot(radiusM, res)}
	// A point filed under c lies within maxCentreOffset edges of c's centre,
	// or the fringe beyond (see childFringe): a cell whose centre is farther
	// than that plus a point's reach from c's centre is in no point's cover.
	far := (maxCentreOffset*avgEdgeM[res] + fringeM[res]) * (1 + boundarySlack)
	candDot := math.Cos(min((reachM(radiusM, res)+far)/EarthRadiusM, math.Pi))
	for _, x := range disk {
		if x == 0 {
			continue // pentagon distortion leaves gaps
		}
		ll, err := x.LatLng()
		if err != nil {
			return nil, fmt.Errorf("point covers: %w", err)
		}
		if v := unitVec(ll); hc.dot(v) >= candDot {
			pc.cells = append(pc.cells, uint64(x))
			pc.centres = append(pc.centres, v)
		}
	}
	return pc, nil
}

// worstDiskK checks c and radiusM and returns the radius of the grid disk
// around c that holds the cover of radiusM for every point filed under c:
// [Cover]'s bound (diskReach, from the worst cell on the globe) for a point
// maxCentreOffset from c's centre, with the children's fringe (see
// childFringe) added twice, since a point filed under c lies up to the
// fringe outside c and a covered cell's descendants up to it outside that
// cell.
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

// boundarySlack widens the reach NewPointCovers allows a cell's centre,
// relatively and in metres, for rounding in H3's geometry and in the
// arithmetic here (both far smaller).
const (
	boundarySlack  = 0.01
	boundarySlackM = 1
)

// reachM returns the farthest from a point the centre of a cell at
// resolution res in the point's cover of radiusM may lie. Why a cell whose
// centre lies farther can be left out: a fix within radiusM of the point
// lies in its cell at the resolution, or at most the children's fringe
// outside the cell it is filed under (see childFringe), and no point of a
// cell lies farther than maxCentreOffset from its centre.
func reachM(radiusM float64, res int) float64 {
	reach := radiusM + fringeM[res] + maxCentreOffset*avgEdgeM[res]
	return reach*(1+boundarySlack) + boundarySlackM
}

// reachDot is the cosine of reachM's angle.
func reachDot(radiusM float64, res int) float64 {
	return math.Cos(min(reachM(radiusM, res)/EarthRadiusM, math.Pi))
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
// point within radiusM of lat, lng. They are a subset of
// [PointCovers.Cells], in its order. Append is pure Go and does not allocate beyond growing dst: about
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

// Cells returns the cells of every point's cover: a cover of the whole cell,
// which holds for any point filed under it. The slice is pc's own: the
// caller must not change it.
func (pc *PointCovers) Cells() []uint64 { return pc.cells }
