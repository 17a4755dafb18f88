package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/redisstore"
)

// capsCampaign creates campaign id on s and counts n ads against its
// total, so that the total is a key without an expiry, as for every live
// campaign.
func capsCampaign(t *testing.T, s *redisstore.Store, id string, n int) {
	t.Helper()
	ctx := t.Context()
	must(t, s.CreateCampaign(ctx, &campaigns.Campaign{ID: id, AdvertiserID: "adv_1", Name: id}))
	caps := s.Caps()
	for i := range n {
		now := time.Date(2026, 11, 2, 10, 0, i, 0, time.UTC)
		ok, err := caps.Reserve(ctx, storage.CapRequest{CampaignID: id, Now: now, Day: "2026-11-02", DayEnd: now.Add(time.Hour), TotalLimit: 1000})
		must(t, err)
		if !ok {
			t.Fatalf("%s: reservation %d refused", id, i)
		}
	}
}

func totalKey(id string) string { return "{navad:caps:" + id + "}:total" }

// pttl returns the total's remaining life: -1 for none, -2 for no key.
func pttl(t *testing.T, c redis.UniversalClient, id string) time.Duration {
	t.Helper()
	d, err := c.PTTL(context.Background(), totalKey(id)).Result()
	must(t, err)
	return d
}

// wantExpiring fails unless id's total expires within two days.
func wantExpiring(t *testing.T, c redis.UniversalClient, id, when string) {
	t.Helper()
	if d := pttl(t, c, id); d <= 0 || d > 48*time.Hour {
		t.Fatalf("%s: %s's total has PTTL %v, want an expiry within 48h (keys without one: %q)",
			when, id, d, keysForEver(t, c, "{navad:caps:"+id+"}:*"))
	}
}

// wantKept fails unless id's total is n and has no expiry: a live
// campaign's total, untouched.
func wantKept(t *testing.T, c redis.UniversalClient, id string, n int) {
	t.Helper()
	v, err := c.Get(context.Background(), totalKey(id)).Int()
	must(t, err)
	if d := pttl(t, c, id); v != n || d != -1 {
		t.Fatalf("live %s's total is %d with PTTL %v, want %d without an expiry", id, v, d, n)
	}
}

func pending(t *testing.T, c redis.UniversalClient) []string {
	t.Helper()
	ids, err := c.SMembers(context.Background(), "{navad}:caps_pending").Result()
	must(t, err)
	return ids
}

// TestDeleteCutShortLeavesNoTotalForEver: the delete and the freeing of the
// campaign's total are two commands (two Cluster slots). When Redis fails
// the second, or the third that tidies up, the sweep frees the total. The
// failures are made by Redis itself: the store connects as an ACL user
// refused the command of the step, as a connection lost at that point
// would leave it (the delete script is atomic, so there is no point
// inside it to break).
func TestDeleteCutShortLeavesNoTotalForEver(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.Client(t)
	ctx := t.Context()
	tests := []struct {
		name string
		acl  []any // what the store's user may do
		// wantErr: DeleteCampaign reports the failure.
		wantErr bool
	}{
		{"SetRefused", []any{"~{navad}:*", "+@all"}, true},
		{"SremRefused", []any{"~*", "+@all", "-srem"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.Flush(t)
			full := open(t, srv.URL())
			capsCampaign(t, full, "cmp_del", 5)
			capsCampaign(t, full, "cmp_live", 3)

			must(t, admin.Do(ctx, append([]any{"ACL", "SETUSER", "cut", "reset", "on", ">pw"}, tt.acl...)...).Err())
			t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", "cut") })
			cut := open(t, "redis://cut:pw@"+srv.Addr())
			err := cut.DeleteCampaign(ctx, "cmp_del")
			if (err != nil) != tt.wantErr {
				t.Fatalf("delete: %v, want an error: %v", err, tt.wantErr)
			}
			if _, err := full.Campaign(ctx, "cmp_del"); campaigns.ErrorCode(err) != campaigns.NotFound {
				t.Fatalf("the campaign is not deleted: %v", err)
			}
			if got := pending(t, admin); len(got) != 1 || got[0] != "cmp_del" {
				t.Fatalf("caps_pending holds %q, want cmp_del", got)
			}

			n, err := full.FreeDeletedCaps(ctx, redisstore.SweepPending)
			must(t, err)
			if want := map[bool]int{true: 1, false: 0}[tt.wantErr]; n != want {
				t.Fatalf("the sweep freed %d totals, want %d", n, want)
			}
			wantExpiring(t, admin, "cmp_del", "after the sweep")
			if got := keysForEver(t, admin, "{navad:caps:cmp_del}:*"); len(got) > 0 {
				t.Fatalf("keys of the deleted campaign without an expiry: %q", got)
			}
			if got := pending(t, admin); len(got) != 0 {
				t.Fatalf("caps_pending still holds %q", got)
			}
			wantKept(t, admin, "cmp_live", 3)
		})
	}
}

