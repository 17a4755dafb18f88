package tracking_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/spool"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/internal/tracking"
)

// outageEvents plays a store that goes away: while down, Record and
// AddServed fail with Unavailable; landing makes a failing Record land
// first, as a write whose answer is lost does.
type outageEvents struct {
	storage.Events
	down, landing atomic.Bool
	records       atomic.Int64 // Record calls that reached the store
}

func (o *outageEvents) Record(ctx context.Context, e *storage.Event) (bool, error) {
	if err := ctx.Err(); err != nil {
		// As redisstore answers a done context: its error, wrapped in
		// Unavailable.
		return false, fmt.Errorf("record event: %w: %w", campaigns.Errorf(campaigns.Unavailable, "redis unavailable"), err)
	}
	if o.down.Load() {
		if o.landing.Load() {
			_, _ = o.Events.Record(ctx, e)
		}
		return false, campaigns.Errorf(campaigns.Unavailable, "redis unavailable")
	}
	o.records.Add(1)
	return o.Events.Record(ctx, e)
}

func (o *outageEvents) AddServed(ctx context.Context, id string, rows []storage.ServedCount) error {
	if o.down.Load() {
		return campaigns.Errorf(campaigns.Unavailable, "redis unavailable")
	}
	return o.Events.AddServed(ctx, id, rows)
}

type spoolFixture struct {
	*fixture
	events *outageEvents
	spool  *spool.Spool
}

// newSpoolFixture is a fixture whose store can go away, with a spool of
// max events in dir, and no background delivery (tests call Drain).
func newSpoolFixture(t *testing.T, dir string, max int) *spoolFixture {
	t.Helper()
	store, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	sp, err := spool.Open(filepath.Join(dir, spool.FileName), max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Close() })
	f := &spoolFixture{fixture: &fixture{t: t, store: store, clock: newClock(time.Date(2026, 11, 6, 19, 0, 0, 0, tokyo)),
		landed: map[string]string{"cmp_beer": "https://example.com/beer"}}, events: &outageEvents{Events: store}, spool: sp}
	f.start = storage.DayOf(f.clock.now().In(tokyo))
	f.svc, err = tracking.New(f.events, tracking.Options{
		PublicURL: "https://ads.example.com/", Secret: testSecret, TTL: 24 * time.Hour, RetentionDays: 90,
		Location: tokyo, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: f.clock.fn(),
		FlushInterval: time.Hour, Spool: sp,
		Landing: func(id string) (string, bool) { u, ok := f.landed[id]; return u, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.svc.Close() })
	return f
}

