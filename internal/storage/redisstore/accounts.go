package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/campaigns"
)

// accountRecord is an Account as stored: Account hides KeyHashes from JSON so
// that the API never shows them, but Redis must keep them.
type accountRecord struct {
	*campaigns.Account
	KeyHashes []string `json:"key_hashes"`
}

func encodeAccount(a *campaigns.Account) (string, error) {
	b, err := json.Marshal(accountRecord{Account: a, KeyHashes: a.KeyHashes})
	return string(b), err
}

func decodeAccount(v string) (*campaigns.Account, error) {
	r := accountRecord{Account: new(campaigns.Account)}
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return nil, fmt.Errorf("decode account: %w", err)
	}
	r.Account.KeyHashes = r.KeyHashes
	return r.Account, nil
}

// CreateAccount stores a new account with its key hashes. Conflict if the ID
// is taken or a key hash is already in use.
func (s *Store) CreateAccount(ctx context.Context, a *campaigns.Account) error {
	const op = "create account"
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := checkKey("account id", a.ID); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for _, h := range a.KeyHashes {
		if err := checkKey("key hash", h); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	v, err := encodeAccount(a)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	args := []any{s.retentionArg(), s.origin, a.ID, v}
	for _, h := range a.KeyHashes {
		args = append(args, h)
	}
	res, err := s.runWrite(ctx, op, CampaignsStream, scriptCreateAccount.Run(commitCtx(ctx), s.client, []string{keyAccounts, keyKeys, Stream(0).seqKey(), Stream(0).feedKey()}, args...))
	switch {
	case err != nil:
		return err
	case res == "ok":
	case res == "exists":
		return fmt.Errorf("%s: %w", op, conflict("account %q already exists", a.ID))
	case res == "key":
		return fmt.Errorf("%s: %w", op, conflict("key hash already in use"))
	default:
		return fmt.Errorf("%s: unexpected reply %q", op, res)
	}
	return nil
}

// Account returns the account with the given ID. NotFound.
func (s *Store) Account(ctx context.Context, id string) (*campaigns.Account, error) {
	const op = "get account"
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !validKey(id) {
		return nil, fmt.Errorf("%s: %w", op, notFound("account %q not found", id))
	}
	v, err := s.client.HGet(ctx, keyAccounts, id).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%s: %w", op, notFound("account %q not found", id))
	}
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	a, err := decodeAccount(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return a, nil
}

// AccountByKeyHash returns the account holding the key hash, in one round
// trip. NotFound.
func (s *Store) AccountByKeyHash(ctx context.Context, keyHash string) (*campaigns.Account, error) {
	const op = "account by key"
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !validKey(keyHash) {
		return nil, fmt.Errorf("%s: %w", op, notFound("no account holds the key"))
	}
	v, err := scriptAccountByKey.Run(ctx, s.client, []string{keyAccounts, keyKeys}, keyHash).Text()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%s: %w", op, notFound("no account holds the key"))
	}
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	a, err := decodeAccount(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return a, nil
}

// Accounts returns every account, ordered by ID. Accounts are tenants, a few
// thousand at most, so they are read in one HGETALL.
func (s *Store) Accounts(ctx context.Context) ([]*campaigns.Account, error) {
	const op = "list accounts"
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	m, err := s.client.HGetAll(ctx, keyAccounts).Result()
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	all := make([]*campaigns.Account, 0, len(ids))
	for _, id := range ids {
		a, err := decodeAccount(m[id])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		all = append(all, a)
	}
	return all, nil
}

// UpdateAccountKeys implements storage.Catalog.
//
// The account is read, its keys changed in Go and the account written back
// by a script that first checks that the record is still the one read;
// when a concurrent write, from this replica or another, got there first
// it starts again from the new record.
func (s *Store) UpdateAccountKeys(ctx context.Context, id string, change func([]string) ([]string, error)) error {
	const op = "update account keys"
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !validKey(id) {
		return fmt.Errorf("%s: %w", op, notFound("account %q not found", id))
	}
	for attempt := 0; ; attempt++ {
		cur, err := s.client.HGet(ctx, keyAccounts, id).Result()
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("%s: %w", op, notFound("account %q not found", id))
		}
		if err != nil {
			return s.fail(ctx, op, err)
		}
		a, err := decodeAccount(cur)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		old := a.KeyHashes
		keyHashes, err := change(slices.Clone(old))
		if err != nil {
			return err
		}
		for _, h := range keyHashes {
			if err := checkKey("key hash", h); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		}
		if slices.Equal(keyHashes, old) {
			return nil // nothing to write, and nothing for replicas to hear of
		}
		a.KeyHashes = slices.Clone(keyHashes)
		next, err := encodeAccount(a)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		args := []any{s.retentionArg(), s.origin, id, cur, next, strconv.Itoa(len(old))}
		for _, h := range old {
			args = append(args, h)
		}
		for _, h := range keyHashes {
			args = append(args, h)
		}
		if err := s.begin(ctx); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		res, err := s.runWrite(ctx, op, CampaignsStream, scriptSetAccountKeys.Run(commitCtx(ctx), s.client, []string{keyAccounts, keyKeys, Stream(0).seqKey(), Stream(0).feedKey()}, args...))
		switch {
		case err != nil:
			return err
		case res == "ok":
			return nil
		case res == "notfound":
			return fmt.Errorf("%s: %w", op, notFound("account %q not found", id))
		case res == "key":
			return fmt.Errorf("%s: %w", op, conflict("key hash already in use by another account"))
		case res == "changed" && attempt < 10:
			continue
		case res == "changed":
			return fmt.Errorf("%s: %w", op, conflict("account %q keeps changing; try again", id))
		default:
			return fmt.Errorf("%s: unexpected reply %q", op, res)
		}
	}
}
