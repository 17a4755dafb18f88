package campaigns

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// geoFeature is one element of a GeoJSON FeatureCollection of stores.
type geoFeature struct {
	Type     string          `json:"type"`
	ID       json.RawMessage `json:"id"`
	Geometry *struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"` // read once the type is known to be Point
	} `json:"geometry"`
	Properties map[string]json.RawMessage `json:"properties"`
}

// readStoresGeoJSON reads a FeatureCollection of Points whose properties
// carry id (or the feature's id), name, address, products (an array, or a
// "|"-separated string) and hours. Row numbers are feature positions from 1.
func readStoresGeoJSON(r io.Reader, maxRows int) (*Upload, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	up := &Upload{}
	var p Problems
	ignored := map[string]bool{}
	sawType, sawFeatures := false, false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, JSONError(err)
		}
		key, _ := tok.(string)
		switch key {
		case "type":
			var t string
			if err := dec.Decode(&t); err != nil && isReadError(err) {
				return nil, readError(err)
			} else if err != nil || t != "FeatureCollection" {
				return nil, Errorf(Invalid, `the GeoJSON must be a "FeatureCollection"`)
			}
			sawType = true
		case "features":
			// Twice would be two lists whose rows both count from 1: two
			// features with one row number, and each list held to the row
			// limit on its own.
			if sawFeatures {
				return nil, Errorf(Invalid, `"features" appears twice in the FeatureCollection`)
			}
			sawFeatures = true
			if err := expectDelim(dec, '['); err != nil {
				if _, ok := err.(*Error); !ok {
					return nil, err // the body could not be read
				}
				return nil, Errorf(Invalid, "features must be an array")
			}
			for row := 1; dec.More(); row++ {
				if row > maxRows {
					return nil, Errorf(Invalid, "an upload holds at most %d stores", maxRows)
				}
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return nil, rowSyntaxError(row, err)
				}
				// As in readStoresJSON: the decoder would make bytes that
				// are not UTF-8 U+FFFD.
				if !utf8.Valid(raw) {
					p.AddRow(row, "is not valid UTF-8; save the file as UTF-8")
					continue
				}
				s, unread, msg := featureStore(raw, ignored)
				if msg != "" {
					p.AddRow(row, "%s", msg)
					continue
				}
				if unread && len(up.OpeningHoursUnread) < maxIgnored {
					up.OpeningHoursUnread = append(up.OpeningHoursUnread, row)
				}
				up.Stores = append(up.Stores, s)
				up.Rows = append(up.Rows, row)
			}
			if _, err := dec.Token(); err != nil {
				return nil, JSONError(err)
			}
		default:
			var skip json.RawMessage // bbox, name, crs…: allowed and ignored
			if err := dec.Decode(&skip); err != nil {
				return nil, JSONError(err)
			}
			if !utf8.Valid(skip) {
				return nil, Errorf(Invalid, "the GeoJSON is not valid UTF-8; save the file as UTF-8")
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, JSONError(err)
	}
	if err := ExpectEnd(dec, "the FeatureCollection"); err != nil {
		return nil, err
	}
	if !sawType || !sawFeatures {
		return nil, Errorf(Invalid, `the GeoJSON must be a "FeatureCollection" with "features"`)
	}
	for name := range ignored {
		up.IgnoredProperties = append(up.IgnoredProperties, name)
	}
	slices.Sort(up.IgnoredProperties)
	return finish(up, &p)
}

// storeProperties are the feature properties a store is read from.
var storeProperties = map[string]bool{"id": true, "name": true, "address": true, "products": true, "hours": true}

// maxIgnored bounds the ignored property names an upload reports, and
// maxIgnoredLen the length of one.
const (
	maxIgnored    = 50
	maxIgnoredLen = 100
)

// featureStore reads the store of one feature, and adds the names of the
// properties it does not read to ignored. A feature without hours takes
// them from an OSM opening_hours it can read (hoursFromOSM); unread reports
// one it could not, which leaves the store always open.
func featureStore(raw json.RawMessage, ignored map[string]bool) (s Store, unread bool, msg string) {
	var f geoFeature
	if err := json.Unmarshal(raw, &f); err != nil {
		return Store{}, false, ErrorMessage(JSONError(err))
	}
	ignore := func(name string) {
		if len(ignored) < maxIgnored && len(name) <= maxIgnoredLen {
			ignored[name] = true
		}
	}
	for name := range f.Properties {
		if !storeProperties[name] && name != "opening_hours" {
			ignore(name)
		}
	}
	var bad []string
	if f.Type != "Feature" {
		bad = append(bad, `type must be "Feature"`)
	}
	var coords []float64
	switch {
	case f.Geometry == nil || f.Geometry.Type != "Point":
		bad = append(bad, "geometry must be a Point")
	case json.Unmarshal(f.Geometry.Coordinates, &coords) != nil || len(coords) < 2 || len(coords) > 3:
		bad = append(bad, "coordinates must be [lng, lat]")
	default:
		s.Lng, s.Lat = coords[0], coords[1]
		if math.IsInf(s.Lat, 0) || math.IsInf(s.Lng, 0) {
			bad = append(bad, "coordinates must be finite")
		}
	}
	str := func(name string, dst *string) {
		if v, ok := f.Properties[name]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, dst); err != nil {
				bad = append(bad, name+" must be a string")
			}
		}
	}
	str("id", &s.ID)
	if s.ID == "" && len(f.ID) > 0 {
		if err := json.Unmarshal(f.ID, &s.ID); err != nil {
			s.ID = strings.Trim(string(bytes.TrimSpace(f.ID)), `"`)
		}
	}
	str("name", &s.Name)
	str("address", &s.Address)
	if v, ok := f.Properties["products"]; ok {
		var list []string
		var joined string
		switch {
		case json.Unmarshal(v, &list) == nil:
			s.Products = list
		case json.Unmarshal(v, &joined) == nil:
			for _, pr := range strings.Split(joined, "|") {
				s.Products = append(s.Products, strings.TrimSpace(pr))
			}
		default:
			bad = append(bad, "products must be an array of strings or a |-separated string")
		}
	}
	hasHours := false
	if v, ok := f.Properties["hours"]; ok && string(v) != "null" {
		hasHours = true
		if err := json.Unmarshal(v, &s.Hours); err != nil {
			bad = append(bad, "hours must be an array of {days, from, to}")
		}
	}
	if v, ok := f.Properties["opening_hours"]; ok && string(v) != "null" {
		var osm string
		switch {
		case hasHours: // navad's own hours win
			ignore("opening_hours")
		case json.Unmarshal(v, &osm) != nil:
			ignore("opening_hours")
			unread = true
		case strings.TrimSpace(osm) == "": // no data, as null
		default:
			if h, ok := hoursFromOSM(osm); ok {
				s.Hours = h
			} else {
				ignore("opening_hours")
				unread = true
			}
		}
	}
	if len(bad) > 0 {
		return Store{}, false, strings.Join(bad, "; ")
	}
	return s, unread, ""
}
