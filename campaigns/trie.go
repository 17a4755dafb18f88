package campaigns

import "sort"

// trie is an immutable byte-wise trie in a double array, built once and
// walked without allocation by any number of goroutines.
//
// A node is a position in the arrays. The child of node n on byte b is at
// position p = base[n] + b when check[p] == n; a walk costs one addition
// and one comparison per byte, whatever the number of children. (A sorted
// child list cost a binary search per byte, a third of a 100-character
// query's analysis; a map per node would cost a hash per byte and far more
// memory. kagome-dict's double array reports a string's hits through a
// callback; this one walks the query's buffer in place.)
//
// The array is about 1.1 positions per node: positions left free by the
// first-fit placement are few, since most nodes of a trie of words have one
// child and fill the gaps.
type trie struct {
	nodes []daNode
	keys  int
}

// daNode is a position of the double array, its three fields together so
// that a step of a walk touches one cache line.
type daNode struct {
	base  int32 // base + b is the position of the child on b
	check int32 // the parent's position, or -1 when the position is free
	value int32 // the value stored here, or -1
}

// newTrie builds a trie of keys, which must be distinct; vals[i] is stored
// at keys[i]. It sorts keys and vals together. It takes time linear in the
// total length of the keys, in practice: 300,000 nodes build in tens of
// milliseconds.
func newTrie(keys []string, vals []int32) *trie {
	sort.Sort(keyVals{keys, vals})
	size := 1
	for i, k := range keys {
		size += len(k)
		if i > 0 {
			size -= commonPrefix(keys[i-1], k)
		}
	}
	b := daBuilder{
		trie: trie{nodes: make([]daNode, 0, size+size/8+256), keys: len(keys)},
	}
	b.grow(1)
	b.take(0, -1)

	type span struct{ lo, hi, depth, pos int32 }
	queue := make([]span, 1, size)
	queue[0] = span{0, int32(len(keys)), 0, 0}
	var labels []byte
	var spans []span
	for n := 0; n < len(queue); n++ {
		sp := queue[n]
		lo := sp.lo
		if lo < sp.hi && len(keys[lo]) == int(sp.depth) {
			b.nodes[sp.pos].value = vals[lo]
			lo++
		}
		labels, spans = labels[:0], spans[:0]
		for lo < sp.hi {
			c := keys[lo][sp.depth]
			hi := lo + 1
			for hi < sp.hi && keys[hi][sp.depth] == c {
				hi++
			}
			labels = append(labels, c)
			spans = append(spans, span{lo, hi, sp.depth + 1, 0})
			lo = hi
		}
		if len(labels) == 0 {
			continue
		}
		base := b.place(labels)
		b.nodes[sp.pos].base = base
		for i, c := range labels {
			p := base + int32(c)
			b.take(p, sp.pos)
			spans[i].pos = p
			queue = append(queue, spans[i])
		}
	}
	t := b.trie
	return &t
}

// daBuilder places the nodes of a double array, first fit. free links the
// free positions: free[p] is the first free position at or after p, found
// with path halving as in a union-find.
type daBuilder struct {
	trie
	free []int32
}

// grow extends the arrays to n positions, all free.
func (b *daBuilder) grow(n int) {
	for len(b.nodes) < n {
		b.free = append(b.free, int32(len(b.nodes)))
		b.nodes = append(b.nodes, daNode{check: -1, value: -1})
	}
}

// firstFree returns the first free position at or after p, growing the
// arrays when there is none.
func (b *daBuilder) firstFree(p int32) int32 {
	for {
		if int(p) >= len(b.free) {
			b.grow(int(p) + 1)
			return p
		}
		f := b.free[p]
		if f == p {
			return p
		}
		if int(f) < len(b.free) {
			b.free[p] = b.free[f] // path halving
		}
		p = f
	}
}

// take marks p used by a child of parent.
func (b *daBuilder) take(p, parent int32) {
	b.grow(int(p) + 1)
	b.nodes[p].check = parent
	b.free[p] = p + 1
}

// place returns a base at which every label's position is free and not the
// root's.
func (b *daBuilder) place(labels []byte) int32 {
	first := int32(labels[0])
	for q := b.firstFree(1); ; q = b.firstFree(q + 1) {
		base := q - first
		if base < 0 {
			continue
		}
		ok := true
		for _, c := range labels[1:] {
			p := base + int32(c)
			if int(p) < len(b.nodes) && b.nodes[p].check >= 0 || p == 0 {
				ok = false
				break
			}
		}
		if ok {
			return base
		}
	}
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// child returns n's child on byte b.
func (t *trie) child(n uint32, b byte) (uint32, bool) {
	p := uint32(t.nodes[n].base) + uint32(b)
	if p < uint32(len(t.nodes)) && t.nodes[p].check == int32(n) {
		return p, true
	}
	return 0, false
}

// valueAt returns the value stored at node n, or -1.
func (t *trie) valueAt(n uint32) int32 { return t.nodes[n].value }

// empty reports whether the trie holds no key.
func (t *trie) empty() bool { return t.keys == 0 }

// bytes returns the memory the trie holds.
func (t *trie) bytes() int { return 12 * len(t.nodes) }

type keyVals struct {
	k []string
	v []int32
}

func (s keyVals) Len() int           { return len(s.k) }
func (s keyVals) Less(i, j int) bool { return s.k[i] < s.k[j] }
func (s keyVals) Swap(i, j int) {
	s.k[i], s.k[j] = s.k[j], s.k[i]
	s.v[i], s.v[j] = s.v[j], s.v[i]
}
