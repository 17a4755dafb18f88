package replica

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/catalog"
	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage/redisstore"
)

// node is one replica's parts over a shared redis-server.
type node struct {
	store   *redisstore.Store
	index   *serving.Index
	catalog *catalog.Service
	keys    *auth.Keys
	cfg     Config
}

// beerAtS1 starts Redis and two nodes on it, a having written the beer
// campaign and advertiser adv's store s1.
func beerAtS1(t *testing.T) (*redistest.Server, *node, *node) {
	t.Helper()
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	must(t, a.store.PutCampaign(t.Context(), campaignFor("beer")))
	must(t, a.store.PutStores(t.Context(), "adv", stores("s1")))
	return srv, a, b
}

func newNode(t *testing.T, url string) *node {
	t.Helper()
	st, err := redisstore.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	n := &node{store: st, index: serving.NewIndex()}
	if n.keys, err = auth.NewKeys(st, ""); err != nil {
		t.Fatal(err)
	}
	if n.catalog, err = catalog.New(st, n.index, n.keys, nil); err != nil {
		t.Fatal(err)
	}
	n.cfg = Config{Store: st, Catalog: n.catalog, Index: n.index, Keys: n.keys, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return n
}

// follower loads the node's index; the test steps it by hand.
func (n *node) follower(t *testing.T) *Follower {
	t.Helper()
	f, err := load(t.Context(), n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// mustStock returns a check that a PutStock (of a store or a catalog)
// succeeded.
func mustStock[T any](t *testing.T) func(T, error) {
	return func(_ T, err error) {
		t.Helper()
		must(t, err)
	}
}

// step polls once and waits until the lanes have applied what it read: the
// follower stepped by hand.
func (f *Follower) step(ctx context.Context, check bool) (more bool, err error) {
	if more, err = f.poll(ctx, check); err != nil {
		return false, err
	}
	return more, f.settle()
}

func step(t *testing.T, f *Follower, check bool) {
	t.Helper()
	for {
		more, err := f.step(t.Context(), check)
		must(t, err)
		if !more {
			return
		}
	}
}

func stores(ids ...string) []campaigns.Store {
	var out []campaigns.Store
	for i, id := range ids {
		out = append(out, campaigns.Store{ID: id, Name: id, Lat: 35.69 + float64(i)/1000, Lng: 139.70, Products: []string{"beer"}})
	}
	return out
}

// indexed returns how many stores the node's index serves.
func indexed(n *node) int { return n.index.Snapshot().Stores() }

// trimTo leaves only the last keep records of the stream of adv.
func trimTo(t *testing.T, srv *redistest.Server, st *redisstore.Store, adv string, keep int64) {
	t.Helper()
	key := fmt.Sprintf("{navad:%d}:feed", int(st.StreamOf(adv))-1)
	must(t, srv.Client(t).XTrimMaxLen(t.Context(), key, keep).Err())
}

func TestFollowerAppliesOthersChanges(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	fb := b.follower(t)
	ctx := t.Context()
	must(t, a.store.PutStores(ctx, "adv", stores("s1", "s2", "s3")))
	no := false
	mustStock[[]int](t)(a.store.PutStock(ctx, "adv", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "beer", InStock: &no}}))
	must(t, a.store.DeleteStore(ctx, "adv", "s3"))
	c := &campaigns.Campaign{ID: "cmp", AdvertiserID: "adv", Name: "c", ProductID: "beer", RadiusM: 500,
		Keywords: []campaigns.Keyword{{Text: "居酒屋", Match: campaigns.Broad}}, Creative: campaigns.Creative{Title: "t", LandingURL: "https://example.com/"}}
	c.ApplyDefaults()
	must(t, a.store.PutCampaign(ctx, c))

	step(t, fb, false)
	if got := indexed(b); got != 2 {
		t.Fatalf("b indexes %d stores, want 2", got)
	}
	if got := b.index.Snapshot().Campaigns(); got != 1 {
		t.Fatalf("b serves %d campaigns, want 1", got)
	}
	applied, reloads := fb.Stats()
	if applied != 4 || reloads != 0 {
		t.Fatalf("applied %d records with %d reloads, want 4 and 0", applied, reloads)
	}

	// Its own records are applied too: here b's store took a write that
	// b's catalog never applied to the index (as when the connection died
	// after Redis executed it and the caller got 503), and the feed is how
	// b learns of it.
	must(t, b.store.PutStores(ctx, "adv", stores("s9")))
	step(t, fb, false)
	if got := indexed(b); got != 3 {
		t.Fatalf("b did not apply its own stores record: %d stores, want 3", got)
	}
}

// TestFollowerAppliesStoresBeforeCampaigns: when one poll brings a new
// advertiser's campaign and its stores, the campaign is never live on the
// follower without its stores, even when it was written first.
func TestFollowerAppliesStoresBeforeCampaigns(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	fb := b.follower(t)
	ctx := t.Context()
	c := &campaigns.Campaign{ID: "cmp", AdvertiserID: "adv", Name: "c", ProductID: "beer", RadiusM: 500,
		Keywords: []campaigns.Keyword{{Text: "居酒屋", Match: campaigns.Broad}}, Creative: campaigns.Creative{Title: "t", LandingURL: "https://example.com/"}}
	c.ApplyDefaults()
	must(t, a.store.PutCampaign(ctx, c))
	must(t, a.store.PutStores(ctx, "adv", stores("s1", "s2")))

	var seen []redisstore.Stream
	fb.afterApply = func(st redisstore.Stream) {
		seen = append(seen, st)
		snap := b.index.Snapshot()
		if snap.Campaigns() > 0 && snap.Stores() < 2 {
			t.Errorf("after stream %d the campaign is live with %d of its 2 stores", st, snap.Stores())
		}
	}
	step(t, fb, false)
	if len(seen) != 2 || seen[1] != redisstore.CampaignsStream {
		t.Fatalf("applied streams %v, want a store shard then the campaigns' stream", seen)
	}
	if got := b.index.Snapshot().Campaigns(); got != 1 {
		t.Fatalf("b serves %d campaigns, want 1", got)
	}
}

// TestFollowerReloadsAfterTrimmedRecords: a replica that missed records
// trimmed from the feed reloads the shard and ends up exact, deletions
// included.
func TestFollowerReloadsAfterTrimmedRecords(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	ctx := t.Context()
	must(t, a.store.PutStores(ctx, "adv", stores("s1", "s2")))
	fb := b.follower(t)
	if got := indexed(b); got != 2 {
		t.Fatalf("b loaded %d stores, want 2", got)
	}
	must(t, a.store.DeleteStore(ctx, "adv", "s1"))
	must(t, a.store.PutStores(ctx, "adv", stores("s1", "s2", "s3", "s4")[2:]))
	must(t, a.store.PutStores(ctx, "adv", stores("s5")))
	trimTo(t, srv, a.store, "adv", 1) // b never sees the delete nor s3, s4

	step(t, fb, false)
	if got := indexed(b); got != 4 { // s2, s3, s4, s5
		t.Fatalf("b indexes %d stores after the gap, want 4", got)
	}
	if _, reloads := fb.Stats(); reloads != 1 {
		t.Fatalf("%d reloads, want 1", reloads)
	}
	// And it follows on normally from there.
	must(t, a.store.DeleteStore(ctx, "adv", "s5"))
	step(t, fb, false)
	if got := indexed(b); got != 3 {
		t.Fatalf("b indexes %d stores, want 3", got)
	}
}

// TestFollowerReloadsWhenRedisLostData: after FLUSHALL (Redis restarted
// without its files) the epoch changes and the replica empties what Redis
// no longer has, instead of serving it forever.
func TestFollowerReloadsWhenRedisLostData(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	ctx := t.Context()
	must(t, a.store.PutStores(ctx, "adv", stores("s1", "s2")))
	c := &campaigns.Campaign{ID: "cmp", AdvertiserID: "adv", Name: "c", ProductID: "beer", RadiusM: 500,
		Keywords: []campaigns.Keyword{{Text: "居酒屋", Match: campaigns.Broad}}, Creative: campaigns.Creative{Title: "t", LandingURL: "https://example.com/"}}
	c.ApplyDefaults()
	must(t, a.store.PutCampaign(ctx, c))
	fb := b.follower(t)
	srv.Flush(t)
	must(t, a.store.PutStores(ctx, "adv2", stores("x1")))

	step(t, fb, true)
	if got, cs := indexed(b), b.index.Snapshot().Campaigns(); got != 1 || cs != 0 {
		t.Fatalf("after Redis lost its data b serves %d stores and %d campaigns, want 1 and 0", got, cs)
	}
}

// TestFollowerReloadsWhenRedisWentBack: Redis restarted from a file that
// lacks the last records this replica applied (appendfsync everysec and a
// power cut); the sequence number went back, and the replica reloads.
func TestFollowerReloadsWhenRedisWentBack(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	ctx := t.Context()
	fb := b.follower(t)
	must(t, a.store.PutStores(ctx, "adv", stores("s1")))
	must(t, a.store.PutStores(ctx, "adv", stores("s1", "s2")[1:]))
	step(t, fb, false)
	// Play the lost tail: s2 and its record are gone.
	rc := srv.Client(t)
	shard := int(a.store.StreamOf("adv")) - 1
	must(t, rc.HDel(ctx, fmt.Sprintf("{navad:%d}:stores:adv", shard), "s2").Err())
	must(t, rc.Set(ctx, fmt.Sprintf("{navad:%d}:seq", shard), 1, 0).Err())

	step(t, fb, true)
	if got := indexed(b); got != 1 {
		t.Fatalf("b indexes %d stores after Redis lost s2, want 1", got)
	}
}

// TestFollowerReloadsWhenRedisIDsWentBack: a failover to a Redis replica
// that had not received the last record this replica read (s1 out of
// stock), and whose clock is behind the old master's. A write landing
// before the next check (s1 in stock again) takes the sequence number back
// up to where this replica's cursor is, but XADD gives its record an ID
// below the cursor, which reading after the cursor never returns: only the
// stream's last generated ID having gone back tells.
func TestFollowerReloadsWhenRedisIDsWentBack(t *testing.T) {
	srv, a, b := beerAtS1(t)
	ctx := t.Context()
	fb := b.follower(t)
	yes, no := true, false
	mustStock[[]int](t)(a.store.PutStock(ctx, "adv", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "beer", InStock: &no}}))
	step(t, fb, true)
	if got := adsNear(t, b); got != 0 {
		t.Fatalf("b serves %d ads for an out-of-stock store, want 0", got)
	}
	st := a.store.StreamOf("adv")
	read := fb.cursors[st]

	// The new master: it lacks the record read (seq 2), so the write since
	// got seq 2 again, and an ID a second before the lost record's.
	mustStock[[]int](t)(a.store.PutStock(ctx, "adv", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "beer", InStock: &yes}}))
	ms, _, _ := strings.Cut(read.ID, "-")
	lost, err := strconv.ParseInt(ms, 10, 64)
	must(t, err)
	rc := srv.Client(t)
	shard := int(st) - 1
	feed := fmt.Sprintf("{navad:%d}:feed", shard)
	must(t, rc.Del(ctx, feed).Err())
	must(t, rc.XAdd(ctx, &redis.XAddArgs{Stream: feed, ID: fmt.Sprintf("%d-0", lost-2000),
		Values: []any{"seq", 1, "op", "stores", "origin", a.store.Origin(), "adv", "adv", "ids", "s1"}}).Err())
	must(t, rc.XAdd(ctx, &redis.XAddArgs{Stream: feed, ID: fmt.Sprintf("%d-0", lost-1000),
		Values: []any{"seq", read.Seq, "op", "stock", "origin", a.store.Origin(), "adv", "adv", "rows", "s1\x00beer\x001\x00"}}).Err())
	must(t, rc.Set(ctx, fmt.Sprintf("{navad:%d}:seq", shard), read.Seq, 0).Err())

	step(t, fb, true)
	servesLikeFresh(t, srv.URL(), b, "the write whose record's ID went back was never applied")
	if _, reloads := fb.Stats(); reloads != 1 {
		t.Fatalf("%d reloads, want 1", reloads)
	}
	// And it follows on from the reloaded place, without reloading again.
	mustStock[[]int](t)(a.store.PutStock(ctx, "adv", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "beer", InStock: &no}}))
	step(t, fb, true)
	if got := adsNear(t, b); got != 0 {
		t.Fatalf("b serves %d ads for an out-of-stock store after the reload, want 0", got)
	}
	if _, reloads := fb.Stats(); reloads != 1 {
		t.Fatalf("%d reloads, want still 1", reloads)
	}
}

