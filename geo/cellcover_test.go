package geo

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
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

// TestCellCoverHoldsEveryNearFix is the property the presence tiers rest
// on: a store filed under a cell c (the ancestor of its IndexResolution
// cell), and a fix within the radius of it, in every direction and mostly a
// hair inside the radius, whose cell (the ancestor of its fine cell, as the
// decision files it, and its own cell) is in CellCover(c, radius) and in
// the store's own cover, NewPointCovers(c, radius).Append of the store. Stores
// are drawn over the globe, in Japan, around the twelve pentagons, along
// the icosahedron edges, at high latitudes and on the antimeridian, half of
// them within centimetres of a vertex of their cell, where the cover is
// tightest; the presence tiers' radii and resolutions, and others.
//
// It checks that its fixes would catch a cover one ring too small: for some
// stores of every case, a fix lies outside the disk one ring smaller than
// the cover (a test that passed with that disk too would prove little). Not
// for every store: the cover holds for the worst store filed under c,
// farthest out in the children's fringe, and most lie well inside.
func TestCellCoverHoldsEveryNearFix(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	tests := []struct {
		radius float64
		res    int
	}{
		{radius: 500, res: 8},
		{radius: 1000, res: 8},
		{radius: 2000, res: 7},
		{radius: 5000, res: 6},
		{radius: 800, res: 8},
		{radius: 1000, res: CellCoverResolution(1000)},
		{radius: 2000, res: CellCoverResolution(2000)},
		{radius: 5000, res: CellCoverResolution(5000)},
		{radius: 500, res: 9},
		{radius: 800, res: 9},
		{radius: 250, res: CellCoverResolution(250)},
	}
	storesN, randomN := 150, 150
	if testing.Short() {
		storesN, randomN = 30, 30
	}
	for _, tt := range tests {
		var stores []h3.LatLng
		for range storesN {
			stores = append(stores, h3.LatLng{Lat: 24 + rng.Float64()*21.5, Lng: 123 + rng.Float64()*23})
		}
		for range randomN {
			stores = append(stores, randomGlobal(rng))
		}
		for _, c := range pentagonNeighbourhoods(t, tt.res, 2) {
			ll, err := c.LatLng()
			if err != nil {
				t.Fatal(err)
			}
			stores = append(stores, ll)
		}
		for _, c := range icosahedronEdgeCells(t, rng, tt.res, 1) {
			ll, err := c.LatLng()
			if err != nil {
				t.Fatal(err)
			}
			stores = append(stores, ll)
		}
		for range 20 {
			stores = append(stores,
				h3.LatLng{Lat: 80 + 9.9*rng.Float64(), Lng: 360*rng.Float64() - 180},
				h3.LatLng{Lat: -80 - 9.9*rng.Float64(), Lng: 360*rng.Float64() - 180},
				h3.LatLng{Lat: 140*rng.Float64() - 70, Lng: 180 - 0.05*rng.Float64()},
				h3.LatLng{Lat: 140*rng.Float64() - 70, Lng: -180 + 0.05*rng.Float64()})
		}
		var smaller, caught, fixes, coverN, ownN int
		for _, st := range stores {
			st = nearVertex(t, rng, st, tt.res)
			c := h3.Cell(Parent(uint64(mustCell(t, st, IndexResolution)), tt.res))
			cover, err := CellCover(c, tt.radius)
			if err != nil {
				t.Fatalf("CellCover(%v, %v): %v", c, tt.radius, err)
			}
			// Each cell's grid distance from c, to find the disk one ring
			// smaller (h3.GridDistance fails near pentagons).
			rings, err := c.GridDiskDistances(12)
			if err != nil {
				t.Fatal(err)
			}
			ring := map[h3.Cell]int{}
			for d, cells := range rings {
				for _, x := range cells {
					if x != 0 {
						ring[x] = d
					}
				}
			}
			coverN += len(cover)
			dist := make(map[h3.Cell]int, len(cover))
			k := 0
			for _, x := range cover {
				d, ok := ring[x]
				if !ok {
					t.Fatalf("CellCover(%v, %v) holds %v, more than 12 rings away", c, tt.radius, x)
				}
				dist[x] = d
				k = max(k, d)
			}
			pc, err := NewPointCovers(c, tt.radius)
			if err != nil {
				t.Fatalf("NewPointCovers(%v, %v): %v", c, tt.radius, err)
			}
			own := map[h3.Cell]bool{}
			for _, x := range pc.Append(nil, st.Lat, st.Lng) {
				own[h3.Cell(x)] = true
			}
			// The same radius within the covers of twice it (or of the
			// radius itself where twice is too large a cover).
			wide, err := NewPointCovers(c, 2*tt.radius)
			if errors.Is(err, ErrCoverTooLarge) {
				wide = pc
			} else if err != nil {
				t.Fatalf("NewPointCovers(%v, %v): %v", c, 2*tt.radius, err)
			}
			within, err := wide.Within(tt.radius)
			if err != nil {
				t.Fatalf("Within(%v): %v", tt.radius, err)
			}
			ownWithin := map[h3.Cell]bool{}
			for _, x := range within.Append(nil, st.Lat, st.Lng) {
				ownWithin[h3.Cell(x)] = true
			}
			ownN += len(own)
			escaped := false
			const around = 64
			for i := range around + 32 {
				bearing := 2 * math.Pi * float64(i) / around // every direction
				d := tt.radius * (1 - 1e-9)
				if i >= around {
					bearing = 2 * math.Pi * rng.Float64()
					d = tt.radius * math.Sqrt(rng.Float64())
				}
				p := destination(st, bearing, d)
				fixes++
				for _, x := range []h3.Cell{
					h3.Cell(Parent(uint64(mustCell(t, p, IndexResolution)), tt.res)),
					mustCell(t, p, tt.res),
				} {
					dx, ok := dist[x]
					if !ok {
						t.Fatalf("%v m at resolution %d: store %.7f,%.7f in %v (cover of %d cells, k=%d), fix %.7f,%.7f %.2f m away in %v, outside the cover",
							tt.radius, tt.res, st.Lat, st.Lng, c, len(cover), k, p.Lat, p.Lng, DistanceM(st.Lat, st.Lng, p.Lat, p.Lng), x)
					}
					escaped = escaped || dx == k
					if !own[x] {
						t.Fatalf("%v m at resolution %d: store %.7f,%.7f in %v (own cover of %d cells), fix %.7f,%.7f %.2f m away in %v, outside the store's own cover",
							tt.radius, tt.res, st.Lat, st.Lng, c, len(own), p.Lat, p.Lng, DistanceM(st.Lat, st.Lng, p.Lat, p.Lng), x)
					}
					if !ownWithin[x] {
						t.Fatalf("%v m at resolution %d: store %.7f,%.7f in %v (own cover of %d cells within twice the radius's), fix %.7f,%.7f %.2f m away in %v, outside it",
							tt.radius, tt.res, st.Lat, st.Lng, c, len(ownWithin), p.Lat, p.Lng, DistanceM(st.Lat, st.Lng, p.Lat, p.Lng), x)
					}
				}
			}
			if k > 0 {
				smaller++
				if escaped {
					caught++
				}
			}
		}
		t.Logf("%v m at resolution %d: %d stores, %d fixes; %.1f cells a cover, %.1f a store's own; %d of %d disks one ring smaller miss a fix",
			tt.radius, tt.res, len(stores), fixes, float64(coverN)/float64(len(stores)), float64(ownN)/float64(len(stores)), caught, smaller)
		if caught == 0 {
			t.Errorf("%v m at resolution %d: no disk one ring smaller than the cover misses a fix; the fixes are too weak a test",
				tt.radius, tt.res)
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
		{"too large a cover at the resolution", c, 90_000},
	} {
		if _, err := CellCover(tt.cell, tt.r); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
		if _, err := NewPointCovers(tt.cell, tt.r); err == nil {
			t.Errorf("%s: NewPointCovers: no error", tt.name)
		}
	}
	// Within takes no radius beyond its covers'.
	pc, err := NewPointCovers(c, 800)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []float64{801, -1, math.NaN()} {
		if _, err := pc.Within(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("Within(%v): %v, want ErrInvalid", r, err)
		}
	}
}

// TestPointCoversMark: marking many points and appending the marked cells
// gives each cell of their Append covers once, in the order of Cells.
func TestPointCoversMark(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for range 50 {
		centre := h3.LatLng{Lat: 24 + rng.Float64()*21.5, Lng: 123 + rng.Float64()*23}
		c := mustCell(t, centre, 8)
		pc, err := NewPointCovers(c, 800)
		if err != nil {
			t.Fatal(err)
		}
		var points [][2]float64
		want := map[uint64]bool{}
		for range 1 + rng.IntN(40) {
			p := destination(centre, 2*math.Pi*rng.Float64(), 600*rng.Float64())
			if h3.Cell(Parent(uint64(mustCell(t, p, IndexResolution)), 8)) != c {
				continue
			}
			points = append(points, [2]float64{p.Lat, p.Lng})
			for _, x := range pc.Append(nil, p.Lat, p.Lng) {
				want[x] = true
			}
		}
		near := make([]uint64, pc.Words())
		for _, p := range points {
			pc.Mark(near, p[0], p[1])
		}
		got := pc.AppendMarked(nil, near)
		if slices.ContainsFunc(near, func(w uint64) bool { return w != 0 }) {
			t.Fatalf("AppendMarked left bits set: %x", near)
		}
		var wantList []uint64
		for _, x := range pc.Cells() {
			if want[x] {
				wantList = append(wantList, x)
			}
		}
		if !slices.Equal(got, wantList) {
			t.Fatalf("cell %v, %d points: Mark and AppendMarked give %x, want %x", c, len(points), got, wantList)
		}
	}
}
