package auth

import (
	"context"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// flakyCatalog answers key lookups from a map, or Unavailable while down.
type flakyCatalog struct {
	storage.Catalog // only AccountByKeyHash is called
	accounts        map[string]*campaigns.Account
	down            bool
}

func (c *flakyCatalog) AccountByKeyHash(_ context.Context, h string) (*campaigns.Account, error) {
	if c.down {
		return nil, campaigns.Errorf(campaigns.Unavailable, "store down")
	}
	if a, ok := c.accounts[h]; ok {
		return a, nil
	}
	return nil, campaigns.Errorf(campaigns.NotFound, "no")
}

func TestKeysDuringStoreOutage(t *testing.T) {
	pub := &campaigns.Account{ID: "pub_1", Type: campaigns.Publisher, KeyHashes: []string{HashKey("pub-key")}}
	cat := &flakyCatalog{accounts: map[string]*campaigns.Account{HashKey("pub-key"): pub}}
	k, err := NewKeys(cat, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	k.now = func() time.Time { return now }
	ctx := context.Background()

	if p, err := k.Authenticate(ctx, "pub-key"); err != nil || p.ID != "pub_1" {
		t.Fatalf("before the outage: %v, %v", p, err)
	}
	if _, err := k.Authenticate(ctx, "bad-key"); campaigns.ErrorCode(err) != campaigns.Unauthenticated {
		t.Fatalf("bad key before the outage: %v", err)
	}

	cat.down = true
	now = now.Add(time.Hour) // every cached answer has expired
	tests := []struct {
		give, want string // want: principal ID or error code
	}{
		{"pub-key", "pub_1"},                      // known good: still served
		{"bad-key", campaigns.Unauthenticated},    // known bad: still refused
		{"never-seen-key", campaigns.Unavailable}, // unknown: cannot tell
	}
	for _, tt := range tests {
		p, err := k.Authenticate(ctx, tt.give)
		got := campaigns.ErrorCode(err)
		if err == nil {
			got = p.ID
		}
		if got != tt.want {
			t.Errorf("%s during the outage: %s, want %s", tt.give, got, tt.want)
		}
	}

	// Another replica revoked the key; this one hears of it.
	cat.down = false
	delete(cat.accounts, HashKey("pub-key"))
	now = now.Add(time.Second) // within the cache's lifetime
	k.ForgetAccount("pub_1")
	if _, err := k.Authenticate(ctx, "pub-key"); campaigns.ErrorCode(err) != campaigns.Unauthenticated {
		t.Fatalf("revoked key after ForgetAccount: %v", err)
	}
}
