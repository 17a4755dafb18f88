package serving

import (
	"github.com/navad/navad/geo"
)

// search is the per-request spatial context: the fix, the business-time
// minute of week, and the covers computed so far. Covers are computed
// lazily, so a query that triggers nothing never touches H3.
type search struct {
	lat, lng float64
	fix      unitVec
	minute   int
	cache    *coverCache
	cell     uint64 // the fix's cell at geo.IndexResolution
	haveCell bool
	covered  [len(ladder)]bool
	covers   [len(ladder)][]cellRange // shared with the cache: read only
	tierSet  [numTiers]*offerSet
	tierDone [numTiers]bool
	found    []found // nearest results so far, by offer
	err      error
}

// found is a nearest search already done in this request: campaigns that
// share an offer share its answer.
type found struct {
	offer *offer
	maxM  float64
	store *Store
	d     float64
	ok    bool
}

// nearest returns o's nearest eligible store within maxM, reusing an
// earlier search of the same offer when it answers the question: a store
// found within a smaller radius is the nearest for a larger one too, and
// "none within a larger radius" means none within a smaller one.
func (s *search) nearest(o *offer, maxM float64) (*Store, float64, bool) {
	for _, f := range s.found {
		if f.offer != o {
			continue
		}
		switch {
		case f.ok && f.d <= maxM:
			return f.store, f.d, true
		case f.ok && f.maxM >= maxM, !f.ok && f.maxM >= maxM:
			return nil, 0, false
		}
	}
	st, d, ok := o.nearest(s, maxM)
	s.found = append(s.found, found{offer: o, maxM: maxM, store: st, d: d, ok: ok})
	return st, d, ok
}

func (s *search) reset(cache *coverCache, lat, lng float64, minute int) {
	s.cache, s.lat, s.lng, s.minute = cache, lat, lng, minute
	s.haveCell = false
	s.fix = toUnit(lat, lng)
	s.found = s.found[:0]
	s.covered = [len(ladder)]bool{}
	s.tierDone = [numTiers]bool{}
	s.err = nil
	s.covers = [len(ladder)][]cellRange{}
}

// fixCell returns the fix's cell at geo.IndexResolution: the one H3 (cgo)
// call of a request; coarser cells are its parents, by bit arithmetic.
func (s *search) fixCell() uint64 {
	if !s.haveCell {
		s.haveCell = true
		c, err := geo.Cell(s.lat, s.lng, geo.IndexResolution)
		if err != nil {
			s.err = err
		}
		s.cell = uint64(c)
	}
	return s.cell
}

// cover returns the sorted, merged descendant ranges of the conservative
// cover of ladder step i around the fix.
func (s *search) cover(i int) []cellRange {
	if s.covered[i] {
		return s.covers[i]
	}
	s.covered[i] = true
	rs, err := s.cache.ranges(geo.Parent(s.fixCell(), ladderRes[i]), i)
	if err != nil {
		s.err = err
	}
	s.covers[i] = rs
	return rs
}

// presentSet returns the offers marked in the fix's tier-t cell: looked up
// once per request and tier, then a bit test per campaign.
func (s *search) presentSet(snap *Snapshot, t int) *offerSet {
	if !s.tierDone[t] {
		s.tierDone[t] = true
		s.tierSet[t] = nil
		s.tierSet[t] = snap.presence[t].set(geo.Parent(s.fixCell(), tiers[t].res))
	}
	return s.tierSet[t]
}

var ladderRes = func() (r [len(ladder)]int) {
	for i, l := range ladder {
		r[i] = geo.CellCoverResolution(l)
	}
	return r
}()
