package geo

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/uber/h3-go/v4"
)

// Japan from Okinawa to Hokkaido, as a box.
const (
	japanMinLat, japanMaxLat = 24.0, 45.5
	japanMinLng, japanMaxLng = 123.0, 146.0
)

func TestCoverJapan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fixes := 1500
	if testing.Short() {
		fixes = 150
	}
	var s coverStats
	for range fixes {
		fix := h3.LatLng{
			Lat: japanMinLat + rng.Float64()*(japanMaxLat-japanMinLat),
			Lng: japanMinLng + rng.Float64()*(japanMaxLng-japanMinLng),
		}
		r := logUniform(rng, 50, 5000)
		for _, res := range coverTestResolutions(r) {
			checkCover(t, rng, nearVertex(t, rng, fix, res), r, res, &s)
		}
	}
	s.log(t)
}

func TestCoverGlobal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fixes := 800
	if testing.Short() {
		fixes = 80
	}
	var s coverStats
	for range fixes {
		r := logUniform(rng, 50, 10_000)
		for _, res := range coverTestResolutions(r) {
			checkCover(t, rng, nearVertex(t, rng, randomGlobal(rng), res), r, res, &s)
		}
	}
	s.log(t)
}

// TestCoverPentagons puts fixes where H3 is most distorted: on and around
// the twelve pentagons, and near the antimeridian and the poles.
func TestCoverPentagons(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var s coverStats
	for _, r := range []float64{50, 120, 300, 800, 2000, 5000, 10_000} {
		res := CoverResolution(r)
		for _, p := range pentagonNeighbourhoods(t, res, 2) {
			ll, err := p.LatLng()
			if err != nil {
				t.Fatal(err)
			}
			checkCover(t, rng, nearVertex(t, rng, ll, res), r, res, &s)
			checkCover(t, rng, ll, r, res, &s)
		}
		for _, fix := range []h3.LatLng{
			{Lat: 0, Lng: 180}, {Lat: 0, Lng: -180}, {Lat: 65.9, Lng: -179.9999},
			{Lat: -16.5, Lng: 179.9999}, {Lat: 90, Lng: 0}, {Lat: -90, Lng: 0},
			{Lat: 89.99, Lng: 45}, {Lat: -89.99, Lng: -135},
		} {
			checkCover(t, rng, fix, r, res, &s)
		}
	}
	s.log(t)
}

// TestCoverWide checks the largest radii at coarse resolutions, where the
// sphere's curvature shows.
func TestCoverWide(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var s coverStats
	for range 200 {
		r := logUniform(rng, 10_000, MaxCoverRadiusM)
		for _, res := range coverTestResolutions(r) {
			checkCover(t, rng, nearVertex(t, rng, randomGlobal(rng), res), r, res, &s)
		}
	}
	s.log(t)
}

// coverTestResolutions returns the resolutions to check a radius at: the one
// CoverResolution picks (where the cover must also be small), one either
// side, and the event resolution and the one finer, where disks are large.
func coverTestResolutions(r float64) []int {
	res := CoverResolution(r)
	out := []int{res}
	if res > 0 {
		out = append(out, res-1)
	}
	if res < maxRes {
		out = append(out, res+1)
	}
	for _, fixed := range []int{EventResolution, EventResolution + 1} {
		if fixed > res+1 || fixed < res-1 {
			out = append(out, fixed)
		}
	}
	return out
}

type coverStats struct {
	covers, points, atPicked, cellsAtPicked int
}

func (s *coverStats) log(t *testing.T) {
	t.Logf("%d covers, %d points checked; at CoverResolution %.1f cells on average",
		s.covers, s.points, float64(s.cellsAtPicked)/float64(max(s.atPicked, 1)))
}

