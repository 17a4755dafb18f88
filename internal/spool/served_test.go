package spool_test

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/navad/navad/internal/spool"
	"github.com/navad/navad/internal/storage"
)

// servedKey is the key of store i's served ads in hour h.
func servedKey(i int, h uint8) storage.AggKey {
	return storage.AggKey{Day: 20770, Hour: h, AdvertiserID: "adv_1", CampaignID: "cmp_1", PublisherID: "pub_1",
		StoreID: fmt.Sprint("store-", i), Cell: 0x882f5aa6b7fffff}
}

// flushOf is one flush interval's served ads: one row an ad, as the
// tracking service takes them, for stores 0 to stores-1 in hour h.
func flushOf(stores int, h uint8) []storage.ServedCount {
	rows := make([]storage.ServedCount, stores)
	for i := range rows {
		rows[i] = storage.ServedCount{Key: servedKey(i, h), N: 1}
	}
	return rows
}

// drainAll takes every served batch out of s, as the drain does, and
// returns the served ads by key and the batches' IDs.
func drainAll(t *testing.T, s *spool.Spool) (map[storage.AggKey]uint64, []string) {
	t.Helper()
	got := make(map[storage.AggKey]uint64)
	var ids []string
	for s.Served() > 0 {
		batches, err := s.PeekServed(16)
		must(t, err)
		if len(batches) == 0 {
			t.Fatalf("Served %d but nothing to peek", s.Served())
		}
		for _, b := range batches {
			for _, r := range b.Rows {
				got[r.Key] += r.N
			}
			ids = append(ids, b.ID)
			must(t, s.RemoveServed(b.ID))
		}
	}
	if n := s.ServedRows(); n != 0 {
		t.Fatalf("%d rows held after every batch was removed", n)
	}
	return got, ids
}

// TestUnsentServedRowsSummed: unsent rows are summed by key, so that an
// outage of many flush intervals over the same stores holds a row a key
// rather than a row a key an interval; nothing is lost or counted twice.
func TestUnsentServedRowsSummed(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), spool.FileName), 10)
	const stores, flushes = 50, 2000
	for range flushes {
		must(t, s.PutServed(nil, flushOf(stores, 19)))
	}
	if s.Served() != stores*flushes {
		t.Fatalf("Served %d, want %d", s.Served(), stores*flushes)
	}
	// Summed whenever an hour's rows more than double, after some
	// thousands: a bound, not the exact count.
	if n := s.ServedRows(); n > 2*stores+4096 {
		t.Fatalf("%d rows held for %d stores after %d flushes: not summed", n, stores, flushes)
	}
	got, _ := drainAll(t, s)
	if len(got) != stores {
		t.Fatalf("%d keys delivered, want %d", len(got), stores)
	}
	for k, n := range got {
		if n != flushes {
			t.Fatalf("%s: %d served delivered, want %d", k.StoreID, n, flushes)
		}
	}
}

// TestUnsentHoursKeptApart: rows of different hours are never summed
// together, and each hour is summed on its own.
func TestUnsentHoursKeptApart(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), spool.FileName), 10)
	for range 300 {
		must(t, s.PutServed(nil, append(flushOf(20, 19), flushOf(20, 20)...)))
	}
	if n := s.ServedRows(); n > 2*(2*20+4096) {
		t.Fatalf("%d rows held: not summed", n)
	}
	got, _ := drainAll(t, s)
	want := make(map[storage.AggKey]uint64)
	for i := range 20 {
		want[servedKey(i, 19)], want[servedKey(i, 20)] = 300, 300
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

// TestSentServedBatchKeptWhole: a batch that may have reached the store is
// kept under its ID with its rows as they were, never summed with unsent
// rows of the same keys; the drain is given it before anything unsent is
// sealed into a batch.
func TestSentServedBatchKeptWhole(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), spool.FileName), 10)
	sent := storage.ServedBatch{ID: "abc-1", Rows: flushOf(30, 19)}
	must(t, s.PutServed([]storage.ServedBatch{sent}, nil))
	for range 400 { // enough to be summed
		must(t, s.PutServed(nil, flushOf(30, 19)))
	}
	batches, err := s.PeekServed(16)
	must(t, err)
	if len(batches) != 1 || !reflect.DeepEqual(batches[0], sent) {
		t.Fatalf("peeked %d batches, first %+v; want the sent batch alone, whole", len(batches), batches[0].ID)
	}
	must(t, s.RemoveServed(sent.ID))
	got, ids := drainAll(t, s)
	for _, id := range ids {
		if id == sent.ID || !strings.HasPrefix(id, "spool-") {
			t.Fatalf("unsent rows sealed under ID %q", id)
		}
	}
	for k, n := range got {
		if n != 400 {
			t.Fatalf("%s: %d delivered, want 400", k.StoreID, n)
		}
	}
}

// TestUnsentServedReopen: unsent rows and their counts survive a restart,
// and go on being summed after it.
func TestUnsentServedReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), spool.FileName)
	s, err := spool.Open(path, 10)
	must(t, err)
	for range 100 {
		must(t, s.PutServed(nil, flushOf(40, 19)))
	}
	served, rows := s.Served(), s.ServedRows()
	must(t, s.Close())
	s = open(t, path, 10)
	if s.Served() != served || s.ServedRows() != rows {
		t.Fatalf("after reopening: %d served in %d rows, want %d in %d", s.Served(), s.ServedRows(), served, rows)
	}
	for range 900 {
		must(t, s.PutServed(nil, flushOf(40, 19)))
	}
	if n := s.ServedRows(); n > 2*40+4096+rows {
		t.Fatalf("%d rows held after reopening: not summed", n)
	}
	got, _ := drainAll(t, s)
	for k, n := range got {
		if n != 1000 {
			t.Fatalf("%s: %d delivered, want 1000", k.StoreID, n)
		}
	}
}

// BenchmarkPutServedUnsent measures a national outage's flushes going to
// the spool: 10,000 served ads a flush (5,000 decisions a second, two ads
// each), one row an ad, drawn from 200,000 keys of one hour, so that keys
// repeat as the hour goes on. It reports the rows the spool holds after
// the flushes against the rows put.
func BenchmarkPutServedUnsent(b *testing.B) {
	s, err := spool.Open(filepath.Join(b.TempDir(), spool.FileName), 10)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const perFlush, keys = 10_000, 200_000
	all := make([]storage.AggKey, keys)
	for i := range all {
		all[i] = servedKey(i, 19)
	}
	rows := make([]storage.ServedCount, perFlush)
	next := uint64(1)
	b.ReportAllocs()
	for b.Loop() {
		for i := range rows {
			next = next*6364136223846793005 + 1442695040888963407
			rows[i] = storage.ServedCount{Key: all[int(next>>33)%keys], N: 1}
		}
		if err := s.PutServed(nil, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.ServedRows())/float64(b.N*perFlush), "rows-held/row-put")
}
