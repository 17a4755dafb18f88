package main

import (
	"net/url"
	"testing"
)

// TestCapsSurviveRestart: delivery counts are kept across a restart, so a
// spent cap stays spent.
func TestCapsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir)
	c := client{t, "http://" + m.Addr()}
	pubKey, campID := seed(c)
	c.must(200, "PATCH", "/v1/campaigns/"+campID, adminKey, map[string]any{"budget": map[string]any{"total_impressions": 2}})
	ads := func(c client) int {
		body := c.must(200, "GET", "/v1/ads?lat=35.6909&lng=139.7003&q="+url.QueryEscape("居酒屋"), pubKey, nil)
		return len(body["ads"].([]any))
	}
	for i, want := range []int{1, 1, 0} {
		if got := ads(c); got != want {
			t.Fatalf("decision %d: %d ads, want %d", i, got, want)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := startMain(t, dir)
	c2 := client{t, "http://" + m2.Addr()}
	if got := ads(c2); got != 0 {
		t.Fatalf("after a restart a spent total cap served %d ads", got)
	}
	c2.must(200, "PATCH", "/v1/campaigns/"+campID, adminKey, map[string]any{"budget": map[string]any{"total_impressions": 3}})
	if got := ads(c2); got != 1 {
		t.Fatalf("after raising the cap: %d ads, want 1", got)
	}
}

// TestMaxUserWindows: --max-user-windows bounds the frequency caps' open
// per-user windows; past it a new user is served as if without uid, a
// user with a window stays capped, and /metrics tells both.
func TestMaxUserWindows(t *testing.T) {
	m := startMain(t, t.TempDir(), "--max-user-windows", "1")
	c := client{t, "http://" + m.Addr()}
	pubKey, campID := seed(c)
	c.must(200, "PATCH", "/v1/campaigns/"+campID, adminKey, map[string]any{"frequency_cap": map[string]any{"impressions": 1, "per": "24h"}})
	ads := func(uid string) int {
		body := c.must(200, "GET", "/v1/ads?lat=35.6909&lng=139.7003&q="+url.QueryEscape("居酒屋")+"&uid="+uid, pubKey, nil)
		return len(body["ads"].([]any))
	}
	for i, tc := range []struct {
		uid  string
		want int
	}{
		{"alice", 1}, // opens the one window
		{"alice", 0}, // capped by it
		{"bob", 1},   // no room for a window: served uncapped
		{"bob", 1},   // and again
	} {
		if got := ads(tc.uid); got != tc.want {
			t.Fatalf("decision %d for %s: %d ads, want %d", i, tc.uid, got, tc.want)
		}
	}
	got := scrape(t, c.base)
	if got["navad_caps_user_windows"] != 1 || got["navad_caps_unwindowed_ads_total"] != 2 {
		t.Errorf("metrics: %v open windows, %v unwindowed ads; want 1 and 2",
			got["navad_caps_user_windows"], got["navad_caps_unwindowed_ads_total"])
	}
}
