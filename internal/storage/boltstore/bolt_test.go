package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/internal/storage/storagetest"
)

func open(t testing.TB, dir string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err) // Close must be idempotent
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Catalog {
		return open(t, t.TempDir())
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestReopen writes one of everything, closes, opens the directory again and
// finds it all there: what a restart after a clean shutdown must see.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "nested", "data") // Open creates it
	s := open(t, dir)

	acct := &campaigns.Account{ID: "adv_1", Type: campaigns.Advertiser, Name: "Brewery", KeyHashes: []string{"k1", "k2"},
		CreatedAt: time.Date(2026, 11, 1, 9, 0, 0, 5, time.UTC)}
	must(t, s.CreateAccount(ctx, acct))
	cmp := &campaigns.Campaign{ID: "cmp_1", AdvertiserID: "adv_1", Name: "Beer", ProductID: "beer-350",
		Keywords: []campaigns.Keyword{{Text: "居酒屋", Match: campaigns.Broad}},
		Creative: campaigns.Creative{Title: "Beer", LandingURL: "https://example.com/"},
		Hours:    campaigns.Hours{{Days: []string{"fri"}, From: "17:00", To: "02:00"}}}
	cmp.ApplyDefaults()
	must(t, s.PutCampaign(ctx, cmp))
	stores := storagetest.MakeStores(2000)
	must(t, s.PutStores(ctx, "adv_1", stores))
	mustStock(t)(s.PutStock(ctx, "adv_1", []campaigns.StockUpdate{{StoreID: stores[7].ID, ProductID: "p1", InStock: new(bool)}}))
	must(t, s.DeleteStore(ctx, "adv_1", stores[3].ID))
	must(t, s.Close())

	s = open(t, dir)
	got, err := s.AccountByKeyHash(ctx, "k2")
	must(t, err)
	if got.ID != "adv_1" || got.Name != "Brewery" || !got.CreatedAt.Equal(acct.CreatedAt) || len(got.KeyHashes) != 2 {
		t.Fatalf("account after reopen = %+v", got)
	}
	gotCmp, err := s.Campaign(ctx, "cmp_1")
	must(t, err)
	if gotCmp.Name != "Beer" || len(gotCmp.Hours) != 1 || gotCmp.Hours[0].To != "02:00" {
		t.Fatalf("campaign after reopen = %+v", gotCmp)
	}
	n := 0
	must(t, s.Stores(ctx, "adv_1", func(st *campaigns.Store) bool {
		want := stores[n]
		if n >= 3 {
			want = stores[n+1] // stores[3] was deleted
		}
		if st.ID != want.ID || st.Name != want.Name || st.Lat != want.Lat || len(st.Products) != len(want.Products) || len(st.Hours) != len(want.Hours) {
			t.Fatalf("store %d after reopen = %+v, want %+v", n, st, want)
		}
		n++
		return true
	}))
	if n != len(stores)-1 {
		t.Fatalf("%d stores after reopen, want %d", n, len(stores)-1)
	}
	var out []campaigns.StockKey
	must(t, s.OutOfStock(ctx, "", func(k campaigns.StockKey) bool { out = append(out, k); return true }))
	if len(out) != 1 || out[0].StoreID != stores[7].ID {
		t.Fatalf("out of stock after reopen = %v", out)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	must(t, os.WriteFile(file, nil, 0o600))

	newer := t.TempDir()
	s, err := boltstore.Open(newer)
	must(t, err)
	must(t, s.Close())
	db, err := bolt.Open(filepath.Join(newer, boltstore.FileName), 0o600, nil)
	must(t, err)
	must(t, db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte{99}) }))
	must(t, db.Close())

	tests := []struct {
		name string
		dir  string
	}{
		{"empty dir", ""},
		{"dir is a file", file},
		{"dir under a file", filepath.Join(file, "sub")},
		{"newer schema", newer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := boltstore.Open(tt.dir)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

// TestLocked checks that a second Open of a directory in use gives up after
// the lock timeout instead of hanging.
func TestLocked(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	start := time.Now()
	s, err := boltstore.Open(dir, boltstore.WithLockTimeout(100*time.Millisecond))
	if err == nil {
		_ = s.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second Open took %v to fail", d)
	}
}

func TestCloseIdempotent(t *testing.T) {
	s, err := boltstore.Open(t.TempDir())
	must(t, err)
	for range 3 {
		must(t, s.Close())
	}
	_, err = s.Account(t.Context(), "x")
	if !errors.Is(err, boltstore.ErrClosed) {
		t.Fatalf("Account after Close: %v, want ErrClosed", err)
	}
}

// TestConcurrentUse runs stock feeds (which share bbolt batches), store
// uploads and iterations whose fn calls back into the Store, all at once.
// Run with -race.
func TestConcurrentUse(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir())
	stores := storagetest.MakeStores(3000)
	must(t, s.PutStores(ctx, "adv", stores))

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				st := stores[(w*20+i)%len(stores)]
				row := campaigns.StockUpdate{StoreID: st.ID, ProductID: st.Products[0], InStock: new(bool)}
				if _, err := s.PutStock(ctx, "adv", []campaigns.StockUpdate{row}); err != nil {
					errs <- err
					return
				}
			}
			// A bad row in a shared batch fails only its own call.
			bad := campaigns.StockUpdate{StoreID: "nope", ProductID: "p", InStock: new(bool)}
			if _, err := s.PutStock(ctx, "adv", []campaigns.StockUpdate{bad}); campaigns.ErrorCode(err) != campaigns.Invalid {
				errs <- fmt.Errorf("bad row: %v", err)
			}
		})
	}
	wg.Go(func() {
		for i := range 5 {
			if err := s.PutStores(ctx, fmt.Sprintf("adv_%d", i), stores[:500]); err != nil {
				errs <- err
			}
		}
	})
	wg.Go(func() {
		n := 0
		err := s.Stores(ctx, "adv", func(st *campaigns.Store) bool {
			if n++; n%500 == 0 {
				if _, err := s.Store(ctx, "adv", st.ID); err != nil {
					errs <- err
					return false
				}
				if _, err := s.PutStock(ctx, "adv", []campaigns.StockUpdate{{StoreID: st.ID, ProductID: "x", InStock: new(bool)}}); err != nil {
					errs <- err
					return false
				}
			}
			return true
		})
		if err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	must(t, s.OutOfStock(ctx, "adv", func(campaigns.StockKey) bool { n++; return true }))
	if n < 160 {
		t.Fatalf("%d rows out of stock, want at least the 160 written", n)
	}
}

// BenchmarkStoresLoad measures what the serving index does at start: visit
// every store of the catalogue and keep it.
func BenchmarkStoresLoad(b *testing.B) {
	const n = 100000
	s := open(b, b.TempDir())
	must(b, s.PutStores(b.Context(), "adv", storagetest.MakeStores(n)))
	b.ReportAllocs()
	iters := 0
	for b.Loop() {
		kept := make([]*campaigns.Store, 0, n)
		must(b, s.Stores(b.Context(), "", func(st *campaigns.Store) bool {
			kept = append(kept, st)
			return true
		}))
		if len(kept) != n {
			b.Fatalf("visited %d stores", len(kept))
		}
		iters++
	}
	b.ReportMetric(float64(n*iters)/b.Elapsed().Seconds(), "stores/s")
}

// BenchmarkPutStores measures a 10,000-store upload, fsync included.
func BenchmarkPutStores(b *testing.B) {
	const n = 10000
	s := open(b, b.TempDir())
	stores := storagetest.MakeStores(n)
	iters := 0
	for b.Loop() {
		must(b, s.PutStores(b.Context(), fmt.Sprintf("adv_%d", iters%4), stores))
		iters++
	}
	b.ReportMetric(float64(n*iters)/b.Elapsed().Seconds(), "stores/s")
}

// BenchmarkPutStock measures concurrent one-row point-of-sale updates, which
// share transactions through bbolt's Batch.
func BenchmarkPutStock(b *testing.B) {
	s := open(b, b.TempDir())
	stores := storagetest.MakeStores(10000)
	must(b, s.PutStores(b.Context(), "adv", stores))
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			st := stores[i%len(stores)]
			i++
			row := campaigns.StockUpdate{StoreID: st.ID, ProductID: st.Products[0], InStock: new(i%2 == 0)}
			if _, err := s.PutStock(context.Background(), "adv", []campaigns.StockUpdate{row}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMillionStores is the one-off national-scale run: 1,000,000
// stores in one PutStores, a restart, and a full load. It takes about a
// minute and a few GB of memory, so it is a benchmark, run once when asked
// (b.N is ignored):
//
//	go test -run '^$' -bench BenchmarkMillionStores -benchtime 1x -v ./internal/storage/boltstore/
func BenchmarkMillionStores(b *testing.B) {
	t := b
	const n = 1000000
	ctx := t.Context()
	dir := t.TempDir()
	stores := storagetest.MakeStores(n)

	s := open(t, dir)
	start := time.Now()
	must(t, s.PutStores(ctx, "adv", stores))
	put := time.Since(start)
	must(t, s.Close())
	stores = nil
	runtime.GC()

	start = time.Now()
	s = open(t, dir)
	reopen := time.Since(start)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start = time.Now()
	kept := make([]*campaigns.Store, 0, n)
	must(t, s.Stores(ctx, "", func(st *campaigns.Store) bool {
		kept = append(kept, st)
		return true
	}))
	load := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if len(kept) != n {
		t.Fatalf("loaded %d stores", len(kept))
	}
	fi, err := os.Stat(s.Path())
	must(t, err)
	t.Logf("PutStores %d: %v; reopen: %v; Stores (load and keep all): %v (%.0f stores/s); file %.1f MB; heap of kept stores %.1f MB",
		n, put.Round(time.Millisecond), reopen.Round(time.Millisecond), load.Round(time.Millisecond),
		float64(n)/load.Seconds(), float64(fi.Size())/1e6, float64(after.HeapAlloc-before.HeapAlloc)/1e6)
	b.ReportMetric(put.Seconds(), "s-put")
	b.ReportMetric(load.Seconds(), "s-load")
	runtime.KeepAlive(kept)
}

// mustStock returns a check that a PutStock succeeded.
func mustStock(t *testing.T) func([]int, error) {
	return func(_ []int, err error) {
		t.Helper()
		must(t, err)
	}
}
