package demo_test

import (
	"errors"
	"testing"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/catalog"
	"github.com/navad/navad/internal/demo"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage/boltstore"
)

// TestLoadOnlyIntoADemoStore: the demo loads into a new store, and again
// into its own, but not into a store that holds other accounts, which its
// public keys would open; that store is left as it was.
func TestLoadOnlyIntoADemoStore(t *testing.T) {
	ctx := t.Context()
	open := func(dir string) (*boltstore.Store, *catalog.Service) {
		t.Helper()
		store, err := boltstore.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		keys, err := auth.NewKeys(store, demo.AdminKey)
		if err != nil {
			t.Fatal(err)
		}
		cat, err := catalog.New(store, serving.NewIndex(), keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		return store, cat
	}

	store, cat := open(t.TempDir())
	w, err := demo.Load(ctx, store, cat)
	if err != nil || w.BeerStores == 0 || w.CoffeeStores == 0 {
		t.Fatalf("into a new store: %+v, %v", w, err)
	}
	if _, err := demo.Load(ctx, store, cat); err != nil {
		t.Fatalf("again into the demo's own store: %v", err)
	}

	store, cat = open(t.TempDir())
	acme := &campaigns.Account{ID: "acme", Type: campaigns.Advertiser, Name: "Acme", KeyHashes: []string{auth.HashKey("acme-secret-key-0001")}}
	if err := store.CreateAccount(ctx, acme); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.Load(ctx, store, cat); !errors.Is(err, demo.ErrNotDemoStore) {
		t.Fatalf("into a store with another account: %v, want ErrNotDemoStore", err)
	}
	accts, err := store.Accounts(ctx)
	if err != nil || len(accts) != 1 || accts[0].ID != "acme" {
		t.Fatalf("the store after the refusal: %d accounts (%v), want acme alone", len(accts), err)
	}
}
