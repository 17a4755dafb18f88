// Package inproc measures navad's decision engine in process, without HTTP:
// serving.Engine.Decide over a generated world, every call timed into a
// latency histogram, allocations counted from the runtime's statistics.
package inproc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/loadtest/dataset"
	"github.com/navad/navad/loadtest/latency"
)

// EveningPeak is the business time every in-process decision is made at:
// a Friday at 19:30 in Tokyo, when restaurants and izakaya are open and
// evening-only campaigns run.
var EveningPeak = time.Date(2026, 11, 27, 19, 30, 0, 0, Tokyo)

// Tokyo is navad's default business time zone.
var Tokyo = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		return time.FixedZone("JST", 9*3600)
	}
	return loc
}()

// Decisions are prepared requests: built once, so that measuring them
// measures only Decide.
type Decisions struct {
	Requests []serving.Request
	Kinds    []dataset.Kind
	// users, when set (FreshUsers), holds for each request the user keys
	// of successive passes, end to end and each as long: pass p of request
	// i is its user's key with the pass as a suffix.
	users []string
	// From is the first decision of Run: a run after another (the
	// measurement after its warm-up) starts at the pass after that one's
	// (PassAfter), so that with FreshUsers it does not replay the earlier
	// run's users.
	From uint64
}

// PassAfter returns the first decision of the pass after the one holding
// decision k-1: where a run after k decisions starts to meet none of
// their users (with FreshUsers; a user searches more than once a pass).
func (d *Decisions) PassAfter(k uint64) uint64 {
	n := uint64(len(d.Requests))
	return (k + n - 1) / n * n
}

// FreshUsers makes Run give every pass over the requests users of its own,
// for up to passes passes (then it goes round again): replaying a few
// thousand searches many times otherwise has the same users search again
// and again, until their frequency caps refuse most budgeted campaigns,
// which real traffic of millions of users does not. The keys are built
// here, so that Run allocates none.
func (d *Decisions) FreshUsers(passes int) {
	passes = min(max(passes, 1), 256)
	d.users = make([]string, len(d.Requests))
	for i := range d.Requests {
		uid := d.Requests[i].UID
		if uid == "" {
			continue
		}
		b := make([]byte, 0, passes*(len(uid)+3))
		for p := range passes {
			b = fmt.Appendf(b, "%s~%02x", uid, p)
		}
		d.users[i] = string(b)
	}
}

// at returns decision k of a run, request k modulo their number, by
// value: with the user of its pass when FreshUsers was called.
func (d *Decisions) at(k uint64) (serving.Request, dataset.Kind) {
	i := int(k % uint64(len(d.Requests)))
	r := d.Requests[i]
	if d.users != nil && d.users[i] != "" {
		w := len(r.UID) + 3
		passes := uint64(len(d.users[i]) / w)
		p := int((k / uint64(len(d.Requests))) % passes)
		r.UID = d.users[i][p*w : (p+1)*w]
	}
	return r, d.Kinds[i]
}

// Prepare turns searches into engine requests at time now.
func Prepare(w *dataset.World, searches []dataset.Request, now time.Time) Decisions {
	d := Decisions{Requests: make([]serving.Request, len(searches)), Kinds: make([]dataset.Kind, len(searches))}
	for i, s := range searches {
		d.Requests[i] = serving.Request{
			Lat: s.Lat, Lng: s.Lng, Query: s.Query, N: 3, Mode: s.Mode, UID: s.UID,
			PublisherID: w.Publishers[s.Publisher].ID, Now: now,
		}
		d.Kinds[i] = s.Kind
	}
	return d
}

// Result is what a run measured.
type Result struct {
	Decisions   uint64
	Elapsed     time.Duration
	PerSecond   float64
	Latency     latency.Summary
	ByKind      map[string]latency.Summary
	AllocsPerOp float64 // heap allocations per decision
	BytesPerOp  float64
	WithAds     float64 // share of decisions with at least one ad
	AdsPerOp    float64
	Yields      uint64 // times a goroutine yielded between decisions
}

func (r Result) String() string {
	s := fmt.Sprintf("%d decisions in %v: %.0f/s, %.2f allocs/op, %.0f B/op, %.1f%% with ads, %.2f ads/op\n  all      %v",
		r.Decisions, r.Elapsed.Round(time.Millisecond), r.PerSecond, r.AllocsPerOp, r.BytesPerOp, 100*r.WithAds, r.AdsPerOp, r.Latency)
	for _, k := range []dataset.Kind{dataset.Trigger, dataset.Neutral, dataset.Blocked} {
		if l, ok := r.ByKind[k.String()]; ok {
			s += fmt.Sprintf("\n  %-8s %v", k, l)
		}
	}
	return s
}

