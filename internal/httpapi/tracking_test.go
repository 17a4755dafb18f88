package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/catalog"
	"github.com/navad/navad/internal/cputime"
	"github.com/navad/navad/internal/httpapi"
	"github.com/navad/navad/internal/reports"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/internal/tracking"
)

const publicURL = "https://ads.example.jp"

// trackedEnv is a complete edge with tracking and reports over the
// embedded store, with a settable clock for tracking.
type trackedEnv struct {
	*env
	store    *boltstore.Store
	tracking *tracking.Service
	now      atomic.Int64 // tracking's clock, Unix nanoseconds
}

func newTrackedEnv(t testing.TB) *trackedEnv {
	t.Helper()
	store, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	loc, _ := time.LoadLocation("Asia/Tokyo")
	ix := serving.NewIndex()
	engine, err := serving.NewEngine(ix, loc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeys(store, adminKey)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.New(store, ix, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	te := &trackedEnv{store: store}
	// The start of the current hour (plus a minute): the traffic a test
	// makes, a minute an ad, stays within one hour and one day, so that
	// tests grouping by hour or day never straddle a boundary.
	te.now.Store(time.Now().Truncate(time.Hour).Add(time.Minute).UnixNano())
	secret, err := tracking.Secret(context.Background(), store, "")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	te.tracking, err = tracking.New(store, tracking.Options{
		PublicURL: publicURL, Secret: secret, TTL: 24 * time.Hour, RetentionDays: 90, Location: loc, Logger: logger,
		FlushInterval: time.Hour, // flushed by hand
		Now:           func() time.Time { return time.Unix(0, te.now.Load()) },
		Landing: func(id string) (string, bool) {
			c := ix.Snapshot().Campaign(id)
			if c == nil {
				return "", false
			}
			return c.Creative.LandingURL, true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = te.tracking.Close() })
	rep, err := reports.New(store, store, loc)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Deps{
		Catalog: cat, Engine: engine, Keys: keys, Logger: logger, Ready: store.Ping,
		Tracking: te.tracking, Reports: rep,
	}, httpapi.Options{MaxBodyBytes: 8 << 20, MaxJSONBodyBytes: 64 << 10, MaxUploadRows: 200_000, MaxStockRows: 10_000, DecisionTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	te.env = &env{t: t, handler: srv.Handler(), server: srv}
	return te
}

func (te *trackedEnv) advance(d time.Duration) { te.now.Add(int64(d)) }

func (te *trackedEnv) today() string {
	loc, _ := time.LoadLocation("Asia/Tokyo")
	return time.Unix(0, te.now.Load()).In(loc).Format(time.DateOnly)
}

func (te *trackedEnv) flush() {
	te.t.Helper()
	if err := te.tracking.Flush(context.Background()); err != nil {
		te.t.Fatal(err)
	}
}

type trackedAd struct {
	AdID          string `json:"ad_id"`
	CampaignID    string `json:"campaign_id"`
	LandingURL    string `json:"landing_url"`
	ImpressionURL string `json:"impression_url"`
	ClickURL      string `json:"click_url"`
	NavigateURL   string `json:"navigate_url"`
	VisitURL      string `json:"visit_url"`
	Store         struct {
		ID  string  `json:"id"`
		Lat float64 `json:"lat"`
		Lng float64 `json:"lng"`
	} `json:"store"`
}

// ads asks for izakaya ads by Shinjuku station.
func (te *trackedEnv) ads(pubKey string) []trackedAd {
	te.t.Helper()
	r := te.must(200, te.do("GET", adsPath(shinjuku("居酒屋")), pubKey, nil))
	var body struct {
		Ads []trackedAd `json:"ads"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		te.t.Fatal(err)
	}
	return body.Ads
}

// path returns the path of a tracking URL, for the handler.
func path(t testing.TB, link string) string {
	t.Helper()
	if !strings.HasPrefix(link, publicURL+"/v1/") {
		t.Fatalf("tracking URL %q is not under %s", link, publicURL)
	}
	return strings.TrimPrefix(link, publicURL)
}

// report returns the JSON report for today as the key sees it.
func (te *trackedEnv) report(key string, params string) reportJSON {
	te.t.Helper()
	r := te.must(200, te.do("GET", "/v1/reports?from="+te.today()+"&to="+te.today()+"&"+params, key, nil))
	var rep reportJSON
	if err := json.Unmarshal(r.Body, &rep); err != nil {
		te.t.Fatalf("%v: %s", err, r.Body)
	}
	return rep
}

type metricsJSON struct {
	Served      uint64  `json:"served"`
	Impressions uint64  `json:"impressions"`
	Clicks      uint64  `json:"clicks"`
	CTR         float64 `json:"ctr"`
	Navigations uint64  `json:"navigations"`
	Visits      uint64  `json:"visits"`
	VisitRate   float64 `json:"visit_rate"`
}

type reportJSON struct {
	From     string           `json:"from"`
	To       string           `json:"to"`
	Timezone string           `json:"timezone"`
	GroupBy  []string         `json:"group_by"`
	Totals   metricsJSON      `json:"totals"`
	Rows     []map[string]any `json:"rows"`
}

func (m metricsJSON) counts() storage.Counts {
	return storage.Counts{Served: m.Served, Impressions: m.Impressions, Clicks: m.Clicks, Navigations: m.Navigations, Visits: m.Visits}
}

func rowCounts(row map[string]any) storage.Counts {
	n := func(k string) uint64 { return uint64(row[k].(float64)) }
	return storage.Counts{Served: n("served"), Impressions: n("impressions"), Clicks: n("clicks"), Navigations: n("navigations"), Visits: n("visits")}
}

func TestDecisionCarriesTrackingURLs(t *testing.T) {
	te := newTrackedEnv(t)
	w := te.world()
	ads := te.ads(w.publisherKey)
	if len(ads) != 2 {
		t.Fatalf("%d ads, want 2", len(ads))
	}
	tokens := map[string]bool{}
	for _, ad := range ads {
		tok := ad.ImpressionURL[strings.LastIndexByte(ad.ImpressionURL, '/')+1:]
		if tokens[tok] {
			t.Fatal("two ads share a token")
		}
		tokens[tok] = true
		for _, tt := range []struct{ got, prefix string }{
			{ad.ImpressionURL, "/v1/i/"}, {ad.ClickURL, "/v1/c/"}, {ad.NavigateURL, "/v1/n/"}, {ad.VisitURL, "/v1/v/"},
		} {
			if tt.got != publicURL+tt.prefix+tok {
				t.Errorf("ad %s: URL %q, want %s%s<token>", ad.AdID, tt.got, publicURL, tt.prefix)
			}
		}
	}
	// Served counts are each ad of each decision that returned it.
	te.ads(w.publisherKey)
	te.must(200, te.do("GET", adsPath(shinjuku("歯医者")), w.publisherKey, nil)) // no ads: nothing served
	te.flush()
	rep := te.report(adminKey, "group_by=campaign")
	if rep.Totals.Served != 4 || len(rep.Rows) != 2 {
		t.Fatalf("served %d in %d rows, want 4 in 2", rep.Totals.Served, len(rep.Rows))
	}
}

func TestTrackingCountsOnce(t *testing.T) {
	te := newTrackedEnv(t)
	w := te.world()
	ads := te.ads(w.publisherKey)
	a, b := ads[0], ads[1]
	for range 5 {
		te.must(204, te.do("GET", path(t, a.ImpressionURL), "", nil))
	}
	te.must(204, te.do("GET", path(t, b.ImpressionURL), "", nil))
	for range 3 {
		r := te.must(302, te.do("GET", path(t, a.ClickURL), "", nil))
		if loc := r.Header.Get("Location"); loc != "https://example.com/beer" {
			t.Fatalf("click redirects to %q", loc)
		}
		te.must(204, te.do("GET", path(t, a.NavigateURL), "", nil))
		te.must(204, te.do("POST", path(t, a.VisitURL), "", map[string]any{"lat": a.Store.Lat, "lng": a.Store.Lng + 0.0001, "acc": 8}))
	}
	te.flush()
	rep := te.report(adminKey, "")
	want := storage.Counts{Served: 2, Impressions: 2, Clicks: 1, Navigations: 1, Visits: 1}
	if got := rep.Totals.counts(); got != want {
		t.Fatalf("totals %+v, want %+v", got, want)
	}
	if rep.Totals.CTR != 0.5 || rep.Totals.VisitRate != 0.5 {
		t.Fatalf("ctr %v, visit rate %v; want 0.5 each", rep.Totals.CTR, rep.Totals.VisitRate)
	}
}

// TestConcurrentTracking fires the same and distinct tokens of many
// decisions from many goroutines through the handler: every count exact.
func TestConcurrentTracking(t *testing.T) {
	te := newTrackedEnv(t)
	w := te.world()
	var ads []trackedAd
	for range 10 {
		ads = append(ads, te.ads(w.publisherKey)...)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 12 {
		wg.Go(func() {
			for i := range ads {
				ad := ads[(i+g)%len(ads)]
				for _, c := range []struct {
					method, link string
					want         int
					body         any
				}{
					{"GET", ad.ImpressionURL, 204, nil},
					{"GET", ad.ClickURL, 302, nil},
					{"GET", ad.NavigateURL, 204, nil},
					{"POST", ad.VisitURL, 204, map[string]any{"lat": ad.Store.Lat, "lng": ad.Store.Lng}},
				} {
					if g%3 == 1 && c.method == "POST" {
						continue
					}
					if r := te.do(c.method, strings.TrimPrefix(c.link, publicURL), "", c.body); r.Status != c.want {
						errs <- fmt.Errorf("%s %s: %d %s", c.method, c.link, r.Status, r.Body)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	te.flush()
	n := uint64(len(ads))
	want := storage.Counts{Served: n, Impressions: n, Clicks: n, Navigations: n, Visits: n}
	if got := te.report(adminKey, "").Totals.counts(); got != want {
		t.Fatalf("totals %+v, want %+v", got, want)
	}
}

func TestForgedAlteredExpiredTokens(t *testing.T) {
	te := newTrackedEnv(t)
	w := te.world()
	ad := te.ads(w.publisherKey)[0]
	tok := ad.ImpressionURL[strings.LastIndexByte(ad.ImpressionURL, '/')+1:]
	forger, err := tracking.NewSigner([]byte("a-guessed-secret-0123456789abcdefgh"))
	if err != nil {
		t.Fatal(err)
	}
	forged := string(forger.AppendToken(nil, &tracking.Claims{AdID: "x.1", CampaignID: w.campA, AdvertiserID: w.advA,
		PublisherID: w.publisher, StoreID: "shinjuku-1", StoreLat: 35.6905, StoreLng: 139.7005, Issued: time.Now()}))
	tests := []struct {
		name, tok string
		status    int
		code      string
	}{
		{"forged", forged, 400, campaigns.Invalid},
		{"altered", alter(tok, len(tok)/2), 400, campaigns.Invalid},
		{"truncated", tok[:len(tok)-3], 400, campaigns.Invalid},
		{"junk", "hello", 400, campaigns.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range []string{"/v1/i/", "/v1/c/", "/v1/n/"} {
				r := te.must(tt.status, te.do("GET", p+tt.tok, "", nil))
				if got := r.errorCode(t); got != tt.code {
					t.Fatalf("%s: code %s, want %s", p, got, tt.code)
				}
			}
			r := te.must(tt.status, te.do("POST", "/v1/v/"+tt.tok, "", map[string]any{"lat": 35.6905, "lng": 139.7005}))
			if got := r.errorCode(t); got != tt.code {
				t.Fatalf("visit: code %s, want %s", got, tt.code)
			}
		})
	}
	te.advance(24*time.Hour + time.Second)
	for _, link := range []string{ad.ImpressionURL, ad.ClickURL, ad.NavigateURL} {
		if got := te.must(410, te.do("GET", path(t, link), "", nil)).errorCode(t); got != campaigns.Gone {
			t.Fatalf("expired: code %s", got)
		}
	}
	te.must(410, te.do("POST", path(t, ad.VisitURL), "", map[string]any{"lat": ad.Store.Lat, "lng": ad.Store.Lng}))
	te.advance(-24*time.Hour - time.Second)
	te.flush()
	rep := te.report(adminKey, "")
	if got := rep.Totals.counts(); got != (storage.Counts{Served: 2}) {
		t.Fatalf("bad tokens counted: %+v", got)
	}
}

// TestTrackingAnswersHaveNoBody: a tracking URL answers with its status
// and headers alone. The click's 302 says where to go in Location, as the
// 204s say everything in their status: no HTML body (net/http's
// "<a href=…>Found</a>."), no Content-Type, from a JSON API.
func TestTrackingAnswersHaveNoBody(t *testing.T) {
	te := newTrackedEnv(t)
	w := te.world()
	ad := te.ads(w.publisherKey)[0]
	bot := []string{"User-Agent", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}
	at := map[string]any{"lat": ad.Store.Lat, "lng": ad.Store.Lng}
	tests := []struct {
		name, method, link string
		body               any
		header             []string
		want               int
	}{
		{"click", "GET", ad.ClickURL, nil, nil, 302},
		{"repeat click", "GET", ad.ClickURL, nil, nil, 302},
		{"bot click", "GET", ad.ClickURL, nil, bot, 302},
		{"click checked", "HEAD", ad.ClickURL, nil, nil, 302},
		{"impression", "GET", ad.ImpressionURL, nil, nil, 204},
		{"bot impression", "GET", ad.ImpressionURL, nil, bot, 204},
		{"impression checked", "HEAD", ad.ImpressionURL, nil, nil, 204},
		{"navigation", "GET", ad.NavigateURL, nil, nil, 204},
		{"navigation checked", "HEAD", ad.NavigateURL, nil, nil, 204},
		{"visit", "POST", ad.VisitURL, at, nil, 204},
		{"bot visit", "POST", ad.VisitURL, at, bot, 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := te.must(tt.want, te.do(tt.method, path(t, tt.link), "", tt.body, tt.header...))
			if len(r.Body) != 0 {
				t.Errorf("body %q, want none", r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "" {
				t.Errorf("Content-Type %q for no body", ct)
			}
			if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			if loc := r.Header.Get("Location"); tt.want == 302 && loc != ad.LandingURL {
				t.Errorf("Location %q, want %q", loc, ad.LandingURL)
			} else if tt.want != 302 && loc != "" {
				t.Errorf("Location %q on a %d", loc, tt.want)
			}
		})
	}
}

// TestClickAfterCampaignDeleted: a click's answer follows its campaign as
// it is now, whether or not the token clicked before. Once the campaign is
// deleted there is no landing page to send anyone to, so a repeat of a
// counted click and a first click alike get 410 gone and count nothing;
// the other URLs, which need no landing page, still count.
func TestClickAfterCampaignDeleted(t *testing.T) {
	te := newTrackedEnv(t)
	w := te.world()
	var clicked, fresh trackedAd
	for _, ad := range te.ads(w.publisherKey) {
		if ad.CampaignID == w.campA {
			clicked = ad
		}
	}
	for _, ad := range te.ads(w.publisherKey) {
		if ad.CampaignID == w.campA {
			fresh = ad
		}
	}
	if clicked.ClickURL == "" || fresh.ClickURL == "" || clicked.ClickURL == fresh.ClickURL {
		t.Fatalf("want two ads of campaign A from two decisions: %q, %q", clicked.ClickURL, fresh.ClickURL)
	}
	te.must(302, te.do("GET", path(t, clicked.ClickURL), "", nil))
	te.must(204, te.do("DELETE", "/v1/campaigns/"+w.campA, w.agencyKey, nil))

	repeat := te.must(410, te.do("GET", path(t, clicked.ClickURL), "", nil))
	first := te.must(410, te.do("GET", path(t, fresh.ClickURL), "", nil))
	for _, r := range []response{repeat, first} {
		if got := r.errorCode(t); got != campaigns.Gone {
			t.Fatalf("code %s, want %s", got, campaigns.Gone)
		}
		if loc := r.Header.Get("Location"); loc != "" {
			t.Fatalf("Location %q on a 410", loc)
		}
	}
	if !bytes.Equal(repeat.Body, first.Body) {
		t.Fatalf("repeat click %s, first click %s: want the same answer", repeat.Body, first.Body)
	}
	te.must(410, te.do("HEAD", path(t, clicked.ClickURL), "", nil))
	te.must(204, te.do("GET", path(t, fresh.ImpressionURL), "", nil))
	te.must(204, te.do("GET", path(t, clicked.NavigateURL), "", nil))
	te.flush()
	want := storage.Counts{Served: 2, Impressions: 1, Clicks: 1, Navigations: 1}
	if got := te.report(adminKey, "campaign_id="+w.campA).Totals.counts(); got != want {
		t.Fatalf("campaign A %+v, want %+v: only the click before the deletion counts", got, want)
	}
}

func TestBotsGetTheSameAnswer(t *testing.T) {
	te := newTrackedEnv(t)
	w := te.world()
	ad := te.ads(w.publisherKey)[0]
	bots := [][]string{
		{"User-Agent", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
		{"User-Agent", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"},
		{"Sec-Purpose", "prefetch"},
		{"Purpose", "prefetch"},
	}
	for _, h := range bots {
		te.must(204, te.do("GET", path(t, ad.ImpressionURL), "", nil, h...))
		r := te.must(302, te.do("GET", path(t, ad.ClickURL), "", nil, h...))
		if r.Header.Get("Location") != ad.LandingURL {
			t.Fatalf("bot click redirects to %q", r.Header.Get("Location"))
		}
		te.must(204, te.do("GET", path(t, ad.NavigateURL), "", nil, h...))
		te.must(204, te.do("POST", path(t, ad.VisitURL), "", map[string]any{"lat": ad.Store.Lat, "lng": ad.Store.Lng}, h...))
		te.must(422, te.do("POST", path(t, ad.VisitURL), "", map[string]any{"lat": ad.Store.Lat + 0.01, "lng": ad.Store.Lng}, h...))
	}
	// A link checker's HEAD is answered, not counted.
	te.must(204, te.do("HEAD", path(t, ad.ImpressionURL), "", nil))
	te.must(302, te.do("HEAD", path(t, ad.ClickURL), "", nil))
	te.flush()
	if got := te.report(adminKey, "").Totals.counts(); got != (storage.Counts{Served: 2}) {
		t.Fatalf("bots counted: %+v", got)
	}
	// The person behind the bot still counts.
	te.must(204, te.do("GET", path(t, ad.ImpressionURL), "", nil, "User-Agent", "Mozilla/5.0 (iPhone) Safari/604.1"))
	if got := te.report(adminKey, "").Totals.Impressions; got != 1 {
		t.Fatalf("impressions %d after a person's, want 1", got)
	}
}

func TestVisitRules(t *testing.T) {
	te := newTrackedEnv(t)
	w := te.world()
	ads := te.ads(w.publisherKey)
	ad := ads[0]
	v := path(t, ad.VisitURL)
	// 200 m north of the store: not a visit, whatever the accuracy.
	far := ad.Store.Lat + 200.0/111_195
	for _, acc := range []any{nil, 10, 300} {
		body := map[string]any{"lat": far, "lng": ad.Store.Lng}
		if acc != nil {
			body["acc"] = acc
		}
		if got := te.must(422, te.do("POST", v, "", body)).errorCode(t); got != campaigns.NotAtStore {
			t.Fatalf("200 m: code %s", got)
		}
	}
	for _, tt := range []struct {
		name   string
		body   any
		status int
	}{
		{"no body", nil, 400},
		{"not JSON", "lat=35", 400},
		{"no lng", map[string]any{"lat": ad.Store.Lat}, 400},
		{"lat out of range", map[string]any{"lat": 95, "lng": 139.7}, 400},
		{"negative acc", map[string]any{"lat": ad.Store.Lat, "lng": ad.Store.Lng, "acc": -3}, 400},
		{"lat a string", map[string]any{"lat": "35.69", "lng": ad.Store.Lng}, 400},
		{"huge", `{"lat":35.69,"lng":139.70,"pad":"` + strings.Repeat("x", 8<<10) + `"}`, 413},
	} {
		t.Run(tt.name, func(t *testing.T) { te.must(tt.status, te.do("POST", v, "", tt.body)) })
	}
	// At the store: counts, once.
	te.must(204, te.do("POST", v, "", map[string]any{"lat": ad.Store.Lat, "lng": ad.Store.Lng, "acc": 15}))
	te.must(204, te.do("POST", v, "", map[string]any{"lat": ad.Store.Lat, "lng": ad.Store.Lng, "acc": 15}))
	// The other ad's token names the other advertiser's store; altering it
	// to name this one breaks the signature.
	other := ads[1].VisitURL
	tok := alter(other[strings.LastIndexByte(other, '/')+1:], 40)
	te.must(400, te.do("POST", "/v1/v/"+tok, "", map[string]any{"lat": ad.Store.Lat, "lng": ad.Store.Lng}))
	// A token rewritten to name another store (shinjuku-2, 300 m north)
	// and visited there: the signature no longer matches.
	raw, err := base64.RawURLEncoding.DecodeString(ad.VisitURL[strings.LastIndexByte(ad.VisitURL, '/')+1:])
	if err != nil || !bytes.Contains(raw, []byte("shinjuku-1")) {
		t.Fatalf("token does not name the store: %v", err)
	}
	moved := base64.RawURLEncoding.EncodeToString(bytes.Replace(raw, []byte("shinjuku-1"), []byte("shinjuku-2"), 1))
	te.must(400, te.do("POST", "/v1/v/"+moved, "", map[string]any{"lat": 35.6930, "lng": 139.7010}))
	te.flush()
	rep := te.report(adminKey, "group_by=campaign")
	if rep.Totals.Visits != 1 {
		t.Fatalf("visits %d, want 1", rep.Totals.Visits)
	}
	for _, row := range rep.Rows {
		if want := map[bool]uint64{true: 1, false: 0}[row["campaign_id"] == ad.CampaignID]; rowCounts(row).Visits != want {
			t.Fatalf("row %v: visits, want %d", row, want)
		}
	}
}

// BenchmarkTrackImpression measures GET /v1/i/{token} through the gin
// engine, durably on the embedded store, with many requests in flight.
func BenchmarkTrackImpression(b *testing.B) {
	te := newTrackedEnv(b)
	d := te.tracking.NewDecision("pub", te.tracking.Now(), 35.6909, 139.7003)
	paths := make([]string, b.N)
	for i := range paths {
		l := te.tracking.Serve(&d, &tracking.Ad{AdID: fmt.Sprintf("r%d.1", i), CampaignID: "cmp", AdvertiserID: "adv", StoreID: "s", StoreLat: 35.69, StoreLng: 139.70})
		paths[i] = strings.TrimPrefix(l.Impression, publicURL)
	}
	var next atomic.Int64
	b.SetParallelism(128)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	defer func() { b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op") }()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", paths[next.Add(1)-1], nil)
			rec := &discardWriter{h: http.Header{}}
			te.handler.ServeHTTP(rec, req)
			if rec.status != 204 {
				b.Errorf("status %d", rec.status)
				return
			}
		}
	})
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	return len(b), nil
}
func (w *discardWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}

// alter flips the case of the first letter of tok at or after i: still
// URL-safe base64, but other bytes.
func alter(tok string, i int) string {
	b := []byte(tok)
	for ; i < len(b); i++ {
		if c := b[i] | 0x20; c >= 'a' && c <= 'z' {
			b[i] ^= 0x20
			return string(b)
		}
	}
	panic("no letter to alter")
}

// BenchmarkDecisionTracking measures GET /v1/ads (two ads) through the gin
// engine with tracking (served counts, signed URLs) and without, to show
// what tracking adds to a decision.
func BenchmarkDecisionTracking(b *testing.B) {
	for _, tracked := range []bool{false, true} {
		b.Run(map[bool]string{false: "untracked", true: "tracked"}[tracked], func(b *testing.B) {
			te := newTrackedEnv(b)
			if !tracked {
				te.server.Deps.Tracking = nil
			}
			pubKey := benchWorld(b, te.handler)
			p := adsPath(shinjuku("居酒屋"))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if n++; n%1024 == 0 {
					flushServed(b, te.tracking) // as the flush loop does every second
				}
				req, _ := http.NewRequest("GET", p, nil)
				req.Header.Set("Authorization", "Bearer "+pubKey)
				rec := &countingWriter{h: http.Header{}}
				te.handler.ServeHTTP(rec, req)
				if rec.status != 200 {
					b.Fatalf("status %d", rec.status)
				}
			}
		})
	}
}

// flushServed writes tracking's served counts off the benchmark's clock:
// what the flush loop does every second, so that the counts kept in memory
// do not grow with the number of iterations.
func flushServed(b *testing.B, svc *tracking.Service) {
	b.StopTimer()
	if err := svc.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
}

// benchWorld makes two advertisers with a beer campaign and two stores
// each, and a publisher, and returns the publisher's key.
func benchWorld(b *testing.B, h http.Handler) string { return benchWorldOf(b, h, 2, "") }

// benchWorldOf is benchWorld with n advertisers, whose campaigns' creative
// text is text.
func benchWorldOf(b *testing.B, h http.Handler, n int, text string) string {
	call := func(method, path, key string, body any) map[string]any {
		js, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, path, bytes.NewReader(js))
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 300 {
			b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		var m map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
		return m
	}
	for i := range n {
		adv := call("POST", "/v1/accounts", adminKey, map[string]any{"type": "advertiser", "name": fmt.Sprint("Brewer ", i)})
		key := adv["api_key"].(string)
		call("PUT", "/v1/stores", key, []map[string]any{
			{"id": "shinjuku-1", "name": "居酒屋 一号店", "lat": 35.6905, "lng": 139.7005, "products": []string{"beer-350"}},
			{"id": "shinjuku-2", "name": "居酒屋 二号店", "lat": 35.6930, "lng": 139.7010, "products": []string{"beer-350"}},
		})
		c := beerCampaign("")
		if text != "" {
			c["creative"] = map[string]any{"title": "乾杯", "text": text, "landing_url": "https://example.com/beer"}
		}
		call("POST", "/v1/campaigns", key, c)
	}
	pub := call("POST", "/v1/accounts", adminKey, map[string]any{"type": "publisher", "name": "Navi"})
	return pub["api_key"].(string)
}
