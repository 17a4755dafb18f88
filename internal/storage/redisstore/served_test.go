package redisstore_test

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/redisstore"
	"github.com/navad/navad/internal/storage/storagetest"
	"github.com/redis/go-redis/v9"
)

// servedRows returns n served rows of day d over campaigns of two
// advertisers, seeded so that batches differ.
func servedRows(d storage.Day, seed, n, campaigns int) []storage.ServedCount {
	rows := make([]storage.ServedCount, n)
	for i := range rows {
		x := seed*7919 + i
		rows[i] = storage.ServedCount{Key: storage.AggKey{
			Day: d, Hour: uint8(x % 24), AdvertiserID: fmt.Sprint("adv_", (x/7)%2),
			CampaignID: fmt.Sprint("cmp_", x%campaigns), PublisherID: fmt.Sprint("pub_", x%3),
			StoreID: fmt.Sprint("st_", x%101), Cell: 0x8a2f5a3200000000 + uint64(x%37),
		}, N: uint64(1 + x%5)}
	}
	return rows
}

// addBatches adds batches of servedRows (batch IDs batch-0, batch-1…) to s
// and to l.
func addBatches(t *testing.T, s *redisstore.Store, l storagetest.Ledger, d storage.Day, batches, rows, campaigns int) {
	t.Helper()
	for b := range batches {
		rs := servedRows(d, b, rows, campaigns)
		must(t, s.AddServed(t.Context(), fmt.Sprint("batch-", b), rs))
		l.Served(rs)
	}
}

// reportsByDims are one query per rollup, so that every log kind is read.
func reportsByDims(d storage.Day) []storage.AggregateQuery {
	return []storage.AggregateQuery{
		{From: d, To: d, Dims: storage.DimsOf(storage.DimDay, storage.DimAdvertiser, storage.DimCampaign)},
		{From: d, To: d, Dims: storage.DimsOf(storage.DimPublisher, storage.DimCampaign), Publishers: []string{"pub_1", "pub_2"}},
		{From: d, To: d, Dims: storage.DimsOf(storage.DimHour, storage.DimCampaign, storage.DimPublisher)},
		{From: d, To: d, Dims: storage.AllDims},
	}
}

func checkReports(t *testing.T, s *redisstore.Store, d storage.Day, l storagetest.Ledger, when string) {
	t.Helper()
	for _, q := range reportsByDims(d) {
		if got, want := storagetest.Grouped(t, s, q), l.Want(q); !maps.Equal(got, want) {
			t.Fatalf("%s: report by %v: %d rows, want %d", when, q.Dims, len(got), len(want))
		}
	}
}

// TestServedLogsFold: served counts appended as logs give the same reports
// before and after they are folded into the hashes; the finest rollup's
// logs are never folded. (The events contract suite mixes served counts
// with tracking events in the same hashes.)
func TestServedLogsFold(t *testing.T) {
	redistest.EachMode(t, testServedLogsFold)
}

