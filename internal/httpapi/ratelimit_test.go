package httpapi_test

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/navad/navad/internal/httpapi"
	"github.com/navad/navad/internal/storage/boltstore"
)

// TestRateLimitPerAccount: each account has its own token bucket, sized by
// its role; over it the answer is 429 rate_limited with Retry-After, and an
// account's keys share the bucket.
func TestRateLimitPerAccount(t *testing.T) {
	store, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	// A bucket of 3 that refills once in 1,000 s: no refill within a test.
	e := newEnvOpts(t, store, httpapi.Options{RatePublisher: 0.001, RateManagement: 0.001, RateBurst: 3}, nil)
	_, pub1 := e.account(adminKey, map[string]any{"type": "publisher", "name": "Navi 1"})
	_, pub2 := e.account(adminKey, map[string]any{"type": "publisher", "name": "Navi 2"})
	adv, advKey := e.account(adminKey, map[string]any{"type": "advertiser", "name": "Brewer"})

	limited := func(r response, who string) {
		t.Helper()
		if r.Status != 429 || r.errorCode(t) != "rate_limited" {
			t.Fatalf("%s: status %d, want 429 rate_limited: %s", who, r.Status, r.Body)
		}
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Fatalf("%s: Retry-After %q, want whole seconds ≥ 1", who, r.Header.Get("Retry-After"))
		}
	}
	ads := adsPath(shinjuku("居酒屋"))
	for range 3 {
		e.must(200, e.do("GET", ads, pub1, nil))
	}
	limited(e.do("GET", ads, pub1, nil), "publisher 1, 4th call")
	e.must(200, e.do("GET", ads, pub2, nil)) // another account is not affected
	limited(e.do("GET", "/v1/accounts/x", adminKey, nil), "admin, 4th call")

	// The advertiser rotates its key and keeps the old one: both keys
	// draw on the same bucket.
	rotated := e.must(201, e.do("POST", "/v1/accounts/"+adv+"/keys?keep_old=true", advKey, nil)).json(t)
	newKey := rotated["api_key"].(string)
	e.must(200, e.do("GET", "/v1/stores", newKey, nil))
	e.must(200, e.do("GET", "/v1/stores", advKey, nil))
	limited(e.do("GET", "/v1/stores", newKey, nil), "advertiser, new key")
	limited(e.do("GET", "/v1/stores", advKey, nil), "advertiser, old key")

	// No key, or a bad one, is 401 before any limit.
	if r := e.do("GET", ads, "nvd_wrong", nil); r.Status != 401 {
		t.Fatalf("bad key: %d", r.Status)
	}
}

// TestNewRefusesRatesNotFinite: a rate that is NaN, infinite or negative
// is refused when the server is built. (A NaN rate passed the checks once,
// and its bucket's arithmetic then refused every request for 146 years.)
func TestNewRefusesRatesNotFinite(t *testing.T) {
	deps := newEnv(t).server.Deps // real ones, built by the harness
	base := httpapi.Options{MaxBodyBytes: 1 << 20, MaxJSONBodyBytes: 1 << 16, MaxUploadRows: 10, MaxStockRows: 10,
		DecisionTimeout: time.Second, RatePublisher: 100, RateManagement: 10, RateBurst: 10}
	if _, err := httpapi.New(deps, base); err != nil {
		t.Fatalf("finite rates refused: %v", err)
	}
	for _, r := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1} {
		pub, mgmt := base, base
		pub.RatePublisher, mgmt.RateManagement = r, r
		for _, opt := range []httpapi.Options{pub, mgmt} {
			if _, err := httpapi.New(deps, opt); err == nil || !strings.Contains(err.Error(), "finite") {
				t.Errorf("rates %v and %v: %v, want refused as not finite", opt.RatePublisher, opt.RateManagement, err)
			}
		}
	}
}

// TestPublisherManagementCallsHaveTheManagementLimit: a publisher key's
// calls other than decisions (its account, its keys, its reports) draw on
// the management rate, in a bucket of their own, not on the far larger
// decision rate: the management limit protects storage from runaway
// scripts, whichever role runs them. (They were limited at the decision
// rate, 5,000 a second by default.) Its decisions are not held up by them.
func TestPublisherManagementCallsHaveTheManagementLimit(t *testing.T) {
	store, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	// Decisions: no limit a test reaches; management: a bucket of 3 that
	// refills once in 1,000 s.
	e := newEnvOpts(t, store, httpapi.Options{RatePublisher: 1e6, RateManagement: 0.001, RateBurst: 3}, nil)
	pub, pubKey := e.account(adminKey, map[string]any{"type": "publisher", "name": "Navi"})
	ads := adsPath(shinjuku("居酒屋"))
	for range 3 {
		e.must(200, e.do("GET", "/v1/accounts/"+pub, pubKey, nil))
	}
	r := e.do("GET", "/v1/accounts/"+pub, pubKey, nil)
	if r.Status != 429 || r.errorCode(t) != "rate_limited" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a publisher's 4th management call in a bucket of 3: %d %s, want 429 with Retry-After", r.Status, r.Body)
	}
	r = e.do("POST", "/v1/accounts/"+pub+"/keys?keep_old=true", pubKey, nil)
	if r.Status != 429 {
		t.Fatalf("a key rotation over the management limit: %d %s, want 429", r.Status, r.Body)
	}
	// Decisions have their own bucket: still served, more than the
	// management burst of them.
	for i := range 10 {
		if r := e.do("GET", ads, pubKey, nil); r.Status != 200 {
			t.Fatalf("decision %d after the management bucket ran dry: %d %s", i+1, r.Status, r.Body)
		}
	}
}
