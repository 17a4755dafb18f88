package redisstore_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/cputime"
	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/reports"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/redisstore"
	"github.com/navad/navad/internal/tracking"
)

// The benchmarks report, besides wall time per operation, the processor
// time it cost navad's process (cpu-ns/op: token checks, encoding, go-redis)
// and the Redis server (redis-cpu-ns/op, from INFO cpu), since both run on
// the same machine here and the machine is shared.

// redisInfo returns the sum of the named fields of a section of the Redis
// server's INFO.
func redisInfo(b *testing.B, srv *redistest.Server, section string, names ...string) float64 {
	info, err := srv.Client(b).Info(context.Background(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		name, v, ok := strings.Cut(line, ":")
		if ok && slices.Contains(names, name) {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

// redisCPU returns the CPU time the Redis server has used.
func redisCPU(b *testing.B, srv *redistest.Server) time.Duration {
	return time.Duration(redisInfo(b, srv, "cpu", "used_cpu_sys", "used_cpu_user") * float64(time.Second))
}

// measure runs fn and reports cpu-ns/op and redis-cpu-ns/op.
func measure(b *testing.B, srv *redistest.Server, fn func()) {
	cpu, rcpu := cputime.Process(), redisCPU(b, srv)
	b.ResetTimer()
	fn()
	b.StopTimer()
	b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(redisCPU(b, srv)-rcpu)/float64(b.N), "redis-cpu-ns/op")
}

// BenchmarkCountThroughRedis counts distinct impressions through the
// tracking service (token check, then Store.Record), 128 in flight, as the
// tracking endpoint does on a replica.
func BenchmarkCountThroughRedis(b *testing.B) {
	srv := redistest.Start(b)
	s := open(b, srv.URL())
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	now := time.Now()
	svc, err := tracking.New(s, tracking.Options{
		PublicURL: "https://ads.example.com/", Secret: []byte("0123456789abcdef0123456789abcdef"),
		TTL: 24 * time.Hour, RetentionDays: 2, Location: tokyo, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		FlushInterval: time.Hour, Now: func() time.Time { return now },
		Landing: func(string) (string, bool) { return "https://example.com/", true },
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = svc.Close() })
	tokens := make([]string, b.N)
	for i := range tokens {
		d := svc.NewDecision("pub_navi", now, 35.6909, 139.7003)
		l := svc.Serve(&d, &tracking.Ad{AdID: fmt.Sprintf("req%d.1", i), CampaignID: fmt.Sprintf("cmp_%05d", i%10000),
			AdvertiserID: fmt.Sprintf("adv_%03d", i%200), StoreID: fmt.Sprintf("store-%06d", i%100000), StoreLat: 35.69, StoreLng: 139.70})
		tokens[i] = l.Impression[strings.LastIndexByte(l.Impression, '/')+1:]
	}
	var next atomic.Int64
	b.SetParallelism(64) // 128 goroutines on 2 cores
	b.ReportAllocs()
	measure(b, srv, func() {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := svc.Count(context.Background(), storage.Impression, tokens[next.Add(1)-1], false)
				if err != nil || !res.Counted {
					b.Error(res, err)
					return
				}
			}
		})
	})
}

// BenchmarkReserve reserves served ads of 1,000 campaigns with a daily and
// a total cap and a frequency cap per user, 128 in flight, as the decision
// path does on a replica.
func BenchmarkReserve(b *testing.B) {
	srv := redistest.Start(b)
	caps := open(b, srv.URL()).Caps()
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	now := time.Now().In(tokyo)
	y, m, d := now.Date()
	reserveParallel(b, srv, caps, func(i int64) storage.CapRequest {
		return storage.CapRequest{
			CampaignID: "cmp_" + strconv.Itoa(int(i%1000)), Now: now, TotalLimit: 1 << 40,
			Day: now.Format(time.DateOnly), DayEnd: time.Date(y, m, d+1, 0, 0, 0, 0, tokyo), DailyLimit: 1 << 40,
			UID: "user-" + strconv.Itoa(int(i%100000)), UserLimit: 1 << 40, UserPeriod: 24 * time.Hour,
		}
	})
}

// BenchmarkReserveUser reserves ads taken from leases, the decision
// path's only call to Redis for a budgeted campaign with a frequency cap:
// "new" opens a window for every ad (a user's first ad of the campaign, as
// with a national audience), "open" counts into windows already open.
func BenchmarkReserveUser(b *testing.B) {
	srv := redistest.Start(b)
	caps := open(b, srv.URL()).Caps()
	now := time.Now()
	for _, bm := range []struct {
		name  string
		users int64
	}{{"new", 1 << 62}, {"open", 1000}} {
		b.Run(bm.name, func(b *testing.B) {
			reserveParallel(b, srv, caps, func(i int64) storage.CapRequest {
				return storage.CapRequest{
					CampaignID: "cmp_" + strconv.Itoa(int(i%1000)), Now: now, Leased: true,
					Day: now.Format(time.DateOnly), DayEnd: now.Add(24 * time.Hour), TotalLimit: 1 << 40, DailyLimit: 1 << 40,
					UID: bm.name + "-" + strconv.FormatInt(i%bm.users, 10), UserLimit: 1 << 40, UserPeriod: 24 * time.Hour,
				}
			})
		})
	}
}

