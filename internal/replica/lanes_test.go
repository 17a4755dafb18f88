package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage/redisstore"
)

// The tests here hold one advertiser's upload in the middle of being applied
// (the applying hook waits), as reading 100,000 stores back from Redis and
// indexing them holds it for seconds, and check what goes on meanwhile.

// wait is how long these tests give what must not wait for the held upload:
// generous for a loaded machine; without lanes it never happens at all.
const wait = 5 * time.Second

// hold makes f wait in the middle of applying the first stores or reload
// record of adv (inside the catalog's lock), until the returned release is
// called or the test ends. held is closed once it waits.
func hold(t *testing.T, f *Follower, adv string) (held <-chan struct{}, release func()) {
	t.Helper()
	h, r := make(chan struct{}), make(chan struct{})
	var once, releaseOnce sync.Once
	f.applying = func(ch redisstore.Change) {
		if ch.AdvertiserID == adv && (ch.Op == redisstore.OpStores || ch.Op == redisstore.OpReload) {
			once.Do(func() {
				close(h)
				<-r
			})
		}
	}
	release = func() { releaseOnce.Do(func() { close(r) }) }
	t.Cleanup(release) // before the follower is closed: cleanups run last first
	return h, release
}

// within fails the test unless cond holds within d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// completes fails the test unless fn returns within d, without an error.
func completes(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s: did not complete within %v", what, d)
	}
}

// adsFor returns how many ads n's index serves for q near the test stores.
func adsFor(t *testing.T, n *node, q string) int {
	t.Helper()
	e, err := serving.NewEngine(n.index, time.UTC, nil, nil)
	must(t, err)
	ads, err := e.Decide(context.Background(), &serving.Request{Lat: 35.69, Lng: 139.70, Query: q, N: 3, Mode: campaigns.Walk}, nil)
	must(t, err)
	return len(ads)
}

// campaignOf returns a campaign of adv for beer, triggered by keyword.
func campaignOf(id, adv, keyword string) *campaigns.Campaign {
	c := campaignFor("beer")
	c.ID, c.AdvertiserID = id, adv
	c.Keywords = []campaigns.Keyword{{Text: keyword, Match: campaigns.Broad}}
	return c
}

// sameShard returns an advertiser ID starting with prefix whose stores share
// adv's stream.
func sameShard(st *redisstore.Store, adv, prefix string) string {
	for i := 0; ; i++ {
		if id := fmt.Sprint(prefix, i); st.StreamOf(id) == st.StreamOf(adv) {
			return id
		}
	}
}

// TestFollowerSlowUploadHoldsUpOnlyItsAdvertiser: while replica b applies
// advertiser A's upload made through a, b applies another advertiser's
// stock from the feed, and b's own stock, store and campaign writes
// complete and are served.
func TestFollowerSlowUploadHoldsUpOnlyItsAdvertiser(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	ctx := t.Context()
	advB := sameShard(a.store, "advA", "advB") // behind A's record in one stream
	must(t, a.store.PutCampaign(ctx, campaignOf("cmpB", advB, "居酒屋")))
	must(t, a.store.PutStores(ctx, advB, stores("b1")))
	fb := b.follower(t)
	t.Cleanup(func() { _ = fb.Close() })
	held, release := hold(t, fb, "advA")
	fb.start()
	if got := adsFor(t, b, "居酒屋"); got != 1 {
		t.Fatalf("b serves %d ads of B, want 1", got)
	}

	must(t, a.store.PutStores(ctx, "advA", stores("a1", "a2")))
	select {
	case <-held:
	case <-time.After(wait):
		t.Fatal("b did not start applying A's upload")
	}

	yes, no := true, false
	mustStock[[]int](t)(a.store.PutStock(ctx, advB, []campaigns.StockUpdate{{StoreID: "b1", ProductID: "beer", InStock: &no}}))
	within(t, wait, "B's stock written through a reaches b", func() bool { return adsFor(t, b, "居酒屋") == 0 })

	pB := &auth.Principal{ID: advB, Role: campaigns.Advertiser}
	completes(t, wait, "B's stock written through b", func() error {
		_, err := b.catalog.PutStock(ctx, pB, advB, []campaigns.StockUpdate{{StoreID: "b1", ProductID: "beer", InStock: &yes}}, 0)
		return err
	})
	if got := adsFor(t, b, "居酒屋"); got != 1 {
		t.Fatalf("after B's stock came back in through b, b serves %d ads, want 1", got)
	}
	completes(t, wait, "B's stores written through b", func() error {
		_, err := b.catalog.PutStores(ctx, pB, advB, stores("b1", "b2"), nil)
		return err
	})
	completes(t, wait, "a campaign written through b", func() error {
		_, err := b.catalog.CreateCampaign(ctx, pB, *campaignOf("cmpB2", advB, "居酒屋"))
		return err
	})
	if stores, cs := indexed(b), b.index.Snapshot().Campaigns(); stores != 2 || cs != 2 {
		t.Fatalf("b serves %d stores and %d campaigns, want B's 2 and 2 (A's upload held)", stores, cs)
	}

	release()
	within(t, wait, "A's upload indexed on b", func() bool { return indexed(b) == 4 })
	must(t, fb.Healthy(ctx))
}

