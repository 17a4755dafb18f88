package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage/storagetest"
)

// uploadError is the part of a rejected upload the tests read.
type uploadError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Row     int    `json:"row"`
			Message string `json:"message"`
		} `json:"details"`
	} `json:"error"`
}

func (r response) rowErrors(t *testing.T) (rows []int, messages []string) {
	t.Helper()
	var body uploadError
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("not an error body: %s", r.Body)
	}
	for _, d := range body.Error.Details {
		rows = append(rows, d.Row)
		messages = append(messages, d.Message)
	}
	return rows, messages
}

// storesCSV renders stores as the CSV of API.md.
func storesCSV(stores []campaigns.Store) []byte {
	var b bytes.Buffer
	b.WriteString("id,name,address,lat,lng,products\n")
	for _, s := range stores {
		fmt.Fprintf(&b, "%s,%s,%s,%v,%v,%s\n", s.ID, s.Name, s.Address, s.Lat, s.Lng, strings.Join(s.Products, "|"))
	}
	return b.Bytes()
}

const bom = "\xEF\xBB\xBF"

// TestUploadFormats: each format and its variants, good and bad, with the
// row numbers API.md promises, all or nothing.
func TestUploadFormats(t *testing.T) {
	e := newEnvWith(t, envConfig{})
	_, key := e.account(adminKey, map[string]any{"type": "advertiser", "name": "Chain"})
	good := []struct {
		name, contentType, body string
		ids                     []string
	}{
		{"JSON array", "application/json",
			`[{"id":"j1","name":"一号店","lat":35.69,"lng":139.70,"products":["beer"]},
			  {"id":"j2","name":"二号店","address":"新宿","lat":35.691,"lng":139.701,"products":["beer","wine"],
			   "hours":[{"days":["fri"],"from":"17:00","to":"02:00"}]}]`, []string{"j1", "j2"}},
		{"JSON without Content-Type", "", `[{"id":"j3","name":"三号店","lat":35.69,"lng":139.70,"products":["beer"]}]`, []string{"j3"}},
		{"CSV", "text/csv", "id,name,address,lat,lng,products\nc1,店一,新宿,35.69,139.70,beer|wine\nc2,店二,,35.691,139.701,beer\n", []string{"c1", "c2"}},
		{"CSV with a BOM and CRLF, as Excel saves it", "text/csv; charset=utf-8",
			bom + "id,name,address,lat,lng,products\r\nc3,\"店三, 本店\",\"新宿区 1-2-3\",35.69,139.70,\"beer | wine\"\r\n\r\n", []string{"c3"}},
		{"CSV with a BOM, no Content-Type", "", bom + "id,name,lat,lng,products\nc4,店四,35.69,139.70,beer\n", []string{"c4"}},
		{"CSV with columns in another order", "text/csv", "products,lng,lat,name,id\nbeer,139.70,35.69,店五,c5\n", []string{"c5"}},
		{"GeoJSON", "application/geo+json",
			`{"type":"FeatureCollection","features":[
			  {"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"g1","name":"地図店","products":["beer"]}},
			  {"type":"Feature","id":"g2","geometry":{"type":"Point","coordinates":[139.701,35.691]},"properties":{"name":"地図店二","products":"beer|wine"}}]}`,
			[]string{"g1", "g2"}},
		{"GeoJSON sniffed as JSON", "application/json",
			`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"g3","name":"x","products":["beer"]}}]}`,
			[]string{"g3"}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.contentType != "" {
				hdr = []string{"Content-Type", tt.contentType}
			}
			r := e.must(200, e.do("PUT", "/v1/stores", key, tt.body, hdr...))
			if n := int(r.json(t)["stores"].(float64)); n != len(tt.ids) {
				t.Fatalf("stores %d, want %d", n, len(tt.ids))
			}
			for _, id := range tt.ids {
				e.must(200, e.do("GET", "/v1/stores/"+id, key, nil))
			}
		})
	}
	// What Excel's quoting and the BOM turned into.
	var c3 campaigns.Store
	if err := json.Unmarshal(e.must(200, e.do("GET", "/v1/stores/c3", key, nil)).Body, &c3); err != nil {
		t.Fatal(err)
	}
	if c3.Name != "店三, 本店" || c3.Address != "新宿区 1-2-3" || strings.Join(c3.Products, ",") != "beer,wine" {
		t.Fatalf("c3 read back as %+v", c3)
	}

	before := e.must(200, e.do("GET", "/v1/stores", key, nil)).Body
	bad := []struct {
		name, contentType, body string
		rows                    []int
		says                    []string // each row's message mentions
	}{
		{"JSON: rows 2 and 4 bad", "application/json",
			`[{"id":"ok1","name":"a","lat":35.69,"lng":139.70,"products":["beer"]},
			  {"id":"bad2","name":"b","lat":95,"lng":139.70,"products":["beer"]},
			  {"id":"ok3","name":"c","lat":35.69,"lng":139.70,"products":["beer"]},
			  {"id":"bad4","name":"","lat":35.69,"lng":139.70,"products":[]}]`,
			[]int{2, 4}, []string{"lat", "name"}},
		{"JSON: a badly typed element", "application/json",
			`[{"id":"ok1","name":"a","lat":35.69,"lng":139.70,"products":["beer"]},{"id":"t2","name":"b","lat":"north","lng":139.70,"products":["beer"]}]`,
			[]int{2}, []string{"lat"}},
		{"JSON: an unknown field", "application/json",
			`[{"id":"u1","name":"a","lat":35.69,"lng":139.70,"products":["beer"],"phone":"03"}]`,
			[]int{1}, []string{"phone"}},
		{"JSON: a repeated ID", "application/json",
			`[{"id":"dup","name":"a","lat":35.69,"lng":139.70,"products":["beer"]},{"id":"dup","name":"b","lat":35.69,"lng":139.70,"products":["beer"]}]`,
			[]int{2}, []string{"repeats row 1"}},
		{"CSV: lines 3 and 5 bad (the header is line 1)", "text/csv",
			"id,name,address,lat,lng,products\nok1,a,,35.69,139.70,beer\nbad3,b,,abc,139.70,beer\nok4,c,,35.69,139.70,beer\nbad5,d,35.69,139.70,beer\n",
			[]int{3, 5}, []string{"lat", "fields"}},
		{"CSV with a BOM: line 2 bad", "text/csv", bom + "id,name,lat,lng,products\nbad2,a,35.69,139.70,\n", []int{2}, []string{"products"}},
		{"CSV: an unknown column", "text/csv", "id,name,lat,lng,products,phone\nx,a,35.69,139.70,beer,03\n", []int{1}, []string{"phone"}},
		{"CSV: a missing column", "text/csv", "id,name,lat,products\nx,a,35.69,beer\n", []int{1}, []string{"lng"}},
		{"GeoJSON: features 1 and 3 bad", "application/geo+json",
			`{"type":"FeatureCollection","features":[
			  {"type":"Feature","geometry":{"type":"LineString","coordinates":[[139.70,35.69],[139.71,35.69]]},"properties":{"id":"l1","name":"x","products":["beer"]}},
			  {"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"ok2","name":"x","products":["beer"]}},
			  {"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"b3","name":"x","products":[]}}]}`,
			[]int{1, 3}, []string{"Point", "products"}},
		{"JSON: a name in Shift_JIS", "application/json",
			`[{"id":"ok1","name":"a","lat":35.69,"lng":139.70,"products":["beer"]},{"id":"sj2","name":"` + "\x90\x56\x8f\x68" + `","lat":35.69,"lng":139.70,"products":["beer"]}]`,
			[]int{2}, []string{"UTF-8"}},
		{"GeoJSON: a name in Shift_JIS", "application/geo+json",
			`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"sj1","name":"` + "\x90\x56\x8f\x68" + `","products":["beer"]}}]}`,
			[]int{1}, []string{"UTF-8"}},
		// Whole-body errors: no row to name.
		{"JSON: data after the array", "application/json",
			`[{"id":"t1","name":"a","lat":35.69,"lng":139.70,"products":["beer"]}]]]`, nil, nil},
		{"GeoJSON: a second FeatureCollection after the first", "application/geo+json",
			`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"t1","name":"x","products":["beer"]}}]}` +
				`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"t2","name":"x","products":["beer"]}}]}`,
			nil, nil},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("PUT", "/v1/stores", key, tt.body, "Content-Type", tt.contentType)
			if r.Status != 400 || r.errorCode(t) != "invalid_argument" {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			rows, msgs := r.rowErrors(t)
			if fmt.Sprint(rows) != fmt.Sprint(tt.rows) {
				t.Fatalf("rows %v, want %v: %s", rows, tt.rows, r.Body)
			}
			for i, want := range tt.says {
				if !strings.Contains(msgs[i], want) {
					t.Errorf("row %d: %q does not mention %q", rows[i], msgs[i], want)
				}
			}
			// All or nothing: not even the good rows were stored.
			if after := e.must(200, e.do("GET", "/v1/stores", key, nil)).Body; !bytes.Equal(after, before) {
				t.Fatalf("a rejected upload changed the stores")
			}
		})
	}
}

