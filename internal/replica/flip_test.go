package replica

import (
	"testing"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/catalog"
)

// TestFollowerKeepsOwnWriteOverOlderRecord: a poll of replica a reads
// another replica's record, then a writes the same objects through its
// catalog (acknowledged, and applied to its index at once), then the poll
// applies the older record. a must go on serving its own write: the older
// record is applied as Redis holds its objects now, not as it wrote them.
// Each case leaves a serving 1 ad (or 0) after its own write; b's older
// write, applied as written, would make it 0 (or 1) until a's own record
// comes through the next poll.
func TestFollowerKeepsOwnWriteOverOlderRecord(t *testing.T) {
	yes, no := true, false
	adv := &auth.Principal{ID: "adv", Role: campaigns.Advertiser}
	paused := campaignFor("beer")
	paused.Status = campaigns.Paused
	tests := []struct {
		name  string
		older func(t *testing.T, b *node) // b's write, read by a's poll
		own   func(t *testing.T, a *node) // a's write, after the read
		want  int                         // ads a serves after its write
	}{
		{
			name: "stock",
			older: func(t *testing.T, b *node) {
				mustStock[[]int](t)(b.store.PutStock(t.Context(), "adv", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "beer", InStock: &yes}}))
			},
			own: func(t *testing.T, a *node) {
				mustStock[catalog.StockResult](t)(a.catalog.PutStock(t.Context(), adv, "adv", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "beer", InStock: &no}}, 0))
			},
			want: 0,
		},
		{
			name: "store deleted, then put again",
			older: func(t *testing.T, b *node) {
				must(t, b.store.DeleteStore(t.Context(), "adv", "s1"))
			},
			own: func(t *testing.T, a *node) {
				_, err := a.catalog.PutStores(t.Context(), adv, "adv", stores("s1"), nil)
				must(t, err)
			},
			want: 1,
		},
		{
			name: "campaign",
			older: func(t *testing.T, b *node) {
				must(t, b.store.PutCampaign(t.Context(), paused))
			},
			own: func(t *testing.T, a *node) {
				_, err := a.catalog.ReplaceCampaign(t.Context(), adv, "cmp", *campaignFor("beer"))
				must(t, err)
			},
			want: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, a, b := beerAtS1(t)
			ctx := t.Context()
			fa := a.follower(t)
			tt.older(t, b)
			wrote := false
			fa.afterRead = func() {
				if wrote {
					return
				}
				wrote = true
				tt.own(t, a)
				if got := adsNear(t, a); got != tt.want {
					t.Fatalf("a serves %d ads after its own write, want %d", got, tt.want)
				}
			}
			more, err := fa.step(ctx, false)
			must(t, err)
			if !wrote || more {
				t.Fatalf("the poll wrote %v, more %v; want one poll around a's write", wrote, more)
			}
			if got := adsNear(t, a); got != tt.want {
				t.Fatalf("a serves %d ads after applying b's older record, want %d (its own acknowledged write)", got, tt.want)
			}
			step(t, fa, false) // a's own record
			fresh := newNode(t, srv.URL())
			fresh.follower(t)
			if got, fromRedis := adsNear(t, a), adsNear(t, fresh); got != tt.want || fromRedis != tt.want {
				t.Fatalf("after a's own record: a serves %d ads, a replica loaded from Redis %d; want %d", got, fromRedis, tt.want)
			}
		})
	}
}
