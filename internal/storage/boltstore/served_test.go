package boltstore_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/internal/storage/storagetest"
)

// clock is a time a test sets, for boltstore.WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 2, 0, 30, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openServed opens dir with c's time, compactions of compactBytes in
// AddServed and none in the background.
func openServed(t testing.TB, dir string, c *clock, compactBytes int) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(dir, boltstore.WithClock(c.now), boltstore.WithCompaction(compactBytes, 0))
	must(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// editFile changes the file of the closed store in dir with bbolt
// itself, as another build or damage would.
func editFile(t *testing.T, dir string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, boltstore.FileName), 0o600, nil)
	must(t, err)
	must(t, db.Update(fn))
	must(t, db.Close())
}

// wantSchema fails the test unless the closed store in dir is marked
// layout version v.
func wantSchema(t *testing.T, dir string, v byte) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, boltstore.FileName), 0o600, nil)
	must(t, err)
	defer db.Close()
	must(t, db.View(func(tx *bolt.Tx) error {
		if got := tx.Bucket([]byte("meta")).Get([]byte("schema")); string(got) != string([]byte{v}) {
			t.Errorf("schema %v after the upgrade, want %d", got, v)
		}
		return nil
	}))
}

// openDamaged writes a flush of hour 9 into a store in dir, puts v in
// bucket under the key of hour 9's record 1<<40 followed by tail, and
// opens the store again.
func openDamaged(t *testing.T, dir string, c *clock, bucket string, tail, v []byte) *boltstore.Store {
	t.Helper()
	s := openServed(t, dir, c, 1<<20)
	must(t, s.AddServed(t.Context(), "b1", servedRows(rand.New(rand.NewPCG(1, 1)), 20, 9)))
	must(t, s.Close())
	key := binary.BigEndian.AppendUint32(nil, uint32(int64(servedDay)+1<<31))
	key = append(key, 9)
	key = binary.BigEndian.AppendUint64(key, 1<<40)
	key = append(key, tail...)
	editFile(t, dir, func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).Put(key, v) })
	return openServed(t, dir, c, 1<<20)
}

var servedDay = storage.DayOf(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))

