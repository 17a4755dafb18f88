package serving

import (
	"cmp"
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
// sorted by their H3 cell at geo.IndexResolution (then ID), so that a stock
// update finds a store's entry by binary search (position), and held again
// as a k-d tree for nearest searches.
//
// An offer is immutable once published except for out, whose bits stock
// updates flip atomically in place: a stock change needs no rebuild.
type offer struct {
	id     uint32
	key    offerKey
	cells  []uint64     // sorted ascending
	slabs  []*storeSlab // the slabs its stores are in, each once
	refs   []storeRef   // entry i's store (store(i)), which sits in cells[i]
	kd     []kdPoint    // the stores' positions as a k-d tree (kdtree.go), inline so a search never chases a pointer
	splits []kdBlock    // the tree's splits, three levels to a cache line
	week   []uint16     // entry i's hours: weeks[week[i]] (0, always open, needs no check), or noWeek
	weeks  []campaigns.Week
	out    []uint64 // bit i set: entry i's store is out of stock for the product
}

// storeRef names an offer's store by number: record i of slabs[slab].
type storeRef struct{ slab, i uint32 }

// store returns entry i's store.
func (o *offer) store(i int) Store {
	r := o.refs[i]
	return Store{o.slabs[r.slab], r.i}
}

// newOffer builds the offer of stores, all in stock; markOut then marks
// those that are not, before the offer is published. weeks is the index's
// table of schedules, which the stores' week fields index.
func newOffer(id uint32, key offerKey, stores []Store, weeks []campaigns.Week) *offer {
	slices.SortFunc(stores, func(a, b Store) int {
		if c := cmp.Compare(a.Cell(), b.Cell()); c != 0 {
			return c
		}
		return strings.Compare(a.ID(), b.ID())
	})
	o := &offer{
		id:    id,
		key:   key,
		cells: make([]uint64, len(stores)),
		refs:  make([]storeRef, len(stores)),
		kd:    make([]kdPoint, len(stores)),
		week:  make([]uint16, len(stores)),
		weeks: weeks,
		out:   make([]uint64, (len(stores)+63)/64),
	}
	// An advertiser's stores are mostly in one slab, but one who uploads
	// them a few at a time has as many slabs as uploads: a slab's place in
	// o.slabs is looked up only when a store is not in the last one's.
	slab := -1 // the last store's, in o.slabs
	slabOf := make(map[*storeSlab]int)
	for i, s := range stores {
		if slab < 0 || o.slabs[slab] != s.slab {
			var ok bool
			if slab, ok = slabOf[s.slab]; !ok {
				slab = len(o.slabs)
				o.slabs = append(o.slabs, s.slab)
				slabOf[s.slab] = slab
			}
		}
		r := s.rec()
		o.cells[i] = r.cell
		o.refs[i] = storeRef{uint32(slab), s.i}
		o.kd[i] = kdPoint{v: toUnit(r.lat, r.lng), i: int32(i)}
		o.week[i] = r.week
	}
	o.buildTree()
	return o
}

// open reports whether entry i's store is open at minute m of the week.
func (o *offer) open(i, m int) bool {
	switch w := o.week[i]; w {
	case 0:
		return true
	case noWeek:
		return o.store(i).hours().ContainsMinute(m)
	default:
		return o.weeks[w].ContainsMinute(m)
	}
}

// position returns the entry index of store s, or -1.
func (o *offer) position(s Store) int {
	cell, id := s.Cell(), s.ID()
	i, _ := slices.BinarySearch(o.cells, cell)
	for ; i < len(o.cells) && o.cells[i] == cell; i++ {
		if o.store(i).ID() == id {
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
// distance.
//
// Candidates are compared by chord length between unit vectors, which
// orders exactly as great-circle distance does but needs no trigonometry;
// only the winner's distance is computed (by geo.DistanceM, so it equals
// what any other caller computes). It allocates nothing.
func (o *offer) nearest(s *search, maxM float64) (Store, float64, bool) {
	// Stores beyond the radius never qualify, so the bound starts there
	// (widened by a hair: the exact distance decides at the end).
	sc := scan{best: -1, bestC: chord2Of(maxM) * (1 + 1e-9)}
	o.searchTree(s, &sc)
	if sc.best < 0 {
		return Store{}, 0, false
	}
	st := o.store(sc.best)
	d := geo.DistanceM(s.lat, s.lng, st.Lat(), st.Lng())
	if d > maxM {
		return Store{}, 0, false
	}
	return st, d, true
}

// scan is the state of one nearest search: the best entry so far (-1 for
// none) and its squared chord, or the bound a candidate must meet.
type scan struct {
	best  int
	bestC float64
}

// toUnit returns the point on the unit sphere at lat, lng. The squared
// straight-line distance between two such points, 4·sin²(θ/2) for the
// central angle θ, grows with great-circle distance.
func toUnit(lat, lng float64) [3]float64 {
	φ, λ := lat*math.Pi/180, lng*math.Pi/180
	return [3]float64{math.Cos(φ) * math.Cos(λ), math.Cos(φ) * math.Sin(λ), math.Sin(φ)}
}

// chord2Of returns the squared chord of a great-circle distance in metres.
func chord2Of(m float64) float64 {
	c := 2 * math.Sin(m/(2*geo.EarthRadiusM))
	return c * c
}
