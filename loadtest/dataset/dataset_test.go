package dataset

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage/boltstore"
)

// small is the national world's shape at a size the race detector runs in
// a second: every campaign (the keyword figures depend on their number),
// 2% of the stores.
func small(seed uint64) Config {
	c := Default()
	c.Seed, c.Stores = seed, 20_000
	return c
}

// tiny is a world for tests of mechanics rather than shape.
func tiny(seed uint64) Config {
	return Config{Seed: seed, Stores: 2_000, Advertisers: 40, Agencies: 5, Publishers: 3, Products: 400, Campaigns: 80}
}

// shared is small(1), generated once for the tests that only read it.
var shared = sync.OnceValues(func() (*World, error) { return Generate(small(1)) })

func generate(t *testing.T, c Config) *World {
	t.Helper()
	w, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b := generate(t, tiny(7)), generate(t, tiny(7))
	if a.Fingerprint() != b.Fingerprint() {
		t.Fatal("the same config gave two worlds")
	}
	if c := generate(t, tiny(8)); c.Fingerprint() == a.Fingerprint() {
		t.Fatal("another seed gave the same world")
	}
	ra, rb := a.Requests(1000, 1), b.Requests(1000, 1)
	for i := range ra {
		if ra[i] != rb[i] {
			t.Fatalf("request %d differs: %+v vs %+v", i, ra[i], rb[i])
		}
	}
}

func TestWorldShape(t *testing.T) {
	t.Parallel()
	c := small(1)
	w, err := shared()
	if err != nil {
		t.Fatal(err)
	}
	s := w.Stats()
	tests := []struct {
		name     string
		got      int
		min, max int
	}{
		{"stores", s.Stores, c.Stores, c.Stores},
		{"advertisers", s.Advertisers, 200, 200},
		{"products", s.Products, 2000, 2000},
		{"campaigns", s.Campaigns, 10_000, 10_000},
		{"active campaigns", s.ActiveCampaigns, 9_500, 9_800},
		{"smallest advertiser", s.SmallestAdvertiser, 12, 12},
		{"largest advertiser (8%)", s.LargestAdvertiser, c.Stores * 8 / 100, c.Stores * 8 / 100},
		{"居酒屋 campaigns", s.KeywordCampaigns["居酒屋"], 480, 480},
		{"カフェ campaigns", s.KeywordCampaigns["カフェ"], 420, 420},
		{"ラーメン campaigns", s.KeywordCampaigns["ラーメン"], 360, 360},
		{"most popular keyword", s.TopKeywords(1)[0].Campaigns, 300, 500},
		{"out of stock (about 2.5% of store-products)", s.OutOfStock * 1000 / s.StoreProducts, 15, 40},
	}
	for _, tt := range tests {
		if tt.got < tt.min || tt.got > tt.max {
			t.Errorf("%s = %d, want %d..%d", tt.name, tt.got, tt.min, tt.max)
		}
	}
	for _, cp := range w.Campaigns {
		if err := cp.Validate(); err != nil {
			t.Fatalf("campaign %s: %v", cp.ID, err)
		}
	}
	for i := range w.Stores {
		if err := w.Stores[i].Validate(); err != nil {
			t.Fatalf("store %s: %v", w.Stores[i].ID, err)
		}
	}
	if err := campaigns.CheckStores(w.Advertisers[0].Stores, nil); err != nil {
		t.Fatalf("an advertiser's stores fail the upload check: %v", err)
	}
}

func TestSearchMix(t *testing.T) {
	t.Parallel()
	w, err := shared()
	if err != nil {
		t.Fatal(err)
	}
	reqs := w.Requests(20_000, 1)
	// About a third of searches trigger no campaign (WORKLOAD.md).
	if none := 1 - w.TriggerShare(reqs); none < 0.28 || none > 0.38 {
		t.Errorf("%.3f of searches trigger nothing, want about a third", none)
	}
	near := 0
	for _, r := range reqs {
		if haversineM(r.Lat, r.Lng, ShinjukuStation.Lat, ShinjukuStation.Lng) < 3000 {
			near++
		}
	}
	// People are where the stores are: central Tokyo is busy.
	if near < len(reqs)/100 {
		t.Errorf("only %d of %d fixes within 3 km of Shinjuku", near, len(reqs))
	}
}

func TestLoadPathsAgree(t *testing.T) {
	t.Parallel()
	w := generate(t, tiny(3))
	ix, err := BuildIndex(w)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := boltstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := LoadCatalog(ctx, st, w, nil); err != nil {
		t.Fatal(err)
	}
	fromStore := serving.NewIndex()
	cs, err := st.Campaigns(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var stores []*campaigns.Store
	if err := st.Stores(ctx, "", func(s *campaigns.Store) bool { stores = append(stores, s); return true }); err != nil {
		t.Fatal(err)
	}
	var out []campaigns.StockKey
	if err := st.OutOfStock(ctx, "", func(k campaigns.StockKey) bool { out = append(out, k); return true }); err != nil {
		t.Fatal(err)
	}
	if err := fromStore.Load(cs, stores, out); err != nil {
		t.Fatal(err)
	}
	a, b := ix.Snapshot(), fromStore.Snapshot()
	if a.Stores() != b.Stores() || a.Campaigns() != b.Campaigns() || a.Offers() != b.Offers() || len(out) != len(w.OutOfStock) {
		t.Errorf("in-process index %d stores %d campaigns %d offers; from the store %d %d %d (stock %d vs %d)",
			a.Stores(), a.Campaigns(), a.Offers(), b.Stores(), b.Campaigns(), b.Offers(), len(out), len(w.OutOfStock))
	}
	// And the keys the driver will use open the publisher's account.
	acct, err := st.Account(ctx, w.Publishers[0].ID)
	if err != nil || len(acct.KeyHashes) != 1 {
		t.Fatalf("publisher account: %v, %v", acct, err)
	}
}

func TestWriteFilesParseAsUploads(t *testing.T) {
	t.Parallel()
	w := generate(t, tiny(5))
	for _, format := range []Format{JSON, CSV} {
		dir := t.TempDir()
		m, err := WriteFiles(dir, w, format)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(back.Accounts) != len(m.Accounts) || back.Accounts[0].Type != campaigns.Agency {
			t.Fatalf("manifest accounts: %d, first %v", len(back.Accounts), back.Accounts[0].Type)
		}
		rows := 0
		for _, f := range m.Stores {
			fh, err := os.Open(filepath.Join(dir, f.Path))
			if err != nil {
				t.Fatal(err)
			}
			up, err := campaigns.ReadStores(fh, campaigns.UploadFormat(format), 1_000_000)
			fh.Close()
			if err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
			if err := campaigns.CheckStores(up.Stores, up.Rows); err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
			if len(up.Stores) != f.Rows {
				t.Fatalf("%s: %d stores, manifest says %d", f.Path, len(up.Stores), f.Rows)
			}
			rows += f.Rows
		}
		if rows != len(w.Stores) {
			t.Errorf("%s files hold %d stores, want %d", format, rows, len(w.Stores))
		}
	}
}
