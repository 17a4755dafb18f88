// Package auth turns API keys into principals and decides what a principal
// may touch. Keys are never stored: only their SHA-256 hashes, compared in
// constant time.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// AdminID is the account ID of the admin principal, whose key comes from
// configuration rather than storage.
const AdminID = "admin"

// Principal is the account a request acts as.
type Principal struct {
	ID       string
	Role     campaigns.Role
	AgencyID string // for an advertiser managed by an agency
}

// IsAdmin reports whether p is the media company's admin.
func (p *Principal) IsAdmin() bool { return p.Role == campaigns.Admin }

// HashKey returns the hex SHA-256 of an API key. Keys are 256-bit random
// secrets, so a plain hash (no salt, no stretching) cannot be reversed.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Keys authenticates API keys against the catalog, with a short-lived cache
// so that the decision path costs one hash and one map lookup.
type Keys struct {
	catalog   storage.Catalog
	adminHash string
	ttl       time.Duration
	now       func() time.Time

	mu    sync.RWMutex
	cache map[[sha256.Size]byte]cachedKey // by the key's SHA-256: no allocation a request
	// forgotten counts Forget and ForgetAccount calls: an answer read
	// from storage before one of them may be the state it made stale
	// (a rotation committed between the read and the caching), so it is
	// cached only if the count did not move meanwhile.
	forgotten uint64
}

type cachedKey struct {
	p       *Principal // nil: known bad key
	expires time.Time
}

// cacheTTL bounds how long a revoked key keeps working on a replica that
// did not see the revocation.
const cacheTTL = 5 * time.Second

// maxCached bounds the cache against floods of random keys.
const maxCached = 100_000

// NewKeys returns an authenticator. adminKey may be "" (no admin access).
func NewKeys(catalog storage.Catalog, adminKey string) (*Keys, error) {
	if catalog == nil {
		return nil, errors.New("new keys: catalog is required")
	}
	k := &Keys{catalog: catalog, ttl: cacheTTL, now: time.Now, cache: make(map[[sha256.Size]byte]cachedKey)}
	if adminKey != "" {
		k.adminHash = HashKey(adminKey)
	}
	return k, nil
}

// Authenticate returns the principal holding key. Unauthenticated when the
// key is empty or unknown; Unavailable when storage cannot answer.
func (k *Keys) Authenticate(ctx context.Context, key string) (*Principal, error) {
	if key == "" {
		return nil, campaigns.Errorf(campaigns.Unauthenticated, "an API key is required: Authorization: Bearer <key>")
	}
	sum := sha256.Sum256([]byte(key))
	now := k.now()
	k.mu.RLock()
	c, ok := k.cache[sum]
	gen := k.forgotten
	k.mu.RUnlock()
	if ok && now.Before(c.expires) {
		if c.p == nil {
			return nil, badKey()
		}
		return c.p, nil
	}
	h := hex.EncodeToString(sum[:])
	if k.adminHash != "" && subtle.ConstantTimeCompare([]byte(h), []byte(k.adminHash)) == 1 {
		return &Principal{ID: AdminID, Role: campaigns.Admin}, nil
	}
	acct, err := k.catalog.AccountByKeyHash(ctx, h)
	var p *Principal
	switch {
	case campaigns.ErrorCode(err) == campaigns.NotFound:
	case campaigns.ErrorCode(err) == campaigns.Unavailable && ok:
		// The store is out of reach (a Redis outage): go on with the last
		// answer it gave, so that publishers keep getting decisions from
		// memory. A key revoked during the outage keeps working until the
		// store is back, on replicas that had it cached.
		if c.p == nil {
			return nil, badKey()
		}
		return c.p, nil
	case err != nil:
		return nil, err
	default:
		// The lookup was by hash; compare again in constant time so that
		// a backend's lookup can never be the only check.
		for _, stored := range acct.KeyHashes {
			if subtle.ConstantTimeCompare([]byte(stored), []byte(h)) == 1 {
				p = &Principal{ID: acct.ID, Role: acct.Type, AgencyID: acct.AgencyID}
			}
		}
	}
	k.mu.Lock()
	if k.forgotten == gen {
		if len(k.cache) >= maxCached {
			clear(k.cache)
		}
		k.cache[sum] = cachedKey{p: p, expires: now.Add(k.ttl)}
	}
	k.mu.Unlock()
	if p == nil {
		return nil, badKey()
	}
	return p, nil
}

// Forget drops cached answers, so that a key change made on this replica
// takes effect at once.
func (k *Keys) Forget() {
	k.mu.Lock()
	clear(k.cache)
	k.forgotten++
	k.mu.Unlock()
}

// ForgetAccount drops the cached answers for one account's keys, and every
// cached refusal: a replica calls it when another replica changed that
// account's keys, so that a revoked key stops working (and a new one starts)
// here within the feed's delay rather than the cache's lifetime.
func (k *Keys) ForgetAccount(id string) {
	k.mu.Lock()
	for h, c := range k.cache {
		if c.p == nil || c.p.ID == id {
			delete(k.cache, h)
		}
	}
	k.forgotten++
	k.mu.Unlock()
}

func badKey() error {
	return campaigns.Errorf(campaigns.Unauthenticated, "the API key is not valid")
}
