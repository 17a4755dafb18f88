package boltstore_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/internal/storage/storagetest"
)

// coarseLogs are the served logs of agg_a, agg_p and agg_h, with a query
// each that the planner sends to that rollup.
var coarseLogs = []struct {
	bucket string
	dims   storage.Dims
}{
	{"served_log_a", storage.DimsOf(storage.DimDay, storage.DimCampaign)},
	{"served_log_p", storage.DimsOf(storage.DimPublisher, storage.DimCampaign)},
	{"served_log_h", storage.DimsOf(storage.DimHour, storage.DimCampaign)},
}

// logBlocks returns the blocks of each served log.
func logBlocks(t testing.TB, s *boltstore.Store) map[string]int {
	t.Helper()
	n, err := s.ServedLogBlocks()
	must(t, err)
	return n
}

// TestServedCoarseFold: the coarse rollups' served counts go to their
// logs, which compaction adds into their B+trees; every report is exact
// with counts in the logs, folded, and both, over Record's counts and
// counts written in place by older layouts.
func TestServedCoarseFold(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := openServed(t, t.TempDir(), c, 1<<20)
	r := rand.New(rand.NewPCG(11, 12))
	g := &servedRig{t: t, s: s, r: r, l: storagetest.Ledger{}}
	l := g.l
	old := servedRows(r, 200, 8, 9)
	must(t, s.AddServedV2(old))
	l.Served(old)
	flush := func(n int, hours ...uint8) {
		t.Helper()
		g.flush(n, hours...)
		c.add(time.Second)
	}
	for i := range 5 {
		flush(100, 9)
		g.record(storage.Click, old[i].Key, uint64(i), c.now())
	}
	for _, cl := range coarseLogs {
		if n := logBlocks(t, s)[cl.bucket]; n == 0 {
			t.Fatalf("%s: no blocks after the flushes", cl.bucket)
		}
	}
	checkReports(t, "in the logs", s, l)

	c.add(20 * time.Minute)
	if _, err := s.CompactServed(ctx); err != nil {
		t.Fatal(err)
	}
	for b, n := range logBlocks(t, s) {
		if n != 0 {
			t.Fatalf("%s: %d blocks left after compaction", b, n)
		}
	}
	checkReports(t, "folded", s, l)
	flush(100, 9, 10) // the same keys again, in the logs
	checkReports(t, "folded and in the logs", s, l)
}

// TestServedCoarseFoldBySize: a small compaction size folds the coarse
// logs as flushes fill them, a part at a time, and reports stay exact.
func TestServedCoarseFoldBySize(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := openServed(t, t.TempDir(), c, 1024)
	r := rand.New(rand.NewPCG(13, 14))
	l := storagetest.Ledger{}
	for i := range 40 {
		rows := servedRows(r, 1+r.IntN(120), 9, 10)
		must(t, s.AddServed(ctx, fmt.Sprintf("b%d", i), rows))
		l.Served(rows)
		c.add(time.Second)
		if i%13 == 0 {
			checkReports(t, fmt.Sprintf("flush %d", i), s, l)
		}
	}
	blocks := logBlocks(t, s)
	if blocks["served_log_h"] > 200 {
		t.Fatalf("%d blocks in agg_h's log: not folded as it filled", blocks["served_log_h"])
	}
	checkReports(t, "flushed", s, l)
}

// TestServedCoarseReportHoldsFold: no fold runs while a report of a
// coarse rollup reads, across its read transactions, so that no count
// moves from the log into the B+tree under it.
func TestServedCoarseReportHoldsFold(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := openServed(t, t.TempDir(), c, 1<<20)
	var rows []storage.ServedCount
	for i := range 10000 { // more keys of agg_h than one read transaction takes
		rows = append(rows, storage.ServedCount{Key: storage.AggKey{Day: servedDay, Hour: uint8(i % 3), AdvertiserID: fmt.Sprintf("adv_%d", i%7),
			CampaignID: fmt.Sprintf("cmp_%05d", i), PublisherID: "pub", StoreID: "s", Cell: 1}, N: 1})
	}
	must(t, s.AddServed(ctx, "b1", rows[:5000]))
	c.add(time.Hour)
	_, err := s.CompactServed(ctx) // the first half in the B+trees
	must(t, err)
	must(t, s.AddServed(ctx, "b2", rows[5000:]))
	c.add(time.Hour)
	for _, cl := range coarseLogs {
		t.Run(cl.bucket, func(t *testing.T) {
			var total uint64
			calls := 0
			q := &storage.AggregateQuery{From: servedDay, To: servedDay, Dims: cl.dims | storage.DimsOf(storage.DimHour)}
			if cl.bucket != "served_log_h" {
				q.Dims = cl.dims
			}
			must(t, s.Aggregates(ctx, q, func(a *storage.Aggregate) bool {
				if calls++; calls == 1 {
					if n, err := s.CompactServed(ctx); err != nil || n != 0 {
						t.Errorf("compaction during a report: %d merged, err %v", n, err)
					}
				}
				total += a.Served
				return true
			}))
			if total != 10000 {
				t.Fatalf("report counted %d, want 10000", total)
			}
		})
	}
	n, err := s.CompactServed(ctx)
	must(t, err)
	if n == 0 {
		t.Fatal("nothing merged after the reports")
	}
	l := storagetest.Ledger{}
	l.Served(rows)
	checkReports(t, "after", s, l)
}

