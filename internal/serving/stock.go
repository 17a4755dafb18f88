package serving

import (
	"encoding/binary"
	"hash/maphash"
	"iter"
	"math"
)

// stockKey names a product at a store of an advertiser known from context.
type stockKey struct{ store, product string }

// stockMarks is an advertiser's products out of stock at its stores: a set
// of (store, product) pairs, kept whether or not the store or product is
// known yet (a point-of-sale batch may come before the store list).
//
// A national catalogue marks some hundred thousand pairs. Kept as a map of
// string pairs, they were as many string objects and twice as many
// pointers, traced by every garbage collection (9 of the 38 ms a
// collection of the national index took on one processor). Here the pairs
// are written end to end in one byte slice and found by a 64-bit hash in a
// map of numbers, which the collector does not scan; the rare pairs whose
// hash another pair already has are kept as strings. Bytes of removed
// pairs are reclaimed when they are half of the slice. Not safe for
// concurrent use.
type stockMarks struct {
	text  []byte            // each pair: uvarint len(store), store, uvarint len(product), product
	at    map[uint64]uint32 // hash of a pair → where it starts in text
	clash map[stockKey]struct{}
	dead  int // bytes of text no pair uses
	hash  func(stockKey) uint64
}

// hashStock hashes a pair with the stores' seed (idSeed): the hashes are
// never stored.
func hashStock(k stockKey) uint64 { return maphash.Comparable(idSeed, k) }

func newStockMarks() *stockMarks {
	return &stockMarks{at: make(map[uint64]uint32), hash: hashStock}
}

// len returns how many pairs m holds. m may be nil.
func (m *stockMarks) len() int {
	if m == nil {
		return 0
	}
	return len(m.at) + len(m.clash)
}

// fields returns the store and product of the pair written at offset off,
// as views of text, and the offset just past the pair.
func (m *stockMarks) fields(off uint32) (store, product []byte, end uint32) {
	b := m.text[off:]
	n, w := binary.Uvarint(b)
	store = b[w : w+int(n)]
	b = b[w+int(n):]
	p, w2 := binary.Uvarint(b)
	product = b[w2 : w2+int(p)]
	return store, product, off + uint32(w+int(n)+w2+int(p))
}

// is reports whether the pair at offset off is k, and where it ends.
func (m *stockMarks) is(off uint32, k stockKey) (bool, uint32) {
	store, product, end := m.fields(off)
	return string(store) == k.store && string(product) == k.product, end
}

// has reports whether k is marked. m may be nil.
func (m *stockMarks) has(k stockKey) bool {
	if m == nil {
		return false
	}
	if off, ok := m.at[m.hash(k)]; ok {
		if same, _ := m.is(off, k); same {
			return true
		}
	}
	_, ok := m.clash[k]
	return ok
}

// add marks k.
func (m *stockMarks) add(k stockKey) {
	if _, ok := m.clash[k]; ok {
		return
	}
	h := m.hash(k)
	off, taken := m.at[h]
	if taken {
		if same, _ := m.is(off, k); same {
			return
		}
	}
	if taken || len(m.text) > math.MaxUint32-2*binary.MaxVarintLen64-len(k.store)-len(k.product) {
		if m.clash == nil {
			m.clash = make(map[stockKey]struct{})
		}
		m.clash[k] = struct{}{}
		return
	}
	m.at[h] = uint32(len(m.text))
	m.text = binary.AppendUvarint(m.text, uint64(len(k.store)))
	m.text = append(m.text, k.store...)
	m.text = binary.AppendUvarint(m.text, uint64(len(k.product)))
	m.text = append(m.text, k.product...)
}

// del unmarks k. m may be nil.
func (m *stockMarks) del(k stockKey) {
	if m == nil {
		return
	}
	h := m.hash(k)
	if off, ok := m.at[h]; ok {
		if same, end := m.is(off, k); same {
			delete(m.at, h)
			m.dead += int(end - off)
			m.compact()
			return
		}
	}
	delete(m.clash, k)
}

// compact rewrites text without the bytes of removed pairs, once they are
// half of it.
func (m *stockMarks) compact() {
	if m.dead < 4096 || 2*m.dead < len(m.text) {
		return
	}
	text := make([]byte, 0, len(m.text)-m.dead)
	for h, off := range m.at {
		_, _, end := m.fields(off)
		m.at[h] = uint32(len(text))
		text = append(text, m.text[off:end]...)
	}
	m.text, m.dead = text, 0
}

// all yields every marked pair. m may be nil, and must not change while
// all runs.
func (m *stockMarks) all() iter.Seq[stockKey] {
	return func(yield func(stockKey) bool) {
		if m == nil {
			return
		}
		for _, off := range m.at {
			store, product, _ := m.fields(off)
			if !yield(stockKey{string(store), string(product)}) {
				return
			}
		}
		for k := range m.clash {
			if !yield(k) {
				return
			}
		}
	}
}
