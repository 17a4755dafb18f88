package dataset

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/navad/navad/internal/osm"
)

// Placement. Every generated store stands near a real OpenStreetMap point
// (its anchor) of a category its industry sells through. Anchors in a metro
// core are drawn more often and scatter their stores tightly; anchors
// elsewhere are drawn less often and scatter them widely. So the million
// stores are dense where the real points are dense, denser still in central
// Tokyo, Osaka and Nagoya, and thin in the country.
const (
	coreWeight, ringWeight, countryWeight = 4.0, 1.5, 1.0
	// Standard deviation of a store's offset from its anchor, in metres.
	coreSigmaM, ringSigmaM, countrySigmaM = 120.0, 300.0, 1200.0
)

type anchor struct {
	poi   *osm.POI
	sigma float64 // metres
}

// anchors are the real points with their draw weights, by category.
type anchors struct {
	byCat    map[string][]anchor
	cum      map[string][]float64 // cumulative weights, parallel to byCat
	samplers map[string]func(r *rand.Rand) (*osm.POI, float64, float64)
}

func newAnchors(pois []osm.POI) *anchors {
	a := &anchors{byCat: map[string][]anchor{}, cum: map[string][]float64{}, samplers: map[string]func(*rand.Rand) (*osm.POI, float64, float64){}}
	for i := range pois {
		p := &pois[i]
		w, sigma := countryWeight, countrySigmaM
		for _, m := range metros {
			d := haversineM(p.Lat, p.Lng, m.lat, m.lng) / 1000
			switch {
			case d <= m.coreKm:
				w, sigma = coreWeight, coreSigmaM
			case d <= m.ringK && w < ringWeight:
				w, sigma = ringWeight, ringSigmaM
			}
		}
		cum := a.cum[p.Category]
		total := 0.0
		if len(cum) > 0 {
			total = cum[len(cum)-1]
		}
		a.byCat[p.Category] = append(a.byCat[p.Category], anchor{poi: p, sigma: sigma})
		a.cum[p.Category] = append(cum, total+w)
	}
	return a
}

// sampler returns a function that draws an anchor of the given categories by
// weight and a store position scattered around it.
func (a *anchors) sampler(cats []string) func(r *rand.Rand) (*osm.POI, float64, float64) {
	key := strings.Join(cats, ",")
	if f, ok := a.samplers[key]; ok {
		return f
	}
	var pool []anchor
	var cum []float64
	total := 0.0
	for _, c := range cats {
		prev := 0.0
		for i, an := range a.byCat[c] {
			pool = append(pool, an)
			total += a.cum[c][i] - prev
			prev = a.cum[c][i]
			cum = append(cum, total)
		}
	}
	f := func(r *rand.Rand) (*osm.POI, float64, float64) {
		i, _ := slices.BinarySearch(cum, r.Float64()*total)
		i = min(i, len(pool)-1)
		an := pool[i]
		lat, lng := scatter(r, an.poi.Lat, an.poi.Lng, an.sigma)
		return an.poi, lat, lng
	}
	a.samplers[key] = f
	return f
}

// scatter returns a point offset from (lat, lng) by a normal deviate of
// sigma metres in each direction, rounded to 7 decimals (about 1 cm) as a
// store list would give it.
func scatter(r *rand.Rand, lat, lng, sigma float64) (float64, float64) {
	dn, de := r.NormFloat64()*sigma, r.NormFloat64()*sigma
	lat += dn / 111_320
	lng += de / (111_320 * math.Cos(lat*math.Pi/180))
	return round7(max(-89.9, min(89.9, lat))), round7(lng)
}

func round7(x float64) float64 { return math.Round(x*1e7) / 1e7 }