// TestServedVersion2File: a data dir of layout version 2 (served counts
// of the coarse rollups in place, agg_c's in the served log, no coarse
// logs) opens, reports what it holds, takes new flushes, merges its log,
// and is marked version 3.
func TestServedVersion2File(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	c := newClock()
	s := openServed(t, dir, c, 4096)
	r := rand.New(rand.NewPCG(15, 16))
	l := storagetest.Ledger{}
	for range 5 {
		old := servedRows(r, 100, 8, 9)
		must(t, s.AddServedV2(old))
		l.Served(old)
	}
	must(t, s.Close())
	downgrade(t, dir, 2, "served_log_a", "served_log_p", "served_log_h")

	s = openServed(t, dir, c, 4096)
	checkReports(t, "version 2", s, l)
	g := &servedRig{t: t, s: s, r: r, l: l}
	for range 10 {
		g.flush(100, 8, 9)
	}
	checkReports(t, "version 2, then flushes", s, l)
	c.add(time.Hour)
	_, err := s.CompactServed(ctx)
	must(t, err)
	checkReports(t, "version 2, then flushes, merged", s, l)
	must(t, s.Close())

	s = openServed(t, dir, c, 4096)
	checkReports(t, "reopened", s, l)
	must(t, s.Close())
	wantSchema(t, dir, 3)
}

// TestServedCoarseCorrupt: a damaged block of a coarse rollup's log makes
// reports of that rollup and compaction fail with an error, not a panic;
// the finest rollup still answers.
func TestServedCoarseCorrupt(t *testing.T) {
	uv := func(x uint64) []byte { return binary.AppendUvarint(nil, x) }
	block := func(key string, parts ...[]byte) []byte {
		b := append([]byte{1}, uv(1793582400)...)
		b = append(append(b, uv(1)...), uv(0)...)
		b = append(append(b, uv(uint64(len(key)))...), key...)
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	good := map[string]string{"served_log_a": "adv\x00cmp", "served_log_p": "adv\x00adv\x00cmp", "served_log_h": "adv\x00cmp\x00pub\x00\x09"}
	bad := map[string][]string{
		"served_log_a": {"adv", "adv\x00", "\x00cmp", "adv\x00cmp\x00pub", "adv\x00cmp\x00pub\x00\x09s1\x00\x00\x00\x00\x00\x00\x00\x00\x07"},
		"served_log_p": {"adv\x00cmp", "pub\x00adv\x00", "pub\x00\x00cmp", "pub\x00adv\x00cmp\x00x"},
		"served_log_h": {"adv\x00cmp\x00pub", "adv\x00cmp\x00pub\x00", "adv\x00cmp\x00pub\x00\x1e", "adv\x00cmp\x00pub\x00\x09\x00", "adv\x00cmp\x00\x00\x09"},
	}
	type damage struct {
		name, bucket string
		give         []byte
	}
	var tests []damage
	for _, cl := range coarseLogs {
		for _, k := range bad[cl.bucket] {
			tests = append(tests, damage{fmt.Sprintf("%s key %q", cl.bucket, k), cl.bucket, block(k, uv(1))})
		}
		g := good[cl.bucket]
		tests = append(tests,
			damage{cl.bucket + " no count", cl.bucket, block(g)},
			damage{cl.bucket + " truncated", cl.bucket, block(g)[:8]},
			damage{cl.bucket + " bytes after", cl.bucket, block(g, uv(1), []byte{0})},
			damage{cl.bucket + " empty", cl.bucket, nil},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			c := newClock()
			s := openDamaged(t, t.TempDir(), c, tt.bucket, binary.BigEndian.AppendUint32([]byte("adv\x00"), 0), tt.give)
			for _, cl := range coarseLogs {
				q := &storage.AggregateQuery{From: servedDay, To: servedDay, Dims: cl.dims}
				err := s.Aggregates(ctx, q, func(*storage.Aggregate) bool { return true })
				if cl.bucket == tt.bucket && err == nil {
					t.Errorf("report of %s read the damaged block without an error", cl.bucket)
				}
				if cl.bucket != tt.bucket && err != nil {
					t.Errorf("report of %s: %v", cl.bucket, err)
				}
			}
			q := &storage.AggregateQuery{From: servedDay, To: servedDay, Dims: storage.AllDims}
			must(t, s.Aggregates(ctx, q, func(*storage.Aggregate) bool { return true }))
			c.add(time.Hour)
			if _, err := s.CompactServed(ctx); err == nil {
				t.Error("compaction merged the damaged block without an error")
			}
		})
	}
}
