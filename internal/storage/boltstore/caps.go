package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

var _ storage.Caps = (*Caps)(nil)

// Caps is the embedded storage.Caps: the counters live in memory, exact
// under any concurrency (each campaign's are guarded by one mutex, held for
// a few map operations), and are kept in the Store's bolt file.
//
// # Durability, and what a kill -9 loses
//
// Totals and daily counts of the campaigns that served since the last flush
// are written in one transaction every FlushInterval (1 s by default) and on
// Close; open per-user windows are written on Close only. So a restart after
// Close loses nothing, and a kill -9 loses the counts of the last
// FlushInterval and every open user window: after a crash a campaign may
// serve about one second's worth of its traffic beyond a delivery cap, and a
// user may see a campaign's ads up to its frequency cap again. That is
// acceptable because caps pace delivery rather than bill it (billing counts
// impressions from the tracking events), crashes are rare, and the
// alternative, an fsync for every ad served, would hold decisions to the
// disk's flush rate of a few hundred a second, far below a national peak.
//
// # Memory
//
// The per-user windows of all campaigns share one table (userWindows)
// sized once from MaxUserWindows: 48 bytes a window allowed (a slot of 24
// bytes, the table at most half full), allocated in 64 parts as windows
// first land in them (or all at once, by Prefault), 96 MB at the default.
// A window (a 64-bit hash of the uid, the count and the closing time) also
// takes 16 bytes in its campaign's expiry queue until it is dropped, within
// FlushInterval after it closes. MaxUserWindows bounds them against floods
// of fresh uids: when that many windows are open, a user without one is
// served as if the request had no uid (not capped per user, still counted
// against delivery caps), and Stats counts it. Daily counts are dropped two
// days after their day ends.
//
// # Deleted campaigns
//
// Store.DeleteCampaign removes a campaign's counters from the file in its
// transaction, then has every Caps open on the Store forget them: they
// leave the map, their user windows and expiry queues go, and the slot
// table no longer points to them. A reservation still in flight may find
// the campaign afterwards, by its slot or by creating its counters anew;
// the first it refuses (the counters are marked deleted), the second
// Flush drops, as it drops every campaign that campaigns_gone names rather
// than write it: the ID is never given again, so nothing counted for it
// can matter. NewCaps leaves out what the file still holds of deleted
// campaigns (written before deletes freed it) and removes it.
//
// Layout: bucket caps holds "campaign NUL t" → total and "campaign NUL d NUL
// day" → count and the day's end; bucket caps_users holds, between a Close
// and the next open, "campaign" → the open windows.
type Caps struct {
	db  *Store
	opt CapsOptions

	mu     sync.RWMutex // held for reading by every call; Close takes it to write
	closed bool

	cmu       sync.RWMutex // guards campaigns and nums, and growing bySlot
	campaigns map[string]*capCampaign
	nums      uint32 // the last capCampaign.num given
	// bySlot finds a campaign's counters by the caller's slot
	// (storage.CapRequest.Slot) without hashing its ID, which, with the
	// map's probe and the key's compare, was 2.7% of a decision in process.
	// An entry is checked against the ID, so a slot that names another
	// campaign (another index's) only costs the map. Replaced, larger,
	// under cmu; its entries are set without it.
	bySlot atomic.Pointer[[]atomic.Pointer[capCampaign]]
	users  *userWindows

	latest  atomic.Int64 // the latest Now reserved, Unix ns: the clock of expiry
	windows atomic.Int64 // open user windows, all campaigns
	full    atomic.Uint64

	// given is the highest give-back number applied for each campaign
	// and giver (storage.GiveBack), so that a Return sent again takes
	// nothing back twice. In memory: a giver is a Pacer of this process.
	givenMu sync.Mutex
	given   map[givenKey]uint64

	flushMu sync.Mutex  // one flush at a time
	scratch capsScratch // Flush's buffers, under flushMu
	stop    chan struct{}
	done    chan struct{}
}

