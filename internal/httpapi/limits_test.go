package httpapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/navad/navad/internal/httpapi"
	"github.com/navad/navad/internal/storage/boltstore"
)

// TestConfiguredLimits: each configurable request limit holds at the edge.
func TestConfiguredLimits(t *testing.T) {
	store, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	e := newEnvOpts(t, store, httpapi.Options{
		MaxAds: 1, MaxUploadRows: 2, MaxStockRows: 2, MaxJSONBodyBytes: 2048, MaxBodyBytes: 4096,
	}, nil)
	w := e.world()

	// n above the operator's cap is served up to the cap, not refused.
	r := e.must(200, e.do("GET", adsPath(shinjuku("居酒屋"))+"&n=3", w.publisherKey, nil))
	if n := strings.Count(string(r.Body), `"campaign_id"`); n != 1 {
		t.Fatalf("MaxAds 1: %d ads", n)
	}
	// n outside the API's 1-10 is still a 400.
	e.must(400, e.do("GET", adsPath(shinjuku("居酒屋"))+"&n=11", w.publisherKey, nil))

	rows := func(n int) string {
		var b strings.Builder
		b.WriteString("id,name,lat,lng,products\n")
		for i := range n {
			fmt.Fprintf(&b, "s%d,店,35.69,139.70,beer-350\n", i)
		}
		return b.String()
	}
	r = e.do("PUT", "/v1/stores", w.advBKey, rows(3), "Content-Type", "text/csv")
	if r.Status != 400 || !strings.Contains(string(r.Body), "at most 2") {
		t.Fatalf("3 rows over a limit of 2: %d %s", r.Status, r.Body)
	}
	e.must(200, e.do("PUT", "/v1/stores", w.advBKey, rows(2), "Content-Type", "text/csv"))

	stock := `[{"store_id":"s0","product_id":"beer-350","in_stock":true},{"store_id":"s1","product_id":"beer-350","in_stock":true},{"store_id":"s0","product_id":"beer-350","in_stock":false}]`
	r = e.do("PUT", "/v1/inventory", w.advBKey, stock)
	if r.Status != 400 || !strings.Contains(string(r.Body), "2") {
		t.Fatalf("3 stock rows over a limit of 2: %d %s", r.Status, r.Body)
	}

	big := `{"lat":35.69,"lng":139.70,"q":"` + strings.Repeat("x", 3000) + `"}`
	if r := e.do("POST", "/v1/ads", w.publisherKey, big); r.Status != 413 || r.errorCode(t) != "payload_too_large" {
		t.Fatalf("JSON body over 2048 bytes: %d %s", r.Status, r.Body)
	}
	// An upload over the byte limit is 413 in every format, however far
	// the parser got.
	long := strings.Repeat("店", 2000)
	for _, up := range []struct{ name, body, ctype string }{
		{"CSV", rows(1) + "s9," + long + ",35.69,139.70,beer-350\n", "text/csv"},
		{"JSON", `[{"id":"s9","name":"` + long + `","lat":35.69,"lng":139.70,"products":["beer-350"]}]`, "application/json"},
		{"GeoJSON", `{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[139.7,35.69]},"properties":{"id":"s9","name":"` + long + `","products":["beer-350"]}}]}`, "application/geo+json"},
	} {
		if r := e.do("PUT", "/v1/stores", w.advBKey, up.body, "Content-Type", up.ctype); r.Status != 413 || r.errorCode(t) != "payload_too_large" {
			t.Errorf("%s upload over 4096 bytes: %d %s", up.name, r.Status, r.Body)
		}
	}
	if r := e.do("PATCH", "/v1/campaigns/"+w.campB, w.advBKey, `{"name":"`+long+`"}`); r.Status != 413 {
		t.Errorf("patch over 2048 bytes: %d %s", r.Status, r.Body)
	}
}