// checkCover asserts that the cover of the circle of radius r around fix at
// res holds the cell of every sampled point inside the circle, on it, and a
// hair inside it, and the ancestors of its finer cells, and that at CoverResolution(r) it has at most 19 cells.
func checkCover(t *testing.T, rng *rand.Rand, fix h3.LatLng, r float64, res int, s *coverStats) {
	t.Helper()
	cells, err := Cover(fix.Lat, fix.Lng, r, res)
	if errors.Is(err, ErrCoverTooLarge) {
		return // a finer resolution than anyone should use for r
	}
	if err != nil {
		t.Fatalf("Cover(%v, %v, %v, %d): %v", fix.Lat, fix.Lng, r, res, err)
	}
	s.covers++
	if res == CoverResolution(r) {
		s.atPicked++
		s.cellsAtPicked += len(cells)
		if len(cells) > 19 {
			t.Errorf("Cover(%v, %v, %v, %d) at CoverResolution has %d cells, want at most 19",
				fix.Lat, fix.Lng, r, res, len(cells))
		}
	}
	in := make(map[h3.Cell]bool, len(cells))
	for _, c := range cells {
		if in[c] {
			t.Errorf("Cover(%v, %v, %v, %d) repeats %v", fix.Lat, fix.Lng, r, res, c)
		}
		in[c] = true
	}
	// The circle reaches farthest from the centre of the fix's cell straight
	// away from it, so a third of the boundary points lie within 30° of
	// that bearing.
	centre, err := mustCell(t, fix, res).LatLng()
	if err != nil {
		t.Fatal(err)
	}
	away := initialBearing(centre, fix)
	const boundary, interior = 72, 36
	for i := range boundary + interior {
		bearing := 2 * math.Pi * rng.Float64()
		if i%3 == 0 {
			bearing = away + (rng.Float64()-0.5)*math.Pi/3
		}
		d := r
		switch {
		case i%3 == 1:
			d = r * (1 - 1e-9)
		case i >= boundary:
			d = r * math.Sqrt(rng.Float64()) // uniform over the disc
		}
		p := destination(fix, bearing, d)
		s.points++
		if c := mustCell(t, p, res); !in[c] {
			t.Fatalf("Cover(%v, %v, %v, %d) (%d cells) misses %v at %.3f m, in cell %v",
				fix.Lat, fix.Lng, r, res, len(cells), p, DistanceM(fix.Lat, fix.Lng, p.Lat, p.Lng), c)
		}
		// The ancestors of its cells at the index resolution and the
		// finest, by which a store index would find p.
		for _, fine := range []int{IndexResolution, maxRes} {
			if fine < res {
				continue
			}
			c := mustCell(t, p, fine)
			if a := h3.Cell(Parent(uint64(c), res)); !in[a] {
				t.Fatalf("Cover(%v, %v, %v, %d) (%d cells) misses %v at %.3f m: its cell %v at resolution %d has ancestor %v",
					fix.Lat, fix.Lng, r, res, len(cells), p, DistanceM(fix.Lat, fix.Lng, p.Lat, p.Lng), c, fine, a)
			}
		}
	}
}

// nearVertex returns, half the time, a point within a few centimetres of a
// vertex of fix's cell at res, where a fix is farthest from its cell's
// centre and the cover needs its widest margin; otherwise fix itself.
func nearVertex(t *testing.T, rng *rand.Rand, fix h3.LatLng, res int) h3.LatLng {
	t.Helper()
	if rng.IntN(2) == 0 {
		return fix
	}
	b, err := mustCell(t, fix, res).Boundary()
	if err != nil {
		t.Fatal(err)
	}
	return destination(b[rng.IntN(len(b))], 2*math.Pi*rng.Float64(), 0.05*rng.Float64())
}

// destination returns the point d metres from p along the initial bearing
// (radians from north), on the sphere of DistanceM.
func destination(p h3.LatLng, bearing, d float64) h3.LatLng {
	delta := d / EarthRadiusM
	phi1, lambda1 := p.Lat*degToRad, p.Lng*degToRad
	sinPhi2 := math.Sin(phi1)*math.Cos(delta) + math.Cos(phi1)*math.Sin(delta)*math.Cos(bearing)
	phi2 := math.Asin(max(-1, min(1, sinPhi2)))
	lambda2 := lambda1 + math.Atan2(math.Sin(bearing)*math.Sin(delta)*math.Cos(phi1),
		math.Cos(delta)-math.Sin(phi1)*sinPhi2)
	lng := math.Remainder(lambda2/degToRad, 360) // into [-180, 180]
	return h3.LatLng{Lat: phi2 / degToRad, Lng: lng}
}

// initialBearing returns the bearing (radians from north) from p to q; NaN
// bearings (p == q) do no harm to the caller.
func initialBearing(p, q h3.LatLng) float64 {
	phi1, phi2 := p.Lat*degToRad, q.Lat*degToRad
	dLambda := (q.Lng - p.Lng) * degToRad
	return math.Atan2(math.Sin(dLambda)*math.Cos(phi2),
		math.Cos(phi1)*math.Sin(phi2)-math.Sin(phi1)*math.Cos(phi2)*math.Cos(dLambda))
}

func logUniform(rng *rand.Rand, lo, hi float64) float64 {
	return lo * math.Exp(rng.Float64()*math.Log(hi/lo))
}

func TestCoverResolution(t *testing.T) {
	tests := []struct {
		give float64
		want int
	}{
		{give: math.Inf(-1), want: IndexResolution},
		{give: -1, want: IndexResolution},
		{give: 0, want: IndexResolution},
		{give: 1, want: IndexResolution},
		{give: 50, want: 10},
		{give: 80, want: 10},
		{give: 100, want: 9},
		{give: 200, want: 9},
		{give: 500, want: 8},
		{give: 800, want: 7},
		{give: 2000, want: 6},
		{give: 5000, want: 5},
		{give: 10_000, want: 5},
		{give: MaxCoverRadiusM, want: 2},
		{give: 1e9, want: 0},
		{give: math.Inf(1), want: 0},
		{give: math.NaN(), want: 0},
	}
	for _, tt := range tests {
		if got := CoverResolution(tt.give); got != tt.want {
			t.Errorf("CoverResolution(%v) = %d, want %d", tt.give, got, tt.want)
		}
	}
	// Coarser as the radius grows.
	prev := IndexResolution
	for r := 1.0; r < 1e7; r *= 1.1 {
		got := CoverResolution(r)
		if got > prev {
			t.Fatalf("CoverResolution(%v) = %d, finer than %d for a smaller radius", r, got, prev)
		}
		prev = got
	}
}

