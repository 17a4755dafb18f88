package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/internal/storage/redisstore"
	"github.com/navad/navad/loadtest/apiload"
	"github.com/navad/navad/loadtest/dataset"
	"github.com/navad/navad/loadtest/driver"
	"github.com/navad/navad/loadtest/latency"
)

// Targets run can drive.
var targetNames = []string{"baseline", "navad", "navad-x2", "naive", "navad-redis", "navad-b"}

// runFlags are the flags of run.
type runFlags struct {
	world       worldFlags
	dataDir     string
	keys        string
	targets     string
	attack      driver.Attack
	rounds      int
	requests    int
	navadBin    string
	navadBBin   string
	out         string
	profile     bool
	freshUsers  bool
	eveningHour int
	timezone    string
	naiveRadius float64
	x2Procs     int
	kinds       string
	driverHeap  int
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	var f runFlags
	f.world.register(fs)
	fs.StringVar(&f.dataDir, "data-dir", "loadtest/out/data", "embedded data dir holding the world for navad and navad-x2 (loaded first if it holds none; navad-redis fills a Redis of its own each run)")
	fs.StringVar(&f.keys, "keys", "", "keys.json of a world loaded with load-api (default: the keys a direct load gives)")
	fs.StringVar(&f.targets, "targets", "baseline,navad,naive", "comma-separated: "+strings.Join(targetNames, ", "))
	fs.IntVar(&f.attack.Rate, "rate", 0, "requests per second; 0 = flat out")
	fs.DurationVar(&f.attack.Duration, "duration", 10*time.Second, "measured time per target and round")
	fs.DurationVar(&f.attack.Warmup, "warmup", 3*time.Second, "unmeasured warm-up before each measurement")
	fs.IntVar(&f.attack.Connections, "connections", 32, "requests in flight flat out (initial workers at a fixed rate)")
	fs.IntVar(&f.attack.ReadBuffer, "read-buffer", 16<<10, "bytes of each connection's read buffer (0: net/http's 4 KB, which reads a three-ad answer in two system calls)")
	fs.IntVar(&f.attack.MaxWorkers, "max-workers", 1024, "most requests in flight at a fixed rate")
	fs.IntVar(&f.rounds, "rounds", 3, "rounds; each drives every target in turn; the median round is reported, and the mean of the rounds' ratios with its 95% interval")
	fs.IntVar(&f.requests, "requests", 100_000, "distinct searches replayed in turn")
	fs.StringVar(&f.navadBin, "navad-bin", "", "navad binary to run (default: build ./cmd/navad into -out)")
	fs.StringVar(&f.navadBBin, "navad-b-bin", "", "navad binary of the navad-b target: another build of navad, driven in the same rounds as navad, so that the two compare under the same load on the machine (an A/B test of a change)")
	fs.StringVar(&f.out, "out", "loadtest/out/run", "directory for logs, the JSON report and profiles")
	fs.BoolVar(&f.freshUsers, "fresh-users", false, "give each round users of its own (a suffix on every user key), so that no round finds the frequency windows an earlier one opened")
	fs.BoolVar(&f.profile, "profile", false, "build navad with pprof and profile it (CPU, heap, allocs, and lock contention since it started) during round 1, and the driver itself (CPU, labelled by target)")
	fs.IntVar(&f.eveningHour, "evening-hour", 19, "run the servers' business clock at this hour (see driver.EveningZone); -1 keeps -timezone as is")
	fs.StringVar(&f.timezone, "timezone", "Asia/Tokyo", "business time zone when -evening-hour is -1")
	fs.Float64Var(&f.naiveRadius, "naive-radius", 800, "the naive design's GEOSEARCH radius in metres")
	fs.IntVar(&f.x2Procs, "x2-gomaxprocs", 0, "GOMAXPROCS of each navad of navad-x2 (0: the default, all CPUs)")
	fs.StringVar(&f.kinds, "kinds", "trigger,neutral,blocked", "search families to replay (neutral alone measures navad's HTTP floor)")
	fs.IntVar(&f.driverHeap, "driver-heap", 2048, "MiB the driver's heap may reach before it collects, while it measures; it also collects between targets (0: Go's default collector, which at 5,000/s runs about once a second, pausing the recording of answers)")
	if err := parse(fs, args); err != nil {
		return err
	}
	targets := strings.Split(f.targets, ",")
	for _, t := range targets {
		if !slices.Contains(targetNames, t) {
			return fmt.Errorf("unknown target %q: choose from %s", t, strings.Join(targetNames, ", "))
		}
	}
	if err := f.attack.Validate(); err != nil {
		return err
	}
	if slices.Contains(targets, "navad-b") != (f.navadBBin != "") {
		return errors.New("the navad-b target and -navad-b-bin go together")
	}
	if f.rounds < 1 {
		return errors.New("rounds must be at least 1")
	}
	if f.eveningHour >= 0 {
		f.timezone = driver.EveningZone(time.Now(), f.eveningHour)
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	r := &runner{f: f, stdout: stdout, stderr: stderr, report: &report{
		Date: time.Now().UTC().Format(time.RFC3339), Machine: driver.ThisMachine(), LoadBefore: driver.LoadAverage(),
		Args: args, Timezone: f.timezone, World: f.world.cfg, DriverHeap: f.driverHeap, Results: map[string][]*targetResult{},
	}}
	defer r.stopAll()
	if err := r.prepare(ctx, targets); err != nil {
		return err
	}
	restore := collectAtLimit(&r.report.DriverHeap, stderr)
	defer restore()
	if err := r.measure(ctx, targets); err != nil {
		return err
	}
	r.report.LoadAfter = driver.LoadAverage()
	r.print(targets)
	b, _ := json.MarshalIndent(r.report, "", " ")
	path := filepath.Join(f.out, "report.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report: %s; server logs in %s\n", path, f.out)
	return nil
}

// collectAtLimit makes the driver collect its garbage only when its heap
// reaches *mib MiB, and returns what gives Go's collector back. The driver
// keeps little alive while it measures (the searches, the histograms) but
// allocates for every request: with Go's default collector it collects
// about once a second at 5,000/s, and each collection both delays the
// answers it is reading (their latency then includes the pause) and takes
// CPU from the servers on the same cores. With *mib 0, or when what the
// driver keeps is half the limit or more (it would collect all the time),
// it leaves the collector as it is and sets *mib to 0.
func collectAtLimit(mib *int, stderr io.Writer) (restore func()) {
	if *mib <= 0 {
		*mib = 0
		return func() {}
	}
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	limit := int64(*mib) << 20
	if int64(m.HeapAlloc) >= limit/2 {
		fmt.Fprintf(stderr, "the driver keeps %d MiB: it collects as Go does by default (-driver-heap %d is too small)\n", m.HeapAlloc>>20, *mib)
		*mib = 0
		return func() {}
	}
	oldLimit, oldPercent := debug.SetMemoryLimit(limit), debug.SetGCPercent(-1)
	// The heap grows into fresh pages the first time only, and that was
	// while the baseline, always driven first, was measured: its first
	// round paid the driver's page faults (72–118 µs of the driver's CPU a
	// request against 54–61 µs in later rounds), which raised the mean
	// ratio of twenty rounds by 0.4–1.4 points. Fault in what the rounds
	// will use now, and let it go: the runtime keeps the pages (it returns
	// memory only past 95% of the limit).
	prefault(limit*3/4 - int64(m.HeapAlloc))
	return func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	}
}

