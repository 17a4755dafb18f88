package serving

import (
	"github.com/navad/navad/geo"
)

// search is the per-request spatial context: the fix, the business-time
// minute of week, and the presence sets looked up so far. They are looked
// up lazily, so a query that triggers nothing never touches H3.
type search struct {
	lat, lng float64
	fixV     [3]float64 // the fix on the unit sphere
	minute   int
	cell     uint64 // the fix's cell at geo.IndexResolution
	haveCell bool
	tierSet  [numTiers]offerSet
	tierDone [numTiers]bool
	// With spread set (a query that triggers many campaigns), a sparse
	// tier set is spread into a bitset of spare once looked up, and
	// tierSet holds that bitset instead, so that each campaign's test is
	// one bit rather than a search of the list.
	spread bool
	spare  [numTiers][]uint64
	found  []found // nearest results so far, one per offer searched
	err    error

	// The found entry of each offer, by offer ID, valid where headGen
	// matches gen: a popular keyword can search hundreds of offers, and a
	// scan of found for each would grow with their square.
	head    []int32
	headGen []uint32
	gen     uint32
}

// found is a nearest search already done in this request: campaigns that
// share an offer share its answer.
type found struct {
	maxM  float64
	store Store
	d     float64
	ok    bool
}

// nearest returns o's nearest eligible store within maxM, reusing an
// earlier search of the same offer when it answers the question: a store
// found within some radius is the nearest within any radius, and "none
// within a larger radius" means none within a smaller one. So the latest
// search of an offer answers everything an earlier one did (it was made
// only because they could not answer it), and it alone is kept.
func (s *search) nearest(o *offer, maxM float64) (Store, float64, bool) {
	id := int(o.id)
	if id >= len(s.head) {
		s.head = append(s.head, make([]int32, id+1-len(s.head))...)
		s.headGen = append(s.headGen, make([]uint32, id+1-len(s.headGen))...)
	}
	if s.headGen[id] != s.gen {
		s.head[id], s.headGen[id] = int32(len(s.found)), s.gen
		s.found = append(s.found, found{maxM: -1}) // searched nowhere yet
	}
	f := &s.found[s.head[id]]
	switch {
	case f.ok && f.d <= maxM:
		return f.store, f.d, true
	case f.ok, f.maxM >= maxM:
		return Store{}, 0, false
	}
	f.store, f.d, f.ok = o.nearest(s, maxM)
	f.maxM = maxM
	return f.store, f.d, f.ok
}

func (s *search) reset(lat, lng float64, minute int) {
	s.lat, s.lng, s.minute = lat, lng, minute
	s.haveCell = false
	s.fixV = toUnit(lat, lng)
	s.found = s.found[:0]
	if s.gen++; s.gen == 0 { // wrapped: forget every stamp
		clear(s.headGen)
		s.gen = 1
	}
	s.tierDone = [numTiers]bool{}
	s.tierSet = [numTiers]offerSet{} // views of a snapshot's arrays: let a replaced one go
	s.spread = false
	s.err = nil
}

// fixCell returns the fix's cell at geo.IndexResolution: the one H3 (cgo)
// call of a request; the presence tiers' cells are its parents, by bit
// arithmetic.
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

// present reports whether offer id is marked in the fix's tier-t cell: the
// cell's set is looked up once per request and tier, then tested per
// campaign.
func (s *search) present(snap *Snapshot, t uint8, id uint32) bool {
	if !s.tierDone[t] {
		s.lookUp(snap, t)
	}
	set := &s.tierSet[t]
	if set.bits != nil {
		return hasBit(set.bits, id) // inlined: dense and spread sets, most tests
	}
	return set.has(id)
}

// lookUp finds the fix's tier-t set, and spreads it into a bitset when it
// is sparse and s.spread is set.
func (s *search) lookUp(snap *Snapshot, t uint8) {
	s.tierDone[t] = true
	set := snap.presence[t].set(geo.Parent(s.fixCell(), tiers[t].res))
	s.tierSet[t] = set
	if set.bits != nil || !s.spread || len(set.ids) == 0 {
		return
	}
	n := int(set.ids[len(set.ids)-1]/64 + 1) // the IDs are sorted
	b := s.spare[t]
	if cap(b) < n {
		b = make([]uint64, n, max(n, 2*cap(b)))
	} else {
		b = b[:n]
		clear(b)
	}
	for _, id := range set.ids {
		b[id/64] |= 1 << (id % 64)
	}
	s.spare[t], s.tierSet[t] = b, offerSet{bits: b}
}
