// Package catalog is the write side of navad: accounts, campaigns, stores and
// stock as the tenants manage them. Every method checks who may do what,
// validates, writes durably to storage and then applies the change to the
// serving index, so that a 2xx answer means both "stored" and "served".
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage"
)

// Service manages the catalog. Safe for concurrent use.
type Service struct {
	store storage.Catalog
	index *serving.Index
	keys  *auth.Keys
	now   func() time.Time

	// Each storage write and its index update happen under one lock, so
	// that the index applies writes in the order storage did. Writes that
	// could conflict share a lock: campaign writes take campaignMu, and an
	// advertiser's store and stock writes take that advertiser's lock.
	// Others commute, so a large store upload holds up neither other
	// advertisers' stock nor campaign changes.
	campaignMu sync.Mutex
	advMu      sync.Mutex             // guards advLocks
	advLocks   map[string]*sync.Mutex // advertiser → its store and stock writes
	// applying is held shared by every write above (and by ApplyAdvertiser
	// and ApplyCampaigns) and exclusively by Apply, so that a change read
	// back from a shared store never overtakes a local write between its
	// storage write and its index update.
	applying sync.RWMutex
}

// lockAdvertiser takes the lock of an advertiser's store and stock writes
// and returns its unlock.
func (s *Service) lockAdvertiser(advertiserID string) func() {
	s.advMu.Lock()
	l := s.advLocks[advertiserID]
	if l == nil {
		l = new(sync.Mutex)
		s.advLocks[advertiserID] = l
	}
	s.advMu.Unlock()
	s.applying.RLock()
	l.Lock()
	return func() {
		l.Unlock()
		s.applying.RUnlock()
	}
}

// lockCampaigns takes the lock of campaign writes and returns its unlock.
func (s *Service) lockCampaigns() func() {
	s.applying.RLock()
	s.campaignMu.Lock()
	return func() {
		s.campaignMu.Unlock()
		s.applying.RUnlock()
	}
}

// New returns a catalog service. now may be nil (the wall clock).
func New(store storage.Catalog, index *serving.Index, keys *auth.Keys, now func() time.Time) (*Service, error) {
	if store == nil || index == nil || keys == nil {
		return nil, errors.New("new catalog: store, index and keys are required")
	}
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, index: index, keys: keys, now: now, advLocks: make(map[string]*sync.Mutex)}, nil
}

// Load fills the serving index from storage: the start of a server's life.
func (s *Service) Load(ctx context.Context) error {
	cs, err := s.store.Campaigns(ctx, "")
	if err != nil {
		return fmt.Errorf("load campaigns: %w", err)
	}
	var stores []*campaigns.Store
	if err := s.store.Stores(ctx, "", func(st *campaigns.Store) bool {
		stores = append(stores, st)
		return true
	}); err != nil {
		return fmt.Errorf("load stores: %w", err)
	}
	var out []campaigns.StockKey
	if err := s.store.OutOfStock(ctx, "", func(k campaigns.StockKey) bool {
		out = append(out, k)
		return true
	}); err != nil {
		return fmt.Errorf("load stock: %w", err)
	}
	return s.index.Load(cs, stores, out)
}

// Apply runs fn while no write of this service stands between its storage
// write and its index update. A replica applies changes made through other
// replicas (read back from the shared store) under Apply, ApplyAdvertiser
// or ApplyCampaigns, so that they reach the index in the order the store
// applied them, never overtaken by an older write of this replica. Apply
// holds up every write, so it is for what touches the whole index, as a
// reload does; a change of one advertiser or one campaign takes the
// narrower lock.
func (s *Service) Apply(fn func() error) error {
	s.applying.Lock()
	defer s.applying.Unlock()
	return fn()
}

// ApplyAdvertiser runs fn while no write of the advertiser's stores or stock
// stands between its storage write and its index update: Apply for changes
// that touch only that advertiser's stores and stock. Other advertisers'
// writes and campaign writes go on meanwhile, and so may other
// ApplyAdvertiser and ApplyCampaigns calls.
func (s *Service) ApplyAdvertiser(advertiserID string, fn func() error) error {
	defer s.lockAdvertiser(advertiserID)()
	return fn()
}