// diff fails the test when got and want differ, naming a few of the
// groups that do.
func diff(t testing.TB, what string, got, want map[storage.AggKey]storage.Counts) {
	t.Helper()
	var bad []string
	for k, w := range want {
		if g := got[k]; g != w && len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("%+v: got %+v, want %+v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("%+v: got %+v, want none", k, g))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("%s: %d groups, want %d; for example\n%s", what, len(got), len(want), strings.Join(bad, "\n"))
	}
}

// servedQueries are every grouping of the test days, and filtered reports
// that go to the finest rollup (by store or cell) and to the others
// (agg_a by day and campaign, agg_p by publisher, agg_h by hour).
func servedQueries() []storage.AggregateQuery {
	var qs []storage.AggregateQuery
	for dims := storage.Dims(0); dims <= storage.AllDims; dims++ {
		qs = append(qs, storage.AggregateQuery{From: servedDay, To: servedDay + 1, Dims: dims})
	}
	store, cell := storage.DimsOf(storage.DimStore), storage.DimsOf(storage.DimCell, storage.DimHour)
	dayCmp := storage.DimsOf(storage.DimDay, storage.DimCampaign)
	pubCmp := storage.DimsOf(storage.DimPublisher, storage.DimCampaign)
	hourCmp := storage.DimsOf(storage.DimHour, storage.DimCampaign)
	return append(qs,
		storage.AggregateQuery{From: servedDay + 1, To: servedDay + 1, Dims: storage.AllDims},
		storage.AggregateQuery{From: servedDay, To: servedDay + 1, Dims: store, Advertisers: []string{"adv_1"}},
		storage.AggregateQuery{From: servedDay, To: servedDay + 1, Dims: store, Advertisers: []string{"adv_3", "adv_0", "adv_9"}},
		storage.AggregateQuery{From: servedDay, To: servedDay + 1, Dims: store, Campaigns: []string{"cmp_2_1", "cmp_0_0"}},
		storage.AggregateQuery{From: servedDay, To: servedDay + 1, Dims: store, Publishers: []string{"pub_2"}},
		storage.AggregateQuery{From: servedDay, To: servedDay, Dims: cell, Advertisers: []string{"adv_2"}, Publishers: []string{"pub_0", "pub_1"}},
		storage.AggregateQuery{From: servedDay, To: servedDay + 1, Dims: cell, Advertisers: []string{"adv_2"}, Campaigns: []string{"cmp_2_2"}, Publishers: []string{"pub_1"}},
		storage.AggregateQuery{From: servedDay, To: servedDay + 1, Dims: store, Advertisers: []string{}},
		storage.AggregateQuery{From: servedDay, To: servedDay + 1, Dims: cell, Campaigns: []string{}},
		storage.AggregateQuery{From: servedDay + 2, To: servedDay + 5, Dims: storage.AllDims},
		storage.AggregateQuery{From: servedDay, To: servedDay + 1, Dims: dayCmp, Advertisers: []string{"adv_3", "adv_1", "adv_"}},
		storage.AggregateQuery{From: servedDay + 1, To: servedDay + 1, Dims: dayCmp, Campaigns: []string{"cmp_0_2", "cmp_3_0"}},
		storage.AggregateQuery{From: servedDay, To: servedDay + 1, Dims: pubCmp, Publishers: []string{"pub_2", "pub_0"}},
		storage.AggregateQuery{From: servedDay, To: servedDay, Dims: pubCmp, Publishers: []string{"pub_1"}, Advertisers: []string{"adv_2", "adv_0"}},
		storage.AggregateQuery{From: servedDay, To: servedDay + 1, Dims: pubCmp, Advertisers: []string{"adv_1"}},
		storage.AggregateQuery{From: servedDay, To: servedDay + 1, Dims: hourCmp, Advertisers: []string{"adv_0", "adv_2"}},
		storage.AggregateQuery{From: servedDay, To: servedDay, Dims: hourCmp, Advertisers: []string{"adv_1"}, Publishers: []string{"pub_2"}},
		storage.AggregateQuery{From: servedDay, To: servedDay + 1, Dims: hourCmp, Campaigns: []string{"cmp_2_1"}},
	)
}

// checkReports compares every query of servedQueries with the ledger.
func checkReports(t *testing.T, what string, s *boltstore.Store, l storagetest.Ledger) {
	t.Helper()
	for _, q := range servedQueries() {
		diff(t, fmt.Sprintf("%s: %+v", what, q), storagetest.Grouped(t, s, q), l.Want(q))
	}
}

// servedRows returns n rows of a small world, so that keys repeat across
// flushes, in the given hours of the two test days.
func servedRows(r *rand.Rand, n int, hours ...uint8) []storage.ServedCount {
	rows := make([]storage.ServedCount, n)
	for i := range rows {
		adv := r.IntN(4)
		rows[i] = storage.ServedCount{Key: storage.AggKey{
			Day:          servedDay + storage.Day(r.IntN(2)),
			Hour:         hours[r.IntN(len(hours))],
			AdvertiserID: fmt.Sprintf("adv_%d", adv),
			CampaignID:   fmt.Sprintf("cmp_%d_%d", adv, r.IntN(3)),
			PublisherID:  fmt.Sprintf("pub_%d", r.IntN(3)),
			StoreID:      fmt.Sprintf("s%d", r.IntN(20)),
			Cell:         uint64(r.IntN(5)) << 40, // cells with NUL bytes
		}, N: uint64(1 + r.IntN(3))}
	}
	return rows
}

// servedRig adds served counts and events to a store, and to the ledger
// its reports must match.
type servedRig struct {
	t     *testing.T
	s     *boltstore.Store
	r     *rand.Rand
	l     storagetest.Ledger
	batch int
}

// flush adds n random rows of hours as the next batch (b1, b2…).
func (g *servedRig) flush(n int, hours ...uint8) {
	g.t.Helper()
	rows := servedRows(g.r, n, hours...)
	g.batch++
	must(g.t, g.s.AddServed(g.t.Context(), fmt.Sprintf("b%d", g.batch), rows))
	g.l.Served(rows)
}

// record counts a new event of kind on k, issued at at, with token id.
func (g *servedRig) record(kind storage.Kind, k storage.AggKey, id uint64, at time.Time) {
	g.t.Helper()
	e := &storage.Event{Kind: kind, AdID: "r.1", Issued: at, At: at, Key: k}
	binary.BigEndian.PutUint64(e.Token[:], id)
	if ok, err := g.s.Record(g.t.Context(), e); err != nil || !ok {
		g.t.Fatalf("record: %v %v", ok, err)
	}
	var c storage.Counts
	c.AddKind(kind, 1)
	g.l.Add(k, c)
}

// TestServedManyFlushes: counts stay exact across many flushes that
// compaction merges as they come, retried batches count once, and the
// reports are the same before and after everything is merged.
func TestServedManyFlushes(t *testing.T) {
	c := newClock()
	s := openServed(t, t.TempDir(), c, 2048)
	r := rand.New(rand.NewPCG(3, 4))
	l := storagetest.Ledger{}
	var sent [][]storage.ServedCount
	flushes := 80
	if testing.Short() {
		flushes = 30 // the race pass; the first pass makes all eighty
	}
	for i := range flushes {
		rows := servedRows(r, 1+r.IntN(150), 9, 10)
		must(t, s.AddServed(t.Context(), fmt.Sprintf("b%d", i), rows))
		l.Served(rows)
		sent = append(sent, rows)
		if i%7 == 3 {
			// A retry, and a batch ID used again for other rows.
			must(t, s.AddServed(t.Context(), fmt.Sprintf("b%d", i), rows))
			must(t, s.AddServed(t.Context(), fmt.Sprintf("b%d", i/2), servedRows(r, 10, 9)))
		}
		c.add(time.Second)
	}
	_, runs, err := s.ServedBlocks()
	must(t, err)
	if runs == 0 {
		t.Fatal("no run written: AddServed never compacted")
	}
	checkReports(t, "flushed", s, l)

	c.add(time.Hour)
	n, err := s.CompactServed(t.Context())
	must(t, err)
	if logBlocks, _, err := s.ServedBlocks(); err != nil || logBlocks != 0 || n == 0 {
		t.Fatalf("after compaction %d log blocks (err %v), %d merged", logBlocks, err, n)
	}
	checkReports(t, "compacted", s, l)
	// Retries after compaction still count once.
	for i, rows := range sent[:5] {
		must(t, s.AddServed(t.Context(), fmt.Sprintf("b%d", i), rows))
	}
	checkReports(t, "retried after compaction", s, l)
}

// TestServedCompaction: an hour is merged once a later one has records and
// it has had none for a minute, any hour after 15 minutes without records;
// reports are the same before and after, with rows spread over a version 1
// B+tree, the log, runs and Record's counts.
func TestServedCompaction(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := openServed(t, t.TempDir(), c, 1<<20)
	r := rand.New(rand.NewPCG(5, 6))
	g := &servedRig{t: t, s: s, r: r, l: storagetest.Ledger{}}
	l, flush := g.l, g.flush
	old := servedRows(r, 300, 8, 9)
	must(t, s.AddServedV1(old))
	l.Served(old)
	compact := func(wantMerged bool) {
		t.Helper()
		n, err := s.CompactServed(ctx)
		must(t, err)
		if (n > 0) != wantMerged {
			t.Fatalf("compaction merged %d blocks, want merged %v", n, wantMerged)
		}
	}
	for i := range 10 {
		flush(100, 9)
		for j := range 5 { // impressions on the same keys, in the B+tree
			g.record(storage.Impression, old[i*5+j].Key, uint64(i*5+j), c.now())
		}
		c.add(time.Second)
	}
	checkReports(t, "log", s, l)

	c.add(30 * time.Second)
	flush(100, 10)
	compact(false) // hour 9 is over but may still get stragglers
	c.add(2 * time.Minute)
	compact(true) // hour 9 merged; 10 is the last hour and had a record 2 minutes ago
	logBlocks, runs, err := s.ServedBlocks()
	must(t, err)
	if logBlocks == 0 || runs == 0 {
		t.Fatalf("%d log blocks, %d run blocks: want both", logBlocks, runs)
	}
	checkReports(t, "log and runs", s, l)

	flush(100, 10)
	flush(20, 9) // a straggler of hour 9
	checkReports(t, "log and runs, a straggler", s, l)
	before := make([]map[storage.AggKey]storage.Counts, 0, 140)
	for _, q := range servedQueries() {
		before = append(before, storagetest.Grouped(t, s, q))
	}
	c.add(20 * time.Minute)
	compact(true)
	if logBlocks, _, err := s.ServedBlocks(); err != nil || logBlocks != 0 {
		t.Fatalf("%d log blocks left (err %v)", logBlocks, err)
	}
	for i, q := range servedQueries() {
		diff(t, fmt.Sprintf("after full compaction: %+v", q), storagetest.Grouped(t, s, q), before[i])
	}
	compact(false)
}

// TestServedReopenMidHour: a store closed with an hour's log not merged
// yet finds it all after a restart, keeps refusing its batch IDs, and
// merges it later.
func TestServedReopenMidHour(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	c := newClock()
	s := openServed(t, dir, c, 4096)
	r := rand.New(rand.NewPCG(7, 8))
	l := storagetest.Ledger{}
	var sent [][]storage.ServedCount
	for i := range 20 {
		rows := servedRows(r, 50, 9)
		must(t, s.AddServed(ctx, fmt.Sprintf("b%d", i), rows))
		l.Served(rows)
		sent = append(sent, rows)
		c.add(time.Second)
	}
	must(t, s.Close())

	s = openServed(t, dir, c, 4096)
	checkReports(t, "reopened", s, l)
	for i, rows := range sent {
		must(t, s.AddServed(ctx, fmt.Sprintf("b%d", i), rows))
	}
	rows := servedRows(r, 50, 9)
	must(t, s.AddServed(ctx, "after", rows))
	l.Served(rows)
	checkReports(t, "reopened, retried", s, l)
	c.add(time.Hour)
	_, err := s.CompactServed(ctx)
	must(t, err)
	must(t, s.Close())

	s = openServed(t, dir, c, 4096)
	if logBlocks, runs, err := s.ServedBlocks(); err != nil || logBlocks != 0 || runs == 0 {
		t.Fatalf("reopened after compaction: %d log blocks, %d run blocks (err %v)", logBlocks, runs, err)
	}
	checkReports(t, "compacted, reopened", s, l)
}

// TestServedBackground: the Store's own loop merges finished hours, and
// Close stops it.
func TestServedBackground(t *testing.T) {
	c := newClock()
	s, err := boltstore.Open(t.TempDir(), boltstore.WithClock(c.now), boltstore.WithCompaction(1<<20, time.Millisecond),
		boltstore.WithOnError(func(err error) { t.Errorf("background: %v", err) }))
	must(t, err)
	defer s.Close()
	must(t, s.AddServed(t.Context(), "b1", servedRows(rand.New(rand.NewPCG(1, 1)), 100, 3)))
	c.add(time.Hour)
	for deadline := time.Now().Add(10 * time.Second); ; {
		logBlocks, _, err := s.ServedBlocks()
		must(t, err)
		if logBlocks == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d log blocks still there", logBlocks)
		}
		time.Sleep(time.Millisecond)
	}
	must(t, s.Close())
}

