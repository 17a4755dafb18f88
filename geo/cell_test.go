package geo

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
	"github.com/uber/h3-go/v4"
)

func TestCell(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name     string
		lat, lng float64
		res      int
		want     string
		wantErr  error
	}{
		{name: "Shinjuku station", lat: 35.690921, lng: 139.700258, res: EventResolution, want: "882f5a3751fffff"},
		{name: "north pole", lat: 90, lng: 0, res: 9, want: "890326233abffff"},
		{name: "south pole", lat: -90, lng: 0, res: 0, want: "80f3fffffffffff"},
		{name: "antimeridian", lat: 0, lng: 180, res: 0, want: "807ffffffffffff"},
		{name: "antimeridian west", lat: 0, lng: -180, res: 0, want: "807ffffffffffff"},
		{name: "lat NaN", lat: nan, lng: 139.7, res: 8, wantErr: ErrInvalid},
		{name: "lng NaN", lat: 35.7, lng: nan, res: 8, wantErr: ErrInvalid},
		{name: "lat Inf", lat: inf, lng: 139.7, res: 8, wantErr: ErrInvalid},
		{name: "lng -Inf", lat: 35.7, lng: -inf, res: 8, wantErr: ErrInvalid},
		{name: "lat -90.000001", lat: -90.000001, lng: 139.7, res: 8, wantErr: ErrInvalid},
		{name: "lng 181", lat: 35.7, lng: 181, res: 8, wantErr: ErrInvalid},
		{name: "res -1", lat: 35.7, lng: 139.7, res: -1, wantErr: ErrInvalid},
		{name: "res 16", lat: 35.7, lng: 139.7, res: 16, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Cell(tt.lat, tt.lng, tt.res)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Cell() error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && got.String() != tt.want {
				t.Errorf("Cell() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResolutions(t *testing.T) {
	// EventResolution is about neighbourhood size.
	area, err := h3.HexagonAreaAvgKm2(EventResolution)
	if err != nil {
		t.Fatal(err)
	}
	if area < 0.7 || area > 0.8 {
		t.Errorf("EventResolution %d averages %.3f km², want about 0.74", EventResolution, area)
	}
	// IndexResolution is finer than any resolution a cover is asked for
	// at, down to a 5 m radius.
	if got := CoverResolution(5); got > IndexResolution {
		t.Errorf("CoverResolution(5) = %d, finer than IndexResolution %d", got, IndexResolution)
	}
}

// randomCells returns n cells at random places, each at a random resolution
// in [minRes, maxRes], plus every pentagon at each of those resolutions.
func randomCells(t *testing.T, rng *rand.Rand, n, minRes, maxRes int) []h3.Cell {
	t.Helper()
	var cells []h3.Cell
	for res := minRes; res <= maxRes; res++ {
		ps, err := h3.Pentagons(res)
		if err != nil {
			t.Fatal(err)
		}
		cells = append(cells, ps...)
	}
	for range n {
		cells = append(cells, mustCell(t, randomGlobal(rng), minRes+rng.IntN(maxRes-minRes+1)))
	}
	return cells
}

func TestParent(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, c := range randomCells(t, rng, 5000, 0, maxRes) {
		for res := 0; res <= c.Resolution(); res++ {
			want, err := c.Parent(res)
			if err != nil {
				t.Fatal(err)
			}
			if got := Parent(uint64(c), res); got != uint64(want) {
				t.Fatalf("Parent(%v, %d) = %x, want %v", c, res, got, want)
			}
		}
	}

	c := uint64(mustCell(t, h3.LatLng{Lat: 35.69, Lng: 139.70}, 9))
	tests := []struct {
		name string
		give uint64
		res  int
	}{
		{name: "res finer than cell", give: c, res: 10},
		{name: "res negative", give: c, res: -1},
		{name: "res 16", give: c, res: 16},
		{name: "null index", give: 0, res: 0},
		{name: "directed edge", give: c&^modeMask | 2<<modeShift, res: 5},
		{name: "top bit set", give: c | highBit, res: 5},
		{name: "all ones", give: math.MaxUint64, res: 5},
	}
	for _, tt := range tests {
		if got := Parent(tt.give, tt.res); got != 0 {
			t.Errorf("%s: Parent(%#x, %d) = %#x, want 0", tt.name, tt.give, tt.res, got)
		}
	}
}

func TestDescendantRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	inRange := func(c h3.Cell, lo, hi uint64) bool { return lo <= uint64(c) && uint64(c) < hi }

	for _, c := range randomCells(t, rng, 1500, 0, maxRes) {
		for res := c.Resolution(); res <= maxRes; res++ {
			lo, hi := DescendantRange(uint64(c), res)
			if lo >= hi {
				t.Fatalf("DescendantRange(%v, %d) = [%#x, %#x) is empty", c, res, lo, hi)
			}
			if res-c.Resolution() <= 3 {
				// Every child lies in the range.
				children, err := c.Children(res)
				if err != nil {
					t.Fatal(err)
				}
				for _, ch := range children {
					if !inRange(ch, lo, hi) {
						t.Fatalf("DescendantRange(%v, %d) = [%#x, %#x) misses child %v", c, res, lo, hi, ch)
					}
				}
			}
			// Cells around a random descendant lie in the range exactly
			// when they descend from c.
			d := c
			for d.Resolution() < res {
				children, err := d.ImmediateChildren()
				if err != nil {
					t.Fatal(err)
				}
				d = children[rng.IntN(len(children))]
			}
			near, err := d.GridDisk(3)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range near {
				p, err := n.Parent(c.Resolution())
				if err != nil {
					t.Fatal(err)
				}
				if got, want := inRange(n, lo, hi), p == c; got != want {
					t.Fatalf("DescendantRange(%v, %d) = [%#x, %#x): holds %v = %t, but it descends from it = %t",
						c, res, lo, hi, n, got, want)
				}
			}
			// The values just outside are not descendants.
			for _, v := range []uint64{lo - 1, hi} {
				if h3.Cell(v).IsValid() {
					if p, _ := h3.Cell(v).Parent(c.Resolution()); p == c {
						t.Fatalf("DescendantRange(%v, %d) = [%#x, %#x) leaves out descendant %#x", c, res, lo, hi, v)
					}
				}
			}
		}
	}

	c := uint64(mustCell(t, h3.LatLng{Lat: 35.69, Lng: 139.70}, 9))
	tests := []struct {
		name string
		give uint64
		res  int
	}{
		{name: "res coarser than cell", give: c, res: 8},
		{name: "res 16", give: c, res: 16},
		{name: "res negative", give: c, res: -1},
		{name: "null index", give: 0, res: 15},
		{name: "directed edge", give: c&^modeMask | 2<<modeShift, res: 12},
		{name: "top bit set", give: c | highBit, res: 12},
		{name: "all ones", give: math.MaxUint64, res: 15},
	}
	for _, tt := range tests {
		if lo, hi := DescendantRange(tt.give, tt.res); lo != 0 || hi != 0 {
			t.Errorf("%s: DescendantRange(%#x, %d) = [%#x, %#x), want [0, 0)", tt.name, tt.give, tt.res, lo, hi)
		}
	}
}

// TestDescendantRangeIndex uses DescendantRange as the store index will: a
// sorted slice of store cells at IndexResolution, searched for the stores
// inside coarser cells, checked against h3's parents.
func TestDescendantRangeIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	// Stores clustered around Shinjuku and spread over Japan.
	var stores []uint64
	for range 20_000 {
		p := destination(h3.LatLng{Lat: 35.690921, Lng: 139.700258}, 2*math.Pi*rng.Float64(), 3000*rng.Float64())
		if rng.IntN(4) == 0 {
			p = h3.LatLng{
				Lat: japanMinLat + rng.Float64()*(japanMaxLat-japanMinLat),
				Lng: japanMinLng + rng.Float64()*(japanMaxLng-japanMinLng),
			}
		}
		stores = append(stores, uint64(mustCell(t, p, IndexResolution)))
	}
	slices.Sort(stores)

	found := 0
	for res := 5; res <= 11; res++ {
		// The brute-force answer: stores grouped by their parent at res.
		byParent := make(map[h3.Cell][]uint64)
		for _, s := range stores {
			p, err := h3.Cell(s).Parent(res)
			if err != nil {
				t.Fatal(err)
			}
			byParent[p] = append(byParent[p], s) // stays sorted
		}
		for range 20 {
			fix := destination(h3.LatLng{Lat: 35.690921, Lng: 139.700258}, 2*math.Pi*rng.Float64(), 4000*rng.Float64())
			cover, err := Cover(fix.Lat, fix.Lng, 500, res)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cover {
				found += len(byParent[c])
				lo, hi := DescendantRange(uint64(c), IndexResolution)
				i, _ := slices.BinarySearch(stores, lo)
				j, _ := slices.BinarySearch(stores, hi)
				if got, want := stores[i:j], byParent[c]; !slices.Equal(got, want) {
					t.Fatalf("stores in %v: binary search found %d, h3 parents %d", c, len(got), len(want))
				}
			}
		}
	}
	if found < 10_000 {
		t.Errorf("covers held only %d stores; the test is not exercising the index", found)
	}
}

func mustPentagon(t *testing.T, res int) h3.Cell {
	t.Helper()
	ps, err := h3.Pentagons(res)
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}

func TestCellPolygon(t *testing.T) {
	shinjuku := mustCell(t, h3.LatLng{Lat: 35.690921, Lng: 139.700258}, EventResolution)
	pentagon, err := h3.Pentagons(4)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		give      h3.Cell
		wantVerts int // distinct vertices
	}{
		{name: "hexagon", give: shinjuku, wantVerts: 6},
		{name: "pentagon", give: pentagon[0], wantVerts: 5},
		{name: "antimeridian", give: mustCell(t, h3.LatLng{Lat: 0, Lng: 180}, 3), wantVerts: 6},
		{name: "res 0", give: mustCell(t, h3.LatLng{Lat: 35.69, Lng: 139.7}, 0), wantVerts: 6},
		// Class III pentagons get extra vertices where they cross face edges.
		{name: "pentagon res 5", give: mustPentagon(t, 5), wantVerts: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CellPolygon(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("CellPolygon() has %d rings, want 1", len(got))
			}
			ring := got[0]
			if !ring.Closed() || len(ring) != tt.wantVerts+1 {
				t.Errorf("CellPolygon() ring has %d points, closed %t; want %d, closed", len(ring), ring.Closed(), tt.wantVerts+1)
			}
			if o := ring.Orientation(); o != orb.CCW {
				t.Errorf("CellPolygon() ring orientation = %v, want counter-clockwise", o)
			}
			b, err := tt.give.Boundary()
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range b {
				p := ring[i]
				if p.Lat() != v.Lat || math.Abs(math.Remainder(p.Lon()-v.Lng, 360)) > 1e-9 {
					t.Errorf("point %d = %v, want [%v, %v]", i, p, v.Lng, v.Lat)
				}
			}
			// No jump across the map: consecutive longitudes stay close.
			for i := 1; i < len(ring); i++ {
				if d := math.Abs(ring[i].Lon() - ring[i-1].Lon()); d > 90 {
					t.Errorf("ring jumps %v° in longitude between points %d and %d", d, i-1, i)
				}
			}
		})
	}

	for _, bad := range []h3.Cell{0, -1, h3.Cell(uint64(shinjuku) | highBit)} {
		if _, err := CellPolygon(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("CellPolygon(%#x) error = %v, want ErrInvalid", uint64(bad), err)
		}
	}
}