// TestFollowerKeepsAnAdvertisersOrder: A's stock record that follows its
// upload is held with it while another advertiser's later record is
// applied, then applied after the upload's stores are indexed, and kept.
func TestFollowerKeepsAnAdvertisersOrder(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	ctx := t.Context()
	advB := sameShard(a.store, "advA", "advB")
	must(t, a.store.PutCampaign(ctx, campaignOf("cmpA", "advA", "カフェ")))
	must(t, a.store.PutCampaign(ctx, campaignOf("cmpB", advB, "居酒屋")))
	must(t, a.store.PutStores(ctx, advB, stores("b1")))
	fb := b.follower(t)
	t.Cleanup(func() { _ = fb.Close() })
	held, release := hold(t, fb, "advA")
	var (
		mu    sync.Mutex
		order []string // A's records as b applies them
	)
	holding := fb.applying
	fb.applying = func(ch redisstore.Change) {
		if ch.AdvertiserID == "advA" {
			mu.Lock()
			order = append(order, fmt.Sprintf("%s with %d stores indexed", ch.Op, indexed(b)))
			mu.Unlock()
		}
		holding(ch)
	}
	fb.start()

	must(t, a.store.PutStores(ctx, "advA", stores("a1")))
	select {
	case <-held:
	case <-time.After(wait):
		t.Fatal("b did not start applying A's upload")
	}
	no := false
	mustStock[[]int](t)(a.store.PutStock(ctx, "advA", []campaigns.StockUpdate{{StoreID: "a1", ProductID: "beer", InStock: &no}}))
	mustStock[[]int](t)(a.store.PutStock(ctx, advB, []campaigns.StockUpdate{{StoreID: "b1", ProductID: "beer", InStock: &no}}))
	within(t, wait, "B's later stock reaches b", func() bool { return adsFor(t, b, "居酒屋") == 0 })
	mu.Lock()
	got := fmt.Sprint(order)
	mu.Unlock()
	if want := "[stores with 1 stores indexed]"; got != want {
		t.Fatalf("while A's upload is held, b applied A's records %s, want %s", got, want)
	}

	release()
	within(t, wait, "A's upload indexed on b", func() bool { return indexed(b) == 2 })
	within(t, wait, "A's stock applied on b", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 2
	})
	mu.Lock()
	got = fmt.Sprint(order)
	mu.Unlock()
	if want := "[stores with 1 stores indexed stock with 2 stores indexed]"; got != want {
		t.Fatalf("b applied A's records %s, want %s", got, want)
	}
	if got := adsFor(t, b, "カフェ"); got != 0 {
		t.Fatalf("b serves %d ads of A's out-of-stock store, want 0", got)
	}
}

// TestFollowerReadsAgainWhatFailed: a record held in its lane keeps its
// stream's cursor before it while later records of the stream are applied;
// when Redis goes down under it, the follower reads the stream again from
// there once Redis is back, and applies what it had missed.
func TestFollowerReadsAgainWhatFailed(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	ctx := t.Context()
	advB := sameShard(a.store, "advA", "advB")
	must(t, a.store.PutStores(ctx, advB, stores("b1")))
	fb := b.follower(t)
	held, release := hold(t, fb, "advA")
	i := int(a.store.StreamOf("advA"))
	before := fb.cursors[i]

	must(t, a.store.PutStores(ctx, "advA", stores("a1")))
	must(t, a.store.PutStores(ctx, advB, stores("b2")))
	completes(t, wait, "a poll", func() error { _, err := fb.poll(ctx, false); return err })
	<-held
	within(t, wait, "B's later stores applied", func() bool { return indexed(b) == 2 })
	fb.mu.Lock()
	done := fb.done[i]
	fb.mu.Unlock()
	if done != before {
		t.Fatalf("the stream's cursor moved to %+v, past A's record being applied (%+v before it)", done, before)
	}

	srv.Stop()
	release() // A's upload is read back from a Redis that is gone
	if err := fb.settle(); err == nil {
		t.Fatal("A's record failed, and the follower reported no error")
	}
	if fb.cursors[i] != before {
		t.Fatalf("after the error the stream is read from %+v, want %+v", fb.cursors[i], before)
	}
	srv.Restart()
	step(t, fb, true)
	if got := indexed(b); got != 3 {
		t.Fatalf("b indexes %d stores after Redis came back, want 3 (A's upload read again)", got)
	}
	if fb.cursors[i] != fb.done[i] || fb.done[i].Seq != before.Seq+2 {
		t.Fatalf("cursors read %+v applied %+v, want both at record %d", fb.cursors[i], fb.done[i], before.Seq+2)
	}
}

// TestBackoffAfterCatchingUp: a failed poll waits at least the poll
// interval, and twice as long each time after, up to maxBackoff, even
// when the poll before it caught up on a backlog (and so waited none).
func TestBackoffAfterCatchingUp(t *testing.T) {
	poll := 100 * time.Millisecond
	failed := errors.New("connection refused")
	wait := nextWait(poll, poll, true, nil) // a full batch: read again at once
	if wait != 0 {
		t.Fatalf("wait %v after a full batch, want none", wait)
	}
	var waits []time.Duration
	for range 6 {
		wait = nextWait(wait, poll, false, failed)
		waits = append(waits, wait)
	}
	want := []time.Duration{poll, 2 * poll, 4 * poll, 8 * poll, maxBackoff, maxBackoff}
	if !slices.Equal(waits, want) {
		t.Fatalf("waits after failures %v, want %v", waits, want)
	}
	if w := nextWait(wait, poll, false, nil); w != poll {
		t.Fatalf("wait %v after a poll that succeeded, want the poll interval", w)
	}
}