// TestFollowerKeepsStreamTrimmedEmpty: a stream trimmed empty (every record
// older than the retention) has no last record but keeps the ID Redis last
// generated, and a stream never written has neither: no reason to reload,
// on a fresh deployment or later.
func TestFollowerKeepsStreamTrimmedEmpty(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	ctx := t.Context()
	fb := b.follower(t)
	step(t, fb, true) // nothing written yet
	must(t, a.store.PutStores(ctx, "adv", stores("s1")))
	step(t, fb, true)
	trimTo(t, srv, a.store, "adv", 0)
	step(t, fb, true)
	if _, reloads := fb.Stats(); reloads != 0 {
		t.Fatalf("%d reloads, want 0", reloads)
	}
	must(t, a.store.PutStores(ctx, "adv", stores("s1", "s2")[1:]))
	step(t, fb, true)
	if got := indexed(b); got != 2 {
		t.Fatalf("b indexes %d stores, want 2", got)
	}
	if applied, reloads := fb.Stats(); applied != 2 || reloads != 0 {
		t.Fatalf("applied %d records with %d reloads, want 2 and 0", applied, reloads)
	}
}

// TestFollowerReloadsWhenRedisLostAStream: a stream Redis no longer has,
// its sequence number kept (a failover to a replica that never received
// it), reads as one that never generated an ID: below the cursor.
func TestFollowerReloadsWhenRedisLostAStream(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	ctx := t.Context()
	fb := b.follower(t)
	must(t, a.store.PutStores(ctx, "adv", stores("s1", "s2")))
	step(t, fb, true)
	shard := int(a.store.StreamOf("adv")) - 1
	rc := srv.Client(t)
	must(t, rc.HDel(ctx, fmt.Sprintf("{navad:%d}:stores:adv", shard), "s2").Err())
	must(t, rc.Del(ctx, fmt.Sprintf("{navad:%d}:feed", shard)).Err())

	step(t, fb, true)
	if got := indexed(b); got != 1 {
		t.Fatalf("b indexes %d stores after Redis lost s2 with the stream, want 1", got)
	}
	if _, reloads := fb.Stats(); reloads != 1 {
		t.Fatalf("%d reloads, want 1", reloads)
	}
}

