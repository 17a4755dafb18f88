package httpapi_test

import (
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/catalog"
	"github.com/navad/navad/internal/httpapi"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
)

// envConfig changes what newEnvWith builds; the zero value is newEnv's edge
// in Asia/Tokyo on the wall clock, without caps.
type envConfig struct {
	loc           *time.Location // business time zone (NAVAD_TIMEZONE)
	clock         *fakeClock     // the engine's clock; nil is the wall clock
	pacer         func(t *testing.T, store *boltstore.Store, loc *time.Location) serving.Pacer
	maxBodyBytes  int64
	maxUploadRows int
	// wrap, when set, stands between the catalog and the store (a fault
	// injected into the real store).
	wrap func(storage.Catalog) storage.Catalog
}

// opsEnv is an env that also exposes the parts behind the edge.
type opsEnv struct {
	*env
	store *boltstore.Store
	index *serving.Index
	loc   *time.Location
}

func newEnvWith(t *testing.T, cfg envConfig) *opsEnv {
	t.Helper()
	if cfg.loc == nil {
		cfg.loc = mustLocation(t, "Asia/Tokyo")
	}
	if cfg.maxBodyBytes == 0 {
		cfg.maxBodyBytes = 8 << 20
	}
	if cfg.maxUploadRows == 0 {
		cfg.maxUploadRows = 200_000
	}
	store, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	var clock serving.Clock
	if cfg.clock != nil {
		clock = cfg.clock.Now
	}
	var pacer serving.Pacer
	if cfg.pacer != nil {
		pacer = cfg.pacer(t, store, cfg.loc)
	}
	ix := serving.NewIndex()
	engine, err := serving.NewEngine(ix, cfg.loc, clock, pacer)
	if err != nil {
		t.Fatal(err)
	}
	var cs storage.Catalog = store
	if cfg.wrap != nil {
		cs = cfg.wrap(store)
	}
	keys, err := auth.NewKeys(cs, adminKey)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.New(cs, ix, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Deps{
		Catalog: cat, Engine: engine, Keys: keys,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Ready:  store.Ping,
	}, httpapi.Options{MaxBodyBytes: cfg.maxBodyBytes, MaxJSONBodyBytes: 64 << 10, MaxUploadRows: cfg.maxUploadRows,
		MaxStockRows: 10_000, DecisionTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &opsEnv{env: &env{t: t, handler: srv.Handler(), server: srv}, store: store, index: ix, loc: cfg.loc}
}

func mustLocation(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// fakeClock is a clock that tests set; safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.Set(t)
	return c
}

// Now returns the time last set.
func (c *fakeClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Set moves the clock to t.
func (c *fakeClock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// adsBody is the part of a decision the tests look at.
type adsBody struct {
	Ads []struct {
		CampaignID string `json:"campaign_id"`
		Store      struct {
			ID string `json:"id"`
		} `json:"store"`
		Route struct {
			Mode           string `json:"mode"`
			DistanceM      int    `json:"distance_m"`
			RouteDistanceM int    `json:"route_distance_m"`
			ETASeconds     int    `json:"eta_s"`
			Links          struct {
				GoogleMaps string `json:"google_maps"`
			} `json:"links"`
		} `json:"route"`
	} `json:"ads"`
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
