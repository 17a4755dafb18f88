package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/redisstore"
	"github.com/navad/navad/internal/storage/storagetest"
)

func TestMain(m *testing.M) {
	// TestUnavailable stops Redis; go-redis would log every failed dial.
	redisstore.SetLogger(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

func open(t testing.TB, url string, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestContract runs the storage contract suite on one redis-server, emptied
// before each subtest.
func TestContract(t *testing.T) {
	srv := redistest.Start(t)
	storagetest.Run(t, func(t *testing.T) storage.Catalog {
		srv.Flush(t)
		return open(t, srv.URL())
	})
}

// TestContractCluster runs the suite again through go-redis's cluster client
// against a Redis in cluster mode, which refuses any multi-key command or
// transaction whose keys span slots: it proves the key layout keeps every
// atomic operation in one slot.
func TestContractCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	storagetest.Run(t, func(t *testing.T) storage.Catalog {
		srv.Flush(t)
		return open(t, srv.URL())
	})
}

func TestOpenRejectsBadURLs(t *testing.T) {
	tests := []struct {
		give string
	}{
		{"http://localhost:6379"},
		{"localhost:6379"},
		{"redis://localhost:6379/notadb"},
		{"redis+sentinel://localhost:6379"},
	}
	for _, tt := range tests {
		if _, err := redisstore.NewClient(tt.give); err == nil {
			t.Errorf("NewClient(%q) accepted", tt.give)
		}
	}
}

func TestClusterURLForms(t *testing.T) {
	tests := []struct {
		give string
	}{
		{"redis+cluster://10.0.0.1:6379"},
		{"redis+cluster://10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379"},
		{"rediss+cluster://user:secret@10.0.0.1:6379?addr=10.0.0.2:6379"},
		{"redis://:secret@localhost:6379/2"},
		{"rediss://localhost:6380"},
	}
	for _, tt := range tests {
		c, err := redisstore.NewClient(tt.give)
		if err != nil {
			t.Errorf("NewClient(%q): %v", tt.give, err)
			continue
		}
		_ = c.Close()
	}
}

// TestUnavailable: with Redis gone every method answers Unavailable at
// once, and the same Store works again when Redis is back.
func TestUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	ctx := t.Context()
	must(t, s.PutStores(ctx, "adv", []campaigns.Store{{ID: "s1", Name: "One", Lat: 35, Lng: 139, Products: []string{"p"}}}))
	srv.Stop()

	calls := map[string]func(ctx context.Context) error{
		"Ping": s.Ping,
		"PutStores": func(ctx context.Context) error {
			return s.PutStores(ctx, "adv", []campaigns.Store{{ID: "s2", Name: "Two", Products: []string{"p"}}})
		},
		"Store": func(ctx context.Context) error {
			_, err := s.Store(ctx, "adv", "s1")
			return err
		},
		"CreateAccount": func(ctx context.Context) error {
			return s.CreateAccount(ctx, &campaigns.Account{ID: "a", Type: campaigns.Advertiser, Name: "A"})
		},
		"AccountByKeyHash": func(ctx context.Context) error {
			_, err := s.AccountByKeyHash(ctx, "k")
			return err
		},
		"Stores": func(ctx context.Context) error {
			return s.Stores(ctx, "", func(*campaigns.Store) bool { return true })
		},
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := call(ctx)
		cancel()
		if campaigns.ErrorCode(err) != campaigns.Unavailable {
			t.Errorf("%s with Redis down: %v, want code %s", name, err, campaigns.Unavailable)
		}
	}

	srv.Restart()
	// The pool notices the restart within a second or so.
	deadline := time.Now().Add(10 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("store did not reconnect after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	got, err := s.Store(ctx, "adv", "s1")
	must(t, err)
	if got.Name != "One" {
		t.Fatalf("store after restart = %+v", got)
	}
}

// TestFeedRecordsEveryWrite checks the change feed: one record per write,
// sequence numbers without gaps, in the stream of the slot written; and
// that OnWrite tells the writer where each of its records is, and nothing
// of a write refused.
func TestFeedRecordsEveryWrite(t *testing.T) {
	redistest.EachMode(t, testFeed)
}

func testFeed(t *testing.T, srv *redistest.Server) {
	s := open(t, srv.URL())
	ctx := t.Context()
	streams := s.Streams()
	heads, err := s.Heads(ctx, streams)
	must(t, err)
	for i, h := range heads {
		if h != (redisstore.Cursor{ID: "0-0"}) {
			t.Fatalf("stream %d of an empty database starts at %+v", i, h)
		}
	}
	seqs, err := s.Seqs(ctx, streams)
	must(t, err)
	for i, sq := range seqs {
		if sq != (redisstore.Cursor{ID: "0-0"}) {
			t.Fatalf("stream %d of an empty database has seq and last ID %+v", i, sq)
		}
	}

	told := make(map[redisstore.Stream][]redisstore.Cursor)
	stopTelling := s.OnWrite(func(st redisstore.Stream, at redisstore.Cursor) { told[st] = append(told[st], at) })

	must(t, s.CreateAccount(ctx, &campaigns.Account{ID: "adv_1", Type: campaigns.Advertiser, Name: "A", KeyHashes: []string{"h1"}}))
	must(t, s.UpdateAccountKeys(ctx, "adv_1", func([]string) ([]string, error) { return []string{"h2"}, nil }))
	// An update that changes nothing writes nothing: no record.
	must(t, s.UpdateAccountKeys(ctx, "adv_1", func(cur []string) ([]string, error) { return cur, nil }))
	c := &campaigns.Campaign{ID: "cmp_1", AdvertiserID: "adv_1", Name: "C"}
	must(t, s.PutCampaign(ctx, c))
	must(t, s.DeleteCampaign(ctx, "cmp_1"))
	stores := storagetest.MakeStores(1500)
	must(t, s.PutStores(ctx, "adv_1", stores[:2]))
	must(t, s.PutStores(ctx, "adv_1", stores)) // too many to list: reload
	no := false
	mustStock(t)(s.PutStock(ctx, "adv_1", []campaigns.StockUpdate{{StoreID: stores[0].ID, ProductID: "p1", InStock: &no}}))
	must(t, s.DeleteStore(ctx, "adv_1", stores[1].ID))
	// Refused writes record nothing.
	if _, err := s.PutStock(ctx, "adv_1", []campaigns.StockUpdate{{StoreID: "nope", ProductID: "p1", InStock: &no}}); err == nil {
		t.Fatal("stock for an unknown store accepted")
	}
	if err := s.DeleteCampaign(ctx, "cmp_1"); campaigns.ErrorCode(err) != campaigns.NotFound {
		t.Fatalf("second delete: %v", err)
	}
	if err := s.CreateCampaign(ctx, c); err == nil {
		t.Fatal("a deleted campaign's ID taken again")
	}
	if err := s.DeleteStore(ctx, "adv_1", stores[1].ID); campaigns.ErrorCode(err) != campaigns.NotFound {
		t.Fatalf("second store delete: %v", err)
	}
	stopTelling()
	other := "adv_2" // of another shard than adv_1's
	for s.StreamOf(other) == s.StreamOf("adv_1") {
		other += "x"
	}
	must(t, s.PutStores(ctx, other, stores[:1])) // told no one

	changes, err := s.ReadFeed(ctx, streams, heads, 100)
	must(t, err)
	shard := s.StreamOf("adv_1")
	type rec struct{ op, id, adv string }
	want := map[redisstore.Stream][]rec{
		0:     {{"account", "adv_1", ""}, {"account", "adv_1", ""}, {"campaign", "cmp_1", "adv_1"}, {"campaign", "cmp_1", "adv_1"}},
		shard: {{"stores", "", "adv_1"}, {"reload", "", "adv_1"}, {"stock", "", "adv_1"}, {"stores", "", "adv_1"}},
	}
	for i, st := range streams {
		if st == s.StreamOf(other) {
			changes[i] = changes[i][:len(changes[i])-1] // the upload told no one
		}
		if len(changes[i]) != len(want[st]) {
			t.Fatalf("stream %d holds %d records, want %d: %+v", st, len(changes[i]), len(want[st]), changes[i])
		}
		for j, ch := range changes[i] {
			w := want[st][j]
			if ch.Op != w.op || ch.ObjectID != w.id || ch.AdvertiserID != w.adv || ch.Seq != int64(j+1) || ch.Origin != s.Origin() {
				t.Fatalf("stream %d record %d = %+v, want %+v with seq %d", st, j, ch, w, j+1)
			}
			if j >= len(told[st]) || told[st][j] != ch.Cursor {
				t.Fatalf("stream %d: OnWrite told %+v, the records are at %+v", st, told[st], changes[i])
			}
		}
		if len(told[st]) != len(changes[i]) {
			t.Fatalf("stream %d: OnWrite told %+v, the records are at %+v", st, told[st], changes[i])
		}
	}
	recs := changes[int(shard)]
	if len(recs[0].StoreIDs) != 2 || recs[0].StoreIDs[1] != stores[1].ID {
		t.Fatalf("stores record lists %v", recs[0].StoreIDs)
	}
	if len(recs[2].Stock) != 1 || recs[2].Stock[0].StoreID != stores[0].ID || recs[2].Stock[0].Available() {
		t.Fatalf("stock record carries %+v", recs[2].Stock)
	}
	if len(recs[3].StoreIDs) != 1 || recs[3].StoreIDs[0] != stores[1].ID || !recs[3].Deleted || recs[0].Deleted {
		t.Fatalf("delete record lists %v (deleted %v; the upload's %v)", recs[3].StoreIDs, recs[3].Deleted, recs[0].Deleted)
	}

	heads2, err := s.Heads(ctx, streams)
	must(t, err)
	seqs, err = s.Seqs(ctx, streams)
	must(t, err)
	if heads2[0].Seq != 4 || heads2[shard].Seq != 4 || seqs[0] != heads2[0] || seqs[shard] != heads2[shard] || heads2[shard].ID != recs[3].ID {
		t.Fatalf("heads %+v, seqs %+v after four records each", heads2, seqs)
	}
	// Trimmed empty, the stream has no last record, but Redis keeps the ID
	// it last generated: Seqs gives it, Heads "0-0".
	must(t, srv.Client(t).XTrimMaxLen(ctx, fmt.Sprintf("{navad:%d}:feed", int(shard)-1), 0).Err())
	heads2, err = s.Heads(ctx, []redisstore.Stream{shard})
	must(t, err)
	seqs, err = s.Seqs(ctx, []redisstore.Stream{shard})
	must(t, err)
	if want := (redisstore.Cursor{ID: recs[3].ID, Seq: 4}); seqs[0] != want || heads2[0] != (redisstore.Cursor{ID: "0-0", Seq: 4}) {
		t.Fatalf("trimmed empty: seqs %+v, want %+v; heads %+v, want 0-0", seqs[0], want, heads2[0])
	}
	found, missing, err := s.StoresByID(ctx, "adv_1", []string{stores[0].ID, stores[1].ID, "never"})
	must(t, err)
	if len(found) != 1 || found[0].ID != stores[0].ID || len(missing) != 2 {
		t.Fatalf("StoresByID: found %v, missing %v", found, missing)
	}
	// Stopping a function no longer told does not stop the one told now
	// (a follower closed after another started on the same store).
	newer := 0
	stopNewer := s.OnWrite(func(redisstore.Stream, redisstore.Cursor) { newer++ })
	stopTelling()
	must(t, s.PutStores(ctx, other, stores[:1]))
	stopNewer()
	must(t, s.PutStores(ctx, other, stores[:1]))
	if newer != 1 {
		t.Fatalf("the function told now was told of %d writes, want 1", newer)
	}
}

func TestCompareIDs(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"0-0", "0-0", 0},
		{"5-1", "5-1", 0},
		{"9-0", "10-0", -1}, // not as strings
		{"10-0", "9-5", 1},
		{"7-2", "7-10", -1}, // then by sequence
		{"1700000000000-3", "0-0", 1},
		{"x", "0-0", 0}, // not an ID: 0-0
	}
	for _, tt := range tests {
		if got := redisstore.CompareIDs(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareIDs(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestEpochSurvivesRestartNotFlush: the epoch stays across a Redis restart
// that kept its data (AOF) and changes when Redis lost it.
func TestEpochSurvivesRestartNotFlush(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	ctx := t.Context()
	e1, err := s.Epoch(ctx)
	must(t, err)
	srv.Kill()
	srv.Restart()
	s2 := open(t, srv.URL())
	e2, err := s2.Epoch(ctx)
	must(t, err)
	if e1 != e2 {
		t.Fatalf("epoch changed across a restart that kept the data: %s → %s", e1, e2)
	}
	srv.Flush(t)
	e3, err := s2.Epoch(ctx)
	must(t, err)
	if e3 == e2 || e3 == "" {
		t.Fatalf("epoch %q after losing the data, was %q", e3, e2)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	must(t, s.Close())
	err := s.Ping(t.Context())
	if !errors.Is(err, redisstore.ErrClosed) || campaigns.ErrorCode(err) != campaigns.Unavailable {
		t.Fatalf("Ping after Close = %v", err)
	}
}

// TestFeedRetention: records older than the retention are trimmed as new
// ones are appended, so the feed does not grow without bound.
func TestFeedRetention(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redisstore.WithFeedRetention(time.Second))
	ctx := t.Context()
	must(t, s.PutStores(ctx, "adv", []campaigns.Store{{ID: "s1", Name: "One", Lat: 35, Lng: 139, Products: []string{"p"}}}))
	no := false
	for range 300 {
		mustStock(t)(s.PutStock(ctx, "adv", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "p", InStock: &no}}))
	}
	key := fmt.Sprintf("{navad:%d}:feed", int(s.StreamOf("adv"))-1)
	rc := srv.Client(t)
	before, err := rc.XLen(ctx, key).Result()
	must(t, err)
	time.Sleep(1100 * time.Millisecond)
	mustStock(t)(s.PutStock(ctx, "adv", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "p", InStock: &no}}))
	after, err := rc.XLen(ctx, key).Result()
	must(t, err)
	// Trimming with ~ drops whole stream nodes (100 entries by default), so
	// a few old records may stay; most must go.
	if before != 301 || after > 101 {
		t.Fatalf("feed held %d records, then %d after the retention passed; want 301, then at most 101", before, after)
	}
	seqs, err := s.Seqs(ctx, []redisstore.Stream{s.StreamOf("adv")})
	must(t, err)
	if seqs[0].Seq != 302 {
		t.Fatalf("seq %d after 302 records", seqs[0].Seq)
	}
}

// TestHungRedisCallsEndAtTheirDeadline: with Redis stopped but its
// connections open (a partition), Record and Reserve, whose calls are
// pipelined together, give up at the caller's deadline rather than at the
// client's read timeout, and work again once Redis answers.
func TestHungRedisCallsEndAtTheirDeadline(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	caps := s.Caps()
	now := time.Now()
	r := storage.CapRequest{CampaignID: "cmp_1", Now: now, Day: now.Format(time.DateOnly), DayEnd: now.Add(time.Hour), DailyLimit: 10}
	e := &storage.Event{Kind: storage.Impression, AdID: "r.1", Issued: now, At: now,
		Key: storage.AggKey{Day: storage.DayOf(now), AdvertiserID: "adv", CampaignID: "cmp_1", PublisherID: "pub", StoreID: "s1"}}
	if ok, err := caps.Reserve(t.Context(), r); err != nil || !ok {
		t.Fatalf("reserve before: %v %v", ok, err)
	}
	srv.Pause()
	for _, call := range []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"Reserve", func(ctx context.Context) error { _, err := caps.Reserve(ctx, r); return err }},
		{"Record", func(ctx context.Context) error { _, err := s.Record(ctx, e); return err }},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		start := time.Now()
		err := call.do(ctx)
		cancel()
		// Generous: the bound that matters is the client's 5 s read timeout.
		if took := time.Since(start); campaigns.ErrorCode(err) != campaigns.Unavailable || took > 3*time.Second {
			t.Errorf("%s with Redis hung: %v after %v, want Unavailable at the deadline", call.name, err, took)
		}
	}
	srv.Resume()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := caps.Reserve(t.Context(), r)
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reserve after Redis answered again: %v %v", ok, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The hung Reserve may have landed once Redis resumed; no more.
	n, err := caps.Served(t.Context(), "cmp_1", r.Day, "", now)
	must(t, err)
	if n.Daily < 2 || n.Daily > 3 {
		t.Fatalf("daily count %d after two reservations and one given up", n.Daily)
	}
	if _, err := s.Record(t.Context(), e); err != nil {
		t.Fatal(err)
	}
}

