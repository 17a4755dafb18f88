// Package spool keeps tracking events on local disk while the shared store
// cannot take them (Redis unreachable), until they can be delivered. It is
// a small bbolt file in the server's data directory: an event is fsynced
// before Put returns, so a tracking URL answered 204 or 302 during an
// outage survives a kill -9 of the server, and the next server on that
// directory delivers it.
//
// The spool holds each (kind, token) once: firing a URL again during an
// outage takes no more room, and delivering an event twice is harmless
// anyway, because the store counts a (kind, token) once. It is bounded: when
// it holds its maximum, Put refuses new events with Unavailable, so that the
// server answers 503 rather than acknowledge what it cannot keep.
//
// It also keeps served counts the store could not take (PutServed): a
// flush that may have reached the store under its batch ID, which the store
// applies once, so that a batch delivered twice (the store applied it, then
// the server died before removing it here) counts once; and counts never
// offered to the store, summed by key and hour (served.go). Served counts
// are not bounded by max: they come from memory the server holds already,
// and refusing them would only lose them.
//
// Like the stores it sits beside, it keeps no position: an event names the
// ad, its store and a neighbourhood-sized cell, never a fix.
package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// FileName is the spool's file in the data directory.
const FileName = "tracking-spool.db"

var (
	bucketEvents = []byte("events")
	// bucketUnreadable holds records Peek could not decode, set aside so
	// that they do not stop the events behind them, and kept for whoever
	// looks into them.
	bucketUnreadable = []byte("unreadable")
	// bucketServed holds served batches by batch ID, and
	// bucketUnreadableServed those PeekServed could not decode.
	bucketServed           = []byte("served")
	bucketUnreadableServed = []byte("unreadable served")
)

// ErrClosed is returned (wrapped) by every method called after Close.
var ErrClosed = errors.New("spool: closed")

// Spool is a bounded, durable set of events waiting for the store. Safe for
// concurrent use; concurrent Puts share one transaction and one fsync.
type Spool struct {
	db  *bolt.DB
	max int64
	// Puts are committed in groups, as the embedded store commits events:
	// the first Put to find no commit running commits everything queued,
	// then hands the lead to the first Put that queued meanwhile. A lone
	// Put commits at once (bbolt's Batch would wait 10 ms for company).
	mu      sync.Mutex
	queue   []*put
	leading bool
	// used counts the events held plus those being added, so that the
	// bound holds under concurrent Puts.
	used     atomic.Int64
	setAside atomic.Int64 // records Peek and PeekServed set aside since Open
	// served counts the served ads (the sum of the rows' N) of the served
	// batches and unsent rows held, servedRows their rows.
	served, servedRows atomic.Int64
	// servedMu orders the served writes that keep hours; hours holds what
	// the spool knows of each hour's unsent rows (served.go), and
	// batchPrefix names the batches it seals.
	servedMu    sync.Mutex
	hours       map[hourKey]*unsentHour
	batchPrefix string
	closed      atomic.Bool
}

// Open opens (creating it) the spool file at path, holding at most max
// events. It fails at once if another process has the file open.
func Open(path string, max int) (*Spool, error) {
	if max < 1 {
		return nil, fmt.Errorf("open spool: max %d: want at least 1", max)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	s := &Spool{db: db, max: int64(max), hours: make(map[hourKey]*unsentHour), batchPrefix: newBatchPrefix()}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketEvents)
		if err != nil {
			return err
		}
		s.used.Store(int64(b.Stats().KeyN))
		return s.loadServed(tx)
	})
	if err != nil {
		_ = db.Close() // the update's error is the one to report
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	return s, nil
}

// Len returns how many events the spool holds (and is adding). It is cheap:
// an atomic load.
func (s *Spool) Len() int { return int(s.used.Load()) }

// Max returns the most events the spool holds.
func (s *Spool) Max() int { return int(s.max) }

