package serving

import (
	mathbits "math/bits"
	"slices"

	"github.com/uber/h3-go/v4"

	"github.com/navad/navad/geo"
)

// Presence answers, with one bit test per campaign, "might this offer have
// a store within R of the fix?", so that a popular keyword triggering
// hundreds of campaigns costs almost nothing for the campaigns with nothing
// nearby (WORKLOAD.md, hard case 1).
//
// For each tier (a radius R and an H3 resolution), every store marks the
// cells of its conservative cover of radius R: a fix within R of the store
// lies in one of them. So if an offer is absent from the fix's cell, no store
// of the offer is within R, and a campaign whose radius is at most R skips
// the spatial search. Marks may be stale in the safe direction (a removed
// store's marks linger until its offer is recomputed): a false "maybe" costs
// one search, never a missed store.
const numTiers = 2

var tiers = [numTiers]struct {
	radius float64
	res    int
}{
	{radius: 1000, res: geo.CellCoverResolution(1000)},
	{radius: 5000, res: geo.CellCoverResolution(5000)},
}

// tierFor returns the smallest tier whose radius covers radiusM.
func tierFor(radiusM float64) int {
	for t, tr := range tiers {
		if radiusM <= tr.radius {
			return t
		}
	}
	return numTiers - 1
}

// shardRes is the resolution of the parent cells presence is sharded by, so
// that an update copies only the shards it touches (a res-3 cell is about
// 12,000 km²: a few dozen shards cover Japan).
const shardRes = 3

// presence maps a tier cell to the offers with a store within the tier's
// radius of some point of the cell. Published presences are immutable.
type presence struct {
	shards map[uint64]map[uint64]*offerSet
}

func newPresence() presence {
	return presence{shards: make(map[uint64]map[uint64]*offerSet)}
}

// set returns the offers marked in cell, or nil.
func (p presence) set(cell uint64) *offerSet {
	return p.shards[geo.Parent(cell, shardRes)][cell]
}

// update returns a presence in which each changed offer's marks are exactly
// next[id] (cells absent from next lose the offer), copying only the shards
// it touches. prev[id] are the offer's current marks.
func (p presence) update(prev, next map[uint32][]uint64, maxID uint32) presence {
	type edit struct {
		cell uint64
		add  []uint32
		drop bool // drop every changed offer first
	}
	edits := make(map[uint64]*edit)
	touch := func(c uint64) *edit {
		e := edits[c]
		if e == nil {
			e = &edit{cell: c}
			edits[c] = e
		}
		return e
	}
	for _, cells := range prev {
		for _, c := range cells {
			touch(c).drop = true
		}
	}
	for id, cells := range next {
		for _, c := range cells {
			e := touch(c)
			e.add = append(e.add, id)
		}
	}
	out := presence{shards: make(map[uint64]map[uint64]*offerSet, len(p.shards)+1)}
	for k, v := range p.shards {
		out.shards[k] = v
	}
	copied := make(map[uint64]bool)
	var ids []uint32
	for c, e := range edits {
		sk := geo.Parent(c, shardRes)
		shard := out.shards[sk]
		if !copied[sk] {
			fresh := make(map[uint64]*offerSet, len(shard)+1)
			for k, v := range shard {
				fresh[k] = v
			}
			shard = fresh
			out.shards[sk] = shard
			copied[sk] = true
		}
		ids = ids[:0]
		if old := shard[c]; old != nil {
			for _, id := range old.appendIDs(nil) {
				if _, changed := next[id]; !changed || !e.drop {
					ids = append(ids, id)
				}
			}
		}
		ids = append(ids, e.add...)
		if len(ids) == 0 {
			delete(shard, c)
			continue
		}
		shard[c] = newOfferSet(slices.Clone(ids), maxID)
	}
	for k, shard := range out.shards {
		if len(shard) == 0 {
			delete(out.shards, k)
		}
	}
	return out
}

// offerSet is an immutable set of offer IDs: a sorted list when sparse, a
// bitset when dense (a cell in central Tokyo holds most offers).
type offerSet struct {
	ids  []uint32
	bits []uint64
}

func newOfferSet(ids []uint32, maxID uint32) *offerSet {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	// A bitset costs maxID/8 bytes, a list 4 bytes an ID.
	if uint64(len(ids))*32 >= uint64(maxID)+64 {
		bits := make([]uint64, maxID/64+1)
		for _, id := range ids {
			bits[id/64] |= 1 << (id % 64)
		}
		return &offerSet{bits: bits}
	}
	return &offerSet{ids: slices.Clip(ids)}
}

// has reports whether id is in the set; a nil set is empty.
func (s *offerSet) has(id uint32) bool {
	if s == nil {
		return false
	}
	if s.bits != nil {
		w := id / 64
		return int(w) < len(s.bits) && s.bits[w]&(1<<(id%64)) != 0
	}
	// Sparse sets are short: a linear scan beats binary search below ~16.
	if len(s.ids) <= 16 {
		for _, v := range s.ids {
			if v == id {
				return true
			}
		}
		return false
	}
	_, ok := slices.BinarySearch(s.ids, id)
	return ok
}

func (s *offerSet) appendIDs(dst []uint32) []uint32 {
	if s.bits == nil {
		return append(dst, s.ids...)
	}
	for w, word := range s.bits {
		for word != 0 {
			dst = append(dst, uint32(w)*64+uint32(mathbits.TrailingZeros64(word)))
			word &= word - 1
		}
	}
	return dst
}

// coverCells appends to dst the tier-t cells that stores mark, sorted and
// deduplicated. Stores in one tier cell share one cover: the cell's cover
// holds for every point in it.
func coverCells(dst []uint64, stores []*Store, t int) []uint64 {
	seen := make(map[uint64]struct{}, len(dst)+len(stores))
	for _, c := range dst {
		seen[c] = struct{}{}
	}
	done := make(map[uint64]struct{})
	for _, st := range stores {
		tc := geo.Parent(st.Cell, tiers[t].res)
		if _, ok := done[tc]; ok {
			continue
		}
		done[tc] = struct{}{}
		cells, err := geo.CellCover(h3.Cell(tc), tiers[t].radius)
		if err != nil {
			continue // cells come from validated coordinates; a failure marks nothing
		}
		for _, c := range cells {
			if _, ok := seen[uint64(c)]; !ok {
				seen[uint64(c)] = struct{}{}
				dst = append(dst, uint64(c))
			}
		}
	}
	slices.Sort(dst)
	return dst
}
