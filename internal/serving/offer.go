package serving

import (
	"math"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/geo"
)

// offerKey names an advertiser's product as sold at its stores. Every
// campaign of the advertiser promoting the product shares the offer's store
// set, so spatial search is per offer, not per campaign.
type offerKey struct {
	advertiser string
	product    string
}

// offer is the spatial index of the stores that carry one offerKey: entries
// sorted by their H3 cell at geo.IndexResolution, so that the stores inside
// any coarser cell form one contiguous run found by binary search.
//
// An offer is immutable once published except for out, whose bits stock
// updates flip atomically in place: a stock change needs no rebuild.
type offer struct {
	id     uint32
	key    offerKey
	cells  []uint64  // sorted ascending
	stores []*Store  // stores[i] sits in cells[i]
	xyz    []unitVec // stores[i]'s position, inline so a search never chases a pointer
	timed  []uint64  // bit i set: stores[i] has opening hours to check
	out    []uint64  // bit i set: stores[i] is out of stock for the product
}

// smallOffer is the size under which a nearest search scans every entry
// instead of walking cell covers: a dozen stores are cheaper to measure than
// to look up.
const smallOffer = 48

// newOffer builds the offer of stores, all in stock; markOut then marks
// those that are not, before the offer is published.
func newOffer(id uint32, key offerKey, stores []*Store) *offer {
	slices.SortFunc(stores, func(a, b *Store) int {
		switch {
		case a.Cell < b.Cell:
			return -1
		case a.Cell > b.Cell:
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	words := (len(stores) + 63) / 64
	o := &offer{
		id:     id,
		key:    key,
		cells:  make([]uint64, len(stores)),
		stores: stores,
		xyz:    make([]unitVec, len(stores)),
		timed:  make([]uint64, words),
		out:    make([]uint64, words),
	}
	for i, s := range stores {
		o.cells[i] = s.Cell
		o.xyz[i] = toUnit(s.Lat, s.Lng)
		if !s.Hours.Always() {
			o.timed[i/64] |= 1 << (i % 64)
		}
	}
	return o
}

// position returns the entry index of store s, or -1.
func (o *offer) position(s *Store) int {
	i, _ := slices.BinarySearch(o.cells, s.Cell)
	for ; i < len(o.cells) && o.cells[i] == s.Cell; i++ {
		if o.stores[i].ID == s.ID {
			return i
		}
	}
	return -1
}

// setOut marks entry i out of stock (or back in stock). Safe for concurrent
// readers; callers serialize writers.
func (o *offer) setOut(i int, isOut bool) {
	mask := uint64(1) << (i % 64)
	if isOut {
		atomic.OrUint64(&o.out[i/64], mask)
	} else {
		atomic.AndUint64(&o.out[i/64], ^mask)
	}
}

func (o *offer) isOut(i int) bool {
	return atomic.LoadUint64(&o.out[i/64])&(1<<(i%64)) != 0
}

// nearest returns the nearest store of the offer that is in stock and open
// at the search's time, within maxM metres of the fix, and its great-circle
// distance. It widens the search through the ladder of covers: after
// examining every cell of the cover of radius L, a best distance ≤ L is
// final, because any closer store lies within L and so was examined.
//
// Candidates are compared by chord length between unit vectors, which
// orders exactly as great-circle distance does but needs no trigonometry;
// only the winner's distance is computed (by geo.DistanceM, so it equals
// what any other caller computes). Cost is proportional to the stores in the
// cells examined, not to the offer's size; it allocates nothing beyond the
// search's cached covers.
func (o *offer) nearest(s *search, maxM float64) (*Store, float64, bool) {
	best := -1
	bestC := math.Inf(1) // squared chord to the best so far
	consider := func(i int) {
		c := s.fix.chord2(o.xyz[i])
		if c > bestC || o.isOut(i) {
			return
		}
		if o.timed[i/64]&(1<<(i%64)) != 0 && !o.stores[i].Hours.ContainsMinute(s.minute) {
			return
		}
		if c < bestC || o.stores[i].ID < o.stores[best].ID {
			best, bestC = i, c
		}
	}
	if len(o.stores) <= smallOffer {
		for i := range o.stores {
			consider(i)
		}
	} else {
		for step := range ladder {
			ranges := s.cover(step)
			pos := 0
			for _, r := range ranges {
				// Ranges ascend and mostly lie close together in the
				// offer, so each search gallops on from where the last
				// one ended.
				i := gallop(o.cells, pos, r.lo)
				for ; i < len(o.cells) && o.cells[i] < r.hi; i++ {
					consider(i)
				}
				pos = i
			}
			if best >= 0 && bestC <= ladderChord2[step] {
				break
			}
			if ladder[step] >= maxM {
				break
			}
		}
	}
	if best < 0 {
		return nil, 0, false
	}
	st := o.stores[best]
	d := geo.DistanceM(s.lat, s.lng, st.Lat, st.Lng)
	if d > maxM {
		return nil, 0, false
	}
	return st, d, true
}

// gallop returns the first index i ≥ from with cells[i] ≥ key (or
// len(cells)): an exponential search from from, then a binary search in the
// bracket found, so a key k places ahead costs O(log k) probes, near the
// cache lines already touched.
func gallop(cells []uint64, from int, key uint64) int {
	n := len(cells)
	if from >= n || cells[from] >= key {
		return from
	}
	lo, step := from, 1 // invariant: cells[lo] < key
	for lo+step < n && cells[lo+step] < key {
		lo += step
		step *= 2
	}
	hi := min(lo+step, n) // cells[hi] ≥ key, or hi == n
	j, _ := slices.BinarySearch(cells[lo+1:hi], key)
	return lo + 1 + j
}

// unitVec is a point on the unit sphere.
type unitVec struct{ x, y, z float64 }

func toUnit(lat, lng float64) unitVec {
	φ, λ := lat*math.Pi/180, lng*math.Pi/180
	return unitVec{math.Cos(φ) * math.Cos(λ), math.Cos(φ) * math.Sin(λ), math.Sin(φ)}
}

// chord2 is the squared straight-line distance between two unit vectors:
// 4·sin²(θ/2) for the central angle θ, so it grows with distance.
func (a unitVec) chord2(b unitVec) float64 {
	dx, dy, dz := a.x-b.x, a.y-b.y, a.z-b.z
	return dx*dx + dy*dy + dz*dz
}

// chord2Of returns the squared chord of a great-circle distance in metres.
func chord2Of(m float64) float64 {
	c := 2 * math.Sin(m/(2*geo.EarthRadiusM))
	return c * c
}

// ladder holds the radii a nearest search widens through. Each step's cover
// is computed once per request and shared by every offer searched.
var ladder = [...]float64{125, 250, 500, 1000, 2000, float64(campaigns.MaxRadiusM)}

// ladderChord2 holds the ladder's radii as squared chords, shrunk by a
// hair so that rounding can only make a search go one step further.
var ladderChord2 = func() (c [len(ladder)]float64) {
	for i, l := range ladder {
		c[i] = chord2Of(l) * (1 - 1e-9)
	}
	return c
}()

// cellRange is the half-open range [lo, hi) of IndexResolution cells
// descending from one cover cell.
type cellRange struct{ lo, hi uint64 }
