package storagetest

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

var storeTests = []test{
	{name: "RoundTrip", run: testStoreRoundTrip},
	{name: "Upsert", run: testStoreUpsert},
	{name: "DuplicateIDsLastWins", run: testStoreDuplicates},
	{name: "AllOrNothing", run: testStoreAllOrNothing},
	{name: "AllOrNothingUnderCancel", run: testStoreAllOrNothingCancel},
	{name: "AdvertiserIsolation", run: testStoreIsolation},
	{name: "IterationOrder", run: testStoreOrder},
	{name: "EarlyStop", run: testStoreEarlyStop},
	{name: "CallerKeepsStores", run: testStoreKeep},
	{name: "NotFound", run: testStoreNotFound},
	{name: "DeleteRemovesStock", run: testStoreDeleteRemovesStock},
	{name: "EmptyCalls", run: testStoreEmptyCalls},
	{name: "Bulk100k", run: testStoreBulk, long: true},
}

func testStoreRoundTrip(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	full := campaigns.Store{
		ID:       "tokyo-001",
		Name:     "居酒屋 いろは 新宿東口店",
		Address:  "東京都新宿区新宿3-1-1 B1F",
		Lat:      35.690921123456789,
		Lng:      139.700258987654321,
		Products: []string{"beer-350", "beer-500", "highball"},
		Hours: campaigns.Hours{
			{Days: []string{"mon", "tue", "wed", "thu"}, From: "17:00", To: "24:00"},
			{Days: []string{"fri", "sat"}, From: "17:00", To: "05:00"},
			{From: "11:30", To: "14:00"},
		},
	}
	tests := []struct {
		name string
		give campaigns.Store
	}{
		{"every field", full},
		{"no address no hours", store("s-min", "Mini", "coffee-185")},
		{"negative coordinates", campaigns.Store{ID: "s-south", Name: "South", Lat: -33.8688, Lng: -151.2093, Products: []string{"p"}}},
		{"advertiser in input is overridden", campaigns.Store{ID: "s-other", AdvertiserID: "adv_other", Name: "Other", Lat: 1, Lng: 2, Products: []string{"p"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			must(t, c.PutStores(ctx, "adv_1", []campaigns.Store{tt.give}))
			want := tt.give
			want.AdvertiserID = "adv_1"
			got, err := c.Store(ctx, "adv_1", tt.give.ID)
			must(t, err)
			wantStore(t, got, &want)

			found := false
			for _, s := range collectStores(t, c, "adv_1") {
				if s.ID == want.ID {
					wantStore(t, s, &want)
					found = true
				}
			}
			if !found {
				t.Fatalf("Stores lacks %q", want.ID)
			}
		})
	}
	_, err := c.Store(ctx, "adv_other", "s-other")
	wantCode(t, err, campaigns.NotFound)
}

func testStoreUpsert(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	s1, s2, s3 := store("s1", "One"), store("s2", "Two"), store("s3", "Three")
	must(t, c.PutStores(ctx, "adv_1", []campaigns.Store{s1, s2}))
	s2b := store("s2", "Two renamed", "highball", "beer-500")
	s2b.Hours = campaigns.Hours{{From: "10:00", To: "20:00"}}
	must(t, c.PutStores(ctx, "adv_1", []campaigns.Store{s3, s2b}))

	got := collectStores(t, c, "adv_1")
	want := withAdvertiser("adv_1", s1, s2b, s3)
	if len(got) != len(want) {
		t.Fatalf("%d stores after upsert, want %d", len(got), len(want))
	}
	for i := range want {
		wantStore(t, got[i], &want[i])
	}
	// An upsert that drops hours drops them.
	must(t, c.PutStores(ctx, "adv_1", []campaigns.Store{store("s2", "Two again")}))
	g, err := c.Store(ctx, "adv_1", "s2")
	must(t, err)
	wantStore(t, g, &withAdvertiser("adv_1", store("s2", "Two again"))[0])
}

func testStoreDuplicates(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.PutStores(ctx, "adv_1", []campaigns.Store{
		store("s1", "first"), store("s2", "other"), store("s1", "second"), store("s1", "last"),
	}))
	got := collectStores(t, c, "adv_1")
	want := withAdvertiser("adv_1", store("s1", "last"), store("s2", "other"))
	if len(got) != 2 {
		t.Fatalf("%d stores, want 2", len(got))
	}
	for i := range want {
		wantStore(t, got[i], &want[i])
	}

	// Many duplicates in scrambled order: still the last of each wins.
	var give []campaigns.Store
	for round := range 4 {
		for i := range 50 {
			id := fmt.Sprintf("d%02d", (i*7+round*13)%50)
			give = append(give, store(id, fmt.Sprintf("round %d", round)))
		}
	}
	must(t, c.PutStores(ctx, "adv_2", give))
	got = collectStores(t, c, "adv_2")
	if len(got) != 50 {
		t.Fatalf("%d stores, want 50", len(got))
	}
	for _, s := range got {
		if s.Name != "round 3" {
			t.Fatalf("store %s is %q, want the last upload's %q", s.ID, s.Name, "round 3")
		}
	}
}