// ApplyCampaigns runs fn while no campaign write stands between its storage
// write and its index update: Apply for changes that touch only campaigns.
// Store and stock writes go on meanwhile.
func (s *Service) ApplyCampaigns(fn func() error) error {
	defer s.lockCampaigns()()
	return fn()
}

// ---- Accounts ----

// CreateAccount creates an account and returns it with its API key, shown
// this once. Admin may create any account; an agency may create advertisers
// under itself. PermissionDenied, Invalid, Conflict.
func (s *Service) CreateAccount(ctx context.Context, p *auth.Principal, a campaigns.Account) (*campaigns.Account, string, error) {
	switch {
	case p.IsAdmin():
	case p.Role == campaigns.Agency && a.Type == campaigns.Advertiser:
		if a.AgencyID == "" {
			a.AgencyID = p.ID
		}
		if a.AgencyID != p.ID {
			return nil, "", campaigns.Errorf(campaigns.PermissionDenied, "an agency may create advertisers only under itself")
		}
	default:
		return nil, "", campaigns.Errorf(campaigns.PermissionDenied, "only admin, or an agency creating an advertiser, may create accounts")
	}
	if a.ID == "" {
		a.ID = campaigns.NewID(idPrefix(a.Type))
	}
	if err := a.Validate(); err != nil {
		return nil, "", err
	}
	if a.AgencyID != "" {
		ag, err := s.store.Account(ctx, a.AgencyID)
		if err != nil || ag.Type != campaigns.Agency {
			return nil, "", invalid("agency_id", "names no agency")
		}
	}
	key := campaigns.NewSecret("nvd")
	a.KeyHashes = []string{auth.HashKey(key)}
	a.CreatedAt = s.now().UTC().Truncate(time.Second)
	if err := s.store.CreateAccount(ctx, &a); err != nil {
		return nil, "", err
	}
	return &a, key, nil
}

func idPrefix(r campaigns.Role) string {
	switch r {
	case campaigns.Agency:
		return "agy"
	case campaigns.Advertiser:
		return "adv"
	case campaigns.Publisher:
		return "pub"
	}
	return "acc"
}

// Account returns an account the principal may see: itself, an advertiser
// of its agency, anything for admin. NotFound otherwise, so that IDs do not
// leak.
func (s *Service) Account(ctx context.Context, p *auth.Principal, id string) (*campaigns.Account, error) {
	if p.IsAdmin() && id == auth.AdminID {
		return &campaigns.Account{ID: auth.AdminID, Type: campaigns.Admin, Name: "admin"}, nil
	}
	a, err := s.store.Account(ctx, id)
	if campaigns.ErrorCode(err) == campaigns.NotFound {
		return nil, notFound("account", id) // the same words as for someone else's
	}
	if err != nil {
		return nil, err
	}
	if p.IsAdmin() || a.ID == p.ID || (p.Role == campaigns.Agency && a.AgencyID == p.ID) {
		return a, nil
	}
	return nil, notFound("account", id)
}

// MaxAccountKeys is the most keys an account holds: rotations that keep the
// old keys stop there until RevokeOldKeys, so that a client rotating on a
// schedule without revoking does not leave an ever longer list of live keys.
const MaxAccountKeys = 10

// RotateKey gives an account a new API key. With keepOld the old keys keep
// working until RevokeOldKeys; otherwise they stop at once. The account
// itself, its agency or admin may do it. NotFound; Conflict when keepOld
// and the account holds MaxAccountKeys keys.
func (s *Service) RotateKey(ctx context.Context, p *auth.Principal, id string, keepOld bool) (string, error) {
	a, err := s.Account(ctx, p, id)
	if err != nil {
		return "", err
	}
	if a.Type == campaigns.Admin {
		return "", campaigns.Errorf(campaigns.Invalid, "the admin key comes from NAVAD_ADMIN_KEY; change it there")
	}
	key := campaigns.NewSecret("nvd")
	hash := auth.HashKey(key)
	// The keys are read and rewritten in one atomic update, so that
	// rotations at once, on this replica or others, keep each other's keys.
	err = s.store.UpdateAccountKeys(ctx, id, func(current []string) ([]string, error) {
		if !keepOld {
			return []string{hash}, nil
		}
		if len(current) >= MaxAccountKeys {
			return nil, campaigns.Errorf(campaigns.Conflict, "the account has %d keys, the most it keeps; revoke the old ones first (DELETE /v1/accounts/%s/keys/old)", len(current), id)
		}
		return append([]string{hash}, current...), nil
	})
	if err != nil {
		return "", err
	}
	s.keys.ForgetAccount(id)
	return key, nil
}

