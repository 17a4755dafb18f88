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
	found    []found // nearest results so far, one per offer searched
	err      error

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

// presentSet returns the offers marked in the fix's tier-t cell: looked up
// once per request and tier, then a bit test per campaign.
func (s *search) presentSet(snap *Snapshot, t int) offerSet {
	if !s.tierDone[t] {
		s.tierDone[t] = true
		s.tierSet[t] = snap.presence[t].set(geo.Parent(s.fixCell(), tiers[t].res))
	}
	return s.tierSet[t]
}
