package serving

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/navad/navad/campaigns"
)

// Request is one ad request, validated by the caller.
type Request struct {
	Lat, Lng    float64
	Query       string
	N           int // most ads wanted, ≥ 1
	Mode        campaigns.Mode
	UID         string // opaque user key for frequency caps; may be ""
	PublisherID string
	Now         time.Time // zero means the engine's clock
}

// Ad is one chosen campaign and the store it leads to.
type Ad struct {
	Campaign  *Campaign
	Store     Store
	DistanceM float64 // great-circle metres from the fix to the store
}

// Pacer enforces delivery and frequency caps. Allow reserves one served ad
// of c (for uid, which may be "") and reports false when a cap is reached;
// it is called only for ads about to be served.
type Pacer interface {
	Allow(ctx context.Context, c *Campaign, uid string, now time.Time) bool
}

// Engine answers ad requests from an Index.
type Engine struct {
	index *Index
	loc   *time.Location
	now   Clock
	pacer Pacer
	pool  sync.Pool
}

// NewEngine returns an engine over index. Schedules are read in loc. now and
// pacer may be nil (the wall clock; no caps).
func NewEngine(index *Index, loc *time.Location, now Clock, pacer Pacer) (*Engine, error) {
	if index == nil || loc == nil {
		return nil, errors.New("new engine: index and location are required")
	}
	if now == nil {
		now = time.Now
	}
	e := &Engine{index: index, loc: loc, now: now, pacer: pacer}
	e.pool.New = func() any { return new(scratch) }
	return e, nil
}

// Now returns the engine's current time.
func (e *Engine) Now() time.Time { return e.now() }

// scratch is the per-request working memory, pooled so that a decision
// allocates almost nothing.
type scratch struct {
	q     campaigns.Query
	refs  []uint32
	bits  []uint64
	srch  search
	group []Ad
	// query is the request's query, parsed into q once parsed is set: a
	// query whose triggered campaigns are cached is parsed only for a
	// negative list.
	query  string
	parsed bool
	// negs[id] is what the negative list id did to this request's query,
	// once tested (negUntested before; the IDs in negSeen are reset after
	// the decision).
	negs    []uint8
	negSeen []uint16
}

// What a negative list did to a request's query (scratch.negs).
const (
	negUntested uint8 = iota
	negPasses
	negBlocks
)

// blocked reports whether c's negative keywords block the query. A list
// shared by many campaigns is tested once a request, and a campaign whose
// list was tested already is not read at all.
func (sc *scratch) blocked(h *rankedCampaign, c *Campaign) bool {
	switch h.neg {
	case 0:
		return false
	case negUnshared:
		return sc.block(c)
	}
	if int(h.neg) >= len(sc.negs) {
		sc.negs = append(sc.negs, make([]uint8, int(h.neg)+1-len(sc.negs))...)
	}
	switch sc.negs[h.neg] {
	case negPasses:
		return false
	case negBlocks:
		return true
	}
	b := sc.block(c)
	sc.negs[h.neg] = negPasses
	if b {
		sc.negs[h.neg] = negBlocks
	}
	sc.negSeen = append(sc.negSeen, h.neg)
	return b
}

// block reports whether c's negative keywords block the request's query,
// parsing it first if need be.
func (sc *scratch) block(c *Campaign) bool {
	if !sc.parsed {
		sc.q.Parse(sc.query)
		sc.parsed = true
	}
	return c.negatives.Block(&sc.q)
}

// forgetNegatives resets what blocked learnt, for the next request.
func (sc *scratch) forgetNegatives() {
	for _, id := range sc.negSeen {
		sc.negs[id] = negUntested
	}
	sc.negSeen = sc.negSeen[:0]
}

