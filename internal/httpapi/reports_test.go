package httpapi_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/uber/h3-go/v4"

	"github.com/navad/navad/geo"
	"github.com/navad/navad/internal/cputime"
	"github.com/navad/navad/internal/storage"
)

// traffic is a world with two publishers' decisions and events, and the
// counts each (campaign, publisher) pair must show.
type traffic struct {
	world
	pub2, pub2Key string
	want          map[[2]string]storage.Counts // (campaign, publisher) → counts
}

func (tr *traffic) add(campaign, publisher string, c storage.Counts) {
	sum := tr.want[[2]string{campaign, publisher}]
	sum.Add(c)
	tr.want[[2]string{campaign, publisher}] = sum
}

// sum adds up the pairs that keep says to.
func (tr *traffic) sum(keep func(campaign, publisher string) bool) storage.Counts {
	var c storage.Counts
	for k, v := range tr.want {
		if keep(k[0], k[1]) {
			c.Add(v)
		}
	}
	return c
}

func (te *trackedEnv) traffic() *traffic {
	te.t.Helper()
	tr := &traffic{world: te.world(), want: map[[2]string]storage.Counts{}}
	tr.pub2, tr.pub2Key = te.account(adminKey, map[string]any{"type": "publisher", "name": "Navi Two"})
	for i, pub := range []struct{ id, key string }{{tr.publisher, tr.publisherKey}, {tr.pub2, tr.pub2Key}, {tr.publisher, tr.publisherKey}} {
		for j, ad := range te.ads(pub.key) {
			c := storage.Counts{Served: 1}
			if (i+j)%3 != 2 {
				te.must(204, te.do("GET", path(te.t, ad.ImpressionURL), "", nil))
				c.Impressions++
			}
			if j == 0 {
				te.must(302, te.do("GET", path(te.t, ad.ClickURL), "", nil))
				c.Clicks++
			}
			if i != 1 {
				te.must(204, te.do("GET", path(te.t, ad.NavigateURL), "", nil))
				c.Navigations++
			}
			if i == 0 {
				te.must(204, te.do("POST", path(te.t, ad.VisitURL), "", map[string]any{"lat": ad.Store.Lat, "lng": ad.Store.Lng}))
				c.Visits++
			}
			tr.add(ad.CampaignID, pub.id, c)
		}
		te.advance(time.Minute)
	}
	te.flush()
	return tr
}

var allDims = []string{"day", "hour", "campaign", "advertiser", "publisher", "store", "cell"}

func TestReportEveryGrouping(t *testing.T) {
	te := newTrackedEnv(t)
	tr := te.traffic()
	total := tr.sum(func(string, string) bool { return true })
	for mask := range 1 << len(allDims) {
		var group []string
		for i, d := range allDims {
			if mask&(1<<i) != 0 {
				group = append(group, d)
			}
		}
		t.Run(strings.Join(append([]string{"by"}, group...), "_"), func(t *testing.T) {
			rep := te.report(adminKey, "group_by="+strings.Join(group, ","))
			if rep.Totals.counts() != total {
				t.Fatalf("totals %+v, want %+v", rep.Totals.counts(), total)
			}
			var sum storage.Counts
			seen := map[string]bool{}
			wantCols := reportKeyColumns(group)
			for _, row := range rep.Rows {
				sum.Add(rowCounts(row))
				var key []string
				for _, c := range wantCols {
					v, ok := row[c]
					if !ok {
						t.Fatalf("row %v lacks %s", row, c)
					}
					key = append(key, fmt.Sprint(v))
				}
				if len(row) != len(wantCols)+7 {
					t.Fatalf("row %v: want exactly the columns %v and 7 metrics", row, wantCols)
				}
				if k := strings.Join(key, "|"); seen[k] {
					t.Fatalf("group %s repeats", k)
				} else {
					seen[k] = true
				}
			}
			if sum != total {
				t.Fatalf("rows add up to %+v, want %+v", sum, total)
			}
			checkCSV(t, te, "group_by="+strings.Join(group, ","), wantCols, rep)
		})
	}
	// A few groupings checked group by group.
	rep := te.report(adminKey, "group_by=campaign,publisher")
	if len(rep.Rows) != len(tr.want) {
		t.Fatalf("%d rows by campaign and publisher, want %d", len(rep.Rows), len(tr.want))
	}
	for _, row := range rep.Rows {
		want := tr.want[[2]string{row["campaign_id"].(string), row["publisher_id"].(string)}]
		if got := rowCounts(row); got != want {
			t.Fatalf("row %v: %+v, want %+v", row, got, want)
		}
		if ctr := row["ctr"].(float64); ctr != roundRatio(want.Clicks, want.Impressions) {
			t.Fatalf("row %v: ctr %v", row, ctr)
		}
	}
	rep = te.report(adminKey, "group_by=day,hour,store,cell")
	hour := float64(time.Unix(0, te.now.Load()).In(tokyo()).Hour())
	for _, row := range rep.Rows {
		if row["day"] != te.today() || (row["hour"] != hour && row["hour"] != float64(int(hour+1)%24)) {
			t.Fatalf("row %v: want today %s, hour %v", row, te.today(), hour)
		}
		if row["store_id"] != "shinjuku-1" || (row["advertiser_id"] != tr.advA && row["advertiser_id"] != tr.advB) {
			t.Fatalf("row %v: want the store shinjuku-1 of an advertiser", row)
		}
		c := h3.CellFromString(row["cell"].(string))
		if !c.IsValid() || c.Resolution() != geo.EventResolution {
			t.Fatalf("row %v: cell is not an H3 cell at resolution %d", row, geo.EventResolution)
		}
	}
}