// prefault allocates and touches n bytes of heap, then collects them.
func prefault(n int64) {
	const chunk = 64 << 20
	var held [][]byte
	for ; n > 0; n -= chunk {
		b := make([]byte, chunk)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		held = append(held, b)
	}
	runtime.KeepAlive(held)
	held = nil
	runtime.GC()
}

type report struct {
	Date       string                     `json:"date"`
	Machine    driver.Machine             `json:"machine"`
	LoadBefore string                     `json:"load_before"`
	LoadAfter  string                     `json:"load_after"`
	Args       []string                   `json:"args"`
	Timezone   string                     `json:"timezone"`
	World      dataset.Config             `json:"world"`
	DriverHeap int                        `json:"driver_heap_mib"` // 0: Go's default collector
	Navad      []navadInfo                `json:"navad"`
	Results    map[string][]*targetResult `json:"results"` // by target, one per round
}

type navadInfo struct {
	Name      string        `json:"name"`
	Ready     time.Duration `json:"ready_ns"`
	IndexLoad time.Duration `json:"index_load_ns"`
	Ready0    driver.Memory `json:"memory_ready"`
	After     driver.Memory `json:"memory_after"`
	// On Redis: writing the world into it before navad started, what
	// Redis said it used then, and redis-server's memory after the run.
	RedisLoad  time.Duration  `json:"redis_load_ns,omitempty"`
	RedisUsed  uint64         `json:"redis_used_memory,omitempty"`
	RedisAfter *driver.Memory `json:"redis_memory_after,omitempty"`
}

