package httpapi_test

// Tests of GET /v1/reports/cells.geojson as the dashboard's map uses it:
// every hexagon a valid, closed GeoJSON polygon of its H3 cell, and the
// counts equal to the JSON report grouped by cell, for every role, filter
// and a period of more than one day.

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
	orbgeo "github.com/paulmach/orb/geo"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/planar"
	"github.com/uber/h3-go/v4"

	"github.com/navad/navad/geo"
	"github.com/navad/navad/internal/storage"
)

// cellTraffic is traffic spread over many cells and two days, and the
// counts it must show by (campaign, cell).
type cellTraffic struct {
	world
	from, to string
	want     map[string]map[string]storage.Counts // campaign → cell → counts
}

// cellTraffic asks for ads on a grid of fixes around Shinjuku, where both
// advertisers have a store at every point, and fires a different share of
// the tracking URLs at each, half of them a day later.
func (te *trackedEnv) cellTraffic() *cellTraffic {
	te.t.Helper()
	tr := &cellTraffic{world: te.world(), want: map[string]map[string]storage.Counts{}}
	var spots [][2]float64
	for i := range 4 {
		for j := range 4 {
			spots = append(spots, [2]float64{35.672 + float64(i)*0.009, 139.688 + float64(j)*0.011})
		}
	}
	for _, key := range []string{tr.advAKey, tr.advBKey} {
		var stores []map[string]any
		for i, s := range spots {
			stores = append(stores, map[string]any{"id": fmt.Sprintf("grid-%d", i), "name": "居酒屋", "lat": s[0], "lng": s[1], "products": []string{"beer-350"}})
		}
		te.must(200, te.do("PUT", "/v1/stores", key, stores))
	}
	tr.from = te.today()
	n := 0
	for i, s := range spots {
		if i == len(spots)/2 {
			te.advance(24 * time.Hour)
		}
		fix := url.Values{"lat": {fmt.Sprint(s[0])}, "lng": {fmt.Sprint(s[1])}, "q": {"居酒屋"}}
		r := te.must(200, te.do("GET", adsPath(fix), tr.publisherKey, nil))
		var body struct{ Ads []trackedAd }
		if err := json.Unmarshal(r.Body, &body); err != nil {
			te.t.Fatal(err)
		}
		if len(body.Ads) != 2 {
			te.t.Fatalf("spot %d: %d ads, want one a campaign", i, len(body.Ads))
		}
		cell, err := geo.Cell(s[0], s[1], geo.EventResolution)
		if err != nil {
			te.t.Fatal(err)
		}
		for _, ad := range body.Ads {
			c := storage.Counts{Served: 1}
			if n%5 != 4 {
				te.must(204, te.do("GET", path(te.t, ad.ImpressionURL), "", nil))
				c.Impressions++
			}
			if n%3 == 0 {
				te.must(302, te.do("GET", path(te.t, ad.ClickURL), "", nil))
				c.Clicks++
			}
			if n%2 == 0 {
				te.must(204, te.do("GET", path(te.t, ad.NavigateURL), "", nil))
				c.Navigations++
			}
			if n%4 == 0 {
				te.must(204, te.do("POST", path(te.t, ad.VisitURL), "", map[string]any{"lat": ad.Store.Lat, "lng": ad.Store.Lng}))
				c.Visits++
			}
			n++
			if tr.want[ad.CampaignID] == nil {
				tr.want[ad.CampaignID] = map[string]storage.Counts{}
			}
			sum := tr.want[ad.CampaignID][cell.String()]
			sum.Add(c)
			tr.want[ad.CampaignID][cell.String()] = sum
		}
	}
	tr.to = te.today()
	te.flush()
	return tr
}

// byCell sums the wanted counts of the given campaigns by cell.
func (tr *cellTraffic) byCell(campaignIDs ...string) map[string]storage.Counts {
	out := map[string]storage.Counts{}
	for _, id := range campaignIDs {
		for cell, c := range tr.want[id] {
			sum := out[cell]
			sum.Add(c)
			out[cell] = sum
		}
	}
	return out
}

