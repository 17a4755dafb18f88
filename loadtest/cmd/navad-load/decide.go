package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/navad/navad/internal/hugepages"
	"github.com/navad/navad/internal/pacing"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/loadtest/dataset"
	"github.com/navad/navad/loadtest/inproc"
)

func cmdDecide(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("decide", stderr)
	var wf worldFlags
	wf.register(fs)
	d := fs.Duration("duration", 10*time.Second, "how long to measure")
	par := fs.Int("parallel", 1, "goroutines deciding at once")
	yield := fs.Int("yield", 64, "decisions a goroutine makes between two yields of its processor (runtime.Gosched, outside the timed calls), as a server's goroutines yield between requests; 0 never yields, and the runtime then preempts each goroutine every 10 ms with a signal")
	n := fs.Int("requests", 1<<16, "distinct searches replayed in turn")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured window here")
	memProfile := fs.String("memprofile", "", "write an allocation profile (after the run) here")
	indexProfile := fs.String("indexprofile", "", "write a CPU profile of building the index here")
	digest := fs.Bool("digest", false, "first decide every search once and print a digest of the ads chosen (to check that a change chooses the same ads)")
	withCaps := fs.Bool("caps", true, "reserve every ad against the budgets and frequency caps, as navad does with its embedded store (caps in a temporary bolt file); the digest is taken without them")
	fresh := fs.Bool("fresh-users", true, "give each pass over the searches users of their own (up to 64 passes), so that replaying them does not pile up frequency caps no real user would reach (matters with -caps)")
	compareYield := fs.Bool("compare-yield", false, "instead of the usual run, alternate every 250 ms between yielding every -yield decisions and never, and print both histograms")
	spread := fs.Int("spread", 0, "instead of the usual run, decide every search once in each of this many passes and print how the slowest percent is made up (the same searches each pass, or not)")
	huge := fs.Bool("huge-pages", true, "once the index is built, ask for huge pages for the heap, as navad does (internal/hugepages)")
	if err := parse(fs, args); err != nil {
		return err
	}
	w, err := wf.generate(stderr)
	if err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(*indexProfile)
	if err != nil {
		return err
	}
	start := time.Now()
	ix, err := dataset.BuildIndex(w)
	stopProfile()
	if err != nil {
		return err
	}
	built := time.Since(start)
	e, err := serving.NewEngine(ix, inproc.Tokyo, nil, nil)
	if err != nil {
		return err
	}
	measured := e
	if *withCaps {
		pacer, closeCaps, err := embeddedPacer()
		if err != nil {
			return err
		}
		defer closeCaps()
		if measured, err = serving.NewEngine(ix, inproc.Tokyo, nil, pacer); err != nil {
			return err
		}
	}
	ds := inproc.Prepare(w, w.Requests(*n, 1), inproc.EveningPeak)
	if *fresh {
		ds.FreshUsers(64)
	}
	stores, camps := len(w.Stores), len(w.Campaigns)
	w = nil // keep only the index, as a server would
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(stdout, "index of %d stores and %d campaigns built in %v; live heap %d MB in %d objects\n",
		stores, camps, built.Round(time.Millisecond), ms.HeapAlloc>>20, ms.HeapObjects)
	fmt.Fprintf(stdout, "a collection of that heap (the least of five forced ones): %v on one processor\n", gcCost(5).Round(time.Millisecond))
	if *huge {
		debug.FreeOSMemory() // as navad does once loaded
		t0 := time.Now()
		res, err := hugepages.Collapse()
		if err != nil {
			fmt.Fprintf(stdout, "huge pages not used: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "huge pages: %d MB of the heap collapsed in %v; %s\n",
				res.Collapsed>>20, time.Since(t0).Round(time.Millisecond), rssAndHugePages())
		}
	}

	if *digest {
		ads, sum, err := inproc.Digest(ctx, e, ds)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ads chosen for the %d searches: %d, digest %s\n", len(ds.Requests), ads, sum)
	}

	// Warm up: fill the pools and the caches. The measurement goes on from
	// the pass after the warm-up's: from the first decision, it replayed
	// the users the warm-up had served (about a tenth of its decisions),
	// whose frequency windows were open already.
	warm, err := inproc.Run(ctx, measured, ds, min(*d/5, 2*time.Second), *par, *yield)
	if err != nil {
		return err
	}
	ds.From = ds.PassAfter(warm.Decisions)
	if *spread > 0 {
		sp, err := inproc.MeasureSpread(ctx, measured, ds, *spread, *yield)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "in-process decisions, 1 goroutine, every search once a pass:\n  %v\n", sp)
		return nil
	}
	if *compareYield {
		y, n, err := inproc.CompareYield(ctx, measured, ds, *d, *yield)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "in-process decisions, 1 goroutine, alternating every 250 ms:\n  yielding every %d  %v\n  never yielding     %v\n", *yield, y, n)
		return nil
	}
	stopProfile, err = startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	res, err := inproc.Run(ctx, measured, ds, *d, *par, *yield)
	stopProfile()
	if err != nil {
		return err
	}
	caps := "without caps"
	if *withCaps {
		caps = "every ad reserved against the caps (embedded store)"
		if *fresh {
			caps += ", fresh users each pass"
		}
	}
	fmt.Fprintf(stdout, "in-process decisions, %d goroutine(s) %s, GOMAXPROCS %d, business time %s, %s:\n%v\n",
		*par, yielding(*yield, " decisions"), runtime.GOMAXPROCS(0), inproc.EveningPeak.Format("Mon 15:04 MST"), caps, res)
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	runtime.KeepAlive(ix)
	return nil
}

// embeddedPacer returns the pacer navad runs with its embedded store:
// budgets and frequency caps counted in memory and saved to a bolt file,
// here a temporary one that done removes.
func embeddedPacer() (p *pacing.Pacer, done func(), err error) {
	dir, err := os.MkdirTemp("", "navad-decide-caps-")
	if err != nil {
		return nil, nil, err
	}
	var (
		st   *boltstore.Store
		caps *boltstore.Caps
	)
	done = func() {
		if p != nil {
			_ = p.Close()
		}
		if caps != nil {
			_ = caps.Close()
		}
		if st != nil {
			_ = st.Close()
		}
		_ = os.RemoveAll(dir)
	}
	defer func() {
		if err != nil {
			done()
		}
	}()
	if st, err = boltstore.Open(dir); err != nil {
		return nil, nil, err
	}
	if caps, err = boltstore.NewCaps(st, boltstore.CapsOptions{}); err != nil {
		return nil, nil, err
	}
	caps.Prefault() // as navad does once loaded
	if p, err = pacing.New(caps, inproc.Tokyo, slog.New(slog.DiscardHandler)); err != nil {
		return nil, nil, err
	}
	return p, done, nil
}

// startCPUProfile starts a CPU profile into path ("" profiles nothing) and
// returns the function that stops it.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// gcCost forces n collections on one processor (GOMAXPROCS 1, so that the
// collector's time is one worker's, not however many idle processors
// joined in) and returns the least time one took: what marking and
// sweeping the live heap costs.
func gcCost(n int) time.Duration {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	best := time.Duration(math.MaxInt64)
	for range n {
		start := time.Now()
		runtime.GC()
		best = min(best, time.Since(start))
	}
	return best
}

// rssAndHugePages reports the process's resident memory and how much of it
// is in huge pages, from /proc/self/smaps_rollup ("" where there is none).
func rssAndHugePages() string {
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		return ""
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Rss:") || strings.HasPrefix(l, "AnonHugePages:") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(out, ", ")
}
