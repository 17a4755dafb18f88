package replica

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/redistest"
)

// chain returns n stores of one advertiser within a few hundred metres of
// the test's request point, all selling product.
func chain(n int, product string) []campaigns.Store {
	out := make([]campaigns.Store, n)
	for i := range out {
		out[i] = campaigns.Store{
			ID: fmt.Sprintf("s%05d", i), Name: product,
			Lat: 35.69 + float64(i%100)*0.00002, Lng: 139.70 + float64(i/100)*0.00002,
			Products: []string{product},
		}
	}
	return out
}

// afterFirstStoresRead runs fn once, right after the first pipeline of
// HMGETs on key has been answered: between two round trips of a long read.
type afterFirstStoresRead struct {
	key  string
	once sync.Once
	fn   func()
}

func (h *afterFirstStoresRead) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *afterFirstStoresRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (h *afterFirstStoresRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			args := c.Args()
			if len(args) > 1 && strings.EqualFold(fmt.Sprint(args[0]), "hmget") && fmt.Sprint(args[1]) == h.key {
				h.once.Do(h.fn)
				break
			}
		}
		return err
	}
}

// TestUploadNeverHalfAppliedOnAnotherReplica: advertiser adv uploads
// 10,000 stores selling beer (U1), then, through another replica, the same
// 10,000 store IDs now selling wine (U2). Each upload is one atomic write in
// Redis. Replica b applies U1's record by reading the advertiser's stores
// back in several round trips; U2 lands between two of them. After applying
// U1's record, b must serve U1 (beer) or U2 (wine): never part of each. It
// served both (part of U2 live on b before its record was applied) until
// the read watched the stores' hash and read again (a review's finding).
func TestUploadNeverHalfAppliedOnAnotherReplica(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	ctx := t.Context()
	beer := campaignFor("beer")
	wine := campaignFor("wine")
	wine.ID = "cmp-wine"
	must(t, a.store.PutCampaign(ctx, beer))
	must(t, a.store.PutCampaign(ctx, wine))
	fb := b.follower(t)

	must(t, a.store.PutStores(ctx, "adv", chain(10000, "beer"))) // U1: a "reload" record
	key := fmt.Sprintf("{navad:%d}:stores:adv", int(b.store.StreamOf("adv"))-1)
	b.store.Client().AddHook(&afterFirstStoresRead{key: key, fn: func() {
		must(t, a.store.PutStores(ctx, "adv", chain(10000, "wine"))) // U2, acknowledged
	}})

	more, err := fb.step(ctx, false) // one poll: it read U1's record only
	must(t, err)
	_ = more
	snap := b.index.Snapshot()
	t.Logf("b after applying U1's record: %d stores, %d offers, %d ads", snap.Stores(), snap.Offers(), adsNear(t, b))
	if got := snap.Offers(); got != 1 {
		t.Errorf("b serves %d offers (beer and wine) of one advertiser whose every upload sells one product: U2 is half applied", got)
	}
	if got := adsNear(t, b); got != 1 {
		t.Errorf("b serves %d ads, want 1 (beer from U1, or wine from U2, not both)", got)
	}

	// The next poll brings U2's record, which mends it.
	step(t, fb, false)
	snap = b.index.Snapshot()
	t.Logf("b after applying U2's record: %d stores, %d offers, %d ads", snap.Stores(), snap.Offers(), adsNear(t, b))
}
