package boltstore_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/navad/navad/internal/storage"
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

// BenchmarkAddServedNational is one one-second flush of tracking's served
// counts at national scale (about 5,000 new finest-grain keys) into a store
// that holds 300,000 of them already. ns/op is per flush; file-B/flush is
// how much the file grew per flush, data-B/flush how much of it bbolt used
// (the file grows in 16 MB steps); cpu-ns/flush is the CPU time of the
// process during AddServed, background work included.
func BenchmarkAddServedNational(b *testing.B) {
	const prefill, flush = 300_000, 5_000
	ctx := b.Context()
	s := open(b, b.TempDir())
	r := rand.New(rand.NewPCG(1, 2))
	day := storage.DayOf(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
	for i := range prefill / flush {
		// Earlier hours of the day.
		must(b, s.AddServed(ctx, fmt.Sprintf("pre-%d", i), nationalRows(r, flush, day, uint8(i*10/(prefill/flush)))))
	}
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
		rows := nationalRows(r, flush, day, 10)
		b.StartTimer()
		c := cpuTime()
		must(b, s.AddServed(ctx, fmt.Sprintf("b-%d", n), rows))
		cpu += cpuTime() - c
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
	const prefill, flush = 300_000, 5_000
	ctx := b.Context()
	s := open(b, b.TempDir())
	r := rand.New(rand.NewPCG(1, 2))
	day := storage.DayOf(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
	for i := range prefill / flush {
		must(b, s.AddServed(ctx, fmt.Sprintf("pre-%d", i), nationalRows(r, flush, day, uint8(i*5/(prefill/flush)))))
	}
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
