package geo

import (
	"fmt"
	"math"

	"github.com/paulmach/orb"
	"github.com/uber/h3-go/v4"
)

// EventResolution is the H3 resolution of the cell kept with a tracking event
// (impression, click, navigation, visit) instead of the user's fix. A
// resolution 8 cell is about 0.74 km², a neighbourhood: in a city it holds
// thousands of residents and many shops, so a stored event cannot be traced
// to a home or to one store, yet reports grouped by cell still show where an
// ad works. (A countryside cell may hold a handful of homes; reports should
// suppress cells with few events.) The fix itself is never stored. Changing
// the resolution would split report history into incomparable halves, so it
// is a constant.
const EventResolution = 8

// IndexResolution is the H3 resolution at which store positions are indexed.
// Stored as a sorted []uint64, the descendants at this resolution of any
// coarser cell form one contiguous run (see [DescendantRange]), so "every
// store in this cell" is two binary searches at whatever resolution a cover
// uses; [Cover] includes the ancestors of the index cells in its circle, so
// such lookups miss no store. Resolution 13 cells are about 44 m² (edge
// ~4 m): finer than any resolution [CoverResolution] picks for a radius of a
// few metres or more, and fine enough that the index cell alone places a
// store within a few metres.
const IndexResolution = 13

// maxRes is the finest H3 resolution.
const maxRes = 15

// Cell returns the H3 cell at resolution res that contains lat, lng.
// It costs one cgo call, about 0.5 µs, and two tiny allocations that h3-go
// makes for the call's arguments.
func Cell(lat, lng float64, res int) (h3.Cell, error) {
	if err := checkLatLng(lat, lng); err != nil {
		return 0, fmt.Errorf("cell: %w", err)
	}
	if err := checkRes(res); err != nil {
		return 0, fmt.Errorf("cell: %w", err)
	}
	c, err := h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, res)
	if err != nil {
		return 0, fmt.Errorf("cell: %w", err)
	}
	return c, nil
}

// CellPolygon returns the boundary of c as a GeoJSON-ready polygon: one
// closed ring of [lng, lat] points, counter-clockwise as RFC 7946 asks, its
// first point repeated at the end. It allocates the ring. A cell that
// straddles the antimeridian (in the Pacific, Chukotka and Antarctica) keeps
// its longitudes continuous, so some lie beyond ±180 rather than the ring
// wrapping across the map. The two cells at each resolution that contain a
// pole go once around it, so their longitudes run through 360°: after the
// cell's vertices the ring goes up the meridian of its first vertex, 360°
// on, to the pole, along the pole to that meridian itself, and back down,
// the usual way to draw a polar cap on a flat map.
func CellPolygon(c h3.Cell) (orb.Polygon, error) {
	if !c.IsValid() {
		return nil, fmt.Errorf("cell polygon: %w: %#x is not a cell", ErrInvalid, uint64(c))
	}
	b, err := c.Boundary()
	if err != nil {
		return nil, fmt.Errorf("cell polygon: %w", err)
	}
	ring := make(orb.Ring, 0, len(b)+4)
	for _, v := range b {
		lng := v.Lng
		if n := len(ring); n > 0 {
			// Unwrap across the antimeridian relative to the previous
			// vertex (no edge spans 180° of longitude, even around a
			// pole), in whole turns, so that a longitude not moved is
			// exactly H3's.
			lng += 360 * math.Round((ring[n-1][0]-lng)/360)
		}
		ring = append(ring, orb.Point{lng, v.Lat})
	}
	first, last := ring[0], ring[len(ring)-1]
	// Around a pole the longitudes gain or lose 360° on the way back to the
	// first vertex: eastward (counter-clockwise seen from above) around the
	// north pole, westward around the south pole.
	if back := first[0] + 360*math.Round((last[0]-first[0])/360); back != first[0] {
		pole := 90.0
		if back < first[0] {
			pole = -90
		}
		ring = append(ring, orb.Point{back, first[1]}, orb.Point{back, pole}, orb.Point{first[0], pole})
	}
	ring = append(ring, first)
	return orb.Polygon{ring}, nil
}