// RevokeOldKeys keeps only the newest key of an account. NotFound.
func (s *Service) RevokeOldKeys(ctx context.Context, p *auth.Principal, id string) error {
	a, err := s.Account(ctx, p, id)
	if err != nil {
		return err
	}
	if a.Type == campaigns.Admin {
		return campaigns.Errorf(campaigns.Invalid, "the admin key comes from NAVAD_ADMIN_KEY; change it there")
	}
	err = s.store.UpdateAccountKeys(ctx, id, func(current []string) ([]string, error) {
		return current[:min(len(current), 1)], nil
	})
	if err != nil {
		return err
	}
	s.keys.ForgetAccount(id)
	return nil
}

// ---- Who may manage an advertiser ----

// Advertiser resolves the advertiser a management call acts for: the named
// one, or the caller itself when it is an advertiser and names none. It
// returns PermissionDenied when the principal may not manage it, and Invalid
// when it names no advertiser.
func (s *Service) Advertiser(ctx context.Context, p *auth.Principal, advertiserID string) (string, error) {
	if advertiserID == "" {
		if p.Role == campaigns.Advertiser {
			return p.ID, nil
		}
		if p.Role == campaigns.Publisher {
			return "", denied()
		}
		return "", invalid("advertiser_id", "is required for agency and admin keys")
	}
	switch p.Role {
	case campaigns.Admin:
	case campaigns.Advertiser:
		if advertiserID != p.ID {
			return "", denied()
		}
		return advertiserID, nil
	case campaigns.Agency:
	default:
		return "", denied()
	}
	a, err := s.store.Account(ctx, advertiserID)
	switch {
	case campaigns.ErrorCode(err) == campaigns.NotFound:
		if p.IsAdmin() {
			return "", invalid("advertiser_id", "names no advertiser")
		}
		return "", denied()
	case err != nil:
		return "", err
	case a.Type != campaigns.Advertiser:
		if p.IsAdmin() {
			return "", invalid("advertiser_id", "names no advertiser")
		}
		return "", denied()
	case p.Role == campaigns.Agency && a.AgencyID != p.ID:
		return "", denied()
	}
	return advertiserID, nil
}

// mayManage reports whether p may manage the given advertiser's objects.
func (s *Service) mayManage(ctx context.Context, p *auth.Principal, advertiserID string) (bool, error) {
	_, err := s.Advertiser(ctx, p, advertiserID)
	switch campaigns.ErrorCode(err) {
	case "":
		return true, nil
	case campaigns.PermissionDenied, campaigns.Invalid:
		return false, nil
	}
	return false, err
}

// ---- Campaigns ----

// CreateCampaign validates and stores a new campaign. Invalid,
// PermissionDenied, Conflict.
func (s *Service) CreateCampaign(ctx context.Context, p *auth.Principal, c campaigns.Campaign) (*campaigns.Campaign, error) {
	adv, err := s.Advertiser(ctx, p, c.AdvertiserID)
	if err != nil {
		return nil, err
	}
	c.AdvertiserID = adv
	if c.ID == "" {
		c.ID = campaigns.NewID("cmp")
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Second)
	c.CreatedAt, c.UpdatedAt = now, now

	defer s.lockCampaigns()()
	// Conflict if the ID is taken, or was: a deleted campaign's ID is not
	// given again (its counters and reports are kept by ID).
	if err := s.store.CreateCampaign(ctx, &c); err != nil {
		return nil, err
	}
	s.index.PutCampaign(&c)
	return &c, nil
}

// Campaign returns a campaign the principal may see. NotFound (also for
// another tenant's campaign, so that IDs do not leak).
func (s *Service) Campaign(ctx context.Context, p *auth.Principal, id string) (*campaigns.Campaign, error) {
	c, err := s.store.Campaign(ctx, id)
	if campaigns.ErrorCode(err) == campaigns.NotFound {
		return nil, notFound("campaign", id) // the same words as for someone else's
	}
	if err != nil {
		return nil, err
	}
	ok, err := s.mayManage(ctx, p, c.AdvertiserID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("campaign", id)
	}
	return c, nil
}