// CapsOptions tune Caps. Zero values take the defaults.
type CapsOptions struct {
	// FlushInterval is how often counts are written to the file, and how
	// often closed user windows are dropped: 1s by default.
	FlushInterval time.Duration
	// MaxUserWindows bounds the open per-user windows: 2,000,000 by default
	// (a table of 96 MB, and 16 bytes a window open).
	MaxUserWindows int64
	// OnError is told of a background flush that failed (it is retried at
	// the next). nil ignores them; Close reports the last flush's error.
	OnError func(error)
}

// CapsStats describe what Caps holds.
type CapsStats struct {
	Campaigns   int    // campaigns with counts
	UserWindows int64  // open per-user windows
	Unwindowed  uint64 // users served uncapped because MaxUserWindows were open
}

var (
	bucketCaps      = []byte("caps")
	bucketCapsUsers = []byte("caps_users")
)

// dayKeep is how long after its end a day's count is kept.
const dayKeep = 48 * time.Hour

type capCampaign struct {
	id    string
	num   uint32 // its number in Caps.users, from 1
	mu    sync.Mutex
	total int64
	days  map[string]*capDay
	// today is the day of the last reservation, and todayName its name
	// (the pacer's string, so usually the same pointer): most reservations
	// are for it, and find it without hashing into days.
	today     *capDay
	todayName string
	queues    expiryQueues // its user windows, by period, in the order they opened
	dirty     bool         // counts changed since the last flush
	gone      []string     // days dropped since the last flush
	// daysDue is when the first of days is to be dropped (Unix ns; 0 when
	// there are none), so that a flush looks through the days of a
	// campaign only then, not every second.
	daysDue int64
	// deleted says the campaign was deleted and these counters forgotten
	// (Caps.drop): a reservation that still found them refuses.
	deleted bool
	// leases is the last lease applied of each holder (storage.LeaseID),
	// so that a Lease sent again counts nothing twice. In memory: a holder
	// is a Pacer of this process.
	leases map[string]lastLease
}

// lastLease is a holder's last lease of a campaign: its number, what it
// granted, and when (the request's Now, Unix ns).
type lastLease struct {
	seq     uint64
	granted int64
	at      int64
}

// maxHolders is how many holders' last leases a campaign keeps before it
// forgets those older than storage.GiverTTL.
const maxHolders = 16

// day returns the count of the day called name, nil when there is none.
// cc.mu is held.
func (cc *capCampaign) day(name string) *capDay {
	if cc.today != nil && cc.todayName == name {
		return cc.today
	}
	d := cc.days[name]
	if d != nil {
		cc.today, cc.todayName = d, name
	}
	return d
}

// addDay adds a day's count. cc.mu is held.
func (cc *capCampaign) addDay(name string, d *capDay) {
	cc.days[name] = d
	cc.today, cc.todayName = d, name
	if due := d.end + int64(dayKeep); cc.daysDue == 0 || due < cc.daysDue {
		cc.daysDue = due
	}
}

type capDay struct {
	n   int64
	end int64 // Unix ns
}

type capWindow struct {
	n   int64
	end int64 // Unix ns: the window is open before it
}

