package serving

import (
	"hash/maphash"
	mathbits "math/bits"
	"strings"
	"sync"
	"unsafe"
)

// What a query triggers depends on the query's text and the campaigns'
// keywords alone, and navigation apps send the same few thousand searches
// over and over (居酒屋, カフェ, コンビニ…). So each campaign snapshot keeps,
// by query text, the ranks of the campaigns the query triggers, ascending
// and without repeats: a decision for a query seen since the campaigns last
// changed neither parses nor matches it, nor maps slots to ranks, and reads
// one short list in rank order instead of setting and scanning a bitset.
// A store or stock change keeps the cache (it changes no keyword or rank);
// a campaign change starts a new one.
//
// Beside the ranks it keeps a copy of their rankedCampaign entries, in the
// same order. A popular keyword triggers hundreds of campaigns spread over
// the snapshot's whole ranked array (320 KB at 10,000 campaigns), and in
// the slowest decisions the first read of each entry was a cache miss; the
// copy is read front to back, a few kilobytes the processor prefetches.
// Both come from the same campaign snapshot, so the copy is never stale.

// triggeredShards, triggeredPerShard and triggeredShardBytes bound the
// cache: 16 shards of at most 1,024 queries and 1 MB of ranks and entries
// each. A full shard is emptied.
const (
	triggeredShards     = 16
	triggeredPerShard   = 1024
	triggeredShardBytes = 1 << 20
	// triggeredMaxQuery is the longest query text kept (the API allows 100
	// characters, up to 400 bytes).
	triggeredMaxQuery = 400
)

// triggeredSet is what a query triggers: the ranks, ascending, and their
// entries of Snapshot.ranked (hot[i] is ranked[ranks[i]]). Never changed
// once made.
type triggeredSet struct {
	ranks []uint32
	hot   []rankedCampaign
}

// size is what s costs a shard, with its query text q.
func (s triggeredSet) size(q string) int {
	return len(q) + len(s.ranks)*4 + len(s.hot)*int(unsafe.Sizeof(rankedCampaign{})) + 64
}

var triggeredSeed = maphash.MakeSeed()

// triggeredCache maps a query's text to what it triggers.
type triggeredCache struct {
	shards [triggeredShards]struct {
		mu    sync.RWMutex
		m     map[string]triggeredSet
		bytes int // the sizes of m's entries
	}
}

func (c *triggeredCache) shard(q string) int {
	return int(maphash.String(triggeredSeed, q) % triggeredShards)
}

// get returns what q triggers, and whether it is known.
func (c *triggeredCache) get(q string) (triggeredSet, bool) {
	sh := &c.shards[c.shard(q)]
	sh.mu.RLock()
	set, ok := sh.m[q]
	sh.mu.RUnlock()
	return set, ok
}

// put keeps set as what q triggers. Neither is changed afterwards.
func (c *triggeredCache) put(q string, set triggeredSet) {
	size := set.size(q)
	if len(q) > triggeredMaxQuery || size > triggeredShardBytes {
		return
	}
	q = strings.Clone(q) // not the request's memory
	sh := &c.shards[c.shard(q)]
	sh.mu.Lock()
	if sh.m == nil || len(sh.m) >= triggeredPerShard || sh.bytes+size > triggeredShardBytes {
		sh.m = make(map[string]triggeredSet)
		sh.bytes = 0
	}
	if old, ok := sh.m[q]; ok {
		sh.bytes -= old.size(q)
	}
	sh.m[q] = set
	sh.bytes += size
	sh.mu.Unlock()
}

// triggered returns the campaigns query triggers, from the snapshot's
// cache or, the first time, by parsing and matching the query into sc.q
// (sc.parsed).
func (s *Snapshot) triggered(query string, sc *scratch) triggeredSet {
	if set, ok := s.cache.get(query); ok {
		return set
	}
	sc.q.Parse(query)
	sc.parsed = true
	sc.refs = s.match(&sc.q, sc.refs[:0])
	// A bitset over ranks removes repeated refs and puts them in rank
	// order without sorting.
	words := (len(s.byRank) + 63) / 64
	if cap(sc.bits) < words {
		sc.bits = make([]uint64, words)
	}
	bits := sc.bits[:words]
	n := 0
	lo, hi := words, -1
	for _, slot := range sc.refs {
		r := s.rankOf[slot]
		if r == noRank {
			continue
		}
		w := int(r / 64)
		if bits[w]&(1<<(r%64)) == 0 {
			bits[w] |= 1 << (r % 64)
			n++
		}
		lo, hi = min(lo, w), max(hi, w)
	}
	var set triggeredSet
	if n > 0 {
		set.ranks = make([]uint32, 0, n)
		set.hot = make([]rankedCampaign, 0, n)
	}
	for w := lo; w <= hi; w++ {
		for word := bits[w]; word != 0; word &= word - 1 {
			r := uint32(w*64 + mathbits.TrailingZeros64(word))
			set.ranks = append(set.ranks, r)
			set.hot = append(set.hot, s.ranked[r])
		}
		bits[w] = 0 // clean for the next miss
	}
	s.cache.put(query, set)
	return set
}