// TestDeleteFreesEveryCapsKey: a delete that succeeds leaves nothing of the
// campaign's caps without an expiry and nothing for the sweep.
func TestDeleteFreesEveryCapsKey(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.Client(t)
	s := open(t, srv.URL())
	capsCampaign(t, s, "cmp_del", 5)
	must(t, s.DeleteCampaign(t.Context(), "cmp_del"))
	wantExpiring(t, admin, "cmp_del", "after the delete")
	if got := pending(t, admin); len(got) != 0 {
		t.Fatalf("caps_pending holds %q after a delete that succeeded", got)
	}
}

// leaveOldTotal makes id's total what navads before the sweep left of a
// deleted campaign: the count, without an expiry, the ID in
// campaigns_gone and not in caps_pending.
func leaveOldTotal(t *testing.T, c redis.UniversalClient, id string, n int) {
	t.Helper()
	ctx := context.Background()
	must(t, c.Set(ctx, totalKey(id), n, 0).Err())
	must(t, c.SAdd(ctx, "{navad}:campaigns_gone", id).Err())
	must(t, c.SRem(ctx, "{navad}:caps_pending", id).Err())
}

// TestSweepFreesOldTotals: a total left without an expiry by an older
// delete gets one from the sweep of campaigns_gone, once (it is not pushed
// back by the next sweep, nor by many at once), on both Redis modes; live
// campaigns' totals, one of them a deleted ID put again, are untouched.
func TestSweepFreesOldTotals(t *testing.T) {
	redistest.EachMode(t, func(t *testing.T, srv *redistest.Server) {
		ctx := t.Context()
		admin := srv.Client(t)
		s := open(t, srv.URL())
		capsCampaign(t, s, "cmp_old", 5)
		capsCampaign(t, s, "cmp_live", 3)
		capsCampaign(t, s, "cmp_back", 2)
		must(t, s.DeleteCampaign(ctx, "cmp_old"))
		leaveOldTotal(t, admin, "cmp_old", 5)
		// Live, but in campaigns_gone: an ID deleted and put again, as
		// navads before PutCampaign refused a deleted ID could.
		leaveOldTotal(t, admin, "cmp_back", 2)

		// Pending alone does not see them.
		n, err := s.FreeDeletedCaps(ctx, redisstore.SweepPending)
		must(t, err)
		if n != 0 || pttl(t, admin, "cmp_old") != -1 {
			t.Fatalf("the pending sweep freed %d totals, want none", n)
		}

		// Many replicas at once: one of them frees it.
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			freed int
		)
		for range 4 {
			r := open(t, srv.URL())
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := r.FreeDeletedCaps(ctx, redisstore.SweepGone)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				freed += n
				mu.Unlock()
			}()
		}
		wg.Wait()
		if freed != 1 {
			t.Fatalf("four sweeps at once freed %d totals, want 1", freed)
		}
		wantExpiring(t, admin, "cmp_old", "after the sweep")
		wantKept(t, admin, "cmp_live", 3)
		wantKept(t, admin, "cmp_back", 2)

		// Again: nothing to do, and the expiry is not pushed back.
		must(t, admin.PExpire(ctx, totalKey("cmp_old"), time.Hour).Err())
		n, err = s.FreeDeletedCaps(ctx, redisstore.SweepGone)
		must(t, err)
		if d := pttl(t, admin, "cmp_old"); n != 0 || d > time.Hour {
			t.Fatalf("a second sweep freed %d totals and left PTTL %v; want 0 and at most 1h", n, d)
		}
		// A deleted campaign whose total expired long ago is not brought back.
		must(t, admin.Del(ctx, totalKey("cmp_old")).Err())
		_, err = s.FreeDeletedCaps(ctx, redisstore.SweepGone)
		must(t, err)
		if d := pttl(t, admin, "cmp_old"); d != -2 {
			t.Fatalf("the sweep made an expired total again (PTTL %v)", d)
		}
	})
}

