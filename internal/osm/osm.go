// Package osm holds real store locations from OpenStreetMap (© OpenStreetMap
// contributors, ODbL 1.0; see README.md in this directory), embedded in the
// binary for the demo world, the tests and the benchmark generator.
package osm

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"strconv"
	"sync"
)

//go:embed osm-japan-pois.csv
var poisCSV []byte

// Attribution is the notice that must accompany any use of the data.
const Attribution = "Store locations © OpenStreetMap contributors, ODbL 1.0"

// POI is one named point of interest.
type POI struct {
	ID       string
	Category string // convenience, restaurant or cafe
	Name     string
	Lat, Lng float64
}

var (
	once sync.Once
	pois []POI
	err  error
)

// POIs returns every point, parsed once. The slice is shared: do not modify.
func POIs() ([]POI, error) {
	once.Do(func() { pois, err = parse(poisCSV) })
	return pois, err
}

func parse(b []byte) ([]POI, error) {
	r := csv.NewReader(bytes.NewReader(b))
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read pois: %w", err)
	}
	out := make([]POI, 0, len(recs))
	for i, rec := range recs {
		if i == 0 {
			continue // header
		}
		if len(rec) != 5 {
			return nil, fmt.Errorf("read pois: line %d has %d fields", i+1, len(rec))
		}
		lat, err1 := strconv.ParseFloat(rec[3], 64)
		lng, err2 := strconv.ParseFloat(rec[4], 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("read pois: line %d has a bad coordinate", i+1)
		}
		out = append(out, POI{ID: rec[0], Category: rec[1], Name: rec[2], Lat: lat, Lng: lng})
	}
	return out, nil
}
