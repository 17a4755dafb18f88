package tracking_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/spool"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/redisstore"
	"github.com/navad/navad/internal/tracking"
)

// These tests run tracking on a real redis-server, through outages of it,
// with the spool a replica keeps in its data directory.

// replica is one navad's tracking over Redis, with its spool in dir.
type replica struct {
	t     *testing.T
	store *redisstore.Store
	spool *spool.Spool
	svc   *tracking.Service
	clock *clock
	day   storage.Day
}

// startReplica opens Redis at url (which must be up), the spool in dir and
// a tracking service over them; opts adjust its options. The service
// flushes by hand unless opts say otherwise.
func startReplica(t *testing.T, url, dir string, opts ...func(*tracking.Options)) *replica {
	t.Helper()
	redisstore.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) // no dial errors on stderr
	store, err := redisstore.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Open(filepath.Join(dir, spool.FileName), 1000)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{t: t, store: store, spool: sp, clock: newClock(time.Date(2026, 11, 6, 19, 0, 0, 0, tokyo))}
	r.day = storage.DayOf(r.clock.now().In(tokyo))
	opt := tracking.Options{
		PublicURL: "https://ads.example.com/", Secret: testSecret, TTL: 24 * time.Hour, RetentionDays: 90,
		Location: tokyo, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: r.clock.fn(),
		FlushInterval: time.Hour, Spool: sp,
		Landing: func(string) (string, bool) { return "https://example.com/", true },
	}
	for _, o := range opts {
		o(&opt)
	}
	if r.svc, err = tracking.New(store, opt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	return r
}

// close shuts the replica down gracefully, in cmd/navad's order: tracking,
// then the spool, then the store. Closing again does nothing.
func (r *replica) close() {
	_ = r.svc.Close()
	_ = r.spool.Close()
	_ = r.store.Close()
}

// serve serves n ads and returns their links.
func (r *replica) serve(n int) []tracking.Links {
	d := r.svc.NewDecision("pub_navi", r.clock.now(), 35.6909, 139.7003)
	out := make([]tracking.Links, n)
	for i := range out {
		out[i] = r.svc.Serve(&d, &tracking.Ad{
			AdID: fmt.Sprint("req.", r.clock.now().UnixNano(), ".", i), CampaignID: "cmp_beer", AdvertiserID: "adv_brewery",
			StoreID: "izakaya-1", StoreLat: storeLat, StoreLng: storeLng,
		})
	}
	return out
}

// totals are the report's totals over the replica's days.
func (r *replica) totals() storage.Counts {
	r.t.Helper()
	var c storage.Counts
	q := &storage.AggregateQuery{From: r.day - 1, To: r.day + 1}
	if err := r.store.Aggregates(context.Background(), q, func(a *storage.Aggregate) bool { c.Add(a.Counts); return true }); err != nil {
		r.t.Fatal(err)
	}
	return c
}

