// Command navad is the navad ad server: it reads its configuration from
// flags and NAVAD_* variables, opens the store, loads the serving index and
// serves the HTTP API until SIGINT or SIGTERM, then shuts down gracefully.
// `navad import stores …` is a client that uploads a store list to a
// running server (import.go).
//
// This package only wires; everything it builds lives under internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
	_ "time/tzdata" // schedules must work on hosts without a zoneinfo database

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/catalog"
	"github.com/navad/navad/internal/config"
	"github.com/navad/navad/internal/dashboard"
	"github.com/navad/navad/internal/demo"
	"github.com/navad/navad/internal/httpapi"
	"github.com/navad/navad/internal/hugepages"
	"github.com/navad/navad/internal/metrics"
	"github.com/navad/navad/internal/pacing"
	"github.com/navad/navad/internal/replica"
	"github.com/navad/navad/internal/reports"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/spool"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/internal/storage/redisstore"
	"github.com/navad/navad/internal/tracking"
)

// runtimeProcs is the runtime's own GOMAXPROCS (the CPUs it may use, within
// a container's limit), as it was before Run changed it.
var runtimeProcs = runtime.GOMAXPROCS(0)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "navad:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "import" { // a client command (import.go)
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return runImport(ctx, args[1:], getenv, stdout, stderr)
	}
	m := NewMain(stdout, stderr)
	if err := m.ParseFlags(args, getenv); errors.Is(err, config.ErrHelp) {
		config.PrintUsage(stdout)
		return nil
	} else if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		return err
	}
	<-ctx.Done()
	m.Logger.Info("shutting down")
	return m.Close()
}

// Main is a navad server's whole life: parse, run, close. End-to-end tests
// use it to run the real wiring.
type Main struct {
	Config config.Config
	Logger *slog.Logger

	stdout, stderr io.Writer
	tempDir        string        // the demo's data directory, removed on Close
	hugeDone       chan struct{} // closed when the index is in huge pages (or could not be)

	Metrics *metrics.Metrics
	Store   storage.Catalog   // the backend, measured
	Replica *replica.Follower // set when the store is Redis
	Caps    storage.Caps      // frequency and delivery caps, in the store (shared on Redis)
	Pacer   *pacing.Pacer     // holds leased budgets on Redis: closed before Caps
	Index   *serving.Index
	Engine  *serving.Engine
	Catalog *catalog.Service
	HTTP    *httpapi.Server

	Tracking *tracking.Service
	Reports  *reports.Service
	// Spool keeps tracking events on local disk while Redis is away; nil
	// on the embedded store, which is the disk.
	Spool *spool.Spool

	listener net.Listener
	server   *http.Server
	serveErr chan error
	wg       sync.WaitGroup
	closed   bool
}

// NewMain returns a Main that prints to stdout (the demo's keys) and logs to
// stderr.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{stdout: stdout, stderr: stderr, Config: config.Default()}
}

// ParseFlags reads the configuration; every problem is reported at once.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	cfg, err := config.Parse(args, getenv)
	if err != nil {
		return err
	}
	m.Config = cfg
	return nil
}

// Addr returns the address the server listens on, once Run has returned.
func (m *Main) Addr() string {
	if m.listener == nil {
		return ""
	}
	return m.listener.Addr().String()
}