// Run calls e.Decide on the decisions, in order and round again (with
// fresh users each pass, after FreshUsers), from parallel goroutines, for
// about d; each call is timed. A goroutine yields its processor
// (runtime.Gosched) after every yieldEvery decisions, between two timed
// calls; 0 never yields.
//
// A server's goroutines yield between requests, waiting on their
// connections. A goroutine that never does is preempted by the runtime
// every 10 ms, with a signal, and on this project's benchmark machine (a
// 2-core VM) the decisions around those preemptions are slower: in one
// process, alternating every 250 ms between yielding every 64 decisions
// and never (CompareYield), the p99 was 39.9–47.9 µs against 42.2–51.2 µs
// in three runs, the p99.9 64–81 µs against 71–103 µs (BENCHMARKS.md, "In
// process", item 20).
func Run(ctx context.Context, e *serving.Engine, ds Decisions, d time.Duration, parallel, yieldEvery int) (Result, error) {
	parallel = max(parallel, 1)
	type part struct {
		all     latency.Histogram
		byKind  [3]latency.Histogram
		n, with uint64
		ads     uint64
		yield   yielder
		err     error
	}
	parts := make([]part, parallel)
	var next atomic.Uint64
	next.Store(ds.From)
	var stop atomic.Bool
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pt := &parts[p]
			pt.yield.every = yieldEvery
			dst := make([]serving.Ad, 0, 10)
			for !stop.Load() && ctx.Err() == nil {
				pt.yield.next()
				req, kind := ds.at(next.Add(1) - 1)
				t0 := time.Now()
				out, err := e.Decide(ctx, &req, dst[:0])
				el := time.Since(t0)
				if err != nil {
					pt.err = err
					return
				}
				pt.all.Record(el)
				pt.byKind[kind].Record(el)
				pt.n++
				if len(out) > 0 {
					pt.with++
					pt.ads += uint64(len(out))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms1)
	var all latency.Histogram
	var byKind [3]latency.Histogram
	var r Result
	for i := range parts {
		pt := &parts[i]
		if pt.err != nil {
			return r, pt.err
		}
		all.Merge(&pt.all)
		for k := range byKind {
			byKind[k].Merge(&pt.byKind[k])
		}
		r.Decisions += pt.n
		r.Yields += pt.yield.yields
		r.WithAds += float64(pt.with)
		r.AdsPerOp += float64(pt.ads)
	}
	if r.Decisions == 0 {
		return r, fmt.Errorf("no decision made in %v", d)
	}
	n := float64(r.Decisions)
	r.Elapsed = elapsed
	r.PerSecond = n / elapsed.Seconds()
	r.Latency = all.Summary()
	r.ByKind = map[string]latency.Summary{}
	for k := range byKind {
		if byKind[k].Count() > 0 {
			r.ByKind[dataset.Kind(k).String()] = byKind[k].Summary()
		}
	}
	// The histograms' buckets are allocated once per goroutine, before the
	// first call returns; that is a handful of allocations in millions.
	r.AllocsPerOp = float64(ms1.Mallocs-ms0.Mallocs) / n
	r.BytesPerOp = float64(ms1.TotalAlloc-ms0.TotalAlloc) / n
	r.WithAds /= n
	r.AdsPerOp /= n
	return r, nil
}

// yielder yields the processor after every `every` timed calls, before
// the next (Run says why); every ≤ 0 never yields.
type yielder struct {
	every  int
	done   int    // calls timed, or about to be
	yields uint64 // times it yielded
}

// next is called before each timed call.
func (y *yielder) next() {
	if y.every > 0 && y.done > 0 && y.done%y.every == 0 {
		runtime.Gosched()
		y.yields++
	}
	y.done++
}

// CompareYield times decisions as Run does with one goroutine, for about
// d, alternating every 250 ms between yielding every yieldEvery decisions
// and never yielding, and returns the two histograms' summaries: the
// machine's drift, as large as the difference between runs a minute
// apart, falls on both alike.
func CompareYield(ctx context.Context, e *serving.Engine, ds Decisions, d time.Duration, yieldEvery int) (yielding, never latency.Summary, err error) {
	var hy, hn latency.Histogram
	y := yielder{every: yieldEvery}
	dst := make([]serving.Ad, 0, 10)
	start := time.Now()
	for k := uint64(0); ctx.Err() == nil; k++ {
		el := time.Since(start)
		if el >= d {
			break
		}
		yield := el/(250*time.Millisecond)%2 == 0
		if yield {
			y.next()
		}
		req, _ := ds.at(k)
		t0 := time.Now()
		_, err := e.Decide(ctx, &req, dst[:0])
		took := time.Since(t0)
		if err != nil {
			return yielding, never, err
		}
		if yield {
			hy.Record(took)
		} else {
			hn.Record(took)
		}
	}
	return hy.Summary(), hn.Summary(), nil
}

// Digest decides every request once, in order, and returns the number of
// ads chosen and a SHA-256 over them (campaign, store and distance to the
// millimetre, request by request): two builds of the engine that choose
// the same ads for the same searches print the same digest.
func Digest(ctx context.Context, e *serving.Engine, ds Decisions) (ads int, digest string, err error) {
	h := sha256.New()
	var dst []serving.Ad
	for i := range ds.Requests {
		out, err := e.Decide(ctx, &ds.Requests[i], dst[:0])
		if err != nil {
			return 0, "", err
		}
		fmt.Fprintf(h, "%d:", i)
		for _, a := range out {
			fmt.Fprintf(h, "%s/%s/%.0f;", a.Campaign.ID, a.Store.ID(), a.DistanceM*1000)
		}
		ads += len(out)
		dst = out
	}
	return ads, hex.EncodeToString(h.Sum(nil)), nil
}