// waitDelivered waits until the replica's spool is empty.
func (r *replica) waitDelivered() {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for r.spool.Len() > 0 || r.spool.Served() > 0 {
		if time.Now().After(deadline) {
			r.t.Fatalf("spool never delivered: %d events, %d served ads left", r.spool.Len(), r.spool.Served())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShutdownDuringOutageSpoolsServedCounts: a replica shut down
// gracefully while Redis is away writes the served counts it could not
// flush to its spool, under their batch IDs (a batch whose flush failed
// keeps its ID), and the next replica on that directory delivers them once
// Redis is back: each counted once.
func TestShutdownDuringOutageSpoolsServedCounts(t *testing.T) {
	srv := redistest.StartDurable(t)
	dir := t.TempDir()
	r := startReplica(t, srv.URL(), dir)
	ctx := context.Background()
	r.serve(3)
	if err := r.svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	r.serve(4)
	if err := r.svc.Flush(ctx); err == nil { // a batch pending under its ID
		t.Fatal("flushed with Redis down")
	}
	r.serve(2) // waiting behind it
	if err := r.svc.Close(); err != nil {
		t.Fatalf("shutdown with the served counts spooled: %v", err)
	}
	if got := r.spool.Served(); got != 6 {
		t.Fatalf("spool holds %d served ads after the shutdown, want 6", got)
	}
	r.close()

	srv.Restart()
	r2 := startReplica(t, srv.URL(), dir)
	r2.waitDelivered()
	if got := r2.totals().Served; got != 9 {
		t.Fatalf("%d served after the restart, want 9", got)
	}
}

// TestSpooledServedBatchDeliveredTwiceCountsOnce: a replica that dies after
// Redis applied a spooled served batch but before it removed it from its
// spool delivers it again on restart; Redis applies a batch ID once.
func TestSpooledServedBatchDeliveredTwiceCountsOnce(t *testing.T) {
	srv := redistest.StartDurable(t)
	dir := t.TempDir()
	path := filepath.Join(dir, spool.FileName)
	r := startReplica(t, srv.URL(), dir)
	srv.Kill()
	r.serve(4)
	r.close()
	before, err := os.ReadFile(path) // the spool as the crash leaves it
	if err != nil {
		t.Fatal(err)
	}

	srv.Restart()
	r2 := startReplica(t, srv.URL(), dir)
	r2.waitDelivered()
	r2.close()
	if err := os.WriteFile(path, before, 0o600); err != nil {
		t.Fatal(err)
	}
	r3 := startReplica(t, srv.URL(), dir)
	if r3.spool.Served() != 4 {
		t.Fatalf("the restored spool holds %d served ads, want 4", r3.spool.Served())
	}
	r3.waitDelivered()
	if got := r3.totals().Served; got != 4 {
		t.Fatalf("%d served after delivering the batch twice, want 4", got)
	}
}

// TestLongOutageSpoolsServedCounts: once flushes have failed for
// ServedSpoolAfter, the served counts go to the spool at each flush instead
// of piling up in memory, where a kill -9 would lose them; they are
// delivered when Redis is back.
func TestLongOutageSpoolsServedCounts(t *testing.T) {
	srv := redistest.StartDurable(t)
	r := startReplica(t, srv.URL(), t.TempDir(), func(o *tracking.Options) {
		o.FlushInterval, o.ServedSpoolAfter = 20*time.Millisecond, 100*time.Millisecond
	})
	srv.Kill()
	want := 0
	within := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: spool holds %d served ads, backlog %d", what, r.spool.Served(), r.svc.Backlog())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for range 5 {
		r.serve(3)
		want += 3
		// In memory nothing: what a kill -9 now would lose.
		within("served counts spooled during the outage", func() bool {
			return r.spool.Served() == want && r.svc.Backlog() == want
		})
	}
	srv.Restart()
	r.waitDelivered()
	if got := r.totals().Served; got != uint64(want) {
		t.Fatalf("%d served after the outage, want %d", got, want)
	}
}

// TestLongOutageSpoolSumsServedCounts: in a long outage the served counts
// go to the spool unsent, where they are summed by key, rather than as a
// batch a flush interval that may have reached Redis and is kept whole: the
// spool holds some rows per key, not a row per ad served. Then Redis is
// back and each ad counts once.
func TestLongOutageSpoolSumsServedCounts(t *testing.T) {
	srv := redistest.StartDurable(t)
	r := startReplica(t, srv.URL(), t.TempDir(), func(o *tracking.Options) {
		o.FlushInterval, o.ServedSpoolAfter = 10*time.Millisecond, 50*time.Millisecond
	})
	srv.Kill()
	const each, flushes = 1000, 20
	for i := range flushes {
		r.serve(each) // one key: the same store, cell and hour
		deadline := time.Now().Add(20 * time.Second)
		for r.spool.Served() != (i+1)*each {
			if time.Now().After(deadline) {
				t.Fatalf("flush %d: spool holds %d served ads, want %d", i, r.spool.Served(), (i+1)*each)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The first flush's batch is kept whole (it may have landed); the rest
	// is summed whenever it has doubled, past a few thousand rows.
	if rows := r.spool.ServedRows(); rows > each+2+4096 {
		t.Fatalf("the spool holds %d rows for %d ads of one key: a row an ad", rows, flushes*each)
	}
	srv.Restart()
	r.waitDelivered()
	if got := r.totals().Served; got != flushes*each {
		t.Fatalf("%d served after the outage, want %d", got, flushes*each)
	}
}

// TestQuietFlushDuringOutageIsNoRecovery: once the served counts are
// spooled, a flush interval without a served ad has nothing to write and
// asks nothing of the store; it must not be taken for the store being back,
// or the next ads stay in memory (lost by a kill -9) for ServedSpoolAfter
// again, and the log says the flushes work.
func TestQuietFlushDuringOutageIsNoRecovery(t *testing.T) {
	srv := redistest.StartDurable(t)
	var logs lockedBuffer
	const after = 2 * time.Second
	r := startReplica(t, srv.URL(), t.TempDir(), func(o *tracking.Options) {
		o.FlushInterval, o.ServedSpoolAfter = 20*time.Millisecond, after
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	srv.Kill()
	spooled := func(want int) time.Duration {
		t.Helper()
		start := time.Now()
		for r.spool.Served() != want {
			if time.Since(start) > 20*time.Second {
				t.Fatalf("spool holds %d served ads, want %d", r.spool.Served(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(start)
	}
	r.serve(3)
	spooled(3)
	time.Sleep(10 * 20 * time.Millisecond) // quiet flush intervals
	r.serve(3)
	if took := spooled(6); took >= after {
		t.Errorf("ads served after a quiet spell spooled after %v, as if the outage had begun again", took)
	}
	if strings.Contains(logs.String(), "flushed again") {
		t.Errorf("a quiet flush during the outage was logged as a recovery:\n%s", logs.String())
	}
	srv.Restart()
	r.waitDelivered()
	if got := r.totals().Served; got != 6 {
		t.Fatalf("%d served after the outage, want 6", got)
	}
}

// lockedBuffer is a bytes.Buffer a logger may write to from goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDrainKeepsWhatItCannotDeliverYet: Drain drops a spooled event or
// served batch only when Redis refuses it for good (it could never count),
// and counts it; with Redis unreachable, the context done or the store
// closed, it keeps everything for a later drain.
func TestDrainKeepsWhatItCannotDeliverYet(t *testing.T) {
	srv := redistest.StartDurable(t)
	r := startReplica(t, srv.URL(), t.TempDir())
	srv.Kill()
	event := func(n byte, hour uint8) *storage.Event {
		e := &storage.Event{Kind: storage.Impression, AdID: "req.1", Issued: r.clock.now(), At: r.clock.now(),
			Key: storage.AggKey{Day: r.day, Hour: hour, AdvertiserID: "adv_brewery", CampaignID: "cmp_beer",
				PublisherID: "pub_navi", StoreID: "izakaya-1", Cell: 0x882f5aa6b7fffff}}
		e.Token[0] = n
		return e
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	good := event(1, 19)
	must(r.spool.Put(good))
	must(r.spool.PutServed([]storage.ServedBatch{{ID: "test-good", Rows: []storage.ServedCount{{Key: good.Key, N: 5}}}}, nil))
	kept := func(when string, events, served int) {
		t.Helper()
		if r.spool.Len() != events || r.spool.Served() != served {
			t.Fatalf("%s: spool holds %d events and %d served ads, want %d and %d",
				when, r.spool.Len(), r.spool.Served(), events, served)
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.svc.Drain(cancelled); err == nil {
		t.Fatal("drained with its context cancelled")
	}
	kept("context cancelled", 1, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.svc.Drain(ctx); err == nil {
		t.Fatal("drained with Redis down")
	}
	kept("Redis down", 1, 5)

	// Entries Redis refuses for good (there is no 30th hour) are dropped,
	// and only they.
	bad := event(2, 30)
	must(r.spool.Put(bad))
	must(r.spool.PutServed([]storage.ServedBatch{{ID: "test-bad", Rows: []storage.ServedCount{{Key: bad.Key, N: 7}}}}, nil))
	srv.Restart()
	r.waitDelivered() // by the background drain
	if r.svc.Dropped() != 2 {
		t.Fatalf("%d spooled entries dropped, want the 2 Redis refuses", r.svc.Dropped())
	}
	if got := r.totals(); got.Impressions != 1 || got.Served != 5 {
		t.Fatalf("after the drain: %+v, want 1 impression and 5 served", got)
	}

}

// TestDrainKeepsWhatAClosedStoreCannotTake: a store closed under the drain
// (a server shutting down) is no reason to drop what the spool holds.
func TestDrainKeepsWhatAClosedStoreCannotTake(t *testing.T) {
	srv := redistest.StartDurable(t)
	r := startReplica(t, srv.URL(), t.TempDir())
	srv.Kill() // so that the background drain does not deliver it first
	e := &storage.Event{Kind: storage.Click, AdID: "req.1", Issued: r.clock.now(), At: r.clock.now(),
		Key: storage.AggKey{Day: r.day, Hour: 19, AdvertiserID: "adv_brewery", CampaignID: "cmp_beer",
			PublisherID: "pub_navi", StoreID: "izakaya-1", Cell: 0x882f5aa6b7fffff}}
	if err := r.spool.Put(e); err != nil {
		t.Fatal(err)
	}
	if err := r.store.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Drain(context.Background()); err == nil {
		t.Fatal("drained into a closed store")
	}
	if r.spool.Len() != 1 || r.svc.Dropped() != 0 {
		t.Fatalf("spool holds %d events, %d dropped; want the event kept", r.spool.Len(), r.svc.Dropped())
	}
}

// TestSpooledEventPastRetentionDropped: an event a replica spooled during
// an outage, still in its spool when the raw events of its token's issue
// day are purged (another replica counted a retry of its URL meanwhile), is
// dropped when delivered late, not counted a second time: once purged, the
// store cannot tell that it counted already.
func TestSpooledEventPastRetentionDropped(t *testing.T) {
	srv := redistest.StartDurable(t)
	dirA := t.TempDir()
	minRetention := func(o *tracking.Options) { o.RetentionDays = 1 }
	a := startReplica(t, srv.URL(), dirA, minRetention)
	links := a.serve(1)
	srv.Kill()
	res, err := a.svc.Count(context.Background(), storage.Impression, token(links[0].Impression), false)
	if err != nil || !res.Spooled {
		t.Fatalf("A during the outage: %+v, %v; want the impression spooled", res, err)
	}
	a.close() // graceful: the event stays in A's spool
	srv.Restart()
	// The app fires the URL again; the load balancer sends it to B.
	b := startReplica(t, srv.URL(), t.TempDir(), minRetention)
	res, err = b.svc.Count(context.Background(), storage.Impression, token(links[0].Impression), false)
	if err != nil || !res.Counted {
		t.Fatalf("B: %+v, %v; want the impression counted", res, err)
	}
	// Three days on (the shortest retention: the token's lifetime and a
	// day), B purges the token's raw events.
	b.clock.add(72 * time.Hour)
	if n, _, err := b.svc.Purge(context.Background()); err != nil || n == 0 {
		t.Fatalf("purge: %d raw events, %v", n, err)
	}
	// A comes back on its directory, three days on too, and drains.
	a2 := startReplica(t, srv.URL(), dirA, minRetention, func(o *tracking.Options) {
		o.Now = newClock(b.clock.fn()()).fn()
	})
	a2.waitDelivered()
	if got := b.totals().Impressions; got != 1 {
		t.Fatalf("one token, %d impressions counted", got)
	}
	if got := a2.svc.Dropped(); got != 1 {
		t.Fatalf("A dropped %d spooled entries, want the one past the retention", got)
	}
}
