package pacing_test

import (
	"context"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/pacing"
	"github.com/navad/navad/internal/serving"
)

// A reservation whose decision is over before the backend answers (its
// deadline passed while the backend went on answering others: an
// overloaded process) refuses the ad whatever the outage policy. The
// policy served frequency-capped ads then, uncounted: a user at the cap
// went on seeing the ad for as long as the process was overloaded.

// TestBusyReplicaRefusesFrequencyCappedAd: README, "Caps during an
// outage": a reservation that misses its deadline while the backend goes
// on answering others is a busy replica, not an outage: only that ad is
// refused.
func TestBusyReplicaRefusesFrequencyCappedAd(t *testing.T) {
	caps := &slowCaps{waiting: make(chan struct{})}
	p, err := pacing.New(caps, time.UTC, discard())
	if err != nil {
		t.Fatal(err)
	}
	fc := &campaigns.FrequencyCap{Impressions: 1, Per: "24h"}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	done := make(chan bool)
	go func() { done <- p.Allow(ctx, capped("slow", 0, 0, fc), "u1", time.Now()) }()
	<-caps.waiting
	if !p.Allow(t.Context(), capped("fast", 0, 0, fc), "u1", time.Now()) { // the backend answers others
		t.Fatal("a reservation the backend accepts was refused")
	}
	if <-done {
		t.Fatal("a frequency-capped ad whose reservation missed its deadline while the backend answered others was served")
	}
}

// TestLateDecisionServesNoUncountedAd: decisions past their deadline on the
// embedded store serve no frequency-capped ad beyond the user's cap.
func TestLateDecisionServesNoUncountedAd(t *testing.T) {
	caps := embeddedCaps(t)
	tokyo := location(t, "Asia/Tokyo")
	p, err := pacing.New(caps, tokyo, discard())
	if err != nil {
		t.Fatal(err)
	}
	ix := serving.NewIndex()
	if err := ix.PutStores("adv", []campaigns.Store{{ID: "s", Name: "s", Lat: 35.69, Lng: 139.70, Products: []string{"a"}}}); err != nil {
		t.Fatal(err)
	}
	c := &campaigns.Campaign{ID: "cmp_freq", AdvertiserID: "adv", Name: "f", ProductID: "a",
		Keywords:     []campaigns.Keyword{{Text: "居酒屋", Match: campaigns.Broad}},
		Creative:     campaigns.Creative{Title: "f", LandingURL: "https://example.com/"},
		FrequencyCap: &campaigns.FrequencyCap{Impressions: 1, Per: "24h"}}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ix.PutCampaign(c)
	now := time.Date(2026, 11, 27, 20, 0, 0, 0, tokyo)
	e, err := serving.NewEngine(ix, tokyo, func() time.Time { return now }, p)
	if err != nil {
		t.Fatal(err)
	}
	req := func(ctx context.Context) int {
		ads, err := e.Decide(ctx, &serving.Request{Lat: 35.69, Lng: 139.70, Query: "居酒屋", N: 1, Mode: campaigns.Walk, UID: "u1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(ads)
	}
	served := req(t.Context()) // u1's one ad of the day, counted
	if req(t.Context()) != 0 {
		t.Fatal("capped user served in time")
	}
	// Decisions whose 50 ms deadline has passed (an overloaded process).
	late, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel()
	for range 5 {
		ads, err := e.Decide(late, &serving.Request{Lat: 35.69, Lng: 139.70, Query: "居酒屋", N: 1, Mode: campaigns.Walk, UID: "u1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		served += len(ads)
	}
	n, err := caps.Served(t.Context(), "cmp_freq", "2026-11-27", "u1", now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ads served to u1: %d; counted in u1's window: %d; counted in total: %d", served, n.User, n.Total)
	if served > 1 || int64(served) != n.User {
		t.Fatalf("frequency_cap 1 per 24h: u1 was served %d ads, %d counted", served, n.User)
	}
}

// TestLateLeasedDecisionRefused: on Redis, an ad of a budgeted campaign
// taken from the replica's lease still asks for its user's window; a
// decision past its deadline is refused rather than served past the cap.
func TestLateLeasedDecisionRefused(t *testing.T) {
	_, caps := redisCaps(t)
	p := leasing(t, caps)
	c := capped("cmp_1", 0, 100000, &campaigns.FrequencyCap{Impressions: 1, Per: "24h"})
	// Other users warm the campaign's lease up, as traffic would.
	for i := range 22 {
		if !p.Allow(t.Context(), c, "warm"+string(rune('a'+i)), time.Now()) {
			t.Fatal("refused under its caps")
		}
	}
	if !p.Allow(t.Context(), c, "u1", time.Now()) || p.Allow(t.Context(), c, "u1", time.Now()) {
		t.Fatal("u1's one ad of its window: want served once, then refused")
	}
	late, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel()
	served := 1 // the one in time
	for range 5 {
		if p.Allow(late, c, "u1", time.Now()) {
			served++
		}
	}
	now := time.Now().UTC()
	n, err := caps.Served(t.Context(), "cmp_1", now.Format(time.DateOnly), "u1", now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("late decisions: u1 served %d ads, %d counted in u1's window", served, n.User)
	if served > 1 {
		t.Fatalf("frequency_cap 1 per 24h: u1 served %d ads (%d counted in its window)", served, n.User)
	}
}
