package serving

import (
	"context"
	"errors"
	mathbits "math/bits"
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
	Store     *Store
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

	sc.q.Parse(req.Query)
	sc.refs = snap.match(&sc.q, sc.refs[:0])
	if len(sc.refs) == 0 {
		return dst, nil // the commonest answer, and the cheapest
	}
	now := req.Now
	if now.IsZero() {
		now = e.now()
	}
	unix := now.Unix()
	minute := campaigns.MinuteOfWeek(now.In(e.loc))
	mode := modeBit(req.Mode)

	// A bitset over ranks both removes duplicate refs and yields the
	// triggered campaigns in rank order without sorting.
	words := (len(snap.byRank) + 63) / 64
	if cap(sc.bits) < words {
		sc.bits = make([]uint64, words)
	}
	sc.bits = sc.bits[:words]
	lo, hi := words, -1
	for _, slot := range sc.refs {
		r := snap.rankOf[slot]
		if r == noRank {
			continue
		}
		w := int(r / 64)
		sc.bits[w] |= 1 << (r % 64)
		lo, hi = min(lo, w), max(hi, w)
	}
	sc.srch.reset(req.Lat, req.Lng, minute)
	sc.group = sc.group[:0]
	start := len(dst)
	n := req.N

	var groupPrio int
	var groupBid float64
	done := false
	for w := lo; w <= hi; w++ {
		word := sc.bits[w]
		sc.bits[w] = 0 // leave the bitset clean for the next request
		if done {
			continue
		}
		for word != 0 {
			r := w*64 + mathbits.TrailingZeros64(word)
			word &= word - 1
			c := snap.byRank[r]
			if len(sc.group) > 0 && (c.Priority != groupPrio || c.BidCPM != groupBid) {
				dst = e.flush(ctx, sc, dst, start+n, req.UID, now)
				// Out of time (or the client left): answer with what
				// there is rather than search on for ads the pacer
				// could not confirm anyway.
				if len(dst)-start >= n || ctx.Err() != nil {
					done = true
					break
				}
			}
			if !c.live(unix, minute, mode, req.PublisherID) || int(c.offer) >= len(snap.offers) {
				continue
			}
			// The presence bit before the negatives: where a popular
			// keyword triggers hundreds of campaigns, most have nothing
			// near, and one bit test is cheaper than matching negatives.
			o := snap.offers[c.offer]
			if o == nil || !sc.srch.presentSet(snap, c.tier).has(o.id) || c.negatives.Block(&sc.q) {
				continue
			}
			st, d, ok := sc.srch.nearest(o, c.radiusM)
			if !ok {
				continue
			}
			groupPrio, groupBid = c.Priority, c.BidCPM
			sc.group = append(sc.group, Ad{Campaign: c, Store: st, DistanceM: d})
		}
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

// live reports whether c may serve now, in this mode, to this publisher.
func (c *Campaign) live(unix int64, minute int, mode uint8, publisher string) bool {
	if c.start != 0 && unix < c.start || c.end != 0 && unix > c.end {
		return false
	}
	if c.modes&mode == 0 || !c.week.ContainsMinute(minute) {
		return false
	}
	return len(c.publishers) == 0 || slices.Contains(c.publishers, publisher)
}