func testStoreAllOrNothing(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	old := store("s1", "old name")
	must(t, c.PutStores(ctx, "adv_1", []campaigns.Store{old}))
	tests := []struct {
		name string
		give []campaigns.Store
	}{
		{"bad row last", []campaigns.Store{store("s1", "new name"), store("s9", "Nine"), store("", "no id")}},
		{"bad row first", []campaigns.Store{store("", "no id"), store("s1", "new name"), store("s9", "Nine")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.PutStores(ctx, "adv_1", tt.give); err == nil {
				t.Fatal("PutStores with an empty store ID succeeded")
			}
			got := collectStores(t, c, "adv_1")
			if len(got) != 1 {
				t.Fatalf("%d stores after a refused upload, want the 1 from before", len(got))
			}
			wantStore(t, got[0], &withAdvertiser("adv_1", old)[0])
			_, err := c.Store(ctx, "adv_1", "s9")
			wantCode(t, err, campaigns.NotFound)
		})
	}
}

// testStoreAllOrNothingCancel cancels big uploads at various moments: each
// must land whole or not at all, whenever the cancel strikes.
func testStoreAllOrNothingCancel(t *testing.T, c storage.Catalog) {
	stores := MakeStores(20000)
	for i, d := range []time.Duration{0, 200 * time.Microsecond, time.Millisecond, 5 * time.Millisecond, 25 * time.Millisecond, 100 * time.Millisecond} {
		adv := fmt.Sprintf("adv_%d", i)
		ctx, cancel := context.WithTimeout(t.Context(), d)
		err := c.PutStores(ctx, adv, stores)
		cancel()
		n := len(collectStores(t, c, adv))
		switch {
		case err == nil && n != len(stores):
			t.Fatalf("timeout %v: PutStores succeeded but %d of %d stores are there", d, n, len(stores))
		case err != nil && n != 0:
			t.Fatalf("timeout %v: PutStores failed (%v) but %d stores are there", d, err, n)
		}
		t.Logf("timeout %v: err %v, %d stores", d, err, n)
	}
}

func testStoreIsolation(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	a := store("s1", "A's store", "beer-350")
	b := store("s1", "B's store", "coffee-185")
	b.Lat, b.Lng = 34.7025, 135.4959
	colliding := store("s1", "prefix-colliding advertiser's store")
	must(t, c.PutStores(ctx, "adv", []campaigns.Store{a}))
	must(t, c.PutStores(ctx, "adv2", []campaigns.Store{b}))
	must(t, c.PutStores(ctx, "adv:", []campaigns.Store{colliding}))

	for _, tt := range []struct {
		adv  string
		want campaigns.Store
	}{{"adv", a}, {"adv2", b}, {"adv:", colliding}} {
		want := withAdvertiser(tt.adv, tt.want)[0]
		got, err := c.Store(ctx, tt.adv, "s1")
		must(t, err)
		wantStore(t, got, &want)
		list := collectStores(t, c, tt.adv)
		if len(list) != 1 {
			t.Fatalf("Stores(%q) visits %d stores, want 1", tt.adv, len(list))
		}
		wantStore(t, list[0], &want)
	}

	// Stock and deletes of one advertiser leave the others alone.
	mustStock(t)(c.PutStock(ctx, "adv2", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "coffee-185", InStock: ptr(false)}}))
	if got := collectOut(t, c, "adv"); len(got) != 0 {
		t.Fatalf("OutOfStock(adv) = %v, want none (the row was adv2's)", got)
	}
	must(t, c.DeleteStore(ctx, "adv", "s1"))
	_, err := c.Store(ctx, "adv", "s1")
	wantCode(t, err, campaigns.NotFound)
	for _, adv := range []string{"adv2", "adv:"} {
		if _, err := c.Store(ctx, adv, "s1"); err != nil {
			t.Fatalf("deleting adv's s1 affected %s's: %v", adv, err)
		}
	}
	diff(t, "OutOfStock(adv2)", collectOut(t, c, "adv2"), []campaigns.StockKey{{AdvertiserID: "adv2", StoreID: "s1", ProductID: "coffee-185"}})
}

