package boltstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/campaigns"
)

// accountRecord is an Account as stored: Account hides KeyHashes from JSON so
// that the API never shows them, but the file must keep them.
type accountRecord struct {
	*campaigns.Account
	KeyHashes []string `json:"key_hashes"`
}

func encodeAccount(a *campaigns.Account) ([]byte, error) {
	return json.Marshal(accountRecord{Account: a, KeyHashes: a.KeyHashes})
}

func decodeAccount(v []byte) (*campaigns.Account, error) {
	r := accountRecord{Account: new(campaigns.Account)}
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("decode account: %w", err)
	}
	r.Account.KeyHashes = r.KeyHashes
	return r.Account, nil
}

// CreateAccount stores a new account with its key hashes. Conflict if the ID
// is taken or a key hash is already in use.
func (s *Store) CreateAccount(ctx context.Context, a *campaigns.Account) error {
	if err := checkKey("account id", a.ID); err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	for _, h := range a.KeyHashes {
		if err := checkKey("key hash", h); err != nil {
			return fmt.Errorf("create account: %w", err)
		}
	}
	v, err := encodeAccount(a)
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		accounts, keys := tx.Bucket(bucketAccounts), tx.Bucket(bucketKeys)
		id := []byte(a.ID)
		if accounts.Get(id) != nil {
			return campaigns.Errorf(campaigns.Conflict, "account %q already exists", a.ID)
		}
		for _, h := range a.KeyHashes {
			if keys.Get([]byte(h)) != nil {
				return campaigns.Errorf(campaigns.Conflict, "key hash already in use")
			}
		}
		for _, h := range a.KeyHashes {
			if err := keys.Put([]byte(h), id); err != nil {
				return err
			}
		}
		return accounts.Put(id, v)
	})
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	return nil
}

// Account returns the account with the given ID. NotFound.
func (s *Store) Account(ctx context.Context, id string) (*campaigns.Account, error) {
	var a *campaigns.Account
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		a, err = getAccount(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get account: %w", err)
	}
	return a, nil
}

func getAccount(tx *bolt.Tx, id string) (*campaigns.Account, error) {
	var v []byte
	if validKey(id) {
		v = tx.Bucket(bucketAccounts).Get([]byte(id))
	}
	if v == nil {
		return nil, campaigns.Errorf(campaigns.NotFound, "account %q not found", id)
	}
	return decodeAccount(v)
}

// AccountByKeyHash returns the account holding the key hash. NotFound.
func (s *Store) AccountByKeyHash(ctx context.Context, keyHash string) (*campaigns.Account, error) {
	var a *campaigns.Account
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var id []byte
		if validKey(keyHash) {
			id = tx.Bucket(bucketKeys).Get([]byte(keyHash))
		}
		if id == nil {
			return campaigns.Errorf(campaigns.NotFound, "no account holds the key")
		}
		var err error
		a, err = getAccount(tx, string(id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("account by key: %w", err)
	}
	return a, nil
}

// Accounts returns every account, ordered by ID.
func (s *Store) Accounts(ctx context.Context) ([]*campaigns.Account, error) {
	var all []*campaigns.Account
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEach(func(_, v []byte) error {
			a, err := decodeAccount(v)
			if err != nil {
				return err
			}
			all = append(all, a)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return all, nil
}

// UpdateAccountKeys implements storage.Catalog: the read, change and write
// are one write transaction.
func (s *Store) UpdateAccountKeys(ctx context.Context, id string, change func([]string) ([]string, error)) error {
	var changeErr error
	err := s.update(ctx, func(tx *bolt.Tx) error {
		a, err := getAccount(tx, id)
		if err != nil {
			return err
		}
		keyHashes, err := change(slices.Clone(a.KeyHashes))
		if err != nil {
			changeErr = err
			return err
		}
		for _, h := range keyHashes {
			if err := checkKey("key hash", h); err != nil {
				return err
			}
		}
		if slices.Equal(keyHashes, a.KeyHashes) {
			return nil
		}
		keys := tx.Bucket(bucketKeys)
		for _, h := range keyHashes {
			if owner := keys.Get([]byte(h)); owner != nil && string(owner) != id {
				return campaigns.Errorf(campaigns.Conflict, "key hash already in use by another account")
			}
		}
		for _, h := range a.KeyHashes {
			if !slices.Contains(keyHashes, h) {
				if err := keys.Delete([]byte(h)); err != nil {
					return err
				}
			}
		}
		for _, h := range keyHashes {
			if err := keys.Put([]byte(h), []byte(id)); err != nil {
				return err
			}
		}
		a.KeyHashes = slices.Clone(keyHashes)
		v, err := encodeAccount(a)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketAccounts).Put([]byte(id), v)
	})
	if changeErr != nil {
		return changeErr
	}
	if err != nil {
		return fmt.Errorf("update account keys: %w", err)
	}
	return nil
}
