// Package serving holds navad's in-memory serving index and the decision
// engine that answers ad requests from it.
//
// The index is built from the catalog (campaigns, stores, stock) and kept up
// to date by incremental writes. Readers take an immutable Snapshot with one
// atomic load and never wait for a writer; a writer builds the changed pieces
// off to the side and publishes a new Snapshot with one atomic store, so a
// reader never sees a half-applied write. Stock changes, the most frequent
// write, flip a bit in place and publish nothing.
package serving

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/geo"
)

// Store is a store as served: where it is, what it is called, when it opens.
// It is immutable once published.
type Store struct {
	ID           string
	AdvertiserID string
	Name         string
	Address      string
	Lat, Lng     float64
	Cell         uint64 // H3 cell at geo.IndexResolution
	Products     []string
	Hours        campaigns.Week
}

// Campaign is a campaign as served: the advertiser's campaign and what the
// decision path needs precomputed. It is immutable once published.
type Campaign struct {
	*campaigns.Campaign

	offer      uint32
	start, end int64 // Unix seconds; 0 means unbounded
	week       campaigns.Week
	modes      uint8
	publishers []string
	negatives  campaigns.Negatives
	radiusM    float64
	tier       int
}

// Snapshot is one consistent state of the index. It is safe for concurrent
// use and never changes, except for stock bits flipped atomically.
type Snapshot struct {
	byRank   []*Campaign // active campaigns, by priority desc, bid desc, ID
	byID     map[string]*Campaign
	keywords *campaigns.KeywordIndex
	offers   []*offer // by offer ID; nil where no store carries the offer
	presence [numTiers]presence
	stores   int
}

// Campaigns reports how many active campaigns the snapshot serves.
func (s *Snapshot) Campaigns() int { return len(s.byRank) }

// Stores reports how many stores the snapshot holds.
func (s *Snapshot) Stores() int { return s.stores }

// Offers reports how many (advertiser, product) store sets it holds.
func (s *Snapshot) Offers() int {
	n := 0
	for _, o := range s.offers {
		if o != nil {
			n++
		}
	}
	return n
}

// Index is the serving index. Its methods are safe for concurrent use;
// writes are serialized among themselves and never block Snapshot.
type Index struct {
	cur atomic.Pointer[Snapshot]

	mu        sync.Mutex // serializes writers; guards the fields below
	campaigns map[string]*Campaign
	stores    map[string]map[string]*Store // advertiser → store ID → store
	storeN    int
	offerIDs  map[offerKey]uint32
	offers    []*offer
	// cells[t][id] are the tier-t presence cells of offer id, kept so an
	// offer's marks can be removed when its stores change.
	cells    [numTiers]map[uint32][]uint64
	presence [numTiers]presence
	out      map[campaigns.StockKey]struct{}
	interned map[string]string
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	ix := &Index{
		campaigns: make(map[string]*Campaign),
		stores:    make(map[string]map[string]*Store),
		offerIDs:  make(map[offerKey]uint32),
		out:       make(map[campaigns.StockKey]struct{}),
		interned:  make(map[string]string),
	}
	for t := range numTiers {
		ix.cells[t] = make(map[uint32][]uint64)
		ix.presence[t] = newPresence()
	}
	ix.publishCampaigns()
	return ix
}

// Snapshot returns the current state. It is one atomic load.
func (ix *Index) Snapshot() *Snapshot { return ix.cur.Load() }

// Load replaces the whole index at once with the given catalog: the way to
// start from storage, cheaper than one write at a time.
func (ix *Index) Load(cs []*campaigns.Campaign, stores []*campaigns.Store, outOfStock []campaigns.StockKey) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, k := range outOfStock {
		ix.out[k] = struct{}{}
	}
	byAdv := make(map[string][]campaigns.Store)
	for _, s := range stores {
		byAdv[s.AdvertiserID] = append(byAdv[s.AdvertiserID], *s)
	}
	for adv, ss := range byAdv {
		if err := ix.putStoresLocked(adv, ss); err != nil {
			return err
		}
	}
	for _, c := range cs {
		ix.putCampaignLocked(c)
	}
	ix.publishCampaigns()
	return nil
}

// PutCampaign adds or replaces a campaign. A paused campaign is kept but not
// served.
func (ix *Index) PutCampaign(c *campaigns.Campaign) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.putCampaignLocked(c)
	ix.publishCampaigns()
}

// DeleteCampaign removes a campaign; unknown IDs are ignored.
func (ix *Index) DeleteCampaign(id string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	delete(ix.campaigns, id)
	ix.publishCampaigns()
}

