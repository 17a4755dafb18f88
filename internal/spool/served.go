package spool

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/internal/storage"
)

// Served counts come to the spool in two kinds:
//
//   - batches under an ID that may have reached the store already (a write
//     that failed with a timeout may have landed). They are kept as they
//     are, under their IDs, which the store applies once.
//   - unsent rows, which were never offered to the store. Their rows are
//     summed by key with the other unsent rows of their hour, so that a
//     long outage holds a row per distinct key an hour rather than a row
//     per key a flush interval: at national scale nearly every ad served
//     in a second is a key of its own, about 0.5 MB of spool a second of
//     outage at 5,000 decisions a second, but the same stores and cells
//     come back all hour.
//
// The drain delivers batches only. When none is held, PeekServed seals
// unsent records into batches under IDs of the spool's own (and from then
// on they are never summed again), so that during an outage the drain's
// failing attempts seal no more than one chunk.

// The bucket of unsent rows: keys are the rows' day (4 bytes, big-endian),
// hour (1 byte) and a sequence number (8 bytes); values are encoded as a
// batch's, at most batchRows rows a record.
var bucketUnsent = []byte("served unsent")

const (
	// batchRows is the most rows of an unsent record, and so of the batch
	// it is sealed into: as many as the tracking service's own batches.
	batchRows = 4096
	// sumAfter is how many rows an hour's unsent records may hold beyond
	// twice what they held after they were last summed before they are
	// summed again: each summing reads and rewrites the hour's records, so
	// it waits for them to double, which keeps its cost a constant factor
	// of the rows put.
	sumAfter = 4096
)

// hourKey is the prefix of an hour's unsent records, whose keys are
// unsentKeyLen bytes: the prefix and a sequence number.
type hourKey [5]byte

const unsentKeyLen = len(hourKey{}) + 8

func hourOf(k *storage.AggKey) hourKey {
	var h hourKey
	binary.BigEndian.PutUint32(h[:4], uint32(k.Day))
	h[4] = k.Hour
	return h
}

// unsentHour is what the spool knows of an hour's unsent records.
type unsentHour struct {
	rows   int // rows held
	summed int // rows held right after the last summing (or Open)
}

// newBatchPrefix names the batches this spool seals, unique to this Open;
// the sealed bucket's sequence numbers them.
func newBatchPrefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "spool-" + hex.EncodeToString(b[:])
}

// loadServed counts what the served buckets hold, at Open.
func (s *Spool) loadServed(tx *bolt.Tx) error {
	sb, err := tx.CreateBucketIfNotExists(bucketServed)
	if err != nil {
		return err
	}
	if err := sb.ForEach(func(k, v []byte) error {
		if b, err := decodeServed(k, v); err == nil {
			s.served.Add(servedAds(b.Rows))
			s.servedRows.Add(int64(len(b.Rows)))
		}
		return nil
	}); err != nil {
		return err
	}
	ub, err := tx.CreateBucketIfNotExists(bucketUnsent)
	if err != nil {
		return err
	}
	return ub.ForEach(func(k, v []byte) error {
		b, err := decodeServed(k, v)
		if err != nil || len(k) != unsentKeyLen {
			return nil // sealed as it is, and set aside by PeekServed
		}
		s.served.Add(servedAds(b.Rows))
		s.servedRows.Add(int64(len(b.Rows)))
		h := s.hour(hourKey(k[:len(hourKey{})]))
		h.rows += len(b.Rows)
		h.summed = h.rows
		return nil
	})
}

func (s *Spool) hour(k hourKey) *unsentHour {
	h := s.hours[k]
	if h == nil {
		h = &unsentHour{}
		s.hours[k] = h
	}
	return h
}