// reserveParallel reserves req(i) for i = 1, 2, … with 128 in flight,
// each of which must be allowed, and reports the CPU of both sides.
func reserveParallel(b *testing.B, srv *redistest.Server, caps *redisstore.Caps, req func(i int64) storage.CapRequest) {
	var next atomic.Int64
	b.SetParallelism(64)
	b.ReportAllocs()
	measure(b, srv, func() {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if ok, err := caps.Reserve(context.Background(), req(next.Add(1))); err != nil || !ok {
					b.Error(ok, err)
					return
				}
			}
		})
	})
}

// addServedDay adds day d after first of served counts, as one flush, to
// s and returns its rows: campaignsN campaigns of 200 advertisers, each
// served in one hour of the day at one store.
func addServedDay(b *testing.B, s *redisstore.Store, first storage.Day, d, campaignsN int) []storage.ServedCount {
	b.Helper()
	day := first + storage.Day(d)
	rows := make([]storage.ServedCount, 0, campaignsN)
	for c := range campaignsN {
		rows = append(rows, storage.ServedCount{N: uint64(1 + c%7), Key: storage.AggKey{
			Day: day, Hour: uint8(c % 24), AdvertiserID: fmt.Sprintf("adv_%03d", c%200),
			CampaignID: fmt.Sprintf("cmp_%05d", c), PublisherID: fmt.Sprintf("pub_%d", c%3),
			StoreID: fmt.Sprintf("store-%06d", (c*7+d)%100_000), Cell: 0x882f5aa6b7fffff + uint64(c%500)<<12,
		}})
	}
	if err := s.AddServed(b.Context(), fmt.Sprint("bench-", d), rows); err != nil {
		b.Fatal(err)
	}
	return rows
}

