// Package storagetest is the contract test suite of storage.Catalog: one set
// of tests that every backend (the embedded bolt store, Redis) must pass, so
// that the service behaves the same whichever one it runs on. RunEvents is
// the same for storage.Events (events.go).
//
// A backend's test calls Run with a function that opens an empty Catalog:
//
//	func TestContract(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Catalog {
//			s, err := boltstore.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { _ = s.Close() })
//			return s
//		})
//	}
//
// Beyond the letter of storage.Catalog's comments, the suite holds backends
// to what the rest of navad relies on:
//
//   - what is read back equals what was written, field by field (times by
//     instant and zone offset, not by *time.Location; an empty slice of a store
//     may come back nil);
//   - a PutStock rejection quotes each unknown store ID in its row's message
//     as %q does;
//   - values returned are the caller's own: changing them, or the values
//     passed in, changes nothing stored;
//   - a store with an empty ID fails PutStores (any error) and nothing of the
//     call is written; among duplicate store IDs in one call the last wins, and
//     so does the last row for a (store, product) in one PutStock batch;
//   - a cancelled or expired context makes every method fail with an error
//     that wraps ctx.Err(), and an iteration stops soon after its context is
//     cancelled;
//   - after Close every method fails (Ping with Unavailable) without
//     panicking, and Close may be called again.
package storagetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// Run runs the contract suite as subtests of t. open must return a new, empty
// Catalog for each subtest and arrange for it to be closed when that subtest
// ends (t.Cleanup); the suite closes some itself first, so Close must
// tolerate a second call. Subtests run one after another, so backends that
// share a server may reset it in open. Under -short the 100,000-store test is
// skipped.
func Run(t *testing.T, open func(t *testing.T) storage.Catalog) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Accounts", accountTests},
		{"Campaigns", campaignTests},
		{"Stores", storeTests},
		{"Stock", stockTests},
		{"Lifecycle", lifecycleTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					if tt.long && testing.Short() {
						t.Skip("skipped under -short")
					}
					tt.run(t, open(t))
				})
			}
		})
	}
}

// test is one contract test, run on a fresh Catalog.
type test struct {
	name string
	run  func(t *testing.T, c storage.Catalog)
	long bool // skipped under -short
}

// MakeStores returns n valid, varied stores (advertiser unset) with IDs
// "s0000000", "s0000001", … in ID order. They look like a national chain:
// coordinates across Japan, three to eight of 2,000 products each, opening
// hours on one in ten. The same n always gives the same stores, so a backend's
// benchmarks can use them too.
func MakeStores(n int) []campaigns.Store {
	r := rand.New(rand.NewPCG(uint64(n), 0x6e61766164))
	stores := make([]campaigns.Store, n)
	for i := range stores {
		s := &stores[i]
		s.ID = fmt.Sprintf("s%07d", i)
		s.Name = fmt.Sprintf("ファミリーストア 新宿%d丁目店", i%100)
		s.Address = fmt.Sprintf("東京都新宿区西新宿%d-%d-%d", 1+i%8, 1+r.IntN(30), 1+r.IntN(20))
		s.Lat = 26 + r.Float64()*19 // Okinawa to Hokkaido
		s.Lng = 127 + r.Float64()*18
		s.Products = make([]string, 3+r.IntN(6))
		for j := range s.Products {
			s.Products[j] = fmt.Sprintf("prod-%04d", r.IntN(2000))
		}
		if i%10 == 0 {
			s.Hours = campaigns.Hours{
				{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "07:00", To: "23:00"},
				{Days: []string{"sat", "sun"}, From: "09:00", To: "02:00"},
			}
		}
	}
	return stores
}

// wantCode fails the test unless err carries the *campaigns.Error code want.
func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := campaigns.ErrorCode(err); got != want {
		t.Fatalf("error code = %q (err %v), want %q", got, err, want)
	}
}