func (ix *Index) putCampaignLocked(c *campaigns.Campaign) {
	week, _ := c.Hours.Compile() // validated when written
	sc := &Campaign{
		Campaign:   c,
		offer:      ix.offerID(offerKey{c.AdvertiserID, c.ProductID}),
		week:       week,
		publishers: c.Publishers,
		negatives:  campaigns.CompileNegatives(c.NegativeKeywords),
		radiusM:    float64(c.RadiusM),
		tier:       tierFor(float64(c.RadiusM)),
	}
	if !c.Start.IsZero() {
		sc.start = c.Start.Unix()
	}
	if !c.End.IsZero() {
		sc.end = c.End.Unix()
	}
	for _, m := range c.Modes {
		sc.modes |= modeBit(m)
	}
	ix.campaigns[c.ID] = sc
}

func modeBit(m campaigns.Mode) uint8 {
	switch m {
	case campaigns.Walk:
		return 1
	case campaigns.Car:
		return 2
	}
	return 0
}

func (ix *Index) offerID(k offerKey) uint32 {
	if id, ok := ix.offerIDs[k]; ok {
		return id
	}
	id := uint32(len(ix.offerIDs))
	ix.offerIDs[k] = id
	return id
}

// publishCampaigns rebuilds the campaign side (rank order, keyword index)
// and publishes a snapshot sharing the current store side. Its cost grows
// with the number of campaigns, not stores.
func (ix *Index) publishCampaigns() {
	ranked := make([]*Campaign, 0, len(ix.campaigns))
	for _, c := range ix.campaigns {
		if c.Status == campaigns.Active {
			ranked = append(ranked, c)
		}
	}
	slices.SortFunc(ranked, func(a, b *Campaign) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		if c := cmp.Compare(b.BidCPM, a.BidCPM); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	var refs []campaigns.KeywordRef
	for rank, c := range ranked {
		for _, k := range c.Keywords {
			refs = append(refs, campaigns.KeywordRef{Keyword: k, Ref: uint32(rank)})
		}
	}
	byID := make(map[string]*Campaign, len(ix.campaigns))
	for id, c := range ix.campaigns {
		byID[id] = c
	}
	ix.publish(&Snapshot{
		byRank:   ranked,
		byID:     byID,
		keywords: campaigns.NewKeywordIndex(refs),
	})
}

// publish completes s with the current store side and makes it current.
func (ix *Index) publish(s *Snapshot) {
	if s.keywords == nil {
		old := ix.cur.Load()
		s.byRank, s.byID, s.keywords = old.byRank, old.byID, old.keywords
	}
	s.offers = ix.offers
	s.presence = ix.presence
	s.stores = ix.storeN
	ix.cur.Store(s)
}

// PutStores upserts stores of one advertiser (by store ID) and rebuilds the
// offers they touch. The stores must be valid.
func (ix *Index) PutStores(advertiserID string, stores []campaigns.Store) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := ix.putStoresLocked(advertiserID, stores); err != nil {
		return err
	}
	ix.publish(&Snapshot{})
	return nil
}

// DeleteStore removes one store of an advertiser and its stock marks.
func (ix *Index) DeleteStore(advertiserID, storeID string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	adv := ix.stores[advertiserID]
	old, ok := adv[storeID]
	if !ok {
		return
	}
	delete(adv, storeID)
	ix.storeN--
	for _, p := range old.Products {
		delete(ix.out, campaigns.StockKey{AdvertiserID: advertiserID, StoreID: storeID, ProductID: p})
	}
	ch := offerChanges{full: make(map[string]bool)}
	for _, p := range old.Products {
		ch.full[p] = true
	}
	ix.rebuildOffers(advertiserID, ch)
	ix.publish(&Snapshot{})
}

// putStoresLocked upserts stores and rebuilds the offers they touch. An
// offer that only gains stores extends its presence marks with the new
// stores' covers; one that loses or moves a store recomputes them.
func (ix *Index) putStoresLocked(advertiserID string, stores []campaigns.Store) error {
	adv := ix.stores[advertiserID]
	if adv == nil {
		adv = make(map[string]*Store, len(stores))
		ix.stores[advertiserID] = adv
	}
	ch := offerChanges{added: make(map[string][]*Store), full: make(map[string]bool), refresh: make(map[string]bool)}
	for i := range stores {
		s := &stores[i]
		cell, err := geo.Cell(s.Lat, s.Lng, geo.IndexResolution)
		if err != nil {
			return err
		}
		week, _ := s.Hours.Compile()
		st := &Store{
			ID:           s.ID,
			AdvertiserID: advertiserID,
			Name:         s.Name,
			Address:      s.Address,
			Lat:          s.Lat,
			Lng:          s.Lng,
			Cell:         uint64(cell),
			Products:     make([]string, len(s.Products)),
			Hours:        week,
		}
		for j, p := range s.Products {
			st.Products[j] = ix.intern(p)
		}
		old, existed := adv[s.ID]
		if !existed {
			ix.storeN++
		}
		moved := existed && (old.Lat != st.Lat || old.Lng != st.Lng)
		if existed && !moved && slices.Equal(old.Products, st.Products) {
			// Same place, same products: the presence marks stand. A store
			// that is the same in every way changes nothing at all, so
			// uploading a list again costs a comparison a store.
			if old.Name != st.Name || old.Address != st.Address || !old.Hours.Equal(st.Hours) {
				adv[s.ID] = st
				for _, p := range st.Products {
					ch.refresh[p] = true
				}
			}
			continue
		}
		for _, p := range st.Products {
			if moved {
				ch.full[p] = true
			} else {
				ch.added[p] = append(ch.added[p], st)
			}
		}
		if existed {
			for _, p := range old.Products {
				if moved || !st.hasProduct(p) {
					ch.full[p] = true
				}
			}
		}
		adv[s.ID] = st
	}
	ix.rebuildOffers(advertiserID, ch)
	return nil
}