func tokyo() *time.Location {
	loc, _ := time.LoadLocation("Asia/Tokyo")
	return loc
}

func roundRatio(num, den uint64) float64 {
	if den == 0 {
		return 0
	}
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(num)/float64(den), 'f', 6, 64), 64)
	return f
}

// reportKeyColumns are the key columns a grouping must produce, in order.
func reportKeyColumns(group []string) []string {
	has := func(d string) bool { return slices.Contains(group, d) }
	var cols []string
	for _, d := range []string{"day", "hour", "advertiser", "campaign", "publisher", "store", "cell"} {
		if !has(d) {
			continue
		}
		switch d {
		case "day", "hour", "cell":
			cols = append(cols, d)
		case "store":
			if !has("advertiser") {
				cols = append(cols, "advertiser_id")
			}
			cols = append(cols, "store_id")
		default:
			cols = append(cols, d+"_id")
		}
	}
	return cols
}

// checkCSV fetches the CSV of the same report, with and without a byte
// order mark, and compares it with the JSON rows.
func checkCSV(t *testing.T, te *trackedEnv, params string, cols []string, rep reportJSON) {
	t.Helper()
	for _, bom := range []bool{false, true} {
		p := "/v1/reports?from=" + te.today() + "&to=" + te.today() + "&" + params + "&format=csv"
		if bom {
			p += "&bom=true"
		}
		r := te.must(200, te.do("GET", p, adminKey, nil))
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Fatalf("content type %q", ct)
		}
		body := r.Body
		if got := bytes.HasPrefix(body, []byte("\xef\xbb\xbf")); got != bom {
			t.Fatalf("bom=%v: body starts with a BOM: %v", bom, got)
		}
		body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
		recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		header := append(slices.Clone(cols), "served", "impressions", "clicks", "ctr", "navigations", "visits", "visit_rate")
		if !slices.Equal(recs[0], header) {
			t.Fatalf("CSV header %v, want %v", recs[0], header)
		}
		if len(recs)-1 != len(rep.Rows) {
			t.Fatalf("CSV has %d rows, JSON %d", len(recs)-1, len(rep.Rows))
		}
		for i, rec := range recs[1:] {
			for j, c := range header {
				if want := fmt.Sprint(rep.Rows[i][c]); rec[j] != want {
					t.Fatalf("CSV row %d %s = %q, JSON has %q", i+1, c, rec[j], want)
				}
			}
		}
	}
}

