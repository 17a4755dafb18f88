package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage/record"
)

const (
	// scanChunk is how many records an iteration reads per read
	// transaction before it calls fn on them.
	scanChunk = 1024
	// ctxEvery is how many rows a bulk write handles between checks of its
	// context.
	ctxEvery = 4096
	// storesFillPercent packs store pages fuller than bbolt's default of one
	// half: stores are mostly loaded in bulk, in key order, and rarely
	// inserted in the middle, so full pages make a smaller file that loads
	// faster.
	storesFillPercent = 0.9
)

// empty is the value of keys that carry their meaning in the key. bbolt may
// return a nil value for a nil Put inside the writing transaction, so a
// non-nil empty slice is used.
var empty = []byte{}

// PutStores upserts stores of one advertiser (by store ID) all or nothing.
// Stores are stored with AdvertiserID set to advertiserID. A store with an
// empty ID fails the whole call. Duplicate IDs in one call: the last wins.
func (s *Store) PutStores(ctx context.Context, advertiserID string, stores []campaigns.Store) error {
	if err := checkKey("advertiser id", advertiserID); err != nil {
		return fmt.Errorf("put stores: %w", err)
	}
	for i := range stores {
		if err := checkKey("store id", stores[i].ID); err != nil {
			return fmt.Errorf("put stores: row %d: %w", i+1, err)
		}
	}
	// Encode before taking the write lock, into two shared buffers: one
	// allocation each rather than two per store. bbolt only needs the
	// slices to live until commit.
	type row struct{ key, val []byte }
	rows := make([]row, len(stores))
	keyLen, valLen := 0, 0
	for i := range stores {
		keyLen += len(advertiserID) + 1 + len(stores[i].ID)
		valLen += record.StoreSize(&stores[i])
	}
	keyBuf, valBuf := make([]byte, 0, keyLen), make([]byte, 0, valLen)
	keyOff := make([]int, len(stores)+1)
	valOff := make([]int, len(stores)+1)
	for i := range stores {
		keyBuf = append(append(append(keyBuf, advertiserID...), sep), stores[i].ID...)
		valBuf = record.AppendStore(valBuf, &stores[i])
		keyOff[i+1], valOff[i+1] = len(keyBuf), len(valBuf)
	}
	for i := range rows {
		rows[i] = row{keyBuf[keyOff[i]:keyOff[i+1]:keyOff[i+1]], valBuf[valOff[i]:valOff[i+1]:valOff[i+1]]}
	}
	// Key order makes the B+tree inserts sequential; stable so that the last
	// of duplicate IDs is written last and wins.
	slices.SortStableFunc(rows, func(a, b row) int { return bytes.Compare(a.key, b.key) })

	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStores)
		b.FillPercent = storesFillPercent
		for i, r := range rows {
			if i%ctxEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err // rolls back: nothing written
				}
			}
			if err := b.Put(r.key, r.val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put stores: %w", err)
	}
	return nil
}

// Store returns one store of an advertiser. NotFound.
func (s *Store) Store(ctx context.Context, advertiserID, storeID string) (*campaigns.Store, error) {
	var st *campaigns.Store
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var key, v []byte
		if validKey(advertiserID) && validKey(storeID) {
			key = joinKey(advertiserID, storeID)
			v = tx.Bucket(bucketStores).Get(key)
		}
		if v == nil {
			return campaigns.Errorf(campaigns.NotFound, "store %q of advertiser %q not found", storeID, advertiserID)
		}
		var d storeDecoder
		var err error
		st, err = d.decode(key, v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get store: %w", err)
	}
	return st, nil
}

// Stores calls fn for every store of an advertiser, or of all when
// advertiserID is "", ordered by (advertiser, store ID), until fn returns
// false. The *Store passed to fn is fn's to keep. It checks ctx between
// stores; fn may call other methods of s. The iteration is not a snapshot
// (see the package comment).
//
// Stores that name the same product share the product ID string.
func (s *Store) Stores(ctx context.Context, advertiserID string, fn func(*campaigns.Store) bool) error {
	if advertiserID != "" && !validKey(advertiserID) {
		return nil // no such advertiser can have stores
	}
	var d storeDecoder
	err := scan(ctx, s, bucketStores, prefixKey(advertiserID), d.decode, fn)
	if err != nil {
		return fmt.Errorf("list stores: %w", err)
	}
	return nil
}

// DeleteStore removes a store and its stock rows. NotFound.
func (s *Store) DeleteStore(ctx context.Context, advertiserID, storeID string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var key []byte
		stores := tx.Bucket(bucketStores)
		if validKey(advertiserID) && validKey(storeID) {
			key = joinKey(advertiserID, storeID)
		}
		if key == nil || stores.Get(key) == nil {
			return campaigns.Errorf(campaigns.NotFound, "store %q of advertiser %q not found", storeID, advertiserID)
		}
		if err := stores.Delete(key); err != nil {
			return err
		}
		// Collect, then delete: deleting under a moving bbolt cursor can
		// skip keys.
		prefix := joinKey(advertiserID, storeID, "") // ends in sep: not "s1-b" for "s1"
		for _, name := range [][]byte{bucketStockOut, bucketStockAt} {
			b := tx.Bucket(name)
			var doomed [][]byte
			c := b.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				doomed = append(doomed, bytes.Clone(k))
			}
			for _, k := range doomed {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete store: %w", err)
	}
	return nil
}

