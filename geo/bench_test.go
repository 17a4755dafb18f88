package geo

import (
	"testing"
)

// Benchmark inputs around Shinjuku station.
const benchLat, benchLng = 35.690921, 139.700258

// sink keeps results alive so the compiler cannot drop the calls.
var sink uint64

func BenchmarkCell(b *testing.B) {
	for b.Loop() {
		c, err := Cell(benchLat, benchLng, IndexResolution)
		if err != nil {
			b.Fatal(err)
		}
		sink += uint64(c)
	}
}

func BenchmarkCover(b *testing.B) {
	for _, bb := range []struct {
		name    string
		radiusM float64
		res     int
	}{
		{name: "50m", radiusM: 50, res: CoverResolution(50)},
		{name: "800m", radiusM: 800, res: CoverResolution(800)},
		{name: "5km", radiusM: 5000, res: CoverResolution(5000)},
		{name: "800m_res9", radiusM: 800, res: 9},
	} {
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				cells, err := Cover(benchLat, benchLng, bb.radiusM, bb.res)
				if err != nil {
					b.Fatal(err)
				}
				sink += uint64(len(cells))
			}
		})
	}
}

func BenchmarkCoverResolution(b *testing.B) {
	for b.Loop() {
		sink += uint64(CoverResolution(800))
	}
}

func BenchmarkDistanceM(b *testing.B) {
	lat := benchLat
	for b.Loop() {
		sink += uint64(DistanceM(lat, benchLng, 35.681236, 139.767125))
		lat += 1e-9 // defeat constant folding
	}
}

func BenchmarkParent(b *testing.B) {
	c, err := Cell(benchLat, benchLng, IndexResolution)
	if err != nil {
		b.Fatal(err)
	}
	cell := uint64(c)
	for b.Loop() {
		sink += Parent(cell, EventResolution)
	}
}

func BenchmarkDescendantRange(b *testing.B) {
	c, err := Cell(benchLat, benchLng, EventResolution)
	if err != nil {
		b.Fatal(err)
	}
	cell := uint64(c)
	for b.Loop() {
		lo, hi := DescendantRange(cell, IndexResolution)
		sink += lo ^ hi
	}
}

func BenchmarkWalk(b *testing.B) {
	d := 500.0
	for b.Loop() {
		sink += uint64(Walk(d).ETASeconds)
		d += 0.001
	}
}

func BenchmarkGeoURI(b *testing.B) {
	for b.Loop() {
		s, err := GeoURI(benchLat, benchLng)
		if err != nil {
			b.Fatal(err)
		}
		sink += uint64(len(s))
	}
}

func BenchmarkGoogleMapsWalkURL(b *testing.B) {
	for b.Loop() {
		s, err := GoogleMapsWalkURL(benchLat, benchLng)
		if err != nil {
			b.Fatal(err)
		}
		sink += uint64(len(s))
	}
}

// BenchmarkNewPointCovers is the covers of a cell by Shinjuku at each of
// the presence tiers NewPointCovers makes (the 500 m tier's are the 1000 m
// tier's, taken Within): an index build makes them once for each cell
// holding stores, at each of these tiers.
func BenchmarkNewPointCovers(b *testing.B) {
	for _, bb := range []struct {
		name    string
		radiusM float64
		res     int
	}{
		{name: "1km_res8", radiusM: 1000, res: 8},
		{name: "2km_res7", radiusM: 2000, res: 7},
		{name: "5km_res6", radiusM: 5000, res: 6},
	} {
		c, err := Cell(benchLat, benchLng, bb.res)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				pc, err := NewPointCovers(c, bb.radiusM)
				if err != nil {
					b.Fatal(err)
				}
				sink += uint64(len(pc.Cells()))
			}
		})
	}
}

// BenchmarkPointCoversMark is a store's own cover at the 800 m tier, once
// the cover of its cell is known: an index build computes one for each
// store of each offer, at each tier.
func BenchmarkPointCoversMark(b *testing.B) {
	c, err := Cell(benchLat, benchLng, 8)
	if err != nil {
		b.Fatal(err)
	}
	pc, err := NewPointCovers(c, 800)
	if err != nil {
		b.Fatal(err)
	}
	near := make([]uint64, pc.Words())
	for b.Loop() {
		pc.Mark(near, benchLat, benchLng)
	}
	sink += near[0]
}
