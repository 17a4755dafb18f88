package redisstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/redisstore"
	"github.com/navad/navad/internal/storage/storagetest"
)

var _ storagetest.EventsBackend = (*redisstore.Store)(nil)

// TestEventsContract runs the events contract suite on one redis-server,
// emptied before each subtest, and again on a one-node Redis Cluster, which
// refuses any script whose keys span slots.
func TestEventsContract(t *testing.T) {
	redistest.EachMode(t, func(t *testing.T, srv *redistest.Server) {
		storagetest.RunEvents(t, func(t *testing.T) storagetest.EventsBackend {
			srv.Flush(t)
			return open(t, srv.URL())
		})
	})
}

// TestCapsContract runs the caps contract suite on both Redis modes. Each
// open is a new connection to the same Redis, as a restarted replica makes.
func TestCapsContract(t *testing.T) {
	redistest.EachMode(t, func(t *testing.T, srv *redistest.Server) {
		storagetest.RunCaps(t, func(t *testing.T) func() storage.Caps {
			srv.Flush(t)
			return func() storage.Caps { return open(t, srv.URL()).Caps() }
		})
	})
}

// TestHashWindowsOfOlderReplicas: a user's window kept as a hash (n, end)
// by an older navad, as Redis holds it through a rolling upgrade, counts
// on: the ads already in it count against the cap, it closes at its end,
// and it keeps its expiry when it becomes a string.
func TestHashWindowsOfOlderReplicas(t *testing.T) {
	srv := redistest.Start(t)
	caps := open(t, srv.URL()).Caps()
	rdb := srv.Client(t)
	ctx := t.Context()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	req := func(uid string, at time.Time) storage.CapRequest {
		return storage.CapRequest{CampaignID: "cmp_1", Now: at, Day: "2026-11-26", DayEnd: now.Add(12 * time.Hour),
			UID: uid, UserLimit: 3, UserPeriod: time.Hour, Leased: true}
	}
	for _, w := range []struct {
		uid      string
		n        int
		end      time.Time
		allowed  int // more ads the window takes at now
		servedAt int64
	}{
		{"open", 2, now.Add(30 * time.Minute), 1, 3},
		{"full", 3, now.Add(30 * time.Minute), 0, 3},
		{"closed", 3, now.Add(-time.Minute), 3, 3}, // a new window opens at now
	} {
		key := redisstore.UserKey("cmp_1", w.uid)
		if err := rdb.HSet(ctx, key, "n", w.n, "end", w.end.UnixMilli()).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.PExpire(ctx, key, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		for i := range w.allowed + 1 {
			ok, err := caps.Reserve(ctx, req(w.uid, now))
			if err != nil || ok != (i < w.allowed) {
				t.Fatalf("%s window, ad %d: %v %v, want allowed %v", w.uid, i+1, ok, err, i < w.allowed)
			}
		}
		got, err := caps.Served(ctx, "cmp_1", "2026-11-26", w.uid, now)
		if err != nil || got.User != w.servedAt {
			t.Fatalf("%s window: served %+v %v, want %d for the user", w.uid, got, err, w.servedAt)
		}
		if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 {
			t.Fatalf("%s window: TTL %v after its reservations, want one kept", w.uid, ttl)
		}
	}
}

// TestFullWindowRefusedByTheReplica: once a reservation finds a user's
// window full, the replica refuses that user's ads itself until the window
// closes, without Redis, unless the limit has risen since.
func TestFullWindowRefusedByTheReplica(t *testing.T) {
	srv := redistest.Start(t)
	caps := open(t, srv.URL()).Caps()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	req := func(uid string, limit int64, at time.Time) storage.CapRequest {
		return storage.CapRequest{CampaignID: "cmp_1", Now: at, Day: "2026-11-26", DayEnd: now.Add(12 * time.Hour),
			UID: uid, UserLimit: limit, UserPeriod: time.Hour, Leased: true}
	}
	reserve := func(r storage.CapRequest, timeout time.Duration) (bool, error) {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		return caps.Reserve(ctx, r)
	}
	for i, want := range []bool{true, true, false} { // the third finds the window full
		if ok, err := reserve(req("u1", 2, now), 5*time.Second); err != nil || ok != want {
			t.Fatalf("ad %d: %v %v, want %v", i+1, ok, err, want)
		}
	}
	srv.Pause()
	paused := true
	defer func() {
		if paused {
			srv.Resume()
		}
	}()
	if ok, err := reserve(req("u1", 2, now.Add(59*time.Minute)), 5*time.Second); err != nil || ok {
		t.Fatalf("the full window with Redis paused: %v %v, want refused by the replica", ok, err)
	}
	// A higher limit, another user, or a window past its end: Redis must be asked.
	for _, r := range []storage.CapRequest{req("u1", 3, now), req("u2", 2, now), req("u1", 2, now.Add(time.Hour))} {
		if ok, err := reserve(r, 200*time.Millisecond); err == nil {
			t.Fatalf("%+v answered %v with Redis paused, want it to ask Redis", r, ok)
		}
	}
	srv.Resume()
	paused = false
	// (The calls given up above may have landed once Redis went on.)
	if ok, err := reserve(req("u1", 10, now), 5*time.Second); err != nil || !ok {
		t.Fatalf("a higher limit: %v %v, want the ad counted", ok, err)
	}
	if ok, err := reserve(req("u1", 2, now.Add(time.Hour)), 5*time.Second); err != nil || !ok {
		t.Fatalf("after the window's end: %v %v, want a new window", ok, err)
	}
}

// TestCampaignCapsContract: deleting a campaign frees its counters
// (storagetest.RunCampaignCaps), on both Redis modes. What Redis holds of
// a campaign's counters for ever is its keys without an expiry, found by
// SCAN on every node.
func TestCampaignCapsContract(t *testing.T) {
	redistest.EachMode(t, func(t *testing.T, srv *redistest.Server) {
		client := srv.Client(t)
		storagetest.RunCampaignCaps(t, func(t *testing.T) (func() (storage.Catalog, storage.Caps), func(string) []string) {
			srv.Flush(t)
			open := func() (storage.Catalog, storage.Caps) {
				s := open(t, srv.URL())
				return s, s.Caps()
			}
			return open, func(id string) []string { return keysForEver(t, client, "{navad:caps:"+id+"}:*") }
		})
	})
}

// keysForEver returns the keys matching pattern that have no expiry.
func keysForEver(t *testing.T, c redis.UniversalClient, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	var (
		mu   sync.Mutex
		keys []string
	)
	scan := func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			ttl, err := node.PTTL(ctx, iter.Val()).Result()
			if err != nil {
				return err
			}
			if ttl == -1 {
				mu.Lock()
				keys = append(keys, iter.Val())
				mu.Unlock()
			}
		}
		return iter.Err()
	}
	var err error
	switch c := c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		t.Fatalf("client %T", c)
	}
	must(t, err)
	return keys
}
