package replica

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/catalog"
	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/storage/redisstore"
)

// incrAOF returns the path of Redis's incremental append-only file and its
// size now.
func incrAOF(t *testing.T, dir string) (string, int64) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "appendonlydir", "*.incr.aof"))
	must(t, err)
	if len(files) != 1 {
		t.Fatalf("incr AOF files: %v", files)
	}
	fi, err := os.Stat(files[0])
	must(t, err)
	return files[0], fi.Size()
}

// loseWrites runs write, acknowledged by Redis, then restarts Redis without
// it: the machine crashed before the tail of the append-only file reached
// the disk (appendfsync everysec).
func loseWrites(t *testing.T, srv *redistest.Server, write func()) {
	t.Helper()
	aof, before := incrAOF(t, srv.Dir())
	write()
	srv.Kill()
	must(t, os.Truncate(aof, before))
	srv.Restart()
}

// TestFollowerReloadsOwnWriteRedisLost (a review's finding): README,
// "Durability": with appendfsync everysec a crash of the machine can lose
// the writes of the last second or two; "Redis restarts without those
// writes, and navad replicas notice and reload"; after a failover "navad
// replicas converge on whatever the new master holds". Here replica a
// pauses a campaign (acknowledged, applied to a's index at once), and Redis
// restarts without that write before a's follower has read the write's
// record. a's follower compared only its own read cursor with Redis: the
// cursor never passed the lost record, so nothing looked lost, a never
// reloaded, and a went on serving the campaign as paused while Redis, b,
// and any replica started later served it active. A later write to the
// same stream was applied record by record and did not mend it.
func TestFollowerReloadsOwnWriteRedisLost(t *testing.T) {
	srv, a, b := beerAtS1(t)
	ctx := t.Context()
	fa, fb := a.follower(t), b.follower(t)
	if adsNear(t, a) != 1 || adsNear(t, b) != 1 {
		t.Fatal("setup: both replicas should serve the beer campaign")
	}

	aof, before := incrAOF(t, srv.Dir())
	adv := &auth.Principal{ID: "adv", Role: campaigns.Advertiser}
	if _, err := a.catalog.SetCampaignStatus(ctx, adv, "cmp", campaigns.Paused); err != nil {
		t.Fatal(err) // acknowledged: the API answers 200
	}
	if got := adsNear(t, a); got != 0 {
		t.Fatalf("a serves %d ads right after pausing, want 0", got)
	}

	// The machine crashes before the last writes reached the disk: Redis
	// restarts from its AOF without them.
	srv.Kill()
	must(t, os.Truncate(aof, before))
	srv.Restart()

	// Both followers poll and verify (sequence numbers, IDs, epoch), as
	// they do after an error.
	step(t, fa, true)
	step(t, fb, true)
	// Another write to the campaigns stream, made through b, and more polls.
	other := campaignFor("wine")
	other.ID = "cmp-other"
	must(t, b.store.PutCampaign(ctx, other))
	for range 3 {
		step(t, fa, true)
		step(t, fb, true)
	}

	fresh := newNode(t, srv.URL())
	fresh.follower(t)
	c, err := a.store.Campaign(ctx, "cmp")
	must(t, err)
	_, reloads := fa.Stats()
	t.Logf("Redis holds cmp as %q; a serves %d ads, b %d, a replica started now %d; a reloaded %d times",
		c.Status, adsNear(t, a), adsNear(t, b), adsNear(t, fresh), reloads)
	if got, want := adsNear(t, a), adsNear(t, fresh); got != want {
		t.Fatalf("a serves %d ads, Redis (and b, and a fresh replica) %d: a keeps a write Redis lost", got, want)
	}
}

