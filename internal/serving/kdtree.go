package serving

import "slices"

// An offer's stores are also held as an implicit k-d tree over their unit
// vectors, which answers "the nearest eligible store within r" in about
// log₂(n) node visits whatever the density around the fix, and rejects a
// search with no store in range after a few visits. (The first index walked
// H3 cell covers widening through a ladder of radii; at national scale most
// searches find nothing within their radius, and a cover of coarse cells
// scanned up to thirty times the circle's area to say so.)
//
// The tree is a permutation of the offer's entries: the median of every
// subrange, by the coordinate of widest spread there, sits in its middle,
// the nearer half before it and the farther after. A leaf is a run of at
// most kdLeaf entries scanned in order.

// kdPoint is one entry of the tree: a store's position, its index in the
// offer's cell-ordered arrays (refs, out, week), and, when it is a split,
// the axis it splits (read when the tree's blocks are written; the struct
// is 32 bytes either way).
type kdPoint struct {
	v    [3]float64
	i    int32
	axis uint8
}

// kdLeaf is the largest subrange scanned without splitting.
const kdLeaf = 12

// kdBlock holds the splits of a subtree of the tree three levels deep
// (seven nodes, 63 bytes), so that a descent reads one cache line for every
// three levels: node l of the subtree (breadth-first within it, 0 its root)
// splits its entries at split[l] on axis[l], the coordinate of the median
// entry the tree keeps in its middle.
//
// The blocks are numbered as an 8-ary heap: block b's subtrees below its
// four lowest nodes are blocks 8b+1 to 8b+8, in order. Before them, the
// tree's first seven levels were copied breadth-first into flat arrays
// beside the tree, and every deeper level was read from the tree's entries:
// a search that found nothing read some six lines of the copy and one
// entry of 32 bytes per deeper level, each in another line, three or four
// of them for a national chain. Blocks cover every level, in four lines for
// twelve.
type kdBlock struct {
	split [7]float64
	axis  [7]uint8
	_     byte
}

// kdChild returns the block and node of the lower child of node l of
// block b (the upper is the next node, or the next block).
func kdChild(b, l int) (int, int) {
	if l < 3 {
		return b, 2*l + 1
	}
	return 8*b + 1 + 2*(l-3), 0
}

// kdNext returns the node after (b, l) among its siblings: the upper child
// when (b, l) is a lower one.
func kdNext(b, l int) (int, int) {
	if l == 0 {
		return b + 1, 0
	}
	return b, l + 1
}

// buildTree arranges o.kd into the tree and writes its splits into blocks.
func (o *offer) buildTree() {
	buildKD(o.kd)
	var fill func(lo, hi, b, l int)
	fill = func(lo, hi, b, l int) {
		if hi-lo <= kdLeaf {
			return
		}
		if b >= len(o.splits) {
			o.splits = append(o.splits, make([]kdBlock, b+1-len(o.splits))...)
		}
		m := lo + (hi-lo)/2
		p := &o.kd[m]
		o.splits[b].split[l], o.splits[b].axis[l] = p.v[p.axis], p.axis
		cb, cl := kdChild(b, l)
		fill(lo, m, cb, cl)
		nb, nl := kdNext(cb, cl)
		fill(m+1, hi, nb, nl)
	}
	fill(0, len(o.kd), 0, 0)
	o.splits = slices.Clip(o.splits)
}

// searchTree searches the whole tree for a store nearer than sc's bound.
func (o *offer) searchTree(s *search, sc *scan) { o.kdNearest(s, sc, 0, len(o.kd), 0, 0) }

// buildKD arranges pts into the tree.
func buildKD(pts []kdPoint) {
	for len(pts) > kdLeaf {
		a := widestAxis(pts)
		m := len(pts) / 2
		selectKth(pts, m, a)
		pts[m].axis = a
		// Recurse into the lower half, loop on the upper: the stack stays
		// logarithmic.
		buildKD(pts[:m])
		pts = pts[m+1:]
	}
}

func widestAxis(pts []kdPoint) uint8 {
	lo, hi := pts[0].v, pts[0].v
	for i := 1; i < len(pts); i++ {
		for a := range 3 {
			lo[a] = min(lo[a], pts[i].v[a])
			hi[a] = max(hi[a], pts[i].v[a])
		}
	}
	best := uint8(0)
	for a := uint8(1); a < 3; a++ {
		if hi[a]-lo[a] > hi[best]-lo[best] {
			best = a
		}
	}
	return best
}

// selectKth reorders pts so that pts[k] holds the point that sorting by
// coordinate a (ties by entry index, so the tree is deterministic) would put
// there, with no greater point before it and no smaller one after:
// Hoare's selection with a median-of-three pivot.
func selectKth(pts []kdPoint, k int, a uint8) {
	less := func(x, y *kdPoint) bool {
		return x.v[a] < y.v[a] || x.v[a] == y.v[a] && x.i < y.i
	}
	lo, hi := 0, len(pts)-1
	for hi > lo {
		mid := lo + (hi-lo)/2
		if less(&pts[mid], &pts[lo]) {
			pts[mid], pts[lo] = pts[lo], pts[mid]
		}
		if less(&pts[hi], &pts[lo]) {
			pts[hi], pts[lo] = pts[lo], pts[hi]
		}
		if less(&pts[hi], &pts[mid]) {
			pts[hi], pts[mid] = pts[mid], pts[hi]
		}
		pivot := pts[mid]
		i, j := lo, hi
		for i <= j {
			for less(&pts[i], &pivot) {
				i++
			}
			for less(&pivot, &pts[j]) {
				j--
			}
			if i <= j {
				pts[i], pts[j] = pts[j], pts[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return
		}
	}
}

// kdNearest searches entries [lo, hi) of the tree, node l of block b, for
// a store nearer than sc's bound, updating sc.
func (o *offer) kdNearest(s *search, sc *scan, lo, hi, b, l int) {
	q := &s.fixV
	for hi-lo > kdLeaf {
		m := lo + (hi-lo)/2
		blk := &o.splits[b]
		d := q[blk.axis[l]] - blk.split[l]
		nearLo, nearHi, farLo, farHi := lo, m, m+1, hi
		nearB, nearL := kdChild(b, l)
		farB, farL := kdNext(nearB, nearL)
		if d >= 0 {
			nearLo, nearHi, farLo, farHi = m+1, hi, lo, m
			nearB, nearL, farB, farL = farB, farL, nearB, nearL
		}
		o.kdNearest(s, sc, nearLo, nearHi, nearB, nearL)
		// A point across the split plane lies at least |d| away; ties
		// (d² equal to the bound) are visited, since an equally near store
		// with a smaller ID wins.
		if d*d > sc.bestC {
			return
		}
		o.consider(s, sc, &o.kd[m])
		lo, hi, b, l = farLo, farHi, farB, farL
	}
	for k := lo; k < hi; k++ {
		o.consider(s, sc, &o.kd[k])
	}
}

// consider makes p the best so far if it is at least as near as the bound
// and eligible: in stock and open at the search's time. The rarer checks run
// only for a store that passes the distance test.
func (o *offer) consider(s *search, sc *scan, p *kdPoint) {
	dx, dy, dz := s.fixV[0]-p.v[0], s.fixV[1]-p.v[1], s.fixV[2]-p.v[2]
	c := dx*dx + dy*dy + dz*dz
	if c > sc.bestC {
		return
	}
	n := int(p.i)
	if o.isOut(n) || !o.open(n, s.minute) {
		return
	}
	if sc.best < 0 || c < sc.bestC || o.store(n).ID() < o.store(sc.best).ID() {
		sc.best, sc.bestC = n, c
	}
}