type targetResult struct {
	*driver.Result
	Load string `json:"load"` // load average when the round ended
	// CPU per successful request, in the servers (Redis included) and in
	// the driver.
	ServerCPUPerReq time.Duration `json:"server_cpu_per_req_ns"`
	// ProcessCPUPerReq splits ServerCPUPerReq by process when a target
	// has several (navad-redis: navad and its redis-server).
	ProcessCPUPerReq map[string]time.Duration `json:"process_cpu_per_req_ns,omitempty"`
	DriverCPUPerReq  time.Duration            `json:"driver_cpu_per_req_ns"`
}

// target is a started system under test: its URLs and its processes.
type target struct {
	urls  []string
	procs []*driver.Process
	navad []*driver.NavadProcess
}

type runner struct {
	f              runFlags
	stdout, stderr io.Writer
	report         *report
	reqs           driver.Requests
	targets        map[string]*target
	all            []*driver.Process // to stop, in reverse
	redis          *loadedRedis      // navad-redis's Redis, loaded by prepare
}

// loadedRedis is the redis-server navad-redis runs on, holding the world.
type loadedRedis struct {
	proc *driver.Process
	url  string
	load time.Duration // writing the world into it
	used uint64        // INFO memory's used_memory after the load
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (r *runner) stopAll() {
	for i := len(r.all) - 1; i >= 0; i-- {
		if err := r.all[i].Stop(); err != nil {
			r.logf("stop %s: %v", r.all[i].Name, err)
		}
	}
}

func (r *runner) started(p *driver.Process) *driver.Process {
	r.all = append(r.all, p)
	return p
}

// prepare generates the searches, loads the data dir when needed and
// starts every target's processes.
func (r *runner) prepare(ctx context.Context, targets []string) error {
	// navad-redis loads its own Redis below: only these read the data dir.
	needsBolt := slices.Contains(targets, "navad") || slices.Contains(targets, "navad-x2")
	if needsBolt {
		if _, err := os.Stat(filepath.Join(r.f.dataDir, boltstore.FileName)); errors.Is(err, os.ErrNotExist) {
			r.logf("no store in %s: loading the world into it first", r.f.dataDir)
			if err := loadBolt(ctx, &r.f.world, r.f.dataDir, r.stderr, r.stderr); err != nil {
				return err
			}
		}
	}
	w, err := r.f.world.generate(r.stderr)
	if err != nil {
		return err
	}
	kinds := strings.Split(r.f.kinds, ",")
	for _, s := range w.Requests(r.f.requests, 1) {
		if slices.Contains(kinds, s.Kind.String()) {
			r.reqs.Searches = append(r.reqs.Searches, s)
		}
	}
	if len(r.reqs.Searches) == 0 {
		return fmt.Errorf("no search of kinds %q", r.f.kinds)
	}
	keys := map[string]string{}
	if r.f.keys != "" {
		k, err := apiload.ReadKeys(r.f.keys)
		if err != nil {
			return err
		}
		keys = k.Keys
	}
	for _, p := range w.Publishers {
		k, ok := keys[p.ID]
		if !ok {
			k = w.Key(p.ID)
		}
		r.reqs.Keys = append(r.reqs.Keys, k)
	}
	if slices.Contains(targets, "navad-redis") {
		if err := r.loadRedis(ctx, w, keys); err != nil {
			return fmt.Errorf("start navad-redis: %w", err)
		}
	}
	w = nil // the driver keeps only the searches: less heap, less GC during attacks
	runtime.GC()

	r.targets = map[string]*target{}
	for _, name := range targets {
		t, err := r.start(ctx, name)
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		r.targets[name] = t
	}
	return nil
}

// loadRedis starts the redis-server navad-redis runs on, configured as in
// production (append-only file, fsynced every second), and writes the world
// into it through the Redis backend, as load-bolt does into the embedded
// store: the same accounts and keys, so that the same requests
// authenticate. keys are those of a world loaded with load-api (-keys):
// each publisher gets that key too.
//
// Redis is emptied and loaded on every run rather than kept between runs:
// what it holds after a run includes the caps' counts and tracking events
// of that run, which the next would then start from.
func (r *runner) loadRedis(ctx context.Context, w *dataset.World, keys map[string]string) error {
	dir := filepath.Join(r.f.out, "redis-navad")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, addr, err := driver.StartRedisWith(ctx, r.f.out, driver.RedisOptions{Name: "redis-navad", Dir: dir})
	if err != nil {
		return err
	}
	r.started(p)
	lr := &loadedRedis{proc: p, url: "redis://" + addr}
	r.logf("redis-server on %s (append-only file in %s); writing the world into it", addr, dir)
	st, err := redisstore.Open(ctx, lr.url)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	err = dataset.LoadCatalog(ctx, st, w, func(s string) {
		r.logf("  redis: %v: %s", time.Since(start).Round(time.Millisecond), s)
	})
	if err != nil {
		return err
	}
	for _, pub := range w.Publishers {
		if k, ok := keys[pub.ID]; ok {
			hashes := []string{auth.HashKey(w.Key(pub.ID)), auth.HashKey(k)}
			if err := st.UpdateAccountKeys(ctx, pub.ID, func([]string) ([]string, error) { return hashes, nil }); err != nil {
				return fmt.Errorf("keys of %s: %w", pub.ID, err)
			}
		}
	}
	lr.load = time.Since(start)
	lr.used = redisUsedMemory(ctx, st)
	r.redis = lr
	r.logf("world written into Redis in %v; Redis uses %d MB", lr.load.Round(time.Millisecond), lr.used>>20)
	return nil
}

// redisUsedMemory returns INFO memory's used_memory, or 0.
func redisUsedMemory(ctx context.Context, st *redisstore.Store) uint64 {
	info, err := st.Client().Info(ctx, "memory").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

func (r *runner) navadBin(ctx context.Context) (string, error) {
	if r.f.navadBin != "" {
		return r.f.navadBin, nil
	}
	mod, err := driver.ModuleDir(ctx)
	if err != nil {
		return "", err
	}
	bin, err := filepath.Abs(filepath.Join(r.f.out, "navad"))
	if err != nil {
		return "", err
	}
	r.logf("building navad (pprof: %v)", r.f.profile)
	if err := driver.BuildNavad(ctx, mod, bin, r.f.profile); err != nil {
		return "", err
	}
	r.f.navadBin = bin
	return bin, nil
}

func (r *runner) world() []string {
	c := r.f.world.cfg
	return []string{"-seed", fmt.Sprint(c.Seed), "-stores", fmt.Sprint(c.Stores), "-campaigns", fmt.Sprint(c.Campaigns)}
}

func (r *runner) start(ctx context.Context, name string) (*target, error) {
	t := &target{}
	switch name {
	case "baseline":
		p, url, err := driver.StartSelf(ctx, "baseline", r.f.out, "/readyz", "serve-baseline")
		if err != nil {
			return nil, err
		}
		t.urls, t.procs = []string{url}, []*driver.Process{r.started(p)}
	case "naive":
		rp, addr, err := driver.StartRedis(ctx, r.f.out)
		if err != nil {
			return nil, err
		}
		r.started(rp)
		r.logf("redis-server on %s; starting the naive server (it loads the geo set)", addr)
		args := append([]string{"serve-naive", "-redis", addr, "-radius", fmt.Sprint(r.f.naiveRadius), "-timezone", r.f.timezone}, r.world()...)
		p, url, err := driver.StartSelf(ctx, "naive", r.f.out, "/readyz", args...)
		if err != nil {
			return nil, err
		}
		t.urls, t.procs = []string{url}, []*driver.Process{r.started(p), rp}
	case "navad", "navad-x2", "navad-b":
		bin, err := r.navadBin(ctx)
		if err != nil {
			return nil, err
		}
		// navad writes served counts, caps and events into its data dir,
		// and a bigger file makes the next run's writes dearer: every run
		// starts from a copy of the world as loaded.
		only := filepath.Join(r.f.out, "data-navad")
		if name == "navad-b" {
			bin, only = r.f.navadBBin, filepath.Join(r.f.out, "data-navad-b")
		}
		_ = os.RemoveAll(only)
		if name != "navad-x2" {
			if err := driver.CopyDataDir(r.f.dataDir, only); err != nil {
				return nil, err
			}
		}
		dirs := []string{only}
		gomax := 0
		if name == "navad-x2" {
			// bbolt locks its file: the second process gets a copy.
			second := filepath.Join(r.f.out, "data-2")
			_ = os.RemoveAll(second)
			if err := driver.CopyDataDir(r.f.dataDir, second); err != nil {
				return nil, err
			}
			// The first process of navad-x2 must not share the data dir
			// with the navad target either.
			first := filepath.Join(r.f.out, "data-1")
			_ = os.RemoveAll(first)
			if err := driver.CopyDataDir(r.f.dataDir, first); err != nil {
				return nil, err
			}
			dirs, gomax = []string{first, second}, r.f.x2Procs
		}
		for i, dir := range dirs {
			pname := name
			if len(dirs) > 1 {
				pname = fmt.Sprintf("%s-%d", name, i+1)
			}
			r.logf("starting %s on %s", pname, dir)
			if _, err := r.startNavad(ctx, t, driver.NavadOptions{
				// navad-b's binary is another build, not one made with pprof.
				Bin: bin, Name: pname, DataDir: dir, Timezone: r.f.timezone, Pprof: r.f.profile && name != "navad-b",
				LogDir: r.f.out, GOMAXPROCS: gomax,
			}); err != nil {
				return nil, err
			}
		}
	case "navad-redis":
		// navad on the Redis backend (issues 6 and 7): catalogue, caps
		// and counters in the Redis prepare loaded; Redis's CPU counts
		// as the server's.
		if r.redis == nil {
			return nil, errors.New("no Redis loaded")
		}
		bin, err := r.navadBin(ctx)
		if err != nil {
			return nil, err
		}
		// With Redis, navad's data dir holds only its tracking spool.
		spool := filepath.Join(r.f.out, "navad-redis-spool")
		if err := os.RemoveAll(spool); err != nil {
			return nil, err
		}
		r.logf("starting %s on %s (spool in %s)", name, r.redis.url, spool)
		info, err := r.startNavad(ctx, t, driver.NavadOptions{
			Bin: bin, Name: name, DataDir: spool, RedisURL: r.redis.url, Timezone: r.f.timezone,
			Pprof: r.f.profile, LogDir: r.f.out,
		})
		if err != nil {
			return nil, err
		}
		info.RedisLoad, info.RedisUsed = r.redis.load, r.redis.used
		t.procs = append(t.procs, r.redis.proc)
	}
	return t, nil
}

// startNavad starts a navad process of t, records it in the report and
// returns its entry there.
func (r *runner) startNavad(ctx context.Context, t *target, o driver.NavadOptions) (*navadInfo, error) {
	np, err := driver.StartNavad(ctx, o)
	if err != nil {
		return nil, err
	}
	r.started(np.Process)
	mem, _ := np.Memory()
	r.report.Navad = append(r.report.Navad, navadInfo{Name: o.Name, Ready: np.Ready, IndexLoad: np.IndexLoadTime(), Ready0: mem})
	r.logf("%s ready in %v (index loaded in %v), RSS %d MB", o.Name, np.Ready.Round(time.Millisecond), np.IndexLoadTime(), mem.RSS>>20)
	t.urls = append(t.urls, np.URL)
	t.procs = append(t.procs, np.Process)
	t.navad = append(t.navad, np)
	return &r.report.Navad[len(r.report.Navad)-1], nil
}

// measure drives every target in turn, round after round.
func (r *runner) measure(ctx context.Context, targets []string) error {
	r.logf("load average %s; business clock %s; %d searches (%s), %d connections (read buffer %s), rate %s",
		driver.LoadAverage(), r.f.timezone, len(r.reqs.Searches), r.f.kinds, r.f.attack.Connections, readBufferName(r.f.attack.ReadBuffer), rateName(r.f.attack.Rate))
	for round := 1; round <= r.f.rounds; round++ {
		stopDriverProfile := func() {}
		if r.f.profile && round == 1 {
			stopDriverProfile = r.profileDriver()
		}
		for _, name := range targets {
			t := r.targets[name]
			var stopProfile func() error
			if r.f.profile && round == 1 && len(t.navad) > 0 && t.navad[0].PprofAddr != "" {
				stopProfile = r.profile(ctx, name, t.navad[0])
			}
			if r.report.DriverHeap > 0 {
				// The driver's own collection, between targets, while no
				// request is in flight: collecting only at its limit, it
				// otherwise collected every 50 s or so wherever that fell,
				// and the second after it was as slow as the servers'
				// own collections ("At a fixed rate", eleventh session).
				// Each round then starts with an empty heap, and at a
				// fixed rate never reaches the limit within one.
				runtime.GC()
			}
			a := r.f.attack
			// CPU time over the measured window alone: the warm-up's,
			// and the driver's building of the requests, left out.
			var cpu0, cpu1 []time.Duration
			var self time.Duration
			a.Meter = func() func() {
				cpu0 = r.serverCPU(t)
				self0 := driver.SelfCPUTime()
				return func() { cpu1, self = r.serverCPU(t), driver.SelfCPUTime()-self0 }
			}
			if r.f.freshUsers {
				a.UIDSuffix = fmt.Sprintf("-r%d", round)
			}
			var res *driver.Result
			var err error
			// Labelled, so that the driver's profile splits by target
			// (-tagfocus target=navad); vegeta's goroutines inherit it.
			pprof.Do(ctx, pprof.Labels("target", name), func(ctx context.Context) {
				res, err = driver.Run(ctx, name, t.urls, r.reqs, a)
			})
			if err != nil {
				stopDriverProfile()
				return err
			}
			tr := &targetResult{Result: res, Load: driver.LoadAverage()}
			if res.OK > 0 {
				perReq := func(d time.Duration) time.Duration { return d / time.Duration(res.OK) }
				for i, p := range t.procs {
					d := perReq(cpu1[i] - cpu0[i])
					tr.ServerCPUPerReq += d
					if len(t.procs) > 1 {
						if tr.ProcessCPUPerReq == nil {
							tr.ProcessCPUPerReq = map[string]time.Duration{}
						}
						tr.ProcessCPUPerReq[p.Name] = d
					}
				}
				tr.DriverCPUPerReq = perReq(self)
			}
			if stopProfile != nil {
				if err := stopProfile(); err != nil {
					r.logf("profile: %v", err)
				}
			}
			r.report.Results[name] = append(r.report.Results[name], tr)
			by := processCPU(t, tr)
			if by != "" {
				by = " (" + by + ")"
			}
			r.logf("round %d %-9s %8.0f req/s (sent %.0f/s) ok %d/%d  %v  ads in %.0f%%  server %v/req%s  load %s",
				round, name, res.Throughput, res.Sent, res.OK, res.Requests, res.Latency, pct(res.WithAds, res.OK),
				tr.ServerCPUPerReq.Round(100*time.Nanosecond), by, tr.Load)
			if s := res.FromSchedule; s != nil {
				r.logf("  from the schedule: %v", s)
			}
			r.logf("  tail: %v", &res.Tail)
			if res.FirstError != "" {
				r.logf("  first error: %s", res.FirstError)
			}
		}
		stopDriverProfile()
	}
	for i := range r.report.Navad {
		for _, t := range r.targets {
			for _, np := range t.navad {
				if np.Name == r.report.Navad[i].Name {
					r.report.Navad[i].After, _ = np.Memory()
				}
			}
		}
		if r.report.Navad[i].Name == "navad-redis" && r.redis != nil {
			if m, err := r.redis.proc.Memory(); err == nil {
				r.report.Navad[i].RedisAfter = &m
			}
		}
	}
	if r.redis != nil {
		if err := r.saveRedisInfo(ctx); err != nil {
			r.logf("redis info: %v", err)
		}
	}
	return nil
}

// saveRedisInfo writes navad-redis's Redis INFO (commandstats included:
// where Redis spent its CPU) next to the report.
func (r *runner) saveRedisInfo(ctx context.Context) error {
	c, err := redisstore.NewClient(r.redis.url)
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := c.Info(ctx, "all").Result()
	if err != nil {
		return err
	}
	path := filepath.Join(r.f.out, "redis-navad-info.txt")
	if err := os.WriteFile(path, []byte(info), 0o644); err != nil {
		return err
	}
	r.logf("navad-redis's Redis INFO after the run in %s", path)
	return nil
}

// serverCPU returns the CPU time of each of t's processes so far.
func (r *runner) serverCPU(t *target) []time.Duration {
	ds := make([]time.Duration, len(t.procs))
	for i, p := range t.procs {
		ds[i], _ = p.CPUTime()
	}
	return ds
}

// processCPU formats tr's CPU per request by process of t, or "" for a
// target of one process.
func processCPU(t *target, tr *targetResult) string {
	var parts []string
	for _, p := range t.procs {
		if d, ok := tr.ProcessCPUPerReq[p.Name]; ok {
			parts = append(parts, fmt.Sprintf("%s %v", p.Name, d.Round(100*time.Nanosecond)))
		}
	}
	return strings.Join(parts, ", ")
}

// profileDriver starts a CPU profile of the driver itself, labelled by
// target, and returns what stops it.
func (r *runner) profileDriver() func() {
	path := filepath.Join(r.f.out, "driver-cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		r.logf("driver profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		r.logf("driver profile: %v", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			r.logf("driver profile: %v", err)
			return
		}
		r.logf("the driver's own profile of round 1 in %s (go tool pprof -tagfocus target=navad -top %s)", path, path)
	}
}

// profile starts a CPU profile of np covering the attack (warm-up
// excluded) and returns the function that waits for it and then saves heap
// and allocation profiles.
func (r *runner) profile(ctx context.Context, name string, np *driver.NavadProcess) func() error {
	secs := int((r.f.attack.Duration - time.Second).Seconds())
	done := make(chan error, 1)
	go func() { // waited for by the returned function
		select {
		case <-time.After(r.f.attack.Warmup + 500*time.Millisecond):
		case <-ctx.Done():
			done <- ctx.Err()
			return
		}
		done <- fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", np.PprofAddr, max(secs, 1)),
			filepath.Join(r.f.out, name+"-cpu.pprof"))
	}()
	return func() error {
		err := <-done
		// heap?gc=1 first: it collects garbage before it profiles, so that
		// in-use figures are the live heap, and Go publishes both profiles'
		// figures at a collection: the allocations profiled after it run
		// to now, not to the last collection of the round (which at a
		// collection a minute may date from start-up).
		for _, kind := range []string{"heap?gc=1", "allocs", "mutex"} {
			err = errors.Join(err, fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/%s", np.PprofAddr, kind),
				filepath.Join(r.f.out, name+"-"+strings.TrimSuffix(kind, "?gc=1")+".pprof")))
		}
		if err == nil {
			r.logf("profiles of %s in %s/%s-{cpu,heap,allocs,mutex}.pprof (go tool pprof -top %s %s/%s-cpu.pprof)",
				name, r.f.out, name, r.f.navadBin, r.f.out, name)
		}
		return err
	}
}

