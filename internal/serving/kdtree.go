package serving

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
// the axis it splits (kept in the entry, so that a visit touches one cache
// line; the struct is 32 bytes either way).
type kdPoint struct {
	v    [3]float64
	i    int32
	axis uint8
}

// kdLeaf is the largest subrange scanned without splitting.
const kdLeaf = 12

// kdTop is how many splits of the tree's first levels the offer also holds
// in breadth-first order (the first seven levels): in the tree itself they
// lie far apart, the root mid-array and its children a quarter in, so each
// level of a descent missed the cache. Only a split that must be considered
// as a store is read from the tree. Seven levels rather than five: the
// offers a popular keyword searches keep their tops in cache from one
// decision to the next, where their trees' deeper levels are not (with
// five, the in-process p99 at national scale was 46.1 µs against 43.1 µs
// on average over four back-to-back runs each; eight levels did no better
// than seven).
const kdTop = 127

// kdTops is the first kdTop splits of an offer's tree: node t's children
// are 2t+1 (the lower half) and 2t+2. Nodes past a leaf are never read. The
// arrays end after the last split they hold: a small offer's tree has few
// levels, or none.
type kdTops struct {
	split []float64 // the split entry's coordinate on its axis
	axis  []uint8
}

// buildTree arranges o.kd into the tree and copies its first splits.
func (o *offer) buildTree() {
	buildKD(o.kd)
	var tops struct {
		split [kdTop]float64
		axis  [kdTop]uint8
		n     int // one past the last split filled
	}
	var fill func(lo, hi, t int)
	fill = func(lo, hi, t int) {
		if t >= kdTop || hi-lo <= kdLeaf {
			return
		}
		m := lo + (hi-lo)/2
		p := &o.kd[m]
		tops.split[t], tops.axis[t] = p.v[p.axis], p.axis
		tops.n = max(tops.n, t+1)
		fill(lo, m, 2*t+1)
		fill(m+1, hi, 2*t+2)
	}
	fill(0, len(o.kd), 0)
	o.tops = kdTops{}
	if tops.n > 0 {
		o.tops.split = append([]float64(nil), tops.split[:tops.n]...)
		o.tops.axis = append([]uint8(nil), tops.axis[:tops.n]...)
	}
}

// searchTree searches the whole tree for a store nearer than sc's bound.
func (o *offer) searchTree(s *search, sc *scan) { o.kdNearest(s, sc, 0, len(o.kd), 0) }

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

// kdNearest searches entries [lo, hi) of the tree, node t in breadth-first
// order, for a store nearer than sc's bound, updating sc.
func (o *offer) kdNearest(s *search, sc *scan, lo, hi, t int) {
	q := &s.fixV
	for hi-lo > kdLeaf {
		m := lo + (hi-lo)/2
		var d float64
		if t < len(o.tops.split) {
			d = q[o.tops.axis[t]] - o.tops.split[t]
		} else {
			p := &o.kd[m]
			d = q[p.axis] - p.v[p.axis]
		}
		nearLo, nearHi, farLo, farHi := lo, m, m+1, hi
		nearT, farT := 2*t+1, 2*t+2
		if d >= 0 {
			nearLo, nearHi, farLo, farHi = m+1, hi, lo, m
			nearT, farT = farT, nearT
		}
		o.kdNearest(s, sc, nearLo, nearHi, nearT)
		// A point across the split plane lies at least |d| away; ties
		// (d² equal to the bound) are visited, since an equally near store
		// with a smaller ID wins.
		if d*d > sc.bestC {
			return
		}
		o.consider(s, sc, &o.kd[m])
		lo, hi, t = farLo, farHi, farT
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