// TestUploadReportsEveryBadRow: 300 bad rows among 1,000 are all listed,
// with their numbers; the message sums them up.
func TestUploadReportsEveryBadRow(t *testing.T) {
	e := newEnvWith(t, envConfig{})
	_, key := e.account(adminKey, map[string]any{"type": "advertiser", "name": "Chain"})
	stores := storagetest.MakeChainStores(1000)
	var want []int
	for i := range stores {
		if i%10 < 3 {
			stores[i].Lat = 91
			want = append(want, i+2) // CSV line: after the header
		}
	}
	r := e.do("PUT", "/v1/stores", key, storesCSV(stores), "Content-Type", "text/csv")
	rows, _ := r.rowErrors(t)
	if r.Status != 400 || fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("status %d, %d rows reported, want %d", r.Status, len(rows), len(want))
	}
	if msg := r.json(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "row 2:") || !strings.Contains(msg, "and 295 more") {
		t.Fatalf("summary %q", msg)
	}
	if n := e.index.Snapshot().Stores(); n != 0 {
		t.Fatalf("%d stores served after a rejected upload", n)
	}
}

// TestUploadLimits: a body over the limit is 413, too many rows 400, and
// nothing is stored either way.
func TestUploadLimits(t *testing.T) {
	e := newEnvWith(t, envConfig{maxBodyBytes: 64 << 10, maxUploadRows: 500})
	_, key := e.account(adminKey, map[string]any{"type": "advertiser", "name": "Chain"})
	name := strings.Repeat("店", 60) // 180 bytes: 400 rows are over 64 KiB
	var js bytes.Buffer
	js.WriteString("[")
	for i := range 400 {
		if i > 0 {
			js.WriteString(",")
		}
		fmt.Fprintf(&js, `{"id":"s%d","name":%q,"lat":35.69,"lng":139.70,"products":["p"]}`, i, name)
	}
	js.WriteString("]")
	var geo bytes.Buffer
	geo.WriteString(`{"type":"FeatureCollection","features":[`)
	for i := range 400 {
		if i > 0 {
			geo.WriteString(",")
		}
		fmt.Fprintf(&geo, `{"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"s%d","name":%q,"products":["p"]}}`, i, name)
	}
	geo.WriteString("]}")
	for _, tt := range []struct {
		name, contentType string
		body              []byte
	}{
		{"CSV", "text/csv", storesCSV(storagetest.MakeChainStores(480))},
		{"CSV with a BOM", "text/csv", append([]byte(bom), storesCSV(storagetest.MakeChainStores(480))...)},
		{"JSON", "application/json", js.Bytes()},
		{"GeoJSON", "application/geo+json", geo.Bytes()},
	} {
		if len(tt.body) <= 64<<10 {
			t.Fatalf("%s: test body of %d bytes is not over the limit", tt.name, len(tt.body))
		}
		r := e.do("PUT", "/v1/stores", key, tt.body, "Content-Type", tt.contentType)
		if r.Status != 413 || r.errorCode(t) != "payload_too_large" {
			t.Fatalf("%s over the limit: %d %s", tt.name, r.Status, r.Body)
		}
	}
	var small bytes.Buffer
	small.WriteString("id,name,lat,lng,products\n")
	for i := range 501 {
		fmt.Fprintf(&small, "s%d,n,35.69,139.70,p\n", i)
	}
	r := e.do("PUT", "/v1/stores", key, small.Bytes(), "Content-Type", "text/csv")
	if r.Status != 400 || !strings.Contains(string(r.Body), "at most 500") {
		t.Fatalf("501 rows: %d %s", r.Status, r.Body)
	}
	if n := e.index.Snapshot().Stores(); n != 0 {
		t.Fatalf("%d stores after rejected uploads", n)
	}
	// Just under both limits is fine.
	e.must(200, e.do("PUT", "/v1/stores", key, small.Bytes()[:bytes.LastIndex(small.Bytes()[:small.Len()-1], []byte("\n"))+1], "Content-Type", "text/csv"))
	if n := e.index.Snapshot().Stores(); n != 500 {
		t.Fatalf("%d stores, want 500", n)
	}
}