func testServedLogsFold(t *testing.T, srv *redistest.Server) {
	s := open(t, srv.URL())
	rdb := srv.Client(t)
	d := storage.DayOf(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	l := storagetest.Ledger{}
	addBatches(t, s, l, d, 5, 300, 40)
	must(t, s.AddServed(t.Context(), "batch-0", servedRows(d, 0, 300, 40))) // applied before: nothing
	checkReports(t, s, d, l, "before folding")

	n, err := s.FoldServed(t.Context())
	if err != nil || n != 2+3+2 { // a and h: two advertisers; p: three publishers
		t.Fatalf("folded %d logs (%v), want 7", n, err)
	}
	keys, err := rdb.Keys(t.Context(), "{navad:ev}:slog:*").Result()
	must(t, err)
	hours := make(map[string]bool) // advertiser and hour
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, "{navad:ev}:slog:c:")
		parts := strings.Split(rest, ":") // day, hour, slot, advertiser
		if !ok || len(parts) != 4 {
			t.Fatalf("log %s left after folding", k)
		}
		hours[parts[3]+" "+parts[1]] = true
	}
	if len(hours) != 2*24 || len(keys) > 2*2*24 {
		t.Fatalf("%d logs of rollup c over %d advertiser-hours, want 48 advertiser-hours (in one slot, or two at a boundary)", len(keys), len(hours))
	}
	checkReports(t, s, d, l, "after folding")

	// More of both after the fold, then a fold again.
	rows := servedRows(d, 9, 200, 40)
	must(t, s.AddServed(t.Context(), "batch-9", rows))
	l.Served(rows)
	checkReports(t, s, d, l, "with a log beside a folded hash")
	if n, err := s.FoldServed(t.Context()); err != nil || n != 7 {
		t.Fatalf("second fold: %d, %v", n, err)
	}
	if n, err := s.FoldServed(t.Context()); err != nil || n != 0 {
		t.Fatalf("a fold with nothing to fold folded %d (%v)", n, err)
	}
	checkReports(t, s, d, l, "after the second fold")
}

// TestServedLogsFoldByThemselves: a log past its length is folded in the
// background by the replica that appended to it.
func TestServedLogsFoldByThemselves(t *testing.T) {
	defer redisstore.SetFoldAt(512)()
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	rdb := srv.Client(t)
	d := storage.DayOf(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	l := storagetest.Ledger{}
	addBatches(t, s, l, d, 20, 50, 30)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := rdb.StrLen(t.Context(), "{navad:ev}:slog:a:"+d.String()+":adv_0").Result()
		must(t, err)
		if n <= 512 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log of %d bytes never folded", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, _ := rdb.HLen(t.Context(), "{navad:ev}:agg:a:"+d.String()+":adv_0").Result(); n == 0 {
		t.Fatal("nothing folded into the hash")
	}
	checkReports(t, s, d, l, "after background folds")
}