// mustStock returns a check of a PutStock's result: no error, and no
// stale rows (rows without an AsOf are never stale).
func mustStock(t *testing.T) func(stale []int, err error) {
	return func(stale []int, err error) {
		t.Helper()
		must(t, err)
		if len(stale) != 0 {
			t.Fatalf("PutStock: rows %v stale, none carried a time", stale)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sameTime reports whether a and b are the same instant with the same zone
// offset, which is what a backend must keep of a time.Time.
func sameTime(a, b time.Time) bool {
	_, oa := a.Zone()
	_, ob := b.Zone()
	return a.Equal(b) && oa == ob && a.IsZero() == b.IsZero()
}

// diff fails the test with both values as JSON when got is not want.
func diff(t *testing.T, what string, got, want any) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, _ := json.MarshalIndent(got, "", "  ")
	w, _ := json.MarshalIndent(want, "", "  ")
	t.Fatalf("%s differs\n got: %s\nwant: %s\n(Go syntax got %#v\nwant %#v)", what, g, w, got, want)
}

// wantAccount compares every field of two accounts: times by instant and
// offset, key hashes in any order (their order is not part of the contract).
func wantAccount(t *testing.T, got, want *campaigns.Account) {
	t.Helper()
	if got == nil {
		t.Fatalf("account %q: got nil", want.ID)
	}
	if !sameTime(got.CreatedAt, want.CreatedAt) {
		t.Fatalf("account %q CreatedAt = %v, want %v", want.ID, got.CreatedAt, want.CreatedAt)
	}
	g, w := *got, *want
	g.CreatedAt, w.CreatedAt = time.Time{}, time.Time{}
	g.KeyHashes, w.KeyHashes = sortedOrNil(g.KeyHashes), sortedOrNil(w.KeyHashes)
	diff(t, "account "+want.ID, g, w)
}

func sortedOrNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// wantCampaign compares every field of two campaigns, times by instant and
// offset.
func wantCampaign(t *testing.T, got, want *campaigns.Campaign) {
	t.Helper()
	if got == nil {
		t.Fatalf("campaign %q: got nil", want.ID)
	}
	g, w := *got, *want
	for _, p := range []struct {
		name      string
		got, want *time.Time
	}{
		{"Start", &g.Start, &w.Start},
		{"End", &g.End, &w.End},
		{"CreatedAt", &g.CreatedAt, &w.CreatedAt},
		{"UpdatedAt", &g.UpdatedAt, &w.UpdatedAt},
	} {
		if !sameTime(*p.got, *p.want) {
			t.Fatalf("campaign %q %s = %v, want %v", want.ID, p.name, *p.got, *p.want)
		}
		*p.got, *p.want = time.Time{}, time.Time{}
	}
	diff(t, "campaign "+want.ID, g, w)
}

// wantStore compares two stores, taking empty and nil slices as equal.
func wantStore(t *testing.T, got, want *campaigns.Store) {
	t.Helper()
	if got == nil {
		t.Fatalf("store %q: got nil", want.ID)
	}
	diff(t, "store "+want.AdvertiserID+"/"+want.ID, normStore(*got), normStore(*want))
}

func normStore(s campaigns.Store) campaigns.Store {
	if len(s.Products) == 0 {
		s.Products = nil
	}
	if len(s.Hours) == 0 {
		s.Hours = nil
	} else {
		s.Hours = slices.Clone(s.Hours)
		for i := range s.Hours {
			if len(s.Hours[i].Days) == 0 {
				s.Hours[i].Days = nil
			}
		}
	}
	return s
}

// collectStores returns what Stores visits, failing the test on an error.
func collectStores(t *testing.T, c storage.Catalog, advertiserID string) []*campaigns.Store {
	t.Helper()
	var got []*campaigns.Store
	must(t, c.Stores(t.Context(), advertiserID, func(s *campaigns.Store) bool {
		got = append(got, s)
		return true
	}))
	return got
}

// collectOut returns what OutOfStock visits, sorted (its order is not part
// of the contract).
func collectOut(t *testing.T, c storage.Catalog, advertiserID string) []campaigns.StockKey {
	t.Helper()
	var got []campaigns.StockKey
	must(t, c.OutOfStock(t.Context(), advertiserID, func(k campaigns.StockKey) bool {
		got = append(got, k)
		return true
	}))
	slices.SortFunc(got, compareStockKeys)
	return got
}

func compareStockKeys(a, b campaigns.StockKey) int {
	if c := strings.Compare(a.AdvertiserID, b.AdvertiserID); c != 0 {
		return c
	}
	if c := strings.Compare(a.StoreID, b.StoreID); c != 0 {
		return c
	}
	return strings.Compare(a.ProductID, b.ProductID)
}

// store returns a small valid store.
func store(id, name string, products ...string) campaigns.Store {
	if len(products) == 0 {
		products = []string{"beer-350"}
	}
	return campaigns.Store{ID: id, Name: name, Lat: 35.6909, Lng: 139.7003, Products: products}
}

// withAdvertiser returns copies of stores with AdvertiserID set.
func withAdvertiser(advertiserID string, stores ...campaigns.Store) []campaigns.Store {
	out := slices.Clone(stores)
	for i := range out {
		out[i].AdvertiserID = advertiserID
	}
	return out
}

func ptr[T any](v T) *T { return &v }
