package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/storage"
)

// leasedTen opens a Caps on srv and leases 10 ads of cmp_1 from it.
func leasedTen(t *testing.T, srv *redistest.Server) (storage.Caps, storage.CapRequest) {
	t.Helper()
	caps := open(t, srv.URL()).Caps()
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	r := storage.CapRequest{CampaignID: "cmp_1", Now: now, Day: "2026-11-02", DayEnd: now.Add(time.Hour), TotalLimit: 100}
	if g, _, err := caps.Lease(t.Context(), r, 10, storage.LeaseID{By: storage.NewGiver(), Seq: 1}); g != 10 || err != nil {
		t.Fatalf("lease: %d, %v", g, err)
	}
	return caps, r
}

// awaitTotal waits up to 5 s for r's campaign to count want in total, as a
// command Redis runs once resumed makes it, and fails the test naming what
// (the return applied, the lease counted) otherwise.
func awaitTotal(t *testing.T, caps storage.Caps, r storage.CapRequest, want int64, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := caps.Served(t.Context(), r.CampaignID, r.Day, "", r.Now)
		must(t, err)
		if n.Total == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts %+v after Redis resumed, want %s (%d)", n, what, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReturnNotSentSaysSo: a Return made while Redis refuses connections
// never reached the counters, and says so (storage.ErrNotApplied), so that
// the pacer sends it again; one whose reply is lost (Redis hangs) may have
// happened, and does not say so.
func TestReturnNotSentSaysSo(t *testing.T) {
	srv := redistest.Start(t)
	caps, r := leasedTen(t, srv)
	now := r.Now

	by := storage.NewGiver()
	srv.Stop()
	err := caps.Return(t.Context(), "cmp_1", r.Day, 4, storage.GiveBack{By: by, Seq: 1})
	if !errors.Is(err, storage.ErrNotApplied) {
		t.Fatalf("Return with Redis refusing connections: %v, want storage.ErrNotApplied", err)
	}
	srv.Restart()
	n, err := caps.Served(t.Context(), "cmp_1", r.Day, "", now)
	must(t, err)
	if n.Total != 10 || n.Daily != 10 {
		t.Fatalf("counts %+v after a return not sent, want 10", n)
	}

	srv.Pause()
	gb := storage.GiveBack{By: by, Seq: 2}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	err = caps.Return(ctx, "cmp_1", r.Day, 4, gb)
	cancel()
	srv.Resume()
	if err == nil || errors.Is(err, storage.ErrNotApplied) {
		t.Fatalf("Return with Redis hanging: %v, want an error that may have happened", err)
	}
	// It did happen (Redis ran it once resumed): sent again, as the pacer
	// does, it takes nothing back twice.
	awaitTotal(t, caps, r, 6, "the return applied")
	must(t, caps.Return(t.Context(), "cmp_1", r.Day, 4, gb))
	n, err = caps.Served(t.Context(), "cmp_1", r.Day, "", now)
	must(t, err)
	if n.Total != 6 || n.Daily != 6 {
		t.Fatalf("counts %+v after the return sent again, want 6: applied once", n)
	}
}

// TestReturnNotSentOnClusterIsNotClaimed: go-redis's cluster client tries
// a command again after a network error, so a dial error there may follow
// an attempt that reached Redis; a Return on a cluster never claims it was
// not applied (sent again, it could be counted twice and let a campaign
// pass its budget).
func TestReturnNotSentOnClusterIsNotClaimed(t *testing.T) {
	srv := redistest.StartCluster(t)
	caps, r := leasedTen(t, srv)
	srv.Stop()
	err := caps.Return(t.Context(), "cmp_1", r.Day, 4, storage.GiveBack{By: storage.NewGiver(), Seq: 1})
	srv.Restart()
	if err == nil || errors.Is(err, storage.ErrNotApplied) {
		t.Fatalf("Return on a cluster with Redis refusing connections: %v, want an error that may have happened", err)
	}
}

// TestLostLeaseSentAgainCountsOnce: a Lease made while Redis refuses
// connections never reached the counters and says so
// (storage.ErrNotApplied); one whose reply is lost (Redis hangs, then runs
// it) counted its ads, and sent again under its number, as the pacer
// does, grants them without counting them twice.
func TestLostLeaseSentAgainCountsOnce(t *testing.T) {
	srv := redistest.Start(t)
	caps := open(t, srv.URL()).Caps()
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	r := storage.CapRequest{CampaignID: "cmp_1", Now: now, Day: "2026-11-02", DayEnd: now.Add(time.Hour), TotalLimit: 100}
	id := storage.LeaseID{By: storage.NewGiver(), Seq: 1}

	srv.Stop()
	_, _, err := caps.Lease(t.Context(), r, 10, id)
	srv.Restart()
	if !errors.Is(err, storage.ErrNotApplied) {
		t.Fatalf("Lease with Redis refusing connections: %v, want storage.ErrNotApplied", err)
	}

	srv.Pause()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	g, _, err := caps.Lease(ctx, r, 10, id)
	cancel()
	srv.Resume()
	if err == nil || errors.Is(err, storage.ErrNotApplied) {
		t.Fatalf("Lease with Redis hanging: granted %d, %v; want an error that may have happened", g, err)
	}
	awaitTotal(t, caps, r, 10, "the lease counted")
	g, left, err := caps.Lease(t.Context(), r, 10, id)
	if err != nil || g != 10 || left != 90 {
		t.Fatalf("the lost lease sent again: granted %d, left %d, %v; want 10 (its own), 90", g, left, err)
	}
	n, err := caps.Served(t.Context(), "cmp_1", r.Day, "", now)
	must(t, err)
	if n.Total != 10 || n.Daily != 10 {
		t.Fatalf("counts %+v after the lease sent again, want 10: counted once", n)
	}
}
