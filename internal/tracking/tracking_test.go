package tracking_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/internal/tracking"
)

var tokyo, _ = time.LoadLocation("Asia/Tokyo")

// clock is a settable clock, safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}
func (c *clock) set(t time.Time)      { c.ns.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration)  { c.ns.Add(int64(d)) }
func (c *clock) now() time.Time       { return time.Unix(0, c.ns.Load()) }
func (c *clock) fn() func() time.Time { return c.now }

// the store of the tests' ads: an izakaya by Shinjuku station.
const storeLat, storeLng = 35.6905, 139.7005

type fixture struct {
	t      testing.TB
	store  *boltstore.Store
	svc    *tracking.Service
	clock  *clock
	start  storage.Day // the first day of the fixture's clock
	landed map[string]string
}

func newFixture(t testing.TB, opts ...func(*tracking.Options)) *fixture {
	t.Helper()
	return newFixtureOver(t, nil, opts...)
}

// newFixtureOver is newFixture with the service writing through wrap(store)
// (when wrap is not nil): a test's stand-in that fails or records calls.
func newFixtureOver(t testing.TB, wrap func(storage.Events) storage.Events, opts ...func(*tracking.Options)) *fixture {
	t.Helper()
	store, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	f := &fixture{t: t, store: store, clock: newClock(time.Date(2026, 11, 6, 19, 0, 0, 0, tokyo)),
		landed: map[string]string{"cmp_beer": "https://example.com/beer", "cmp_js": "javascript:alert(1)"}}
	f.start = storage.DayOf(f.clock.now().In(tokyo))
	opt := tracking.Options{
		PublicURL: "https://ads.example.com/", Secret: testSecret, TTL: 24 * time.Hour, RetentionDays: 90,
		Location: tokyo, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: f.clock.fn(),
		FlushInterval: time.Hour, // tests flush by hand
		Landing: func(id string) (string, bool) {
			u, ok := f.landed[id]
			return u, ok
		},
	}
	for _, o := range opts {
		o(&opt)
	}
	var events storage.Events = store
	if wrap != nil {
		events = wrap(store)
	}
	f.svc, err = tracking.New(events, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.svc.Close() })
	return f
}

// serve serves one ad of campaign cmp_beer at the store, n times over, and
// returns the links of each.
func (f *fixture) serve(n int) []tracking.Links {
	d := f.svc.NewDecision("pub_navi", f.clock.now(), 35.6909, 139.7003)
	var out []tracking.Links
	for i := range n {
		out = append(out, f.svc.Serve(&d, &tracking.Ad{
			AdID: fmt.Sprintf("req%d.%d", f.clock.now().UnixNano(), i+1), CampaignID: "cmp_beer", AdvertiserID: "adv_brewery",
			StoreID: "izakaya-1", StoreLat: storeLat, StoreLng: storeLng,
		}))
	}
	return out
}

func token(link string) string { return link[strings.LastIndexByte(link, '/')+1:] }

func (f *fixture) totals() storage.Counts {
	f.t.Helper()
	var c storage.Counts
	q := &storage.AggregateQuery{From: f.start - 1, To: f.start + 10}
	if err := f.store.Aggregates(context.Background(), q, func(a *storage.Aggregate) bool { c.Add(a.Counts); return true }); err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) count(kind storage.Kind, link string) (tracking.Result, error) {
	return f.svc.Count(context.Background(), kind, token(link), false)
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := campaigns.ErrorCode(err); got != code {
		t.Fatalf("error %v, want code %q", err, code)
	}
}

func TestLinks(t *testing.T) {
	f := newFixture(t)
	l := f.serve(1)[0]
	tok := token(l.Impression)
	for _, tt := range []struct{ got, path string }{
		{l.Impression, "/v1/i/"}, {l.Click, "/v1/c/"}, {l.Navigate, "/v1/n/"}, {l.Visit, "/v1/v/"},
	} {
		if tt.got != "https://ads.example.com"+tt.path+tok {
			t.Errorf("link %q, want under https://ads.example.com%s with the shared token", tt.got, tt.path)
		}
		if _, err := url.Parse(tt.got); err != nil {
			t.Errorf("link %q: %v", tt.got, err)
		}
	}
}