// TestCapsSweepOption: a Store opened WithCapsSweep sweeps campaigns_gone
// at once, and caps_pending at every interval after, until Close.
func TestCapsSweepOption(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.Client(t)
	ctx := t.Context()
	s := open(t, srv.URL())
	capsCampaign(t, s, "cmp_old", 5)
	must(t, s.DeleteCampaign(ctx, "cmp_old"))
	leaveOldTotal(t, admin, "cmp_old", 5)
	capsCampaign(t, s, "cmp_cut", 4)
	must(t, s.DeleteCampaign(ctx, "cmp_cut"))
	// As a delete whose second command failed left it.
	must(t, admin.Persist(ctx, totalKey("cmp_cut")).Err())
	must(t, admin.SAdd(ctx, "{navad}:caps_pending", "cmp_cut").Err())

	swept := open(t, srv.URL(), redisstore.WithCapsSweep(10*time.Millisecond))
	deadline := time.Now().Add(5 * time.Second)
	for pttl(t, admin, "cmp_old") < 0 || pttl(t, admin, "cmp_cut") < 0 || len(pending(t, admin)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not swept: PTTL %v and %v, pending %q", pttl(t, admin, "cmp_old"), pttl(t, admin, "cmp_cut"), pending(t, admin))
		}
		time.Sleep(10 * time.Millisecond)
	}
	must(t, swept.Close())
}

// TestSweepAtScale: the start-up sweep over 10,000 deleted campaigns, half
// of them with totals left without an expiry, frees those and no other.
func TestSweepAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 campaigns")
	}
	const n = 10_000
	srv := redistest.Start(t)
	admin := srv.Client(t)
	ctx := t.Context()
	s := open(t, srv.URL())
	pipe := admin.Pipeline()
	for i := range n {
		id := fmt.Sprintf("cmp_%05d", i)
		pipe.SAdd(ctx, "{navad}:campaigns_gone", id)
		if i%2 == 0 {
			pipe.Set(ctx, totalKey(id), i, 0)
		}
	}
	_, err := pipe.Exec(ctx)
	must(t, err)
	capsCampaign(t, s, "cmp_live", 3)

	start := time.Now()
	freed, err := s.FreeDeletedCaps(ctx, redisstore.SweepGone)
	must(t, err)
	t.Logf("swept %d deleted campaigns in %v", n, time.Since(start))
	if freed != n/2 {
		t.Fatalf("freed %d totals, want %d", freed, n/2)
	}
	if got := keysForEver(t, admin, "{navad:caps:cmp_0*"); len(got) > 0 {
		t.Fatalf("%d totals of deleted campaigns still without an expiry, such as %q", len(got), got[0])
	}
	wantKept(t, admin, "cmp_live", 3)
}