// PutServed adds, durably and in one transaction, served batches that may
// have reached the store (kept under their IDs; a batch whose ID is held
// already is left as it is: it holds the same rows) and unsent rows, never
// offered to the store, which the spool sums with the unsent rows held.
func (s *Spool) PutServed(batches []storage.ServedBatch, unsent []storage.ServedCount) error {
	if s.closed.Load() {
		return fmt.Errorf("spool put served: %w", ErrClosed)
	}
	if len(batches) == 0 && len(unsent) == 0 {
		return nil
	}
	s.servedMu.Lock()
	defer s.servedMu.Unlock()
	var (
		ads, rows int64
		hours     map[hourKey]unsentHour // the hours' counts as the transaction leaves them
	)
	err := s.db.Update(func(tx *bolt.Tx) error {
		ads, rows, hours = 0, 0, nil
		b := tx.Bucket(bucketServed)
		for i := range batches {
			sb := &batches[i]
			if sb.ID == "" {
				return errors.New("served batch without an id")
			}
			if b.Get([]byte(sb.ID)) != nil {
				continue
			}
			if err := b.Put([]byte(sb.ID), appendServed(nil, sb.Rows)); err != nil {
				return err
			}
			ads += servedAds(sb.Rows)
			rows += int64(len(sb.Rows))
		}
		if len(unsent) == 0 {
			return nil
		}
		ub := tx.Bucket(bucketUnsent)
		byHour := make(map[hourKey][]storage.ServedCount)
		for _, r := range unsent {
			h := hourOf(&r.Key)
			byHour[h] = append(byHour[h], r)
		}
		hours = make(map[hourKey]unsentHour, len(byHour))
		for k, hr := range byHour {
			if err := putUnsent(ub, k, hr); err != nil {
				return err
			}
			ads += servedAds(hr)
			rows += int64(len(hr))
			var h unsentHour
			if old := s.hours[k]; old != nil {
				h = *old
			}
			h.rows += len(hr)
			if h.rows > 2*h.summed+sumAfter {
				n, err := sumUnsent(ub, k)
				if err != nil {
					return err
				}
				rows -= int64(h.rows - n)
				h.rows, h.summed = n, n
			}
			hours[k] = h
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spool put served: %w", err)
	}
	for k, h := range hours {
		*s.hour(k) = h
	}
	s.served.Add(ads)
	s.servedRows.Add(rows)
	return nil
}

// putUnsent writes rows, all of hour k, as new records of at most
// batchRows rows.
func putUnsent(ub *bolt.Bucket, k hourKey, rows []storage.ServedCount) error {
	for len(rows) > 0 {
		n := min(len(rows), batchRows)
		seq, err := ub.NextSequence()
		if err != nil {
			return err
		}
		key := binary.BigEndian.AppendUint64(append([]byte(nil), k[:]...), seq)
		if err := ub.Put(key, appendServed(nil, rows[:n])); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// sumUnsent replaces the unsent records of hour k with records of their
// rows summed by key, and returns how many rows those hold. A record it
// cannot decode is left as it is, for PeekServed to set aside.
func sumUnsent(ub *bolt.Bucket, k hourKey) (int, error) {
	sums := make(map[storage.AggKey]uint64)
	var keys [][]byte
	c := ub.Cursor()
	for key, v := c.Seek(k[:]); key != nil && bytes.HasPrefix(key, k[:]); key, v = c.Next() {
		b, err := decodeServed(key, v)
		if err != nil {
			continue
		}
		keys = append(keys, bytes.Clone(key))
		for _, r := range b.Rows {
			sums[r.Key] += r.N
		}
	}
	for _, key := range keys {
		if err := ub.Delete(key); err != nil {
			return 0, err
		}
	}
	rows := make([]storage.ServedCount, 0, len(sums))
	for key, n := range sums {
		rows = append(rows, storage.ServedCount{Key: key, N: n})
	}
	return len(rows), putUnsent(ub, k, rows)
}

// PeekServed returns up to n served batches, in the order of their keys.
// When it holds none, it first seals up to n unsent records into batches
// under IDs of its own (oldest hours first), which are summed no more. A
// record it cannot decode is moved to a bucket of its own, as Peek does,
// and counted by SetAside.
func (s *Spool) PeekServed(n int) ([]storage.ServedBatch, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("spool peek served: %w", ErrClosed)
	}
	if err := s.seal(n); err != nil {
		return nil, fmt.Errorf("spool peek served: %w", err)
	}
	var (
		out []storage.ServedBatch
		bad [][]byte
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketServed).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			b, err := decodeServed(k, v)
			if err != nil {
				bad = append(bad, bytes.Clone(k))
				continue
			}
			out = append(out, b)
		}
		return nil
	})
	if err == nil && len(bad) > 0 {
		_, err = s.putAside(bucketServed, bucketUnreadableServed, bad)
	}
	if err != nil {
		return nil, fmt.Errorf("spool peek served: %w", err)
	}
	return out, nil
}