func TestCountsOncePerKind(t *testing.T) {
	f := newFixture(t)
	links := f.serve(2)
	for range 3 {
		for _, l := range links {
			if _, err := f.count(storage.Impression, l.Impression); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := f.count(storage.Click, links[0].Click)
	if err != nil || !res.Counted || res.Landing != "https://example.com/beer" {
		t.Fatalf("click: %+v %v", res, err)
	}
	res, err = f.count(storage.Click, links[0].Click)
	if err != nil || res.Counted || res.Landing != "https://example.com/beer" {
		t.Fatalf("repeated click: %+v %v; want the same landing, not counted", res, err)
	}
	for range 2 {
		if _, err := f.count(storage.Navigation, links[1].Navigate); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := storage.Counts{Served: 2, Impressions: 2, Clicks: 1, Navigations: 1}
	if got := f.totals(); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
}

// TestConcurrentFiring fires the same and distinct tokens from many
// goroutines at once: each (kind, token) counts exactly once.
func TestConcurrentFiring(t *testing.T) {
	f := newFixture(t)
	links := f.serve(30)
	var wg sync.WaitGroup
	var counted atomic.Int64
	errs := make(chan error, 64)
	for w := range 16 {
		wg.Go(func() {
			for i := range links {
				l := links[(i+w)%len(links)]
				for _, k := range []struct {
					kind storage.Kind
					link string
				}{{storage.Impression, l.Impression}, {storage.Click, l.Click}, {storage.Navigation, l.Navigate}} {
					res, err := f.count(k.kind, k.link)
					if err != nil {
						errs <- err
						return
					}
					if res.Counted {
						counted.Add(1)
					}
				}
				if w%4 == 0 {
					if _, err := f.svc.Visit(context.Background(), token(l.Visit), tracking.Fix{Lat: storeLat, Lng: storeLng}, false); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := counted.Load(); n != 90 {
		t.Fatalf("%d calls reported counting, want 90", n)
	}
	want := storage.Counts{Impressions: 30, Clicks: 30, Navigations: 30, Visits: 30}
	if got := f.totals(); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
}

func TestBadTokensCountNothing(t *testing.T) {
	f := newFixture(t)
	l := f.serve(1)[0]
	other, err := tracking.NewSigner([]byte("some-other-secret-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := signer(t, testSecret).Verify(token(l.Impression))
	if err != nil {
		t.Fatal(err)
	}
	tok := token(l.Impression)
	tests := []struct {
		name string
		tok  string
		code string
	}{
		{"forged with another secret", string(other.AppendToken(nil, &c)), campaigns.Invalid},
		{"altered", tok[:20] + flip(tok[20]) + tok[21:], campaigns.Invalid},
		{"truncated", tok[:len(tok)-2], campaigns.Invalid},
		{"garbage", "not-a-token", campaigns.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kind := range []storage.Kind{storage.Impression, storage.Click, storage.Navigation} {
				_, err := f.svc.Count(context.Background(), kind, tt.tok, false)
				wantCode(t, err, tt.code)
			}
			_, err := f.svc.Visit(context.Background(), tt.tok, tracking.Fix{Lat: storeLat, Lng: storeLng}, false)
			wantCode(t, err, tt.code)
		})
	}
	// A token from the future is not to be trusted either.
	f.clock.add(-time.Hour)
	_, err = f.count(storage.Impression, l.Impression)
	wantCode(t, err, campaigns.Invalid)
	if got := f.totals(); got != (storage.Counts{}) {
		t.Fatalf("bad tokens counted: %+v", got)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestExpiry(t *testing.T) {
	f := newFixture(t, func(o *tracking.Options) { o.TTL = 2 * time.Hour })
	links := f.serve(2)
	f.clock.add(2 * time.Hour) // the last second of the lifetime still counts
	if res, err := f.count(storage.Impression, links[0].Impression); err != nil || !res.Counted {
		t.Fatalf("at expiry: %+v %v", res, err)
	}
	f.clock.add(time.Second)
	for _, k := range []struct {
		kind storage.Kind
		link string
	}{{storage.Impression, links[1].Impression}, {storage.Click, links[1].Click}, {storage.Navigation, links[1].Navigate}} {
		_, err := f.count(k.kind, k.link)
		wantCode(t, err, campaigns.Gone)
	}
	_, err := f.svc.Visit(context.Background(), token(links[1].Visit), tracking.Fix{Lat: storeLat, Lng: storeLng}, false)
	wantCode(t, err, campaigns.Gone)
	if got := f.totals(); got != (storage.Counts{Impressions: 1}) {
		t.Fatalf("counts %+v, want the one impression before expiry", got)
	}
}

func TestBotsAnsweredNotCounted(t *testing.T) {
	f := newFixture(t)
	l := f.serve(1)[0]
	res, err := f.svc.Count(context.Background(), storage.Click, token(l.Click), true)
	if err != nil || res.Counted || res.Landing != "https://example.com/beer" {
		t.Fatalf("bot click: %+v %v; want the landing, not counted", res, err)
	}
	if _, err := f.svc.Count(context.Background(), storage.Impression, token(l.Impression), true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Visit(context.Background(), token(l.Visit), tracking.Fix{Lat: storeLat, Lng: storeLng}, true); err != nil {
		t.Fatal(err)
	}
	// A bot far away gets what a person far away gets.
	_, err = f.svc.Visit(context.Background(), token(l.Visit), tracking.Fix{Lat: storeLat + 0.01, Lng: storeLng}, true)
	wantCode(t, err, campaigns.NotAtStore)
	if got := f.totals(); got != (storage.Counts{}) {
		t.Fatalf("bots counted: %+v", got)
	}
	// A bot's visit does not use up the token: the person's still counts.
	if res, err := f.count(storage.Impression, l.Impression); err != nil || !res.Counted {
		t.Fatalf("impression after a bot's: %+v %v", res, err)
	}
}

func TestClickLanding(t *testing.T) {
	f := newFixture(t)
	d := f.svc.NewDecision("pub_navi", f.clock.now(), 35.6909, 139.7003)
	for _, tt := range []struct{ campaign, code string }{
		{"cmp_gone", campaigns.Gone},
		{"cmp_js", campaigns.Gone},
	} {
		l := f.svc.Serve(&d, &tracking.Ad{AdID: "r.1", CampaignID: tt.campaign, AdvertiserID: "adv", StoreID: "s"})
		_, err := f.count(storage.Click, l.Click)
		wantCode(t, err, tt.code)
	}
	if got := f.totals(); got != (storage.Counts{}) {
		t.Fatalf("clicks without a landing page counted: %+v", got)
	}
}

// offset returns the point metres north of the store.
func offset(metres float64) (float64, float64) {
	return storeLat + metres/111_195, storeLng
}

func TestVisits(t *testing.T) {
	acc := func(v float64) *float64 { return &v }
	tests := []struct {
		name    string
		metres  float64
		acc     *float64
		counted bool
		code    string
	}{
		{"at the door", 0, nil, true, ""},
		{"across the street", 45, acc(10), true, ""},
		{"just inside 50 m", 49.5, nil, true, ""},
		{"60 m without acc", 60, nil, false, campaigns.NotAtStore},
		{"60 m widened by acc 15", 60, acc(15), true, ""},
		{"95 m widened by acc 50", 95, acc(50), true, ""},
		{"120 m, acc capped", 120, acc(5000), false, campaigns.NotAtStore},
		{"200 m away", 200, acc(20), false, campaigns.NotAtStore},
		{"negative acc", 0, acc(-1), false, campaigns.Invalid},
		{"absurd acc", 0, acc(1e9), false, campaigns.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			l := f.serve(1)[0]
			lat, lng := offset(tt.metres)
			res, err := f.svc.Visit(context.Background(), token(l.Visit), tracking.Fix{Lat: lat, Lng: lng, Acc: tt.acc}, false)
			if tt.code != "" {
				wantCode(t, err, tt.code)
			} else if err != nil {
				t.Fatal(err)
			}
			if res.Counted != tt.counted {
				t.Fatalf("counted %v, want %v", res.Counted, tt.counted)
			}
			want := storage.Counts{}
			if tt.counted {
				want.Visits = 1
			}
			if got := f.totals(); got != want {
				t.Fatalf("counts %+v, want %+v", got, want)
			}
		})
	}
	t.Run("bad fix", func(t *testing.T) {
		f := newFixture(t)
		l := f.serve(1)[0]
		for _, fix := range []tracking.Fix{{Lat: 91, Lng: 0}, {Lat: 0, Lng: -181}} {
			_, err := f.svc.Visit(context.Background(), token(l.Visit), fix, false)
			wantCode(t, err, campaigns.Invalid)
		}
	})
	t.Run("twice counts once", func(t *testing.T) {
		f := newFixture(t)
		l := f.serve(1)[0]
		for i, want := range []bool{true, false, false} {
			res, err := f.svc.Visit(context.Background(), token(l.Visit), tracking.Fix{Lat: storeLat, Lng: storeLng}, false)
			if err != nil || res.Counted != want {
				t.Fatalf("visit %d: counted %v, err %v", i, res.Counted, err)
			}
		}
		// A far-away try after a counted visit is still told it is far.
		_, err := f.svc.Visit(context.Background(), token(l.Visit), tracking.Fix{Lat: storeLat + 0.01, Lng: storeLng}, false)
		wantCode(t, err, campaigns.NotAtStore)
		if got := f.totals(); got != (storage.Counts{Visits: 1}) {
			t.Fatalf("counts %+v", got)
		}
	})
}

// failingEvents fails AddServed calls on demand: after the write landed
// (an ambiguous failure, as a timeout can be) or before it.
type failingEvents struct {
	storage.Events
	mu         sync.Mutex
	failAfter  int // fail this many calls after applying them
	failBefore int // fail this many calls without applying them
	ids        []string
	lastRows   []storage.ServedCount // of the last call
}

func (e *failingEvents) AddServed(ctx context.Context, id string, rows []storage.ServedCount) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ids = append(e.ids, id)
	e.lastRows = slices.Clone(rows) // AddServed keeps no reference to rows
	if e.failBefore > 0 {
		e.failBefore--
		return errors.New("redis: connection refused")
	}
	if err := e.Events.AddServed(ctx, id, rows); err != nil {
		return err
	}
	if e.failAfter > 0 {
		e.failAfter--
		return errors.New("i/o timeout")
	}
	return nil
}

func TestServedFlushRetriesExactlyOnce(t *testing.T) {
	var fe *failingEvents
	f := newFixtureOver(t, func(ev storage.Events) storage.Events {
		fe = &failingEvents{Events: ev, failAfter: 1, failBefore: 1}
		return fe
	})
	svc := f.svc
	serve := func(n int) {
		d := svc.NewDecision("pub", f.clock.now(), 35.69, 139.70)
		for i := range n {
			svc.Serve(&d, &tracking.Ad{AdID: fmt.Sprint("r.", i), CampaignID: "c", AdvertiserID: "a", StoreID: fmt.Sprint("s", i%2)})
		}
	}
	ctx := context.Background()
	serve(5)
	if err := svc.Flush(ctx); err == nil { // refused: not written
		t.Fatal("first flush succeeded")
	}
	serve(3)
	if err := svc.Flush(ctx); err == nil { // written, then a timeout
		t.Fatal("second flush succeeded")
	}
	serve(2)
	// Accepted and not written: the first batch and the ads served since.
	if n := svc.Backlog(); n != 10 {
		t.Fatalf("backlog %d, want 10", n)
	}
	if err := svc.Flush(ctx); err != nil { // retries the same batch, then the rest
		t.Fatal(err)
	}
	// What waited behind the failing batch was summed by key: five ads at
	// two stores are two rows.
	if rows := fe.lastRows; len(rows) != 2 || rows[0].N+rows[1].N != 5 {
		t.Fatalf("the last batch's rows %+v, want two summing 5", rows)
	}
	if n := svc.Backlog(); n != 0 {
		t.Fatalf("backlog %d after the flush, want 0", n)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if got := f.totals(); got.Served != 10 {
		t.Fatalf("served %d, want 10 (batch IDs %v)", got.Served, fe.ids)
	}
	if len(fe.ids) != 4 || fe.ids[0] != fe.ids[1] || fe.ids[1] != fe.ids[2] || fe.ids[3] == fe.ids[2] {
		t.Fatalf("batch IDs %v: want one batch tried three times, then a new one", fe.ids)
	}
}

func TestCloseFlushesServed(t *testing.T) {
	f := newFixture(t)
	f.serve(3)
	f.serve(2)
	if err := f.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if got := f.totals(); got != (storage.Counts{Served: 5}) {
		t.Fatalf("counts after Close %+v, want 5 served", got)
	}
}

// deadlineEvents records the deadline of each AddServed call.
type deadlineEvents struct {
	storage.Events
	mu        sync.Mutex
	deadlines []time.Time
}

func (e *deadlineEvents) AddServed(ctx context.Context, id string, rows []storage.ServedCount) error {
	d, _ := ctx.Deadline()
	e.mu.Lock()
	e.deadlines = append(e.deadlines, d)
	e.mu.Unlock()
	return e.Events.AddServed(ctx, id, rows)
}

// TestShutdownFlushesWithinItsContext: the last flush gets the time the
// caller gives it (the server's shutdown timeout), not a fixed few seconds.
func TestShutdownFlushesWithinItsContext(t *testing.T) {
	var de *deadlineEvents
	f := newFixtureOver(t, func(ev storage.Events) storage.Events {
		de = &deadlineEvents{Events: ev}
		return de
	})
	svc := f.svc
	d := svc.NewDecision("pub", f.clock.now(), 35.69, 139.70)
	svc.Serve(&d, &tracking.Ad{AdID: "r.1", CampaignID: "c", AdvertiserID: "a", StoreID: "s"})
	deadline := time.Now().Add(time.Minute)
	ctx, cancel := context.WithDeadline(t.Context(), deadline)
	defer cancel()
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if len(de.deadlines) != 1 || !de.deadlines[0].Equal(deadline) {
		t.Fatalf("served counts written with deadlines %v, want one at %v", de.deadlines, deadline)
	}
}

func TestFlushLoop(t *testing.T) {
	f := newFixture(t, func(o *tracking.Options) { o.FlushInterval = 5 * time.Millisecond })
	f.serve(4)
	deadline := time.Now().Add(10 * time.Second)
	for f.totals().Served != 4 {
		if time.Now().After(deadline) {
			t.Fatal("served counts never flushed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPurgeDetail: the aggregates by store and cell of a day go once the
// day is DetailDays old, and every other aggregate stays.
func TestPurgeDetail(t *testing.T) {
	f := newFixture(t, func(o *tracking.Options) { o.DetailDays = 2 })
	ctx := context.Background()
	l := f.serve(2)
	if _, err := f.count(storage.Impression, l[0].Impression); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	byStore := func() storage.Counts {
		var c storage.Counts
		q := &storage.AggregateQuery{From: f.start, To: f.start, Dims: storage.DimsOf(storage.DimStore, storage.DimCell)}
		if err := f.store.Aggregates(ctx, q, func(a *storage.Aggregate) bool { c.Add(a.Counts); return true }); err != nil {
			t.Fatal(err)
		}
		return c
	}
	want := storage.Counts{Served: 2, Impressions: 1}
	// The next day the serving day is one of the two kept.
	f.clock.add(24 * time.Hour)
	if _, days, err := f.svc.Purge(ctx); err != nil || days != 0 || byStore() != want {
		t.Fatalf("purge on the next day: %d days (%v), by store %+v, want nothing purged", days, err, byStore())
	}
	f.clock.add(24 * time.Hour)
	if _, days, err := f.svc.Purge(ctx); err != nil || days != 1 {
		t.Fatalf("purge two days on: %d days of detail (%v), want 1", days, err)
	}
	if got := byStore(); got != (storage.Counts{}) {
		t.Fatalf("by store after the purge %+v, want nothing", got)
	}
	if got := f.totals(); got != want {
		t.Fatalf("totals after the purge %+v, want %+v", got, want)
	}
}

func TestPurgeKeepsUnexpiredTokens(t *testing.T) {
	f := newFixture(t, func(o *tracking.Options) { o.RetentionDays = 1; o.TTL = 72 * time.Hour })
	l := f.serve(1)[0]
	if _, err := f.count(storage.Impression, l.Impression); err != nil {
		t.Fatal(err)
	}
	// Retention is one day, but the token lives three: its record stays
	// while it can be fired, so a replay still counts nothing.
	f.clock.add(71 * time.Hour)
	if n, _, err := f.svc.Purge(context.Background()); err != nil || n != 0 {
		t.Fatalf("purge within the token's life deleted %d (%v)", n, err)
	}
	if res, err := f.count(storage.Impression, l.Impression); err != nil || res.Counted {
		t.Fatalf("replay: %+v %v", res, err)
	}
	f.clock.add(5 * 24 * time.Hour)
	if n, _, err := f.svc.Purge(context.Background()); err != nil || n != 1 {
		t.Fatalf("purge after expiry deleted %d (%v), want 1", n, err)
	}
	if err := f.store.RawEvents(context.Background(), func(e *storage.Event) bool {
		t.Fatalf("raw event %+v left after purge", e)
		return false
	}); err != nil {
		t.Fatal(err)
	}
	if got := f.totals(); got != (storage.Counts{Impressions: 1}) {
		t.Fatalf("aggregates after purge %+v, want them kept", got)
	}
}

func TestSecret(t *testing.T) {
	store, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	configured := "configured-secret-0123456789abcdefgh"
	got, err := tracking.Secret(ctx, store, configured)
	if err != nil || string(got) != configured {
		t.Fatalf("configured: %q %v", got, err)
	}
	if _, err := tracking.Secret(ctx, store, "short"); err == nil {
		t.Fatal("short configured secret accepted")
	}
	first, err := tracking.Secret(ctx, store, "")
	if err != nil || len(first) < tracking.MinSecretLen {
		t.Fatalf("generated: %d bytes, %v", len(first), err)
	}
	again, err := tracking.Secret(ctx, store, "")
	if err != nil || string(again) != string(first) {
		t.Fatal("a second start generated another secret")
	}
}

// TestLongRetentionKeepsTheRecordOfCountedTokens: a retention that reaches
// back before 1970 (100 years, to keep raw events "for ever") must not make
// the purge delete the raw events of live tokens, which are the record of
// which tokens have counted: the embedded store's unsigned day wrapped round
// to the next century and deleted them all, and every token counted again.
func TestLongRetentionKeepsTheRecordOfCountedTokens(t *testing.T) {
	f := newFixture(t, func(o *tracking.Options) { o.RetentionDays = 36_500 })
	l := f.serve(1)[0]
	if res, err := f.count(storage.Impression, l.Impression); err != nil || !res.Counted {
		t.Fatalf("first impression: %+v %v", res, err)
	}
	f.clock.add(time.Hour)
	if n, _, err := f.svc.Purge(context.Background()); err != nil || n != 0 {
		t.Fatalf("purge deleted %d raw events (%v), want 0", n, err)
	}
	if res, err := f.count(storage.Impression, l.Impression); err != nil || res.Counted {
		t.Fatalf("replay after the purge: %+v %v, want not counted", res, err)
	}
	if got := f.totals(); got != (storage.Counts{Impressions: 1}) {
		t.Fatalf("counts %+v, want one impression", got)
	}
}

// TestHugeRetentionIsNotShortened: a retention whose hours overflow a
// time.Duration (more than 106,751 days) keeps raw events at least as long
// as any shorter retention; it fell back to the token lifetime.
func TestHugeRetentionIsNotShortened(t *testing.T) {
	f := newFixture(t, func(o *tracking.Options) { o.RetentionDays = 200_000 })
	l := f.serve(1)[0]
	if _, err := f.count(storage.Impression, l.Impression); err != nil {
		t.Fatal(err)
	}
	f.clock.add(30 * 24 * time.Hour)
	if n, _, err := f.svc.Purge(context.Background()); err != nil || n != 0 {
		t.Fatalf("purge after 30 days with 200,000 days of retention deleted %d raw events (%v), want 0", n, err)
	}
}

// refusingEvents refuses the first batch of served counts as invalid, for
// good (every time it comes again), as a store refuses a row it cannot keep.
type refusingEvents struct {
	storage.Events
	mu      sync.Mutex
	refused string
}

func (r *refusingEvents) AddServed(ctx context.Context, id string, rows []storage.ServedCount) error {
	r.mu.Lock()
	if r.refused == "" {
		r.refused = id
	}
	bad := id == r.refused
	r.mu.Unlock()
	if bad {
		return campaigns.Errorf(campaigns.Invalid, "row 1: bad key")
	}
	return r.Events.AddServed(ctx, id, rows)
}

// TestRefusedServedBatchIsDropped: a batch the store refuses for good is
// dropped, so the ads served after it are counted and the backlog does not
// grow; it was retried at every flush, and everything after it waited
// behind it in memory.
func TestRefusedServedBatchIsDropped(t *testing.T) {
	f := newFixtureOver(t, func(ev storage.Events) storage.Events { return &refusingEvents{Events: ev} })
	ctx := context.Background()
	f.serve(2)
	if err := f.svc.Flush(ctx); err != nil {
		t.Fatalf("flush of a refused batch: %v", err)
	}
	f.serve(3)
	if err := f.svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.totals(); got.Served != 3 {
		t.Fatalf("served %d, want the 3 served after the refused batch", got.Served)
	}
	if n := f.svc.Backlog(); n != 0 {
		t.Fatalf("backlog %d after every batch was written or dropped, want 0", n)
	}
}