// Campaigns lists the campaigns the principal may see: of one advertiser
// when advertiserID is set (PermissionDenied if not its own), else all it
// may see.
func (s *Service) Campaigns(ctx context.Context, p *auth.Principal, advertiserID string) ([]*campaigns.Campaign, error) {
	if advertiserID != "" {
		adv, err := s.Advertiser(ctx, p, advertiserID)
		if err != nil {
			return nil, err
		}
		return s.store.Campaigns(ctx, adv)
	}
	switch p.Role {
	case campaigns.Admin:
		return s.store.Campaigns(ctx, "")
	case campaigns.Advertiser:
		return s.store.Campaigns(ctx, p.ID)
	case campaigns.Agency:
		accts, err := s.store.Accounts(ctx)
		if err != nil {
			return nil, err
		}
		var out []*campaigns.Campaign
		for _, a := range accts {
			if a.Type == campaigns.Advertiser && a.AgencyID == p.ID {
				cs, err := s.store.Campaigns(ctx, a.ID)
				if err != nil {
					return nil, err
				}
				out = append(out, cs...)
			}
		}
		slices.SortFunc(out, func(a, b *campaigns.Campaign) int { return strings.Compare(a.ID, b.ID) })
		return out, nil
	}
	return nil, denied()
}

// ReplaceCampaign replaces a campaign (PUT). The ID and advertiser cannot
// change. NotFound, Invalid.
func (s *Service) ReplaceCampaign(ctx context.Context, p *auth.Principal, id string, c campaigns.Campaign) (*campaigns.Campaign, error) {
	return s.updateCampaign(ctx, p, id, func(old *campaigns.Campaign) (*campaigns.Campaign, error) {
		if c.ID != "" && c.ID != id {
			return nil, invalid("id", "does not match the campaign in the URL")
		}
		if c.AdvertiserID != "" && c.AdvertiserID != old.AdvertiserID {
			return nil, invalid("advertiser_id", "cannot change")
		}
		next := c // a copy: change may run again
		next.ID, next.AdvertiserID = id, old.AdvertiserID
		next.ApplyDefaults()
		return &next, nil
	})
}

// PatchCampaign applies a JSON merge patch (RFC 7396) to a campaign; pause
// and resume are {"status":"paused"} and {"status":"active"}. NotFound,
// Invalid.
func (s *Service) PatchCampaign(ctx context.Context, p *auth.Principal, id string, patch []byte) (*campaigns.Campaign, error) {
	return s.updateCampaign(ctx, p, id, func(old *campaigns.Campaign) (*campaigns.Campaign, error) {
		var changes map[string]json.RawMessage
		if err := json.Unmarshal(patch, &changes); err != nil || changes == nil {
			return nil, campaigns.Errorf(campaigns.Invalid, "the body must be a JSON object (a merge patch)")
		}
		// A member named twice, in any case, at any depth: the decoders
		// below would keep the last ({"status":"paused","status":null}).
		if err := campaigns.CheckUniqueKeys(patch); err != nil {
			return nil, err
		}
		// Go's JSON decoder matches keys without regard to case (Unicode
		// folding included: "advertiſer_id" sets advertiser_id), so the
		// fixed fields are matched the same way.
		for k := range changes {
			for _, f := range []string{"id", "advertiser_id", "created_at", "updated_at"} {
				if strings.EqualFold(k, f) {
					return nil, invalid(f, "cannot be changed")
				}
			}
		}
		doc, err := json.Marshal(old)
		if err != nil {
			return nil, fmt.Errorf("patch campaign: %w", err)
		}
		merged, err := mergePatch(doc, patch)
		if err != nil {
			return nil, err
		}
		var c campaigns.Campaign
		dec := json.NewDecoder(bytes.NewReader(merged))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, campaigns.Errorf(campaigns.Invalid, "patch: %s", describeJSONError(err))
		}
		c.ApplyDefaults()
		return &c, nil
	})
}

