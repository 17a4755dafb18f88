package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// Campaigns are stored as JSON: there are thousands, not millions, they are
// read once at start and on change, and JSON keeps every field (and the zone
// offset of times) without a codec to maintain.

func decodeCampaign(v []byte) (*campaigns.Campaign, error) {
	c := new(campaigns.Campaign)
	if err := json.Unmarshal(v, c); err != nil {
		return nil, fmt.Errorf("decode campaign: %w", err)
	}
	return c, nil
}

// PutCampaign creates or replaces a campaign (by ID).
func (s *Store) PutCampaign(ctx context.Context, c *campaigns.Campaign) error {
	return s.writeCampaign(ctx, "put campaign", c, false)
}

// UpdateCampaign implements storage.Catalog: the read, change and write
// are one transaction.
func (s *Store) UpdateCampaign(ctx context.Context, id string, change func(*campaigns.Campaign) (*campaigns.Campaign, error)) (*campaigns.Campaign, error) {
	const op = "update campaign"
	var out *campaigns.Campaign
	err := s.update(ctx, func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketCampaigns)
		v := all.Get([]byte(id))
		if v == nil {
			return campaigns.Errorf(campaigns.NotFound, "campaign %q not found", id)
		}
		old, err := decodeCampaign(v)
		if err != nil {
			return err
		}
		c, err := change(old)
		if err != nil {
			return errChange{err}
		}
		if c.ID != id {
			return campaigns.Errorf(campaigns.Invalid, "campaign %q: an update cannot change its ID", id)
		}
		if err := putCampaignTx(tx, c, old); err != nil {
			return err
		}
		out = c
		return nil
	})
	var ce errChange
	if errors.As(err, &ce) {
		return nil, ce.err
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// errChange carries the error of an update's change out of its
// transaction, to be returned as is.
type errChange struct{ err error }

func (e errChange) Error() string { return e.err.Error() }

// CreateCampaign implements storage.Catalog.
func (s *Store) CreateCampaign(ctx context.Context, c *campaigns.Campaign) error {
	return s.writeCampaign(ctx, "create campaign", c, true)
}

// writeCampaign puts c; when create, only if its ID was never taken.
func (s *Store) writeCampaign(ctx context.Context, op string, c *campaigns.Campaign, create bool) error {
	// putCampaignTx checks c's keys.
	err := s.update(ctx, func(tx *bolt.Tx) error {
		id := []byte(c.ID)
		old := tx.Bucket(bucketCampaigns).Get(id)
		if create && old != nil {
			return storage.CampaignIDTaken(c.ID, false)
		}
		if tx.Bucket(bucketCampaignsGone).Get(id) != nil {
			return storage.CampaignIDTaken(c.ID, true)
		}
		var prev *campaigns.Campaign
		if old != nil {
			var err error
			if prev, err = decodeCampaign(old); err != nil {
				return err
			}
		}
		return putCampaignTx(tx, c, prev)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// putCampaignTx writes c in tx over prev, the campaign of its ID stored
// before (nil for none).
func putCampaignTx(tx *bolt.Tx, c, prev *campaigns.Campaign) error {
	if err := checkKey("campaign id", c.ID); err != nil {
		return err
	}
	if err := checkKey("advertiser id", c.AdvertiserID); err != nil {
		return err
	}
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	byAdv := tx.Bucket(bucketByAdv)
	if prev != nil && prev.AdvertiserID != c.AdvertiserID {
		if err := byAdv.Delete(joinKey(prev.AdvertiserID, c.ID)); err != nil {
			return err
		}
	}
	if err := byAdv.Put(joinKey(c.AdvertiserID, c.ID), empty); err != nil {
		return err
	}
	return tx.Bucket(bucketCampaigns).Put([]byte(c.ID), v)
}

// Campaign returns the campaign with the given ID. NotFound.
func (s *Store) Campaign(ctx context.Context, id string) (*campaigns.Campaign, error) {
	var v []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if validKey(id) {
			v = bytes.Clone(tx.Bucket(bucketCampaigns).Get([]byte(id)))
		}
		if v == nil {
			return campaigns.Errorf(campaigns.NotFound, "campaign %q not found", id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get campaign: %w", err)
	}
	c, err := decodeCampaign(v)
	if err != nil {
		return nil, fmt.Errorf("get campaign: %w", err)
	}
	return c, nil
}

// Campaigns returns the campaigns of one advertiser, or of all when
// advertiserID is "", ordered by ID.
func (s *Store) Campaigns(ctx context.Context, advertiserID string) ([]*campaigns.Campaign, error) {
	// Copy the raw records in the transaction and decode them after it, so
	// that the read transaction stays short.
	var raw [][]byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketCampaigns)
		if advertiserID == "" {
			return all.ForEach(func(_, v []byte) error {
				raw = append(raw, bytes.Clone(v))
				return nil
			})
		}
		if !validKey(advertiserID) {
			return nil
		}
		prefix := prefixKey(advertiserID)
		c := tx.Bucket(bucketByAdv).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			v := all.Get(k[len(prefix):])
			if v == nil {
				return fmt.Errorf("index names missing campaign %q", k[len(prefix):])
			}
			raw = append(raw, bytes.Clone(v))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	list := make([]*campaigns.Campaign, 0, len(raw))
	for _, v := range raw {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("list campaigns: %w", err)
		}
		c, err := decodeCampaign(v)
		if err != nil {
			return nil, fmt.Errorf("list campaigns: %w", err)
		}
		list = append(list, c)
	}
	return list, nil
}

// DeleteCampaign removes a campaign, and its caps' counters: from the file
// in the same transaction, then from the memory of the Caps open on s.
// NotFound.
func (s *Store) DeleteCampaign(ctx context.Context, id string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketCampaigns)
		var v []byte
		if validKey(id) {
			v = all.Get([]byte(id))
		}
		if v == nil {
			return campaigns.Errorf(campaigns.NotFound, "campaign %q not found", id)
		}
		c, err := decodeCampaign(v)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketByAdv).Delete(joinKey(c.AdvertiserID, id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCampaignsGone).Put([]byte(id), empty); err != nil {
			return err
		}
		if err := deleteCaps(tx, id); err != nil {
			return err
		}
		return all.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete campaign: %w", err)
	}
	s.forgetCaps(id)
	return nil
}