// TestServedLogsReadWhileFolding: reports read while logs are appended and
// folded never count a served ad twice or miss one: each report's total
// lies between what was added before it started and what was begun by its
// end, over hashes big enough to take several HSCAN pages.
func TestServedLogsReadWhileFolding(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	d := storage.DayOf(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	// Rollup h's hash of adv_0 with thousands of fields: several pages.
	// A batch counts as begun before AddServed is called and as added once
	// it returns: a report may see a batch whose call has not returned yet.
	var begun, added atomic.Uint64
	add := func(b int) {
		rows := servedRows(d, b, 400, 3000)
		var n uint64
		for _, r := range rows {
			n += r.N
		}
		begun.Add(n)
		must(t, s.AddServed(t.Context(), fmt.Sprint("batch-", b), rows))
		added.Add(n)
	}
	for b := range 20 {
		add(b)
	}
	if _, err := s.FoldServed(t.Context()); err != nil {
		t.Fatal(err)
	}
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for b := 20; !stop.Load(); b++ {
			add(b)
			if b%3 == 0 {
				if _, err := s.FoldServed(t.Context()); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	q := storage.AggregateQuery{From: d, To: d, Dims: storage.DimsOf(storage.DimHour, storage.DimCampaign, storage.DimPublisher)}
	for range 40 {
		before := added.Load()
		var got uint64
		for _, c := range storagetest.Grouped(t, s, q) {
			got += c.Served
		}
		after := begun.Load()
		if got < before || got > after {
			t.Errorf("a report read while folding counted %d served; %d were added before it and %d begun by its end", got, before, after)
			break
		}
	}
	stop.Store(true)
	wg.Wait()
}

// TestServedLogCorrupt: a log that is not blocks fails reports and folds
// with an error, and nothing else.
func TestServedLogCorrupt(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	d := storage.DayOf(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	must(t, s.AddServed(t.Context(), "batch-1", servedRows(d, 1, 20, 5)))
	log := "{navad:ev}:slog:a:" + d.String() + ":adv_0"
	must(t, srv.Client(t).Append(t.Context(), log, "\x05\x00\xff").Err())
	q := storage.AggregateQuery{From: d, To: d, Dims: storage.DimsOf(storage.DimCampaign)}
	err := s.Aggregates(t.Context(), &q, func(*storage.Aggregate) bool { return true })
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("report over a corrupt log: %v", err)
	}
	if _, err := s.FoldServed(t.Context()); err == nil {
		t.Fatal("folded a corrupt log")
	}
	if n, _ := srv.Client(t).StrLen(t.Context(), log).Result(); n == 0 {
		t.Fatal("the corrupt log was dropped")
	}
}

// TestStoreReportReadsLogsThatHoldRows: a report by store or cell reads
// rollup c's unfolded logs, 144 a day and advertiser, but only those that
// hold anything, several a round trip: one advertiser's day with rows in
// two hours takes one MGET, not one per six logs of the day (24). Read one
// log a round trip, the report is the same.
func TestStoreReportReadsLogsThatHoldRows(t *testing.T) {
	redistest.EachMode(t, func(t *testing.T, srv *redistest.Server) {
		s := open(t, srv.URL())
		rdb := srv.Client(t)
		ctx := t.Context()
		d := storage.DayOf(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
		l := storagetest.Ledger{}
		var rows []storage.ServedCount
		for i := range 40 {
			rows = append(rows, storage.ServedCount{Key: storage.AggKey{
				Day: d, Hour: uint8(3 + 12*(i%2)), AdvertiserID: "adv_0", CampaignID: fmt.Sprint("cmp_", i%4),
				PublisherID: "pub_0", StoreID: fmt.Sprint("st_", i), Cell: 0x8a2f5a3200000000 + uint64(i%5),
			}, N: uint64(1 + i%3)})
		}
		must(t, s.AddServed(ctx, "b1", rows))
		l.Served(rows)
		q := storage.AggregateQuery{From: d, To: d, Dims: storage.DimsOf(storage.DimStore, storage.DimCampaign), Advertisers: []string{"adv_0"}}

		must(t, rdb.ConfigResetStat(ctx).Err())
		if got, want := storagetest.Grouped(t, s, q), l.Want(q); !maps.Equal(got, want) || len(want) != 40 {
			t.Fatalf("report by store: %d rows, want %d (40)", len(got), len(want))
		}
		if n := commandCalls(t, rdb, "mget"); n != 1 {
			t.Fatalf("the report read the logs in %d MGETs, want 1", n)
		}

		// One log a round trip: every log that holds rows is read, and
		// only those.
		defer redisstore.SetLogBatchBytes(1)()
		must(t, rdb.ConfigResetStat(ctx).Err())
		if got, want := storagetest.Grouped(t, s, q), l.Want(q); !maps.Equal(got, want) {
			t.Fatalf("report by store, a log a round trip: %d rows, want %d", len(got), len(want))
		}
		logs, err := rdb.Keys(ctx, "{navad:ev}:slog:c:*").Result()
		must(t, err)
		if n := commandCalls(t, rdb, "mget"); n != len(logs) || n < 2 {
			t.Fatalf("a log a round trip: %d MGETs for %d logs (at least two hours)", n, len(logs))
		}

		// Both advertisers, every hour, in batches: the reports by every
		// rollup still match the ledger, read a log at a time.
		addBatches(t, s, l, d, 4, 300, 40)
		checkReports(t, s, d, l, "a log a round trip")
	})
}

// commandCalls returns how many times Redis ran cmd since its statistics
// were last reset.
func commandCalls(t *testing.T, rdb redis.UniversalClient, cmd string) int {
	t.Helper()
	info, err := rdb.Info(t.Context(), "commandstats").Result()
	must(t, err)
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest[:strings.IndexByte(rest+",", ',')])
		must(t, err)
		return n
	}
	return 0
}