// SetCampaignStatus pauses or resumes a campaign.
func (s *Service) SetCampaignStatus(ctx context.Context, p *auth.Principal, id string, st campaigns.Status) (*campaigns.Campaign, error) {
	return s.updateCampaign(ctx, p, id, func(old *campaigns.Campaign) (*campaigns.Campaign, error) {
		c := *old
		c.Status = st
		return &c, nil
	})
}

// updateCampaign writes what change makes of a campaign the principal may
// manage, read and written in one atomic update of the store (change may
// run more than once): an edit on one replica and a delete or another edit
// on another cannot bring the deleted campaign back or lose either edit.
func (s *Service) updateCampaign(ctx context.Context, p *auth.Principal, id string, change func(*campaigns.Campaign) (*campaigns.Campaign, error)) (*campaigns.Campaign, error) {
	defer s.lockCampaigns()()
	first, err := s.Campaign(ctx, p, id)
	if err != nil {
		return nil, err
	}
	c, err := s.store.UpdateCampaign(ctx, id, func(old *campaigns.Campaign) (*campaigns.Campaign, error) {
		if old.AdvertiserID != first.AdvertiserID { // not the campaign the principal was allowed
			return nil, campaigns.Errorf(campaigns.NotFound, "campaign %q not found", id)
		}
		c, err := change(old)
		if err != nil {
			return nil, err
		}
		// Whatever the change, a campaign keeps its ID and its owner.
		if c.ID != old.ID {
			return nil, invalid("id", "cannot be changed")
		}
		if c.AdvertiserID != old.AdvertiserID {
			return nil, invalid("advertiser_id", "cannot be changed")
		}
		if err := c.Validate(); err != nil {
			return nil, err
		}
		c.CreatedAt = old.CreatedAt
		c.UpdatedAt = s.now().UTC().Truncate(time.Second)
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	s.index.PutCampaign(c)
	return c, nil
}

// DeleteCampaign removes a campaign. NotFound.
func (s *Service) DeleteCampaign(ctx context.Context, p *auth.Principal, id string) error {
	defer s.lockCampaigns()()
	if _, err := s.Campaign(ctx, p, id); err != nil {
		return err
	}
	if err := s.store.DeleteCampaign(ctx, id); err != nil {
		return err
	}
	s.index.DeleteCampaign(id)
	return nil
}

// ---- Stores and stock ----

// Writable is an advertiser whose stores and stock a caller may write,
// as Service.Writable found: only the catalog makes one.
type Writable struct{ id string }

// ID returns the advertiser's ID.
func (w Writable) ID() string { return w.id }

// Writable resolves the advertiser whose stores and stock p means to write
// (Advertiser) once, so that an HTTP handler can refuse a caller before it
// reads the body and then write without asking the store again.
func (s *Service) Writable(ctx context.Context, p *auth.Principal, advertiserID string) (Writable, error) {
	adv, err := s.Advertiser(ctx, p, advertiserID)
	return Writable{adv}, err
}

// PutStores upserts an advertiser's stores all or nothing: one bad row
// rejects the upload with every bad row listed (rows counted from 1 unless
// rowNumbers gives each row's number), a row naming another advertiser
// among them. Invalid, PermissionDenied.
func (s *Service) PutStores(ctx context.Context, p *auth.Principal, advertiserID string, stores []campaigns.Store, rowNumbers []int) (string, error) {
	w, err := s.Writable(ctx, p, advertiserID)
	if err != nil {
		return "", err
	}
	return s.PutStoresOf(ctx, w, stores, rowNumbers)
}

// PutStoresOf is PutStores for an advertiser Writable found.
func (s *Service) PutStoresOf(ctx context.Context, w Writable, stores []campaigns.Store, rowNumbers []int) (string, error) {
	adv := w.id
	if adv == "" {
		return "", errors.New("put stores: no advertiser (a zero Writable)")
	}
	if err := campaigns.CheckUpload(adv, stores, rowNumbers); err != nil {
		return "", err
	}
	for i := range stores {
		stores[i].AdvertiserID = adv
	}
	// What can fail in the index is done before the store keeps the
	// upload, so that the two never part.
	prepared, err := serving.PrepareStores(stores)
	if err != nil {
		return "", fmt.Errorf("index stores: %w", err)
	}
	defer s.lockAdvertiser(adv)()
	if err := s.store.PutStores(ctx, adv, stores); err != nil {
		return "", err
	}
	s.index.PutPrepared(adv, prepared)
	return adv, nil
}

// Store returns one store of an advertiser the principal may manage.
func (s *Service) Store(ctx context.Context, p *auth.Principal, advertiserID, storeID string) (*campaigns.Store, error) {
	adv, err := s.Advertiser(ctx, p, advertiserID)
	if err != nil {
		return nil, err
	}
	return s.store.Store(ctx, adv, storeID)
}

// Stores calls fn for every store of an advertiser the principal may manage.
func (s *Service) Stores(ctx context.Context, p *auth.Principal, advertiserID string, fn func(*campaigns.Store) bool) error {
	adv, err := s.Advertiser(ctx, p, advertiserID)
	if err != nil {
		return err
	}
	return s.store.Stores(ctx, adv, fn)
}

// DeleteStore removes a store and its stock. NotFound.
func (s *Service) DeleteStore(ctx context.Context, p *auth.Principal, advertiserID, storeID string) error {
	adv, err := s.Advertiser(ctx, p, advertiserID)
	if err != nil {
		return err
	}
	defer s.lockAdvertiser(adv)()
	if err := s.store.DeleteStore(ctx, adv, storeID); err != nil {
		return err
	}
	s.index.DeleteStore(adv, storeID)
	return nil
}

// Now returns the catalog's clock's time: what a stock row's as_of is
// checked against.
func (s *Service) Now() time.Time { return s.now() }

// StockResult is what a point-of-sale batch did: Updated rows applied,
// Stale rows skipped because a row with a later as_of for their (store,
// product) was applied before (see campaigns.StockUpdate).
type StockResult struct {
	Updated int `json:"updated"`
	Stale   int `json:"stale"`
}

// PutStock applies a point-of-sale batch all or nothing. Invalid (every bad
// row listed, including rows naming unknown stores and as_of times out of
// range), PermissionDenied.
func (s *Service) PutStock(ctx context.Context, p *auth.Principal, advertiserID string, rows []campaigns.StockUpdate, maxRows int) (StockResult, error) {
	w, err := s.Writable(ctx, p, advertiserID)
	if err != nil {
		return StockResult{}, err
	}
	return s.PutStockOf(ctx, w, rows, maxRows)
}

// PutStockOf is PutStock for an advertiser Writable found.
func (s *Service) PutStockOf(ctx context.Context, w Writable, rows []campaigns.StockUpdate, maxRows int) (StockResult, error) {
	adv := w.id
	if adv == "" {
		return StockResult{}, errors.New("put stock: no advertiser (a zero Writable)")
	}
	if len(rows) == 0 {
		return StockResult{}, nil // a point-of-sale job with nothing to report
	}
	if maxRows > 0 && len(rows) > maxRows {
		return StockResult{}, campaigns.Errorf(campaigns.Invalid, "a batch holds at most %d rows, got %d", maxRows, len(rows))
	}
	var probs campaigns.Problems
	now := s.now()
	for i, r := range rows {
		if msg := r.RowProblem(now); msg != "" {
			probs.AddRow(i+1, "%s", msg)
		}
	}
	if err := probs.Err(); err != nil {
		return StockResult{}, err
	}
	defer s.lockAdvertiser(adv)()
	stale, err := s.store.PutStock(ctx, adv, rows)
	if err != nil {
		return StockResult{}, err
	}
	applied := rows
	if len(stale) > 0 {
		applied = make([]campaigns.StockUpdate, 0, len(rows)-len(stale))
		next := 0 // stale lists row indexes in order
		for i, r := range rows {
			if next < len(stale) && stale[next] == i {
				next++
				continue
			}
			applied = append(applied, r)
		}
	}
	s.index.SetStock(adv, applied)
	return StockResult{Updated: len(applied), Stale: len(rows) - len(applied)}, nil
}

// ---- helpers ----

func invalid(field, msg string) error {
	return &campaigns.Error{Code: campaigns.Invalid, Message: field + " " + msg,
		Details: []campaigns.Detail{{Field: field, Message: msg}}}
}

func denied() error {
	return campaigns.Errorf(campaigns.PermissionDenied, "this key may not act for that advertiser")
}

func notFound(kind, id string) error {
	return campaigns.Errorf(campaigns.NotFound, "no %s %q", kind, id)
}
