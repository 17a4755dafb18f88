package boltstore

import (
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// groupCommit commits the writes of concurrent callers together: one
// transaction and one fsync for all the writes that arrived while the
// previous commit was running. Unlike bbolt's Batch it adds no delay: a
// lone write commits at once, and a busy server's batches grow by
// themselves to what arrives during one fsync.
//
// There is no background goroutine. The first caller to find no commit
// running leads: it commits everything queued, hands each waiter its
// result, and passes the lead to the first caller that queued meanwhile.
// Used by Record, where each write is small and a server may take tens of
// thousands a second.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*groupWrite
	leading bool
}

// groupWrite is one caller's write. apply runs in the shared transaction;
// it may run again in a transaction of its own if the shared one fails, so
// it must set its results afresh each time.
type groupWrite struct {
	apply func(tx *bolt.Tx) error
	err   error
	wake  chan bool // true: lead the next commit; false: err is final
}

// maxGroup bounds the writes of one transaction, so that one commit
// cannot grow without limit under a flood.
const maxGroup = 4096

// do commits w's write, with others', and returns its error. The caller
// must hold s.begin: do uses s.db directly.
func (g *groupCommit) do(db *bolt.DB, w *groupWrite) error {
	w.wake = make(chan bool, 1)
	g.mu.Lock()
	g.queue = append(g.queue, w)
	if g.leading {
		g.mu.Unlock()
		if lead := <-w.wake; !lead {
			return w.err
		}
	} else {
		g.leading = true
		g.mu.Unlock()
	}
	// Leading: w is still queued, so it commits in this batch.
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	batch := g.queue[:n:n]
	g.queue = append([]*groupWrite(nil), g.queue[n:]...)
	g.mu.Unlock()

	commit(db, batch)
	for _, o := range batch {
		if o != w {
			o.wake <- false
		}
	}
	g.mu.Lock()
	if len(g.queue) > 0 {
		next := g.queue[0]
		g.mu.Unlock()
		next.wake <- true
	} else {
		g.leading = false
		g.mu.Unlock()
	}
	return w.err
}

// commit applies the batch in one transaction; if that fails, each write
// runs alone so that one bad write fails only its own caller. A write that
// panics fails too, rather than leaving the waiters of its batch, and every
// later caller, blocked for ever.
func commit(db *bolt.DB, batch []*groupWrite) {
	err := update(db, func(tx *bolt.Tx) error {
		for _, w := range batch {
			if err := w.apply(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(batch) == 1 {
		for _, w := range batch {
			w.err = err
		}
		return
	}
	for _, w := range batch {
		w.err = update(db, w.apply)
	}
}

// update is db.Update with a panic in fn turned into its error (bbolt has
// rolled the transaction back by then).
func update(db *bolt.DB, fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("group commit: panic: %v", r)
		}
	}()
	return db.Update(fn)
}
