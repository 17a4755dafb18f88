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
	// afterRead, when set, runs once a lookup has read its answer and
	// before it returns: a key change committed in that gap.
	afterRead func()
}

func (l *lookup) AccountByKeyHash(_ context.Context, h string) (*campaigns.Account, error) {
	l.calls++
	a, ok := l.byHash[h]
	if l.afterRead != nil {
		l.afterRead()
	}
	if ok {
		return a, nil
	}
	return nil, campaigns.Errorf(campaigns.NotFound, "no account")
}

// TestForgetDuringLookup: a key rotated (and the cache forgotten) while a
// lookup of the old key is between its read and its caching stops working
// at once, as a revocation must on the replica that made it. Before, the
// lookup cached the answer it had read, and the old key went on working
// for the cache's lifetime.
func TestForgetDuringLookup(t *testing.T) {
	const old, fresh = "nvd_the_old_key", "nvd_the_new_key"
	acct := &campaigns.Account{ID: "adv_1", Type: campaigns.Advertiser, KeyHashes: []string{HashKey(old)}}
	l := &lookup{byHash: map[string]*campaigns.Account{HashKey(old): acct}}
	k, err := NewKeys(l, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, forget := range []struct {
		name string
		call func()
	}{{"Forget", k.Forget}, {"ForgetAccount", func() { k.ForgetAccount("adv_1") }}} {
		t.Run(forget.name, func(t *testing.T) {
			acct.KeyHashes = []string{HashKey(old)}
			l.byHash = map[string]*campaigns.Account{HashKey(old): acct}
			k.Forget()
			l.afterRead = func() {
				l.afterRead = nil
				rotated := &campaigns.Account{ID: acct.ID, Type: acct.Type, KeyHashes: []string{HashKey(fresh)}}
				l.byHash = map[string]*campaigns.Account{HashKey(fresh): rotated}
				forget.call()
			}
			if _, err := k.Authenticate(context.Background(), old); err != nil {
				t.Fatalf("the lookup that raced the rotation: %v (it read the old state, so it may pass)", err)
			}
			if p, err := k.Authenticate(context.Background(), old); campaigns.ErrorCode(err) != campaigns.Unauthenticated {
				t.Fatalf("the old key after its rotation: %+v, %v; want unauthenticated", p, err)
			}
			if p, err := k.Authenticate(context.Background(), fresh); err != nil || p.ID != "adv_1" {
				t.Fatalf("the new key: %+v, %v", p, err)
			}
		})
	}
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