// seal moves up to n unsent records to the batches, under new IDs, when no
// batch is held.
func (s *Spool) seal(n int) error {
	s.servedMu.Lock()
	defer s.servedMu.Unlock()
	need := false
	err := s.db.View(func(tx *bolt.Tx) error {
		sealed, _ := tx.Bucket(bucketServed).Cursor().First()
		unsent, _ := tx.Bucket(bucketUnsent).Cursor().First()
		need = sealed == nil && unsent != nil
		return nil
	})
	if err != nil || !need {
		return err
	}
	var moved map[hourKey]int
	err = s.db.Update(func(tx *bolt.Tx) error {
		moved = make(map[hourKey]int)
		sb, ub := tx.Bucket(bucketServed), tx.Bucket(bucketUnsent)
		var keys [][]byte
		c := ub.Cursor()
		for k, v := c.First(); k != nil && len(keys) < n; k, v = c.Next() {
			seq, err := sb.NextSequence()
			if err != nil {
				return err
			}
			// Zero-padded, so that batches sort as they were sealed.
			id := fmt.Sprintf("%s-%020d", s.batchPrefix, seq)
			if err := sb.Put([]byte(id), bytes.Clone(v)); err != nil {
				return err
			}
			keys = append(keys, bytes.Clone(k))
			if b, err := decodeServed(k, v); err == nil && len(k) == unsentKeyLen {
				moved[hourKey(k[:len(hourKey{})])] += len(b.Rows)
			}
		}
		for _, k := range keys {
			if err := ub.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, rows := range moved {
		h := s.hour(k)
		h.rows -= rows
		h.summed = min(h.summed, h.rows)
		if h.rows <= 0 {
			delete(s.hours, k)
		}
	}
	return nil
}

// RemoveServed deletes the served batch of id, durably.
func (s *Spool) RemoveServed(id string) error {
	if s.closed.Load() {
		return fmt.Errorf("spool remove served: %w", ErrClosed)
	}
	var removed, rows int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		removed, rows = 0, 0
		b := tx.Bucket(bucketServed)
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		if sb, err := decodeServed([]byte(id), v); err == nil {
			removed, rows = servedAds(sb.Rows), int64(len(sb.Rows))
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("spool remove served: %w", err)
	}
	s.served.Add(-removed)
	s.servedRows.Add(-rows)
	return nil
}

// Served returns how many served ads the served batches and unsent rows
// held count: an atomic load.
func (s *Spool) Served() int { return int(s.served.Load()) }

// ServedRows returns how many rows of served counts the spool holds, in
// batches and unsent: what its served counts take on disk, about 50 bytes
// a row. An atomic load.
func (s *Spool) ServedRows() int { return int(s.servedRows.Load()) }

// servedAds sums the rows' counts.
func servedAds(rows []storage.ServedCount) int64 {
	var n int64
	for _, r := range rows {
		n += int64(r.N)
	}
	return n
}

// The value of a served batch, after a version byte: the number of rows
// (uvarint), then each row: day (varint), hour, cell (uint64 big-endian),
// advertiser, campaign, publisher and store as uvarint length and bytes,
// and N (uvarint).
const servedV1 = 1

func appendServed(b []byte, rows []storage.ServedCount) []byte {
	b = append(b, servedV1)
	b = binary.AppendUvarint(b, uint64(len(rows)))
	for i := range rows {
		k := &rows[i].Key
		b = binary.AppendVarint(b, int64(k.Day))
		b = append(b, k.Hour)
		b = binary.BigEndian.AppendUint64(b, k.Cell)
		for _, s := range [...]string{k.AdvertiserID, k.CampaignID, k.PublisherID, k.StoreID} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
		b = binary.AppendUvarint(b, rows[i].N)
	}
	return b
}

func decodeServed(k, v []byte) (storage.ServedBatch, error) {
	corrupt := func() (storage.ServedBatch, error) {
		return storage.ServedBatch{}, fmt.Errorf("served batch %q: %w", k, errCorrupt)
	}
	if len(k) == 0 || len(v) < 1 || v[0] != servedV1 {
		return corrupt()
	}
	r := bytes.NewReader(v[1:])
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(r.Len()) { // a row takes more than a byte
		return corrupt()
	}
	b := storage.ServedBatch{ID: string(k), Rows: make([]storage.ServedCount, n)}
	for i := range b.Rows {
		row := &b.Rows[i]
		day, err := binary.ReadVarint(r)
		if err != nil {
			return corrupt()
		}
		var fixed [9]byte
		if _, err := io.ReadFull(r, fixed[:]); err != nil {
			return corrupt()
		}
		row.Key.Day, row.Key.Hour, row.Key.Cell = storage.Day(day), fixed[0], binary.BigEndian.Uint64(fixed[1:])
		for _, p := range [...]*string{&row.Key.AdvertiserID, &row.Key.CampaignID, &row.Key.PublisherID, &row.Key.StoreID} {
			l, err := binary.ReadUvarint(r)
			if err != nil || l > uint64(r.Len()) {
				return corrupt()
			}
			s := make([]byte, l)
			if _, err := io.ReadFull(r, s); err != nil {
				return corrupt()
			}
			*p = string(s)
		}
		if row.N, err = binary.ReadUvarint(r); err != nil {
			return corrupt()
		}
	}
	if r.Len() != 0 {
		return corrupt()
	}
	return b, nil
}
