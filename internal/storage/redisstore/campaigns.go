package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// Campaigns are stored as JSON, as in the embedded store: there are
// thousands, they are read at start and on change, and JSON keeps every
// field (and the zone offset of times) without a codec to maintain.

// readChunk is how many records a read fetches per command: large enough
// that round trips do not dominate, small enough that one reply never blocks
// Redis for long.
const readChunk = 1000

func decodeCampaign(v string) (*campaigns.Campaign, error) {
	c := new(campaigns.Campaign)
	if err := json.Unmarshal([]byte(v), c); err != nil {
		return nil, fmt.Errorf("decode campaign: %w", err)
	}
	return c, nil
}

func campaignKeys() []string {
	return []string{keyCampaigns, keyCampaignAdv, keyCampaignsByAdv, Stream(0).seqKey(), Stream(0).feedKey(), keyCampaignsGone, keyCapsPending}
}

// PutCampaign creates or replaces a campaign (by ID).
func (s *Store) PutCampaign(ctx context.Context, c *campaigns.Campaign) error {
	_, err := s.writeCampaign(ctx, "put campaign", c, "put", "")
	return err
}

// UpdateCampaign implements storage.Catalog: the write is a script that
// checks the campaign is still as read, and the update is read again and
// changed again when it is not.
func (s *Store) UpdateCampaign(ctx context.Context, id string, change func(*campaigns.Campaign) (*campaigns.Campaign, error)) (*campaigns.Campaign, error) {
	const op = "update campaign"
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !validKey(id) {
		return nil, fmt.Errorf("%s: %w", op, notFound("campaign %q not found", id))
	}
	for attempt := 0; ; attempt++ {
		cur, err := s.client.HGet(ctx, keyCampaigns, id).Result()
		if errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("%s: %w", op, notFound("campaign %q not found", id))
		}
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		old, err := decodeCampaign(cur)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		c, err := change(old)
		if err != nil {
			return nil, err
		}
		if c.ID != id {
			return nil, fmt.Errorf("%s: %w", op, campaigns.Errorf(campaigns.Invalid, "campaign %q: an update cannot change its ID", id))
		}
		res, err := s.writeCampaign(ctx, op, c, "update", cur)
		switch {
		case err != nil:
			return nil, err
		case res == "ok":
			return c, nil
		case res == "notfound":
			return nil, fmt.Errorf("%s: %w", op, notFound("campaign %q not found", id))
		case res == "changed" && attempt < 10:
			continue
		case res == "changed":
			return nil, fmt.Errorf("%s: %w", op, conflict("campaign %q keeps changing; try again", id))
		default:
			return nil, fmt.Errorf("%s: unexpected reply %q", op, res)
		}
	}
}

// CreateCampaign implements storage.Catalog: the checks and the write are
// one script, so that replicas creating the same ID at once cannot both
// succeed.
func (s *Store) CreateCampaign(ctx context.Context, c *campaigns.Campaign) error {
	_, err := s.writeCampaign(ctx, "create campaign", c, "create", "")
	return err
}

// writeCampaign runs scriptPutCampaign for c in mode ("put", "create" or
// "update" over read, the campaign's JSON as read), and returns its reply
// but for "exists" and "gone", which it returns as errors.
func (s *Store) writeCampaign(ctx context.Context, op string, c *campaigns.Campaign, mode, read string) (string, error) {
	if err := s.begin(ctx); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if err := checkKey("campaign id", c.ID); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if err := checkKey("advertiser id", c.AdvertiserID); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	v, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	res, err := s.runWrite(ctx, op, CampaignsStream, scriptPutCampaign.Run(commitCtx(ctx), s.client, campaignKeys(), s.retentionArg(), s.origin, c.ID, c.AdvertiserID, v, mode, read))
	switch {
	case err != nil:
		return "", err
	case res == "exists", res == "gone":
		return "", fmt.Errorf("%s: %w", op, storage.CampaignIDTaken(c.ID, res == "gone"))
	}
	return res, nil
}