// TestServedReportHoldsCompaction: nothing is merged while a report reads
// the served counts, so that none is counted twice or missed, even when fn
// writes into the store; the merge happens after.
func TestServedReportHoldsCompaction(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := openServed(t, t.TempDir(), c, 1<<20)
	var rows []storage.ServedCount
	for i := range 10000 { // more rows than one read transaction takes
		rows = append(rows, storage.ServedCount{Key: storage.AggKey{Day: servedDay, Hour: uint8(i % 3), AdvertiserID: "adv", CampaignID: "cmp",
			PublisherID: "pub", StoreID: fmt.Sprintf("s%05d", i), Cell: uint64(i)}, N: 1})
	}
	must(t, s.AddServed(ctx, "b1", rows[:5000]))
	must(t, s.AddServed(ctx, "b2", rows[5000:]))
	c.add(time.Hour)
	var total uint64
	calls := 0
	q := &storage.AggregateQuery{From: servedDay, To: servedDay, Dims: storage.AllDims}
	must(t, s.Aggregates(ctx, q, func(a *storage.Aggregate) bool {
		if calls++; calls == 1 {
			if n, err := s.CompactServed(ctx); err != nil || n != 0 {
				t.Errorf("compaction during a report: %d merged, err %v", n, err)
			}
			must(t, s.AddServed(ctx, "b3", rows[:1])) // back into the store from fn
		}
		total += a.Served
		return true
	}))
	if total != 10000 && total != 10001 {
		t.Fatalf("report during writes counted %d", total)
	}
	n, err := s.CompactServed(ctx)
	must(t, err)
	if n == 0 {
		t.Fatal("nothing merged after the report")
	}
	var c2 storage.Counts
	must(t, s.Aggregates(ctx, q, func(a *storage.Aggregate) bool { c2.Add(a.Counts); return true }))
	if c2.Served != 10001 {
		t.Fatalf("after compaction %d served, want 10001", c2.Served)
	}
}

