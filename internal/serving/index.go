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
	"errors"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/navad/navad/campaigns"
)

// Campaign is a campaign as served: the advertiser's campaign and what the
// decision path needs precomputed. It is immutable once published.
type Campaign struct {
	// What a pacer reads for every ad it reserves (CapKey, Limits) comes
	// first, 64 bytes together, rather than in the campaign's own record.
	id     string // Campaign.ID
	slot   uint32 // stable for the campaign's life in this process
	limits Limits // the caps, from Campaign, for the pacer (Limits)

	*campaigns.Campaign

	ranked     rankedCampaign // its entry in Snapshot.ranked, but for group
	week       campaigns.Week
	publishers []string
	negatives  campaigns.Negatives
}

// Limits are a campaign's delivery and frequency caps as a pacer reads
// them for every ad: the budget's and the frequency cap's numbers, its
// period parsed.
type Limits struct {
	Daily, Total int64         // impressions a business day and in all; 0: none
	PerUser      int64         // impressions a user may see in Period; 0: none
	Period       time.Duration // the frequency cap's period; > 0 when PerUser is
	set          bool
}

// LimitsOf reads c's caps. A frequency cap whose period does not parse (a
// campaign's is validated when it is written) caps nothing.
func LimitsOf(c *campaigns.Campaign) Limits {
	l := Limits{Daily: c.Budget.DailyImpressions, Total: c.Budget.TotalImpressions, set: true}
	if fc := c.FrequencyCap; fc != nil && fc.Impressions > 0 {
		if d, err := fc.Per.Duration(); err == nil && d > 0 {
			l.PerUser, l.Period = int64(fc.Impressions), d
		}
	}
	return l
}

// Limits returns c's caps, read once when it was indexed (by LimitsOf, for
// a Campaign made outside an index): a pacer that reads them for every ad
// reads one line of memory instead of following the campaign to its
// frequency cap and parsing its period.
func (c *Campaign) Limits() Limits {
	if !c.limits.set {
		return LimitsOf(c.Campaign)
	}
	return c.limits
}

// CapKey returns c's ID and its number for a pacer's backend
// (storage.CapRequest.Slot): its slot in the index, from 1, the same for
// the ID as long as the index lives; 0 for a Campaign made outside an
// index.
func (c *Campaign) CapKey() (id string, slot uint32) {
	if !c.limits.set {
		return c.ID, 0
	}
	return c.id, c.slot + 1
}