// TestFollowerReloadsOnUnknownRecords: a record written by a newer build
// that this one cannot read makes it reload rather than skip it.
func TestFollowerReloadsOnUnknownRecords(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	ctx := t.Context()
	fb := b.follower(t)
	must(t, a.store.PutStores(ctx, "adv", stores("s1")))
	step(t, fb, false)
	shard := int(a.store.StreamOf("adv")) - 1
	rc := srv.Client(t)
	// The newer build's write: a store added and recorded in a way this
	// build does not know.
	must(t, a.store.PutStores(ctx, "adv", stores("s1", "s2")[1:]))
	trimTo(t, srv, a.store, "adv", 0)
	must(t, rc.XAdd(ctx, &redis.XAddArgs{
		Stream: fmt.Sprintf("{navad:%d}:feed", shard),
		Values: []any{"seq", 2, "op", "stores-v2", "origin", "newer", "adv", "adv"},
	}).Err())
	step(t, fb, false)
	if got := indexed(b); got != 2 {
		t.Fatalf("b indexes %d stores, want 2", got)
	}
	if _, reloads := fb.Stats(); reloads != 1 {
		t.Fatalf("%d reloads, want 1", reloads)
	}
}

// TestFollowerReloadsOnUnreadableRecords: a record this build cannot
// decode (stock rows not in threes: a newer format, a hand edit) makes it
// reload that record's stream; the other streams go on, where one such
// record stopped every stream until Redis trimmed it away.
func TestFollowerReloadsOnUnreadableRecords(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	ctx := t.Context()
	other := "adv2" // an advertiser of another stream than adv's
	for a.store.StreamOf(other) == a.store.StreamOf("adv") {
		other += "x"
	}
	fb := b.follower(t)
	must(t, a.store.PutStores(ctx, "adv", stores("s1")))
	step(t, fb, false)
	must(t, a.store.PutStores(ctx, "adv", stores("s1", "s2")[1:]))
	trimTo(t, srv, a.store, "adv", 0)
	must(t, srv.Client(t).XAdd(ctx, &redis.XAddArgs{
		Stream: fmt.Sprintf("{navad:%d}:feed", int(a.store.StreamOf("adv"))-1),
		Values: []any{"seq", 2, "op", "stock", "origin", "newer", "adv", "adv", "rows", "s1\x00beer"},
	}).Err())
	must(t, a.store.PutStores(ctx, other, stores("t1")))
	step(t, fb, false)
	if got := indexed(b); got != 3 {
		t.Fatalf("b indexes %d stores, want 3: adv's two (reloaded) and %s's", got, other)
	}
	if _, reloads := fb.Stats(); reloads != 1 {
		t.Fatalf("%d reloads, want 1", reloads)
	}
}

