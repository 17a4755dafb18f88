package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/storage/redisstore"
)

// refusedStores returns n stores whose names say which upload wrote them.
func refusedStores(n int, name string) []campaigns.Store {
	out := make([]campaigns.Store, n)
	for i := range out {
		out[i] = campaigns.Store{ID: fmt.Sprintf("st_%05d", i), Name: name, Lat: 35, Lng: 139, Products: []string{"p"}}
	}
	return out
}

// snapshot returns every key Redis holds with a dump of its value, so that
// a test can tell that a refused write changed nothing at all.
func snapshot(t *testing.T, c redis.UniversalClient) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := c.Keys(ctx, "*").Result()
	must(t, err)
	slices.Sort(keys)
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		v, err := c.Dump(ctx, k).Result()
		must(t, err)
		out[k] = v
	}
	return out
}

func wantUnchanged(t *testing.T, c redis.UniversalClient, before map[string]string, what string) {
	t.Helper()
	after := snapshot(t, c)
	for k, v := range after {
		if before[k] != v {
			t.Errorf("%s changed %s", what, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			t.Errorf("%s removed %s", what, k)
		}
	}
}

// catalogWrites are the catalog's writes, each against a catalog that
// seed filled.
var catalogWrites = []struct {
	name  string
	write func(ctx context.Context, s *redisstore.Store) error
}{
	{"PutStores", func(ctx context.Context, s *redisstore.Store) error {
		return s.PutStores(ctx, "adv_1", refusedStores(2500, "new"))
	}},
	{"PutStoresSmall", func(ctx context.Context, s *redisstore.Store) error {
		return s.PutStores(ctx, "adv_1", refusedStores(3, "new"))
	}},
	{"DeleteStore", func(ctx context.Context, s *redisstore.Store) error { return s.DeleteStore(ctx, "adv_1", "st_00001") }},
	{"PutStock", func(ctx context.Context, s *redisstore.Store) error {
		_, err := s.PutStock(ctx, "adv_1", []campaigns.StockUpdate{{StoreID: "st_00002", ProductID: "p", InStock: new(bool)}})
		return err
	}},
	{"PutCampaign", func(ctx context.Context, s *redisstore.Store) error {
		return s.PutCampaign(ctx, &campaigns.Campaign{ID: "cmp_1", AdvertiserID: "adv_2", Name: "moved"})
	}},
	{"CreateCampaign", func(ctx context.Context, s *redisstore.Store) error {
		return s.CreateCampaign(ctx, &campaigns.Campaign{ID: "cmp_2", AdvertiserID: "adv_1", Name: "new"})
	}},
	{"DeleteCampaign", func(ctx context.Context, s *redisstore.Store) error { return s.DeleteCampaign(ctx, "cmp_1") }},
	{"CreateAccount", func(ctx context.Context, s *redisstore.Store) error {
		return s.CreateAccount(ctx, &campaigns.Account{ID: "adv_9", KeyHashes: []string{"h9"}})
	}},
	{"RotateKey", func(ctx context.Context, s *redisstore.Store) error {
		return s.UpdateAccountKeys(ctx, "adv_1", func([]string) ([]string, error) { return []string{"h2"}, nil })
	}},
}

func seedCatalog(t *testing.T, s *redisstore.Store) {
	t.Helper()
	ctx := t.Context()
	must(t, s.CreateAccount(ctx, &campaigns.Account{ID: "adv_1", KeyHashes: []string{"h1"}}))
	must(t, s.PutStores(ctx, "adv_1", refusedStores(2000, "old")))
	mustStock(t)(s.PutStock(ctx, "adv_1", []campaigns.StockUpdate{{StoreID: "st_00001", ProductID: "p", InStock: new(bool)}}))
	must(t, s.PutCampaign(ctx, &campaigns.Campaign{ID: "cmp_1", AdvertiserID: "adv_1", Name: "old"}))
}

// TestWriteRefusedMidwayWritesNothing: a user whose ACL refuses one
// command that a write runs inside its script (the feed's INCR or XADD, or
// one of the writes) gets an error and Redis holds exactly what it held:
// not the write without its change record (which no replica would ever
// apply), nor part of it. PutStores used to queue its HSETs and the
// record's script in MULTI; Redis checks a script's commands only when it
// runs, so EXEC applied the stores and then failed the record.
func TestWriteRefusedMidwayWritesNothing(t *testing.T) {
	redistest.EachMode(t, func(t *testing.T, srv *redistest.Server) {
		admin := srv.Client(t)
		ctx := t.Context()
		for _, deny := range []string{"incr", "xadd", "hset", "zadd", "hdel", "zrem", "sadd", "zremrangebylex"} {
			for _, w := range catalogWrites {
				t.Run(deny+"/"+w.name, func(t *testing.T) {
					srv.Flush(t)
					seedCatalog(t, open(t, srv.URL()))
					must(t, admin.Do(ctx, "ACL", "SETUSER", "cut", "reset", "on", ">pw", "~*", "+@all", "-"+deny).Err())
					t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", "cut") })
					cut := open(t, strings.Replace(srv.URL(), "://", "://cut:pw@", 1))
					before := snapshot(t, admin)
					err := w.write(ctx, cut)
					if err == nil {
						return // the write needs no refused command
					}
					wantUnchanged(t, admin, before, "a write refused at "+deny)
				})
			}
		}
	})
}

// TestWriteRefusedByRedisIsUnavailable: Redis out of memory or turned into
// a read-only replica (a failover) refuses a write whole, and the caller
// gets Unavailable (503), not an internal error. PutStores, sent as MULTI,
// got EXECABORT, which hid the cause.
func TestWriteRefusedByRedisIsUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.Client(t)
	ctx := t.Context()
	refusals := []struct {
		name         string
		refuse, undo []any
	}{
		{"OOM", []any{"CONFIG", "SET", "maxmemory", "1"}, []any{"CONFIG", "SET", "maxmemory", "0"}},
		{"READONLY", []any{"REPLICAOF", "127.0.0.1", "1"}, []any{"REPLICAOF", "NO", "ONE"}},
	}
	for _, r := range refusals {
		for _, w := range catalogWrites {
			if r.name == "OOM" && w.name == "DeleteCampaign" {
				// The delete frees memory and is taken; freeing the
				// caps total, a second command, is then refused and
				// reported, as DeleteCampaign documents.
				continue
			}
			t.Run(r.name+"/"+w.name, func(t *testing.T) {
				srv.Flush(t)
				s := open(t, srv.URL())
				seedCatalog(t, s)
				before := snapshot(t, admin)
				must(t, admin.Do(ctx, r.refuse...).Err())
				err := w.write(ctx, s)
				must(t, admin.Do(ctx, r.undo...).Err())
				if err == nil && r.name == "OOM" {
					// A script whose first write frees memory (HDEL,
					// ZREM) runs to the end: Redis took all of it.
					return
				}
				if err == nil {
					t.Fatal("write accepted")
				}
				if campaigns.ErrorCode(err) != campaigns.Unavailable {
					t.Errorf("error %v has code %q, want unavailable", err, campaigns.ErrorCode(err))
				}
				wantUnchanged(t, admin, before, "a refused write")
			})
		}
	}
}