// TestUploadTwiceChangesNothing: uploading the same file again leaves the
// stores, their stock and the decisions exactly as they were, in every
// format.
func TestUploadTwiceChangesNothing(t *testing.T) {
	e := newEnvWith(t, envConfig{})
	adv, key := e.account(adminKey, map[string]any{"type": "advertiser", "name": "Chain"})
	_, pubKey := e.account(adminKey, map[string]any{"type": "publisher", "name": "Navi"})
	stores := storagetest.MakeChainStores(2000)
	c := beerCampaign(adv)
	c["product_id"] = "drink-03"
	e.must(201, e.do("POST", "/v1/campaigns", key, c))
	asJSON, _ := json.Marshal(stores)
	features := make([]map[string]any, len(stores))
	for i, s := range stores {
		features[i] = map[string]any{"type": "Feature", "geometry": map[string]any{"type": "Point", "coordinates": []float64{s.Lng, s.Lat}},
			"properties": map[string]any{"id": s.ID, "name": s.Name, "address": s.Address, "products": s.Products}}
	}
	asGeoJSON, _ := json.Marshal(map[string]any{"type": "FeatureCollection", "features": features})
	uploads := []struct {
		name, contentType string
		body              []byte
	}{
		{"CSV", "text/csv", storesCSV(stores)},
		{"JSON", "application/json", asJSON},
		{"GeoJSON", "application/geo+json", asGeoJSON},
	}
	// Something to keep: a store out of stock.
	e.must(200, e.do("PUT", "/v1/stores", key, uploads[0].body, "Content-Type", "text/csv"))
	e.must(200, e.do("PUT", "/v1/inventory", key, []map[string]any{{"store_id": stores[0].ID, "product_id": stores[0].Products[0], "in_stock": false}}))
	state := func() string {
		var b strings.Builder
		b.Write(e.must(200, e.do("GET", "/v1/stores", key, nil)).Body)
		for i := 0; i < len(stores); i += 97 { // decisions at a sample of the stores
			v := shinjuku("居酒屋")
			v.Set("lat", fmt.Sprint(stores[i].Lat))
			v.Set("lng", fmt.Sprint(stores[i].Lng))
			b.WriteString(fmt.Sprint(e.decide(pubKey, v).Ads))
		}
		return b.String()
	}
	before := state()
	for _, up := range uploads {
		for range 2 {
			e.must(200, e.do("PUT", "/v1/stores", key, up.body, "Content-Type", up.contentType))
			if after := state(); after != before {
				t.Fatalf("uploading the same stores again as %s changed what is stored or served", up.name)
			}
		}
	}
}