// TestServedCorrupt: a damaged block makes reports of the finest rollup
// and compaction fail with an error, not a panic; the coarse rollups still
// answer.
func TestServedCorrupt(t *testing.T) {
	block := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	uv := func(x uint64) []byte { return binary.AppendUvarint(nil, x) }
	head := block([]byte{1}, uv(1793582400), uv(1)) // version, written, one entry
	good := []byte("adv\x00cmp\x00pub\x00\x09s1\x00\x00\x00\x00\x00\x00\x00\x00\x07")
	goodBlock := block(head, uv(0), uv(uint64(len(good))), good, uv(1))
	tests := []struct {
		name   string
		bucket string
		give   []byte
		key    string // after the record's group and sequence number; "adv\x00" and block 0 if ""
	}{
		{"key without advertiser", "served_log", goodBlock, "\x00\x00\x00\x00\x00"},
		{"key without sep", "served_log", goodBlock, "adv\x01\x00\x00\x00\x00"},
		{"run: short key", "served_run", goodBlock, "\x00"},
		{"empty", "served_log", nil, ""},
		{"unknown version", "served_log", block([]byte{9}, uv(0), uv(1), uv(0), uv(uint64(len(good))), good, uv(1)), ""},
		{"no header", "served_log", []byte{1}, ""},
		{"more entries than bytes", "served_log", block([]byte{1}, uv(0), uv(1000)), ""},
		{"truncated entry", "served_log", block(head, uv(0), uv(uint64(len(good))), good[:10]), ""},
		{"shared beyond the last key", "served_log", block(head, uv(3), uv(uint64(len(good))), good, uv(1)), ""},
		{"huge suffix", "served_log", block(head, uv(0), uv(1<<60), good, uv(1)), ""},
		{"no count", "served_log", block(head, uv(0), uv(uint64(len(good))), good), ""},
		{"bytes after the entries", "served_log", block(head, uv(0), uv(uint64(len(good))), good, uv(1), []byte{0}), ""},
		{"bad key", "served_log", block(head, uv(0), uv(5), []byte("adv\x00c"), uv(1)), ""},
		{"hour 30", "served_log", block(head, uv(0), uv(uint64(len(good))), []byte("adv\x00cmp\x00pub\x00\x1es1\x00\x00\x00\x00\x00\x00\x00\x00\x07"), uv(1)), ""},
		{"run: truncated entry", "served_run", block(head, uv(0), uv(uint64(len(good))), good[:10]), ""},
		{"run: bad key", "served_run", block(head, uv(0), uv(5), []byte("adv\x00c"), uv(1)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			c := newClock()
			tail := []byte(tt.key)
			if tt.key == "" {
				tail = binary.BigEndian.AppendUint32([]byte("adv\x00"), 0)
			}
			s := openDamaged(t, t.TempDir(), c, tt.bucket, tail, tt.give)
			q := &storage.AggregateQuery{From: servedDay, To: servedDay, Dims: storage.AllDims}
			if err := s.Aggregates(ctx, q, func(*storage.Aggregate) bool { return true }); err == nil {
				t.Error("report read the damaged block without an error")
			}
			q.Dims = storage.DimsOf(storage.DimCampaign)
			must(t, s.Aggregates(ctx, q, func(*storage.Aggregate) bool { return true }))
			if tt.bucket == "served_log" {
				c.add(time.Hour)
				if _, err := s.CompactServed(ctx); err == nil {
					t.Error("compaction merged the damaged block without an error")
				}
			}
		})
	}
}

