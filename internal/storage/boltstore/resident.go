package boltstore

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ReleaseResident tells the kernel that the process no longer needs the
// pages of the data file it has read, so that they stop counting in its
// resident memory. bbolt maps the whole file; loading the catalogue reads
// all of it (273 MB with 1M stores), after which decisions are served from
// memory and those pages are dead weight in the process's RSS. They stay
// in the page cache, and a later read faults them back in from there: this
// changes nothing but what is resident. Call it after a bulk read, such as
// the index load at start-up. Safe for concurrent use: the file cannot be
// remapped while it runs. On systems other than Linux it does nothing.
func (s *Store) ReleaseResident() error {
	err := s.db.View(func(tx *bolt.Tx) error {
		info := s.db.Info()
		return dropMapped(info.Data, int(tx.Size()), info.PageSize)
	})
	if err != nil {
		return fmt.Errorf("release resident pages: %w", err)
	}
	return nil
}
