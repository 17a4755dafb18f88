package geo

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/uber/h3-go/v4"
)

// Stations used in tests and examples.
var (
	tokyoStation    = h3.LatLng{Lat: 35.681236, Lng: 139.767125}
	shinjukuStation = h3.LatLng{Lat: 35.690921, Lng: 139.700258}
)

func TestDistanceM(t *testing.T) {
	quarter := math.Pi / 2 * EarthRadiusM
	tests := []struct {
		name     string
		give     [4]float64 // lat1, lng1, lat2, lng2
		want     float64
		tolerant float64
	}{
		{name: "same point", give: [4]float64{35.69, 139.70, 35.69, 139.70}, want: 0},
		{name: "Tokyo to Shinjuku station", give: [4]float64{tokyoStation.Lat, tokyoStation.Lng, shinjukuStation.Lat, shinjukuStation.Lng}, want: 6134.4, tolerant: 0.5}, // about 6.1 km as the crow flies
		{name: "one degree of latitude", give: [4]float64{35, 139, 36, 139}, want: quarter / 90, tolerant: 1e-6},
		{name: "equator quarter", give: [4]float64{0, 0, 0, 90}, want: quarter, tolerant: 1e-6},
		{name: "pole to equator", give: [4]float64{90, 0, 0, 123}, want: quarter, tolerant: 1e-6},
		{name: "antipodes", give: [4]float64{35.69, 139.70, -35.69, -40.30}, want: 2 * quarter, tolerant: 1e-3},
		{name: "across the antimeridian", give: [4]float64{0, 179.999, 0, -179.999}, want: quarter / 90 * 0.002, tolerant: 1e-6},
		{name: "one metre", give: [4]float64{35.69, 139.70, 35.69 + 1/(quarter/90), 139.70}, want: 1, tolerant: 1e-9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.give
			got := DistanceM(g[0], g[1], g[2], g[3])
			if math.Abs(got-tt.want) > tt.tolerant {
				t.Errorf("DistanceM() = %.9f, want %.9f ± %v", got, tt.want, tt.tolerant)
			}
			if back := DistanceM(g[2], g[3], g[0], g[1]); back != got {
				t.Errorf("DistanceM() is not symmetric: %v and %v", got, back)
			}
		})
	}
	if got := DistanceM(math.NaN(), 0, 0, 0); !math.IsNaN(got) {
		t.Errorf("DistanceM(NaN, ...) = %v, want NaN", got)
	}
}

func TestDistanceMAgreesWithH3(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for range 100_000 {
		a := randomGlobal(rng)
		b := randomGlobal(rng)
		if rng.IntN(2) == 0 {
			// Store-finding distances.
			b = destination(a, 2*math.Pi*rng.Float64(), logUniform(rng, 1, 20_000))
		}
		got := DistanceM(a.Lat, a.Lng, b.Lat, b.Lng)
		want := h3.GreatCircleDistanceM(a, b)
		if math.Abs(got-want) > 1e-6+1e-9*want {
			t.Fatalf("DistanceM(%v, %v) = %.9f, h3 says %.9f", a, b, got, want)
		}
	}
}
