package geo_test

import (
	"fmt"
	"slices"

	"github.com/uber/h3-go/v4"

	"github.com/navad/navad/geo"
)

// The handset's fix in the examples: Shinjuku station.
const fixLat, fixLng = 35.690921, 139.700258

func ExampleCell() {
	// The neighbourhood cell kept with a tracking event instead of the fix.
	c, err := geo.Cell(fixLat, fixLng, geo.EventResolution)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c)

	_, err = geo.Cell(95, fixLng, geo.EventResolution)
	fmt.Println(err)
	// Output:
	// 882f5a3751fffff
	// cell: invalid argument: lat 95 not in [-90, 90]
}

func ExampleCover() {
	// The cells to look up for stores within a campaign radius of 800 m.
	radius := 800.0
	res := geo.CoverResolution(radius)
	cells, err := geo.Cover(fixLat, fixLng, radius, res)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("resolution %d, %d cells\n", res, len(cells))
	// Output:
	// resolution 7, 7 cells
}

func ExampleDescendantRange() {
	// Stores indexed as a sorted slice of cells at IndexResolution.
	var stores []uint64
	for _, p := range [][2]float64{
		{35.690921, 139.700258}, // Shinjuku station
		{35.693840, 139.703549}, // Kabukicho
		{35.681236, 139.767125}, // Tokyo station
		{35.658034, 139.701636}, // Shibuya station
	} {
		c, err := geo.Cell(p[0], p[1], geo.IndexResolution)
		if err != nil {
			fmt.Println(err)
			return
		}
		stores = append(stores, uint64(c))
	}
	slices.Sort(stores)

	// The stores within 1 km of the fix: two binary searches per cover cell.
	cells, err := geo.Cover(fixLat, fixLng, 1000, geo.CoverResolution(1000))
	if err != nil {
		fmt.Println(err)
		return
	}
	candidates := 0
	for _, c := range cells {
		lo, hi := geo.DescendantRange(uint64(c), geo.IndexResolution)
		i, _ := slices.BinarySearch(stores, lo)
		j, _ := slices.BinarySearch(stores, hi)
		candidates += j - i // stores[i:j]: check each one's exact distance
	}
	fmt.Println(candidates, "candidate stores")
	// Output:
	// 2 candidate stores
}

func ExampleDistanceM() {
	// Tokyo station to Shinjuku station.
	d := geo.DistanceM(35.681236, 139.767125, fixLat, fixLng)
	fmt.Printf("%.1f km\n", d/1000)
	// Output:
	// 6.1 km
}

func ExampleWalk() {
	// A store 500 m away as the crow flies.
	e := geo.Walk(500)
	fmt.Printf("%d m, %d min\n", e.DistanceM, e.ETASeconds/60)
	// Output:
	// 650 m, 9 min
}

func ExampleDrive() {
	e := geo.Drive(3000)
	fmt.Printf("%d m, %d min\n", e.DistanceM, e.ETASeconds/60)
	// Output:
	// 4200 m, 13 min
}

func ExampleGeoURI() {
	uri, err := geo.GeoURI(35.6909, 139.7003)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(uri)
	// Output:
	// geo:35.6909,139.7003
}

func ExampleGoogleMapsWalkURL() {
	// Only the store goes into the link; Google Maps starts from the
	// device's own location.
	link, err := geo.GoogleMapsWalkURL(35.6909, 139.7003)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(link)
	// Output:
	// https://www.google.com/maps/dir/?api=1&destination=35.6909%2C139.7003&travelmode=walking
}

func ExampleGoogleMapsDriveURL() {
	link, err := geo.GoogleMapsDriveURL(35.6909, 139.7003)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(link)
	// Output:
	// https://www.google.com/maps/dir/?api=1&destination=35.6909%2C139.7003&travelmode=driving
}

func ExampleCellPolygon() {
	c, err := geo.Cell(fixLat, fixLng, geo.EventResolution)
	if err != nil {
		fmt.Println(err)
		return
	}
	poly, err := geo.CellPolygon(c)
	if err != nil {
		fmt.Println(err)
		return
	}
	ring := poly[0]
	fmt.Println(poly.GeoJSONType(), len(ring), "points, closed:", ring.Closed())
	fmt.Printf("first point [lng, lat]: [%.4f, %.4f]\n", ring[0].Lon(), ring[0].Lat())
	// Output:
	// Polygon 7 points, closed: true
	// first point [lng, lat]: [139.7036, 35.6920]
}

func ExampleParent() {
	fine, err := geo.Cell(fixLat, fixLng, geo.IndexResolution)
	if err != nil {
		fmt.Println(err)
		return
	}
	coarse, err := geo.Cell(fixLat, fixLng, geo.EventResolution)
	if err != nil {
		fmt.Println(err)
		return
	}
	// H3 cells do not nest exactly: this fix lies near an edge of its
	// resolution 8 cell, and its resolution 13 cell belongs to the
	// neighbour. Cover includes such ancestors, so store lookups by
	// DescendantRange still find every store in the circle.
	fmt.Printf("ancestor of the fine cell: %x\n", geo.Parent(uint64(fine), geo.EventResolution))
	fmt.Printf("cell of the fix:           %v\n", coarse)
	// Output:
	// ancestor of the fine cell: 882f5a3759fffff
	// cell of the fix:           882f5a3751fffff
}

func ExamplePointCovers() {
	// A store's presence marks for an 800 m radius at resolution 8: the
	// cover of the cell it is filed under holds for any store in the cell,
	// the store's own only for the store.
	store, err := geo.Cell(fixLat, fixLng, geo.IndexResolution)
	if err != nil {
		fmt.Println(err)
		return
	}
	pc, err := geo.NewPointCovers(h3.Cell(geo.Parent(uint64(store), 8)), 800)
	if err != nil {
		fmt.Println(err)
		return
	}
	own := pc.Append(nil, fixLat, fixLng)
	fmt.Printf("cell's cover %d cells, the store's %d\n", len(pc.Cells()), len(own))
	// Output:
	// cell's cover 21 cells, the store's 12
}