func TestStartAndClose(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	f, err := Start(t.Context(), b.cfg)
	must(t, err)
	must(t, a.store.PutStores(t.Context(), "adv", stores("s1")))
	deadline := time.Now().Add(time.Second)
	for indexed(b) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the write did not reach the other replica within a second")
		}
		time.Sleep(5 * time.Millisecond)
	}
	must(t, f.Healthy(context.Background()))
	must(t, f.Close())
	must(t, f.Close())
}

// TestRevokedKeyStopsOnOtherReplicas: a key change made through one replica
// reaches the key cache of another with the feed (API.md: a revoked key
// stops within 5 seconds on the others), for DELETE /keys/old and for a
// rotation without keep_old, while the new key works there at once.
func TestRevokedKeyStopsOnOtherReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL()), newNode(t, srv.URL())
	fb := b.follower(t)
	ctx := t.Context()
	admin := &auth.Principal{ID: auth.AdminID, Role: campaigns.Admin}
	works := func(key string, want bool) {
		t.Helper()
		_, err := b.keys.Authenticate(ctx, key)
		if got := err == nil; got != want {
			t.Fatalf("key works on the other replica: %v, want %v (%v)", got, want, err)
		}
	}
	acct, k1, err := a.catalog.CreateAccount(ctx, admin, campaigns.Account{Type: campaigns.Advertiser, Name: "x"})
	must(t, err)
	step(t, fb, false)
	works(k1, true) // now cached on b
	k2, err := a.catalog.RotateKey(ctx, admin, acct.ID, true)
	must(t, err)
	step(t, fb, false)
	works(k1, true)
	works(k2, true)
	must(t, a.catalog.RevokeOldKeys(ctx, admin, acct.ID))
	step(t, fb, false)
	works(k1, false)
	works(k2, true)
	k3, err := a.catalog.RotateKey(ctx, admin, acct.ID, false)
	must(t, err)
	step(t, fb, false)
	works(k2, false)
	works(k3, true)
}