// The H3 index bit layout [Parent] and [DescendantRange] rely on, for a cell
// (mode 1) index, bit 63 the most significant
// (https://h3geo.org/docs/library/index/cell):
//
//	bit  63     reserved, 0
//	bits 59-62  mode, 1 for a cell
//	bits 56-58  mode-dependent, 0 for a cell
//	bits 52-55  resolution r, 0-15
//	bits 45-51  base cell, 0-121
//	bits 0-44   fifteen 3-bit digits; digit i (1-15) sits at bits
//	            3(15-i) to 3(15-i)+2, so coarse digits are more significant.
//	            Digits 1-r are 0-6; digits r+1-15 are all 7.
//
// So a cell's descendants at resolution R share every bit above digit r+1
// except the resolution field, and sorting same-resolution cells as integers
// sorts them by base cell and then digit by digit: a subtree is a run.
const (
	modeShift = 59
	modeMask  = uint64(0xf) << modeShift
	modeCell  = uint64(1) << modeShift
	highBit   = uint64(1) << 63
	resShift  = 52
	resMask   = uint64(0xf) << resShift
	digitBits = 3
	allSevens = uint64(1)<<(digitBits*maxRes) - 1 // every digit 7 (0b111)
	allSixes  = uint64(0o666666666666666)         // every digit 6 (0b110)
)

// cellRes returns the resolution of cell, or -1 if cell is not a cell index.
// It checks the mode and the top bit only, not the digits: cheap enough for
// the hot path, and enough to keep the arithmetic below in range.
func cellRes(cell uint64) int {
	if cell&(highBit|modeMask) != modeCell {
		return -1
	}
	return int(cell & resMask >> resShift)
}

// finerDigits is the mask of the digits finer than resolution res.
func finerDigits(res int) uint64 { return allSevens >> (digitBits * uint(res)) }

// Parent returns the ancestor of cell at resolution res, computed on the
// bits of the index without cgo: O(1), no allocation, a few nanoseconds. It
// equals h3.Cell.Parent for every valid cell. It returns 0 (H3's null index)
// if cell is not a cell index or res is not in [0, resolution of cell]; the
// digits of cell are not validated.
//
// H3 cells do not nest exactly, so near cell edges the ancestor of a point's
// fine cell may be a neighbour of the cell [Cell] gives for the point at res.
// Use Cell for a point's cell (as for [EventResolution]) and Parent for
// ancestry in the index.
func Parent(cell uint64, res int) uint64 {
	r := cellRes(cell)
	if r < 0 || res < 0 || res > r {
		return 0
	}
	return cell&^resMask | uint64(res)<<resShift | finerDigits(res)
}

// DescendantRange returns the half-open range [lo, hi) of uint64 values that
// holds every descendant of cell at resolution res, and no other valid cell:
// given a sorted []uint64 of cells at resolution res, the cells inside cell
// are s[i:j] with i, j the insertion points of lo and hi
// (slices.BinarySearch). It works on the bits of the index without cgo: O(1),
// no allocation, a few nanoseconds. It returns (0, 0), an empty range, if
// cell is not a cell index or res is not in [resolution of cell, 15].
//
// lo is cell at resolution res with its new digits 0, hi is one past the
// largest descendant, whose new digits are all 6. Every value between shares
// cell's base cell and digits, so any valid cell in the range descends from
// cell. Pentagon descendants skip digit 1 (a deleted subsequence) but still
// lie in the range.
func DescendantRange(cell uint64, res int) (lo, hi uint64) {
	r := cellRes(cell)
	if r < 0 || res < r || res > maxRes {
		return 0, 0
	}
	added := finerDigits(r) &^ finerDigits(res) // digits r+1 .. res
	lo = (cell&^resMask | uint64(res)<<resShift) &^ added
	return lo, (lo | allSixes&added) + 1
}
