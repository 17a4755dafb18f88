package pacing_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/pacing"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage"
)

func leasing(t *testing.T, caps storage.Caps, opts ...pacing.Option) *pacing.Pacer {
	t.Helper()
	p, err := pacing.New(caps, time.UTC, discard(), append(opts, pacing.Leases())...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// counted returns the total and today's count of a campaign in caps.
// closeCountsServed closes p and fails t unless caps then count served
// ads of cmp_1 in all: every leased ad not served was given back.
func closeCountsServed(t *testing.T, p *pacing.Pacer, caps storage.Caps, served int) {
	t.Helper()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if n := counted(t, caps, "cmp_1").Total; n != int64(served) {
		t.Fatalf("counters %d after closing, want the %d served: leased ads not served stayed counted", n, served)
	}
}

func counted(t *testing.T, caps storage.Caps, id string) storage.CapCounts {
	t.Helper()
	now := time.Now().UTC()
	n, err := caps.Served(t.Context(), id, now.Format(time.DateOnly), "", now)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLeasesServeWithoutAsking: a budgeted campaign served often asks the
// backend for a few growing leases, not for each ad, and never reserves.
func TestLeasesServeWithoutAsking(t *testing.T) {
	caps := &countingCaps{}
	p := leasing(t, caps)
	c := capped("cmp_1", 1_000_000, 0, nil)
	for i := range 2000 {
		if !p.Allow(t.Context(), c, "u1", time.Now()) {
			t.Fatalf("ad %d refused", i)
		}
	}
	if len(caps.calls) != 0 {
		t.Fatalf("%d reservations for a campaign with a budget only", len(caps.calls))
	}
	// 1, 4, 16, 64, 256, 1000, 1000: each at most four times the last,
	// and never more than 1000.
	if n := len(caps.leases); n < 5 || n > 8 {
		t.Fatalf("%d leases for 2,000 ads: %v", n, caps.leases)
	}
	for i, w := range caps.leases {
		if w > 1000 || (i > 0 && w > 4*caps.leases[i-1]) {
			t.Fatalf("leases asked %v", caps.leases)
		}
	}
}

// TestLeasesExactAcrossReplicas: two pacers leasing one campaign's budget
// from the same counters, concurrently, serve exactly the budget, and the
// counters agree once they are closed.
func TestLeasesExactAcrossReplicas(t *testing.T) {
	caps := embeddedCaps(t)
	replicas := []*pacing.Pacer{leasing(t, caps), leasing(t, caps)}
	const budget = 100_000
	c := capped("cmp_1", budget, 0, nil)
	var (
		wg      sync.WaitGroup
		allowed [2]atomic.Int64
		start   = make(chan struct{})
	)
	for i := range 8 {
		wg.Go(func() {
			p := replicas[i%2]
			<-start
			// Until refused three times in a row, a recheck apart: a
			// pacer refuses only when it holds nothing and the counters
			// are at the limit.
			for refused := 0; refused < 3; {
				if p.Allow(t.Context(), c, "", time.Now()) {
					allowed[i%2].Add(1)
					refused = 0
					// An ad from a lease takes some 100 ns: without a
					// yield one goroutine could serve the whole budget
					// in one time slice while the other replica's wait
					// for a core (it did in a CI run), and the test
					// would not be of two replicas sharing it.
					runtime.Gosched()
				} else {
					refused++
					time.Sleep(300 * time.Millisecond)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	a, b := allowed[0].Load(), allowed[1].Load()
	if a+b != budget || a == 0 || b == 0 {
		t.Fatalf("replicas served %d + %d under a daily budget of %d", a, b, budget)
	}
	for _, p := range replicas {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := counted(t, caps, "cmp_1"); n.Total != budget || n.Daily != budget {
		t.Fatalf("counters %+v after closing, want %d", n, budget)
	}
}

// TestLeaseGivenBack: what a lease holds goes back when the pacer closes,
// when it has gone unused, and when the budget changes; a lowered budget is
// never passed by ads leased under the old one.
func TestLeaseGivenBack(t *testing.T) {
	caps := embeddedCaps(t)
	p := leasing(t, caps)
	c := capped("cmp_1", 1000, 0, nil)
	for range 10 {
		if !p.Allow(t.Context(), c, "", time.Now()) {
			t.Fatal("refused under its budget")
		}
	}
	held := counted(t, caps, "cmp_1").Total
	if held <= 10 {
		t.Fatalf("counters %d after 10 ads: the lease holds nothing more", held)
	}
	if err := pacing.ReturnIdleLeases(p, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := counted(t, caps, "cmp_1").Total; n != held {
		t.Fatalf("a lease used a moment ago was given back: %d, want %d", n, held)
	}
	if err := pacing.ReturnIdleLeases(p, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := counted(t, caps, "cmp_1").Total; n != 10 {
		t.Fatalf("counters %d after the idle lease went back, want the 10 served", n)
	}

	// Lease again, then lower the budget to what was served: refused,
	// though the old lease still held ads.
	for range 20 {
		p.Allow(t.Context(), c, "", time.Now())
	}
	if n := counted(t, caps, "cmp_1").Total; n <= 30 {
		t.Fatalf("counters %d after 30 ads: the lease holds nothing more", n)
	}
	lowered := capped("cmp_1", 30, 0, nil)
	if p.Allow(t.Context(), lowered, "", time.Now()) {
		t.Fatal("served past a budget lowered to what was served")
	}
	closeCountsServed(t, p, caps, 30)
	// A closed pacer reserves each ad alone.
	if p.Allow(t.Context(), lowered, "", time.Now()) {
		t.Fatal("a closed pacer served past the budget")
	}
	if !p.Allow(t.Context(), capped("cmp_1", 31, 0, nil), "", time.Now()) {
		t.Fatal("a closed pacer refused the last ad of a budget")
	}
	if n := counted(t, caps, "cmp_1").Total; n != 31 {
		t.Fatalf("counters %d, want 31", n)
	}
}

// TestLeaseAndFrequencyCap: an ad taken from a lease still asks for its
// user's window; a refused one goes back to the lease.
func TestLeaseAndFrequencyCap(t *testing.T) {
	caps := embeddedCaps(t)
	p := leasing(t, caps)
	c := capped("cmp_1", 1000, 0, &campaigns.FrequencyCap{Impressions: 2, Per: "24h"})
	served := 0
	for range 5 {
		for _, uid := range []string{"u1", "u2", "u3"} {
			if p.Allow(t.Context(), c, uid, time.Now()) {
				served++
			}
		}
	}
	if served != 6 {
		t.Fatalf("%d ads served to 3 users capped at 2 each", served)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if n := counted(t, caps, "cmp_1"); n.Total != 6 {
		t.Fatalf("counters %+v after closing, want 6: refused ads went back", n)
	}
}

// TestLeaseDuringOutage: ads leased before an outage are served during it;
// once the lease is empty, a budgeted campaign is refused. When only the
// user's window cannot be checked, the ad counts as frequency-capped.
func TestLeaseDuringOutage(t *testing.T) {
	var down atomic.Bool
	caps := &countingCaps{answer: func(storage.CapRequest) (bool, error) {
		if down.Load() {
			return false, campaigns.Errorf(campaigns.Unavailable, "redis unavailable")
		}
		return true, nil
	}}
	p := leasing(t, caps)
	c := capped("cmp_1", 1000, 0, nil)
	both := capped("cmp_2", 1000, 0, &campaigns.FrequencyCap{Impressions: 2, Per: "24h"})
	for range 2 { // leases of 1, then 4: 3 held
		p.Allow(t.Context(), c, "", time.Now())
		p.Allow(t.Context(), both, "u1", time.Now())
	}
	down.Store(true)
	for i := range 3 {
		if !p.Allow(t.Context(), c, "", time.Now()) {
			t.Fatalf("leased ad %d refused during the outage", i)
		}
		if !p.Allow(t.Context(), both, "u9", time.Now()) {
			t.Fatalf("leased ad %d with a frequency cap refused during the outage", i)
		}
	}
	if p.Allow(t.Context(), c, "", time.Now()) || p.Allow(t.Context(), both, "u9", time.Now()) {
		t.Fatal("a budgeted campaign served during the outage beyond its lease")
	}

	// Fail closed: an ad whose user's window cannot be checked is refused
	// and goes back to the lease.
	down.Store(false)
	closed := leasing(t, &countingCaps{answer: func(storage.CapRequest) (bool, error) {
		if down.Load() {
			return false, campaigns.Errorf(campaigns.Unavailable, "redis unavailable")
		}
		return true, nil
	}}, pacing.FailClosed())
	for range 2 {
		closed.Allow(t.Context(), c, "", time.Now())
	}
	down.Store(true)
	if closed.Allow(t.Context(), both, "u1", time.Now()) {
		t.Fatal("fail closed: served with the user's window unknown")
	}
	for i := range 3 {
		if !closed.Allow(t.Context(), c, "", time.Now()) {
			t.Fatalf("fail closed: leased ad %d of a budget-only campaign refused", i)
		}
	}
}

// TestLeaseOutageSkipsTheBackend: a lease that fails with Redis down
// trips the breaker, as a reservation does: the next decisions do not ask
// again until the probe interval has passed.
func TestLeaseOutageSkipsTheBackend(t *testing.T) {
	caps := &countingCaps{answer: func(storage.CapRequest) (bool, error) {
		return false, campaigns.Errorf(campaigns.Unavailable, "redis unavailable")
	}}
	p := leasing(t, caps)
	c := capped("cmp_1", 1000, 0, nil)
	for range 5 {
		p.Allow(t.Context(), c, "", time.Now())
	}
	caps.mu.Lock()
	n := len(caps.leases)
	caps.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d leases asked of a backend that is down, in 5 decisions; want 1", n)
	}
}

// slowLeases delays every Lease, as a busy Redis does, and counts the
// Leases and Returns; a Return fails while failReturns is set (as one whose
// reply was lost may have happened: it does, here), and fails without
// reaching the counters while refuseReturns is.
type slowLeases struct {
	storage.Caps
	delay         time.Duration
	leases        atomic.Int64
	returns       atomic.Int64
	failReturns   atomic.Bool
	refuseReturns atomic.Bool
	// refuseNext refuses that many Returns, without reaching the
	// counters; hangReturns makes a Return wait for its deadline, and
	// slowReturns (ns) wait that long, then succeed.
	refuseNext  atomic.Int64
	hangReturns atomic.Bool
	slowReturns atomic.Int64
	// failLeases makes a Lease fail after it happened, its reply lost,
	// and refuseLeases without reaching the counters; ids are the leases
	// asked for, in order.
	failLeases   atomic.Bool
	refuseLeases atomic.Bool
	mu           sync.Mutex
	ids          []storage.LeaseID
}

func (s *slowLeases) Lease(ctx context.Context, r storage.CapRequest, want int64, id storage.LeaseID) (int64, int64, error) {
	s.leases.Add(1)
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
	time.Sleep(s.delay)
	if s.refuseLeases.Load() {
		return 0, 0, fmt.Errorf("connection refused: %w", storage.ErrNotApplied)
	}
	g, left, err := s.Caps.Lease(ctx, r, want, id)
	if s.failLeases.Load() {
		return 0, 0, campaigns.Errorf(campaigns.Unavailable, "reply lost")
	}
	return g, left, err
}

// leaseIDs returns the leases asked for so far.
func (s *slowLeases) leaseIDs() []storage.LeaseID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}

func (s *slowLeases) Return(ctx context.Context, campaignID, day string, n int64, gb storage.GiveBack) error {
	s.returns.Add(1)
	if s.hangReturns.Load() {
		<-ctx.Done()
		return campaigns.Errorf(campaigns.Unavailable, "%v", ctx.Err())
	}
	time.Sleep(time.Duration(s.slowReturns.Load()))
	if s.refuseReturns.Load() || s.refuseNext.Add(-1) >= 0 {
		return campaigns.Errorf(campaigns.Unavailable, "connection refused")
	}
	err := s.Caps.Return(ctx, campaignID, day, n, gb)
	if s.failReturns.Load() {
		return campaigns.Errorf(campaigns.Unavailable, "reply lost")
	}
	return err
}

// returnRoundFails runs a return round with fail (one of slowLeases'
// failReturns and refuseReturns) set, fails the test unless the round
// reports an error, and then clears fail. what names the failure in the
// message: "failed", "refused".
func returnRoundFails(t *testing.T, p *pacing.Pacer, fail *atomic.Bool, what string) {
	t.Helper()
	fail.Store(true)
	if err := pacing.ReturnIdleLeases(p, time.Now().Add(time.Second)); err == nil {
		t.Fatalf("a %s return reported no error", what)
	}
	fail.Store(false)
}

// TestLeaseLandsAfterTheDeadline: a lease answered after the decision that
// asked for it gave up is not lost: the next decision serves from it.
func TestLeaseLandsAfterTheDeadline(t *testing.T) {
	caps := &slowLeases{Caps: embeddedCaps(t), delay: 200 * time.Millisecond}
	p := leasing(t, caps)
	c := capped("cmp_1", 1000, 0, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if p.Allow(ctx, c, "", time.Now()) {
		t.Fatal("served before its lease came back")
	}
	time.Sleep(300 * time.Millisecond)
	if !p.Allow(t.Context(), c, "", time.Now()) {
		t.Fatal("the lease that came back late was lost")
	}
	if n := caps.leases.Load(); n != 1 {
		t.Fatalf("%d leases asked for, want 1", n)
	}
	closeCountsServed(t, p, caps, 1)
}

// TestFailedReturnSentAgainOnce: a return that failed may have happened
// (here it did, and its reply was lost); it is sent again under its id,
// which the backend applies once: the ads come back, once.
func TestFailedReturnSentAgainOnce(t *testing.T) {
	caps := &slowLeases{Caps: embeddedCaps(t)}
	p := leasing(t, caps)
	c := capped("cmp_1", 1000, 0, nil)
	for range 3 { // leases of 1 and 4: 2 held
		p.Allow(t.Context(), c, "", time.Now())
	}
	if n := counted(t, caps, "cmp_1").Total; n <= 3 {
		t.Fatalf("counted %d for 3 ads: nothing held", n)
	}
	returnRoundFails(t, p, &caps.failReturns, "failed")
	time.Sleep(pacing.ProbeInterval + 100*time.Millisecond) // the breaker's rest after the failure
	if err := pacing.ReturnIdleLeases(p, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := caps.returns.Load(); n != 2 {
		t.Fatalf("%d returns sent, want 2: the failed one again", n)
	}
	if n := counted(t, caps, "cmp_1").Total; n != 3 {
		t.Fatalf("counters %d, want the 3 served (the return applied once)", n)
	}
}

// TestFailedReturnNotSentPastItsWindow: a return that failed may have
// happened (its reply lost); one that then waited, unsent, while the
// backend rested, is not sent once retryReturnsFor has passed since it was
// made, however it came to wait: the backend keeps its giver's number for
// storage.GiverTTL only, and sent after that, the return would be applied
// twice and the campaign could pass its budget.
func TestFailedReturnNotSentPastItsWindow(t *testing.T) {
	caps := &slowLeases{Caps: embeddedCaps(t)}
	p := leasing(t, caps)
	c := capped("cmp_1", 1000, 0, nil)
	for range 3 { // leases of 1 and 4: 2 held
		p.Allow(t.Context(), c, "", time.Now())
	}
	returnRoundFails(t, p, &caps.failReturns, "failed")
	// The backend rests after the failure: the round waits without sending.
	_ = pacing.ReturnIdleLeases(p, time.Now().Add(time.Second))
	if n := caps.returns.Load(); n != 1 {
		t.Fatalf("%d returns sent while the backend rests, want the 1 that failed", n)
	}
	pacing.AgeReturns(p, storage.GiverTTL+time.Hour) // an outage of a day
	time.Sleep(pacing.ProbeInterval + 100*time.Millisecond)
	_ = pacing.ReturnIdleLeases(p, time.Now().Add(time.Second))
	if n := caps.returns.Load(); n != 1 {
		t.Fatalf("%d returns sent, want 1: the failed one sent again a day after it was made", n)
	}
}

// TestReturnsSentInOrder: a give-back that failed is sent in the next
// round before one made after it for the same campaign; sent after it, the
// newer one's number would have the backend skip the older, and its ads
// would stay counted.
func TestReturnsSentInOrder(t *testing.T) {
	caps := &slowLeases{Caps: embeddedCaps(t)}
	p := leasing(t, caps)
	c := capped("cmp_1", 1000, 0, nil)
	serve := func(n int) {
		for range n {
			if !p.Allow(t.Context(), c, "", time.Now()) {
				t.Fatal("refused under its budget")
			}
		}
	}
	serve(3)
	returnRoundFails(t, p, &caps.refuseReturns, "refused")
	time.Sleep(pacing.ProbeInterval + 100*time.Millisecond)
	serve(2) // a new lease, whose give-back is made after the refused one
	if err := pacing.ReturnIdleLeases(p, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := counted(t, caps, "cmp_1").Total; n != 5 {
		t.Fatalf("counters %d, want the 5 served: every give-back applied", n)
	}
}

// lostLease serves ads of c (campaign cmp_1) from p until one asks for a
// lease, whose reply caps then loses (the lease happened), and reports how
// many it served.
func lostLease(t *testing.T, p *pacing.Pacer, caps *slowLeases, c *serving.Campaign) int {
	t.Helper()
	served := 0
	for range 5 { // leases of 1 and 4: the next ad asks again
		if p.Allow(t.Context(), c, "", time.Now()) {
			served++
		}
	}
	asked := caps.leases.Load()
	caps.failLeases.Store(true)
	if p.Allow(t.Context(), c, "", time.Now()) {
		t.Fatal("served from a lease whose reply was lost")
	}
	caps.failLeases.Store(false)
	if caps.leases.Load() != asked+1 {
		t.Fatalf("%d leases asked for, want %d", caps.leases.Load(), asked+1)
	}
	if n := counted(t, caps, "cmp_1").Total; n <= int64(served) {
		t.Fatalf("counted %d after a lost lease, %d served: the lease did not happen", n, served)
	}
	time.Sleep(pacing.ProbeInterval + 100*time.Millisecond) // the breaker's rest after the failure
	return served
}

// lastSentAgain fails the test unless the last lease asked for is the one
// before it sent again, under its number.
func lastSentAgain(t *testing.T, caps *slowLeases) {
	t.Helper()
	ids := caps.leaseIDs()
	if n := len(ids); n < 2 || ids[n-1] != ids[n-2] {
		t.Fatalf("leases asked for %v: want the lost one asked for again under its number", ids)
	}
}

// TestLostLeaseHeldOnce: a lease that happened and whose reply was lost is
// asked for again under its number before any other: the backend grants
// its ads without counting them twice, and the replica serves them. Asked
// for anew, they would stay counted and served by no one.
func TestLostLeaseHeldOnce(t *testing.T) {
	caps := &slowLeases{Caps: embeddedCaps(t)}
	p := leasing(t, caps)
	c := capped("cmp_1", 1000, 0, nil)
	served := lostLease(t, p, caps, c)
	for range 40 {
		if p.Allow(t.Context(), c, "", time.Now()) {
			served++
		}
	}
	ids := caps.leaseIDs()
	if len(ids) < 4 || ids[3] != ids[2] {
		t.Fatalf("leases asked for %v: want the lost third asked for again under its number", ids)
	}
	closeCountsServed(t, p, caps, served)
}

// TestLostLeaseOfIdleCampaignGivenBack: a campaign no longer served asks
// for no lease that would send a lost one again; the return round does,
// and so does Close, and they give its ads back.
func TestLostLeaseOfIdleCampaignGivenBack(t *testing.T) {
	for _, tt := range []struct {
		name string
		give func(*pacing.Pacer) error
	}{
		{"return round", func(p *pacing.Pacer) error { return pacing.ReturnIdleLeases(p, time.Now().Add(time.Second)) }},
		{"close", (*pacing.Pacer).Close},
	} {
		t.Run(tt.name, func(t *testing.T) {
			caps := &slowLeases{Caps: embeddedCaps(t)}
			p := leasing(t, caps)
			served := lostLease(t, p, caps, capped("cmp_1", 1000, 0, nil))
			if err := tt.give(p); err != nil {
				t.Fatal(err)
			}
			lastSentAgain(t, caps)
			if n := counted(t, caps, "cmp_1").Total; n != int64(served) {
				t.Fatalf("counters %d after the %s, want the %d served", n, tt.name, served)
			}
		})
	}
}

// TestRefusedLeaseAskedAnew: a lease that certainly never reached the
// backend (storage.ErrNotApplied) is not sent again: the next is a new
// one, for the day and limits of the decision that asks.
func TestRefusedLeaseAskedAnew(t *testing.T) {
	caps := &slowLeases{Caps: embeddedCaps(t)}
	p := leasing(t, caps)
	c := capped("cmp_1", 1000, 0, nil)
	for range 5 { // leases of 1 and 4: the next ad asks again
		p.Allow(t.Context(), c, "", time.Now())
	}
	caps.refuseLeases.Store(true)
	if p.Allow(t.Context(), c, "", time.Now()) {
		t.Fatal("served without a lease")
	}
	caps.refuseLeases.Store(false)
	time.Sleep(pacing.ProbeInterval + 100*time.Millisecond)
	if !p.Allow(t.Context(), c, "", time.Now()) {
		t.Fatal("refused under its budget")
	}
	ids := caps.leaseIDs()
	if n := len(ids); n < 2 || ids[n-1].Seq <= ids[n-2].Seq {
		t.Fatalf("leases asked for %v: want a new one after one refused", ids)
	}
}

// TestLostLeaseKeptWhenItsRetryIsRefused: a lost lease asked for again
// while the backend refuses connections (that attempt certainly did not
// happen, but the first may have) is still asked for again, under its
// number, once the backend is back.
func TestLostLeaseKeptWhenItsRetryIsRefused(t *testing.T) {
	caps := &slowLeases{Caps: embeddedCaps(t)}
	p := leasing(t, caps)
	c := capped("cmp_1", 1000, 0, nil)
	served := lostLease(t, p, caps, c)
	caps.refuseLeases.Store(true)
	if p.Allow(t.Context(), c, "", time.Now()) {
		t.Fatal("served while the backend refuses connections")
	}
	caps.refuseLeases.Store(false)
	time.Sleep(pacing.ProbeInterval + 100*time.Millisecond)
	for range 10 {
		if p.Allow(t.Context(), c, "", time.Now()) {
			served++
		}
	}
	ids := caps.leaseIDs()
	if len(ids) < 5 || ids[2] != ids[3] || ids[3] != ids[4] {
		t.Fatalf("leases asked for %v: want the lost third asked for again twice under its number", ids)
	}
	closeCountsServed(t, p, caps, served)
}

// TestLostEmptyLeaseAskedAnew: a lost lease that granted nothing (the
// limits were reached), asked for again once ads came back, grants nothing
// again; the decision then asks for a new lease and is served, rather
// than refuse the campaign as if its limits were still reached.
func TestLostEmptyLeaseAskedAnew(t *testing.T) {
	caps := &slowLeases{Caps: embeddedCaps(t)}
	p := leasing(t, caps)
	c := capped("cmp_1", 5, 0, nil)
	for i := range 5 { // leases of 1 and 4: all 5 served
		if !p.Allow(t.Context(), c, "", time.Now()) {
			t.Fatalf("ad %d refused under a budget of 5", i)
		}
	}
	caps.failLeases.Store(true)
	if p.Allow(t.Context(), c, "", time.Now()) {
		t.Fatal("served past a daily budget of 5")
	}
	caps.failLeases.Store(false)
	// Another replica gives back 2 ads.
	day := time.Now().UTC().Format(time.DateOnly)
	if err := caps.Caps.Return(t.Context(), "cmp_1", day, 2, storage.GiveBack{By: storage.NewGiver(), Seq: 1}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pacing.ProbeInterval + 100*time.Millisecond)
	if !p.Allow(t.Context(), c, "", time.Now()) {
		t.Fatal("refused with 2 ads of its budget given back")
	}
	ids := caps.leaseIDs()
	if n := len(ids); n < 3 || ids[n-3] != ids[n-2] || ids[n-1].Seq <= ids[n-2].Seq {
		t.Fatalf("leases asked for %v: want the lost one asked for again, then a new one", ids)
	}
}

// TestLostLeaseNotSentPastItsWindow: a lost lease is asked for again
// within retryReturnsFor only, while the backend keeps its number; after
// that the next lease is a new one.
func TestLostLeaseNotSentPastItsWindow(t *testing.T) {
	caps := &slowLeases{Caps: embeddedCaps(t)}
	p := leasing(t, caps)
	c := capped("cmp_1", 1000, 0, nil)
	lostLease(t, p, caps, c)
	pacing.AgeLostLeases(p, storage.GiverTTL)
	if !p.Allow(t.Context(), c, "", time.Now()) {
		t.Fatal("refused under its budget")
	}
	ids := caps.leaseIDs()
	if n := len(ids); ids[n-1].Seq <= ids[n-2].Seq {
		t.Fatalf("leases asked for %v: want a new one after the lost one's window", ids)
	}
}

// TestCloseGivesBackPastAFailure: Close tries every give-back once: one
// that fails does not keep the others' ads counted.
func TestCloseGivesBackPastAFailure(t *testing.T) {
	caps := &slowLeases{Caps: embeddedCaps(t)}
	p := leasing(t, caps)
	ids := []string{"cmp_1", "cmp_2", "cmp_3"}
	for _, id := range ids {
		c := capped(id, 1000, 0, nil)
		for range 3 { // leases of 1 and 4: 2 held
			if !p.Allow(t.Context(), c, "", time.Now()) {
				t.Fatal("refused under its budget")
			}
		}
	}
	caps.refuseNext.Store(1)
	if err := p.Close(); err == nil {
		t.Fatal("Close reported no error when a give-back failed")
	}
	if n := caps.returns.Load(); n != 3 {
		t.Fatalf("%d give-backs tried at Close, want 3: one for each campaign", n)
	}
	var total int64
	for _, id := range ids {
		total += counted(t, caps, id).Total
	}
	if total != 9+2 {
		t.Fatalf("counters %d in all after closing, want the 9 served and the 2 held of the give-back refused", total)
	}
}

// holdInTwenty serves 3 ads of each of 20 campaigns, cmp_0 to cmp_19, from
// leases of 1 and 4: each lease then holds 2.
func holdInTwenty(t *testing.T, p *pacing.Pacer) {
	t.Helper()
	for i := range 20 {
		c := capped(fmt.Sprint("cmp_", i), 1000, 0, nil)
		for range 3 {
			if !p.Allow(t.Context(), c, "", time.Now()) {
				t.Fatalf("cmp_%d refused under its budget", i)
			}
		}
	}
}

// TestCloseBoundedWhileBackendHangs: with the backend hanging, Close gives
// up on the give-backs left once closeReturnsFor has passed, rather than
// wait for each in turn.
func TestCloseBoundedWhileBackendHangs(t *testing.T) {
	caps := &slowLeases{Caps: embeddedCaps(t)}
	p := leasing(t, caps)
	holdInTwenty(t, p)
	defer pacing.SetCloseReturnsFor(300 * time.Millisecond)()
	caps.hangReturns.Store(true)
	start := time.Now()
	if err := p.Close(); err == nil {
		t.Fatal("Close reported no error with the backend hanging")
	}
	// Twenty give-backs of two seconds each would take 40 s.
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Close took %v with the backend hanging", d)
	}
	if n := caps.returns.Load(); n >= 20 {
		t.Fatalf("%d give-backs tried past Close's time", n)
	}
}

// TestCloseEndsARoundUnderWay: Close waits for a return round under way,
// which, once Close has begun, sends no more give-backs (each slow, here a
// second, but answered) but leaves them to Close and its bounded time.
func TestCloseEndsARoundUnderWay(t *testing.T) {
	caps := &slowLeases{Caps: embeddedCaps(t)}
	p := leasing(t, caps)
	holdInTwenty(t, p)
	defer pacing.SetCloseReturnsFor(300 * time.Millisecond)()
	caps.slowReturns.Store(int64(time.Second))
	pacing.AgeLeases(p, time.Minute) // idle: the loop's next round gives them back
	deadline := time.Now().Add(5 * time.Second)
	for caps.returns.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no return round began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	_ = p.Close()
	// The round's twenty give-backs of a second each would take 20 s.
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("Close took %v behind a round under way", d)
	}
}

// TestCloseWhileServing: decisions that run while the Pacer closes leak no
// leased ad: once everything stops, the counters hold exactly what was
// served.
func TestCloseWhileServing(t *testing.T) {
	caps := &slowLeases{Caps: embeddedCaps(t), delay: time.Millisecond}
	p := leasing(t, caps)
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		allowed atomic.Int64
	)
	for i := range 4 {
		wg.Go(func() {
			c := capped(fmt.Sprint("cmp_", i%2), 1_000_000, 0, nil)
			for !stop.Load() {
				if p.Allow(t.Context(), c, "", time.Now()) {
					allowed.Add(1)
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // decisions go on, reserving alone
	stop.Store(true)
	wg.Wait()
	if got := counted(t, caps, "cmp_0").Total + counted(t, caps, "cmp_1").Total; got != allowed.Load() {
		t.Fatalf("counters %d, served %d", got, allowed.Load())
	}
}
