package campaigns

import "sort"

// trie is an immutable byte-wise trie in three flat arrays, built once and
// walked without allocation by any number of goroutines.
//
// Nodes are numbered breadth-first, so the children of node n are the nodes
// first[n] to first[n+1]-1, sorted by the byte on the edge into them. A walk
// costs one binary search over a node's children per byte.
// (A map per node would cost a hash per byte and far more memory.
// kagome-dict's double array would be faster to walk, but it searches a
// string through a callback per hit; this walks the query's buffer in place
// and builds in tens of milliseconds.)
type trie struct {
	first []uint32 // first[n] is n's first child; len(first) = nodes+1
	label []byte   // label[n] is the byte on the edge into n
	value []int32  // value[n] is the value stored at n, or -1
}

// newTrie builds a trie of keys, which must be distinct; vals[i] is stored
// at keys[i]. It sorts keys and vals together.
func newTrie(keys []string, vals []int32) *trie {
	sort.Sort(keyVals{keys, vals})
	type span struct{ lo, hi, depth int32 }
	size := 1
	for i, k := range keys {
		size += len(k)
		if i > 0 {
			size -= commonPrefix(keys[i-1], k)
		}
	}
	t := &trie{
		first: make([]uint32, 0, size+1),
		label: make([]byte, 1, size),
		value: make([]int32, 0, size),
	}
	queue := make([]span, 1, size)
	queue[0] = span{0, int32(len(keys)), 0}
	for n := 0; n < len(queue); n++ {
		sp := queue[n]
		lo := sp.lo
		v := int32(-1)
		if lo < sp.hi && len(keys[lo]) == int(sp.depth) {
			v = vals[lo]
			lo++
		}
		t.value = append(t.value, v)
		t.first = append(t.first, uint32(len(queue)))
		for lo < sp.hi {
			b := keys[lo][sp.depth]
			hi := lo + 1
			for hi < sp.hi && keys[hi][sp.depth] == b {
				hi++
			}
			queue = append(queue, span{lo, hi, sp.depth + 1})
			t.label = append(t.label, b)
			lo = hi
		}
	}
	t.first = append(t.first, uint32(len(queue)))
	return t
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
	lo, hi := t.first[n], t.first[n+1]
	end := hi
	for lo < hi {
		m := (lo + hi) / 2
		if t.label[m] < b {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < end && t.label[lo] == b {
		return lo, true
	}
	return 0, false
}

// bytes returns the memory the trie holds.
func (t *trie) bytes() int { return 4*len(t.first) + len(t.label) + 4*len(t.value) }

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
