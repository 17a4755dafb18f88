package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/internal/redistest"
)

// propagation is how soon a write made through one replica must reach the
// decisions of every other (the bound; the feed is polled every
// 100 ms).
const propagation = time.Second

// startReplica runs the real wiring on the shared Redis at url, with more
// NAVAD_* variables in envPairs (name, value, …). Its publisher rate limit
// is lifted: these tests fire decisions flat out to see every one answered,
// which is not what rate limits are about.
func startReplica(t *testing.T, url string, envPairs ...string) (*Main, client) {
	t.Helper()
	m := NewMain(io.Discard, io.Discard)
	args := []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--redis-url", url}
	envPairs = append([]string{"NAVAD_ADMIN_KEY", adminKey, "NAVAD_RATE_PUBLISHER", "1000000", "NAVAD_RATE_BURST", "100000"}, envPairs...)
	if err := m.ParseFlags(args, env(envPairs...)); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, client{t, "http://" + m.Addr()}
}

// world is what seedWorld writes.
type world struct {
	advID, advKey, pubID, pubKey, campaignID string
}

// seedWorld writes through c the same small world as seed, and returns its
// names and keys.
func seedWorld(c client) world {
	adv := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "advertiser", "name": "Brewer"})
	pub := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "publisher", "name": "Navi"})
	w := world{advID: adv["id"].(string), advKey: adv["api_key"].(string), pubID: pub["id"].(string), pubKey: pub["api_key"].(string)}
	c.must(200, "PUT", "/v1/stores", w.advKey, []map[string]any{
		{"id": "near", "name": "近い店", "lat": 35.6905, "lng": 139.7005, "products": []string{"beer"}},
		{"id": "far", "name": "遠い店", "lat": 35.6950, "lng": 139.7005, "products": []string{"beer"}},
	})
	camp := c.must(201, "POST", "/v1/campaigns", w.advKey, map[string]any{
		"name": "beer", "keywords": []map[string]any{{"text": "居酒屋", "match": "broad"}},
		"product_id": "beer", "radius_m": 1000,
		"creative": map[string]any{"title": "乾杯", "landing_url": "https://example.com/"},
	})
	w.campaignID = camp["id"].(string)
	c.must(200, "PUT", "/v1/inventory", w.advKey, []map[string]any{{"store_id": "near", "product_id": "beer", "in_stock": false}})
	return w
}

