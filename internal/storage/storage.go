// Package storage declares what navad keeps durably and the contract every
// backend honours: the embedded store (package boltstore) for one machine,
// Redis (package redisstore) for many replicas. Package storagetest holds the
// one contract test suite that runs against each.
//
// Every method returns *campaigns.Error values with the codes named in its
// doc comment; any other error is internal. A Catalog method that returns nil
// has made its write durable: a crash right after loses nothing. (Caps
// counters are the exception; see Caps.)
package storage

import (
	"context"

	"github.com/navad/navad/campaigns"
)

// Catalog keeps the tenants and what they sell: accounts, campaigns, stores
// and stock. It is the source of truth; the serving index is built from it.
type Catalog interface {
	// CreateAccount stores a new account with its key hashes.
	// Conflict if the ID is taken or a key hash is already in use.
	CreateAccount(ctx context.Context, a *campaigns.Account) error
	// Account returns the account with the given ID. NotFound.
	Account(ctx context.Context, id string) (*campaigns.Account, error)
	// AccountByKeyHash returns the account holding the key hash. NotFound.
	AccountByKeyHash(ctx context.Context, keyHash string) (*campaigns.Account, error)
	// Accounts returns every account, ordered by ID.
	Accounts(ctx context.Context) ([]*campaigns.Account, error)
	// UpdateAccountKeys replaces the key hashes of an account with what
	// change makes of the current ones, atomically: no other write of the
	// account comes between the keys change is given and the write, on
	// any replica. change may be called more than once (again when another
	// write came between) and must not keep its argument; an error it
	// returns is returned as is. NotFound; Conflict if a new hash belongs
	// to another account.
	UpdateAccountKeys(ctx context.Context, id string, change func(current []string) ([]string, error)) error

	// PutCampaign creates or replaces a campaign (by ID). Conflict
	// (CampaignIDTaken) for the ID of a deleted campaign.
	PutCampaign(ctx context.Context, c *campaigns.Campaign) error
	// UpdateCampaign replaces a campaign with what change makes of it,
	// atomically: no other write of the campaign comes between the
	// campaign change is given and the write, on any replica, and one
	// deleted meanwhile stays deleted (NotFound). change may be called
	// more than once (again when another write came between) and must
	// keep the campaign's ID; an error it returns is returned as is. It
	// returns the campaign written. NotFound; Conflict when other writes
	// keep coming between, ten times over.
	UpdateCampaign(ctx context.Context, id string, change func(*campaigns.Campaign) (*campaigns.Campaign, error)) (*campaigns.Campaign, error)
	// CreateCampaign stores a new campaign. Conflict if a campaign of its
	// ID exists, or existed: the ID of a deleted campaign is not given
	// again, so that the counters kept by campaign ID (budgets, frequency
	// windows) and its reports stay its own.
	CreateCampaign(ctx context.Context, c *campaigns.Campaign) error
	// Campaign returns the campaign with the given ID. NotFound.
	Campaign(ctx context.Context, id string) (*campaigns.Campaign, error)
	// Campaigns returns the campaigns of one advertiser, or of all when
	// advertiserID is "", ordered by ID.
	Campaigns(ctx context.Context, advertiserID string) ([]*campaigns.Campaign, error)
	// DeleteCampaign removes a campaign and keeps its ID as taken
	// (CreateCampaign). It frees the campaign's counters in the backend's
	// Caps, which can no longer matter: its total reads 0 after it, and
	// nothing of them is kept for ever (storagetest.RunCampaignCaps).
	// NotFound.
	DeleteCampaign(ctx context.Context, id string) error

	// PutStores upserts stores of one advertiser (by store ID) all or
	// nothing. Stores are stored with AdvertiserID set to advertiserID.
	PutStores(ctx context.Context, advertiserID string, stores []campaigns.Store) error
	// Store returns one store of an advertiser. NotFound.
	Store(ctx context.Context, advertiserID, storeID string) (*campaigns.Store, error)
	// Stores calls fn for every store of an advertiser, or of all when
	// advertiserID is "", ordered by (advertiser, store ID), until fn returns
	// false. The *Store passed to fn is fn's to keep.
	Stores(ctx context.Context, advertiserID string, fn func(*campaigns.Store) bool) error
	// DeleteStore removes a store and its stock rows. NotFound.
	DeleteStore(ctx context.Context, advertiserID, storeID string) error

	// PutStock records a point-of-sale batch of one advertiser all or
	// nothing. Invalid, with a Detail per row (Row counted from 1), when a
	// row names a store the advertiser does not have. Rows apply in order:
	// a row with an AsOf before the time kept for its (store, product) (the
	// last applied row's AsOf) is skipped, and stale lists such rows'
	// indexes (from 0); a row with an AsOf at or after it applies and
	// keeps its time; a row without one applies and forgets the time.
	// DeleteStore forgets the times of the store's rows.
	PutStock(ctx context.Context, advertiserID string, rows []campaigns.StockUpdate) (stale []int, err error)
	// OutOfStock calls fn for every (store, product) of an advertiser, or of
	// all when advertiserID is "", that was last reported out of stock, until
	// fn returns false.
	OutOfStock(ctx context.Context, advertiserID string, fn func(campaigns.StockKey) bool) error

	// Ping reports whether the backend can serve reads and writes now.
	// Unavailable.
	Ping(ctx context.Context) error
	// Close releases the backend. Further calls fail.
	Close() error
}

// CampaignIDTaken is CreateCampaign's Conflict, worded for the API's
// caller: id is a campaign's, or was one's until it was deleted.
func CampaignIDTaken(id string, deleted bool) error {
	if deleted {
		return campaigns.Errorf(campaigns.Conflict, "campaign ID %q belonged to a deleted campaign; IDs are not given again, so choose another", id)
	}
	return campaigns.Errorf(campaigns.Conflict, "campaign %q already exists", id)
}