// Holds reports whether the spool holds an event of e's kind and token. It
// is a read transaction; false when the spool is closed.
func (s *Spool) Holds(e *storage.Event) bool {
	if s.closed.Load() {
		return false
	}
	held := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		held = tx.Bucket(bucketEvents).Get(eventKey(e)) != nil
		return nil
	})
	return held
}

// Put adds e, durably, unless an event of the same kind and token is held
// already. Unavailable when the spool is full and does not hold e.
func (s *Spool) Put(e *storage.Event) error {
	if s.closed.Load() {
		return fmt.Errorf("spool put: %w", ErrClosed)
	}
	key := eventKey(e)
	if s.used.Add(1) > s.max {
		s.used.Add(-1)
		if s.Holds(e) {
			return nil
		}
		return campaigns.Errorf(campaigns.Unavailable, "the tracking spool is full (%d events) and the store is unreachable", s.max)
	}
	p := &put{key: key, val: appendEvent(nil, e), wake: make(chan bool, 1)}
	s.commit(p)
	if p.err != nil || p.dup {
		s.used.Add(-1)
	}
	if p.err != nil {
		// Neither the store nor the spool can keep the event: the client
		// is told to try again later (503), as when the spool is full.
		return fmt.Errorf("spool put: %w: %w", campaigns.Errorf(campaigns.Unavailable, "the tracking spool cannot keep the event and the store is unreachable"), p.err)
	}
	return nil
}

// put is one Put waiting to be committed.
type put struct {
	key, val []byte
	dup      bool // held already
	err      error
	wake     chan bool // true: lead the next commit; false: done
}

// maxGroup bounds the Puts of one transaction.
const maxGroup = 4096

// commit commits p, with the Puts queued meanwhile, in one transaction.
func (s *Spool) commit(p *put) {
	s.mu.Lock()
	s.queue = append(s.queue, p)
	if s.leading {
		s.mu.Unlock()
		if lead := <-p.wake; !lead {
			return
		}
	} else {
		s.leading = true
		s.mu.Unlock()
	}
	// Leading: p is still queued, so it commits in this transaction.
	s.mu.Lock()
	n := min(len(s.queue), maxGroup)
	batch := s.queue[:n:n]
	s.queue = append([]*put(nil), s.queue[n:]...)
	s.mu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		for _, q := range batch {
			q.dup = b.Get(q.key) != nil
			if q.dup {
				continue
			}
			if err := b.Put(q.key, q.val); err != nil {
				return err
			}
		}
		return nil
	})
	for _, q := range batch {
		if err != nil {
			q.err, q.dup = err, false
		}
		if q != p {
			q.wake <- false
		}
	}
	s.mu.Lock()
	if len(s.queue) > 0 {
		next := s.queue[0]
		s.mu.Unlock()
		next.wake <- true
	} else {
		s.leading = false
		s.mu.Unlock()
	}
}