func testStoreOrder(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	// IDs chosen to catch a key layout whose byte order is not the order of
	// (advertiser, store ID): advertisers that extend one another with
	// characters that sort below and above letters and digits.
	advs := []string{"a", "a-", "a.", "a:", "a_", "a0", "ab", "b", "A"}
	ids := []string{"z", "a", "a:", "a-b", "a.b", "0", "Z", "aa", "a_"}
	type key struct{ adv, id string }
	var want []key
	r := rand.New(rand.NewPCG(1, 2))
	perm := r.Perm(len(advs) * len(ids))
	batches := map[string][]campaigns.Store{}
	for _, p := range perm {
		adv, id := advs[p/len(ids)], ids[p%len(ids)]
		batches[adv] = append(batches[adv], store(id, adv+"/"+id))
		want = append(want, key{adv, id})
	}
	for _, adv := range advs[len(advs)/2:] { // some advertisers in two calls
		half := len(batches[adv]) / 2
		must(t, c.PutStores(ctx, adv, batches[adv][:half]))
		batches[adv] = batches[adv][half:]
	}
	for _, p := range r.Perm(len(advs)) {
		must(t, c.PutStores(ctx, advs[p], batches[advs[p]]))
	}
	slices.SortFunc(want, func(x, y key) int { return cmp.Or(cmp.Compare(x.adv, y.adv), cmp.Compare(x.id, y.id)) })

	keys := func(list []*campaigns.Store) []key {
		var out []key
		for _, s := range list {
			if s.Name != s.AdvertiserID+"/"+s.ID {
				t.Fatalf("store %s/%s carries the name %q of another", s.AdvertiserID, s.ID, s.Name)
			}
			out = append(out, key{s.AdvertiserID, s.ID})
		}
		return out
	}
	diff(t, "Stores(\"\") order", keys(collectStores(t, c, "")), want)
	for _, adv := range advs {
		var wantAdv []key
		for _, k := range want {
			if k.adv == adv {
				wantAdv = append(wantAdv, k)
			}
		}
		diff(t, "Stores("+adv+") order", keys(collectStores(t, c, adv)), wantAdv)
	}
}

func testStoreEarlyStop(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	// More stores than a backend is likely to read in one chunk.
	stores := MakeStores(3000)
	must(t, c.PutStores(ctx, "adv_1", stores))
	must(t, c.PutStores(ctx, "adv_2", stores[:10]))
	tests := []struct {
		adv  string
		stop int // fn returns false on this call
	}{
		{"adv_1", 1},
		{"adv_1", 3},
		{"adv_1", 1024},
		{"adv_1", 1025},
		{"adv_1", 2999},
		{"", 3005},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s stop at %d", tt.adv, tt.stop), func(t *testing.T) {
			calls := 0
			var last *campaigns.Store
			must(t, c.Stores(ctx, tt.adv, func(s *campaigns.Store) bool {
				calls++
				last = s
				return calls < tt.stop
			}))
			if calls != tt.stop {
				t.Fatalf("fn called %d times, want %d", calls, tt.stop)
			}
			wantAdv, wantID := "adv_1", stores[(tt.stop-1)%len(stores)].ID
			if tt.stop > len(stores) {
				wantAdv = "adv_2"
				wantID = stores[tt.stop-len(stores)-1].ID
			}
			if last.AdvertiserID != wantAdv || last.ID != wantID {
				t.Fatalf("last store visited %s/%s, want %s/%s", last.AdvertiserID, last.ID, wantAdv, wantID)
			}
		})
	}
}

// testStoreKeep keeps every *Store of a long iteration, as the serving index
// does, and checks none was reused or changed behind its back.
func testStoreKeep(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	stores := MakeStores(5000)
	must(t, c.PutStores(ctx, "adv_1", stores))
	got := collectStores(t, c, "adv_1")
	if len(got) != len(stores) {
		t.Fatalf("%d stores visited, want %d", len(got), len(stores))
	}
	// Changing one kept store must not change another.
	got[0].Products[0] = "changed"
	got[0].Name = "changed"
	want := withAdvertiser("adv_1", stores...)
	for i := 1; i < len(want); i++ {
		wantStore(t, got[i], &want[i])
	}
	// Nor what is stored.
	s, err := c.Store(ctx, "adv_1", stores[0].ID)
	must(t, err)
	wantStore(t, s, &want[0])
}