// TestUpload100k: a national chain's list of 100,000 stores in one CSV
// upload is taken and served; while it is applied, another advertiser's
// stock changes still reach decisions within a second. Under -short (the
// race pass; the first pass uploads all 100,000) the list has 20,000.
func TestUpload100k(t *testing.T) {
	e := newEnvWith(t, envConfig{maxBodyBytes: 64 << 20})
	w := e.world()
	adv, key := e.account(adminKey, map[string]any{"type": "advertiser", "name": "Chain"})
	total := 100_000
	if testing.Short() {
		total = 20_000
	}
	stores := storagetest.MakeChainStores(total)
	last := stores[total-1]
	body := storesCSV(stores)
	uploaded := make(chan response)
	go func() { uploaded <- e.do("PUT", "/v1/stores", key, body, "Content-Type", "text/csv") }()

	targetIs := func(id string) func(adsBody) bool {
		return func(b adsBody) bool {
			for _, ad := range b.Ads {
				if ad.CampaignID == w.campB {
					return ad.Store.ID == id
				}
			}
			return false
		}
	}
	var r response
	changes := 0
	for out := true; ; out = !out {
		want := map[bool]string{true: "shinjuku-2", false: "shinjuku-1"}[out]
		e.until(t, fmt.Sprintf("stock change %d during the upload", changes+1), w.publisherKey, func() {
			e.must(200, e.do("PUT", "/v1/inventory", w.advBKey, []map[string]any{{"store_id": "shinjuku-1", "product_id": "beer-350", "in_stock": !out}}))
		}, targetIs(want))
		changes++
		select {
		case r = <-uploaded:
		default:
			continue
		}
		break
	}
	t.Logf("%d stock changes while the upload was applied", changes)
	e.must(200, r)
	if n := int(r.json(t)["stores"].(float64)); n != total {
		t.Fatalf("stores %d, want %d", n, total)
	}
	if n := e.index.Snapshot().Stores(); n != total+4 {
		t.Fatalf("%d stores served, want %d", n, total+4)
	}
	n := 0
	must(t, e.store.Stores(t.Context(), adv, func(*campaigns.Store) bool { n++; return true }))
	if n != total {
		t.Fatalf("%d stores stored, want %d", n, total)
	}
	c := beerCampaign(adv)
	c["product_id"] = last.Products[0]
	e.must(201, e.do("POST", "/v1/campaigns", key, c))
	v := shinjuku("焼き鳥")
	v.Set("lat", fmt.Sprint(last.Lat))
	v.Set("lng", fmt.Sprint(last.Lng))
	v.Set("q", "居酒屋")
	if ads := e.decide(w.publisherKey, v).Ads; len(ads) == 0 || ads[0].Store.ID != last.ID {
		t.Fatalf("at the last store: %+v", ads)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestGeoJSONMembersOnce: a FeatureCollection whose "features" appears
// twice is a 400 that stores nothing. Read one array after the
// other, each counted rows from 1 against the row limit on its own, so that
// two arrays of 400 slipped past a limit of 500 and a bad row's number named
// two features.
func TestGeoJSONMembersOnce(t *testing.T) {
	e := newEnvWith(t, envConfig{maxUploadRows: 500})
	_, key := e.account(adminKey, map[string]any{"type": "advertiser", "name": "Chain"})
	features := func(from, n int) string {
		var b strings.Builder
		b.WriteString("[")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"s%d","name":"n","products":["p"]}}`, from+i)
		}
		b.WriteString("]")
		return b.String()
	}
	tests := []struct {
		name, give, want string
	}{
		{"features twice", `{"type":"FeatureCollection","features":` + features(0, 400) + `,"features":` + features(400, 400) + `}`, `\"features\" appears twice`},
		{"features twice, the first empty", `{"type":"FeatureCollection","features":[],"features":` + features(0, 2) + `}`, `\"features\" appears twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("PUT", "/v1/stores", key, tt.give, "Content-Type", "application/geo+json")
			if r.Status != 400 || r.errorCode(t) != "invalid_argument" || !strings.Contains(string(r.Body), tt.want) {
				t.Fatalf("%d %s, want 400 saying %s", r.Status, r.Body, tt.want)
			}
			if n := e.index.Snapshot().Stores(); n != 0 {
				t.Fatalf("%d stores served after a rejected upload", n)
			}
			if body := e.must(200, e.do("GET", "/v1/stores", key, nil)).Body; string(body) != `{"stores":[]}` {
				t.Fatalf("stores after a rejected upload: %.200s", body)
			}
		})
	}
}

// TestUploadAdvertiserIDMustMatch: a JSON row's advertiser_id, when set,
// must be the advertiser the upload is for. A row naming another
// advertiser was stored under the uploader, silently; CSV refuses the
// column. The same ID, as a downloaded list carries it, is fine.
func TestUploadAdvertiserIDMustMatch(t *testing.T) {
	e := newEnvWith(t, envConfig{})
	beer, beerKey := e.account(adminKey, map[string]any{"type": "advertiser", "name": "Beer"})
	coffee, coffeeKey := e.account(adminKey, map[string]any{"type": "advertiser", "name": "Coffee"})
	row := func(id, adv string, lat float64) map[string]any {
		r := map[string]any{"id": id, "name": "店", "lat": lat, "lng": 139.70, "products": []string{"beer"}}
		if adv != "" {
			r["advertiser_id"] = adv
		}
		return r
	}
	r := e.do("PUT", "/v1/stores", beerKey, []map[string]any{
		row("s1", beer, 35.69), row("s2", coffee, 35.69), row("s3", "", 35.69), row("s4", coffee, 95), row("s5", beer, 95),
	})
	if r.Status != 400 || r.errorCode(t) != "invalid_argument" {
		t.Fatalf("another advertiser's rows: %d %s", r.Status, r.Body)
	}
	rows, msgs := r.rowErrors(t)
	if fmt.Sprint(rows) != "[2 4 5]" {
		t.Fatalf("rows %v, want [2 4 5]: %s", rows, r.Body)
	}
	for i, want := range [][]string{{"advertiser_id", beer}, {"lat", "advertiser_id"}, {"lat"}} {
		for _, w := range want {
			if !strings.Contains(msgs[i], w) {
				t.Errorf("row %d: %q does not mention %q", rows[i], msgs[i], w)
			}
		}
	}
	if strings.Contains(msgs[2], "advertiser_id") {
		t.Errorf("row 5 names its own advertiser, yet: %q", msgs[2])
	}
	for _, key := range []string{beerKey, coffeeKey} {
		if body := e.must(200, e.do("GET", "/v1/stores", key, nil)).Body; string(body) != `{"stores":[]}` {
			t.Fatalf("stores after a rejected upload: %.200s", body)
		}
	}

	// Its own ID, or none, is fine; so is a list as GET returns it, and
	// an admin naming the advertiser with rows that name it too.
	e.must(200, e.do("PUT", "/v1/stores", beerKey, []map[string]any{row("s1", beer, 35.69), row("s3", "", 35.69)}))
	var list struct{ Stores []campaigns.Store }
	if err := json.Unmarshal(e.must(200, e.do("GET", "/v1/stores", beerKey, nil)).Body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Stores) != 2 || list.Stores[0].AdvertiserID != beer {
		t.Fatalf("stores %+v", list.Stores)
	}
	e.must(200, e.do("PUT", "/v1/stores", beerKey, list.Stores))
	e.must(200, e.do("PUT", "/v1/stores?advertiser_id="+beer, adminKey, []map[string]any{row("s6", beer, 35.69)}))
	r = e.do("PUT", "/v1/stores?advertiser_id="+coffee, adminKey, []map[string]any{row("s7", beer, 35.69)})
	if rows, _ := r.rowErrors(t); r.Status != 400 || fmt.Sprint(rows) != "[1]" {
		t.Fatalf("admin uploading for coffee a row naming beer: %d %s", r.Status, r.Body)
	}
	if body := e.must(200, e.do("GET", "/v1/stores", coffeeKey, nil)).Body; string(body) != `{"stores":[]}` {
		t.Fatalf("coffee's stores: %.200s", body)
	}
}

// TestGeoJSONIgnoredPropertiesListed: a GeoJSON upload's answer lists the
// feature properties navad does not read, each once, sorted; an OSM
// opening_hours navad can read becomes the store's hours, and one it cannot
// is listed by row (its store always open) and its name among the ignored;
// other formats, and GeoJSON without such properties, answer without the
// members.
func TestGeoJSONIgnoredPropertiesListed(t *testing.T) {
	e := newEnv(t)
	_, key := e.account(adminKey, map[string]any{"type": "advertiser", "name": "Chain"})
	osm := `{"type":"FeatureCollection","features":[
	  {"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"o1","name":"店","products":["beer"],"opening_hours":"Mo-Fr 09:00-18:00; PH off","brand":"B"}},
	  {"type":"Feature","geometry":{"type":"Point","coordinates":[139.701,35.691]},"properties":{"id":"o2","name":"店二","products":["beer"],"amenity":"pub","brand":"B"}}]}`
	r := e.must(200, e.do("PUT", "/v1/stores", key, osm, "Content-Type", "application/geo+json"))
	var got struct {
		Stores  int      `json:"stores"`
		Ignored []string `json:"ignored_properties"`
		Unread  []int    `json:"opening_hours_unread"`
	}
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Stores != 2 || !slices.Equal(got.Ignored, []string{"amenity", "brand"}) || got.Unread != nil {
		t.Fatalf("answer %s: want 2 stores, ignored_properties [amenity brand] and no opening_hours_unread", r.Body)
	}
	var o1 struct {
		Hours []campaigns.HourRange `json:"hours"`
	}
	if err := json.Unmarshal(e.must(200, e.do("GET", "/v1/stores/o1", key, nil)).Body, &o1); err != nil {
		t.Fatal(err)
	}
	if want := []campaigns.HourRange{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "09:00", To: "18:00"}}; !reflect.DeepEqual(o1.Hours, want) {
		t.Fatalf("o1's hours %+v, want %+v (from its opening_hours)", o1.Hours, want)
	}
	unreadable := `{"type":"FeatureCollection","features":[
	  {"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"o5","name":"店","products":["beer"],"opening_hours":"24/7"}},
	  {"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"o6","name":"店","products":["beer"],"opening_hours":"sunrise-sunset"}},
	  {"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"o7","name":"店","products":["beer"],"opening_hours":"Mo-Fr 10:00-18:00","hours":[{"from":"11:00","to":"12:00"}]}},
	  {"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"o8","name":"店","products":["beer"],"opening_hours":""}}]}`
	got.Ignored, got.Unread = nil, nil
	if err := json.Unmarshal(e.must(200, e.do("PUT", "/v1/stores", key, unreadable, "Content-Type", "application/geo+json")).Body, &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Ignored, []string{"opening_hours"}) || !slices.Equal(got.Unread, []int{2}) {
		t.Fatalf("answer: ignored %v, unread rows %v; want [opening_hours] and [2]", got.Ignored, got.Unread)
	}
	for id, want := range map[string]string{"o5": `"hours":[]`, "o6": `"hours":[]`, "o7": `"hours":[{"from":"11:00","to":"12:00"}]`, "o8": `"hours":[]`} {
		if body := string(e.must(200, e.do("GET", "/v1/stores/"+id, key, nil)).Body); !strings.Contains(body, want) {
			t.Fatalf("store %s: %s, want %s", id, body, want)
		}
	}
	for _, up := range []struct{ contentType, body string }{
		{"application/geo+json", `{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"o3","name":"x","products":["beer"],"hours":[]}}]}`},
		{"application/json", `[{"id":"o4","name":"x","lat":35.69,"lng":139.70,"products":["beer"]}]`},
	} {
		r := e.must(200, e.do("PUT", "/v1/stores", key, up.body, "Content-Type", up.contentType))
		if strings.Contains(string(r.Body), "ignored_properties") {
			t.Fatalf("%s answer %s: want no ignored_properties", up.contentType, r.Body)
		}
	}
}
