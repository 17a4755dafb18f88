package naive_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/loadtest/dataset"
	"github.com/navad/navad/loadtest/driver"
	"github.com/navad/navad/loadtest/naive"
)

// TestAnswersAsNavadDoes checks that the naive design answers the same
// requests with the same campaigns as navad's engine, where the two can
// agree: when every ad navad returns is within the naive radius.
func TestAnswersAsNavadDoes(t *testing.T) {
	ctx := context.Background()
	p, addr, err := driver.StartRedis(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err) // make deps installs redis-server
	}
	defer p.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()

	w, err := dataset.Generate(dataset.Config{Seed: 4, Stores: 20_000, Advertisers: 40, Agencies: 4, Publishers: 2, Products: 300, Campaigns: 400})
	if err != nil {
		t.Fatal(err)
	}
	if err := naive.Load(ctx, rdb, w); err != nil {
		t.Fatal(err)
	}
	if err := naive.Load(ctx, rdb, w); err != nil { // a second load is a no-op
		t.Fatal(err)
	}
	if n := rdb.ZCard(ctx, naive.GeoKey).Val(); n != int64(len(w.Stores)) {
		t.Fatalf("geo set holds %d stores, want %d", n, len(w.Stores))
	}
	// Both at a fixed instant: the naive server reads the wall clock, so
	// put its business zone where the wall clock is 19:xx.
	loc, _ := time.LoadLocation(driver.EveningZone(time.Now(), 19))
	s, err := naive.NewServer(rdb, w, 800, loc)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := dataset.BuildIndex(w)
	if err != nil {
		t.Fatal(err)
	}
	e, err := serving.NewEngine(ix, loc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	compared, agreed, neutral := 0, 0, 0
	for _, r := range w.Requests(400, 9) {
		now := time.Now()
		ads, err := e.Decide(ctx, &serving.Request{Lat: r.Lat, Lng: r.Lng, Query: r.Query, N: 10, Mode: r.Mode,
			PublisherID: w.Publishers[0].ID, Now: now}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		far := false
		for _, a := range ads {
			want = append(want, a.Campaign.ID)
			far = far || a.DistanceM > 790
		}
		v := url.Values{"lat": {strconv.FormatFloat(r.Lat, 'f', -1, 64)}, "lng": {strconv.FormatFloat(r.Lng, 'f', -1, 64)},
			"q": {r.Query}, "n": {"10"}, "mode": {string(r.Mode)}}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/v1/ads?"+v.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+w.Key(w.Publishers[0].ID))
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("naive answered %d: %s", rec.Code, rec.Body)
		}
		var body struct {
			Ads []struct {
				CampaignID string `json:"campaign_id"`
			} `json:"ads"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range body.Ads {
			got = append(got, a.CampaignID)
		}
		if r.Kind == dataset.Neutral {
			neutral++
			if len(got) != 0 {
				t.Fatalf("neutral search %q got ads %v", r.Query, got)
			}
		}
		if far || len(want) == 10 {
			continue
		}
		compared++
		slices.Sort(want)
		slices.Sort(got)
		if slices.Equal(want, got) {
			agreed++
		} else if testing.Verbose() {
			t.Logf("%q at %.5f,%.5f: navad %v, naive %v", r.Query, r.Lat, r.Lng, want, got)
		}
	}
	// Distances differ in the last metre (Redis stores geohashes), so a
	// store right at a campaign's radius may fall either side.
	t.Logf("agreed on %d of %d requests compared (%d neutral)", agreed, compared, neutral)
	if compared < 200 || agreed < compared*97/100 || neutral == 0 {
		t.Errorf("agreed on %d of %d requests compared (%d neutral)", agreed, compared, neutral)
	}
}

func TestRejectsBadRequests(t *testing.T) {
	w, err := dataset.Generate(dataset.Config{Seed: 4, Stores: 2_000, Advertisers: 20, Publishers: 1, Products: 20, Campaigns: 20})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never reached
	defer rdb.Close()
	s, err := naive.NewServer(rdb, w, 800, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"lat=x&lng=1&q=a", "lat=1&lng=1", "lat=91&lng=1&q=a", "lat=1&lng=1&q=a&n=11"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/ads?"+q, nil))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", q, rec.Code)
		}
	}
	if _, err := naive.NewServer(nil, w, 800, time.UTC); err == nil {
		t.Error("NewServer without Redis: want an error")
	}
}
