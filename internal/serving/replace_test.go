package serving

import (
	"fmt"
	"testing"

	"github.com/navad/navad/campaigns"
)

func TestReplaceStoresAndCampaigns(t *testing.T) {
	near := campaigns.Store{ID: "near", AdvertiserID: "adv", Name: "near", Lat: 35.6910, Lng: 139.7003, Products: []string{"beer", "wine"}}
	mid := campaigns.Store{ID: "mid", AdvertiserID: "adv", Name: "mid", Lat: 35.6930, Lng: 139.7003, Products: []string{"beer"}}
	far := campaigns.Store{ID: "far", AdvertiserID: "adv", Name: "far", Lat: 35.6950, Lng: 139.7003, Products: []string{"beer"}}
	other := campaigns.Store{ID: "near", Name: "other advertiser", Lat: 35.6909, Lng: 139.7003, Products: []string{"beer"}}
	out := func(adv, store, product string) campaigns.StockKey {
		return campaigns.StockKey{AdvertiserID: adv, StoreID: store, ProductID: product}
	}
	beer := campaign("cmp_beer", "adv", "beer", 2000, "居酒屋")
	wine := campaign("cmp_wine", "adv", "wine", 2000, "ワイン")
	rival := campaign("cmp_rival", "adv2", "beer", 2000, "居酒屋")

	ix := NewIndex()
	if err := ix.Load([]*campaigns.Campaign{beer, wine, rival},
		[]*campaigns.Store{&near, &mid, &far, {ID: other.ID, AdvertiserID: "adv2", Name: other.Name, Lat: other.Lat, Lng: other.Lng, Products: other.Products}},
		[]campaigns.StockKey{out("adv", "mid", "beer"), out("adv2", "near", "beer")}); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, ix, nil)
	storeOf := func(q, campaignID string) string {
		t.Helper()
		for _, ad := range decide(t, e, Request{Lat: 35.6909, Lng: 139.7003, Query: q}) {
			if ad.Campaign.ID == campaignID {
				return ad.Store.ID()
			}
		}
		return ""
	}
	if got := storeOf("居酒屋", "cmp_beer"); got != "near" {
		t.Fatalf("before: beer at %q, want near", got)
	}

	// near closed down, mid back in stock, far out: mid wins; wine has no
	// store left.
	if err := ix.ReplaceStores(StoreSet{AdvertiserID: "adv", Stores: []campaigns.Store{far, mid}, OutOfStock: []campaigns.StockKey{out("adv", "far", "beer"), out("adv2", "x", "y")}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		q, campaign, want string
	}{
		{"居酒屋", "cmp_beer", "mid"},
		{"ワイン", "cmp_wine", ""},
		{"居酒屋", "cmp_rival", ""}, // adv2's marks are not adv's to replace
	}
	for _, tt := range tests {
		if got := storeOf(tt.q, tt.campaign); got != tt.want {
			t.Errorf("after replace: %s at %q, want %q", tt.campaign, got, tt.want)
		}
	}
	if got := ix.Snapshot().Stores(); got != 3 {
		t.Errorf("%d stores after replace, want 3", got)
	}
	if got := ix.Advertisers(); len(got) != 2 || got[0] != "adv" || got[1] != "adv2" {
		t.Errorf("Advertisers() = %v", got)
	}

	ix.ReplaceCampaigns([]*campaigns.Campaign{wine})
	if got := storeOf("居酒屋", "cmp_beer"); got != "" {
		t.Errorf("beer campaign still served after ReplaceCampaigns without it: %q", got)
	}
	if got := ix.Snapshot().Campaigns(); got != 1 {
		t.Errorf("%d campaigns, want 1", got)
	}
	// What the replacing campaigns are triggered by is theirs: wine's new
	// keyword, a new campaign's, and no longer a keyword dropped (the
	// keyword index was once left as it was).
	ix.ReplaceCampaigns([]*campaigns.Campaign{
		campaign("cmp_wine", "adv", "beer", 2000, "日本酒"), // now for beer, on another keyword
		campaign("cmp_cafe", "adv", "beer", 2000, "カフェ"),
	})
	for _, tt := range []struct{ q, campaign, want string }{
		{"日本酒", "cmp_wine", "mid"}, {"カフェ", "cmp_cafe", "mid"}, {"ワイン", "cmp_wine", ""}, {"居酒屋", "cmp_beer", ""},
	} {
		if got := storeOf(tt.q, tt.campaign); got != tt.want {
			t.Errorf("after replacing the campaigns: %s for %s at %q, want %q", tt.q, tt.campaign, got, tt.want)
		}
	}

	if err := ix.ReplaceStores(StoreSet{AdvertiserID: "adv"}); err != nil {
		t.Fatal(err)
	}
	if got := ix.Advertisers(); len(got) != 1 || got[0] != "adv2" {
		t.Errorf("Advertisers() after removing adv's stores = %v", got)
	}
}