// Run opens the store, loads the index, starts listening and returns; the
// server runs until Close.
func (m *Main) Run(ctx context.Context) error {
	cfg := &m.Config
	m.Logger = newLogger(cfg, m.stderr)
	if cfg.ProcsPerCPU > 0 {
		runtime.GOMAXPROCS(runtimeProcs * cfg.ProcsPerCPU) // config.Config.ProcsPerCPU says why
	}
	m.Logger.Info("go processors", "gomaxprocs", runtime.GOMAXPROCS(0), "cpus", runtimeProcs)
	if cfg.Demo {
		if cfg.AdminKey == "" {
			cfg.AdminKey = demo.AdminKey
		}
		// With Redis too: the data dir then holds this replica's spool.
		if cfg.DataDir == config.Default().DataDir {
			dir, err := os.MkdirTemp("", "navad-demo-")
			if err != nil {
				return fmt.Errorf("demo data dir: %w", err)
			}
			m.tempDir, cfg.DataDir = dir, dir
		}
	}
	// Every campaign's keywords are analysed with the Japanese dictionary:
	// load it beside the catalogue's read rather than after it.
	go campaigns.LoadDictionary()
	m.Metrics = metrics.New()
	backend, redis, err := openStore(ctx, cfg, m.Logger)
	if err != nil {
		return err
	}
	store := metrics.InstrumentCatalog(backend, m.Metrics)
	m.Store = store

	m.Index = serving.NewIndex()
	m.Metrics.WatchIndex(m.Index)
	loc := cfg.Location()
	if redis != nil {
		// Shared by every replica, exact; during a Redis outage budgets
		// fail closed and frequency caps open (package pacing says why).
		m.Caps = redis.Caps()
	} else {
		caps, err := boltstore.NewCaps(backend.(*boltstore.Store), boltstore.CapsOptions{
			MaxUserWindows: cfg.MaxUserWindows,
			OnError:        func(err error) { m.Logger.Error("caps", "err", err) },
		})
		if err != nil {
			return err
		}
		m.Caps = caps
		m.Metrics.SetUserWindows(func() (int64, uint64) {
			st := caps.Stats()
			return st.UserWindows, st.Unwindowed
		})
	}
	var leases []pacing.Option
	if redis != nil {
		// Budgets are leased in blocks: most ads need no round trip to
		// Redis (package pacing says what that costs).
		leases = append(leases, pacing.Leases())
	}
	m.Pacer, err = pacing.New(m.Caps, loc, m.Logger, leases...)
	if err != nil {
		return err
	}
	m.Metrics.SetCapErrors(m.Pacer.Errors)
	m.Engine, err = serving.NewEngine(m.Index, loc, nil, m.Pacer)
	if err != nil {
		return err
	}
	keys, err := auth.NewKeys(store, cfg.AdminKey)
	if err != nil {
		return err
	}
	m.Catalog, err = catalog.New(store, m.Index, keys, nil)
	if err != nil {
		return err
	}
	start := time.Now()
	ready, degraded := store.Ping, func(context.Context) error { return nil }
	if redis != nil {
		// A replica loads from Redis and then follows its change feed.
		// It stays ready through a Redis outage, serving decisions from
		// memory; /readyz says it is degraded (README, "Scaling out").
		m.Replica, err = replica.Start(ctx, replica.Config{
			Store: redis, Catalog: m.Catalog, Index: m.Index, Keys: keys, Logger: m.Logger,
		})
		if err != nil {
			return err
		}
		ready, degraded = func(context.Context) error { return nil }, m.Replica.Healthy
	} else if err := m.Catalog.Load(ctx); err != nil {
		return err
	}
	// Building the index allocates several times what it keeps; hand the
	// garbage back to the system now rather than hold it at its peak until
	// the runtime's scavenger gets to it (BENCHMARKS.md, issue 7: resident
	// memory with 1M stores).
	debug.FreeOSMemory()
	// The load read the whole data file through bbolt's mapping; decisions
	// are served from memory, so let those pages go from the RSS too (they
	// stay in the page cache).
	if bs, ok := backend.(*boltstore.Store); ok {
		if err := bs.ReleaseResident(); err != nil {
			m.Logger.Warn("release resident pages", "err", err)
		}
	}
	// The frequency caps' table of user windows, reserved now that the
	// load's garbage is gone and before the heap goes into huge pages.
	if c, ok := m.Caps.(*boltstore.Caps); ok {
		c.Prefault()
	}
	snap := m.Index.Snapshot()
	m.Logger.Info("index loaded", "campaigns", snap.Campaigns(), "stores", snap.Stores(), "took", time.Since(start).Round(time.Millisecond))
	if cfg.HugePages {
		// Decisions read the index at random; in huge pages they miss
		// the TLB far less (internal/hugepages). About a second of one
		// core at national scale, so after ready rather than before.
		m.hugeDone = make(chan struct{})
		go func() {
			defer close(m.hugeDone)
			t0 := time.Now()
			res, err := hugepages.Collapse()
			if err != nil {
				m.Logger.Info("huge pages not used", "err", err)
				return
			}
			m.Logger.Info("index in huge pages", "mb", res.Collapsed>>20, "took", time.Since(t0).Round(time.Millisecond))
		}()
	}

	var world *demo.World
	if cfg.Demo {
		if world, err = demo.Load(ctx, store, m.Catalog); err != nil {
			return err
		}
	}

	if redis != nil {
		// Events Redis cannot take during an outage wait on local disk.
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		if m.Spool, err = spool.Open(filepath.Join(cfg.DataDir, spool.FileName), cfg.SpoolMaxEvents); err != nil {
			return err
		}
		if n := m.Spool.Len(); n > 0 {
			m.Logger.Info("tracking events left in the spool by the last run are delivered now", "events", n)
		}
	}
	events, ok := backend.(storage.Events)
	if !ok {
		return fmt.Errorf("store %T keeps no tracking events", backend)
	}
	if err := m.startTracking(ctx, events, loc); err != nil {
		return err
	}
	m.Metrics.SetTrackingBacklog(m.Tracking.Backlog)
	m.HTTP, err = httpapi.New(httpapi.Deps{
		Catalog:  m.Catalog,
		Engine:   m.Engine,
		Keys:     keys,
		Logger:   m.Logger,
		Ready:    ready,
		Degraded: degraded,

		Tracking: m.Tracking,
		Reports:  m.Reports,
		Metrics:  m.Metrics,
	}, httpapi.Options{
		MaxBodyBytes:     cfg.MaxBodyBytes,
		MaxJSONBodyBytes: cfg.MaxJSONBodyBytes,
		MaxUploadRows:    cfg.MaxUploadRows,
		MaxStockRows:     cfg.MaxStockRows,
		DecisionTimeout:  cfg.DecisionTimeout,
		MaxAds:           cfg.MaxAds,
		RatePublisher:    cfg.RatePublisher,
		RateManagement:   cfg.RateManagement,
		RateBurst:        cfg.RateBurst,
	})
	if err != nil {
		return err
	}
	if err := dashboard.Register(m.HTTP.Gin(), cfg.Dashboard()); err != nil {
		return err
	}
	m.listener, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if world != nil {
		m.printDemo(world) // once listening: the address it names answers
	}
	m.server = &http.Server{
		Handler:           m.HTTP.Handler(),
		ReadTimeout:       cfg.ReadTimeout,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ConnContext:       httpapi.ConnContext,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	m.serveErr = make(chan error, 1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.server.Serve(httpapi.Listener(m.listener)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.serveErr <- err
		}
	}()
	m.Logger.Info("serving", "addr", m.Addr(), "store", storeName(cfg), "timezone", cfg.Timezone)
	return nil
}

// Close stops accepting requests, waits for those in flight (up to the
// shutdown timeout), flushes the served counts tracking holds and closes
// the store.
// It is safe to call more than once.
func (m *Main) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	if m.hugeDone != nil {
		<-m.hugeDone // a second at most; it logs when done
	}
	var errs []error
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: requests still running after NAVAD_SHUTDOWN_TIMEOUT (%s): %w", m.Config.ShutdownTimeout, err))
			// Requests still running at the timeout: close their
			// connections, which ends their contexts and their reads of
			// a body, and give their handlers a moment to return before
			// what they write to is closed under them.
			_ = m.server.Close()
			if n := m.awaitHandlers(closeGrace); n > 0 {
				errs = append(errs, fmt.Errorf("shutdown: %d requests still running after their connections were closed", n))
			}
		}
		cancel()
		m.wg.Wait()
		select {
		case err := <-m.serveErr:
			errs = append(errs, err)
		default:
		}
	}
	if m.Tracking != nil { // after the last request: flushes served counts
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		if err := m.Tracking.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close tracking: %w", err))
		}
		cancel()
	}
	if m.Spool != nil { // after tracking, which delivers what it can
		if err := m.Spool.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close spool: %w", err))
		}
	}
	if m.Pacer != nil { // after the last decision: gives back leased ads
		if err := m.Pacer.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close pacer: %w", err))
		}
	}
	if m.Caps != nil {
		if err := m.Caps.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close caps: %w", err))
		}
	}
	if m.Replica != nil {
		_ = m.Replica.Close()
	}
	if m.Store != nil {
		if err := m.Store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	if m.tempDir != "" {
		_ = os.RemoveAll(m.tempDir)
	}
	return errors.Join(errs...)
}

