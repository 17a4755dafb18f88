package pacing_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/pacing"
	"github.com/navad/navad/internal/storage"
)

// gatedCaps is the embedded caps, but a reservation of a user's window for
// an ad taken from a lease (r.Leased) waits for gate, then is refused.
type gatedCaps struct {
	storage.Caps
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedCaps) Reserve(ctx context.Context, r storage.CapRequest) (bool, error) {
	if r.Leased {
		g.entered <- struct{}{}
		<-g.gate
		return false, nil // the user's window is full
	}
	return g.Caps.Reserve(ctx, r)
}

// TestGiveBackAfterBudgetLowered: an ad taken from a lease under the old
// budget, refused by its user's window after the budget was lowered to what
// was served, must not go back into the lease counted under the new budget
// (it did, and the campaign served one past the lowered budget).
func TestGiveBackAfterBudgetLowered(t *testing.T) {
	caps := &gatedCaps{Caps: embeddedCaps(t), entered: make(chan struct{}), gate: make(chan struct{})}
	p := leasing(t, caps)
	fc := &campaigns.FrequencyCap{Impressions: 5, Per: "24h"}
	old := capped("cmp_1", 1000, 0, fc)
	for i := range 100 {
		if !p.Allow(t.Context(), old, "", time.Now()) {
			t.Fatalf("ad %d refused under its budget", i)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.Allow(t.Context(), old, "u1", time.Now()) }) // takes ad 101, waits on u1's window
	<-caps.entered
	lowered := capped("cmp_1", 100, 0, fc) // lowered to the 100 served
	if p.Allow(t.Context(), lowered, "", time.Now()) {
		t.Fatal("served past a budget lowered to what was served")
	}
	_ = pacing.ReturnIdleLeases(p, time.Now().Add(-time.Hour)) // the old lease's ads go back
	p.Allow(t.Context(), lowered, "", time.Now())              // refused: 100 served + 1 held by u1's decision
	close(caps.gate)                                           // u1's window refuses: the ad is given back
	wg.Wait()
	served := 100
	for range 5 {
		if p.Allow(t.Context(), lowered, "", time.Now()) {
			served++
		}
		time.Sleep(300 * time.Millisecond) // past exhaustedRecheck
	}
	if served > 100 {
		t.Fatalf("%d ads served under a daily budget lowered to 100", served)
	}
}

// blipCaps grants leases and counts returns; a reservation fails as if
// Redis were unreachable.
type blipCaps struct {
	countingCaps
}

func (b *blipCaps) Reserve(context.Context, storage.CapRequest) (bool, error) {
	return false, campaigns.Errorf(campaigns.Unavailable, "connection refused")
}

// TestCloseAfterBlipGivesBack: a pacer closed less than ProbeInterval after
// one failed reservation gives back what its leases hold, or says it did
// not (it did neither: the returns waited for a next round Close has not).
func TestCloseAfterBlipGivesBack(t *testing.T) {
	caps := &blipCaps{}
	p, err := pacing.New(caps, time.UTC, discard(), pacing.Leases())
	if err != nil {
		t.Fatal(err)
	}
	budgeted := capped("cmp_1", 1_000_000, 0, nil)
	for range 10 {
		if !p.Allow(t.Context(), budgeted, "", time.Now()) {
			t.Fatal("refused")
		}
	}
	caps.mu.Lock()
	var leased int64
	for _, w := range caps.leases {
		leased += w
	}
	caps.mu.Unlock()
	if leased <= 10 {
		t.Fatalf("leased %d for 10 ads: nothing held", leased)
	}
	// One reservation of a frequency-capped campaign fails: the backend
	// rests for ProbeInterval, then the replica shuts down.
	p.Allow(t.Context(), capped("cmp_2", 0, 0, &campaigns.FrequencyCap{Impressions: 1, Per: "1h"}), "u1", time.Now())
	err = p.Close()
	caps.mu.Lock()
	returned := caps.returned
	caps.mu.Unlock()
	if returned != leased-10 && err == nil {
		t.Fatalf("Close gave back %d of the %d ads held, and reported no error", returned, leased-10)
	}
}

// TestBusinessDayWhereMidnightIsSkipped: in America/Santiago clocks went
// from 2022-09-10 24:00 (-04) straight to 2022-09-11 01:00 (-03), so
// time.Date(2022, 9, 11, 0, 0, 0, 0) names 2022-09-10 23:00 -04. An ad of
// 23:30 on the 10th is counted on the 10th, with a day end after it, even
// when the 11th was seen first (a decision that began before midnight and
// reserved after another began past it).
func TestBusinessDayWhereMidnightIsSkipped(t *testing.T) {
	santiago := location(t, "America/Santiago")
	caps := &countingCaps{}
	p, err := pacing.New(caps, santiago, discard())
	if err != nil {
		t.Fatal(err)
	}
	c := capped("cmp_1", 10, 0, nil)
	after := time.Date(2022, 9, 11, 1, 30, 0, 0, santiago)   // the 11th, 01:30 -03
	before := time.Date(2022, 9, 10, 23, 30, 0, 0, santiago) // the 10th, 23:30 -04
	if before.Format(time.DateOnly) != "2022-09-10" || !before.Before(after) {
		t.Fatalf("bad fixture: %s", before)
	}
	p.Allow(t.Context(), c, "", before)
	p.Allow(t.Context(), c, "", after)
	p.Allow(t.Context(), c, "", before)
	for i, r := range caps.calls {
		want := r.Now.In(santiago).Format(time.DateOnly)
		if r.Day != want || !r.DayEnd.After(r.Now) {
			t.Errorf("reservation %d at %s: day %s ending %s, want %s ending after it", i, r.Now, r.Day, r.DayEnd, want)
		}
	}
}