// Peek returns up to n events, in key order. A record it cannot decode (a
// damaged page, or one written by a newer version of navad) is moved to a
// bucket of its own rather than returned: one such record used to fail
// every Peek, so that nothing behind it was ever delivered. SetAside
// counts them.
func (s *Spool) Peek(n int) ([]*storage.Event, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("spool peek: %w", ErrClosed)
	}
	var (
		out []*storage.Event
		bad [][]byte
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			e, err := decodeEvent(k, v)
			if err != nil {
				bad = append(bad, bytes.Clone(k))
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	if err == nil && len(bad) > 0 {
		var moved int
		moved, err = s.putAside(bucketEvents, bucketUnreadable, bad)
		s.used.Add(-int64(moved))
	}
	if err != nil {
		return nil, fmt.Errorf("spool peek: %w", err)
	}
	return out, nil
}

// putAside moves the records of keys from bucket from to bucket to, and
// returns how many it moved.
func (s *Spool) putAside(from, to []byte, keys [][]byte) (int, error) {
	moved := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		moved = 0
		src := tx.Bucket(from)
		aside, err := tx.CreateBucketIfNotExists(to)
		if err != nil {
			return err
		}
		for _, k := range keys {
			v := src.Get(k)
			if v == nil {
				continue
			}
			if err := aside.Put(k, bytes.Clone(v)); err != nil {
				return err
			}
			if err := src.Delete(k); err != nil {
				return err
			}
			moved++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.setAside.Add(int64(moved))
	return moved, nil
}

// SetAside returns how many unreadable records Peek and PeekServed have
// set aside since the spool was opened (they stay in the file, in buckets
// of their own).
func (s *Spool) SetAside() int { return int(s.setAside.Load()) }

// Remove deletes events (by kind and token), durably, in one transaction.
func (s *Spool) Remove(events []*storage.Event) error {
	if s.closed.Load() {
		return fmt.Errorf("spool remove: %w", ErrClosed)
	}
	if len(events) == 0 {
		return nil
	}
	removed := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		removed = 0
		b := tx.Bucket(bucketEvents)
		for _, e := range events {
			k := eventKey(e)
			if b.Get(k) == nil {
				continue
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spool remove: %w", err)
	}
	s.used.Add(-int64(removed))
	return nil
}

// Close closes the file; the events stay in it for the next Open. Closing
// again does nothing.
func (s *Spool) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}

// eventKey is kind (1 byte) and token ID (16 bytes): what makes an event
// count once.
func eventKey(e *storage.Event) []byte {
	k := make([]byte, 0, 1+len(e.Token))
	k = append(k, byte(e.Kind))
	return append(k, e.Token[:]...)
}

// The value of an event, after a version byte: varints issued and at (Unix
// seconds) and day, the hour, the cell (uint64 big-endian), then ad ID,
// advertiser, campaign, publisher and store as uvarint length and bytes.
const codecV1 = 1

var errCorrupt = errors.New("corrupt spooled event")

func appendEvent(b []byte, e *storage.Event) []byte {
	b = append(b, codecV1)
	b = binary.AppendVarint(b, e.Issued.Unix())
	b = binary.AppendVarint(b, e.At.Unix())
	b = binary.AppendVarint(b, int64(e.Key.Day))
	b = append(b, e.Key.Hour)
	b = binary.BigEndian.AppendUint64(b, e.Key.Cell)
	for _, s := range [...]string{e.AdID, e.Key.AdvertiserID, e.Key.CampaignID, e.Key.PublisherID, e.Key.StoreID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeEvent(k, v []byte) (*storage.Event, error) {
	if len(k) != 1+len(storage.TokenID{}) || len(v) < 1 || v[0] != codecV1 {
		return nil, fmt.Errorf("event %x: %w", k, errCorrupt)
	}
	e := &storage.Event{Kind: storage.Kind(k[0])}
	copy(e.Token[:], k[1:])
	r := bytes.NewReader(v[1:])
	var ints [3]int64
	for i := range ints {
		x, err := binary.ReadVarint(r)
		if err != nil {
			return nil, fmt.Errorf("event %x: %w", k, errCorrupt)
		}
		ints[i] = x
	}
	e.Issued, e.At, e.Key.Day = time.Unix(ints[0], 0).UTC(), time.Unix(ints[1], 0).UTC(), storage.Day(ints[2])
	var fixed [9]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, fmt.Errorf("event %x: %w", k, errCorrupt)
	}
	e.Key.Hour, e.Key.Cell = fixed[0], binary.BigEndian.Uint64(fixed[1:])
	for _, p := range [...]*string{&e.AdID, &e.Key.AdvertiserID, &e.Key.CampaignID, &e.Key.PublisherID, &e.Key.StoreID} {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > uint64(r.Len()) {
			return nil, fmt.Errorf("event %x: %w", k, errCorrupt)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("event %x: %w", k, errCorrupt)
		}
		*p = string(b)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("event %x: %w", k, errCorrupt)
	}
	return e, nil
}
