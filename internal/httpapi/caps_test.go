package httpapi_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/navad/navad/internal/pacing"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage/boltstore"
)

// withCaps is the server's wiring of caps: the embedded counters in the
// store's file, behind the pacer.
func withCaps(t *testing.T, store *boltstore.Store, loc *time.Location) serving.Pacer {
	t.Helper()
	caps, err := boltstore.NewCaps(store, boltstore.CapsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caps.Close() }) // before the store's, which was registered first
	p, err := pacing.New(caps, loc, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCapsThroughHTTP: frequency caps per uid, daily caps by business day in
// NAVAD_TIMEZONE and total caps, counted on served ads (no impression URL is
// ever fired here), and changed by a PATCH at once.
func TestCapsThroughHTTP(t *testing.T) {
	tokyo := mustLocation(t, "Asia/Tokyo")
	clock := newFakeClock(time.Date(2026, 11, 27, 22, 0, 0, 0, tokyo)) // Friday 22:00
	e := newEnvWith(t, envConfig{loc: tokyo, clock: clock, pacer: withCaps})
	w := e.world()
	// Only B's campaign runs, with caps.
	e.must(200, e.do("POST", "/v1/campaigns/"+w.campA+"/pause", w.advAKey, nil))
	e.must(200, e.do("PATCH", "/v1/campaigns/"+w.campB, w.advBKey, map[string]any{
		"frequency_cap": map[string]any{"impressions": 2, "per": "24h"},
		"budget":        map[string]any{"daily_impressions": 3, "total_impressions": 4},
	}))
	served := func(uid string) int {
		t.Helper()
		v := shinjuku("居酒屋")
		if uid != "" {
			v.Set("uid", uid)
		}
		r := e.must(200, e.do("GET", "/v1/ads?"+v.Encode(), w.publisherKey, nil))
		var body adsBody
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		return len(body.Ads)
	}
	steps := []struct {
		at   time.Time
		uid  string
		want int
	}{
		{clock.Now(), "u1", 1},
		{clock.Now(), "u1", 1},
		{clock.Now(), "u1", 0}, // two per 24h for u1
		{clock.Now(), "u2", 1}, // the third today: the daily cap
		{clock.Now(), "u3", 0},
		{clock.Now(), "", 0},
		// 23:59 is still Friday in Tokyo; 00:00 is Saturday, a new day.
		{time.Date(2026, 11, 27, 23, 59, 59, 0, tokyo), "u3", 0},
		{time.Date(2026, 11, 28, 0, 0, 0, 0, tokyo), "u3", 1}, // the fourth: the total cap
		{time.Date(2026, 11, 28, 0, 0, 0, 0, tokyo), "u4", 0},
	}
	for i, s := range steps {
		clock.Set(s.at)
		if got := served(s.uid); got != s.want {
			t.Fatalf("step %d (uid %q at %s): %d ads, want %d", i, s.uid, s.at.Format(time.RFC3339), got, s.want)
		}
	}
	// Raising the total serves again at once; u1's window, opened Friday
	// 22:00, still holds at Saturday 21:59 and is over at 22:00.
	e.must(200, e.do("PATCH", "/v1/campaigns/"+w.campB, w.advBKey, map[string]any{"budget": map[string]any{"daily_impressions": 3, "total_impressions": 100}}))
	if got := served("u4"); got != 1 {
		t.Fatalf("after raising the total: %d ads, want 1", got)
	}
	clock.Set(time.Date(2026, 11, 28, 21, 59, 0, 0, tokyo))
	if got := served("u1"); got != 0 {
		t.Fatalf("u1 at 21:59 the next day: %d ads, want 0", got)
	}
	clock.Set(time.Date(2026, 11, 28, 22, 0, 0, 0, tokyo))
	if got := served("u1"); got != 1 {
		t.Fatalf("u1 24 hours after the first ad: %d ads, want 1", got)
	}
	// Removing the caps (a merge patch with null) leaves the campaign uncapped.
	e.must(200, e.do("PATCH", "/v1/campaigns/"+w.campB, w.advBKey, map[string]any{"frequency_cap": nil, "budget": nil}))
	for range 5 {
		if got := served("u1"); got != 1 {
			t.Fatalf("uncapped: %d ads, want 1", got)
		}
	}
}