func TestReportVisibility(t *testing.T) {
	te := newTrackedEnv(t)
	tr := te.traffic()
	agency2, agency2Key := te.account(adminKey, map[string]any{"type": "agency", "name": "Empty Agency"})
	_ = agency2
	all := func(string, string) bool { return true }
	tests := []struct {
		name   string
		key    string
		params string
		status int
		keep   func(campaign, publisher string) bool
	}{
		{"admin sees all", adminKey, "", 200, all},
		{"agency sees its advertiser", tr.agencyKey, "", 200, func(c, _ string) bool { return c == tr.campA }},
		{"advertiser A its own", tr.advAKey, "", 200, func(c, _ string) bool { return c == tr.campA }},
		{"advertiser B its own", tr.advBKey, "", 200, func(c, _ string) bool { return c == tr.campB }},
		{"publisher its traffic", tr.publisherKey, "", 200, func(_, p string) bool { return p == tr.publisher }},
		{"other publisher its traffic", tr.pub2Key, "", 200, func(_, p string) bool { return p == tr.pub2 }},
		{"agency without advertisers", agency2Key, "", 200, func(string, string) bool { return false }},
		{"admin filters a campaign", adminKey, "campaign_id=" + tr.campB, 200, func(c, _ string) bool { return c == tr.campB }},
		{"admin filters a publisher", adminKey, "publisher_id=" + tr.pub2, 200, func(_, p string) bool { return p == tr.pub2 }},
		{"agency names its advertiser", tr.agencyKey, "advertiser_id=" + tr.advA, 200, func(c, _ string) bool { return c == tr.campA }},
		{"advertiser by publisher", tr.advBKey, "publisher_id=" + tr.pub2, 200, func(c, p string) bool { return c == tr.campB && p == tr.pub2 }},
		{"publisher by advertiser", tr.publisherKey, "advertiser_id=" + tr.advB, 200, func(c, p string) bool { return c == tr.campB && p == tr.publisher }},
		{"another's campaign is empty", tr.advAKey, "campaign_id=" + tr.campB, 200, func(string, string) bool { return false }},
		{"several campaigns, one another's", tr.advAKey, "campaign_id=" + tr.campA + "," + tr.campB, 200, func(c, _ string) bool { return c == tr.campA }},
		{"advertiser names another", tr.advAKey, "advertiser_id=" + tr.advB, 403, nil},
		{"agency names another's advertiser", tr.agencyKey, "advertiser_id=" + tr.advB, 403, nil},
		{"publisher names another", tr.publisherKey, "publisher_id=" + tr.pub2, 403, nil},
		{"no key", "", "", 401, nil},
		{"bad key", "nvd_not-a-key", "", 401, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range []string{"/v1/reports", "/v1/reports/cells.geojson"} {
				r := te.do("GET", p+"?from="+te.today()+"&to="+te.today()+"&group_by=campaign,publisher&"+tt.params, tt.key, nil)
				if r.Status != tt.status {
					t.Fatalf("%s: status %d, want %d: %s", p, r.Status, tt.status, r.Body)
				}
			}
			if tt.status != 200 {
				return
			}
			rep := te.report(tt.key, "group_by=campaign,publisher&"+tt.params)
			want := tr.sum(tt.keep)
			if got := rep.Totals.counts(); got != want {
				t.Fatalf("totals %+v, want %+v", got, want)
			}
			for _, row := range rep.Rows {
				if !tt.keep(row["campaign_id"].(string), row["publisher_id"].(string)) {
					t.Fatalf("row %v is not visible to this key", row)
				}
			}
			var fromMap storage.Counts
			for _, f := range cellsGeoJSON(t, te, tt.key, tt.params).Features {
				fromMap.Add(featureCounts(f))
			}
			if fromMap != want {
				t.Fatalf("map counts %+v, want %+v", fromMap, want)
			}
		})
	}
}

func cellsGeoJSON(t *testing.T, te *trackedEnv, key, params string) *geojson.FeatureCollection {
	t.Helper()
	r := te.must(200, te.do("GET", "/v1/reports/cells.geojson?from="+te.today()+"&to="+te.today()+"&"+params, key, nil))
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/geo+json") {
		t.Fatalf("content type %q", ct)
	}
	fc, err := geojson.UnmarshalFeatureCollection(r.Body)
	if err != nil {
		t.Fatalf("not a FeatureCollection: %v: %s", err, r.Body)
	}
	return fc
}

func featureCounts(f *geojson.Feature) storage.Counts {
	n := func(k string) uint64 { return uint64(f.Properties.MustFloat64(k)) }
	return storage.Counts{Served: n("served"), Impressions: n("impressions"), Clicks: n("clicks"), Navigations: n("navigations"), Visits: n("visits")}
}

