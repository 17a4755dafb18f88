package geo

import (
	"flag"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/uber/h3-go/v4"
)

var calibrate = flag.Bool("calibrate", false,
	"TestCoverBounds: measure the cover bounds over the whole grid and print them (minutes)")

// TestCoverBounds measures, for sampled cells, the quantities the bounds in
// cover.go stand for (diskReach, reachSlope, maxCentreOffset, childFringe),
// exactly from the cell boundaries, and fails if a
// sample breaks a bound. By default it checks the cells next to the twelve
// pentagons at two resolutions, where the minima are found, and a few random
// cells; with -calibrate it sweeps every resolution, the icosahedron edges
// and the globe, and logs the table (run with -v).
func TestCoverBounds(t *testing.T) {
	const extra = 4 // rings beyond the table, to check reachSlope
	maxK := len(diskReach) - 1 + extra

	resolutions := []int{9, 10}
	pentagonDisk, randomN, edgeN := 1, 100, 0
	if *calibrate {
		resolutions = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
		pentagonDisk, randomN, edgeN = 8, 2000, 20
	} else if testing.Short() {
		t.Skip("slow; the property tests cover the same ground")
	}
	rng := rand.New(rand.NewPCG(7, 8))

	minReach := make([]float64, maxK+1)
	for k := range minReach {
		minReach[k] = math.Inf(1)
	}
	minSlope, maxOffset, maxFringe := math.Inf(1), 0.0, 0.0
	for _, res := range resolutions {
		var cells []h3.Cell
		if res <= 2 {
			// Few enough to measure all.
			base, err := h3.Res0Cells()
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range base {
				ch, err := b.Children(res)
				if err != nil {
					t.Fatal(err)
				}
				cells = append(cells, ch...)
			}
		} else {
			cells = append(cells, pentagonNeighbourhoods(t, res, pentagonDisk)...)
			cells = append(cells, icosahedronEdgeCells(t, rng, res, edgeN)...)
			for range randomN {
				cells = append(cells, mustCell(t, randomGlobal(rng), res))
			}
		}
		e := avgEdgeM[res]
		resReach := make([]float64, maxK+1)
		for k := range resReach {
			resReach[k] = math.Inf(1)
		}
		resSlope, resOffset, resFringe := math.Inf(1), 0.0, 0.0
		for _, c := range cells {
			reach, offset := measureDisk(t, c, maxK)
			resOffset = max(resOffset, offset/e)
			if res < maxRes {
				resFringe = max(resFringe, measureChildFringe(t, c)/e)
			}
			for k := range reach {
				resReach[k] = min(resReach[k], reach[k]/e)
			}
			last := len(diskReach) - 1
			for k := last + 1; k <= maxK; k++ {
				resSlope = min(resSlope, (reach[k]-reach[last])/e/float64(k-last))
			}
		}
		t.Logf("res %2d: %6d cells, reach %.3f, slope %.3f, offset %.3f, child fringe %.4f",
			res, len(cells), resReach, resSlope, resOffset, resFringe)
		for k := range minReach {
			minReach[k] = min(minReach[k], resReach[k])
		}
		minSlope, maxOffset = min(minSlope, resSlope), max(maxOffset, resOffset)
		maxFringe = max(maxFringe, resFringe)
	}
	t.Logf("all:      reach %.3f, slope %.3f, offset %.3f, child fringe %.4f", minReach, minSlope, maxOffset, maxFringe)

	for k, bound := range diskReach {
		if minReach[k] < bound {
			t.Errorf("diskReach[%d] = %v, but a disk reached only %.3f", k, bound, minReach[k])
		}
	}
	last := len(diskReach) - 1
	for k := last + 1; k <= maxK; k++ {
		if bound := diskReach[last] + float64(k-last)*reachSlope; minReach[k] < bound {
			t.Errorf("extrapolated reach of k=%d is %.3f, but a disk reached only %.3f", k, bound, minReach[k])
		}
	}
	if maxOffset > maxCentreOffset {
		t.Errorf("maxCentreOffset = %v, but a cell extends %.3f from its centre", maxCentreOffset, maxOffset)
	}
	if maxFringe > childFringe {
		t.Errorf("childFringe = %v, but children stick out %.4f", childFringe, maxFringe)
	}
}

// Exact spherical geometry, for measuring the bounds from cell boundaries.

func (a vec3) latLng() h3.LatLng {
	return h3.LatLng{Lat: math.Asin(max(-1, min(1, a.z))) / degToRad, Lng: math.Atan2(a.y, a.x) / degToRad}
}

func (a vec3) add(b vec3) vec3      { return vec3{a.x + b.x, a.y + b.y, a.z + b.z} }
func (a vec3) scale(f float64) vec3 { return vec3{a.x * f, a.y * f, a.z * f} }
func (a vec3) unit() vec3           { return a.scale(1 / math.Sqrt(a.dot(a))) }
func (a vec3) cross(b vec3) vec3 {
	return vec3{a.y*b.z - a.z*b.y, a.z*b.x - a.x*b.z, a.x*b.y - a.y*b.x}
}

// angle is the angle in radians between a and b, accurate at small angles.
func angle(a, b vec3) float64 {
	c := a.cross(b)
	return math.Atan2(math.Sqrt(c.dot(c)), a.dot(b))
}