// TestCellPolygonAtThePoles: the cells that contain a pole, at every
// resolution, are drawn as a cap that reaches the pole, so that GeoJSON
// shows them where they are: counter-clockwise, every H3 vertex in order,
// holding the cell's centre and the pole itself, and no other cell is
// drawn that way.
func TestCellPolygonAtThePoles(t *testing.T) {
	for res := 0; res <= maxRes; res++ {
		for _, pole := range []float64{90, -90} {
			c := mustCell(t, h3.LatLng{Lat: pole, Lng: 0}, res)
			got, err := CellPolygon(c)
			if err != nil {
				t.Fatal(err)
			}
			ring := got[0]
			b, err := c.Boundary()
			if err != nil {
				t.Fatal(err)
			}
			if !ring.Closed() || len(ring) != len(b)+4 {
				t.Fatalf("res %d pole %v: ring has %d points, closed %t; want %d, closed", res, pole, len(ring), ring.Closed(), len(b)+4)
			}
			if o := ring.Orientation(); o != orb.CCW {
				t.Errorf("res %d pole %v: ring orientation = %v, want counter-clockwise", res, pole, o)
			}
			for i, v := range b {
				if p := ring[i]; p.Lat() != v.Lat || math.Abs(math.Remainder(p.Lon()-v.Lng, 360)) > 1e-9 {
					t.Errorf("res %d pole %v: point %d = %v, want [%v, %v]", res, pole, i, p, v.Lng, v.Lat)
				}
			}
			// The centre, and points a hair from the pole, all the way
			// around: at a longitude within the ring's 360°.
			centre, err := c.LatLng()
			if err != nil {
				t.Fatal(err)
			}
			west := ring.Bound().Min.Lon()
			in := func(lng, lat float64) bool {
				lng = west + math.Mod(math.Mod(lng-west, 360)+360, 360)
				return planar.RingContains(ring, orb.Point{lng, lat})
			}
			if !in(centre.Lng, centre.Lat) {
				t.Errorf("res %d pole %v: ring %v does not hold the centre %v", res, pole, ring, centre)
			}
			for lng := -179.5; lng < 180; lng += 7 {
				if !in(lng, pole*(1-1e-12)) {
					t.Fatalf("res %d pole %v: ring %v does not hold the pole at lng %v", res, pole, ring, lng)
				}
			}
		}
	}
	// The cells around the polar ones are drawn as any other.
	for _, res := range []int{0, 1, 2, 5, 9, 15} {
		for _, pole := range []float64{90, -90} {
			c := mustCell(t, h3.LatLng{Lat: pole, Lng: 0}, res)
			ring, err := c.GridRing(1)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range ring {
				got, err := CellPolygon(x)
				if err != nil {
					t.Fatal(err)
				}
				b, err := x.Boundary()
				if err != nil {
					t.Fatal(err)
				}
				if n := len(got[0]); n != len(b)+1 {
					t.Errorf("CellPolygon(%v) beside the pole at resolution %d has %d points, want %d", x, res, n, len(b)+1)
				}
			}
		}
	}
}