// Campaign returns the campaign with the given ID. NotFound.
func (s *Store) Campaign(ctx context.Context, id string) (*campaigns.Campaign, error) {
	const op = "get campaign"
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !validKey(id) {
		return nil, fmt.Errorf("%s: %w", op, notFound("campaign %q not found", id))
	}
	v, err := s.client.HGet(ctx, keyCampaigns, id).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%s: %w", op, notFound("campaign %q not found", id))
	}
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	c, err := decodeCampaign(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return c, nil
}

// Campaigns returns the campaigns of one advertiser, or of all when
// advertiserID is "", ordered by ID. It reads IDs first, then the records in
// chunks; a campaign deleted in between is left out.
func (s *Store) Campaigns(ctx context.Context, advertiserID string) ([]*campaigns.Campaign, error) {
	const op = "list campaigns"
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var ids []string
	if advertiserID == "" {
		all, err := s.client.HKeys(ctx, keyCampaignAdv).Result()
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		ids = all
		slices.Sort(ids)
	} else {
		if !validKey(advertiserID) {
			return nil, nil
		}
		lo, hi := prefixRange(advertiserID)
		members, err := s.client.ZRangeByLex(ctx, keyCampaignsByAdv, &redis.ZRangeBy{Min: lo, Max: hi}).Result()
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		ids = make([]string, len(members))
		for i, m := range members {
			ids[i] = m[len(advertiserID)+1:]
		}
	}
	list := make([]*campaigns.Campaign, 0, len(ids))
	for start := 0; start < len(ids); start += readChunk {
		chunk := ids[start:min(start+readChunk, len(ids))]
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", op, unavailableErr(err))
		}
		vals, err := s.client.HMGet(ctx, keyCampaigns, chunk...).Result()
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		for _, v := range vals {
			str, ok := v.(string)
			if !ok {
				continue // deleted since the IDs were read
			}
			c, err := decodeCampaign(str)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
			list = append(list, c)
		}
	}
	return list, nil
}

// DeleteCampaign removes a campaign, and frees its caps' total. NotFound.
//
// The total is the one counter of a campaign that Redis keeps without an
// expiry (caps.go). It is under the campaign's own hash tag, in another
// Cluster slot than the catalog, so no script can delete the campaign and
// free its total in one atomic unit. Instead the delete script also notes
// the ID in {navad}:caps_pending, and the total is freed by a second
// command once the campaign is deleted (never before: a delete that then
// fails must not reset a live campaign's total), which takes the ID off
// the set. It is set to 0 to expire with the days, not removed, so that a
// reservation already in flight on another replica increments a key that
// still expires rather than recreate one for ever (INCR keeps a key's
// expiry). Should the second command fail (Redis lost in between), the
// error says so, the campaign stays deleted, and the ID stays in
// caps_pending until a sweep (FreeDeletedCaps) frees the total.
func (s *Store) DeleteCampaign(ctx context.Context, id string) error {
	const op = "delete campaign"
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !validKey(id) {
		return fmt.Errorf("%s: %w", op, notFound("campaign %q not found", id))
	}
	res, err := s.runWrite(ctx, op, CampaignsStream, scriptDeleteCampaign.Run(commitCtx(ctx), s.client, campaignKeys(), s.retentionArg(), s.origin, id))
	switch {
	case err != nil:
		return err
	case res == "notfound":
		return fmt.Errorf("%s: %w", op, notFound("campaign %q not found", id))
	case res != "ok":
		return fmt.Errorf("%s: unexpected reply %q", op, res)
	}
	if checkCampaignKey(id) == nil { // else an ID that Caps refuses: no counters
		if err := s.client.Set(commitCtx(ctx), capsTag(id)+":total", 0, capsDayKeep).Err(); err != nil {
			return s.fail(ctx, op+": free caps", err)
		}
	}
	// Not reported: should it fail, the sweep finds a total that already
	// expires, and only takes the ID off the set.
	_ = s.client.SRem(commitCtx(ctx), keyCapsPending, id).Err()
	return nil
}