// Snapshot is one consistent state of the index. It is safe for concurrent
// use and never changes, except for stock bits flipped atomically.
type Snapshot struct {
	byRank []*Campaign          // active campaigns, by priority desc, bid desc, ID
	ranked []rankedCampaign     // byRank's, for the decision loop
	rankOf []uint32             // by campaign slot; noRank where not served
	byID   map[string]*Campaign // every campaign, active or paused
	// The keyword index is a base over the campaigns as they were at the
	// last compaction plus a small delta over those changed since, whose
	// base entries stale masks: a campaign write rebuilds only the delta.
	kwBase   *campaigns.KeywordIndex
	kwDelta  *campaigns.KeywordIndex // nil when nothing changed
	stale    []uint64                // by slot
	cache    *triggeredCache         // what queries trigger (triggered.go)
	offers   []*offer                // by offer ID; nil where no store carries the offer
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

// Index is the serving index. Its methods are safe for concurrent use, and
// none of them blocks Snapshot.
//
// Store writers (PutStores, DeleteStore, Load) are serialized by storesMu
// and do their long work, rebuilding offers and presence marks, without mu:
// they hold mu only to record the stores and to install what they built.
// Stock and campaign writes take only mu, so they never wait for a large
// upload to be indexed.
type Index struct {
	cur atomic.Pointer[Snapshot]

	storesMu sync.Mutex // serializes store writers; guards the products and weeks
	// The products that stores carry, numbered in the order first seen:
	// stores keep the numbers. Append only.
	productNum  map[string]uint32
	productName []string
	// The stores' opening hours, each schedule once: weeks[0] is always
	// open. An offer keeps each store's index into it, so that checking a
	// store's hours reads two dense arrays rather than the store. Append
	// only: an offer holds the slice as it was when built.
	weeks   []campaigns.Week
	weekIDs map[string]uint16 // by Week.AppendKey
	weekKey []byte            // weekID's scratch

	// mu guards the fields below. stores, offers and presence are
	// written only by store writers, holding both locks, so a store writer
	// may read them holding storesMu alone.
	mu        sync.Mutex
	campaigns map[string]*Campaign
	slotOf    map[string]uint32       // campaign ID → slot, kept after deletion
	bySlot    []*Campaign             // nil where deleted
	kwBase    *campaigns.KeywordIndex // see Snapshot
	delta     map[uint32]struct{}     // slots changed since kwBase was built
	stores    map[string]*storeDir    // by advertiser
	offerIDs  map[offerKey]uint32
	negLists  map[string]negList // a list of negative keywords, sorted and joined → its ID and compiled form
	offers    []*offer
	presence  [numTiers]presence
	out       map[string]*stockMarks // by advertiser: (store, product) out of stock

	// rebuildHook, when set (by tests), runs while a store writer rebuilds
	// without mu.
	rebuildHook func()
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	ix := &Index{
		campaigns:  make(map[string]*Campaign),
		slotOf:     make(map[string]uint32),
		delta:      make(map[uint32]struct{}),
		stores:     make(map[string]*storeDir),
		offerIDs:   make(map[offerKey]uint32),
		negLists:   make(map[string]negList),
		out:        make(map[string]*stockMarks),
		productNum: make(map[string]uint32),
		weeks:      []campaigns.Week{{}},
		weekIDs:    map[string]uint16{"": 0},
	}
	for t := range numTiers {
		ix.presence[t] = newPresence()
	}
	ix.publishCampaigns()
	return ix
}

// Snapshot returns the current state. It is one atomic load.
func (ix *Index) Snapshot() *Snapshot { return ix.cur.Load() }

// ErrIndexWritten is returned by Load on an index that holds anything.
var ErrIndexWritten = errors.New("load index: the index is not empty; a replica catches up with ReplaceCampaigns and ReplaceStores")

// Load fills a new index (NewIndex) with the given catalog at once: the way
// to start from storage, cheaper than one write at a time. On an index that
// holds a campaign, a store or an out-of-stock mark it returns
// ErrIndexWritten and changes nothing: it would add to what is there, not
// replace it, and what the catalog no longer holds would go on being
// served. After a Load that failed, use a new index. It sets the elements
// of stores to nil as it goes: the index keeps copies of its own, and a
// national catalogue's records (hundreds of megabytes) can then be freed
// while the index is built rather than after.
func (ix *Index) Load(cs []*campaigns.Campaign, stores []*campaigns.Store, outOfStock []campaigns.StockKey) error {
	ix.storesMu.Lock()
	defer ix.storesMu.Unlock()
	ix.mu.Lock()
	if len(ix.campaigns) > 0 || len(ix.slotOf) > 0 || len(ix.stores) > 0 || len(ix.out) > 0 {
		ix.mu.Unlock()
		return ErrIndexWritten
	}
	// The campaigns' keywords, analysed last, need the dictionary: load it
	// while the stores are indexed, unless the caller has already.
	go campaigns.LoadDictionary()
	for _, k := range outOfStock {
		ix.outOf(k.AdvertiserID).add(stockKey{k.StoreID, k.ProductID})
	}
	ix.mu.Unlock()
	byAdv := make(map[string][]*campaigns.Store)
	for _, s := range stores {
		byAdv[s.AdvertiserID] = append(byAdv[s.AdvertiserID], s)
	}
	clear(stores)
	// One presence update for every advertiser: an update copies each
	// shard it touches, so one per advertiser would make loading a national
	// catalogue quadratic.
	var rs []*offerRebuild
	for adv, ss := range byAdv {
		r, err := ix.planStores(adv, ss)
		if err != nil {
			return err
		}
		rs = append(rs, r)
		delete(byAdv, adv) // planned: the index has its own copies
	}
	ix.rebuild(rs...)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, c := range cs {
		ix.putCampaignLocked(c)
	}
	ix.kwBase = nil // one base over everything loaded
	ix.publishCampaigns()
	return nil
}

// outOf returns the out-of-stock set of an advertiser, creating it. Callers
// hold mu.
func (ix *Index) outOf(advertiserID string) *stockMarks {
	m := ix.out[advertiserID]
	if m == nil {
		m = newStockMarks()
		ix.out[advertiserID] = m
	}
	return m
}

// PutCampaign adds or replaces a campaign. A paused campaign is kept but not
// served.
func (ix *Index) PutCampaign(c *campaigns.Campaign) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.publishCampaigns(ix.putCampaignLocked(c))
}