func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readBufferName names the driver's read buffer size.
func readBufferName(n int) string {
	if n == 0 {
		return "4 KB, net/http's"
	}
	if n%1024 == 0 {
		return strconv.Itoa(n/1024) + " KB"
	}
	return strconv.Itoa(n) + " B"
}

func (r *runner) print(targets []string) {
	w := tabwriter.NewWriter(r.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	rep := r.report
	driverGC := "Go's default collector"
	if rep.DriverHeap > 0 {
		driverGC = fmt.Sprintf("collecting at %d MiB", rep.DriverHeap)
	}
	fmt.Fprintf(r.stdout, "\n%s: %d×%s, %d MB, %s; load %s → %s; rate %s, %d connections (read buffer %s), %v × %d rounds, business clock %s; driver %s\n",
		rep.Date, rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.MemoryMB, rep.Machine.GoVersion,
		rep.LoadBefore, rep.LoadAfter, rateName(r.f.attack.Rate), r.f.attack.Connections, readBufferName(r.f.attack.ReadBuffer), r.f.attack.Duration, r.f.rounds, r.f.timezone, driverGC)
	fmt.Fprintln(w, "target\treq/s (median)\tsent/s\terrors (all rounds)\tp50\tp90\tp99\tp99.9\tmax\twith ads\tserver CPU/req\tdriver CPU/req\tevery round req/s\t")
	med := map[string]*targetResult{}
	for _, name := range targets {
		rs := rep.Results[name]
		m := driver.Median(plainResults(rs))
		var tr *targetResult
		var rounds []string
		var errs uint64 // in every round: one in another round than the median changes the mean ratio
		for _, x := range rs {
			if x.Result == m {
				tr = x
			}
			rounds = append(rounds, fmt.Sprintf("%.0f", x.Throughput))
			errs += x.Requests - x.OK
		}
		med[name] = tr
		l := tr.Latency
		fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%d\t%v\t%v\t%v\t%v\t%v\t%.0f%%\t%v\t%v\t%s\t\n", name, tr.Throughput, tr.Sent, errs,
			latency.Round(l.P50), latency.Round(l.P90), latency.Round(l.P99), latency.Round(l.P999), latency.Round(l.Max),
			pct(tr.WithAds, tr.OK), tr.ServerCPUPerReq.Round(100*time.Nanosecond), tr.DriverCPUPerReq.Round(100*time.Nanosecond),
			strings.Join(rounds, " "))
	}
	w.Flush()
	for _, name := range targets {
		if t := r.targets[name]; t != nil && med[name] != nil {
			if by := processCPU(t, med[name]); by != "" {
				fmt.Fprintf(r.stdout, "%s server CPU/req by process: %s\n", name, by)
			}
		}
	}
	for _, name := range targets {
		if med[name] != nil {
			fmt.Fprintf(r.stdout, "%s tail (median round): %v\n", name, &med[name].Tail)
		}
	}
	for _, name := range targets {
		if med[name] != nil && med[name].FromSchedule != nil {
			fmt.Fprintf(r.stdout, "%s latency from the schedule (median round): %v\n", name, med[name].FromSchedule)
		}
	}
	// Ratios: of the median rounds, and round by round (the targets of
	// one round ran seconds apart, so under a changing load on a shared
	// machine the per-round ratios are the fairer comparison: their mean,
	// with its 95% confidence interval, is the figure to judge a target by).
	ratio := func(a, b string) {
		if med[a] == nil || med[b] == nil || med[b].Throughput == 0 {
			return
		}
		c := driver.CompareRounds(plainResults(rep.Results[a]), plainResults(rep.Results[b]))
		per := make([]string, len(c.Rounds))
		for i, v := range c.Rounds {
			per[i] = fmt.Sprintf("%.1f%%", 100*v)
		}
		fmt.Fprintf(r.stdout, "%s / %s throughput: %.1f%% (%.2f×) of the medians; by round %s, median %.1f%%, mean %.1f%% (95%% interval %.1f–%.1f%%)\n",
			a, b, 100*med[a].Throughput/med[b].Throughput, med[a].Throughput/med[b].Throughput, strings.Join(per, " "),
			100*c.Median, 100*c.Mean, 100*c.Low, 100*c.High)
	}
	ratio("navad", "baseline")
	ratio("navad-x2", "baseline")
	ratio("navad-x2", "navad")
	ratio("naive", "baseline")
	ratio("navad", "naive")
	ratio("navad-redis", "baseline")
	ratio("navad-redis", "navad")
	ratio("navad-b", "navad")
	ratio("navad-b", "baseline")
	for _, n := range rep.Navad {
		fmt.Fprintf(r.stdout, "%s: ready in %v (index load %v); RSS %d MB when ready, %d MB after the run (%d MB anonymous, %d MB of mapped file; peak %d MB)\n",
			n.Name, n.Ready.Round(time.Millisecond), n.IndexLoad, n.Ready0.RSS>>20, n.After.RSS>>20, n.After.Anon>>20, n.After.File>>20, n.After.Peak>>20)
		if n.RedisAfter != nil {
			fmt.Fprintf(r.stdout, "%s: the world written into Redis in %v (Redis used_memory %d MB); redis-server RSS %d MB after the run (peak %d MB)\n",
				n.Name, n.RedisLoad.Round(time.Millisecond), n.RedisUsed>>20, n.RedisAfter.RSS>>20, n.RedisAfter.Peak>>20)
		}
	}
}

// plainResults returns the driver's results of a target's rounds.
func plainResults(rs []*targetResult) []*driver.Result {
	out := make([]*driver.Result, len(rs))
	for i, x := range rs {
		out[i] = x.Result
	}
	return out
}

func rateName(rate int) string {
	if rate == 0 {
		return "flat out"
	}
	return fmt.Sprintf("%d/s", rate)
}

func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
