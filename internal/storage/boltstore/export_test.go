package boltstore

import (
	"fmt"

	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/internal/storage"
)

// DataSize returns the bytes of the file in use: bbolt's high-water mark,
// which grows page by page where the file itself grows in large steps.
func (s *Store) DataSize() (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Size()
		return nil
	})
	return n, err
}

// WithClock makes the Store read the time from now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithCompaction sets the log bytes of an hour that start a compaction,
// and how often the background loop runs (0: never).
func WithCompaction(bytes int, every time.Duration) Option {
	return func(o *options) { o.compactBytes, o.compactEvery = bytes, every }
}

// AddServedV1 adds served counts the way version 1 of the layout did, in
// place in all four rollups: what a data dir written before the served log
// holds.
func (s *Store) AddServedV1(rows []storage.ServedCount) error {
	return s.db.Update(func(tx *bolt.Tx) error { return addInPlace(tx, rows, rollups[:]) })
}

// addInPlace adds served counts in place in the B+trees of rs.
func addInPlace(tx *bolt.Tx, rows []storage.ServedCount, rs []rollup) error {
	for _, row := range rows {
		for _, r := range rs {
			if err := addCounts(tx.Bucket(r.bucket), rollupKey(r.kind, &row.Key), &storage.Counts{Served: row.N}); err != nil {
				return err
			}
		}
	}
	return nil
}

// AddServedV2 adds served counts the way version 2 of the layout did: in
// place in agg_a, agg_p and agg_h, agg_c's to the served log.
func (s *Store) AddServedV2(rows []storage.ServedCount) error {
	var groups [len(rollups)][]servedGroup
	var sc flushScratch
	groups[rollupC] = groupServedAll(rows, &sc)[rollupC]
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := addInPlace(tx, rows, rollups[:rollupC]); err != nil {
			return err
		}
		_, err := s.appendServedLog(tx, s.now().Unix(), &groups, &sc.blocks)
		return err
	})
}

// ServedBlocks returns how many blocks the served logs (all four) and the
// runs hold.
func (s *Store) ServedBlocks() (log, runs int, err error) {
	blocks, err := s.ServedLogBlocks()
	for _, n := range blocks {
		log += n
	}
	if err == nil {
		err = s.db.View(func(tx *bolt.Tx) error {
			runs = tx.Bucket(bucketServedRun).Stats().KeyN
			return nil
		})
	}
	return log, runs, err
}

// ServedLogBlocks returns how many blocks each served log holds, by
// bucket name.
func (s *Store) ServedLogBlocks() (map[string]int, error) {
	out := make(map[string]int)
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, r := range rollups {
			out[string(r.log)] = tx.Bucket(r.log).Stats().KeyN
		}
		return nil
	})
	return out, err
}

// CapsKeys returns the keys that the file holds of campaign id's caps:
// in bucket caps, and in caps_users.
func (s *Store) CapsKeys(id string) []string {
	var keys []string
	_ = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketCaps); b != nil {
			_ = b.ForEach(func(k, _ []byte) error {
				if got, _, ok := cutKey(k); ok && got == id {
					keys = append(keys, fmt.Sprintf("caps %q", k))
				}
				return nil
			})
		}
		if b := tx.Bucket(bucketCapsUsers); b != nil && b.Get([]byte(id)) != nil {
			keys = append(keys, fmt.Sprintf("caps_users %q", id))
		}
		return nil
	})
	return keys
}

// Held returns what c holds in memory of campaign id's counters, and any
// user windows or slot table entries of counters no longer in its map
// (which nothing would free).
func (c *Caps) Held(id string) []string {
	var held []string
	c.cmu.RLock()
	defer c.cmu.RUnlock()
	if c.campaigns[id] != nil {
		held = append(held, "counters in memory")
	}
	live := make(map[uint32]bool)
	known := make(map[*capCampaign]bool)
	for _, cc := range c.campaigns {
		live[cc.num] = true
		known[cc] = true
	}
	orphans := 0
	c.users.each(func(camp uint32, _ uint64, _ capWindow) {
		if !live[camp] {
			orphans++
		}
	})
	if orphans > 0 {
		held = append(held, fmt.Sprintf("%d user windows of forgotten counters", orphans))
	}
	slots := 0
	if t := c.bySlot.Load(); t != nil {
		for i := range *t {
			if cc := (*t)[i].Load(); cc != nil && !known[cc] {
				slots++
			}
		}
	}
	if slots > 0 {
		held = append(held, fmt.Sprintf("%d slot entries of forgotten counters", slots))
	}
	return held
}

// DeleteCampaignOnly deletes a campaign the way builds before deletes
// freed caps did: its counters stay in the file.
func (s *Store) DeleteCampaignOnly(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketCampaignsGone).Put([]byte(id), empty); err != nil {
			return err
		}
		return tx.Bucket(bucketCampaigns).Delete([]byte(id))
	})
}