// DeleteCampaign removes a campaign; unknown IDs are ignored.
func (ix *Index) DeleteCampaign(id string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	slot, ok := ix.slotOf[id]
	if !ok {
		return
	}
	delete(ix.campaigns, id)
	ix.bySlot[slot] = nil
	ix.publishCampaigns(slot)
}

// putCampaignLocked compiles c into its slot and returns the slot. The
// index keeps a packed copy of c (campaigns.Campaign.Packed): ten thousand
// campaigns as decoded would be some 120,000 objects for every garbage
// collection to trace.
func (ix *Index) putCampaignLocked(c *campaigns.Campaign) uint32 {
	c = c.Packed()
	slot, ok := ix.slotOf[c.ID]
	if !ok {
		slot = uint32(len(ix.bySlot))
		ix.slotOf[c.ID] = slot
		ix.bySlot = append(ix.bySlot, nil)
	}
	week, _ := c.Hours.Compile() // validated when written
	negID, negatives := ix.negatives(c.NegativeKeywords)
	sc := &Campaign{
		id:         c.ID,
		limits:     LimitsOf(c),
		slot:       slot,
		Campaign:   c,
		week:       week,
		publishers: c.Publishers,
		negatives:  negatives,
	}
	sc.ranked = rankedCampaign{
		offer:  ix.offerID(offerKey{c.AdvertiserID, c.ProductID}),
		tier:   uint8(tierFor(float64(c.RadiusM))),
		more:   !week.Always() || len(c.Publishers) > 0,
		radius: uint16(c.RadiusM), // at most campaigns.MaxRadiusM
		neg:    negID,
	}
	sc.ranked.start, sc.ranked.end = periodNano(c.Start), periodEnd(c.End)
	for _, m := range c.Modes {
		sc.ranked.modes |= modeBit(m)
	}
	ix.campaigns[c.ID] = sc
	ix.bySlot[slot] = sc
	return slot
}

// The range of Unix nanoseconds (the years 1678 to 2262): a campaign may
// name any year from 1 to 9999, a request's time is always within it.
var (
	minUnixNano = time.Unix(0, math.MinInt64)
	maxUnixNano = time.Unix(0, math.MaxInt64)
)

