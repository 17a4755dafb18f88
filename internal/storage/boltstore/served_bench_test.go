package boltstore_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/navad/navad/internal/cputime"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
)

// nationalRows returns n served counts spread the way a national
// deployment spreads them: random stores out of a million, random cells,
// 200 advertisers and 3,000 campaigns, five publishers, all in one hour of
// one day. Nearly every row is a key of its own.
func nationalRows(r *rand.Rand, n int, day storage.Day, hour uint8) []storage.ServedCount {
	rows := make([]storage.ServedCount, n)
	for i := range rows {
		cmp := r.IntN(3000)
		rows[i] = storage.ServedCount{Key: storage.AggKey{
			Day:          day,
			Hour:         hour,
			AdvertiserID: fmt.Sprintf("adv_%03d", cmp%200),
			CampaignID:   fmt.Sprintf("cmp_%05d", cmp),
			PublisherID:  fmt.Sprintf("pub_%d", r.IntN(5)),
			StoreID:      fmt.Sprintf("st_%07d", r.IntN(1_000_000)),
			Cell:         0x0880000000000000 | r.Uint64N(1<<40)<<12 | 0xfff,
		}, N: 1 + uint64(r.IntN(10)/9)}
	}
	return rows
}

// nationalFlush is the rows of one flush at national scale.
const nationalFlush = 5_000