// PutStock records a point-of-sale batch of one advertiser all or nothing.
// Invalid, with a Detail per row (Row counted from 1), when a row names a
// store the advertiser does not have; then nothing is written. Rows apply
// in order, so within a batch the last row for a (store, product) wins,
// unless it is stale (see storage.Catalog).
//
// Concurrent calls share one transaction and one fsync (bbolt's Batch), so
// many small point-of-sale feeds cost one disk flush, at the price of up to
// 10 ms of added latency for a lone caller.
func (s *Store) PutStock(ctx context.Context, advertiserID string, rows []campaigns.StockUpdate) ([]int, error) {
	if err := checkKey("advertiser id", advertiserID); err != nil {
		return nil, fmt.Errorf("put stock: %w", err)
	}
	for i, r := range rows {
		if err := checkKey("product id", r.ProductID); err != nil {
			return nil, fmt.Errorf("put stock: row %d: %w", i+1, err)
		}
	}
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("put stock: %w", err)
	}
	defer s.end()
	var stale []int
	// Batch may run fn more than once; each run starts stale afresh.
	err := s.db.Batch(func(tx *bolt.Tx) error {
		stale = stale[:0]
		stores, stock, at := tx.Bucket(bucketStores), tx.Bucket(bucketStockOut), tx.Bucket(bucketStockAt)
		var p campaigns.Problems
		for i, r := range rows {
			if !validKey(r.StoreID) || stores.Get(joinKey(advertiserID, r.StoreID)) == nil {
				p.AddRow(i+1, "unknown store %q", r.StoreID)
			}
		}
		if err := p.Err(); err != nil {
			return err
		}
		for i, r := range rows {
			if i%ctxEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			key := joinKey(advertiserID, r.StoreID, r.ProductID)
			var err error
			if ms := r.AsOfMillis(); ms == 0 {
				err = at.Delete(key)
			} else if kept := at.Get(key); len(kept) == 8 && ms < int64(binary.BigEndian.Uint64(kept)) {
				stale = append(stale, i)
				continue
			} else {
				err = at.Put(key, binary.BigEndian.AppendUint64(nil, uint64(ms)))
			}
			if err != nil {
				return err
			}
			if r.Available() {
				err = stock.Delete(key)
			} else {
				err = stock.Put(key, empty)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("put stock: %w", err)
	}
	return stale, nil
}

// OutOfStock calls fn for every (store, product) of an advertiser, or of all
// when advertiserID is "", that was last reported out of stock, until fn
// returns false. Keys come in (advertiser, store, product) order; like
// Stores, the iteration is not a snapshot.
func (s *Store) OutOfStock(ctx context.Context, advertiserID string, fn func(campaigns.StockKey) bool) error {
	if advertiserID != "" && !validKey(advertiserID) {
		return nil
	}
	var in record.Interner
	decode := func(k, _ []byte) (campaigns.StockKey, error) {
		adv, rest, ok1 := bytes.Cut(k, []byte{sep})
		store, product, ok2 := bytes.Cut(rest, []byte{sep})
		if !ok1 || !ok2 {
			return campaigns.StockKey{}, fmt.Errorf("stock key %q: %w", k, errCorrupt)
		}
		return campaigns.StockKey{AdvertiserID: record.Intern(&in, adv), StoreID: string(store), ProductID: record.Intern(&in, product)}, nil
	}
	if err := scan(ctx, s, bucketStockOut, prefixKey(advertiserID), decode, fn); err != nil {
		return fmt.Errorf("list out of stock: %w", err)
	}
	return nil
}

// scan calls fn with the decoded records of bucket whose keys start with
// prefix, in key order, until fn returns false. It reads scanChunk records
// per read transaction and calls fn outside of it, checking ctx before each
// call.
func scan[T any](ctx context.Context, s *Store, bucket, prefix []byte, decode func(k, v []byte) (T, error), fn func(T) bool) error {
	items := make([]T, 0, scanChunk)
	var after []byte // the last key read; nil before the first chunk
	for {
		items = items[:0]
		more := false
		if err := s.begin(ctx); err != nil {
			return err
		}
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			var k, v []byte
			switch {
			case after != nil:
				k, v = c.Seek(after)
				if bytes.Equal(k, after) {
					k, v = c.Next()
				}
			case len(prefix) == 0:
				k, v = c.First()
			default:
				k, v = c.Seek(prefix)
			}
			var last []byte
			for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				if len(items) == scanChunk {
					more = true
					break
				}
				item, err := decode(k, v)
				if err != nil {
					return err
				}
				items = append(items, item)
				last = k
			}
			after = bytes.Clone(last)
			return nil
		})
		s.end()
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !fn(it) {
				return nil
			}
		}
		if !more {
			return nil
		}
	}
}
