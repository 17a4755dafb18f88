package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

var lifecycleTests = []test{
	{name: "Ping", run: testPing},
	{name: "ContextDone", run: testContextDone},
	{name: "CancelDuringIteration", run: testCancelDuringIteration},
	{name: "Close", run: testClose},
}

// call is one method of Catalog, called with harmless arguments that would
// succeed on the catalog that seed prepares.
type call struct {
	name string
	do   func(ctx context.Context, c storage.Catalog) error
}

func seed(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.CreateAccount(ctx, account("adv_1", campaigns.Advertiser, "k1")))
	must(t, c.PutCampaign(ctx, minimalCampaign("cmp_1", "adv_1")))
	must(t, c.PutStores(ctx, "adv_1", []campaigns.Store{store("s1", "One"), store("s2", "Two")}))
	mustStock(t)(c.PutStock(ctx, "adv_1", []campaigns.StockUpdate{outRow("s1", "beer-350")}))
}

// calls returns every Catalog method but Close. visits counts the calls of
// the iterations' fn.
func calls(visits *int) []call {
	return []call{
		{"CreateAccount", func(ctx context.Context, c storage.Catalog) error {
			return c.CreateAccount(ctx, account("adv_new", campaigns.Advertiser, "k-new"))
		}},
		{"Account", func(ctx context.Context, c storage.Catalog) error {
			_, err := c.Account(ctx, "adv_1")
			return err
		}},
		{"AccountByKeyHash", func(ctx context.Context, c storage.Catalog) error {
			_, err := c.AccountByKeyHash(ctx, "k1")
			return err
		}},
		{"Accounts", func(ctx context.Context, c storage.Catalog) error {
			_, err := c.Accounts(ctx)
			return err
		}},
		{"UpdateAccountKeys", func(ctx context.Context, c storage.Catalog) error {
			return setKeys(ctx, c, "adv_1", []string{"k2"})
		}},
		{"PutCampaign", func(ctx context.Context, c storage.Catalog) error {
			return c.PutCampaign(ctx, minimalCampaign("cmp_new", "adv_1"))
		}},
		{"Campaign", func(ctx context.Context, c storage.Catalog) error {
			_, err := c.Campaign(ctx, "cmp_1")
			return err
		}},
		{"Campaigns", func(ctx context.Context, c storage.Catalog) error {
			_, err := c.Campaigns(ctx, "adv_1")
			return err
		}},
		{"Campaigns all", func(ctx context.Context, c storage.Catalog) error {
			_, err := c.Campaigns(ctx, "")
			return err
		}},
		{"DeleteCampaign", func(ctx context.Context, c storage.Catalog) error {
			return c.DeleteCampaign(ctx, "cmp_1")
		}},
		{"PutStores", func(ctx context.Context, c storage.Catalog) error {
			return c.PutStores(ctx, "adv_1", []campaigns.Store{store("s-new", "New")})
		}},
		{"Store", func(ctx context.Context, c storage.Catalog) error {
			_, err := c.Store(ctx, "adv_1", "s1")
			return err
		}},
		{"Stores", func(ctx context.Context, c storage.Catalog) error {
			return c.Stores(ctx, "adv_1", func(*campaigns.Store) bool { *visits++; return true })
		}},
		{"Stores all", func(ctx context.Context, c storage.Catalog) error {
			return c.Stores(ctx, "", func(*campaigns.Store) bool { *visits++; return true })
		}},
		{"DeleteStore", func(ctx context.Context, c storage.Catalog) error {
			return c.DeleteStore(ctx, "adv_1", "s2")
		}},
		{"PutStock", func(ctx context.Context, c storage.Catalog) error {
			_, err := c.PutStock(ctx, "adv_1", []campaigns.StockUpdate{outRow("s2", "beer-350")})
			return err
		}},
		{"OutOfStock", func(ctx context.Context, c storage.Catalog) error {
			return c.OutOfStock(ctx, "adv_1", func(campaigns.StockKey) bool { *visits++; return true })
		}},
		{"OutOfStock all", func(ctx context.Context, c storage.Catalog) error {
			return c.OutOfStock(ctx, "", func(campaigns.StockKey) bool { *visits++; return true })
		}},
		{"Ping", func(ctx context.Context, c storage.Catalog) error {
			return c.Ping(ctx)
		}},
	}
}

