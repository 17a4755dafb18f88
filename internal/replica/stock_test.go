package replica

import (
	"context"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/serving"
)

// adsNear returns how many ads n's index serves for 居酒屋 at the stores.
func adsNear(t *testing.T, n *node) int {
	t.Helper()
	e, err := serving.NewEngine(n.index, time.UTC, nil, nil)
	must(t, err)
	ads, err := e.Decide(context.Background(), &serving.Request{Lat: 35.69, Lng: 139.70, Query: "居酒屋", N: 3, Mode: campaigns.Walk}, nil)
	must(t, err)
	return len(ads)
}

// servesLikeFresh checks that follower b serves the one ad that a replica
// loaded from Redis now serves; why says what it would mean if not.
func servesLikeFresh(t *testing.T, url string, b *node, why string) {
	t.Helper()
	fresh := newNode(t, url)
	fresh.follower(t)
	if got := adsNear(t, fresh); got != 1 {
		t.Fatalf("a replica loaded from Redis serves %d ads, want 1", got)
	}
	if got := adsNear(t, b); got != 1 {
		t.Fatalf("follower serves %d ads, a replica loaded from Redis 1: %s", got, why)
	}
}

// campaignFor returns a campaign of adv for product near the test stores.
func campaignFor(product string) *campaigns.Campaign {
	c := &campaigns.Campaign{ID: "cmp", AdvertiserID: "adv", Name: "c", ProductID: product, RadiusM: 500,
		Keywords: []campaigns.Keyword{{Text: "居酒屋", Match: campaigns.Broad}}, Creative: campaigns.Creative{Title: "t", LandingURL: "https://example.com/"}}
	c.ApplyDefaults()
	return c
}

// TestFollowerDeleteThenRecreateClearsStock: a store deleted (which deletes
// its stock rows in Redis) and put again before the follower polls ends up
// in stock on the follower, as it is in Redis. The delete's record looked
// like an upsert, the follower read the store back, found it, and kept its
// old out-of-stock mark.
func TestFollowerDeleteThenRecreateClearsStock(t *testing.T) {
	srv, a, b := beerAtS1(t)
	ctx := t.Context()
	fb := b.follower(t)
	no := false
	mustStock[[]int](t)(a.store.PutStock(ctx, "adv", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "beer", InStock: &no}}))
	step(t, fb, false)
	if got := adsNear(t, b); got != 0 {
		t.Fatalf("b serves %d ads for an out-of-stock store, want 0", got)
	}

	// Deleted and uploaded again between two polls of b.
	must(t, a.store.DeleteStore(ctx, "adv", "s1"))
	must(t, a.store.PutStores(ctx, "adv", stores("s1")))
	step(t, fb, false)
	servesLikeFresh(t, srv.URL(), b, "the deleted store's stock mark survived")
}

// TestFollowerDeleteStoreClearsUnlistedStock: Redis drops every stock row of
// a deleted store, rows for products the store did not list included
// (PutStock accepts those); the index drops them too, or the store, uploaded
// again with that product, stays out of stock there.
func TestFollowerDeleteStoreClearsUnlistedStock(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	ctx := t.Context()
	must(t, a.store.PutCampaign(ctx, campaignFor("wine")))
	must(t, a.store.PutStores(ctx, "adv", stores("s1"))) // lists beer only
	fb := b.follower(t)
	no := false
	mustStock[[]int](t)(a.store.PutStock(ctx, "adv", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "wine", InStock: &no}}))
	step(t, fb, false)
	must(t, a.store.DeleteStore(ctx, "adv", "s1"))
	step(t, fb, false)
	st := stores("s1")
	st[0].Products = []string{"beer", "wine"}
	must(t, a.store.PutStores(ctx, "adv", st))
	step(t, fb, false)
	servesLikeFresh(t, srv.URL(), b, "the deleted store's wine mark survived")
}

// TestFollowerReloadDropsStockOfAdvertiserWithoutStores: a replica can hold
// stock marks of an advertiser it holds no store of (a poll applied a stock
// record of a store deleted since, and the delete's record was in the next
// batch). When Redis then loses its data, the full reload must drop those
// marks with the rest; kept, they put the store out of stock on this replica
// alone once it is uploaded again into the emptied Redis.
func TestFollowerReloadDropsStockOfAdvertiserWithoutStores(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	ctx := t.Context()
	fb := b.follower(t)
	// One batch of b's poll (batch records): s1 put, then stock rows, the
	// last marking beer out; s1's delete comes first in the next batch.
	must(t, a.store.PutStores(ctx, "adv", stores("s1")))
	yes, no := true, false
	for i := 1; i < batch; i++ {
		inStock := &yes
		if i == batch-1 {
			inStock = &no
		}
		mustStock[[]int](t)(a.store.PutStock(ctx, "adv", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "beer", InStock: inStock}}))
	}
	must(t, a.store.DeleteStore(ctx, "adv", "s1"))
	more, err := fb.step(ctx, false)
	must(t, err)
	if !more || indexed(b) != 0 {
		t.Fatalf("after one poll: more %v, %d stores; want a batch left and no store (s1 read back deleted)", more, indexed(b))
	}

	srv.Flush(t)
	step(t, fb, true) // a new epoch: reload everything, from nothing
	must(t, a.store.PutCampaign(ctx, campaignFor("beer")))
	must(t, a.store.PutStores(ctx, "adv", stores("s1")))
	step(t, fb, false)
	servesLikeFresh(t, srv.URL(), b, "the reload kept a stock mark Redis lost")
}