func TestCoverErrors(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name              string
		lat, lng, radiusM float64
		res               int
		want              error
	}{
		{name: "lat NaN", lat: nan, lng: 139.7, radiusM: 100, res: 9, want: ErrInvalid},
		{name: "lng NaN", lat: 35.7, lng: nan, radiusM: 100, res: 9, want: ErrInvalid},
		{name: "lat +Inf", lat: inf, lng: 139.7, radiusM: 100, res: 9, want: ErrInvalid},
		{name: "lng -Inf", lat: 35.7, lng: -inf, radiusM: 100, res: 9, want: ErrInvalid},
		{name: "lat 90.1", lat: 90.1, lng: 139.7, radiusM: 100, res: 9, want: ErrInvalid},
		{name: "lng 180.1", lat: 35.7, lng: 180.1, radiusM: 100, res: 9, want: ErrInvalid},
		{name: "res -1", lat: 35.7, lng: 139.7, radiusM: 100, res: -1, want: ErrInvalid},
		{name: "res 16", lat: 35.7, lng: 139.7, radiusM: 100, res: 16, want: ErrInvalid},
		{name: "radius NaN", lat: 35.7, lng: 139.7, radiusM: nan, res: 9, want: ErrInvalid},
		{name: "radius negative", lat: 35.7, lng: 139.7, radiusM: -1, res: 9, want: ErrInvalid},
		{name: "radius Inf", lat: 35.7, lng: 139.7, radiusM: inf, res: 9, want: ErrInvalid},
		{name: "radius too wide", lat: 35.7, lng: 139.7, radiusM: MaxCoverRadiusM + 1, res: 3, want: ErrInvalid},
		{name: "too many cells", lat: 35.7, lng: 139.7, radiusM: 5000, res: 12, want: ErrCoverTooLarge},
		{name: "widest radius at res 0", lat: 35.7, lng: 139.7, radiusM: MaxCoverRadiusM, res: 0},
		{name: "many cells", lat: 35.7, lng: 139.7, radiusM: 5000, res: 9},
		{name: "zero radius", lat: 35.7, lng: 139.7, radiusM: 0, res: 15},
		{name: "pole", lat: 90, lng: 0, radiusM: 100, res: 9},
		{name: "antimeridian", lat: 0, lng: -180, radiusM: 100, res: 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cells, err := Cover(tt.lat, tt.lng, tt.radiusM, tt.res)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Cover() error = %v, want %v", err, tt.want)
			}
			if err == nil && (len(cells) == 0 || len(cells) > MaxCoverCells) {
				t.Errorf("Cover() returned %d cells", len(cells))
			}
			if err != nil && cells != nil {
				t.Errorf("Cover() returned cells with an error")
			}
		})
	}
}

func TestAvgEdgeM(t *testing.T) {
	for res, want := range avgEdgeM {
		got, err := h3.HexagonEdgeLengthAvgM(res)
		if err != nil || got != want {
			t.Errorf("h3.HexagonEdgeLengthAvgM(%d) = %v, %v; table has %v", res, got, err, want)
		}
	}
}

func TestDiskK(t *testing.T) {
	// diskK is the smallest k whose bound exceeds u.
	for u := 0.0; u < 200; u += 0.01 {
		k := diskK(u)
		if k > maxCoverK {
			break
		}
		if reach := reachBound(k); !(reach > u) {
			t.Fatalf("diskK(%v) = %d, but its reach %v does not exceed it", u, k, reach)
		}
		if k > 0 && reachBound(k-1) > u {
			t.Fatalf("diskK(%v) = %d, but k-1 already reaches %v", u, k, reachBound(k-1))
		}
	}
	if k := diskK(1e300); k != maxCoverK+1 {
		t.Errorf("diskK(1e300) = %d, want %d", k, maxCoverK+1)
	}
	if diskSize(maxCoverK) > MaxCoverCells || diskSize(maxCoverK+1) <= MaxCoverCells {
		t.Errorf("maxCoverK = %d does not match MaxCoverCells = %d", maxCoverK, MaxCoverCells)
	}
}

// reachBound is the lower bound on ρ_k that diskK uses.
func reachBound(k int) float64 {
	last := len(diskReach) - 1
	if k <= last {
		return diskReach[k]
	}
	return diskReach[last] + float64(k-last)*reachSlope
}