// nationalStore opens a store that holds 300,000 nationalRows of one day,
// written in flushes of nationalFlush spread evenly over its first hours,
// and returns it with the rows' source and the day.
func nationalStore(b *testing.B, hours int) (*boltstore.Store, *rand.Rand, storage.Day) {
	const prefill = 300_000
	s := open(b, b.TempDir())
	r := rand.New(rand.NewPCG(1, 2))
	day := storage.DayOf(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
	for i := range prefill / nationalFlush {
		must(b, s.AddServed(b.Context(), fmt.Sprintf("pre-%d", i), nationalRows(r, nationalFlush, day, uint8(i*hours/(prefill/nationalFlush)))))
	}
	return s, r, day
}

// BenchmarkAddServedNational is one one-second flush of tracking's served
// counts at national scale (about 5,000 new finest-grain keys) into a store
// that holds 300,000 of them already. ns/op is per flush; file-B/flush is
// how much the file grew per flush, data-B/flush how much of it bbolt used
// (the file grows in 16 MB steps); cpu-ns/flush is the CPU time of the
// process during AddServed, background work included.
func BenchmarkAddServedNational(b *testing.B) {
	ctx := b.Context()
	s, r, day := nationalStore(b, 10) // earlier hours of the day
	fileSize := func() int64 {
		fi, err := os.Stat(s.Path())
		must(b, err)
		return fi.Size()
	}
	file0 := fileSize()
	data0, err := s.DataSize()
	must(b, err)
	var cpu time.Duration
	n := 0
	for b.Loop() {
		// Fresh keys every flush, made off the clock.
		b.StopTimer()
		rows := nationalRows(r, nationalFlush, day, 10)
		b.StartTimer()
		c := cputime.Process()
		must(b, s.AddServed(ctx, fmt.Sprintf("b-%d", n), rows))
		cpu += cputime.Process() - c
		n++
	}
	b.StopTimer()
	data1, err := s.DataSize()
	must(b, err)
	b.ReportMetric(float64(cpu)/float64(n), "cpu-ns/flush")
	b.ReportMetric(float64(fileSize()-file0)/float64(n), "file-B/flush")
	b.ReportMetric(float64(data1-data0)/float64(n), "data-B/flush")
}

// BenchmarkReportFinest reads a day of 300,000 finest-grain served counts
// (nationalRows, 60 flushes over five hours): all of them, and one
// advertiser's (one in 200), by every dimension.
func BenchmarkReportFinest(b *testing.B) {
	ctx := b.Context()
	s, _, day := nationalStore(b, 5)
	for _, bm := range []struct {
		name string
		advs []string
	}{{"all", nil}, {"advertiser", []string{"adv_007"}}} {
		b.Run(bm.name, func(b *testing.B) {
			q := &storage.AggregateQuery{From: day, To: day, Dims: storage.AllDims, Advertisers: bm.advs}
			var served uint64
			for b.Loop() {
				served = 0
				must(b, s.Aggregates(ctx, q, func(a *storage.Aggregate) bool { served += a.Served; return true }))
			}
			b.ReportMetric(float64(served), "served")
		})
	}
}

// BenchmarkReportCoarse reads a month of served counts by the coarse
// rollups: 30 days of 10,000 campaigns (200 advertisers, three
// publishers) in two flushes a day, every finished hour merged, and the
// last day's current hour holding six national-spread flushes not merged
// yet. "campaign" is the month by day and campaign (300,000 rows),
// "advertiser" the same for one advertiser of 200, "hour" the last day by
// hour and campaign.
func BenchmarkReportCoarse(b *testing.B) {
	const days, campaignsN = 30, 10_000
	ctx := b.Context()
	first := storage.DayOf(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	s, err := boltstore.Open(b.TempDir(), boltstore.WithClock(func() time.Time { return now }), boltstore.WithCompaction(0, 0))
	must(b, err)
	b.Cleanup(func() { _ = s.Close() })
	for d := range days {
		for h, hour := range []uint8{9, 15} {
			rows := make([]storage.ServedCount, 0, campaignsN)
			for c := range campaignsN {
				rows = append(rows, storage.ServedCount{N: uint64(1 + c%7), Key: storage.AggKey{
					Day: first + storage.Day(d), Hour: hour, AdvertiserID: fmt.Sprintf("adv_%03d", c%200),
					CampaignID: fmt.Sprintf("cmp_%05d", c), PublisherID: fmt.Sprintf("pub_%d", c%3),
					StoreID: fmt.Sprintf("store-%06d", (c*7+d)%100_000), Cell: 0x882f5aa6b7fffff + uint64(c%500)<<12,
				}})
			}
			must(b, s.AddServed(ctx, fmt.Sprintf("m-%d-%d", d, h), rows))
		}
		now = now.Add(24 * time.Hour)
	}
	now = now.Add(time.Hour)
	_, err = s.CompactServed(ctx)
	must(b, err)
	last := first + days - 1
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 6 {
		must(b, s.AddServed(ctx, fmt.Sprintf("n-%d", i), nationalRows(r, nationalFlush, last, 20)))
	}
	for _, bm := range []struct {
		name string
		q    storage.AggregateQuery
	}{
		{"campaign", storage.AggregateQuery{From: first, To: last, Dims: storage.DimsOf(storage.DimDay, storage.DimCampaign)}},
		{"advertiser", storage.AggregateQuery{From: first, To: last, Dims: storage.DimsOf(storage.DimDay, storage.DimCampaign), Advertisers: []string{"adv_007"}}},
		{"hour", storage.AggregateQuery{From: last, To: last, Dims: storage.DimsOf(storage.DimHour, storage.DimCampaign)}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			var served uint64
			rows := 0
			for b.Loop() {
				served, rows = 0, 0
				must(b, s.Aggregates(ctx, &bm.q, func(a *storage.Aggregate) bool { served += a.Served; rows++; return true }))
			}
			b.ReportMetric(float64(served), "served")
			b.ReportMetric(float64(rows), "rows")
		})
	}
}

// BenchmarkPurgeDetail deletes a day of 300,000 finest-grain served counts
// (nationalStore: 60 flushes over the day's 24 hours, merged into runs
// hour by hour): what the hourly purge does once a day passes the detail
// retention. An op is one day's purge; a national day holds some hundreds
// of times these rows.
func BenchmarkPurgeDetail(b *testing.B) {
	var rows float64
	for b.Loop() {
		b.StopTimer()
		s, _, day := nationalStore(b, 24)
		if _, err := s.CompactServed(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n, err := s.PurgeDetail(b.Context(), day+1)
		must(b, err)
		if n != 1 {
			b.Fatalf("purged %d days, want 1", n)
		}
		rows += 300_000
	}
	b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
}