// TestSpoolKeepsEventsThroughAnOutage: events fired while the store is
// down are acknowledged from the spool, and counted exactly once it is
// back: repeats, events whose write landed despite the error, and tokens
// counted before the outage included.
func TestSpoolKeepsEventsThroughAnOutage(t *testing.T) {
	f := newSpoolFixture(t, t.TempDir(), 1000)
	links := f.serve(20)
	ctx := context.Background()
	if res, err := f.count(storage.Impression, links[0].Impression); err != nil || !res.Counted {
		t.Fatalf("before the outage: %+v %v", res, err)
	}
	f.events.down.Store(true)
	f.events.landing.Store(true) // the first failure lands all the same
	for _, l := range links {
		for range 2 { // each fired twice
			res, err := f.count(storage.Impression, l.Impression)
			if err != nil || !res.Spooled || res.Counted {
				t.Fatalf("impression during the outage: %+v %v", res, err)
			}
			f.events.landing.Store(false)
		}
		if _, err := f.count(storage.Click, l.Click); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Visit(ctx, token(l.Visit), tracking.Fix{Lat: storeLat, Lng: storeLng}, false); err != nil {
			t.Fatal(err)
		}
	}
	// The store is not tried again while events wait in the spool.
	if n := f.events.records.Load(); n != 1 {
		t.Fatalf("%d records reached the store, want only the one before the outage", n)
	}
	if f.spool.Len() != 60 || f.svc.Backlog() != 60+20 { // 20 served ads in memory
		t.Fatalf("spool holds %d, backlog %d; want 60 and 80", f.spool.Len(), f.svc.Backlog())
	}
	if _, err := f.svc.Drain(ctx); err == nil {
		t.Fatal("drained into a store that is down")
	}
	if err := f.svc.Flush(ctx); campaigns.ErrorCode(err) != campaigns.Unavailable {
		t.Fatalf("flush during the outage: %v", err)
	}
	f.serve(5) // served while a flush is pending: summed in memory
	f.events.down.Store(false)
	n, err := f.svc.Drain(ctx)
	if err != nil || n != 60 || f.spool.Len() != 0 {
		t.Fatalf("drain delivered %d (%v), %d left", n, err, f.spool.Len())
	}
	if err := f.svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := storage.Counts{Served: 25, Impressions: 20, Clicks: 20, Visits: 20}
	if got := f.totals(); got != want {
		t.Fatalf("after the outage %+v, want %+v", got, want)
	}
	if f.svc.Backlog() != 0 {
		t.Fatalf("backlog %d after delivering everything", f.svc.Backlog())
	}
	// Back to normal: events go straight to the store.
	if res, err := f.count(storage.Navigation, links[3].Navigate); err != nil || !res.Counted {
		t.Fatalf("after the outage: %+v %v", res, err)
	}
}

