package metrics

import (
	"context"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// Catalog is a storage.Catalog that records the latency and result of every
// call in navad_storage_operation_duration_seconds, then returns what the
// wrapped backend returned, unchanged. It adds two clock reads and one
// histogram observation to a call. The iterating calls (Stores, OutOfStock)
// are timed as a whole, the caller's per-item work included.
type Catalog struct {
	next storage.Catalog
	m    *Metrics
}

var _ storage.Catalog = (*Catalog)(nil)

// InstrumentCatalog wraps next so that every call is measured in m.
func InstrumentCatalog(next storage.Catalog, m *Metrics) *Catalog {
	return &Catalog{next: next, m: m}
}

// Unwrap returns the backend being measured.
func (c *Catalog) Unwrap() storage.Catalog { return c.next }

// done records the call named op that started at start and ended with err.
func (c *Catalog) done(op string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = campaigns.ErrorCode(err)
	}
	c.m.observeStorage(op, result, time.Since(start))
}

// CreateAccount implements storage.Catalog.
func (c *Catalog) CreateAccount(ctx context.Context, a *campaigns.Account) error {
	start := time.Now()
	err := c.next.CreateAccount(ctx, a)
	c.done("create_account", start, err)
	return err
}

// Account implements storage.Catalog.
func (c *Catalog) Account(ctx context.Context, id string) (*campaigns.Account, error) {
	start := time.Now()
	a, err := c.next.Account(ctx, id)
	c.done("account", start, err)
	return a, err
}

// AccountByKeyHash implements storage.Catalog.
func (c *Catalog) AccountByKeyHash(ctx context.Context, keyHash string) (*campaigns.Account, error) {
	start := time.Now()
	a, err := c.next.AccountByKeyHash(ctx, keyHash)
	c.done("account_by_key_hash", start, err)
	return a, err
}

// Accounts implements storage.Catalog.
func (c *Catalog) Accounts(ctx context.Context) ([]*campaigns.Account, error) {
	start := time.Now()
	as, err := c.next.Accounts(ctx)
	c.done("accounts", start, err)
	return as, err
}

// UpdateAccountKeys implements storage.Catalog.
func (c *Catalog) UpdateAccountKeys(ctx context.Context, id string, change func([]string) ([]string, error)) error {
	start := time.Now()
	err := c.next.UpdateAccountKeys(ctx, id, change)
	c.done("update_account_keys", start, err)
	return err
}

// CreateCampaign implements storage.Catalog.
func (c *Catalog) CreateCampaign(ctx context.Context, cp *campaigns.Campaign) error {
	start := time.Now()
	err := c.next.CreateCampaign(ctx, cp)
	c.done("create_campaign", start, err)
	return err
}

// PutCampaign implements storage.Catalog.
func (c *Catalog) PutCampaign(ctx context.Context, cp *campaigns.Campaign) error {
	start := time.Now()
	err := c.next.PutCampaign(ctx, cp)
	c.done("put_campaign", start, err)
	return err
}

// UpdateCampaign implements storage.Catalog.
func (c *Catalog) UpdateCampaign(ctx context.Context, id string, change func(*campaigns.Campaign) (*campaigns.Campaign, error)) (*campaigns.Campaign, error) {
	start := time.Now()
	cp, err := c.next.UpdateCampaign(ctx, id, change)
	c.done("update_campaign", start, err)
	return cp, err
}

// Campaign implements storage.Catalog.
func (c *Catalog) Campaign(ctx context.Context, id string) (*campaigns.Campaign, error) {
	start := time.Now()
	cp, err := c.next.Campaign(ctx, id)
	c.done("campaign", start, err)
	return cp, err
}

// Campaigns implements storage.Catalog.
func (c *Catalog) Campaigns(ctx context.Context, advertiserID string) ([]*campaigns.Campaign, error) {
	start := time.Now()
	cs, err := c.next.Campaigns(ctx, advertiserID)
	c.done("campaigns", start, err)
	return cs, err
}

// DeleteCampaign implements storage.Catalog.
func (c *Catalog) DeleteCampaign(ctx context.Context, id string) error {
	start := time.Now()
	err := c.next.DeleteCampaign(ctx, id)
	c.done("delete_campaign", start, err)
	return err
}

// PutStores implements storage.Catalog.
func (c *Catalog) PutStores(ctx context.Context, advertiserID string, stores []campaigns.Store) error {
	start := time.Now()
	err := c.next.PutStores(ctx, advertiserID, stores)
	c.done("put_stores", start, err)
	return err
}

// Store implements storage.Catalog.
func (c *Catalog) Store(ctx context.Context, advertiserID, storeID string) (*campaigns.Store, error) {
	start := time.Now()
	s, err := c.next.Store(ctx, advertiserID, storeID)
	c.done("store", start, err)
	return s, err
}

// Stores implements storage.Catalog.
func (c *Catalog) Stores(ctx context.Context, advertiserID string, fn func(*campaigns.Store) bool) error {
	start := time.Now()
	err := c.next.Stores(ctx, advertiserID, fn)
	c.done("stores", start, err)
	return err
}

// DeleteStore implements storage.Catalog.
func (c *Catalog) DeleteStore(ctx context.Context, advertiserID, storeID string) error {
	start := time.Now()
	err := c.next.DeleteStore(ctx, advertiserID, storeID)
	c.done("delete_store", start, err)
	return err
}

// PutStock implements storage.Catalog.
func (c *Catalog) PutStock(ctx context.Context, advertiserID string, rows []campaigns.StockUpdate) ([]int, error) {
	start := time.Now()
	stale, err := c.next.PutStock(ctx, advertiserID, rows)
	c.done("put_stock", start, err)
	return stale, err
}

// OutOfStock implements storage.Catalog.
func (c *Catalog) OutOfStock(ctx context.Context, advertiserID string, fn func(campaigns.StockKey) bool) error {
	start := time.Now()
	err := c.next.OutOfStock(ctx, advertiserID, fn)
	c.done("out_of_stock", start, err)
	return err
}

// Ping implements storage.Catalog.
func (c *Catalog) Ping(ctx context.Context) error {
	start := time.Now()
	err := c.next.Ping(ctx)
	c.done("ping", start, err)
	return err
}

// Close implements storage.Catalog. It is not measured: it happens once.
func (c *Catalog) Close() error { return c.next.Close() }
