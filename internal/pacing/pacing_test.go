package pacing_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/pacing"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
)

func location(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func embeddedCaps(t testing.TB) storage.Caps {
	t.Helper()
	store, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	caps, err := boltstore.NewCaps(store, boltstore.CapsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caps.Close(); _ = store.Close() })
	return caps
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)) }

// capped returns a served campaign with the given caps; the pacer reads
// only the advertiser's campaign fields.
func capped(id string, daily, total int64, fc *campaigns.FrequencyCap) *serving.Campaign {
	return &serving.Campaign{Campaign: &campaigns.Campaign{ID: id,
		Budget: campaigns.Budget{DailyImpressions: daily, TotalImpressions: total}, FrequencyCap: fc}}
}

// countingCaps records reservations and answers from a function.
type countingCaps struct {
	mu       sync.Mutex
	calls    []storage.CapRequest
	leases   []int64 // what each Lease asked for
	returned int64
	answer   func(storage.CapRequest) (bool, error)
}

func (c *countingCaps) Reserve(_ context.Context, r storage.CapRequest) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, r)
	if c.answer == nil {
		return true, nil
	}
	return c.answer(r)
}

func (c *countingCaps) Served(context.Context, string, string, string, time.Time) (storage.CapCounts, error) {
	return storage.CapCounts{}, nil
}

// Lease grants what is asked, or fails as answer says.
func (c *countingCaps) Lease(_ context.Context, r storage.CapRequest, want int64, _ storage.LeaseID) (int64, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leases = append(c.leases, want)
	if c.answer != nil {
		if ok, err := c.answer(r); err != nil || !ok {
			return 0, 0, err
		}
	}
	return want, math.MaxInt64, nil
}

func (c *countingCaps) Return(_ context.Context, _, _ string, n int64, _ storage.GiveBack) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.returned += n
	return nil
}

func (c *countingCaps) Close() error { return nil }

func TestUncappedNeverAsks(t *testing.T) {
	caps := &countingCaps{}
	p, err := pacing.New(caps, time.UTC, discard())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, c := range []*serving.Campaign{
		capped("none", 0, 0, nil),
		capped("freq, no uid", 0, 0, &campaigns.FrequencyCap{Impressions: 1, Per: "24h"}),
	} {
		if !p.Allow(t.Context(), c, "", now) {
			t.Fatalf("%s refused", c.ID)
		}
	}
	if len(caps.calls) != 0 {
		t.Fatalf("uncapped ads asked the backend: %+v", caps.calls)
	}
	// A frequency cap with a uid asks; without a uid the request carries
	// no user, so only delivery caps apply.
	p.Allow(t.Context(), capped("freq", 0, 0, &campaigns.FrequencyCap{Impressions: 2, Per: "7d"}), "u1", now)
	p.Allow(t.Context(), capped("daily", 10, 0, &campaigns.FrequencyCap{Impressions: 2, Per: "7d"}), "", now)
	if len(caps.calls) != 2 {
		t.Fatalf("calls %+v", caps.calls)
	}
	if r := caps.calls[0]; r.UID != "u1" || r.UserLimit != 2 || r.UserPeriod != 7*24*time.Hour {
		t.Fatalf("frequency request %+v", r)
	}
	if r := caps.calls[1]; r.UID != "" || r.UserLimit != 0 || r.DailyLimit != 10 {
		t.Fatalf("daily request without uid %+v", r)
	}
}