// served returns the status of an izakaya search near Shinjuku and the
// store of its one ad ("" for no ad).
func served(c client, key string) (int, string) {
	c.t.Helper()
	status, body := c.call("GET", "/v1/ads?lat=35.6909&lng=139.7003&q="+url.QueryEscape("居酒屋"), key, nil)
	if status != 200 {
		return status, ""
	}
	var r struct {
		Ads []struct {
			Store struct {
				ID string `json:"id"`
			} `json:"store"`
		} `json:"ads"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		c.t.Fatalf("ads: %v: %s", err, body)
	}
	if len(r.Ads) == 0 {
		return status, ""
	}
	return status, r.Ads[0].Store.ID
}

// within fails the test unless cond holds within d of now.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
}

// TestReplicasShareWrites: two replicas on one Redis; each kind of write
// made through one reaches the other's decisions within a second.
func TestReplicasShareWrites(t *testing.T) {
	srv := redistest.Start(t)
	_, a := startReplica(t, srv.URL())
	_, b := startReplica(t, srv.URL())
	w := seedWorld(a)

	storeIs := func(c client, key, want string) func() bool {
		return func() bool { s, st := served(c, key); return s == 200 && st == want }
	}
	within(t, propagation, "b serves what a created (near is out of stock)", storeIs(b, w.pubKey, "far"))

	a.must(200, "PUT", "/v1/inventory", w.advKey, []map[string]any{{"store_id": "near", "product_id": "beer", "in_stock": true}})
	within(t, propagation, "stock back in on a reaches b", storeIs(b, w.pubKey, "near"))

	b.must(200, "POST", "/v1/campaigns/"+w.campaignID+"/pause", w.advKey, nil)
	within(t, propagation, "pause on b reaches a", storeIs(a, w.pubKey, ""))
	a.must(200, "PATCH", "/v1/campaigns/"+w.campaignID, w.advKey, map[string]any{"status": "active"})
	within(t, propagation, "resume on a reaches b", storeIs(b, w.pubKey, "near"))

	b.must(204, "DELETE", "/v1/stores/near", w.advKey, nil)
	within(t, propagation, "store deleted on b is gone on a", storeIs(a, w.pubKey, "far"))
	a.must(200, "PUT", "/v1/stores", w.advKey, []map[string]any{
		{"id": "nearest", "name": "一番近い店", "lat": 35.6909, "lng": 139.7004, "products": []string{"beer"}},
	})
	within(t, propagation, "store added on a reaches b", storeIs(b, w.pubKey, "nearest"))

	// A publisher key rotated on a stops working on b, which had it cached.
	if s, _ := served(b, w.pubKey); s != 200 {
		t.Fatalf("old key on b: %d", s)
	}
	rot := a.must(201, "POST", "/v1/accounts/"+w.pubID+"/keys", adminKey, nil)
	newKey := rot["api_key"].(string)
	within(t, propagation, "rotated key refused on b", func() bool { s, _ := served(b, w.pubKey); return s == 401 })
	if s, st := served(b, newKey); s != 200 || st != "nearest" {
		t.Fatalf("new key on b: %d %q", s, st)
	}

	a.must(204, "DELETE", "/v1/campaigns/"+w.campaignID, w.advKey, nil)
	within(t, propagation, "campaign deleted on a is gone on b", storeIs(b, newKey, ""))
}

// TestReplicaStartedLaterCatchesUp: a replica started after the writes
// serves all of them as soon as it listens.
func TestReplicaStartedLaterCatchesUp(t *testing.T) {
	srv := redistest.Start(t)
	_, a := startReplica(t, srv.URL())
	w := seedWorld(a)
	a.must(200, "PUT", "/v1/stores", w.advKey, []map[string]any{
		{"id": "nearest", "name": "一番近い店", "lat": 35.6909, "lng": 139.7004, "products": []string{"beer"}},
	})
	a.must(200, "PUT", "/v1/inventory", w.advKey, []map[string]any{{"store_id": "nearest", "product_id": "beer", "in_stock": false}})
	want := a.must(200, "GET", "/v1/campaigns/"+w.campaignID, adminKey, nil)

	_, b := startReplica(t, srv.URL())
	if s, st := served(b, w.pubKey); s != 200 || st != "far" {
		t.Fatalf("late replica serves %d %q, want far (near and nearest are out of stock)", s, st)
	}
	if got := b.must(200, "GET", "/v1/campaigns/"+w.campaignID, adminKey, nil); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("campaign on the late replica:\n%v\nwant\n%v", got, want)
	}
	b.must(200, "GET", "/readyz", "", nil)
}

// raw is a request made from a goroutine other than the test's: it returns
// what happened instead of failing the test.
func raw(method, u, key string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestRedisOutage kills Redis in the middle of a stream of decisions and
// writes on two replicas, then starts it again: decisions never fail,
// writes answer 503 unavailable while it is down and succeed again after,
// /readyz says degraded and then ready, every acknowledged write is kept,
// and both replicas end up serving exactly what Redis holds.
func TestRedisOutage(t *testing.T) {
	srv := redistest.StartDurable(t) // the crash must lose nothing acknowledged
	ma, a := startReplica(t, srv.URL())
	mb, b := startReplica(t, srv.URL())
	w := seedWorld(a)
	within(t, propagation, "b serves the seeded world", func() bool { s, st := served(b, w.pubKey); return s == 200 && st == "far" })

	var (
		stop      atomic.Bool
		wg        sync.WaitGroup
		mu        sync.Mutex
		problems  []string
		decisions atomic.Int64
		acked     []string // campaigns whose creation was acknowledged
		refused   atomic.Int64
		afterDown atomic.Int64 // acknowledged writes after the first refusal
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
		mu.Unlock()
	}
	adsURL := "/v1/ads?lat=35.6909&lng=139.7003&q=" + url.QueryEscape("居酒屋")
	for _, c := range []client{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				status, body, err := raw("GET", c.base+adsURL, w.pubKey, nil)
				if err != nil || status != 200 || !strings.Contains(string(body), `"id":"far"`) {
					problem("decision on %s: %d %v %s", c.base, status, err, body)
				}
				decisions.Add(1)
			}
		}()
	}
	wg.Add(1)
	go func() { // the writer: campaigns that a ramen search triggers
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			c := []client{a, b}[i%2]
			status, body, err := raw("POST", c.base+"/v1/campaigns", w.advKey, map[string]any{
				"name": fmt.Sprintf("ramen %d", i), "keywords": []map[string]any{{"text": "ラーメン", "match": "broad"}},
				"product_id": "beer", "radius_m": 1000,
				"creative": map[string]any{"title": "替え玉", "landing_url": "https://example.com/"},
			})
			switch {
			case err != nil:
				problem("write: %v", err)
			case status == 201:
				var got struct{ ID string }
				_ = json.Unmarshal(body, &got)
				mu.Lock()
				acked = append(acked, got.ID)
				mu.Unlock()
				if refused.Load() > 0 {
					afterDown.Add(1)
				}
			case status == 503 && strings.Contains(string(body), `"code":"unavailable"`):
				refused.Add(1)
			default:
				problem("write: %d %s", status, body)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	time.Sleep(300 * time.Millisecond)
	srv.Kill() // a crash: what Redis acknowledged is in its append-only file
	within(t, 5*time.Second, "writes refused with Redis down", func() bool { return refused.Load() >= 5 })
	for _, c := range []client{a, b} {
		got := c.must(200, "GET", "/readyz", "", nil)
		if got["status"] != "degraded" {
			t.Errorf("readyz on %s with Redis down: %v, want degraded", c.base, got)
		}
	}
	time.Sleep(300 * time.Millisecond) // decisions keep flowing meanwhile
	srv.Restart()
	within(t, 10*time.Second, "writes acknowledged again after Redis is back", func() bool { return afterDown.Load() >= 5 })
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d decisions answered, %d writes acknowledged, %d refused", decisions.Load(), len(acked), refused.Load())

	// Every acknowledged write survived the crash.
	list := b.must(200, "GET", "/v1/campaigns?advertiser_id="+w.advID, adminKey, nil)
	var stored []string
	for _, c := range list["campaigns"].([]any) {
		stored = append(stored, c.(map[string]any)["id"].(string))
	}
	for _, id := range acked {
		if !slices.Contains(stored, id) {
			t.Errorf("acknowledged campaign %s lost", id)
		}
	}
	// Both replicas converge on what Redis holds (a write refused while
	// Redis died may or may not have landed; the replicas agree with Redis).
	for _, m := range []*Main{ma, mb} {
		within(t, 5*time.Second, "replica serves every stored campaign", func() bool {
			return m.Index.Snapshot().Campaigns() == len(stored)
		})
	}
	for _, c := range []client{a, b} {
		within(t, 5*time.Second, "readyz ready again", func() bool {
			_, body := c.call("GET", "/readyz", "", nil)
			return strings.Contains(string(body), `"status":"ready"`)
		})
	}
}

// TestCapErrorsInMetrics: with Redis down, a frequency-capped campaign's
// reservations fail (it is served uncapped: it fails open, package pacing)
// and navad_caps_errors_total counts them; before, the count was kept but
// not exported, so only a log line at most every 10 s told of it.
func TestCapErrorsInMetrics(t *testing.T) {
	srv := redistest.Start(t)
	_, c := startReplica(t, srv.URL())
	w := seedWorld(c)
	c.must(200, "PATCH", "/v1/campaigns/"+w.campaignID, w.advKey, map[string]any{"frequency_cap": map[string]any{"impressions": 5, "per": "24h"}})
	search := "/v1/ads?lat=35.6909&lng=139.7003&q=" + url.QueryEscape("居酒屋") + "&uid="
	within(t, propagation, "the capped campaign served", func() bool {
		got := c.must(200, "GET", search+"alice", w.pubKey, nil)
		return len(got["ads"].([]any)) == 1
	})
	// The replica applies its own writes again from the feed, and an
	// account's record empties the cache of the account's keys: wait for
	// the records of seedWorld's accounts, then have the publisher's key
	// cached again, so that decisions go on while Redis is down (a key
	// not cached is 503 then).
	time.Sleep(propagation)
	c.must(200, "GET", search+"alice", w.pubKey, nil)
	if got := scrape(t, c.base)["navad_caps_errors_total"]; got != 0 {
		t.Fatalf("navad_caps_errors_total %v with Redis up, want 0", got)
	}
	srv.Kill()
	for i := range 3 {
		got := c.must(200, "GET", search+fmt.Sprintf("user%d", i), w.pubKey, nil)
		if n := len(got["ads"].([]any)); n != 1 {
			t.Fatalf("decision %d with Redis down: %d ads of a frequency-capped campaign, want 1 (it fails open)", i, n)
		}
	}
	if got := scrape(t, c.base)["navad_caps_errors_total"]; got < 1 {
		t.Fatalf("navad_caps_errors_total %v after reservations failed with Redis down, want at least 1", got)
	}
}
