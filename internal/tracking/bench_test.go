package tracking_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/internal/cputime"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/tracking"
)

// BenchmarkServe measures what tracking adds to a decision per ad: the
// served count in memory, one signed token and the four URLs.
func BenchmarkServe(b *testing.B) {
	f := newFixture(b)
	d := f.svc.NewDecision("pub_navi", f.clock.now(), 35.6909, 139.7003)
	ad := &tracking.Ad{AdID: "k3j5h2g7a1b2c.1", CampaignID: "cmp_5x3kq2m7abcdefgh", AdvertiserID: "adv_brewery0123",
		StoreID: "shinjuku-3-chome-0042", StoreLat: storeLat, StoreLng: storeLng}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n++; n%1024 == 0 {
			flushServed(b, f.svc)
		}
		f.svc.Serve(&d, ad)
	}
}

// BenchmarkAppendServe measures what tracking adds per ad on the decision
// path as the HTTP answer uses it: the served count and the token, appended
// to a reused buffer (the answer writes the four URLs from it).
func BenchmarkAppendServe(b *testing.B) {
	f := newFixture(b)
	d := f.svc.NewDecision("pub_navi", f.clock.now(), 35.6909, 139.7003)
	ad := &tracking.Ad{AdID: "k3j5h2g7a1b2c.1", CampaignID: "cmp_5x3kq2m7abcdefgh", AdvertiserID: "adv_brewery0123",
		StoreID: "shinjuku-3-chome-0042", StoreLat: storeLat, StoreLng: storeLng}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n++; n%1024 == 0 {
			flushServed(b, f.svc)
		}
		buf = f.svc.AppendServe(buf[:0], &d, ad)
	}
}

// flushServed writes the served counts off the benchmark's clock: what the
// flush loop does every second, so that the counts kept in memory do not
// grow with the number of iterations.
func flushServed(b *testing.B, svc *tracking.Service) {
	b.StopTimer()
	if err := svc.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
}

// BenchmarkNewDecision measures the per-decision part: the cell of the fix
// and the business day and hour.
func BenchmarkNewDecision(b *testing.B) {
	f := newFixture(b)
	now := f.clock.now()
	b.ReportAllocs()
	for b.Loop() {
		f.svc.NewDecision("pub_navi", now, 35.6909, 139.7003)
	}
}

// BenchmarkCount measures counting distinct impressions from many
// concurrent requests, durably on the embedded store. ns/op is wall time
// per event, bound by the group commit (a batch waits up to 10 ms, then one
// fsync); cpu-ns/op is the processor time each event costs, which is what
// limits a busy server.
func BenchmarkCount(b *testing.B) {
	f := newFixture(b)
	// Ads served at 2,000 a second, as at a national evening peak.
	links := make([]tracking.Links, 0, b.N)
	for range b.N {
		links = append(links, f.serve(1)...)
		f.clock.add(500 * time.Microsecond)
	}
	var next atomic.Int64
	b.SetParallelism(128)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l := links[next.Add(1)-1]
			if _, err := f.svc.Count(context.Background(), storage.Impression, token(l.Impression), false); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkCountRepeat measures a token fired again: answered from a read,
// no write.
func BenchmarkCountRepeat(b *testing.B) {
	f := newFixture(b)
	l := f.serve(1)[0]
	if _, err := f.count(storage.Impression, l.Impression); err != nil {
		b.Fatal(err)
	}
	tok := token(l.Impression)
	b.ReportAllocs()
	for b.Loop() {
		res, err := f.svc.Count(context.Background(), storage.Impression, tok, false)
		if err != nil || res.Counted {
			b.Fatal(res, err)
		}
	}
}