// TestStockReadsWhatRedisHolds: Stock answers each named row with its state
// in Redis now, whatever the row given says: out when last reported out,
// in when reported back in, never reported, or its store deleted since.
func TestStockReadsWhatRedisHolds(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	ctx := t.Context()
	yes, no := true, false
	must(t, s.PutStores(ctx, "adv", []campaigns.Store{
		{ID: "s1", Name: "s1", Lat: 35.69, Lng: 139.70, Products: []string{"beer"}},
		{ID: "s2", Name: "s2", Lat: 35.70, Lng: 139.70, Products: []string{"beer"}},
	}))
	mustStock(t)(s.PutStock(ctx, "adv", []campaigns.StockUpdate{
		{StoreID: "s1", ProductID: "beer", InStock: &no},
		{StoreID: "s1", ProductID: "wine", InStock: &no},
		{StoreID: "s1", ProductID: "wine", InStock: &yes},
		{StoreID: "s2", ProductID: "beer", InStock: &no},
	}))
	must(t, s.DeleteStore(ctx, "adv", "s2"))
	tests := []struct {
		name        string
		give        campaigns.StockUpdate
		wantInStock bool
	}{
		{"reported out", campaigns.StockUpdate{StoreID: "s1", ProductID: "beer", InStock: &yes}, false},
		{"reported back in", campaigns.StockUpdate{StoreID: "s1", ProductID: "wine", InStock: &no}, true},
		{"never reported", campaigns.StockUpdate{StoreID: "s1", ProductID: "sake", InStock: &no}, true},
		{"store deleted", campaigns.StockUpdate{StoreID: "s2", ProductID: "beer", InStock: &no}, true},
	}
	give := make([]campaigns.StockUpdate, len(tests))
	for i, tt := range tests {
		give[i] = tt.give
	}
	// Two reads in one call: the rows above, and an ID no write accepts.
	all, err := s.Stock(ctx, []redisstore.StockRead{{AdvertiserID: "adv", Rows: give}, {AdvertiserID: "", Rows: give}})
	must(t, err)
	if len(all) != 2 || all[1] != nil {
		t.Fatalf("Stock answered %d reads, the invalid one with %v; want 2 and none", len(all), all[len(all)-1])
	}
	got := all[0]
	if len(got) != len(tests) {
		t.Fatalf("Stock returned %d rows for %d", len(got), len(tests))
	}
	for i, tt := range tests {
		g := got[i]
		if g.StoreID != tt.give.StoreID || g.ProductID != tt.give.ProductID || g.Available() != tt.wantInStock {
			t.Errorf("%s: got %s/%s in stock %v, want %s/%s %v", tt.name, g.StoreID, g.ProductID, g.Available(), tt.give.StoreID, tt.give.ProductID, tt.wantInStock)
		}
	}
}

// mustStock returns a check that a PutStock succeeded.
func mustStock(t *testing.T) func([]int, error) {
	return func(_ []int, err error) {
		t.Helper()
		must(t, err)
	}
}
