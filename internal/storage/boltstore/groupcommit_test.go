package boltstore

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestGroupCommitIsolatesFailures: concurrent writes share commits; one
// that fails, or panics, fails alone, and the writes after it still commit.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bucket := []byte("gc_test")
	if err := s.db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
		t.Fatal(err)
	}
	put := func(i int) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(fmt.Sprint(i)), empty) }
	}
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Go(func() {
			w := &groupWrite{apply: put(i)}
			switch i {
			case 50:
				w.apply = func(*bolt.Tx) error { return errors.New("bad write") }
			case 120:
				w.apply = func(*bolt.Tx) error { panic("worse write") }
			}
			errs[i] = s.events.do(s.db, w)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 50 || i == 120) {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if err := s.events.do(s.db, &groupWrite{apply: put(1000)}); err != nil {
		t.Fatalf("a write after the failures: %v", err)
	}
	n := 0
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucket).Stats().KeyN; return nil })
	if n != 199 {
		t.Fatalf("%d writes committed, want 199", n)
	}
}
