package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/catalog"
	"github.com/navad/navad/internal/httpapi"
	"github.com/navad/navad/internal/httpapi/apicheck"
	"github.com/navad/navad/internal/metrics"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage/boltstore"
)

const adminKey = "test-admin-key-0123456789"

// env is a complete navad edge over the embedded store.
type env struct {
	t       testing.TB
	handler http.Handler
	server  *httpapi.Server
	index   *serving.Index
	store   *boltstore.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return newEnvOpts(t, store, httpapi.Options{}, nil)
}

// newEnvOpts builds the edge over store, measured through an instrumented
// catalog; zero fields of opt take the test defaults, and a nil logger
// discards.
func newEnvOpts(t testing.TB, store *boltstore.Store, opt httpapi.Options, logger *slog.Logger) *env {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := metrics.New()
	measured := metrics.InstrumentCatalog(store, m)
	loc, _ := time.LoadLocation("Asia/Tokyo")
	ix := serving.NewIndex()
	engine, err := serving.NewEngine(ix, loc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeys(measured, adminKey)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.New(measured, ix, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.WatchIndex(ix)
	def := httpapi.Options{MaxBodyBytes: 8 << 20, MaxJSONBodyBytes: 64 << 10, MaxUploadRows: 200_000, MaxStockRows: 10_000, DecisionTimeout: time.Second}
	if opt.MaxBodyBytes == 0 {
		opt.MaxBodyBytes = def.MaxBodyBytes
	}
	if opt.MaxJSONBodyBytes == 0 {
		opt.MaxJSONBodyBytes = def.MaxJSONBodyBytes
	}
	if opt.MaxUploadRows == 0 {
		opt.MaxUploadRows = def.MaxUploadRows
	}
	if opt.MaxStockRows == 0 {
		opt.MaxStockRows = def.MaxStockRows
	}
	if opt.DecisionTimeout == 0 {
		opt.DecisionTimeout = def.DecisionTimeout
	}
	if opt.RatePublisher == 0 && opt.RateManagement == 0 {
		// Limits far above what a test sends, so that the limiter runs in
		// every test without refusing anything.
		opt.RatePublisher, opt.RateManagement, opt.RateBurst = 1e6, 1e6, 1e6
	}
	srv, err := httpapi.New(httpapi.Deps{
		Catalog: cat, Engine: engine, Keys: keys,
		Logger:  logger,
		Ready:   measured.Ping,
		Metrics: m,
	}, opt)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, handler: srv.Handler(), server: srv, index: ix, store: store}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// errorCode returns the code of an error body, failing the test when the
// body is not the API's error shape.
func (r response) errorCode(t testing.TB) string {
	t.Helper()
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("status %d: not an error body: %s", r.Status, r.Body)
	}
	return body.Error.Code
}

func (e *env) do(method, path, key string, body any, header ...string) response {
	e.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		js, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		raw = js
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequestWithContext(context.Background(), method, path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	r := response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	e.checkAPI(req, raw, r)
	return r
}

// openAPI is the checker every test's exchanges go through.
var openAPI = sync.OnceValues(apicheck.Load)

// checkAPI fails the test when an exchange does not match the OpenAPI
// document the server serves: every request the suite makes is checked.
func (e *env) checkAPI(req *http.Request, reqBody []byte, r response) {
	e.t.Helper()
	c, err := openAPI()
	if err != nil {
		e.t.Errorf("OpenAPI document: %v", err)
		return
	}
	if err := c.Check(req, reqBody, r.Status, r.Header, r.Body); err != nil {
		e.t.Errorf("%s %s does not match the OpenAPI document: %v\nbody: %.500s", req.Method, req.URL.Path, err, r.Body)
	}
}

func (e *env) must(want int, r response) response {
	e.t.Helper()
	if r.Status != want {
		e.t.Fatalf("status %d, want %d: %s", r.Status, want, r.Body)
	}
	return r
}

// account creates an account and returns its ID and key.
func (e *env) account(creatorKey string, body map[string]any) (string, string) {
	e.t.Helper()
	m := e.must(201, e.do("POST", "/v1/accounts", creatorKey, body)).json(e.t)
	return m["id"].(string), m["api_key"].(string)
}

func beerCampaign(adv string) map[string]any {
	return map[string]any{
		"advertiser_id":     adv,
		"name":              "beer",
		"keywords":          []map[string]any{{"text": "居酒屋", "match": "broad"}},
		"negative_keywords": []string{"バイト"},
		"product_id":        "beer-350",
		"creative":          map[string]any{"title": "乾杯", "landing_url": "https://example.com/beer"},
		"radius_m":          800,
	}
}

// world is a small tenant set: one agency with an advertiser, a direct
// advertiser, a publisher, with a campaign and stores each.
type world struct {
	agency, agencyKey       string
	advA, advAKey           string // under the agency
	advB, advBKey           string // direct
	publisher, publisherKey string
	campA, campB            string
}

func (e *env) world() world {
	e.t.Helper()
	var w world
	w.agency, w.agencyKey = e.account(adminKey, map[string]any{"type": "agency", "name": "Agency"})
	w.advA, w.advAKey = e.account(w.agencyKey, map[string]any{"type": "advertiser", "name": "Brewer A"})
	w.advB, w.advBKey = e.account(adminKey, map[string]any{"type": "advertiser", "name": "Brewer B"})
	w.publisher, w.publisherKey = e.account(adminKey, map[string]any{"type": "publisher", "name": "Navi"})
	for _, adv := range []struct{ id, key string }{{w.advA, w.advAKey}, {w.advB, w.advBKey}} {
		stores := []map[string]any{
			{"id": "shinjuku-1", "name": "居酒屋 新宿一号店", "lat": 35.6905, "lng": 139.7005, "products": []string{"beer-350"}},
			{"id": "shinjuku-2", "name": "居酒屋 新宿二号店", "lat": 35.6930, "lng": 139.7010, "products": []string{"beer-350"}},
		}
		e.must(200, e.do("PUT", "/v1/stores", adv.key, stores))
	}
	w.campA = e.must(201, e.do("POST", "/v1/campaigns", w.agencyKey, beerCampaign(w.advA))).json(e.t)["id"].(string)
	w.campB = e.must(201, e.do("POST", "/v1/campaigns", w.advBKey, beerCampaign(""))).json(e.t)["id"].(string)
	return w
}

func adsPath(v url.Values) string { return "/v1/ads?" + v.Encode() }

func shinjuku(q string) url.Values {
	return url.Values{"lat": {"35.6909"}, "lng": {"139.7003"}, "q": {q}}
}

func TestDecisionEndToEnd(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	r := e.must(200, e.do("GET", adsPath(shinjuku("居酒屋")), w.publisherKey, nil))
	var body struct {
		RequestID string `json:"request_id"`
		Ads       []struct {
			AdID       string `json:"ad_id"`
			CampaignID string `json:"campaign_id"`
			Label      string `json:"label"`
			Title      string `json:"title"`
			Store      struct {
				ID  string  `json:"id"`
				Lat float64 `json:"lat"`
			} `json:"store"`
			Route struct {
				Mode      string `json:"mode"`
				DistanceM int    `json:"distance_m"`
				ETASec    int    `json:"eta_s"`
				Target    struct{ Lat, Lng float64 }
				Links     struct {
					Geo        string `json:"geo"`
					GoogleMaps string `json:"google_maps"`
				} `json:"links"`
			} `json:"route"`
		} `json:"ads"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.RequestID == "" || r.Header.Get("X-Request-Id") != body.RequestID {
		t.Fatalf("request id %q vs header %q", body.RequestID, r.Header.Get("X-Request-Id"))
	}
	if len(body.Ads) != 2 {
		t.Fatalf("got %d ads, want one per campaign (2): %s", len(body.Ads), r.Body)
	}
	seen := map[string]bool{}
	for _, ad := range body.Ads {
		if ad.Label != "オススメ情報" || ad.Title != "乾杯" || ad.Store.ID != "shinjuku-1" {
			t.Errorf("ad %+v", ad)
		}
		if ad.Route.Mode != "walk" || ad.Route.DistanceM < 40 || ad.Route.DistanceM > 80 || ad.Route.ETASec <= 0 {
			t.Errorf("route %+v", ad.Route)
		}
		if !strings.HasPrefix(ad.Route.Links.Geo, "geo:35.6905,139.7005") || !strings.Contains(ad.Route.Links.GoogleMaps, "travelmode=walking") {
			t.Errorf("links %+v", ad.Route.Links)
		}
		if seen[ad.AdID] {
			t.Errorf("ad id %s repeats", ad.AdID)
		}
		seen[ad.AdID] = true
	}
	// POST answers the same, and car mode drives.
	r = e.must(200, e.do("POST", "/v1/ads", w.publisherKey, map[string]any{"lat": 35.6909, "lng": 139.7003, "q": "居酒屋", "n": 1, "mode": "car"}))
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Ads) != 1 || body.Ads[0].Route.Mode != "car" || !strings.Contains(body.Ads[0].Route.Links.GoogleMaps, "travelmode=driving") {
		t.Fatalf("POST car: %s", r.Body)
	}
	// Nothing triggered: an empty list, not null.
	r = e.must(200, e.do("GET", adsPath(shinjuku("歯医者")), w.publisherKey, nil))
	if !strings.Contains(string(r.Body), `"ads":[]`) {
		t.Fatalf("no-match body: %s", r.Body)
	}
	// A negative keyword blocks.
	e.must(200, e.do("GET", adsPath(shinjuku("居酒屋 バイト")), w.publisherKey, nil))
	if got := e.do("GET", adsPath(shinjuku("居酒屋 バイト")), w.publisherKey, nil); strings.Contains(string(got.Body), "campaign_id") {
		t.Fatalf("negative keyword did not block: %s", got.Body)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	long := strings.Repeat("あ", 101)
	tests := []struct {
		name   string
		method string
		path   string
		key    string
		body   any
		header []string
		status int
		code   string
		field  string // the message must name it
	}{
		{"lat 91", "GET", adsPath(url.Values{"lat": {"91"}, "lng": {"139.7"}, "q": {"居酒屋"}}), w.publisherKey, nil, nil, 400, "invalid_argument", "lat"},
		{"lng abc", "GET", adsPath(url.Values{"lat": {"35.6"}, "lng": {"abc"}, "q": {"居酒屋"}}), w.publisherKey, nil, nil, 400, "invalid_argument", "lng"},
		{"lat NaN", "GET", adsPath(url.Values{"lat": {"NaN"}, "lng": {"139.7"}, "q": {"居酒屋"}}), w.publisherKey, nil, nil, 400, "invalid_argument", "lat"},
		{"lng Inf", "GET", adsPath(url.Values{"lat": {"35"}, "lng": {"+Inf"}, "q": {"居酒屋"}}), w.publisherKey, nil, nil, 400, "invalid_argument", "lng"},
		{"lat a hex float", "GET", adsPath(url.Values{"lat": {"0x1p5"}, "lng": {"139.7"}, "q": {"居酒屋"}}), w.publisherKey, nil, nil, 400, "invalid_argument", "lat"},
		{"acc with underscores", "GET", adsPath(url.Values{"lat": {"35.6"}, "lng": {"139.7"}, "acc": {"1_0"}, "q": {"居酒屋"}}), w.publisherKey, nil, nil, 400, "invalid_argument", "acc"},
		{"no lat", "GET", adsPath(url.Values{"lng": {"139.7"}, "q": {"居酒屋"}}), w.publisherKey, nil, nil, 400, "invalid_argument", "lat"},
		{"empty q", "GET", adsPath(url.Values{"lat": {"35.6"}, "lng": {"139.7"}, "q": {""}}), w.publisherKey, nil, nil, 400, "invalid_argument", "q"},
		{"campaigns of two advertisers", "GET", "/v1/campaigns?advertiser_id=" + w.advB + "&advertiser_id=" + w.advA, adminKey, nil, nil, 400, "invalid_argument", "advertiser_id"},
		{"stores for two advertisers", "PUT", "/v1/stores?advertiser_id=" + w.advB + "&advertiser_id=" + w.advB, adminKey, `[]`, nil, 400, "invalid_argument", "advertiser_id"},
		{"no q", "GET", adsPath(url.Values{"lat": {"35.6"}, "lng": {"139.7"}}), w.publisherKey, nil, nil, 400, "invalid_argument", "q"},
		{"q of 101 characters", "GET", adsPath(url.Values{"lat": {"35.6"}, "lng": {"139.7"}, "q": {long}}), w.publisherKey, nil, nil, 400, "invalid_argument", "q"},
		{"n 0", "GET", adsPath(url.Values{"lat": {"35.6"}, "lng": {"139.7"}, "q": {"x"}, "n": {"0"}}), w.publisherKey, nil, nil, 400, "invalid_argument", "n"},
		{"n 11", "GET", adsPath(url.Values{"lat": {"35.6"}, "lng": {"139.7"}, "q": {"x"}, "n": {"11"}}), w.publisherKey, nil, nil, 400, "invalid_argument", "n"},
		{"n abc", "GET", adsPath(url.Values{"lat": {"35.6"}, "lng": {"139.7"}, "q": {"x"}, "n": {"abc"}}), w.publisherKey, nil, nil, 400, "invalid_argument", "n"},
		{"mode fly", "GET", adsPath(url.Values{"lat": {"35.6"}, "lng": {"139.7"}, "q": {"x"}, "mode": {"fly"}}), w.publisherKey, nil, nil, 400, "invalid_argument", "mode"},
		{"acc negative", "GET", adsPath(url.Values{"lat": {"35.6"}, "lng": {"139.7"}, "q": {"x"}, "acc": {"-1"}}), w.publisherKey, nil, nil, 400, "invalid_argument", "acc"},
		{"POST malformed JSON", "POST", "/v1/ads", w.publisherKey, `{"lat": 35.6,`, nil, 400, "invalid_argument", "JSON"},
		{"POST lat as string", "POST", "/v1/ads", w.publisherKey, `{"lat": "35.6", "lng": 139.7, "q": "x"}`, nil, 400, "invalid_argument", "lat"},
		{"POST q as number", "POST", "/v1/ads", w.publisherKey, `{"lat": 35.6, "lng": 139.7, "q": 5}`, nil, 400, "invalid_argument", "q"},
		{"POST not an object", "POST", "/v1/ads", w.publisherKey, `[1,2]`, nil, 400, "invalid_argument", "object"},
		{"POST empty body", "POST", "/v1/ads", w.publisherKey, ``, nil, 400, "invalid_argument", "empty"},
		{"POST a stray brace after the object", "POST", "/v1/ads", w.publisherKey, `{"lat": 35.6909, "lng": 139.7003, "q": "居酒屋"}}`, nil, 400, "invalid_argument", "after the JSON"},
		{"POST a stray bracket after the object", "POST", "/v1/ads", w.publisherKey, `{"lat": 35.6909, "lng": 139.7003, "q": "居酒屋"} ]`, nil, 400, "invalid_argument", "after the JSON"},
		{"POST two objects", "POST", "/v1/ads", w.publisherKey, `{"lat": 35.6909, "lng": 139.7003, "q": "居酒屋"} {"q": "x"}`, nil, 400, "invalid_argument", "after the JSON"},
		{"campaign malformed JSON", "POST", "/v1/campaigns", w.advBKey, `{"name":`, nil, 400, "invalid_argument", "JSON"},
		{"campaign radius as string", "POST", "/v1/campaigns", w.advBKey, `{"name":"x","radius_m":"800"}`, nil, 400, "invalid_argument", "radius_m"},
		{"campaign with a stray brace", "POST", "/v1/campaigns", w.advBKey, `{"name":"x"}}`, nil, 400, "invalid_argument", "after the JSON"},
		{"campaign unknown field", "POST", "/v1/campaigns", w.advBKey, `{"name":"x","radius":800}`, nil, 400, "invalid_argument", "radius"},
		{"campaign invalid fields", "POST", "/v1/campaigns", w.advBKey, map[string]any{"name": "", "keywords": []any{}, "radius_m": 10, "product_id": "a/b", "creative": map[string]any{"title": "t", "landing_url": "javascript:alert(1)"}}, nil, 400, "invalid_argument", "radius_m"},
		{"store outside lat range", "PUT", "/v1/stores", w.advBKey, `[{"id":"s","name":"s","lat":95,"lng":139.7,"products":["p"]}]`, nil, 400, "invalid_argument", "lat"},
		{"store lng as string", "PUT", "/v1/stores", w.advBKey, `[{"id":"s","name":"s","lat":35,"lng":"east","products":["p"]}]`, nil, 400, "invalid_argument", "lng"},
		{"stores not an array", "PUT", "/v1/stores", w.advBKey, `"hello"`, nil, 400, "invalid_argument", "array"},
		{"stock for unknown store", "PUT", "/v1/inventory", w.advBKey, `[{"store_id":"nope","product_id":"beer-350","in_stock":false}]`, nil, 400, "invalid_argument", "nope"},
		{"stock in_stock as string", "PUT", "/v1/inventory", w.advBKey, `[{"store_id":"shinjuku-1","product_id":"beer-350","in_stock":"no"}]`, nil, 400, "invalid_argument", "in_stock"},
		{"stock not an array", "PUT", "/v1/inventory", w.advBKey, `{"store_id":"shinjuku-1"}`, nil, 400, "invalid_argument", "array"},
		{"no key", "GET", adsPath(shinjuku("居酒屋")), "", nil, nil, 401, "unauthenticated", "key"},
		{"wrong key", "GET", adsPath(shinjuku("居酒屋")), "nvd_not_a_real_key", nil, nil, 401, "unauthenticated", "key"},
		{"basic auth", "GET", adsPath(shinjuku("居酒屋")), "", nil, []string{"Authorization", "Basic Zm9vOmJhcg=="}, 401, "unauthenticated", "key"},
		{"advertiser asks for ads", "GET", adsPath(shinjuku("居酒屋")), w.advBKey, nil, nil, 403, "permission_denied", "advertiser"},
		{"publisher writes a campaign", "POST", "/v1/campaigns", w.publisherKey, beerCampaign(w.advB), nil, 403, "permission_denied", "publisher"},
		{"unknown route", "GET", "/v1/nothing", w.publisherKey, nil, nil, 404, "not_found", "endpoint"},
		{"trailing slash", "GET", "/v1/ads/?lat=35.6909&lng=139.7003&q=x", w.publisherKey, nil, nil, 404, "not_found", "endpoint"},
		{"POST to a trailing slash", "POST", "/v1/ads/", w.publisherKey, `{"lat": 35.6909, "lng": 139.7003, "q": "x"}`, nil, 404, "not_found", "endpoint"},
		{"unknown campaign", "GET", "/v1/campaigns/cmp_nope", w.advBKey, nil, nil, 404, "not_found", "cmp_nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, tt.key, tt.body, tt.header...)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if code := r.errorCode(t); code != tt.code {
				t.Fatalf("code %q, want %q", code, tt.code)
			}
			if !strings.Contains(strings.ToLower(string(r.Body)), strings.ToLower(tt.field)) {
				t.Fatalf("the error does not name %q: %s", tt.field, r.Body)
			}
			// Every error passes through the middleware: it has an ID.
			if r.Header.Get("X-Request-Id") == "" {
				t.Fatal("no X-Request-Id")
			}
		})
	}
	// Nothing above changed what was stored: both stores still serve.
	r := e.must(200, e.do("GET", "/v1/stores", w.advBKey, nil))
	if n := strings.Count(string(r.Body), `"id":"shinjuku-`); n != 2 {
		t.Fatalf("stores after bad input: %d, want 2: %s", n, r.Body)
	}
}

// TestValidationNamesEveryBadField: a campaign wrong in five ways is
// refused with all five named, not only the first found.
func TestValidationNamesEveryBadField(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	r := e.do("POST", "/v1/campaigns", w.advBKey, map[string]any{"name": "", "keywords": []any{}, "radius_m": 10, "product_id": "a/b",
		"creative": map[string]any{"title": "t", "landing_url": "javascript:alert(1)"}})
	if r.Status != 400 || r.errorCode(t) != "invalid_argument" {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	var body struct {
		Error struct {
			Details []struct {
				Field string `json:"field"`
			} `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, d := range body.Error.Details {
		named[d.Field] = true
	}
	for _, f := range []string{"name", "keywords", "radius_m", "product_id", "creative.landing_url"} {
		if !named[f] {
			t.Errorf("the error does not name %s: %s", f, r.Body)
		}
	}
}

func TestOversizedBody(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	big := `{"name":"` + strings.Repeat("x", 100<<10) + `"}`
	r := e.do("POST", "/v1/campaigns", w.advBKey, big)
	if r.Status != 413 || r.errorCode(t) != "payload_too_large" {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
}

// TestRoleMatrix: every endpoint × every role, on its own and on another
// tenant's object.
func TestRoleMatrix(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	keys := map[string]string{
		"admin": adminKey, "agency": w.agencyKey, "advA": w.advAKey, "advB": w.advBKey, "publisher": w.publisherKey, "none": "",
	}
	stock := []map[string]any{{"store_id": "shinjuku-1", "product_id": "beer-350", "in_stock": true}}
	store := []map[string]any{{"id": "shinjuku-9", "name": "x", "lat": 35.69, "lng": 139.70, "products": []string{"beer-350"}}}
	type call struct {
		method, path string
		body         any
	}
	// Calls on advertiser A's objects (A is under the agency).
	onA := map[string]call{
		"get campaign":    {"GET", "/v1/campaigns/" + w.campA, nil},
		"patch campaign":  {"PATCH", "/v1/campaigns/" + w.campA, map[string]any{"name": "renamed"}},
		"pause campaign":  {"POST", "/v1/campaigns/" + w.campA + "/pause", nil},
		"list campaigns":  {"GET", "/v1/campaigns?advertiser_id=" + w.advA, nil},
		"create campaign": {"POST", "/v1/campaigns", beerCampaign(w.advA)},
		"put stores":      {"PUT", "/v1/stores?advertiser_id=" + w.advA, store},
		"list stores":     {"GET", "/v1/stores?advertiser_id=" + w.advA, nil},
		"get store":       {"GET", "/v1/stores/shinjuku-1?advertiser_id=" + w.advA, nil},
		"put inventory":   {"PUT", "/v1/inventory?advertiser_id=" + w.advA, stock},
		"get account":     {"GET", "/v1/accounts/" + w.advA, nil},
	}
	// Expected status per role on A's objects.
	want := map[string]map[string]int{
		"admin":     {"*": 200, "create campaign": 201},
		"agency":    {"*": 200, "create campaign": 201},
		"advA":      {"*": 200, "create campaign": 201},
		"advB":      {"*": 403, "get campaign": 404, "patch campaign": 404, "pause campaign": 404, "get account": 404},
		"publisher": {"*": 403, "get account": 404},
		"none":      {"*": 401},
	}
	for role, key := range keys {
		for name, c := range onA {
			t.Run(role+"/"+name, func(t *testing.T) {
				exp, ok := want[role][name]
				if !ok {
					exp = want[role]["*"]
				}
				r := e.do(c.method, c.path, key, c.body)
				if r.Status != exp {
					t.Fatalf("status %d, want %d: %s", r.Status, exp, r.Body)
				}
				if exp >= 400 {
					r.errorCode(t)
				}
			})
		}
	}
	// Deleting another tenant's campaign fails and leaves it in place.
	r := e.do("DELETE", "/v1/campaigns/"+w.campA, w.advBKey, nil)
	if r.Status != 404 {
		t.Fatalf("advB deleting A's campaign: %d", r.Status)
	}
	e.must(200, e.do("GET", "/v1/campaigns/"+w.campA, w.advAKey, nil))
	e.must(204, e.do("DELETE", "/v1/campaigns/"+w.campA, w.agencyKey, nil))
	e.must(404, e.do("GET", "/v1/campaigns/"+w.campA, w.advAKey, nil))
	// Account creation: only admin, or an agency for its own advertisers.
	for role, exp := range map[string]int{"admin": 201, "agency": 201, "advA": 403, "publisher": 403, "none": 401} {
		r := e.do("POST", "/v1/accounts", keys[role], map[string]any{"type": "advertiser", "name": "New " + role})
		if r.Status != exp {
			t.Errorf("%s creates an advertiser: %d, want %d: %s", role, r.Status, exp, r.Body)
		}
	}
	r = e.do("POST", "/v1/accounts", w.agencyKey, map[string]any{"type": "publisher", "name": "p"})
	if r.Status != 403 {
		t.Errorf("agency creates a publisher: %d", r.Status)
	}
	// Listing without a filter shows only what the key may see.
	list := func(key string) int {
		r := e.must(200, e.do("GET", "/v1/campaigns", key, nil))
		var body struct{ Campaigns []map[string]any }
		_ = json.Unmarshal(r.Body, &body)
		return len(body.Campaigns)
	}
	if n := list(w.advBKey); n != 1 {
		t.Errorf("advB sees %d campaigns, want 1", n)
	}
	if n := list(w.agencyKey); n != 3 { // the three the matrix created for A
		t.Errorf("agency sees %d campaigns, want 3", n)
	}
	if n := list(adminKey); n != 4 {
		t.Errorf("admin sees %d campaigns, want 4", n)
	}
}

func TestPauseAndResumeReachDecisions(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	count := func() int {
		r := e.must(200, e.do("GET", adsPath(shinjuku("居酒屋")), w.publisherKey, nil))
		return strings.Count(string(r.Body), `"campaign_id"`)
	}
	if n := count(); n != 2 {
		t.Fatalf("got %d ads, want 2", n)
	}
	e.must(200, e.do("PATCH", "/v1/campaigns/"+w.campB, w.advBKey, map[string]any{"status": "paused"}))
	if n := count(); n != 1 {
		t.Fatalf("after pause: %d ads, want 1", n)
	}
	e.must(200, e.do("POST", "/v1/campaigns/"+w.campB+"/resume", w.advBKey, nil))
	if n := count(); n != 2 {
		t.Fatalf("after resume: %d ads, want 2", n)
	}
	e.must(204, e.do("DELETE", "/v1/campaigns/"+w.campB, w.advBKey, nil))
	if n := count(); n != 1 {
		t.Fatalf("after delete: %d ads, want 1", n)
	}
	// Out of stock at both of A's stores: A stops serving.
	e.must(200, e.do("PUT", "/v1/inventory?advertiser_id="+w.advA, w.agencyKey, []map[string]any{
		{"store_id": "shinjuku-1", "product_id": "beer-350", "in_stock": false},
		{"store_id": "shinjuku-2", "product_id": "beer-350", "quantity": 0},
	}))
	if n := count(); n != 0 {
		t.Fatalf("after stock-out: %d ads, want 0", n)
	}
}

func TestHealthAndReady(t *testing.T) {
	e := newEnv(t)
	if r := e.do("GET", "/healthz", "", nil); r.Status != 200 {
		t.Fatalf("healthz %d", r.Status)
	}
	if r := e.do("GET", "/readyz", "", nil); r.Status != 200 {
		t.Fatalf("readyz %d", r.Status)
	}
	_ = campaigns.Active
}