// arcDistance is the angle in radians from p to the minor great-circle arc
// from a to b.
func arcDistance(p, a, b vec3) float64 {
	n := a.cross(b).unit()
	s := p.dot(n)
	q := p.add(n.scale(-s)) // p projected on the arc's plane
	if a.cross(q).dot(n) >= 0 && q.cross(b).dot(n) >= 0 {
		return math.Abs(math.Asin(max(-1, min(1, s))))
	}
	return min(angle(p, a), angle(p, b))
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

// measureChildFringe returns how far, in metres, the children of c reach
// outside c. Both are convex, so the farthest point is a child's vertex.
func measureChildFringe(t *testing.T, c h3.Cell) float64 {
	t.Helper()
	parent, err := cellBoundary(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	children, err := c.ImmediateChildren()
	if err != nil {
		t.Fatal(err)
	}
	fringe := 0.0
	for _, ch := range children {
		cb, err := ch.Boundary()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range cb {
			fringe = max(fringe, outsideDistance(unitVec(v), parent)*EarthRadiusM)
		}
	}
	return fringe
}

// outsideDistance is the angle in radians from p to the convex spherical
// polygon poly (counter-clockwise seen from outside the sphere, as H3 gives
// boundaries), or 0 if p is inside.
func outsideDistance(p vec3, poly []vec3) float64 {
	inside := true
	for i := range poly {
		if poly[i].cross(poly[(i+1)%len(poly)]).dot(p) < 0 {
			inside = false
			break
		}
	}
	if inside {
		return 0
	}
	return pointDistance(p, poly)
}

// measureDisk returns, for k = 0..maxK, the distance in metres from the
// centre of c to the nearest point outside GridDisk(c, k), and the largest
// distance from the centre of c to its boundary.
func measureDisk(t *testing.T, c h3.Cell, maxK int) (reach []float64, offset float64) {
	t.Helper()
	ll, err := c.LatLng()
	if err != nil {
		t.Fatal(err)
	}
	centre := unitVec(ll)
	b, err := c.Boundary()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range b {
		offset = max(offset, angle(centre, unitVec(v))*EarthRadiusM)
	}
	rings, err := c.GridDiskDistances(maxK + 1)
	if err != nil {
		t.Fatal(err)
	}
	// The region outside GridDisk(c, k) borders the disk only along cells
	// at distance k+1, so the nearest point outside lies on one of them.
	reach = make([]float64, maxK+1)
	for k := range reach {
		reach[k] = math.Inf(1)
		for _, d := range rings[k+1] {
			if d == 0 {
				continue // pentagon distortion leaves gaps
			}
			reach[k] = min(reach[k], cellDistanceM(t, centre, d))
		}
	}
	return reach, offset
}

// cellDistanceM is the distance in metres from p (outside c) to the boundary
// of c, whose edges are great-circle arcs (straight in H3's gnomonic
// projection of each icosahedron face).
func cellDistanceM(t *testing.T, p vec3, c h3.Cell) float64 {
	t.Helper()
	b, err := cellBoundary(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return pointDistance(p, b) * EarthRadiusM
}

// pentagonNeighbourhoods returns the cells within grid distance k of each of
// the twelve pentagons at res.
func pentagonNeighbourhoods(t *testing.T, res, k int) []h3.Cell {
	t.Helper()
	ps, err := h3.Pentagons(res)
	if err != nil {
		t.Fatal(err)
	}
	var cells []h3.Cell
	for _, p := range ps {
		d, err := p.GridDisk(k)
		if err != nil {
			t.Fatal(err)
		}
		cells = append(cells, d...)
	}
	return cells
}

// icosahedronEdgeCells returns, for each of the 30 icosahedron edges, n
// random cells on it and their neighbours. The edges join the pentagon
// centres (the icosahedron's vertices) about 63.4° apart.
func icosahedronEdgeCells(t *testing.T, rng *rand.Rand, res, n int) []h3.Cell {
	t.Helper()
	if n == 0 {
		return nil
	}
	ps, err := h3.Pentagons(0)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vec3
	for _, p := range ps {
		ll, err := p.LatLng()
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, unitVec(ll))
	}
	var cells []h3.Cell
	for i := range vs {
		for j := i + 1; j < len(vs); j++ {
			if angle(vs[i], vs[j]) > 64*degToRad {
				continue // not an edge
			}
			for range n {
				f := rng.Float64()
				p := vs[i].scale(1 - f).add(vs[j].scale(f)).unit()
				d, err := mustCell(t, p.latLng(), res).GridDisk(1)
				if err != nil {
					t.Fatal(err)
				}
				cells = append(cells, d...)
			}
		}
	}
	return cells
}

// randomGlobal returns a point uniformly distributed over the sphere.
func randomGlobal(rng *rand.Rand) h3.LatLng {
	return h3.LatLng{
		Lat: math.Asin(2*rng.Float64()-1) / degToRad,
		Lng: 360*rng.Float64() - 180,
	}
}

func mustCell(t testing.TB, ll h3.LatLng, res int) h3.Cell {
	t.Helper()
	c, err := h3.LatLngToCell(ll, res)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
