package serving

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

func TestSelectKthPlacesTheKthPoint(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		n := 1 + r.IntN(200)
		pts := make([]kdPoint, n)
		for i := range pts {
			// Few distinct values: ties must be ordered by entry index.
			pts[i] = kdPoint{v: [3]float64{float64(r.IntN(5)), float64(r.IntN(50)), r.Float64()}, i: int32(i)}
		}
		a := uint8(r.IntN(3))
		k := r.IntN(n)
		sorted := slices.Clone(pts)
		slices.SortFunc(sorted, func(x, y kdPoint) int {
			if x.v[a] != y.v[a] {
				if x.v[a] < y.v[a] {
					return -1
				}
				return 1
			}
			return int(x.i - y.i)
		})
		selectKth(pts, k, a)
		if pts[k] != sorted[k] {
			t.Fatalf("n=%d k=%d axis %d: got %v, want %v", n, k, a, pts[k], sorted[k])
		}
		for i := range pts {
			before := pts[i].v[a] < pts[k].v[a] || pts[i].v[a] == pts[k].v[a] && pts[i].i < pts[k].i
			if i < k && !before || i > k && before {
				t.Fatalf("n=%d k=%d: entry %d (%v) on the wrong side of %v", n, k, i, pts[i], pts[k])
			}
		}
	}
}

// TestKDNearestMatchesScan checks the tree against a scan of every entry,
// on clustered points with exact duplicates (stores in one building), for
// bounds from nothing in range to everything.
func TestKDNearestMatchesScan(t *testing.T) {
	if size := unsafe.Sizeof(kdBlock{}); size != 64 {
		t.Fatalf("a block of splits is %d bytes, want one cache line of 64", size)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 300 {
		n := r.IntN(3000)
		o := &offer{kd: make([]kdPoint, n), refs: make([]storeRef, n),
			week: make([]uint16, n), out: make([]uint64, (n+63)/64)}
		ids := make([]string, n)
		var last [3]float64
		for i := range n {
			v := toUnit(35.6+r.Float64()*0.1, 139.6+r.Float64()*0.1)
			if i > 0 && r.IntN(5) == 0 {
				v = last
			}
			last = v
			o.kd[i] = kdPoint{v: v, i: int32(i)}
			// IDs are unique in an offer, in no particular order.
			ids[i] = fmt.Sprintf("%c%c-%d", 'a'+r.IntN(26), 'a'+r.IntN(26), i)
			o.refs[i] = storeRef{0, uint32(i)}
			if r.IntN(7) == 0 {
				o.out[i/64] |= 1 << (i % 64)
			}
		}
		o.slabs = []*storeSlab{slabOf(ids...)}
		plain := slices.Clone(o.kd)
		o.buildTree()
		// The blocks hold the split of every node, and end after the
		// last of them (none for a tree that is one leaf).
		lastBlock := -1
		seen := map[[2]int]bool{}
		var walk func(lo, hi, b, l int)
		walk = func(lo, hi, b, l int) {
			if hi-lo <= kdLeaf {
				return
			}
			if seen[[2]int{b, l}] {
				t.Fatalf("trial %d, %d points: two nodes share node %d of block %d", trial, n, l, b)
			}
			seen[[2]int{b, l}] = true
			m := lo + (hi-lo)/2
			if p := &o.kd[m]; b >= len(o.splits) || o.splits[b].split[l] != p.v[p.axis] || o.splits[b].axis[l] != p.axis {
				t.Fatalf("trial %d, %d points: node %d of block %d is not the split of entries [%d, %d)", trial, n, l, b, lo, hi)
			}
			lastBlock = max(lastBlock, b)
			cb, cl := kdChild(b, l)
			walk(lo, m, cb, cl)
			nb, nl := kdNext(cb, cl)
			walk(m+1, hi, nb, nl)
		}
		walk(0, n, 0, 0)
		if len(o.splits) != lastBlock+1 {
			t.Fatalf("trial %d, %d points: %d blocks, the last split is in block %d", trial, n, len(o.splits), lastBlock)
		}
		for range 20 {
			s := &search{fixV: toUnit(35.6+r.Float64()*0.1, 139.6+r.Float64()*0.1)}
			bound := math.Pow(10, -9+r.Float64()*5) // about 6 m to 2 km
			got := scan{best: -1, bestC: bound}
			o.searchTree(s, &got)
			want := scan{best: -1, bestC: bound}
			for k := range plain {
				o.consider(s, &want, &plain[k])
			}
			if got != want {
				t.Fatalf("trial %d, %d points: tree found %+v, a scan of every entry %+v", trial, n, got, want)
			}
		}
	}
}

// storeOf returns a store with an ID alone.
func storeOf(id string) Store { return Store{slabOf(id), 0} }

// slabOf returns a slab of stores with IDs alone.
func slabOf(ids ...string) *storeSlab {
	s := &storeSlab{recs: make([]storeRec, len(ids)), text: strings.Join(ids, "")}
	at := uint32(0)
	for i, id := range ids {
		end := at + uint32(len(id))
		s.recs[i] = storeRec{text: at, idEnd: end, nameEnd: end, end: end}
		at = end
	}
	return s
}