// TestFollowerFindsOwnWriteRedisLost: each way a replica learns that Redis
// lost a write made through it, before its follower read the write's
// record. The write (a campaign paused, a store's stock out) leaves a
// serving nothing; Redis, restarted without it, serves the ad.
//
//   - No later write: the stream's sequence number is below the write's
//     (verify, every five seconds and when Redis comes back).
//   - Another replica writes to the stream before a verifies: the record
//     read with the lost write's sequence number is another's (hand).
//   - a itself writes to the stream before it verifies: Redis gives the
//     lost write's sequence number to a's new write, whose record a would
//     take for its own (OnWrite is told the same number twice).
func TestFollowerFindsOwnWriteRedisLost(t *testing.T) {
	no := false
	adv := &auth.Principal{ID: "adv", Role: campaigns.Advertiser}
	pause := func(t *testing.T, a *node) {
		_, err := a.catalog.SetCampaignStatus(t.Context(), adv, "cmp", campaigns.Paused)
		must(t, err)
	}
	outOfStock := func(t *testing.T, a *node) {
		mustStock[catalog.StockResult](t)(a.catalog.PutStock(t.Context(), adv, "adv", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "beer", InStock: &no}}, 0))
	}
	otherCampaign := func(t *testing.T, n *node) {
		other := campaignFor("wine")
		other.ID = "cmp-other"
		must(t, n.store.PutCampaign(t.Context(), other))
	}
	otherStore := func(t *testing.T, n *node) {
		must(t, n.store.PutStores(t.Context(), "adv", []campaigns.Store{{ID: "far", Name: "far", Lat: 34, Lng: 135, Products: []string{"wine"}}}))
	}
	tests := []struct {
		name  string
		own   func(t *testing.T, a *node) // a's write, which Redis loses
		later func(t *testing.T, n *node) // a write to the same stream after the restart, or nil
		by    string                      // who makes it: "a" or "b"
		check bool                        // whether a's poll after it verifies
	}{
		{name: "campaign, no later write", own: pause, check: true},
		{name: "stock, no later write", own: outOfStock, check: true},
		{name: "campaign, then another replica's write", own: pause, later: otherCampaign, by: "b"},
		{name: "stock, then another replica's write", own: outOfStock, later: otherStore, by: "b"},
		{name: "campaign, then its own write", own: pause, later: otherCampaign, by: "a"},
		{name: "stock, then its own write", own: outOfStock, later: otherStore, by: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, a, b := beerAtS1(t)
			fa := a.follower(t)
			loseWrites(t, srv, func() {
				tt.own(t, a)
				if got := adsNear(t, a); got != 0 {
					t.Fatalf("a serves %d ads after its write, want 0", got)
				}
			})
			if tt.later != nil {
				n := b
				if tt.by == "a" {
					n = a
				}
				tt.later(t, n)
			}
			step(t, fa, tt.check)
			servesLikeFresh(t, srv.URL(), a, "a keeps a write Redis lost")
			if _, reloads := fa.Stats(); reloads != 1 {
				t.Fatalf("%d reloads, want 1", reloads)
			}
			for i, o := range fa.own {
				if len(o) > 0 || fa.ownLost[i].why != "" {
					t.Fatalf("stream %d: after the reload a still waits for own writes %v (%q)", i, o, fa.ownLost[i].why)
				}
			}
			// And it follows on from there, without reloading again.
			pause(t, a)
			step(t, fa, true)
			if got := adsNear(t, a); got != 0 {
				t.Fatalf("a serves %d ads after pausing again, want 0", got)
			}
			if _, reloads := fa.Stats(); reloads != 1 {
				t.Fatalf("%d reloads, want still 1", reloads)
			}
		})
	}
}

// TestFollowerForgetsOwnWritesItRead: the writes made through a replica
// are remembered only until its follower reads their records, and writes
// Redis kept never make it reload, however many there are and in whatever
// order they are acknowledged.
func TestFollowerForgetsOwnWritesItRead(t *testing.T) {
	srv, a, _ := beerAtS1(t)
	fa := a.follower(t)
	adv := &auth.Principal{ID: "adv", Role: campaigns.Advertiser}
	ctx := t.Context()
	other := "adv2" // an advertiser of another shard
	for a.store.StreamOf(other) == a.store.StreamOf("adv") {
		other += "x"
	}
	for round := range 3 {
		errs := make(chan error, 40)
		for k := range 20 { // concurrently: told out of order
			go func() {
				yes := true // whatever the order, s1 ends in stock
				_, err := a.catalog.PutStock(ctx, adv, "adv", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "beer", InStock: &yes}}, 0)
				errs <- err
			}()
			go func() {
				errs <- a.store.PutStores(ctx, other, stores(fmt.Sprintf("t%d-%d", round, k)))
			}()
		}
		for range 40 {
			must(t, <-errs)
		}
		st := []campaigns.Status{campaigns.Active, campaigns.Paused}[round%2] // active at the end
		_, err := a.catalog.SetCampaignStatus(ctx, adv, "cmp", st)
		must(t, err)
		waiting := 0
		for _, o := range fa.own {
			waiting += len(o)
		}
		if waiting != 41 {
			t.Fatalf("round %d: %d own writes wait to be read, want 41", round, waiting)
		}
		step(t, fa, true)
		for i, o := range fa.own {
			if len(o) > 0 {
				t.Fatalf("round %d: stream %d: own writes %v still wait after the poll", round, i, o)
			}
		}
	}
	if _, reloads := fa.Stats(); reloads != 0 {
		t.Fatalf("%d reloads, want 0", reloads)
	}
	servesLikeFresh(t, srv.URL(), a, "a follower that forgot its own writes")

	// A follower that cannot read a stream (its lanes far behind) keeps no
	// more than maxOwn of them, and reloads the stream instead.
	st := a.store.StreamOf("adv")
	for k := range maxOwn + 10 {
		fa.wrote(st, redisstore.Cursor{ID: fmt.Sprintf("%d-0", 1e12+k), Seq: int64(1e6 + k)})
	}
	if n := len(fa.own[st]); n > maxOwn {
		t.Fatalf("%d own writes kept, want at most %d", n, maxOwn)
	}
	step(t, fa, false)
	if _, reloads := fa.Stats(); reloads != 1 {
		t.Fatalf("%d reloads, want 1", reloads)
	}
	if n, why := len(fa.own[st]), fa.ownLost[st].why; n > 0 || why != "" {
		t.Fatalf("after the reload %d own writes wait (%q)", n, why)
	}
}