// TestDailyCapByBusinessDay: the daily cap resets at midnight in the
// business time zone, not at midnight UTC.
func TestDailyCapByBusinessDay(t *testing.T) {
	for _, tt := range []struct {
		zone           string
		before, after  time.Time // either side of the zone's midnight
		sameDayInTokyo bool
	}{
		{zone: "Asia/Tokyo",
			before: time.Date(2026, 11, 27, 14, 59, 0, 0, time.UTC), // 23:59 JST
			after:  time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)}, // 00:00 JST
		{zone: "America/Los_Angeles",
			before: time.Date(2026, 11, 28, 7, 59, 0, 0, time.UTC), // 23:59 PST
			after:  time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)}, // 00:00 PST
	} {
		t.Run(tt.zone, func(t *testing.T) {
			p, err := pacing.New(embeddedCaps(t), location(t, tt.zone), discard())
			if err != nil {
				t.Fatal(err)
			}
			c := capped("cmp_1", 2, 0, nil)
			var got []bool
			for _, at := range []time.Time{tt.before, tt.before, tt.before, tt.after, tt.after, tt.after} {
				got = append(got, p.Allow(t.Context(), c, "", at))
			}
			want := []bool{true, true, false, true, true, false}
			if !equal(got, want) {
				t.Fatalf("allowed %v, want %v", got, want)
			}
		})
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFrequencyAndTotalCaps(t *testing.T) {
	p, err := pacing.New(embeddedCaps(t), location(t, "Asia/Tokyo"), discard())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 27, 20, 0, 0, 0, location(t, "Asia/Tokyo"))
	c := capped("cmp_1", 0, 5, &campaigns.FrequencyCap{Impressions: 2, Per: "1h"})
	allow := func(uid string, d time.Duration) bool { return p.Allow(t.Context(), c, uid, t0.Add(d)) }
	steps := []struct {
		uid  string
		at   time.Duration
		want bool
	}{
		{"u1", 0, true}, {"u1", time.Minute, true}, {"u1", 2 * time.Minute, false}, // 2 per hour
		{"", 3 * time.Minute, true}, // no uid: not capped per user
		{"u1", time.Hour, true},     // a new hour-long window
		{"u2", time.Hour, true},     // the fifth: the total is reached
		{"u3", time.Hour, false}, {"", time.Hour, false},
	}
	for i, s := range steps {
		if got := allow(s.uid, s.at); got != s.want {
			t.Fatalf("step %d (%q at +%v): %v, want %v", i, s.uid, s.at, got, s.want)
		}
	}
}

func TestBackendErrors(t *testing.T) {
	broken := &countingCaps{answer: func(storage.CapRequest) (bool, error) { return false, errors.New("connection refused") }}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	c := capped("cmp_1", 10, 0, nil)
	closed, err := pacing.New(broken, time.UTC, logger)
	if err != nil {
		t.Fatal(err)
	}
	open, err := pacing.New(broken, time.UTC, logger, pacing.FailOpen())
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if closed.Allow(t.Context(), c, "", time.Now()) {
			t.Fatal("served a capped ad without its caps (fail closed is the default)")
		}
		if !open.Allow(t.Context(), c, "", time.Now()) {
			t.Fatal("FailOpen refused")
		}
	}
	if closed.Errors() != 100 {
		t.Fatalf("errors %d, want 100", closed.Errors())
	}
	if n := strings.Count(logs.String(), "caps unavailable"); n != 2 { // one per pacer per 10 s
		t.Fatalf("%d error lines for 200 failures, want 2:\n%s", n, logs.String())
	}
}