func TestCellsGeoJSON(t *testing.T) {
	te := newTrackedEnv(t)
	tr := te.traffic()
	// A store and a decision in a second neighbourhood, Shibuya, so that
	// there are two cells.
	te.must(200, te.do("PUT", "/v1/stores", tr.advAKey, []map[string]any{
		{"id": "shibuya-1", "name": "居酒屋 渋谷店", "lat": 35.6585, "lng": 139.7013, "products": []string{"beer-350"}},
	}))
	te.must(200, te.do("GET", "/v1/ads?lat=35.6580&lng=139.7016&q=%E5%B1%85%E9%85%92%E5%B1%8B", tr.publisherKey, nil))
	te.flush()

	rep := te.report(tr.advAKey, "group_by=cell")
	fc := cellsGeoJSON(t, te, tr.advAKey, "")
	if len(fc.Features) != len(rep.Rows) || len(rep.Rows) != 2 {
		t.Fatalf("%d features, %d report rows", len(fc.Features), len(rep.Rows))
	}
	byCell := map[string]storage.Counts{}
	for _, row := range rep.Rows {
		byCell[row["cell"].(string)] = rowCounts(row)
	}
	for _, f := range fc.Features {
		poly, ok := f.Geometry.(orb.Polygon)
		if !ok || len(poly) != 1 {
			t.Fatalf("feature %v: geometry %T, want a one-ring Polygon", f.ID, f.Geometry)
		}
		ring := poly[0]
		if len(ring) < 6 || ring[0] != ring[len(ring)-1] {
			t.Fatalf("feature %v: ring of %d points, not closed", f.ID, len(ring))
		}
		if ring.Orientation() != orb.CCW {
			t.Fatalf("feature %v: ring not counter-clockwise", f.ID)
		}
		id := f.Properties.MustString("cell")
		if f.ID != id {
			t.Fatalf("feature ID %v, cell %s", f.ID, id)
		}
		c := h3.CellFromString(id)
		center, _ := c.LatLng()
		if !poly.Bound().Contains(orb.Point{center.Lng, center.Lat}) {
			t.Fatalf("cell %s: hexagon does not hold its centre", id)
		}
		want, ok := byCell[id]
		if !ok || featureCounts(f) != want {
			t.Fatalf("cell %s: %+v, report has %+v", id, featureCounts(f), want)
		}
		if f.Properties.MustFloat64("ctr") != roundRatio(want.Clicks, want.Impressions) {
			t.Fatalf("cell %s: ctr %v", id, f.Properties["ctr"])
		}
	}
	if fc.ExtraMembers["from"] != te.today() {
		t.Fatalf("from member %v", fc.ExtraMembers["from"])
	}
}

func TestReportBadInput(t *testing.T) {
	te := newTrackedEnv(t)
	w := te.world()
	for _, tt := range []struct {
		name, params string
	}{
		{"bad from", "from=2026-13-01"},
		{"bad to", "from=2026-11-01&to=tomorrow"},
		{"to before from", "from=2026-11-02&to=2026-11-01"},
		// Given empty (a script's unset variable), not left out: it
		// answered today's report.
		{"empty from", "from=&to=2026-11-01"},
		{"empty to", "from=2026-11-01&to="},
		{"both empty", "from=&to="},
		{"more than a year", "from=2025-01-01&to=2026-11-01"},
		{"unknown dimension", "group_by=day,weather"},
		{"unknown format", "format=xlsx"},
		{"bad bom", "format=csv&bom=perhaps"},
		{"bad campaign id", "campaign_id=%3Cscript%3E"},
		{"bad publisher id", "publisher_id=.hidden"},
		// A filter given empty would admit nothing: zero totals, silently.
		{"empty campaign filter", "campaign_id="},
		{"empty advertiser filter", "advertiser_id="},
		{"empty publisher filter", "publisher_id=,"},
		// Pairs Go's query reader would drop without a word: the report
		// would be today's, not the one asked for.
		{"semicolon separator", "from=2026-11-01;to=2026-11-02"},
		{"bad escape", "from=2026-11-01&to=%zz"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range []string{"/v1/reports?", "/v1/reports/cells.geojson?"} {
				if p != "/v1/reports?" && strings.Contains(tt.params, "group_by") || strings.Contains(tt.params, "format") && p != "/v1/reports?" {
					continue // the map has no group_by or format
				}
				r := te.must(400, te.do("GET", p+tt.params, w.advAKey, nil))
				if code := r.errorCode(t); code != "invalid_argument" {
					t.Fatalf("code %s", code)
				}
			}
		})
	}
	// bom takes any boolean the OpenAPI document's checker reads as one
	// (and yes or no, as it always has, which the document does not name).
	for v, want := range map[string]bool{"t": true, "TRUE": true, "1": true, "f": false, "0": false, "": false} {
		r := te.must(200, te.do("GET", "/v1/reports?format=csv&bom="+v, w.advAKey, nil))
		if got := bytes.HasPrefix(r.Body, []byte("\xef\xbb\xbf")); got != want {
			t.Fatalf("bom=%s: a byte order mark %v, want %v", v, got, want)
		}
	}
	// Defaults: today, grouped by nothing; no traffic yet, so no rows.
	r := te.must(200, te.do("GET", "/v1/reports", w.advAKey, nil))
	if !strings.Contains(string(r.Body), `"from":"`+te.today()+`"`) || !strings.Contains(string(r.Body), `"rows":[]`) {
		t.Fatalf("default report: %s", r.Body)
	}
}

