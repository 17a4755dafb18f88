package campaigns

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
)

// Role is what an account is in the business.
type Role string

// Roles.
const (
	Admin      Role = "admin"      // the media company that runs navad
	Agency     Role = "agency"     // manages advertisers' campaigns
	Advertiser Role = "advertiser" // owns campaigns, stores and stock
	Publisher  Role = "publisher"  // a navigation app that asks for ads
)

// Account is a tenant of navad. Its API key is never kept, only a hash.
type Account struct {
	ID        string    `json:"id"`
	Type      Role      `json:"type"`
	Name      string    `json:"name"`
	AgencyID  string    `json:"agency_id,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// KeyHashes are the hashes of the account's valid API keys (more than one
	// while a rotated key is still allowed).
	KeyHashes []string `json:"-"`
}

// Validate checks every field and returns an Invalid *Error naming each bad
// one, or nil.
func (a *Account) Validate() error {
	var p Problems
	checkID(&p, "id", a.ID, false)
	switch a.Type {
	case Agency, Advertiser, Publisher:
	default:
		p.Add("type", "must be agency, advertiser or publisher, got %q", a.Type)
	}
	checkText(&p, "name", a.Name, MaxNameLen, true)
	if a.AgencyID != "" {
		if a.Type != Advertiser {
			p.Add("agency_id", "may be set only for an advertiser")
		}
		checkID(&p, "agency_id", a.AgencyID, false)
	}
	return p.Err()
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a random identifier with a readable prefix ("cmp_…").
func NewID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// NewSecret returns a random 32-byte secret, base32-encoded, with a prefix
// that says what it is (API keys start with "nvd_").
func NewSecret(prefix string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}