// TestEngineServesTheNextCampaign: through the decision engine, a capped
// campaign gives way to the next one, and counts only ads it served.
func TestEngineServesTheNextCampaign(t *testing.T) {
	caps := embeddedCaps(t)
	tokyo := location(t, "Asia/Tokyo")
	p, err := pacing.New(caps, tokyo, discard())
	if err != nil {
		t.Fatal(err)
	}
	ix := serving.NewIndex()
	if err := ix.PutStores("adv", []campaigns.Store{{ID: "s", Name: "s", Lat: 35.69, Lng: 139.70, Products: []string{"a", "b"}}}); err != nil {
		t.Fatal(err)
	}
	mk := func(id, product string, prio int) *campaigns.Campaign {
		c := &campaigns.Campaign{ID: id, AdvertiserID: "adv", Name: id, ProductID: product, Priority: prio,
			Keywords: []campaigns.Keyword{{Text: "居酒屋", Match: campaigns.Broad}},
			Creative: campaigns.Creative{Title: id, LandingURL: "https://example.com/"},
			Budget:   campaigns.Budget{TotalImpressions: 3}, FrequencyCap: &campaigns.FrequencyCap{Impressions: 1, Per: "24h"}}
		c.ApplyDefaults()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ix.PutCampaign(mk("first", "a", 9))
	ix.PutCampaign(mk("second", "b", 1))
	now := time.Date(2026, 11, 27, 20, 0, 0, 0, tokyo)
	e, err := serving.NewEngine(ix, tokyo, func() time.Time { return now }, p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, uid := range []string{"u1", "u1", "u1", "u2", "u3", "u4"} {
		ads, err := e.Decide(t.Context(), &serving.Request{Lat: 35.69, Lng: 139.70, Query: "居酒屋", N: 1, Mode: campaigns.Walk, UID: uid}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids := "none"
		if len(ads) > 0 {
			ids = ads[0].Campaign.ID
		}
		got = append(got, ids)
	}
	// u1 sees first, then second (first is capped for u1), then nothing;
	// u2 and u3 see first until its total of 3; u4 sees second.
	want := "[first second none first first second]"
	if s := strings.Join(got, " "); "["+s+"]" != want {
		t.Fatalf("served %v, want %s", got, want)
	}
	n, err := caps.Served(t.Context(), "first", "2026-11-27", "", now)
	if err != nil || n.Total != 3 {
		t.Fatalf("first counted %+v (%v), want 3", n, err)
	}
}

// TestOutagePolicy: when the backend is unavailable, by default a campaign
// with a delivery cap is refused and one with only a frequency cap is
// served; FailOpen and FailClosed treat both alike.
func TestOutagePolicy(t *testing.T) {
	down := func(storage.CapRequest) (bool, error) {
		return false, campaigns.Errorf(campaigns.Unavailable, "redis unavailable")
	}
	budget := capped("cmp_budget", 100, 0, nil)
	total := capped("cmp_total", 0, 1000, &campaigns.FrequencyCap{Impressions: 3, Per: "24h"})
	freq := capped("cmp_freq", 0, 0, &campaigns.FrequencyCap{Impressions: 3, Per: "24h"})
	tests := []struct {
		name                     string
		opts                     []pacing.Option
		wantBudget, wantFreqOnly bool
	}{
		{"by kind (default)", nil, false, true},
		{"fail open", []pacing.Option{pacing.FailOpen()}, true, true},
		{"fail closed", []pacing.Option{pacing.FailClosed()}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pacing.New(&countingCaps{answer: down}, time.UTC, discard(), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if got := p.Allow(t.Context(), budget, "u1", time.Now()); got != tt.wantBudget {
					t.Errorf("daily budget: allowed %v, want %v", got, tt.wantBudget)
				}
				if got := p.Allow(t.Context(), total, "u1", time.Now()); got != tt.wantBudget {
					t.Errorf("total budget and frequency cap: allowed %v, want %v", got, tt.wantBudget)
				}
				if got := p.Allow(t.Context(), freq, "u1", time.Now()); got != tt.wantFreqOnly {
					t.Errorf("frequency cap only: allowed %v, want %v", got, tt.wantFreqOnly)
				}
			}
		})
	}
}

// TestOutageSkipsTheBackend: after an Unavailable failure the pacer does
// not ask the backend again for ProbeInterval, then tries it again; other
// errors do not stop it asking.
func TestOutageSkipsTheBackend(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	caps := &countingCaps{answer: func(storage.CapRequest) (bool, error) {
		if fail.Load() {
			return false, campaigns.Errorf(campaigns.Unavailable, "redis unavailable")
		}
		return true, nil
	}}
	p, err := pacing.New(caps, time.UTC, discard())
	if err != nil {
		t.Fatal(err)
	}
	c := capped("cmp_1", 10, 0, nil)
	for range 50 {
		p.Allow(t.Context(), c, "", time.Now())
	}
	if len(caps.calls) != 1 || p.Errors() != 50 {
		t.Fatalf("%d calls reached the backend, %d errors; want 1 and 50", len(caps.calls), p.Errors())
	}
	fail.Store(false)
	time.Sleep(pacing.ProbeInterval + 100*time.Millisecond)
	if !p.Allow(t.Context(), c, "", time.Now()) || len(caps.calls) != 2 {
		t.Fatalf("after the probe interval: %d calls", len(caps.calls))
	}

	other := &countingCaps{answer: func(storage.CapRequest) (bool, error) { return false, errors.New("bug") }}
	p, _ = pacing.New(other, time.UTC, discard())
	for range 5 {
		p.Allow(t.Context(), c, "", time.Now())
	}
	if len(other.calls) != 5 {
		t.Fatalf("%d calls for 5 reservations failing with an internal error", len(other.calls))
	}
}

// TestDoneDecisionsDoNotTripTheBreaker: a reservation that fails because
// its decision had run out of time before it asked, or its client went
// away, does not stop the pacer asking the backend.
func TestDoneDecisionsDoNotTripTheBreaker(t *testing.T) {
	caps := &countingCaps{answer: func(storage.CapRequest) (bool, error) { return true, nil }}
	p, err := pacing.New(caps, time.UTC, discard())
	if err != nil {
		t.Fatal(err)
	}
	c := capped("cmp_1", 10, 0, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	caps.answer = func(storage.CapRequest) (bool, error) {
		return false, campaigns.Errorf(campaigns.Unavailable, "%v", context.Canceled)
	}
	p.Allow(ctx, c, "", time.Now())
	caps.answer = func(storage.CapRequest) (bool, error) { return true, nil }
	if !p.Allow(t.Context(), c, "", time.Now()) || len(caps.calls) != 2 {
		t.Fatalf("after a cancelled decision: %d calls reached the backend, want 2", len(caps.calls))
	}
}

// slowCaps answers reservations of campaign "slow" only when their context
// ends, and every other one at once.
type slowCaps struct {
	calls   atomic.Int32
	waiting chan struct{}
}

func (c *slowCaps) Reserve(ctx context.Context, r storage.CapRequest) (bool, error) {
	c.calls.Add(1)
	if r.CampaignID == "slow" {
		close(c.waiting)
		<-ctx.Done()
		return false, campaigns.Errorf(campaigns.Unavailable, "%v", ctx.Err())
	}
	return true, nil
}

func (c *slowCaps) Served(context.Context, string, string, string, time.Time) (storage.CapCounts, error) {
	return storage.CapCounts{}, nil
}

func (c *slowCaps) Lease(context.Context, storage.CapRequest, int64, storage.LeaseID) (int64, int64, error) {
	return 0, 0, errors.New("slowCaps leases nothing")
}

func (c *slowCaps) Return(context.Context, string, string, int64, storage.GiveBack) error { return nil }

func (c *slowCaps) Close() error { return nil }

// TestOverloadDoesNotTripTheBreaker: a reservation that runs out of time
// while the backend answers others says the process is slow, not the
// backend, and does not stop the pacer asking; one that runs out of time
// with no answer for a while does.
func TestOverloadDoesNotTripTheBreaker(t *testing.T) {
	for _, answered := range []bool{true, false} {
		caps := &slowCaps{waiting: make(chan struct{})}
		p, err := pacing.New(caps, time.UTC, discard())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		done := make(chan bool)
		go func() { done <- p.Allow(ctx, capped("slow", 10, 0, nil), "", time.Now()) }()
		<-caps.waiting
		if answered && !p.Allow(t.Context(), capped("fast", 10, 0, nil), "", time.Now()) {
			t.Fatal("a reservation the backend accepts was refused")
		}
		if <-done {
			t.Fatal("a budgeted campaign whose reservation failed was served")
		}
		cancel()
		before := caps.calls.Load()
		p.Allow(t.Context(), capped("fast", 10, 0, nil), "", time.Now())
		asked := caps.calls.Load() > before
		if asked != answered {
			t.Fatalf("backend answered meanwhile: %v; asked after the failure: %v", answered, asked)
		}
	}
}