// BenchmarkReport30Days is the report of issue 5's speed target: 30 days ×
// 10,000 campaigns (200 advertisers, 3 publishers, stores and cells all
// different), grouped by day and campaign, as JSON and CSV through the gin
// engine: 300,000 rows.
func BenchmarkReport30Days(b *testing.B) {
	te := newTrackedEnv(b)
	const days, campaignsN = 30, 10_000
	first := storage.DayOf(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	for d := range days {
		rows := make([]storage.ServedCount, 0, campaignsN)
		for c := range campaignsN {
			rows = append(rows, storage.ServedCount{N: uint64(1 + c%7), Key: storage.AggKey{
				Day: first + storage.Day(d), Hour: uint8(c % 24), AdvertiserID: fmt.Sprintf("adv_%03d", c%200),
				CampaignID: fmt.Sprintf("cmp_%05d", c), PublisherID: fmt.Sprintf("pub_%d", c%3),
				StoreID: fmt.Sprintf("store-%06d", (c*7+d)%100_000), Cell: 0x882f5aa6b7fffff + uint64(c%500)<<12,
			}})
		}
		if err := te.store.AddServed(b.Context(), fmt.Sprint("bench-", d), rows); err != nil {
			b.Fatal(err)
		}
	}
	for _, format := range []string{"json", "csv"} {
		b.Run(format, func(b *testing.B) {
			p := "/v1/reports?from=2026-11-01&to=2026-11-30&group_by=day,campaign&format=" + format
			var size int
			b.ReportAllocs()
			cpu := cputime.Process()
			for b.Loop() {
				req, _ := http.NewRequest("GET", p, nil)
				req.Header.Set("Authorization", "Bearer "+adminKey)
				rec := &countingWriter{h: http.Header{}}
				te.handler.ServeHTTP(rec, req)
				if rec.status != 200 || rec.n < days*campaignsN*30 {
					b.Fatalf("status %d, %d bytes", rec.status, rec.n)
				}
				size = rec.n
			}
			b.ReportMetric(float64(size)/1e6, "MB/report")
			// Processor time per report: what the report costs whatever
			// else the machine is doing.
			b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}

// countingWriter is a ResponseWriter that counts the body's bytes.
type countingWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *countingWriter) Header() http.Header { return w.h }
func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	w.n += len(b)
	return len(b), nil
}
func (w *countingWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}

// TestReportFieldsGivenOnce: from, to, format and bom name one value each;
// given twice, a report is a 400 naming the field, as a decision's field
// given twice is, not the first one's report.
func TestReportFieldsGivenOnce(t *testing.T) {
	te := newTrackedEnv(t)
	w := te.world()
	for _, q := range []string{
		"from=2026-11-01&from=2026-11-02", "to=2026-11-01&to=2026-11-02",
		"format=csv&format=json", "bom=true&bom=false",
	} {
		field, _, _ := strings.Cut(q, "=")
		r := te.must(400, te.do("GET", "/v1/reports?"+q, w.advBKey, nil))
		if !strings.Contains(string(r.Body), `"field":"`+field+`"`) {
			t.Fatalf("%s: the error does not name %s: %s", q, field, r.Body)
		}
	}
	te.must(200, te.do("GET", "/v1/reports?group_by=day&group_by=campaign", w.advBKey, nil))
}
