package boltstore

import bolt "go.etcd.io/bbolt"

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