// NewCaps opens the caps kept in s, loads them, and starts writing them back
// every opt.FlushInterval until Close, which must come before s.Close.
func NewCaps(s *Store, opt CapsOptions) (*Caps, error) {
	if s == nil {
		return nil, errors.New("new caps: store is required")
	}
	if opt.FlushInterval <= 0 {
		opt.FlushInterval = time.Second
	}
	if opt.MaxUserWindows <= 0 {
		opt.MaxUserWindows = 2_000_000
	}
	c := &Caps{db: s, opt: opt, campaigns: make(map[string]*capCampaign), users: newUserWindows(opt.MaxUserWindows),
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.update(context.Background(), c.load); err != nil {
		return nil, fmt.Errorf("new caps: %w", err)
	}
	s.capsMu.Lock()
	if s.caps == nil {
		s.caps = make(map[*Caps]struct{})
	}
	s.caps[c] = struct{}{}
	s.capsMu.Unlock()
	go c.run()
	return c, nil
}

// Prefault allocates the table of user windows in full and has the
// kernel back it now, rather than page by page as windows first land in
// it: memory reserved up front (96 MB at the default MaxUserWindows), and
// no page faults on the decision path. navad calls it once its index is
// loaded, so that the table does not add to the load's peak, and before it
// moves its memory into huge pages, so that the table goes with it. Safe
// for concurrent use.
func (c *Caps) Prefault() { c.users.prefault() }

// load reads the counts and the windows saved by the last Close, which are
// then removed: a crash later must not bring back stale windows. Those of
// deleted campaigns are removed unread.
func (c *Caps) load(tx *bolt.Tx) error {
	b, err := tx.CreateBucketIfNotExists(bucketCaps)
	if err != nil {
		return err
	}
	gone := tx.Bucket(bucketCampaignsGone)
	var stale [][]byte // keys of deleted campaigns, removed after the scan
	err = b.ForEach(func(k, v []byte) error {
		id, rest, ok := cutKey(k)
		switch {
		case ok && gone.Get([]byte(id)) != nil:
			stale = append(stale, bytes.Clone(k))
		case ok && string(rest) == "t" && len(v) == 8:
			c.campaign(id).total = int64(binary.BigEndian.Uint64(v))
		case ok && len(rest) > 2 && rest[0] == 'd' && rest[1] == sep && len(v) == 16:
			c.campaign(id).addDay(string(rest[2:]), &capDay{n: int64(binary.BigEndian.Uint64(v)), end: int64(binary.BigEndian.Uint64(v[8:]))})
		default:
			return fmt.Errorf("caps key %q: %w", k, errCorrupt)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	if users := tx.Bucket(bucketCapsUsers); users != nil {
		var queue []capExpiry
		err := users.ForEach(func(k, v []byte) error {
			if len(v)%24 != 0 {
				return fmt.Errorf("caps users of %q: %w", k, errCorrupt)
			}
			if gone.Get(k) != nil {
				return nil // the bucket goes below
			}
			cc := c.campaign(string(k))
			queue = queue[:0]
			for ; len(v) > 0; v = v[24:] {
				key := binary.BigEndian.Uint64(v)
				w := capWindow{n: int64(binary.BigEndian.Uint64(v[8:])), end: int64(binary.BigEndian.Uint64(v[16:]))}
				// Past MaxUserWindows (lowered since they were saved) a
				// window is left out: its user is served afresh.
				if c.windows.Load() < c.opt.MaxUserWindows && c.users.put(cc.num, key, w) {
					queue = append(queue, capExpiry{key, w.end})
					c.windows.Add(1)
				}
			}
			slices.SortFunc(queue, func(a, b capExpiry) int { return cmp.Compare(a.end, b.end) })
			for _, e := range queue {
				cc.queues.push(loadedPeriod, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketCapsUsers); err != nil {
			return err
		}
	}
	// What the file holds is written already; a campaign created from now
	// on is dirty, so that Flush sees it at least once (Caps.campaign).
	for _, cc := range c.campaigns {
		cc.dirty = false
	}
	return nil
}

// deleteCaps removes the counters of the campaign id from the file: its
// keys in bucket caps and its windows in caps_users. DeleteCampaign calls
// it in its transaction.
func deleteCaps(tx *bolt.Tx, id string) error {
	if b := tx.Bucket(bucketCaps); b != nil {
		prefix := append([]byte(id), sep)
		var keys [][]byte // bbolt's cursors skip a key after a Delete
		cur := b.Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	if b := tx.Bucket(bucketCapsUsers); b != nil {
		return b.Delete([]byte(id))
	}
	return nil
}

// forgetCaps has every Caps open on s forget the counters of the deleted
// campaign id.
func (s *Store) forgetCaps(id string) {
	s.capsMu.Lock()
	open := make([]*Caps, 0, len(s.caps))
	for c := range s.caps {
		open = append(open, c)
	}
	s.capsMu.Unlock()
	// Not under capsMu: forget waits for a Close in progress, which
	// takes capsMu.
	for _, c := range open {
		c.forget(id)
	}
}

// forget drops from memory the counters the map holds for the deleted
// campaign id.
func (c *Caps) forget(id string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.closed {
		c.release(id, nil)
	}
}

// release is forget for callers that hold c.mu (Flush, under Close) or
// need not; with cc not nil it drops cc (and the map's entry only if it
// is cc), else whatever the map holds.
func (c *Caps) release(id string, cc *capCampaign) {
	c.cmu.Lock()
	if held := c.campaigns[id]; held != nil && (cc == nil || held == cc) {
		delete(c.campaigns, id)
		cc = held
	}
	c.cmu.Unlock()
	if cc != nil {
		c.drop(cc)
	}
}

// drop marks cc deleted and frees what it holds: its user windows, its
// expiry queues and days, and the slot table's entries for it. cc is out
// of the map already. Its cost is the slot table's length (deletes are
// rare).
func (c *Caps) drop(cc *capCampaign) {
	cc.mu.Lock()
	cc.deleted = true
	cc.queues.expire(math.MaxInt64, func(e capExpiry) {
		if c.users.drop(cc.num, e.key, math.MaxInt64) {
			c.windows.Add(-1)
		}
	})
	cc.queues = nil
	cc.days, cc.today, cc.todayName, cc.gone, cc.dirty = nil, nil, "", nil, false
	cc.mu.Unlock()
	if t := c.bySlot.Load(); t != nil {
		for i := range *t {
			(*t)[i].CompareAndSwap(cc, nil)
		}
	}
}

func cutKey(k []byte) (string, []byte, bool) {
	for i, b := range k {
		if b == sep {
			return string(k[:i]), k[i+1:], true
		}
	}
	return "", nil, false
}

// counters returns the counters of id for a reservation or a lease,
// creating them when it has none: by slot (storage.CapRequest.Slot) when
// it names them, else by ID. The ID is checked when they are created,
// before it can become part of a key in the file: once, not on every ad
// (it was 1.6% of a decision's time in process).
func (c *Caps) counters(id string, slot uint32) (*capCampaign, error) {
	if t := c.bySlot.Load(); t != nil && slot < uint32(len(*t)) {
		// The IDs are usually the same string, compared by pointer.
		if cc := (*t)[slot].Load(); cc != nil && cc.id == id {
			return cc, nil
		}
	}
	c.cmu.RLock()
	cc := c.campaigns[id]
	c.cmu.RUnlock()
	if cc == nil {
		if err := checkKey("campaign id", id); err != nil {
			return nil, campaigns.Errorf(campaigns.Invalid, "%v", err)
		}
		cc = c.campaign(id)
	}
	if slot > 0 && slot < maxCapSlot {
		c.slotFor(slot).Store(cc)
	}
	return cc, nil
}

// maxCapSlot bounds the slots found without the map: bySlot is at most
// 8 MB, whatever a caller passes.
const maxCapSlot = 1 << 20

// slotFor returns bySlot's entry for slot, growing the table if need be.
// An entry set in the table being replaced may be lost: that slot then
// costs the map once more.
func (c *Caps) slotFor(slot uint32) *atomic.Pointer[capCampaign] {
	if t := c.bySlot.Load(); t != nil && slot < uint32(len(*t)) {
		return &(*t)[slot]
	}
	c.cmu.Lock()
	defer c.cmu.Unlock()
	t := c.bySlot.Load()
	if t == nil || slot >= uint32(len(*t)) {
		n := 1024
		if t != nil {
			n = 2 * len(*t)
		}
		for n <= int(slot) {
			n *= 2
		}
		grown := make([]atomic.Pointer[capCampaign], n)
		if t != nil {
			for i := range *t {
				grown[i].Store((*t)[i].Load())
			}
		}
		c.bySlot.Store(&grown)
		t = &grown
	}
	return &(*t)[slot]
}

// campaign returns the counters of id, creating them.
func (c *Caps) campaign(id string) *capCampaign {
	c.cmu.RLock()
	cc := c.campaigns[id]
	c.cmu.RUnlock()
	if cc != nil {
		return cc
	}
	c.cmu.Lock()
	defer c.cmu.Unlock()
	if cc = c.campaigns[id]; cc == nil {
		c.nums++
		// Dirty, so that the next Flush checks it against campaigns_gone
		// even when only leased ads (no total, no day) count for it.
		cc = &capCampaign{id: id, num: c.nums, days: make(map[string]*capDay), dirty: true}
		c.campaigns[id] = cc
	}
	return cc
}

func (c *Caps) begin(ctx context.Context) error {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		c.mu.RUnlock()
		return err
	}
	return nil
}

func (c *Caps) end() { c.mu.RUnlock() }

// Reserve counts one served ad if no cap of r is reached (storage.Caps).
// It takes the campaign's mutex for a few lookups and allocates only
// for a campaign's first ad, a new day, and for every 1,024th user window
// of a campaign the first time its queue gets that long. Safe for
// concurrent use.
func (c *Caps) Reserve(ctx context.Context, r storage.CapRequest) (bool, error) {
	if err := r.Check(); err != nil {
		return false, err
	}
	if err := c.begin(ctx); err != nil {
		return false, fmt.Errorf("reserve: %w", err)
	}
	defer c.end()
	now := r.Now.UnixNano()
	c.advance(now)
	cc, err := c.counters(r.CampaignID, r.Slot)
	if err != nil {
		return false, err
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.deleted {
		c.unslot(r.Slot, cc)
		return false, nil
	}
	day := cc.day(r.Day)
	if !r.Leased {
		if r.TotalLimit > 0 && cc.total >= r.TotalLimit {
			return false, nil
		}
		if r.DailyLimit > 0 && day != nil && day.n >= r.DailyLimit {
			return false, nil
		}
	}
	var (
		key        uint64
		w          capWindow
		userCapped = r.UserCapped()
		known      bool
		opened     bool
	)
	if userCapped {
		key = xxhash.Sum64String(r.UID)
		w, known = c.users.get(cc.num, key)
		if !known && c.windows.Load() >= c.opt.MaxUserWindows {
			c.expire(cc, c.latest.Load()) // perhaps this campaign's closed windows make room
		}
		switch {
		case known && now < w.end && w.n >= r.UserLimit:
			return false, nil
		case known && now < w.end:
			w.n++
		case !known && c.windows.Load() >= c.opt.MaxUserWindows:
			c.full.Add(1)
			userCapped = false // served as if without uid
		default: // no window open: this ad opens one
			w, opened = capWindow{n: 1, end: now + int64(r.UserPeriod)}, true
		}
	}
	if !r.Leased {
		cc.count(&r, day, 1)
	}
	switch {
	case !userCapped:
	case !c.users.put(cc.num, key, w): // a new window, and its part of the table is full
		c.full.Add(1)
	default:
		if !known {
			c.windows.Add(1)
		}
		if opened {
			cc.queues.push(int64(r.UserPeriod), capExpiry{key, w.end})
		}
	}
	return true, nil
}

// unslot clears the slot table's entry for slot if it holds cc, which a
// reservation may have set after Caps.drop cleared it.
func (c *Caps) unslot(slot uint32, cc *capCampaign) {
	if t := c.bySlot.Load(); t != nil && slot < uint32(len(*t)) {
		(*t)[slot].CompareAndSwap(cc, nil)
	}
}

// advance moves the clock of expiry to now, if it is later.
func (c *Caps) advance(now int64) {
	for {
		// To the millisecond: a write per call would bounce the cache line
		// between cores, and expiry needs no finer clock.
		l := c.latest.Load()
		if now <= l+int64(time.Millisecond) || c.latest.CompareAndSwap(l, now) {
			return
		}
	}
}

// count adds n ads to cc's total and to r's day (day, or a new one when
// nil). cc.mu is held.
func (cc *capCampaign) count(r *storage.CapRequest, day *capDay, n int64) {
	cc.total += n
	if day == nil {
		day = &capDay{end: r.DayEnd.UnixNano()}
		cc.addDay(r.Day, day)
	}
	day.n += n
	cc.dirty = true
}

// Lease counts up to want ads against the total and the day at once
// (storage.Caps).
func (c *Caps) Lease(ctx context.Context, r storage.CapRequest, want int64, id storage.LeaseID) (granted, left int64, err error) {
	if err := r.CheckLease(want); err != nil {
		return 0, 0, err
	}
	if err := id.Check(); err != nil {
		return 0, 0, err
	}
	if err := c.begin(ctx); err != nil {
		return 0, 0, fmt.Errorf("lease: %w: %w", storage.ErrNotApplied, err)
	}
	defer c.end()
	c.advance(r.Now.UnixNano())
	cc, err := c.counters(r.CampaignID, r.Slot)
	if err != nil {
		return 0, 0, err
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.deleted {
		c.unslot(r.Slot, cc)
		return 0, 0, nil
	}
	day := cc.day(r.Day)
	left = math.MaxInt64
	if r.TotalLimit > 0 {
		left = max(r.TotalLimit-cc.total, 0)
	}
	if r.DailyLimit > 0 {
		d := r.DailyLimit
		if day != nil {
			d -= day.n
		}
		left = min(left, max(d, 0))
	}
	last, seen := cc.leases[id.By]
	switch {
	case seen && id.Seq < last.seq: // overtaken by a later lease
		return 0, left, nil
	case seen && id.Seq == last.seq: // sent again: counted already
		return last.granted, left, nil
	}
	granted = min(want, left)
	if granted > 0 {
		cc.count(&r, day, granted)
	}
	if left != math.MaxInt64 {
		left -= granted
	}
	cc.keepLease(id, lastLease{seq: id.Seq, granted: granted, at: r.Now.UnixNano()})
	return granted, left, nil
}

// keepLease records the last lease of id's holder, forgetting, once many
// holders are kept, those whose last lease is older than storage.GiverTTL.
// cc.mu is held.
func (cc *capCampaign) keepLease(id storage.LeaseID, l lastLease) {
	if cc.leases == nil {
		cc.leases = make(map[string]lastLease)
	}
	if len(cc.leases) >= maxHolders {
		for by, old := range cc.leases {
			if l.at-old.at > int64(storage.GiverTTL) {
				delete(cc.leases, by)
			}
		}
	}
	cc.leases[id.By] = l
}

type givenKey struct{ campaign, by string }

// Return gives back n leased ads that were not served, unless gb's number
// is not above its giver's highest for the campaign (storage.Caps).
func (c *Caps) Return(ctx context.Context, campaignID, day string, n int64, gb storage.GiveBack) error {
	if n < 1 {
		return campaigns.Errorf(campaigns.Invalid, "return of %d ads: want at least 1", n)
	}
	if err := gb.Check(); err != nil {
		return err
	}
	if err := c.begin(ctx); err != nil {
		return fmt.Errorf("return: %w: %w", storage.ErrNotApplied, err)
	}
	defer c.end()
	if !c.newGiveBack(campaignID, gb) {
		return nil
	}
	c.cmu.RLock()
	cc := c.campaigns[campaignID]
	c.cmu.RUnlock()
	if cc == nil {
		return nil
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.total = max(cc.total-n, 0)
	if d := cc.day(day); d != nil {
		d.n = max(d.n-n, 0)
	}
	cc.dirty = true
	return nil
}

// newGiveBack records gb's number as its giver's highest for the campaign
// and reports whether it was above the one before.
func (c *Caps) newGiveBack(campaignID string, gb storage.GiveBack) bool {
	c.givenMu.Lock()
	defer c.givenMu.Unlock()
	k := givenKey{campaignID, gb.By}
	if gb.Seq <= c.given[k] {
		return false
	}
	if c.given == nil {
		c.given = make(map[givenKey]uint64)
	}
	c.given[k] = gb.Seq
	return true
}

// Served returns a campaign's counts (storage.Caps).
func (c *Caps) Served(ctx context.Context, campaignID, day, uid string, now time.Time) (storage.CapCounts, error) {
	if err := c.begin(ctx); err != nil {
		return storage.CapCounts{}, fmt.Errorf("served: %w", err)
	}
	defer c.end()
	c.cmu.RLock()
	cc := c.campaigns[campaignID]
	c.cmu.RUnlock()
	if cc == nil {
		return storage.CapCounts{}, nil
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	n := storage.CapCounts{Total: cc.total}
	if d := cc.day(day); d != nil {
		n.Daily = d.n
	}
	if uid != "" {
		if w, ok := c.users.get(cc.num, xxhash.Sum64String(uid)); ok && now.UnixNano() < w.end {
			n.User = w.n
		}
	}
	return n, nil
}

// Stats reports what Caps holds.
func (c *Caps) Stats() CapsStats {
	c.cmu.RLock()
	n := len(c.campaigns)
	c.cmu.RUnlock()
	return CapsStats{Campaigns: n, UserWindows: c.windows.Load(), Unwindowed: c.full.Load()}
}

// run flushes every FlushInterval until Close.
func (c *Caps) run() {
	defer close(c.done)
	t := time.NewTicker(c.opt.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if err := c.Flush(); err != nil && c.opt.OnError != nil {
				c.opt.OnError(err)
			}
		}
	}
}

// Flush drops closed user windows and old days, and writes the counts that
// changed since the last flush in one transaction. The background loop
// calls it; tests may too.
func (c *Caps) Flush() error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	latest := c.latest.Load()
	// The buffers of the last flush (guarded by flushMu): a flush a second
	// of thousands of campaigns otherwise allocates a megabyte or so.
	sc := &c.scratch
	defer sc.reset()
	c.cmu.RLock()
	for id, cc := range c.campaigns {
		sc.all = append(sc.all, cc)
		sc.ids = append(sc.ids, id)
	}
	c.cmu.RUnlock()
	for i, cc := range sc.all {
		cc.mu.Lock()
		c.expire(cc, latest)
		if cc.dirty || len(cc.gone) > 0 {
			from := len(sc.days)
			for d, v := range cc.days {
				sc.days = append(sc.days, capDayRow{d, *v})
			}
			// A piece of sc.days: when it grows later, the piece stays in
			// the old array.
			days := sc.days[from:len(sc.days):len(sc.days)]
			sc.rows = append(sc.rows, capRow{id: sc.ids[i], total: cc.total, days: days, gone: cc.gone, cc: cc})
			cc.dirty, cc.gone = false, nil
		}
		cc.mu.Unlock()
	}
	rows := sc.rows
	if len(rows) == 0 {
		return nil
	}
	// In key order, each Put lands beside the last one in the B+tree.
	slices.SortFunc(rows, func(a, b capRow) int { return strings.Compare(a.id, b.id) })
	err := c.db.update(context.Background(), func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketCaps)
		if err != nil {
			return err
		}
		gone := tx.Bucket(bucketCampaignsGone)
		// bbolt copies keys, so one buffer serves them all; it keeps values
		// until commit, so they are written end to end into sc.vals.
		var key []byte
		vals := sc.vals[:0]
		defer func() { sc.vals = vals }()
		put := func(v ...int64) error {
			start := len(vals)
			for _, x := range v {
				vals = binary.BigEndian.AppendUint64(vals, uint64(x))
			}
			return b.Put(key, vals[start:len(vals):len(vals)])
		}
		for i := range rows {
			r := &rows[i]
			// A campaign deleted since it counted: DeleteCampaign removed
			// its keys (or will, if it commits after this), and nothing is
			// written for it again.
			if key = append(key[:0], r.id...); gone.Get(key) != nil {
				r.deleted = true
				continue
			}
			key = append(append(append(key[:0], r.id...), sep), 't')
			if err := put(r.total); err != nil {
				return err
			}
			for _, d := range r.days {
				key = append(append(append(key[:0], r.id...), sep, 'd', sep), d.day...)
				if err := put(d.n, d.end); err != nil {
					return err
				}
			}
			for _, d := range r.gone {
				key = append(append(append(key[:0], r.id...), sep, 'd', sep), d...)
				if err := b.Delete(key); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		// Written next time: nothing counted is dropped for a failed write.
		for _, r := range rows {
			r.cc.mu.Lock()
			r.cc.dirty = true
			r.cc.gone = append(r.cc.gone, r.gone...)
			r.cc.mu.Unlock()
		}
		return fmt.Errorf("flush caps: %w", err)
	}
	for _, r := range rows {
		if r.deleted {
			c.release(r.id, r.cc)
		}
	}
	return nil
}

// capsScratch is the buffers of Caps.Flush, kept from one flush to the
// next.
type capsScratch struct {
	all  []*capCampaign
	ids  []string
	rows []capRow
	days []capDayRow // the rows' days, end to end
	vals []byte      // the values written, end to end
}

// capRow is what a flush writes of one campaign.
type capRow struct {
	id    string
	total int64
	days  []capDayRow
	gone  []string
	cc    *capCampaign
	// deleted says campaigns_gone names the campaign: the flush wrote
	// nothing of it, and drops it from memory.
	deleted bool
}

type capDayRow struct {
	day string
	capDay
}

// reset empties sc for the next flush, keeping its arrays but not what
// they point to (campaigns deleted since stay collectable).
func (sc *capsScratch) reset() {
	clear(sc.all)
	clear(sc.ids)
	clear(sc.rows)
	clear(sc.days)
	sc.all, sc.ids, sc.rows, sc.days = sc.all[:0], sc.ids[:0], sc.rows[:0], sc.days[:0]
}

// expire drops cc's windows closed by latest and its days long over.
// Callers hold cc.mu.
func (c *Caps) expire(cc *capCampaign, latest int64) {
	cc.queues.expire(latest, func(e capExpiry) {
		// A window reopened since is queued again with its new end, and
		// dropped by that entry.
		if c.users.drop(cc.num, e.key, latest) {
			c.windows.Add(-1)
		}
	})
	if cc.daysDue == 0 || latest < cc.daysDue {
		return
	}
	cc.daysDue = 0
	for d, v := range cc.days {
		if due := v.end + int64(dayKeep); due <= latest {
			delete(cc.days, d)
			cc.gone = append(cc.gone, d)
			if d == cc.todayName {
				cc.today, cc.todayName = nil, ""
			}
		} else if cc.daysDue == 0 || due < cc.daysDue {
			cc.daysDue = due
		}
	}
}

// Close stops the background flush, waits for calls in progress, and writes
// the counts and the open user windows. It must come before the Store's
// Close. Closing again does nothing.
func (c *Caps) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.stop)
	<-c.done
	errFlush := c.Flush()
	errUsers := c.saveWindows()
	c.db.capsMu.Lock()
	delete(c.db.caps, c)
	c.db.capsMu.Unlock()
	return errors.Join(errFlush, errUsers)
}

// saveWindows writes every open user window, for the next NewCaps. Close
// calls it holding c.mu, so no other call touches the counters.
func (c *Caps) saveWindows() error {
	latest := c.latest.Load()
	err := c.db.update(context.Background(), func(tx *bolt.Tx) error {
		if tx.Bucket(bucketCapsUsers) != nil {
			if err := tx.DeleteBucket(bucketCapsUsers); err != nil {
				return err
			}
		}
		b, err := tx.CreateBucket(bucketCapsUsers)
		if err != nil {
			return err
		}
		byNum := make(map[uint32][]byte)
		c.users.each(func(camp uint32, key uint64, w capWindow) {
			if w.end <= latest {
				return
			}
			v := byNum[camp]
			v = binary.BigEndian.AppendUint64(v, key)
			v = binary.BigEndian.AppendUint64(v, uint64(w.n))
			byNum[camp] = binary.BigEndian.AppendUint64(v, uint64(w.end))
		})
		for id, cc := range c.campaigns {
			if v := byNum[cc.num]; len(v) > 0 {
				if err := b.Put([]byte(id), v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save user windows: %w", err)
	}
	return nil
}