// downgrade makes the data dir in dir look written by layout version
// schema: without buckets, and marked so.
func downgrade(t *testing.T, dir string, schema byte, buckets ...string) {
	t.Helper()
	editFile(t, dir, func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte{schema})
	})
}

// TestServedVersion1File: a data dir written before the served log (layout
// version 1: served counts in agg_c's B+tree, no log buckets) opens,
// reports what it holds, takes new flushes, and is marked version 3.
func TestServedVersion1File(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	c := newClock()
	s := openServed(t, dir, c, 4096)
	r := rand.New(rand.NewPCG(9, 9))
	l := storagetest.Ledger{}
	old := servedRows(r, 500, 7, 8)
	must(t, s.AddServedV1(old))
	l.Served(old)
	must(t, s.Close())
	downgrade(t, dir, 1, "served_log", "served_run", "served_log_a", "served_log_p", "served_log_h")

	s = openServed(t, dir, c, 4096)
	checkReports(t, "version 1", s, l)
	g := &servedRig{t: t, s: s, r: r, l: l}
	for range 10 {
		g.flush(100, 8, 9)
	}
	c.add(time.Hour)
	_, err := s.CompactServed(ctx)
	must(t, err)
	checkReports(t, "version 1, then flushes", s, l)
	must(t, s.Close())
	wantSchema(t, dir, 3)
}