// TestLargeUploadWithABadStoreChangesNothing: a large upload's stores are
// made ready on several goroutines; a store that cannot be indexed, however
// deep in the list, fails the whole upload and leaves the index as it was.
func TestLargeUploadWithABadStoreChangesNothing(t *testing.T) {
	ix := NewIndex()
	first := []campaigns.Store{{ID: "kept", Name: "kept", Lat: 35.69, Lng: 139.70, Products: []string{"beer"}}}
	if err := ix.PutStores("adv", first); err != nil {
		t.Fatal(err)
	}
	before := describeIndex(ix)
	var upload []campaigns.Store
	for i := range 10000 {
		upload = append(upload, campaigns.Store{ID: fmt.Sprintf("s%d", i), Name: "s", Lat: 35 + float64(i)/1e5, Lng: 139.7, Products: []string{"beer"}})
	}
	upload[9000].Lat = 91 // in the third of the upload's chunks
	if err := ix.PutStores("adv", upload); err == nil {
		t.Fatal("an upload with a store at latitude 91 was accepted")
	}
	if got := describeIndex(ix); got != before {
		t.Fatalf("a failed upload changed the index:\n got %.500s\nwant %.500s", got, before)
	}
	if n := ix.Snapshot().Stores(); n != 1 {
		t.Fatalf("%d stores after the failed upload, want 1", n)
	}
}

// TestStockDuringReplaceStoresIsKept: stock flips made while ReplaceStores
// (a replica's resync) rebuilds offers reach the rebuilt offers when they are
// installed, out and back in alike: none is lost to the marks the resync
// brought.
func TestStockDuringReplaceStoresIsKept(t *testing.T) {
	ix := NewIndex()
	near := campaigns.Store{ID: "near", Name: "near", Lat: 35.6901, Lng: 139.7000, Products: []string{"beer"}}
	mid := campaigns.Store{ID: "mid", Name: "mid", Lat: 35.6920, Lng: 139.7000, Products: []string{"beer"}}
	far := campaigns.Store{ID: "far", Name: "far", Lat: 35.6950, Lng: 139.7000, Products: []string{"beer"}}
	if err := ix.PutStores("adv", []campaigns.Store{near, mid, far}); err != nil {
		t.Fatal(err)
	}
	ix.PutCampaign(campaign("c", "adv", "beer", 1000, "居酒屋"))
	e := newEngine(t, ix, nil)
	target := func() string { return nearestTarget(t, e) }
	inRebuild, release := pauseRebuild(ix)
	done := make(chan error)
	go func() { // the resync says mid is out of stock
		done <- ix.ReplaceStores(StoreSet{AdvertiserID: "adv", Stores: []campaigns.Store{near, mid, far},
			OutOfStock: []campaigns.StockKey{{AdvertiserID: "adv", StoreID: "mid", ProductID: "beer"}}})
	}()
	<-inRebuild
	out, in := false, true
	waitFor(t, "stock write during a resync", func() {
		ix.SetStock("adv", []campaigns.StockUpdate{
			{StoreID: "near", ProductID: "beer", InStock: &out},
			{StoreID: "mid", ProductID: "beer", InStock: &in},
		})
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ix.rebuildHook = nil
	if got := target(); got != "mid" {
		t.Fatalf("after the resync: target %q, want mid (near went out and mid back in during it)", got)
	}
}

// TestLoadRefusesAWrittenIndex: Load fills a new index; on one that holds
// anything it would add to it (a campaign or a store gone from the catalog
// would still be served), so it refuses and changes nothing.
func TestLoadRefusesAWrittenIndex(t *testing.T) {
	st := func(id string) *campaigns.Store {
		return &campaigns.Store{ID: id, AdvertiserID: "adv", Name: id, Lat: 35.6910, Lng: 139.7003, Products: []string{"beer"}}
	}
	tests := []struct {
		name  string
		write func(t *testing.T, ix *Index)
	}{
		{"loaded", func(t *testing.T, ix *Index) {
			if err := ix.Load([]*campaigns.Campaign{campaign("cmp_old", "adv", "beer", 2000, "居酒屋")}, []*campaigns.Store{st("old")}, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"campaign put", func(t *testing.T, ix *Index) {
			ix.PutCampaign(campaign("cmp_old", "adv", "beer", 2000, "居酒屋"))
		}},
		{"stores put", func(t *testing.T, ix *Index) {
			if err := ix.PutStores("adv", []campaigns.Store{*st("old")}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := NewIndex()
			tt.write(t, ix)
			before := ix.Snapshot()
			err := ix.Load([]*campaigns.Campaign{campaign("cmp_new", "adv", "beer", 2000, "居酒屋")}, []*campaigns.Store{st("new")}, nil)
			if err == nil {
				t.Fatal("Load on a written index: nil error")
			}
			if ix.Snapshot() != before {
				t.Fatal("a refused Load published a new snapshot")
			}
			if _, ok := ix.campaigns["cmp_new"]; ok {
				t.Fatal("a refused Load added its campaign")
			}
		})
	}
}