// Decide appends to dst the ads for req, at most req.N, at most one per
// campaign: the triggered, live campaigns in order of priority, then bid,
// then the distance to their nearest eligible store within their radius.
//
// The work is proportional to the campaigns the query triggers (a bit test
// each for those with nothing nearby) plus the stores examined around the
// fix by the few campaigns searched; it never scans all campaigns or stores.
// Safe for concurrent use.
func (e *Engine) Decide(ctx context.Context, req *Request, dst []Ad) ([]Ad, error) {
	snap := e.index.Snapshot()
	sc := e.pool.Get().(*scratch)
	defer e.pool.Put(sc)
	defer sc.forgetNegatives()

	sc.query, sc.parsed = req.Query, false
	set := snap.triggered(req.Query, sc)
	if len(set.ranks) == 0 {
		return dst, nil // the commonest answer, and the cheapest
	}
	now := req.Now
	if now.IsZero() {
		now = e.now()
	}
	at := now.UnixNano() // the period is exact to the instant (periodNano)
	minute := campaigns.MinuteOfWeek(now.In(e.loc))
	mode := modeBit(req.Mode)

	sc.srch.reset(req.Lat, req.Lng, minute)
	sc.srch.spread = len(set.ranks) >= spreadFrom
	sc.group = sc.group[:0]
	start := len(dst)
	n := req.N

	var group uint32 // of the candidates in sc.group
	done := false
	for i, r := range set.ranks {
		h := &set.hot[i]
		if len(sc.group) > 0 && h.group != group {
			dst = e.flush(ctx, sc, dst, start+n, req.UID, now)
			// Out of time (or the client left): answer with what there
			// is rather than search on for ads the pacer could not
			// confirm anyway.
			if len(dst)-start >= n || ctx.Err() != nil {
				done = true
				break
			}
		}
		// The presence bit before the rest: where a popular keyword
		// triggers hundreds of campaigns, most have nothing near, and the
		// bit is found from the triggered set's copy of the campaign's
		// ranked entry alone, without reading the campaign or its offer
		// (a cache miss each).
		if !h.live(at, mode) || !sc.srch.present(snap, h.tier, h.offer) || int(h.offer) >= len(snap.offers) {
			continue
		}
		o := snap.offers[h.offer]
		if o == nil {
			continue
		}
		// The campaign itself is read only for a schedule or publishers,
		// a negative list not tested yet, or an ad.
		c := snap.byRank[r]
		if h.more && !c.liveAt(minute, req.PublisherID) || sc.blocked(h, c) {
			continue
		}
		st, d, ok := sc.srch.nearest(o, float64(h.radius))
		if !ok {
			continue
		}
		group = h.group
		sc.group = append(sc.group, Ad{Campaign: c, Store: st, DistanceM: d})
	}
	if !done && len(sc.group) > 0 {
		dst = e.flush(ctx, sc, dst, start+n, req.UID, now)
	}
	if sc.srch.err != nil {
		return dst[:start], sc.srch.err
	}
	return dst, nil
}

// match appends the slots of the campaigns the query triggers: the base
// index's, less those superseded since it was built, and the delta's.
func (s *Snapshot) match(q *campaigns.Query, dst []uint32) []uint32 {
	dst = s.kwBase.Match(q, dst)
	if s.kwDelta == nil {
		return dst
	}
	kept := dst[:0]
	for _, slot := range dst {
		if w := slot / 64; int(w) >= len(s.stale) || s.stale[w]&(1<<(slot%64)) == 0 {
			kept = append(kept, slot)
		}
	}
	return s.kwDelta.Match(q, kept)
}

// flush moves the current group of equally ranked candidates into dst,
// nearest first, until dst reaches limit; each ad passes the pacer first.
func (e *Engine) flush(ctx context.Context, sc *scratch, dst []Ad, limit int, uid string, now time.Time) []Ad {
	g := sc.group
	if len(g) > 1 {
		slices.SortFunc(g, func(a, b Ad) int {
			switch {
			case a.DistanceM < b.DistanceM:
				return -1
			case a.DistanceM > b.DistanceM:
				return 1
			}
			return strings.Compare(a.Campaign.ID, b.Campaign.ID)
		})
	}
	for _, ad := range g {
		if len(dst) >= limit {
			break
		}
		if e.pacer != nil && !e.pacer.Allow(ctx, ad.Campaign, uid, now) {
			continue
		}
		dst = append(dst, ad)
	}
	sc.group = g[:0]
	return dst
}

// spreadFrom is how many triggered campaigns make a decision spread the
// sparse presence sets it looks up into bitsets (search.lookUp): the slowest
// decisions are popular keywords, which test a bit for each of hundreds of
// campaigns, and a tenth of their time went to searching sorted lists.
const spreadFrom = 32

// rankedCampaign is what the decision loop reads of a triggered campaign
// before it knows whether the campaign has anything near: Snapshot.ranked
// holds it by rank, 32 bytes a campaign, so that a keyword triggering
// hundreds of campaigns reads a few dense cache lines rather than every
// campaign (the slowest decisions spent a tenth of their time in that
// first read of each campaign, and a twentieth reading each offer's ID).
type rankedCampaign struct {
	start, end int64 // Unix nanoseconds, inclusive; 0 means unbounded (periodNano)
	offer      uint32
	group      uint32 // the rank of the first campaign of equal priority and bid
	tier       uint8
	modes      uint8
	more       bool   // a schedule or publishers to check (Campaign.liveAt)
	radius     uint16 // metres
	neg        uint16 // the negative keywords' ID (Index.negID); 0 for none
}

// negUnshared is the negative list ID of a campaign whose list has no ID
// of its own: tested for each campaign.
const negUnshared = 1<<16 - 1

// live reports whether the campaign may serve now and in this mode, as far
// as h tells: Campaign.liveAt checks the rest when h.more is set.
func (h *rankedCampaign) live(at int64, mode uint8) bool {
	return (h.start == 0 || at >= h.start) && (h.end == 0 || at <= h.end) && h.modes&mode != 0
}

// liveAt reports whether c's schedule holds this minute and it serves this
// publisher.
func (c *Campaign) liveAt(minute int, publisher string) bool {
	return c.week.ContainsMinute(minute) && (len(c.publishers) == 0 || slices.Contains(c.publishers, publisher))
}