func (s *Store) hasProduct(p string) bool {
	for _, q := range s.Products {
		if q == p {
			return true
		}
	}
	return false
}

// offerChanges says how an advertiser's offers changed, by product: full
// means stores left or moved (recompute presence); added lists stores that
// joined (extend presence); refresh means stores changed in place (rebuild
// the offer, keep its presence).
type offerChanges struct {
	added   map[string][]*Store
	full    map[string]bool
	refresh map[string]bool
}

func (ix *Index) intern(s string) string {
	if v, ok := ix.interned[s]; ok {
		return v
	}
	ix.interned[s] = s
	return s
}

// rebuildOffers rebuilds the advertiser's changed offers from its current
// stores, and their presence marks, copying on write so that published
// snapshots are untouched.
func (ix *Index) rebuildOffers(advertiserID string, ch offerChanges) {
	byProduct := make(map[string][]*Store, len(ch.added)+len(ch.full)+len(ch.refresh))
	for p := range ch.added {
		byProduct[p] = nil
	}
	for p := range ch.full {
		byProduct[p] = nil
	}
	for p := range ch.refresh {
		byProduct[p] = nil
	}
	if len(byProduct) == 0 {
		return
	}
	for _, st := range ix.stores[advertiserID] {
		for _, p := range st.Products {
			if list, ok := byProduct[p]; ok {
				byProduct[p] = append(list, st)
			}
		}
	}
	offers := slices.Clone(ix.offers)
	var prev, next [numTiers]map[uint32][]uint64
	sc := newCoverScratch()
	for t := range numTiers {
		prev[t], next[t] = make(map[uint32][]uint64), make(map[uint32][]uint64)
	}
	for p, list := range byProduct {
		key := offerKey{advertiserID, p}
		id := ix.offerID(key)
		for int(id) >= len(offers) {
			offers = append(offers, nil)
		}
		var o *offer
		if len(list) > 0 {
			o = newOffer(id, key, list, ix.out)
		}
		offers[id] = o
		for t := range numTiers {
			old := ix.cells[t][id]
			var cells []uint64
			switch {
			case o == nil:
			case ch.full[p]:
				cells = coverCells(o.stores, t, sc)
			case len(ch.added[p]) > 0:
				added := ch.added[p]
				slices.SortFunc(added, func(a, b *Store) int { return cmp.Compare(a.Cell, b.Cell) })
				cells = mergeCells(old, coverCells(added, t, sc))
			default: // refreshed in place
				cells = old
			}
			if slices.Equal(old, cells) {
				continue
			}
			prev[t][id], next[t][id] = old, cells
			if len(cells) == 0 {
				delete(ix.cells[t], id)
			} else {
				ix.cells[t][id] = cells
			}
		}
	}
	for len(offers) < len(ix.offerIDs) {
		offers = append(offers, nil)
	}
	ix.offers = offers
	maxID := uint32(len(ix.offerIDs))
	for t := range numTiers {
		if len(next[t]) > 0 {
			ix.presence[t] = ix.presence[t].update(prev[t], next[t], maxID, tiers[t].res)
		}
	}
}

// SetStock applies a point-of-sale batch: each row marks a product of a
// store out of stock or back in stock. It flips bits in place; nothing is
// rebuilt.
func (ix *Index) SetStock(advertiserID string, rows []campaigns.StockUpdate) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, r := range rows {
		k := campaigns.StockKey{AdvertiserID: advertiserID, StoreID: r.StoreID, ProductID: r.ProductID}
		isOut := !r.Available()
		if isOut {
			ix.out[k] = struct{}{}
		} else {
			delete(ix.out, k)
		}
		st := ix.stores[advertiserID][r.StoreID]
		if st == nil {
			continue
		}
		id, ok := ix.offerIDs[offerKey{advertiserID, r.ProductID}]
		if !ok || int(id) >= len(ix.offers) || ix.offers[id] == nil {
			continue
		}
		o := ix.offers[id]
		if i := o.position(st); i >= 0 {
			o.setOut(i, isOut)
		}
	}
}

// Clock is the engine's time source; tests inject their own.
type Clock func() time.Time