// closeGrace is how long Close waits, after the shutdown timeout closed the
// connections of requests still running, for their handlers to return.
const closeGrace = 5 * time.Second

// awaitHandlers waits up to d for the requests being handled to end, and
// returns how many are left.
func (m *Main) awaitHandlers(d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		n := m.Metrics.InFlight()
		if n <= 0 || time.Now().After(deadline) {
			return max(n, 0)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startTracking starts event tracking and reports over the store.
func (m *Main) startTracking(ctx context.Context, events storage.Events, loc *time.Location) error {
	cfg := &m.Config
	secret, err := tracking.Secret(ctx, events, cfg.TrackingSecret)
	if err != nil {
		return err
	}
	index := m.Index
	m.Tracking, err = tracking.New(events, tracking.Options{
		PublicURL: cfg.PublicURL, Secret: secret, TTL: cfg.TokenTTL, RetentionDays: cfg.EventRetention,
		DetailDays: cfg.DetailRetention,
		Location:   loc, Logger: m.Logger,
		Spool: m.spool(),
		Landing: func(campaignID string) (string, bool) {
			c := index.Snapshot().Campaign(campaignID)
			if c == nil {
				return "", false
			}
			return c.Creative.LandingURL, true
		},
	})
	if err != nil {
		return err
	}
	m.Reports, err = reports.New(events, m.Store, loc, reports.KeepDetail(cfg.DetailRetention, time.Now))
	return err
}

// spool returns the spool as tracking takes it: a nil interface when there
// is none.
func (m *Main) spool() tracking.Spool {
	if m.Spool == nil {
		return nil
	}
	return m.Spool
}

// openStore opens Redis when a URL is configured, else the embedded store.
func openStore(ctx context.Context, cfg *config.Config, logger *slog.Logger) (storage.Catalog, *redisstore.Store, error) {
	if cfg.RedisURL != "" {
		redisstore.SetLogger(logger)
		rs, err := redisstore.Open(ctx, cfg.RedisURL,
			redisstore.WithOnError(func(err error) { logger.Error("redis store", "err", err) }),
			redisstore.WithCapsSweep(redisstore.DefaultCapsSweepInterval))
		if err != nil {
			return nil, nil, fmt.Errorf("open store: %w", err)
		}
		return rs, rs, nil
	}
	bs, err := boltstore.Open(cfg.DataDir, boltstore.WithOnError(func(err error) { logger.Error("bolt store", "err", err) }))
	if err != nil {
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	return bs, nil, nil
}

func storeName(cfg *config.Config) string {
	if cfg.RedisURL != "" {
		return "redis " + cfg.Redacted()
	}
	return "embedded " + cfg.DataDir
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// printDemo prints the demo's keys and a request to try, at the address
// navad listens on (the port the system gave for port 0; localhost for an
// unspecified host).
func (m *Main) printDemo(w *demo.World) {
	base := "http://" + m.Addr()
	if host, port, err := net.SplitHostPort(m.Addr()); err == nil {
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "localhost"
		}
		base = "http://" + net.JoinHostPort(host, port)
	}
	fmt.Fprintf(m.stdout, `
navad demo world loaded: %d restaurants with beer, %d convenience stores with canned coffee
around Shinjuku and Shibuya (store locations © OpenStreetMap contributors, ODbL 1.0).

  publisher key (ads):        %s
  beer advertiser key:        %s
  coffee advertiser key:      %s
  admin key:                  %s

Ask for an ad near Shinjuku station:

  curl -s -H 'Authorization: Bearer %s' \
    '%s/v1/ads?lat=35.6909&lng=139.7003&q=%%E5%%B1%%85%%E9%%85%%92%%E5%%B1%%8B&n=3'

`, w.BeerStores, w.CoffeeStores, demo.PublisherKey, demo.BeerKey, demo.CoffeeKey, m.Config.AdminKey, demo.PublisherKey, base)
}