// TestServedAdvertiserSeek: a report of some advertisers by the finest
// dimensions seeks to their blocks in every record and run, and resumes
// between read transactions where it stopped.
func TestServedAdvertiserSeek(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := openServed(t, t.TempDir(), c, 16<<10)
	l := storagetest.Ledger{}
	for f := range 11 {
		var rows []storage.ServedCount
		for i := range 2000 - f/10*1900 { // the last flush stays in the log
			n := f*2000 + i
			rows = append(rows, storage.ServedCount{Key: storage.AggKey{Day: servedDay, Hour: uint8(n % 2), AdvertiserID: fmt.Sprintf("adv_%d", n%5),
				CampaignID: "cmp", PublisherID: fmt.Sprintf("pub_%d", n%3), StoreID: fmt.Sprintf("s%05d", n), Cell: uint64(n)}, N: 1})
		}
		must(t, s.AddServed(ctx, fmt.Sprintf("b%d", f), rows))
		l.Served(rows)
	}
	if logBlocks, runs, err := s.ServedBlocks(); err != nil || logBlocks == 0 || runs == 0 {
		t.Fatalf("%d log blocks, %d run blocks (err %v): want both", logBlocks, runs, err)
	}
	for _, q := range []storage.AggregateQuery{
		{From: servedDay, To: servedDay, Dims: storage.AllDims, Advertisers: []string{"adv_3", "adv_9", "adv_1"}},
		{From: servedDay, To: servedDay, Dims: storage.AllDims, Advertisers: []string{"adv_0", "adv_4"}, Publishers: []string{"pub_1"}},
		{From: servedDay, To: servedDay, Dims: storage.AllDims, Advertisers: []string{"adv_4"}},
		{From: servedDay, To: servedDay, Dims: storage.AllDims, Advertisers: []string{"adv_", "adv_00", "adv_5", "b"}},
		{From: servedDay, To: servedDay, Dims: storage.AllDims},
	} {
		got, want := storagetest.Grouped(t, s, q), l.Want(q)
		diff(t, fmt.Sprintf("%+v", q), got, want)
		if len(q.Advertisers) == 3 && len(got) != 8040 {
			t.Fatalf("%d rows of two advertisers, want 8040", len(got))
		}
	}
}

// TestPurgeEventsKeepsBatchesByStoreClock: PurgeEvents forgets served batch
// IDs by the Store's own clock, the one AddServed remembers them by (it used
// the wall clock): a batch applied "today" and retried after a purge counts
// once.
func TestPurgeEventsKeepsBatchesByStoreClock(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	c.t = time.Now().UTC().Add(-30 * 24 * time.Hour) // the Store's clock, a month behind the wall clock
	s := openServed(t, t.TempDir(), c, 1<<20)
	rows := []storage.ServedCount{{Key: storage.AggKey{Day: storage.DayOf(c.now()), Hour: 1, AdvertiserID: "adv",
		CampaignID: "cmp", PublisherID: "pub", StoreID: "s", Cell: 1}, N: 5}}
	must(t, s.AddServed(ctx, "replica-a:1", rows))
	// The hourly purge, by the same clock: raw events of two days ago.
	_, err := s.PurgeEvents(ctx, c.now().Add(-48*time.Hour))
	must(t, err)
	must(t, s.AddServed(ctx, "replica-a:1", rows)) // a retry of the same flush
	q := &storage.AggregateQuery{From: rows[0].Key.Day, To: rows[0].Key.Day}
	var got uint64
	must(t, s.Aggregates(ctx, q, func(a *storage.Aggregate) bool { got += a.Served; return true }))
	if got != 5 {
		t.Fatalf("served %d after a retried batch, want 5", got)
	}
}