func TestCellsGeoJSONMatchesTheReport(t *testing.T) {
	te := newTrackedEnv(t)
	tr := te.cellTraffic()
	if len(tr.byCell(tr.campA)) < 10 {
		t.Fatalf("traffic in %d cells; the grid should cover more", len(tr.byCell(tr.campA)))
	}
	tests := []struct {
		name   string
		key    string
		filter string
		want   map[string]storage.Counts
	}{
		{"admin", adminKey, "", tr.byCell(tr.campA, tr.campB)},
		{"admin, one campaign", adminKey, "campaign_id=" + tr.campB, tr.byCell(tr.campB)},
		{"agency", tr.agencyKey, "", tr.byCell(tr.campA)},
		{"advertiser A", tr.advAKey, "", tr.byCell(tr.campA)},
		{"advertiser B", tr.advBKey, "", tr.byCell(tr.campB)},
		{"advertiser B naming A's campaign", tr.advBKey, "campaign_id=" + tr.campA, map[string]storage.Counts{}},
		{"publisher", tr.publisherKey, "", tr.byCell(tr.campA, tr.campB)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			period := "from=" + tr.from + "&to=" + tr.to + "&" + tt.filter
			r := te.must(200, te.do("GET", "/v1/reports/cells.geojson?"+period, tt.key, nil))
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/geo+json") {
				t.Fatalf("Content-Type %q", ct)
			}
			fc := checkFeatureCollection(t, r.Body)
			rep := te.must(200, te.do("GET", "/v1/reports?group_by=cell&"+period, tt.key, nil))
			var report reportJSON
			if err := json.Unmarshal(rep.Body, &report); err != nil {
				t.Fatal(err)
			}

			if len(fc.Features) != len(report.Rows) || len(fc.Features) != len(tt.want) {
				t.Fatalf("%d hexagons, %d report rows, %d cells with traffic", len(fc.Features), len(report.Rows), len(tt.want))
			}
			rows := map[string]map[string]any{}
			for _, row := range report.Rows {
				rows[row["cell"].(string)] = row
			}
			var sum storage.Counts
			for _, f := range fc.Features {
				id := f.Properties.MustString("cell")
				got, row := featureCounts(f), rows[id]
				if row == nil {
					t.Fatalf("hexagon %s is not in the report", id)
				}
				if got != rowCounts(row) || got != tt.want[id] {
					t.Fatalf("cell %s: map %+v, report %+v, fired %+v", id, got, rowCounts(row), tt.want[id])
				}
				for _, rate := range []string{"ctr", "visit_rate"} {
					if f.Properties.MustFloat64(rate) != row[rate].(float64) {
						t.Fatalf("cell %s: %s %v on the map, %v in the report", id, rate, f.Properties[rate], row[rate])
					}
				}
				sum.Add(got)
			}
			if sum != report.Totals.counts() {
				t.Fatalf("the hexagons add up to %+v, the report's totals are %+v", sum, report.Totals.counts())
			}
			if fc.ExtraMembers["from"] != tr.from || fc.ExtraMembers["to"] != tr.to || fc.ExtraMembers["timezone"] != "Asia/Tokyo" {
				t.Fatalf("members from %v, to %v, timezone %v", fc.ExtraMembers["from"], fc.ExtraMembers["to"], fc.ExtraMembers["timezone"])
			}
		})
	}

	t.Run("a period without traffic is an empty collection", func(t *testing.T) {
		day := "2020-01-01"
		r := te.must(200, te.do("GET", "/v1/reports/cells.geojson?from="+day+"&to="+day, adminKey, nil))
		if !strings.Contains(string(r.Body), `"features":[]`) {
			t.Fatalf("want an empty features array (RFC 7946), got %s", r.Body)
		}
		checkFeatureCollection(t, r.Body)
	})

	t.Run("each day alone adds up to the period", func(t *testing.T) {
		var days storage.Counts
		for _, d := range []string{tr.from, tr.to} {
			r := te.must(200, te.do("GET", "/v1/reports/cells.geojson?from="+d+"&to="+d, adminKey, nil))
			for _, f := range checkFeatureCollection(t, r.Body).Features {
				days.Add(featureCounts(f))
			}
		}
		var want storage.Counts
		for _, c := range tr.byCell(tr.campA, tr.campB) {
			want.Add(c)
		}
		if days != want {
			t.Fatalf("the days' maps add up to %+v, want %+v", days, want)
		}
	})
}