// closeRaceCaps is the embedded caps, but a reservation of a user's window
// for an ad taken from a lease waits until Close has begun giving back,
// then is refused; and the first Return (Close's) reaches the counters
// only after the second (that refused ad's give-back) has.
type closeRaceCaps struct {
	storage.Caps
	entered   chan struct{}
	returning chan struct{} // closed when the first Return comes
	second    chan struct{} // closed when the second Return is applied
	calls     atomic.Int64
}

func (c *closeRaceCaps) Reserve(ctx context.Context, r storage.CapRequest) (bool, error) {
	if r.Leased {
		c.entered <- struct{}{}
		<-c.returning
		return false, nil // the user's window is full
	}
	return c.Caps.Reserve(ctx, r)
}

func (c *closeRaceCaps) Return(ctx context.Context, campaignID, day string, n int64, gb storage.GiveBack) error {
	if c.calls.Add(1) == 1 {
		close(c.returning)
		select {
		case <-c.second:
		case <-time.After(2 * time.Second):
		}
		return c.Caps.Return(ctx, campaignID, day, n, gb)
	}
	defer func() {
		if c.calls.Load() == 2 {
			close(c.second)
		}
	}()
	return c.Caps.Return(ctx, campaignID, day, n, gb)
}

// TestGiveBackWhileClosingKeepsCloseReturn: an ad refused by its user's
// window while the Pacer closes is given back at once; Close's give-back of
// what the lease held, numbered before it and reaching the counters after
// it, must still be applied (the backend skipped it as sent again, and the
// lease's ads stayed counted as served).
func TestGiveBackWhileClosingKeepsCloseReturn(t *testing.T) {
	caps := &closeRaceCaps{Caps: embeddedCaps(t), entered: make(chan struct{}),
		returning: make(chan struct{}), second: make(chan struct{})}
	p, err := pacing.New(caps, time.UTC, discard(), pacing.Leases())
	if err != nil {
		t.Fatal(err)
	}
	c := capped("cmp_1", 100_000, 0, &campaigns.FrequencyCap{Impressions: 5, Per: "24h"})
	for i := range 22 {
		if !p.Allow(t.Context(), c, "", time.Now()) {
			t.Fatalf("ad %d refused under its budget", i)
		}
	}
	if n := counted(t, caps, "cmp_1").Total; n <= 23 {
		t.Fatalf("counted %d for 22 ads: the lease holds too few for this test", n)
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.Allow(t.Context(), c, "u1", time.Now()) }) // takes ad 23, waits on u1's window
	<-caps.entered
	_ = p.Close()
	wg.Wait()
	if n := counted(t, caps, "cmp_1").Total; n != 22 {
		t.Fatalf("counters %d after Close, want the 22 served", n)
	}
}

// TestDailyCapWhereMidnightRepeats: in a zone whose clocks fall back from
// 01:00 to 00:00 (midnight happens twice; Asia/Amman on 2008-10-31), the
// first hour of the new day was counted against the day before, and the new
// day served more than its daily budget.
func TestDailyCapWhereMidnightRepeats(t *testing.T) {
	amman := location(t, "Asia/Amman")
	p, err := pacing.New(embeddedCaps(t), amman, discard())
	if err != nil {
		t.Fatal(err)
	}
	c := capped("cmp_1", 2, 0, nil)
	noon30 := time.Date(2008, 10, 30, 12, 0, 0, 0, amman)
	first := time.Date(2008, 10, 30, 21, 30, 0, 0, time.UTC) // 2008-10-31 00:30 EEST (+03), the first 00:30
	noon31 := time.Date(2008, 10, 31, 12, 0, 0, 0, amman)
	if !p.Allow(t.Context(), c, "", noon30) {
		t.Fatal("refused on the 30th")
	}
	served31 := 0
	for _, at := range []time.Time{first, noon31, noon31, noon31} {
		if p.Allow(t.Context(), c, "", at) {
			if d := at.In(amman).Format(time.DateOnly); d != "2008-10-31" {
				t.Fatalf("test setup: %v is %s", at, d)
			}
			served31++
		}
	}
	t.Logf("00:30 on the 31st is %v", first.In(amman))
	if served31 > 2 {
		t.Fatalf("%d ads served on 2008-10-31 (Asia/Amman) under a daily budget of 2", served31)
	}
}
