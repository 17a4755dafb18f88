package geo

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/uber/h3-go/v4"
)

// TestCellCoverHoldsForEveryFixInTheCell: fixes filed under a cell by the
// ancestry of their fine cell (points of the cell, its boundary, and points
// just outside it whose fine cell still descends from it), and points at and
// inside the radius around each: every point's cell and the ancestor of its
// fine cell are in the cover — across Japan, at the resolutions
// CellCoverResolution picks.
func TestCellCoverHoldsForEveryFixInTheCell(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	radii := []float64{50, 125, 250, 500, 800, 1000, 2000, 5000}
	for range 300 {
		lat, lng := 24+r.Float64()*21.5, 123+r.Float64()*23
		radius := radii[r.IntN(len(radii))]
		res := CellCoverResolution(radius)
		fine, err := Cell(lat, lng, IndexResolution)
		if err != nil {
			t.Fatal(err)
		}
		c := h3.Cell(Parent(uint64(fine), res))
		if err != nil {
			t.Fatal(err)
		}
		cover, err := CellCover(c, radius)
		if err != nil {
			t.Fatal(err)
		}
		if len(cover) > 19 {
			t.Fatalf("cover at resolution %d of %v m has %d cells, want ≤ 19", res, radius, len(cover))
		}
		in := map[h3.Cell]bool{}
		for _, x := range cover {
			in[x] = true
		}
		boundary, err := c.Boundary()
		if err != nil {
			t.Fatal(err)
		}
		centre, _ := c.LatLng()
		var fixes [][2]float64
		for _, v := range boundary {
			// Vertices and points just inside them: the farthest fixes.
			fixes = append(fixes, [2]float64{v.Lat, v.Lng},
				[2]float64{centre.Lat + 0.999*(v.Lat-centre.Lat), centre.Lng + 0.999*(v.Lng-centre.Lng)})
		}
		for range 5 {
			f := r.Float64()
			v := boundary[r.IntN(len(boundary))]
			fixes = append(fixes, [2]float64{centre.Lat + f*(v.Lat-centre.Lat), centre.Lng + f*(v.Lng-centre.Lng)})
		}
		// Points just beyond the boundary whose fine cell still descends
		// from c: the fringe.
		for _, v := range boundary {
			for _, f := range []float64{1.02, 1.05, 1.1} {
				p := [2]float64{centre.Lat + f*(v.Lat-centre.Lat), centre.Lng + f*(v.Lng-centre.Lng)}
				pf, err := Cell(p[0], p[1], IndexResolution)
				if err == nil && h3.Cell(Parent(uint64(pf), res)) == c {
					fixes = append(fixes, p)
				}
			}
		}
		for _, fx := range fixes {
			for range 24 {
				bearing := r.Float64() * 2 * math.Pi
				d := radius
				if r.IntN(3) == 0 {
					d = radius * r.Float64()
				}
				plat, plng := walkFrom(fx[0], fx[1], bearing, d)
				pc, err := Cell(plat, plng, res)
				if err != nil {
					t.Fatal(err)
				}
				pfine, err := Cell(plat, plng, IndexResolution)
				if err != nil {
					t.Fatal(err)
				}
				if !in[pc] || !in[h3.Cell(Parent(uint64(pfine), res))] {
					t.Fatalf("cell %v, radius %v m: point %.7f,%.7f at %.1f m from fix %.7f,%.7f is outside the cover",
						c, radius, plat, plng, DistanceM(fx[0], fx[1], plat, plng), fx[0], fx[1])
				}
			}
		}
	}
}

// walkFrom returns the point d metres from lat, lng along bearing.
func walkFrom(lat, lng, bearing, d float64) (float64, float64) {
	φ1, λ1 := lat*math.Pi/180, lng*math.Pi/180
	δ := d / EarthRadiusM
	φ2 := math.Asin(math.Sin(φ1)*math.Cos(δ) + math.Cos(φ1)*math.Sin(δ)*math.Cos(bearing))
	λ2 := λ1 + math.Atan2(math.Sin(bearing)*math.Sin(δ)*math.Cos(φ1), math.Cos(δ)-math.Sin(φ1)*math.Sin(φ2))
	return φ2 * 180 / math.Pi, λ2 * 180 / math.Pi
}

func TestCellCoverRejectsBadInput(t *testing.T) {
	c, _ := Cell(35.69, 139.70, 8)
	for _, tt := range []struct {
		name string
		cell h3.Cell
		r    float64
	}{
		{"not a cell", h3.Cell(12345), 100},
		{"NaN radius", c, math.NaN()},
		{"negative radius", c, -1},
		{"huge radius", c, 1e7},
	} {
		if _, err := CellCover(tt.cell, tt.r); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}
