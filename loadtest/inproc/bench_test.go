package inproc

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/loadtest/dataset"
	"github.com/navad/navad/loadtest/latency"
)

// The national world is built once per test binary: generating it takes a
// few seconds and indexing it tens. NAVAD_BENCH_STORES shrinks it for a
// quick look (the shape stays; the headline figures use the default).
var national = sync.OnceValues(func() (*benchWorld, error) {
	cfg := dataset.Default()
	if v := os.Getenv("NAVAD_BENCH_STORES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, err
		}
		cfg.Stores = n
	}
	w, err := dataset.Generate(cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	ix, err := dataset.BuildIndex(w)
	if err != nil {
		return nil, err
	}
	built := time.Since(start)
	e, err := serving.NewEngine(ix, Tokyo, nil, nil)
	if err != nil {
		return nil, err
	}
	return &benchWorld{w: w, e: e, built: built, decisions: Prepare(w, w.Requests(1<<16, 1), EveningPeak)}, nil
})

type benchWorld struct {
	w         *dataset.World
	e         *serving.Engine
	built     time.Duration
	decisions Decisions
}

// BenchmarkDecideNational measures one in-process decision over the
// national world (1M stores, 10,000 campaigns) at the evening peak, with the
// generated search mix, and reports its latency quantiles from a histogram
// of every call besides the mean (ns/op) and allocations (allocs/op).
// Sub-benchmarks split the mix: searches that trigger campaigns, neutral
// ones that trigger none, and ones the campaigns' negatives block. The
// engine has no pacer here: `navad-load decide` measures decisions with
// every ad reserved against the caps, as navad makes them.
//
//	go test -run '^$' -bench DecideNational -benchtime 200000x ./loadtest/inproc/
func BenchmarkDecideNational(b *testing.B) {
	bw, err := national()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("world: %d stores, %d campaigns; index built in %v", len(bw.w.Stores), len(bw.w.Campaigns), bw.built.Round(time.Millisecond))
	for _, bc := range []struct {
		name string
		keep func(dataset.Kind) bool
	}{
		{"mix", func(dataset.Kind) bool { return true }},
		{"trigger", func(k dataset.Kind) bool { return k == dataset.Trigger }},
		{"neutral", func(k dataset.Kind) bool { return k == dataset.Neutral }},
		{"blocked", func(k dataset.Kind) bool { return k == dataset.Blocked }},
	} {
		var reqs []serving.Request
		for i, k := range bw.decisions.Kinds {
			if bc.keep(k) {
				reqs = append(reqs, bw.decisions.Requests[i])
			}
		}
		b.Run(bc.name, func(b *testing.B) {
			var h latency.Histogram
			ctx := context.Background()
			dst := make([]serving.Ad, 0, 10)
			ads := 0
			h.Record(0) // allocate the buckets before the timer runs
			h.Reset()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				out, err := bw.e.Decide(ctx, &reqs[i%len(reqs)], dst[:0])
				h.Record(time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				ads += len(out)
			}
			s := h.Summary()
			b.ReportMetric(float64(s.P50.Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(s.P99.Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(s.P999.Nanoseconds()), "p99.9-ns")
			b.ReportMetric(float64(ads)/float64(b.N), "ads/op")
		})
	}
}
