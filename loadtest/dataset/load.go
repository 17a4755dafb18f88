package dataset

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage"
)

// storeChunk is how many stores LoadCatalog writes per transaction.
const storeChunk = 50_000

// stockChunk is how many stock rows one PutStock call carries, as a
// point-of-sale feed would (and the API's default limit per batch).
const stockChunk = 10_000

// LoadCatalog writes the world straight into a storage backend, skipping
// the HTTP API: accounts (with the keys of World.Key), stores, campaigns and
// stock. It works with any storage.Catalog (the embedded store, Redis); a
// navad server started on the backend then serves the world. Accounts and
// campaigns that already exist are replaced or kept, so a half-finished load
// can be run again. progress, if not nil, is called with a line of text
// after each step.
func LoadCatalog(ctx context.Context, store storage.Catalog, w *World, progress func(string)) error {
	say := func(format string, args ...any) {
		if progress != nil {
			progress(fmt.Sprintf(format, args...))
		}
	}
	var accounts []*campaigns.Account
	accounts = append(accounts, w.Agencies...)
	for _, a := range w.Advertisers {
		accounts = append(accounts, &a.Account)
	}
	accounts = append(accounts, w.Publishers...)
	for _, a := range accounts {
		acct := *a
		acct.KeyHashes = []string{auth.HashKey(w.Key(a.ID))}
		if err := store.CreateAccount(ctx, &acct); err != nil && campaigns.ErrorCode(err) != campaigns.Conflict {
			return fmt.Errorf("load account %s: %w", a.ID, err)
		}
	}
	say("%d accounts", len(accounts))
	n := 0
	for _, a := range w.Advertisers {
		for lo := 0; lo < len(a.Stores); lo += storeChunk {
			// PutStores keeps nothing of the slice, but the catalog
			// contract lets it set AdvertiserID: hand it a copy.
			chunk := append([]campaigns.Store(nil), a.Stores[lo:min(lo+storeChunk, len(a.Stores))]...)
			if err := store.PutStores(ctx, a.ID, chunk); err != nil {
				return fmt.Errorf("load stores of %s: %w", a.ID, err)
			}
			n += len(chunk)
		}
	}
	say("%d stores", n)
	for _, c := range w.Campaigns {
		if err := store.PutCampaign(ctx, c); err != nil {
			return fmt.Errorf("load campaign %s: %w", c.ID, err)
		}
	}
	say("%d campaigns", len(w.Campaigns))
	// Point-of-sale feeds arrive side by side; a backend may commit
	// concurrent batches together (the embedded store does).
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for adv, rows := range w.stockByAdvertiser() {
		for lo := 0; lo < len(rows); lo += stockChunk {
			chunk := rows[lo:min(lo+stockChunk, len(rows))]
			g.Go(func() error {
				if _, err := store.PutStock(gctx, adv, chunk); err != nil {
					return fmt.Errorf("load stock of %s: %w", adv, err)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	say("%d out-of-stock rows", len(w.OutOfStock))
	return nil
}

// stockByAdvertiser returns the out-of-stock reports as point-of-sale rows,
// by advertiser.
func (w *World) stockByAdvertiser() map[string][]campaigns.StockUpdate {
	out := map[string][]campaigns.StockUpdate{}
	no := false
	for _, k := range w.OutOfStock {
		out[k.AdvertiserID] = append(out[k.AdvertiserID], campaigns.StockUpdate{StoreID: k.StoreID, ProductID: k.ProductID, InStock: &no})
	}
	return out
}

// BuildIndex builds a serving index straight from the world, as a server
// would after loading it from storage: the in-process loader for Go
// benchmarks.
func BuildIndex(w *World) (*serving.Index, error) {
	stores := make([]*campaigns.Store, len(w.Stores))
	for i := range w.Stores {
		stores[i] = &w.Stores[i]
	}
	ix := serving.NewIndex()
	if err := ix.Load(w.Campaigns, stores, w.OutOfStock); err != nil {
		return nil, fmt.Errorf("build index: %w", err)
	}
	return ix, nil
}
