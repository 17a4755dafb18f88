package auth

import (
	"context"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// lookup is a storage.Catalog whose key lookup answers from a map of hash
// to account; it counts lookups. Other methods are not called.
type lookup struct {
	storage.Catalog
	byHash map[string]*campaigns.Account
	calls  int
}

func (l *lookup) AccountByKeyHash(_ context.Context, h string) (*campaigns.Account, error) {
	l.calls++
	if a, ok := l.byHash[h]; ok {
		return a, nil
	}
	return nil, campaigns.Errorf(campaigns.NotFound, "no account")
}

func TestAuthenticate(t *testing.T) {
	const key, other = "nvd_the_real_key", "nvd_another_key"
	acct := &campaigns.Account{ID: "adv_1", Type: campaigns.Advertiser, KeyHashes: []string{HashKey(key)}}
	// A backend that answers the hash of other with an account that does
	// not hold it (a broken index, a prefix match): the constant-time
	// comparison against the account's own hashes must still refuse.
	l := &lookup{byHash: map[string]*campaigns.Account{HashKey(key): acct, HashKey(other): acct}}
	k, err := NewKeys(l, "an-admin-key-of-16+")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	k.now = func() time.Time { return now }

	tests := []struct {
		name, give string
		wantID     string // "" means refused with unauthenticated
	}{
		{"the account's key", key, "adv_1"},
		{"the admin key", "an-admin-key-of-16+", AdminID},
		{"a key the backend mismatches", other, ""},
		{"an unknown key", "nvd_unknown", ""},
		{"an empty key", "", ""},
		{"the hash itself", HashKey(key), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := k.Authenticate(context.Background(), tt.give)
			if tt.wantID == "" {
				if campaigns.ErrorCode(err) != campaigns.Unauthenticated || p != nil {
					t.Fatalf("got %+v, %v; want unauthenticated", p, err)
				}
				return
			}
			if err != nil || p.ID != tt.wantID {
				t.Fatalf("got %+v, %v; want %s", p, err, tt.wantID)
			}
		})
	}
	// Answers are cached for a few seconds, then looked up again; Forget
	// drops them at once (a rotation on this replica).
	calls := l.calls
	_, _ = k.Authenticate(context.Background(), key)
	if l.calls != calls {
		t.Fatal("a cached key was looked up again")
	}
	acct.KeyHashes = nil // revoked in storage
	now = now.Add(cacheTTL + time.Second)
	if _, err := k.Authenticate(context.Background(), key); err == nil {
		t.Fatal("a revoked key worked after the cache expired")
	}
	acct.KeyHashes = []string{HashKey(key)}
	k.Forget()
	if _, err := k.Authenticate(context.Background(), key); err != nil {
		t.Fatalf("after Forget: %v", err)
	}
}