func testPing(t *testing.T, c storage.Catalog) {
	must(t, c.Ping(t.Context()))
	seed(t, c)
	must(t, c.Ping(t.Context()))
}

// snapshot is everything a catalog seeded by seed holds, for checking that a
// refused call changed nothing.
func snapshot(t *testing.T, c storage.Catalog) string {
	t.Helper()
	ctx := t.Context()
	accounts, err := c.Accounts(ctx)
	must(t, err)
	cmps, err := c.Campaigns(ctx, "")
	must(t, err)
	var keys []string
	for _, a := range accounts {
		keys = append(keys, sortedOrNil(a.KeyHashes)...)
	}
	var ids []string
	for _, cm := range cmps {
		ids = append(ids, cm.ID)
	}
	var stores []string
	for _, s := range collectStores(t, c, "") {
		stores = append(stores, s.AdvertiserID+"/"+s.ID)
	}
	return fmt.Sprint(len(accounts), keys, ids, stores, collectOut(t, c, ""))
}

func testContextDone(t *testing.T, c storage.Catalog) {
	seed(t, c)
	before := snapshot(t, c)

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	ctxs := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"expired", expired, context.DeadlineExceeded},
	}
	for _, cx := range ctxs {
		var visits int
		for _, cl := range calls(&visits) {
			t.Run(cx.name+" "+cl.name, func(t *testing.T) {
				err := cl.do(cx.ctx, c)
				if !errors.Is(err, cx.want) {
					t.Fatalf("err = %v, want one wrapping %v", err, cx.want)
				}
				if visits != 0 {
					t.Fatalf("fn called %d times under a done context", visits)
				}
			})
		}
	}
	if after := snapshot(t, c); after != before {
		t.Fatalf("calls under a done context changed the catalog\nbefore %s\nafter  %s", before, after)
	}
}

func testCancelDuringIteration(t *testing.T, c storage.Catalog) {
	stores := MakeStores(5000)
	must(t, c.PutStores(t.Context(), "adv", stores))
	rows := make([]campaigns.StockUpdate, len(stores))
	for i, s := range stores {
		rows[i] = outRow(s.ID, s.Products[0])
	}
	mustStock(t)(c.PutStock(t.Context(), "adv", rows))

	tests := []struct {
		name string
		iter func(ctx context.Context, cancel func(), n *int) error
	}{
		{"Stores", func(ctx context.Context, cancel func(), n *int) error {
			return c.Stores(ctx, "", func(*campaigns.Store) bool {
				if *n++; *n == 10 {
					cancel()
				}
				return true
			})
		}},
		{"OutOfStock", func(ctx context.Context, cancel func(), n *int) error {
			return c.OutOfStock(ctx, "adv", func(campaigns.StockKey) bool {
				if *n++; *n == 10 {
					cancel()
				}
				return true
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var n int
			err := tt.iter(ctx, cancel, &n)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v after cancelling mid-iteration, want context.Canceled", err)
			}
			// Allow a chunk's worth of calls after the cancel, not the rest.
			if n >= len(stores)/2 {
				t.Fatalf("fn called %d times of %d after a cancel at the 10th", n, len(stores))
			}
		})
	}
}

func testClose(t *testing.T, c storage.Catalog) {
	seed(t, c)
	must(t, c.Close())
	var visits int
	for _, cl := range calls(&visits) {
		t.Run(cl.name, func(t *testing.T) {
			err := cl.do(t.Context(), c)
			if err == nil {
				t.Fatal("succeeded after Close")
			}
			if cl.name == "Ping" {
				wantCode(t, err, campaigns.Unavailable)
			}
			if visits != 0 {
				t.Fatalf("fn called %d times after Close", visits)
			}
		})
	}
	_ = c.Close() // a second Close must not panic; its result is the backend's
}