func testStoreNotFound(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.PutStores(ctx, "adv_1", []campaigns.Store{store("s1", "One"), store("s10", "Ten")}))
	must(t, c.PutStores(ctx, "adv_2", []campaigns.Store{store("s2", "Two")}))
	tests := []struct{ adv, id string }{
		{"adv_1", "s2"},   // another advertiser's store
		{"adv_1", "s"},    // a prefix of a store ID
		{"adv_1", "s100"}, // an extension of one
		{"adv_9", "s1"},   // unknown advertiser
		{"adv_", "s1"},    // prefix of an advertiser
		{"", "s1"},
		{"adv_1", ""},
	}
	for _, tt := range tests {
		_, err := c.Store(ctx, tt.adv, tt.id)
		wantCode(t, err, campaigns.NotFound)
		wantCode(t, c.DeleteStore(ctx, tt.adv, tt.id), campaigns.NotFound)
	}
	if n := len(collectStores(t, c, "")); n != 3 {
		t.Fatalf("%d stores after failed deletes, want 3", n)
	}
	must(t, c.DeleteStore(ctx, "adv_1", "s1"))
	wantCode(t, c.DeleteStore(ctx, "adv_1", "s1"), campaigns.NotFound)
	_, err := c.Store(ctx, "adv_1", "s1")
	wantCode(t, err, campaigns.NotFound)
}

func testStoreDeleteRemovesStock(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.PutStores(ctx, "adv", []campaigns.Store{store("s1", "1"), store("s1-b", "1b"), store("s2", "2")}))
	must(t, c.PutStores(ctx, "adv2", []campaigns.Store{store("s1", "other")}))
	out := func(store, product string) campaigns.StockUpdate {
		return campaigns.StockUpdate{StoreID: store, ProductID: product, InStock: ptr(false)}
	}
	mustStock(t)(c.PutStock(ctx, "adv", []campaigns.StockUpdate{
		out("s1", "p1"), out("s1", "p2"), out("s1-b", "p1"), out("s2", "p1"),
	}))
	mustStock(t)(c.PutStock(ctx, "adv2", []campaigns.StockUpdate{out("s1", "p1")}))

	must(t, c.DeleteStore(ctx, "adv", "s1"))
	diff(t, "out of stock after delete", collectOut(t, c, ""), []campaigns.StockKey{
		{AdvertiserID: "adv", StoreID: "s1-b", ProductID: "p1"},
		{AdvertiserID: "adv", StoreID: "s2", ProductID: "p1"},
		{AdvertiserID: "adv2", StoreID: "s1", ProductID: "p1"},
	})
	// A store created again under the same ID starts with clean stock.
	must(t, c.PutStores(ctx, "adv", []campaigns.Store{store("s1", "reopened")}))
	for _, k := range collectOut(t, c, "adv") {
		if k.StoreID == "s1" {
			t.Fatalf("re-created store inherited stock row %+v", k)
		}
	}
}

func testStoreEmptyCalls(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.PutStores(ctx, "adv_1", nil))
	must(t, c.PutStores(ctx, "adv_1", []campaigns.Store{}))
	for _, adv := range []string{"adv_1", "nobody", ""} {
		if n := len(collectStores(t, c, adv)); n != 0 {
			t.Fatalf("Stores(%q) visits %d stores in an empty catalog", adv, n)
		}
	}
}

// testStoreBulk is a national chain's upload: 100,000 stores in one call.
func testStoreBulk(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	const n = 100000
	stores := MakeStores(n)
	start := time.Now()
	must(t, c.PutStores(ctx, "adv_chain", stores))
	put := time.Since(start)

	start = time.Now()
	got := collectStores(t, c, "adv_chain")
	load := time.Since(start)
	t.Logf("PutStores of %d stores: %v; Stores: %v", n, put, load)
	if len(got) != n {
		t.Fatalf("%d stores visited, want %d", len(got), n)
	}
	want := withAdvertiser("adv_chain", stores...)
	for i := range want {
		wantStore(t, got[i], &want[i])
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		s, err := c.Store(ctx, "adv_chain", stores[i].ID)
		must(t, err)
		wantStore(t, s, &want[i])
	}
}