// periodNano returns a campaign's start or end as rankedCampaign keeps it:
// Unix nanoseconds, clamped to what they hold (a clamped bound is past or
// ahead of every request's time, as the year it names is), 0 for none.
// Nanoseconds rather than seconds: the period holds from its start instant
// to its end instant inclusive, and a time truncated to the second served a
// campaign within the second after its end (one ending at midnight served
// into the next day) or before a start with a fraction.
func periodNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minUnixNano):
		return math.MinInt64
	case t.After(maxUnixNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// periodEnd is periodNano of an end, which 0 cannot stand for: an end at
// 1970-01-01T00:00:00Z, long past, is kept as -1.
func periodEnd(t time.Time) int64 {
	if n := periodNano(t); n != 0 || t.IsZero() {
		return n
	}
	return -1
}

// negList is a list of negative keywords as campaigns share it: its ID
// (rankedCampaign.neg) and its compiled form.
type negList struct {
	id       uint16
	compiled campaigns.Negatives
}

// negatives returns the ID of a list of negative keywords and the list
// compiled. Campaigns whose lists hold the same words share both, so that
// the list is compiled once and a decision tests it once however many
// campaigns share it (an advertiser's campaigns usually do). The ID is 0
// for no words, and negUnshared, with a list compiled for the campaign
// alone, once 65,534 lists have IDs.
func (ix *Index) negatives(words []string) (uint16, campaigns.Negatives) {
	if len(words) == 0 {
		return 0, campaigns.CompileNegatives(words)
	}
	w := slices.Clone(words)
	slices.Sort(w)
	// Each word with its length before it: a word may hold any character,
	// NUL included, so joining with a separator would make the one negative
	// "バイト\x00求人" (both words) the list of two, バイト or 求人.
	var b strings.Builder
	for _, s := range w {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	key := b.String()
	if l, ok := ix.negLists[key]; ok {
		return l.id, l.compiled
	}
	if len(ix.negLists) >= negUnshared-1 {
		return negUnshared, campaigns.CompileNegatives(words)
	}
	l := negList{id: uint16(len(ix.negLists) + 1), compiled: campaigns.CompileNegatives(words)}
	ix.negLists[key] = l
	return l.id, l.compiled
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

// noRank marks a slot whose campaign is not served (paused or deleted).
const noRank = ^uint32(0)

// publishCampaigns rebuilds the campaign side for the changed slots and
// publishes a snapshot sharing the current store side. Ranking is
// O(campaigns log campaigns) arithmetic; keyword analysis touches only the
// changed campaigns, except at a compaction, once the delta has grown past
// compactAt, which rebuilds the base over every campaign.
func (ix *Index) publishCampaigns(changed ...uint32) {
	for _, slot := range changed {
		ix.delta[slot] = struct{}{}
	}
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
	rankOf := make([]uint32, len(ix.bySlot))
	for i := range rankOf {
		rankOf[i] = noRank
	}
	hot := make([]rankedCampaign, len(ranked))
	for r, c := range ranked {
		rankOf[c.slot] = uint32(r)
		hot[r] = c.ranked
		hot[r].group = uint32(r)
		if r > 0 && ranked[r-1].Priority == c.Priority && ranked[r-1].BidCPM == c.BidCPM {
			hot[r].group = hot[r-1].group
		}
	}
	if ix.kwBase == nil || len(ix.delta) > compactAt(len(ix.campaigns)) {
		ix.kwBase = campaigns.NewKeywordIndex(keywordRefs(ix.bySlot, nil))
		clear(ix.delta)
	}
	byID := make(map[string]*Campaign, len(ix.campaigns))
	for id, c := range ix.campaigns {
		byID[id] = c
	}
	snap := &Snapshot{byRank: ranked, ranked: hot, rankOf: rankOf, byID: byID, kwBase: ix.kwBase, cache: new(triggeredCache)}
	if len(ix.delta) > 0 {
		snap.stale = make([]uint64, (len(ix.bySlot)+63)/64)
		for slot := range ix.delta {
			snap.stale[slot/64] |= 1 << (slot % 64)
		}
		snap.kwDelta = campaigns.NewKeywordIndex(keywordRefs(ix.bySlot, ix.delta))
	}
	ix.publish(snap)
}

// compactAt is how many changed campaigns the delta may hold before the
// base is rebuilt: a rebuild costs about as much as rebuilding the delta
// that many times, so the cost per write stays proportional to the delta.
func compactAt(campaigns int) int { return max(64, campaigns/64) }

// keywordRefs lists the keywords of the active campaigns in bySlot (only
// of the given slots when only is non-nil), referring to each by its slot.
func keywordRefs(bySlot []*Campaign, only map[uint32]struct{}) []campaigns.KeywordRef {
	var refs []campaigns.KeywordRef
	add := func(c *Campaign) {
		if c == nil || c.Status != campaigns.Active {
			return
		}
		for _, k := range c.Keywords {
			refs = append(refs, campaigns.KeywordRef{Keyword: k, Ref: c.slot})
		}
	}
	if only != nil {
		for slot := range only {
			add(bySlot[slot])
		}
		return refs
	}
	for _, c := range bySlot {
		add(c)
	}
	return refs
}

// publish completes s with the current store side and makes it current.
func (ix *Index) publish(s *Snapshot) {
	if s.kwBase == nil {
		old := ix.cur.Load()
		s.byRank, s.ranked, s.rankOf, s.byID = old.byRank, old.ranked, old.rankOf, old.byID
		s.kwBase, s.kwDelta, s.stale, s.cache = old.kwBase, old.kwDelta, old.stale, old.cache
	}
	s.offers = ix.offers
	s.presence = ix.presence
	s.stores = 0
	for _, d := range ix.stores {
		s.stores += d.len()
	}
	ix.cur.Store(s)
}

// PutStores upserts stores of one advertiser (by store ID) and rebuilds the
// offers they touch. The stores must be valid. It is PrepareStores and
// PutPrepared.
func (ix *Index) PutStores(advertiserID string, stores []campaigns.Store) error {
	p, err := PrepareStores(stores)
	if err != nil {
		return err
	}
	ix.PutPrepared(advertiserID, p)
	return nil
}

// PreparedStores are stores made ready for the index (PrepareStores): what
// can fail in an upload (an upload too large for the index, a position H3
// refuses) has been computed, so that a writer can prepare an upload,
// refuse it if that fails, and only then store it: once stored, putting it
// in the index cannot fail, and the store and the index stay alike.
type PreparedStores struct {
	stores []*campaigns.Store
	slab   *storeSlab
	hours  []campaigns.Week
	used   bool
}

// PrepareStores computes the stores as the index serves them: their cells,
// texts and compiled opening hours. The stores must be valid, and must not
// change until they are put.
func PrepareStores(stores []campaigns.Store) (*PreparedStores, error) {
	return prepare(pointers(stores))
}

func prepare(stores []*campaigns.Store) (*PreparedStores, error) {
	slab, hours, err := servedStores(stores)
	if err != nil {
		return nil, err
	}
	return &PreparedStores{stores: stores, slab: slab, hours: hours}, nil
}

// PutPrepared upserts prepared stores of one advertiser and rebuilds the
// offers they touch. Stores are prepared for one put: it panics if p was
// put before.
func (ix *Index) PutPrepared(advertiserID string, p *PreparedStores) {
	ix.storesMu.Lock()
	defer ix.storesMu.Unlock()
	ix.rebuild(ix.planPrepared(advertiserID, p))
}

// DeleteStore removes one store of an advertiser and every stock mark of
// it, as storage does: a point-of-sale batch may mark products the store
// does not list, and a mark left behind would keep the store out of stock
// once it is uploaded again with that product. Deleting a store is a rare
// management call, so the advertiser's marks are scanned.
func (ix *Index) DeleteStore(advertiserID, storeID string) {
	ix.storesMu.Lock()
	defer ix.storesMu.Unlock()
	ix.mu.Lock()
	if out := ix.out[advertiserID]; out != nil {
		var doomed []stockKey
		for k := range out.all() {
			if k.store == storeID {
				doomed = append(doomed, k)
			}
		}
		for _, k := range doomed {
			out.del(k)
		}
	}
	old, ok := ix.stores[advertiserID].del(storeID)
	if !ok {
		ix.mu.Unlock()
		return
	}
	ch := offerChanges{full: make(map[string]bool)}
	for _, n := range old.products() {
		ch.full[ix.productName[n]] = true
	}
	r := ix.planLocked(advertiserID, ch)
	ix.mu.Unlock()
	ix.rebuild(r)
}

// planStores prepares stores and records them (planPrepared).
func (ix *Index) planStores(advertiserID string, stores []*campaigns.Store) (*offerRebuild, error) {
	// The stores as served, built before taking mu: cells come from cgo.
	p, err := prepare(stores)
	if err != nil {
		return nil, err
	}
	return ix.planPrepared(advertiserID, p), nil
}

// planPrepared records upserted stores and plans the rebuild of the offers
// they touch: an offer that gains, loses or moves a store recomputes its
// presence marks; one whose stores only change in place keeps them.
// Callers hold storesMu and pass the plan to rebuild.
func (ix *Index) planPrepared(advertiserID string, p *PreparedStores) *offerRebuild {
	if p.used {
		panic("serving: prepared stores put twice")
	}
	p.used = true
	slab := p.slab
	ix.numberStores(slab, p.stores, p.hours)

	ix.mu.Lock()
	dir := ix.stores[advertiserID]
	if dir == nil {
		dir = newStoreDir()
		ix.stores[advertiserID] = dir
	}
	ch := offerChanges{full: make(map[string]bool), refresh: make(map[string]bool)}
	slot := dir.add(slab)
	for i := range slab.recs {
		st := Store{slab, uint32(i)}
		old, existed := dir.get(st.ID())
		if existed && old.samePlace(st) {
			// Same place, same products: the presence marks stand. A store
			// that is the same in every way changes nothing at all, so
			// uploading a list again costs a comparison a store.
			if !old.sameAs(st) {
				dir.put(slot, uint32(i))
				for _, n := range st.products() {
					ch.refresh[ix.productName[n]] = true
				}
			}
			continue
		}
		// Joined, moved or changed products: the offers it leaves and
		// those it joins recompute their marks.
		for _, n := range st.products() {
			ch.full[ix.productName[n]] = true
		}
		if existed {
			for _, n := range old.products() {
				ch.full[ix.productName[n]] = true
			}
		}
		dir.put(slot, uint32(i))
	}
	dir.settleUpload(slot)
	r := ix.planLocked(advertiserID, ch)
	ix.mu.Unlock()
	return r
}

// pointers returns pointers to the elements of stores.
func pointers(stores []campaigns.Store) []*campaigns.Store {
	ps := make([]*campaigns.Store, len(stores))
	for i := range stores {
		ps[i] = &stores[i]
	}
	return ps
}

// offerChanges says how an advertiser's offers changed, by product: full
// means stores joined, left or moved (rebuild the offer, recompute its
// presence marks from its stores); refresh means stores changed in place
// (rebuild the offer, keep its presence).
type offerChanges struct {
	full    map[string]bool
	refresh map[string]bool
}

// noWeek is the week index of a store whose schedule found no room in
// Index.weeks: its offers read its hours from the store.
const noWeek = math.MaxUint16

// weekID returns w's index in ix.weeks, adding it if it is new, or noWeek
// once the table is full. Callers hold storesMu.
func (ix *Index) weekID(w campaigns.Week) uint16 {
	ix.weekKey = w.AppendKey(ix.weekKey[:0])
	if id, ok := ix.weekIDs[string(ix.weekKey)]; ok { // no string made
		return id
	}
	if len(ix.weeks) >= noWeek {
		return noWeek
	}
	id := uint16(len(ix.weeks))
	ix.weeks = append(ix.weeks, w)
	ix.weekIDs[string(ix.weekKey)] = id
	return id
}

// numberStores numbers the products and opening hours of slab's stores,
// which servedStores built from stores, compiling hours. Callers hold
// storesMu.
func (ix *Index) numberStores(slab *storeSlab, stores []*campaigns.Store, hours []campaigns.Week) {
	n := 0
	for _, s := range stores {
		n += len(s.Products)
	}
	slab.products = make([]uint32, 0, n)
	for i := range slab.recs {
		r := &slab.recs[i]
		r.prod = uint32(len(slab.products))
		for _, p := range stores[i].Products {
			// A product listed twice is carried once: twice, the store
			// would be two entries of the offer, and a stock update flips
			// only the one it finds.
			if n := ix.productNumber(p); !slices.Contains(slab.products[r.prod:], n) {
				slab.products = append(slab.products, n)
			}
		}
		r.prodEnd = uint32(len(slab.products))
		if r.week = ix.weekID(hours[i]); r.week == noWeek {
			if slab.hours == nil {
				slab.hours = make(map[uint32]campaigns.Week)
			}
			slab.hours[uint32(i)] = hours[i]
		}
	}
}

// productNumber returns product's number, numbering it if it is new.
// Callers hold storesMu.
func (ix *Index) productNumber(product string) uint32 {
	if n, ok := ix.productNum[product]; ok {
		return n
	}
	n := uint32(len(ix.productName))
	ix.productName = append(ix.productName, product)
	ix.productNum[product] = n
	return n
}

// offerRebuild is one store writer's rebuild of an advertiser's offers:
// planned under mu, built without it, installed under it.
type offerRebuild struct {
	adv   string
	ch    offerChanges
	ids   map[string]uint32 // product → offer ID
	maxID uint32

	offers   map[string]*offer // product → the rebuilt offer; nil when no store carries it
	presence [numTiers]*presence
}

// planLocked names the offers a change rebuilds, giving new ones their IDs.
// Callers hold mu.
func (ix *Index) planLocked(advertiserID string, ch offerChanges) *offerRebuild {
	r := &offerRebuild{adv: advertiserID, ch: ch, ids: make(map[string]uint32)}
	for _, set := range []map[string]bool{ch.full, ch.refresh} {
		for p := range set {
			r.ids[p] = ix.offerID(offerKey{advertiserID, p})
		}
	}
	r.maxID = uint32(len(ix.offerIDs))
	return r
}

// rebuild builds the planned offers and presence marks from the
// advertisers' current stores, copying on write so that published snapshots
// are untouched, then installs them all at once, with one presence update
// for all of them (an update copies every shard it touches, so loading a
// national catalogue one advertiser at a time would be quadratic). Plans are
// applied in order: a later plan's offer replaces an earlier one's. Callers
// hold storesMu, not mu.
func (ix *Index) rebuild(rs ...*offerRebuild) {
	var planned []*offerRebuild
	var maxID uint32
	for _, r := range rs {
		if len(r.ids) > 0 {
			planned = append(planned, r)
			maxID = max(maxID, r.maxID)
		}
	}
	if len(planned) == 0 {
		return
	}
	if ix.rebuildHook != nil {
		ix.rebuildHook()
	}
	prev, next := ix.buildOffers(planned)
	var updated [numTiers]*presence
	var wg sync.WaitGroup
	for t := range numTiers {
		if len(next[t]) > 0 {
			wg.Go(func() {
				p := ix.presence[t].update(prev[t], next[t], maxID, tiers[t].res)
				updated[t] = &p
			})
		}
	}
	wg.Wait()

	ix.mu.Lock()
	defer ix.mu.Unlock()
	offers := slices.Clone(ix.offers)
	for len(offers) < len(ix.offerIDs) {
		offers = append(offers, nil)
	}
	for _, r := range planned {
		// Stock as it is now, including what changed while this rebuilt.
		for k := range ix.out[r.adv].all() {
			o := r.offers[k.product]
			if o == nil {
				continue
			}
			if st, ok := ix.stores[r.adv].get(k.store); ok {
				if i := o.position(st); i >= 0 {
					o.out[i/64] |= 1 << (i % 64) // not yet published
				}
			}
		}
		for p, o := range r.offers {
			offers[r.ids[p]] = o
		}
	}
	ix.offers = offers
	for t, p := range updated {
		if p != nil {
			ix.presence[t] = *p
		}
	}
	ix.publish(&Snapshot{})
}

// buildOffers builds the plans' offers from the advertisers' current stores
// (into each plan's offers) and returns how their presence marks change, by
// tier: prev holds a changed offer's marks from before the first plan that
// touched it, next its marks after the last (nil for an offer no store
// carries any more). Callers hold storesMu.
//
// An offer's marks are exactly the covers of its stores (coverCells), so
// the marks it had are recomputed from the offer it replaces rather than
// kept: keeping them cost 8 bytes a mark, more than the presence sets
// themselves (tens of millions of marks at national scale). A write that
// adds stores to an offer computes its covers twice, old and new, which is
// milliseconds for the largest chain; a write that only renames stores
// computes none.
//
// The offers, then their covers (an offer and a tier at a time), are built
// on every processor, the largest first: covers are most of a national
// load's time, and a tier at a time, as before, left a core idle whenever
// one tier's goroutine outlasted the others.
func (ix *Index) buildOffers(rs []*offerRebuild) (prev, next [numTiers]map[uint32][]uint64) {
	type job struct {
		r      *offerRebuild
		p      string
		stores []Store
		o      *offer
	}
	var jobs []job
	for _, r := range rs {
		byProduct := make(map[string][]Store, len(r.ids))
		for p := range r.ids {
			byProduct[p] = nil
		}
		for st := range ix.stores[r.adv].all() {
			for _, n := range st.products() {
				p := ix.productName[n]
				if list, ok := byProduct[p]; ok {
					byProduct[p] = append(list, st)
				}
			}
		}
		r.offers = make(map[string]*offer, len(byProduct))
		for p, list := range byProduct {
			jobs = append(jobs, job{r: r, p: p, stores: list})
		}
	}
	order := largestFirst(len(jobs), func(i int) int { return len(jobs[i].stores) })
	parallel(len(jobs), func(_, k int) {
		j := &jobs[order[k]]
		if len(j.stores) > 0 {
			j.o = newOffer(j.r.ids[j.p], offerKey{j.r.adv, j.p}, j.stores, ix.weeks)
		}
	})

	// In plan order: a later plan's offer replaces an earlier one's, and
	// an offer changed by several plans changes once, from the offer
	// before the first to the offer of the last.
	type change struct {
		id     uint32
		was, o *offer
		marks  [numTiers]struct{ old, cells []uint64 }
	}
	var changes []change
	changeOf := make(map[uint32]int)
	built := make(map[uint32]*offer) // by the plans so far, nil where removed
	for _, j := range jobs {
		id := j.r.ids[j.p]
		j.r.offers[j.p] = j.o
		was, ok := built[id]
		if !ok && int(id) < len(ix.offers) {
			was = ix.offers[id]
		}
		built[id] = j.o
		if !j.r.ch.full[j.p] {
			continue // refreshed in place: the same places, the same marks
		}
		if k, ok := changeOf[id]; ok {
			changes[k].o = j.o
			continue
		}
		changeOf[id] = len(changes)
		changes = append(changes, change{id: id, was: was, o: j.o})
	}

	size := func(o *offer) int {
		if o == nil {
			return 0
		}
		return len(o.refs)
	}
	covers := largestFirst(len(changes)*numTiers, func(i int) int {
		c := &changes[i/numTiers]
		return size(c.was) + size(c.o)
	})
	// The tiers whose covers others are taken within (coverBase) first, so
	// that the others find them made rather than wait for them.
	var first, then []int
	for _, k := range covers {
		if t := k % numTiers; coverBase[t] == t {
			first = append(first, k)
		} else {
			then = append(then, k)
		}
	}
	cc := newCoverCache()
	scratch := make([]coverScratch, workers())
	for _, covers := range [][]int{first, then} {
		parallel(len(covers), func(w, k int) {
			c, t := &changes[covers[k]/numTiers], covers[k]%numTiers
			sc := &scratch[w]
			m := &c.marks[t]
			if c.was != nil {
				m.old = coverCells(c.was, t, cc, sc)
			}
			if c.o != nil {
				m.cells = coverCells(c.o, t, cc, sc)
			}
		})
	}
	for t := range numTiers {
		prev[t], next[t] = make(map[uint32][]uint64), make(map[uint32][]uint64)
		for _, c := range changes {
			if m := c.marks[t]; !slices.Equal(m.old, m.cells) {
				prev[t][c.id], next[t][c.id] = m.old, m.cells
			}
		}
	}
	return prev, next
}

// workers is how many goroutines a rebuild spreads its work over.
func workers() int { return runtime.GOMAXPROCS(0) }

// parallel calls f(w, i) for every i in [0, n), in order of i as far as
// goroutines allow, on workers() goroutines; w, below workers(), names the
// goroutine, so that f may keep scratch memory by it.
func parallel(n int, f func(w, i int)) {
	if n == 1 || workers() == 1 {
		for i := range n {
			f(0, i) // a small write's rebuild: no goroutines to start
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range min(workers(), n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(w, i)
			}
		})
	}
	wg.Wait()
}

// largestFirst returns 0…n-1 ordered by size, largest first: handed to
// parallel, the goroutines then finish at about the same time.
func largestFirst(n int, size func(int) int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(size(b), size(a)) })
	return order
}

// SetStock applies a point-of-sale batch: each row marks a product of a
// store out of stock or back in stock. It flips bits in place; nothing is
// rebuilt, and it never waits for a store writer's rebuild.
func (ix *Index) SetStock(advertiserID string, rows []campaigns.StockUpdate) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := ix.outOf(advertiserID)
	for _, r := range rows {
		k := stockKey{r.StoreID, r.ProductID}
		isOut := !r.Available()
		if isOut {
			out.add(k)
		} else {
			out.del(k)
		}
		st, ok := ix.stores[advertiserID].get(r.StoreID)
		if !ok {
			continue
		}
		id, ok := ix.offerIDs[offerKey{advertiserID, r.ProductID}]
		if !ok || int(id) >= len(ix.offers) || ix.offers[id] == nil {
			continue
		}
		// Until a rebuild in progress installs its offers, this flips the
		// published one; the rebuild then marks its own from out.
		o := ix.offers[id]
		if i := o.position(st); i >= 0 {
			o.setOut(i, isOut)
		}
	}
}

// Clock is the engine's time source; tests inject their own.
type Clock func() time.Time