// TestSpoolFullRefuses: a full spool answers Unavailable for a new event,
// which is then not counted, and still acknowledges an event it holds.
func TestSpoolFullRefuses(t *testing.T) {
	f := newSpoolFixture(t, t.TempDir(), 3)
	links := f.serve(4)
	f.events.down.Store(true)
	for _, l := range links[:3] {
		if _, err := f.count(storage.Impression, l.Impression); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.count(storage.Impression, links[3].Impression)
	wantCode(t, err, campaigns.Unavailable)
	if _, err := f.count(storage.Impression, links[0].Impression); err != nil {
		t.Fatalf("an event the full spool holds: %v", err)
	}
	f.events.down.Store(false)
	if _, err := f.svc.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.totals(); got.Impressions != 3 {
		t.Fatalf("%d impressions, want the 3 acknowledged", got.Impressions)
	}
}

// TestSpoolDeliveredByTheBackgroundLoop: once the store is back, the
// service delivers the spool by itself, concurrently with new events.
func TestSpoolDeliveredByTheBackgroundLoop(t *testing.T) {
	f := newSpoolFixture(t, t.TempDir(), 10_000)
	links := f.serve(600)
	f.events.down.Store(true)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := i; j < len(links); j += 8 {
				if _, err := f.count(storage.Impression, links[j].Impression); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	f.events.down.Store(false)
	for i, l := range links { // fired again as it drains
		if _, err := f.count(storage.Impression, l.Impression); err != nil {
			t.Fatalf("impression %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for f.spool.Len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d events still spooled", f.spool.Len())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := f.totals(); got.Impressions != 600 {
		t.Fatalf("%d impressions, want 600", got.Impressions)
	}
}

// outageStore opens an embedded store behind outageEvents, and a clock on
// a Friday evening in Tokyo.
func outageStore(t *testing.T) (*boltstore.Store, *outageEvents, *clock) {
	t.Helper()
	store, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store, &outageEvents{Events: store}, newClock(time.Date(2026, 11, 6, 19, 0, 0, 0, tokyo))
}

// TestSpoolSurvivesRestart: events spooled by a service that was closed
// while the store was still down are delivered by the next one.
func TestSpoolSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	store, events, clk := outageStore(t)
	start := func() (*tracking.Service, *spool.Spool) {
		sp, err := spool.Open(filepath.Join(dir, spool.FileName), 100)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := tracking.New(events, tracking.Options{
			PublicURL: "https://ads.example.com/", Secret: testSecret, TTL: 24 * time.Hour, RetentionDays: 90,
			Location: tokyo, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clk.fn(), Spool: sp,
			Landing: func(string) (string, bool) { return "https://example.com/", true },
		})
		if err != nil {
			t.Fatal(err)
		}
		return svc, sp
	}
	svc, sp := start()
	events.down.Store(true)
	d := svc.NewDecision("pub", clk.now(), 35.69, 139.70)
	for i := range 5 {
		l := svc.Serve(&d, &tracking.Ad{AdID: fmt.Sprint("r.", i), CampaignID: "c", AdvertiserID: "a", StoreID: "s"})
		if res, err := svc.Count(context.Background(), storage.Navigation, token(l.Navigate), false); err != nil || !res.Spooled {
			t.Fatalf("%+v %v", res, err)
		}
	}
	_ = svc.Close() // the served counts cannot be flushed (the store is down): spooled
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	events.down.Store(false)
	svc, sp = start()
	defer sp.Close()
	defer svc.Close()
	// The store is up: a new event goes straight to it, though the spool
	// still holds events (they are delivered behind it).
	l := svc.Serve(&d, &tracking.Ad{AdID: "r.new", CampaignID: "c", AdvertiserID: "a", StoreID: "s"})
	if res, err := svc.Count(context.Background(), storage.Navigation, token(l.Navigate), false); err != nil || !res.Counted || res.Spooled {
		t.Fatalf("a new event with the store up and %d events spooled: %+v %v", sp.Len(), res, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for sp.Len() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("spooled events never delivered after the restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var got storage.Counts
	day := storage.DayOf(clk.now().In(tokyo))
	if err := store.Aggregates(context.Background(), &storage.AggregateQuery{From: day, To: day}, func(a *storage.Aggregate) bool { got.Add(a.Counts); return true }); err != nil {
		t.Fatal(err)
	}
	if got.Navigations != 6 {
		t.Fatalf("%d navigations after the restart, want 6", got.Navigations)
	}
}

// fullSpool refuses every event, as a spool on a full disk does.
type fullSpool struct{}

func (fullSpool) Put(*storage.Event) error {
	return campaigns.Errorf(campaigns.Unavailable, "disk full")
}
func (fullSpool) Len() int                  { return 0 }
func (fullSpool) Holds(*storage.Event) bool { return false }
func (fullSpool) Peek(int) ([]*storage.Event, error) {
	return nil, nil
}
func (fullSpool) Remove([]*storage.Event) error { return nil }
func (fullSpool) SetAside() int                 { return 0 }
func (fullSpool) PutServed([]storage.ServedBatch, []storage.ServedCount) error {
	return campaigns.Errorf(campaigns.Unavailable, "disk full")
}
func (fullSpool) PeekServed(int) ([]storage.ServedBatch, error) { return nil, nil }
func (fullSpool) RemoveServed(string) error                     { return nil }
func (fullSpool) Served() int                                   { return 0 }

// TestStoreTriedAgainWhenTheSpoolRefused: events the store and the spool
// both refused leave nothing to deliver; once the store is back, the next
// event goes to it, not to the spool.
func TestStoreTriedAgainWhenTheSpoolRefused(t *testing.T) {
	_, events, clk := outageStore(t)
	svc, err := tracking.New(events, tracking.Options{
		PublicURL: "https://ads.example.com/", Secret: testSecret, TTL: 24 * time.Hour, RetentionDays: 90,
		Location: tokyo, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clk.fn(), Spool: fullSpool{},
		Landing: func(string) (string, bool) { return "https://example.com/", true },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	d := svc.NewDecision("pub", clk.now(), 35.69, 139.70)
	fire := func(i int) (tracking.Result, error) {
		l := svc.Serve(&d, &tracking.Ad{AdID: fmt.Sprint("r.", i), CampaignID: "c", AdvertiserID: "a", StoreID: "s"})
		return svc.Count(context.Background(), storage.Navigation, token(l.Navigate), false)
	}
	events.down.Store(true)
	if _, err := fire(0); campaigns.ErrorCode(err) != campaigns.Unavailable {
		t.Fatalf("store down and spool full: %v, want Unavailable", err)
	}
	events.down.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for i := 1; ; i++ {
		res, err := fire(i)
		if err == nil && res.Counted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store never tried again: %+v %v", res, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUnreadableSpooledEventIsSetAside: a record the spool cannot decode
// (a damaged page, or one a newer version wrote) is set aside in the file
// rather than stopping delivery: the events behind it are delivered, and
// new events go straight to the store again once it is back.
func TestUnreadableSpooledEventIsSetAside(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, spool.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("events"))
		if err != nil {
			return err
		}
		return b.Put(append([]byte{1}, make([]byte, 16)...), []byte{2, 0}) // a codec this version does not know
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	f := newSpoolFixture(t, dir, 1000)
	links := f.serve(3)
	f.events.down.Store(true)
	for _, l := range links {
		if res, err := f.count(storage.Impression, l.Impression); err != nil || !res.Spooled {
			t.Fatalf("during the outage: %+v %v", res, err)
		}
	}
	f.events.down.Store(false)
	if n, err := f.svc.Drain(context.Background()); err != nil || n != 3 {
		t.Fatalf("drain: %d delivered, %v; want 3", n, err)
	}
	if got := f.totals().Impressions; got != 3 {
		t.Errorf("%d impressions after the drain, want 3", got)
	}
	if f.spool.Len() != 0 || f.spool.SetAside() != 1 {
		t.Errorf("spool holds %d, set aside %d; want 0 and 1", f.spool.Len(), f.spool.SetAside())
	}
	more := f.serve(1)
	if res, err := f.count(storage.Impression, more[0].Impression); err != nil || res.Spooled || f.spool.Len() != 0 {
		t.Errorf("after the store is back: %+v %v, spool %d; want the store to take it", res, err, f.spool.Len())
	}
}

// TestClientHangupIsNoOutage: a client that hangs up (its request context
// cancelled) says nothing about the store; the next event, from a client
// that stays, goes to the store, not to the spool. A hang-up sent every
// replica's events to the spool until the next drain.
func TestClientHangupIsNoOutage(t *testing.T) {
	f := newSpoolFixture(t, t.TempDir(), 100)
	links := f.serve(2)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = f.svc.Count(gone, storage.Impression, token(links[0].Impression), false)
	res, err := f.svc.Count(context.Background(), storage.Impression, token(links[1].Impression), false)
	if err != nil || res.Spooled || !res.Counted {
		t.Fatalf("impression after another client hung up: %+v %v, want counted by the store", res, err)
	}
}

// heldBack fails, as unavailable, the delivery of the events of one ad
// that happened before a time (those spooled): a store back from an outage
// that has taken only part of the spool yet.
type heldBack struct {
	*outageEvents
	adID   atomic.Value // string
	before time.Time
}

func (h *heldBack) Record(ctx context.Context, e *storage.Event) (bool, error) {
	if id, _ := h.adID.Load().(string); id != "" && e.AdID == id && e.At.Before(h.before) {
		return false, campaigns.Errorf(campaigns.Unavailable, "redis unavailable")
	}
	return h.outageEvents.Record(ctx, e)
}

// TestRepeatOfASpooledEventWaitsForIt: an impression fired at 23:59:30
// while the store is down is spooled; once the store is back (it has taken
// another spooled event) but before that one is delivered, the same URL
// fired again after midnight is a repeat, and the impression counts at
// 23:59:30, when it happened, not on the next day.
func TestRepeatOfASpooledEventWaitsForIt(t *testing.T) {
	store, outage, clk := outageStore(t)
	events := &heldBack{outageEvents: outage, before: time.Date(2026, 11, 7, 0, 0, 0, 0, tokyo)}
	sp, err := spool.Open(filepath.Join(t.TempDir(), spool.FileName), 100)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	clk.set(time.Date(2026, 11, 6, 23, 59, 0, 0, tokyo))
	svc, err := tracking.New(events, tracking.Options{
		PublicURL: "https://ads.example.com/", Secret: testSecret, TTL: 24 * time.Hour, RetentionDays: 90,
		Location: tokyo, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clk.fn(), Spool: sp,
		FlushInterval: time.Hour,
		Landing:       func(string) (string, bool) { return "https://example.com/", true },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	d := svc.NewDecision("pub", clk.now(), 35.69, 139.70)
	a := svc.Serve(&d, &tracking.Ad{AdID: "r.1", CampaignID: "c", AdvertiserID: "a", StoreID: "s"})
	b := svc.Serve(&d, &tracking.Ad{AdID: "r.2", CampaignID: "c", AdvertiserID: "a", StoreID: "s"})
	outage.down.Store(true)
	clk.set(time.Date(2026, 11, 6, 23, 59, 30, 0, tokyo))
	for _, l := range []tracking.Links{a, b} {
		if res, err := svc.Count(ctx, storage.Impression, token(l.Impression), false); err != nil || !res.Spooled {
			t.Fatalf("during the outage: %+v %v", res, err)
		}
	}
	outage.down.Store(false)
	events.adID.Store("r.1")
	clk.set(time.Date(2026, 11, 7, 0, 0, 30, 0, tokyo))
	for i := 0; sp.Len() != 1; i++ { // b delivered, a still spooled
		if i == 100 {
			t.Fatalf("%d events spooled, want a's alone", sp.Len())
		}
		_, _ = svc.Drain(ctx)
	}
	if _, err := svc.Count(ctx, storage.Impression, token(a.Impression), false); err != nil {
		t.Fatal(err)
	}
	events.adID.Store("")
	if _, err := svc.Drain(ctx); err != nil || sp.Len() != 0 {
		t.Fatalf("drain: %v, %d left", err, sp.Len())
	}
	first := storage.DayOf(time.Date(2026, 11, 6, 12, 0, 0, 0, tokyo))
	got := map[storage.Day]uint64{}
	q := &storage.AggregateQuery{From: first, To: first + 1, Dims: storage.DimsOf(storage.DimDay)}
	if err := store.Aggregates(ctx, q, func(x *storage.Aggregate) bool { got[x.Day] += x.Impressions; return true }); err != nil {
		t.Fatal(err)
	}
	if got[first] != 2 || got[first+1] != 0 {
		t.Fatalf("impressions by day %v, want both on %v, when they were fired", got, first)
	}
}

// TestDrainDropsEventsPastRetention: events that waited in the spool past
// the raw-event retention are dropped, counted by Dropped, not recorded,
// and not reported as delivered.
func TestDrainDropsEventsPastRetention(t *testing.T) {
	f := newSpoolFixture(t, t.TempDir(), 100)
	links := f.serve(2)
	f.events.down.Store(true)
	for _, l := range links {
		if res, err := f.count(storage.Impression, l.Impression); err != nil || !res.Spooled {
			t.Fatalf("impression during the outage: %+v %v", res, err)
		}
	}
	f.clock.add(91 * 24 * time.Hour) // RetentionDays is 90
	f.events.down.Store(false)
	n, err := f.svc.Drain(context.Background())
	if err != nil || n != 0 || f.spool.Len() != 0 {
		t.Fatalf("drain: %d delivered (%v), %d left; want none delivered and the spool emptied", n, err, f.spool.Len())
	}
	if got := f.svc.Dropped(); got != 2 {
		t.Fatalf("%d dropped, want the 2 events past the retention", got)
	}
	if got := f.events.records.Load(); got != 0 {
		t.Fatalf("%d events reached the store", got)
	}
}