// BenchmarkReport30Days is issue 5's report target on Redis: 30 days of
// 10,000 campaigns of 200 advertisers, grouped by day and campaign, built by
// the reports service from Store.Aggregates and rendered as JSON; the same
// data as httpapi's BenchmarkReport30Days on the embedded store.
func BenchmarkReport30Days(b *testing.B) {
	srv := redistest.Start(b)
	s := open(b, srv.URL())
	const days, campaignsN = 30, 10_000
	first := storage.DayOf(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	for d := range days {
		rows := addServedDay(b, s, first, d, campaignsN)
		// Impressions for every other key, clicks for one in ten, as
		// tracking records them: most keys carry two or three counters.
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for c := w; c < campaignsN; c += 16 {
					for _, kind := range []storage.Kind{storage.Impression, storage.Click} {
						if kind == storage.Impression && c%2 != 0 || kind == storage.Click && c%10 != 0 {
							continue
						}
						e := &storage.Event{Kind: kind, AdID: "r.1", Issued: time.Unix(int64(first+storage.Day(d))*86400, 0),
							At: time.Unix(int64(first+storage.Day(d))*86400, 0), Key: rows[c].Key}
						binary.BigEndian.PutUint64(e.Token[:], uint64(d*campaignsN+c))
						if _, err := s.Record(context.Background(), e); err != nil {
							b.Error(err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
	}
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	svc, err := reports.New(s, s, tokyo)
	if err != nil {
		b.Fatal(err)
	}
	admin := &auth.Principal{ID: auth.AdminID, Role: campaigns.Admin}
	q := reports.Query{From: first, To: first + days - 1, GroupBy: storage.DimsOf(storage.DimDay, storage.DimCampaign)}
	b.ReportAllocs()
	measure(b, srv, func() {
		for b.Loop() {
			rep, err := svc.Report(context.Background(), admin, q)
			if err != nil {
				b.Fatal(err)
			}
			if len(rep.Rows) != days*campaignsN {
				b.Fatalf("%d rows", len(rep.Rows))
			}
			if err := rep.WriteJSON(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReportByStore30Days reads a report by store and campaign for
// 30 days as an admin, and one for a single advertiser: served counts of
// 10,000 campaigns of 200 advertisers a day (each campaign served in one
// hour, at one store, the day), which only rollup c holds, in logs of a
// tenth of an hour (144 a day and advertiser, most of them empty). An op
// is one of the two reports; redis-cpu-ns/op is Redis's CPU.
func BenchmarkReportByStore30Days(b *testing.B) {
	srv := redistest.Start(b)
	s := open(b, srv.URL())
	const days, campaignsN = 30, 10_000
	first := storage.DayOf(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	for d := range days {
		addServedDay(b, s, first, d, campaignsN)
	}
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	svc, err := reports.New(s, s, tokyo)
	if err != nil {
		b.Fatal(err)
	}
	for _, who := range []struct {
		name string
		p    *auth.Principal
		rows int
	}{
		{"admin", &auth.Principal{ID: auth.AdminID, Role: campaigns.Admin}, days * campaignsN},
		{"advertiser", &auth.Principal{ID: "adv_007", Role: campaigns.Advertiser}, days * campaignsN / 200},
	} {
		b.Run(who.name, func(b *testing.B) {
			q := reports.Query{From: first, To: first + days - 1, GroupBy: storage.DimsOf(storage.DimStore, storage.DimCampaign)}
			measure(b, srv, func() {
				for b.Loop() {
					rep, err := svc.Report(context.Background(), who.p, q)
					if err != nil {
						b.Fatal(err)
					}
					if len(rep.Rows) != who.rows {
						b.Fatalf("%d rows, want %d", len(rep.Rows), who.rows)
					}
				}
			})
		})
	}
}

// BenchmarkAddServed flushes served counts as a replica does at national
// scale: one AddServed a second of 4,000 rows, nearly every one a new
// store and cell, over 200 advertisers and 10,000 campaigns. An op is one
// row (one ad served); redis-bytes/op is the growth of Redis's used_memory,
// and folded-redis-bytes/op the same once the coarse logs are folded.
func BenchmarkAddServed(b *testing.B) {
	srv := redistest.Start(b)
	s := open(b, srv.URL())
	const flush = 4000
	day := storage.DayOf(time.Now())
	usedMemory := func() float64 { return redisInfo(b, srv, "memory", "used_memory") }
	rows := make([]storage.ServedCount, flush)
	mem := usedMemory()
	measure(b, srv, func() {
		for done, batch := 0, 0; done < b.N; batch++ {
			n := min(flush, b.N-done)
			for i := range n {
				x := done + i
				rows[i] = storage.ServedCount{Key: storage.AggKey{
					Day: day, Hour: uint8(x / 200_000 % 24), AdvertiserID: fmt.Sprint("adv_", x%200),
					CampaignID: fmt.Sprint("cmp_", x%10_000), PublisherID: fmt.Sprint("pub_", x%5),
					StoreID: fmt.Sprint("st_", x*7919%1_000_000), Cell: 0x892f5a32000ffff + uint64(x%50_000)<<12,
				}, N: 1}
			}
			if err := s.AddServed(b.Context(), fmt.Sprint("bench-", batch), rows[:n]); err != nil {
				b.Fatal(err)
			}
			done += n
		}
	})
	b.ReportMetric((usedMemory()-mem)/float64(b.N), "redis-bytes/op")
	if _, err := s.FoldServed(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric((usedMemory()-mem)/float64(b.N), "folded-redis-bytes/op")
}

// BenchmarkPurgeDetail deletes a day of 300,000 served counts as
// BenchmarkAddServed writes them (200 advertisers, every hour of the day,
// flushes of 4,000): what the hourly purge does once a day passes the
// detail retention. An op is one day's purge; freed-redis-bytes is what
// Redis's used_memory fell by once its lazy free was done.
func BenchmarkPurgeDetail(b *testing.B) {
	srv := redistest.Start(b)
	s := open(b, srv.URL())
	const total, flush = 300_000, 4000
	day := storage.DayOf(time.Now()) - 40
	rows := make([]storage.ServedCount, flush)
	var freed float64
	n := 0
	for b.Loop() {
		b.StopTimer()
		for done, batch := 0, 0; done < total; batch++ {
			for i := range rows {
				x := done + i
				rows[i] = storage.ServedCount{Key: storage.AggKey{
					Day: day, Hour: uint8(x * 24 / total), AdvertiserID: fmt.Sprint("adv_", x%200),
					CampaignID: fmt.Sprint("cmp_", x%10_000), PublisherID: fmt.Sprint("pub_", x%5),
					StoreID: fmt.Sprint("st_", x*7919%1_000_000), Cell: 0x892f5a32000ffff + uint64(x%50_000)<<12,
				}, N: 1}
			}
			if err := s.AddServed(b.Context(), fmt.Sprint("purge-", n, "-", batch), rows); err != nil {
				b.Fatal(err)
			}
			done += flush
		}
		before := redisInfo(b, srv, "memory", "used_memory")
		b.StartTimer()
		days, err := s.PurgeDetail(b.Context(), day+1)
		if err != nil || days != 1 {
			b.Fatalf("purged %d days (%v), want 1", days, err)
		}
		b.StopTimer()
		for redisInfo(b, srv, "memory", "lazyfree_pending_objects") > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		freed += before - redisInfo(b, srv, "memory", "used_memory")
		n++
		b.StartTimer()
	}
	b.ReportMetric(freed/float64(n), "freed-redis-bytes")
}