// checkFeatureCollection checks that body is a valid RFC 7946
// FeatureCollection of H3 hexagons and returns it: each feature a Polygon
// of one closed, counter-clockwise, simple ring of [lng, lat] positions,
// exactly its cell's boundary, holding the cell's centre, about 0.74 km²;
// one feature per cell, and no two hexagons overlapping.
func checkFeatureCollection(t *testing.T, body []byte) *geojson.FeatureCollection {
	t.Helper()
	var raw struct {
		Type     string `json:"type"`
		Features []struct {
			Type     string `json:"type"`
			ID       any    `json:"id"`
			Geometry struct {
				Type        string         `json:"type"`
				Coordinates [][][2]float64 `json:"coordinates"`
			} `json:"geometry"`
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if raw.Type != "FeatureCollection" || raw.Features == nil {
		t.Fatalf("type %q, features %v: want a FeatureCollection with a features array", raw.Type, raw.Features)
	}
	for _, f := range raw.Features {
		if f.Type != "Feature" || f.Geometry.Type != "Polygon" || len(f.Geometry.Coordinates) != 1 {
			t.Fatalf("feature %v: %s of a %s with %d rings; want a Feature of a one-ring Polygon", f.ID, f.Type, f.Geometry.Type, len(f.Geometry.Coordinates))
		}
		// Positions are [longitude, latitude] (RFC 7946 section 3.1.1):
		// around Tokyo the first is about 139.7, the second about 35.7.
		for _, p := range f.Geometry.Coordinates[0] {
			if math.Abs(p[0]-139.7) > 1 || math.Abs(p[1]-35.7) > 1 {
				t.Fatalf("feature %v: position %v is not [lng, lat] near Tokyo", f.ID, p)
			}
		}
	}

	fc, err := geojson.UnmarshalFeatureCollection(body)
	if err != nil {
		t.Fatalf("not a FeatureCollection: %v", err)
	}
	seen := map[string]bool{}
	var polys []orb.Polygon
	for _, f := range fc.Features {
		id := f.Properties.MustString("cell")
		if f.ID != id || seen[id] {
			t.Fatalf("feature ID %v for cell %s (seen before: %v)", f.ID, id, seen[id])
		}
		seen[id] = true
		c := h3.CellFromString(id)
		if !c.IsValid() || c.Resolution() != geo.EventResolution {
			t.Fatalf("cell %s: valid %v, resolution %d, want %d", id, c.IsValid(), c.Resolution(), geo.EventResolution)
		}
		poly, ok := f.Geometry.(orb.Polygon)
		if !ok || len(poly) != 1 {
			t.Fatalf("cell %s: geometry %T", id, f.Geometry)
		}
		ring := poly[0]
		boundary, err := c.Boundary()
		if err != nil {
			t.Fatal(err)
		}
		if len(ring) != len(boundary)+1 || ring[0] != ring[len(ring)-1] {
			t.Fatalf("cell %s: a ring of %d positions for %d vertices, closed %v", id, len(ring), len(boundary), ring[0] == ring[len(ring)-1])
		}
		for i, v := range boundary {
			if math.Abs(ring[i][0]-v.Lng) > 1e-9 || math.Abs(ring[i][1]-v.Lat) > 1e-9 {
				t.Fatalf("cell %s: vertex %d is %v, the cell's is (%v, %v)", id, i, ring[i], v.Lng, v.Lat)
			}
		}
		if ring.Orientation() != orb.CCW {
			t.Fatalf("cell %s: the ring is not counter-clockwise", id)
		}
		if !simple(ring) {
			t.Fatalf("cell %s: the ring crosses itself", id)
		}
		centre, _ := c.LatLng()
		if !planar.PolygonContains(poly, orb.Point{centre.Lng, centre.Lat}) {
			t.Fatalf("cell %s: the hexagon does not hold the cell's centre", id)
		}
		if km2 := orbgeo.Area(poly) / 1e6; km2 < 0.6 || km2 > 0.9 {
			t.Fatalf("cell %s: %.3f km², want about 0.74", id, km2)
		}
		polys = append(polys, poly)
	}
	for i, a := range polys {
		centre, _ := planar.CentroidArea(a)
		for j, b := range polys {
			if i != j && planar.PolygonContains(b, centre) {
				t.Fatalf("hexagons %v and %v overlap", fc.Features[i].ID, fc.Features[j].ID)
			}
		}
	}
	return fc
}

// simple reports whether no two non-adjacent edges of the closed ring
// intersect.
func simple(ring orb.Ring) bool {
	n := len(ring) - 1
	for i := range n {
		for j := i + 2; j < n; j++ {
			if i == 0 && j == n-1 {
				continue // adjacent through the closing vertex
			}
			if segmentsCross(ring[i], ring[i+1], ring[j], ring[j+1]) {
				return false
			}
		}
	}
	return true
}

func segmentsCross(p1, p2, q1, q2 orb.Point) bool {
	cross := func(a, b, c orb.Point) float64 { return (b[0]-a[0])*(c[1]-a[1]) - (b[1]-a[1])*(c[0]-a[0]) }
	d1, d2 := cross(q1, q2, p1), cross(q1, q2, p2)
	d3, d4 := cross(p1, p2, q1), cross(p1, p2, q2)
	return (d1 > 0) != (d2 > 0) && (d3 > 0) != (d4 > 0)
}
