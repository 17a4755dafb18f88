package serving

import (
	"hash/maphash"
	mathbits "math/bits"
	"strings"
	"sync"
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

// triggeredShards and triggeredPerShard bound the cache: 16 × 1,024
// queries, a few megabytes at the most. A full shard is emptied.
const (
	triggeredShards   = 16
	triggeredPerShard = 1024
	// triggeredMaxQuery is the longest query text kept (the API allows 100
	// characters, up to 400 bytes).
	triggeredMaxQuery = 400
)

var triggeredSeed = maphash.MakeSeed()

// triggeredCache maps a query's text to the ranks it triggers.
type triggeredCache struct {
	shards [triggeredShards]struct {
		mu sync.RWMutex
		m  map[string][]uint32
	}
}

func (c *triggeredCache) shard(q string) int {
	return int(maphash.String(triggeredSeed, q) % triggeredShards)
}

// get returns the ranks q triggers, and whether they are known.
func (c *triggeredCache) get(q string) ([]uint32, bool) {
	sh := &c.shards[c.shard(q)]
	sh.mu.RLock()
	ranks, ok := sh.m[q]
	sh.mu.RUnlock()
	return ranks, ok
}

// put keeps ranks, which nobody changes afterwards, as what q triggers.
func (c *triggeredCache) put(q string, ranks []uint32) {
	if len(q) > triggeredMaxQuery {
		return
	}
	q = strings.Clone(q) // not the request's memory
	sh := &c.shards[c.shard(q)]
	sh.mu.Lock()
	if sh.m == nil || len(sh.m) >= triggeredPerShard {
		sh.m = make(map[string][]uint32)
	}
	sh.m[q] = ranks
	sh.mu.Unlock()
}

// triggered returns the ranks of the campaigns query triggers, ascending
// and distinct, from the snapshot's cache or, the first time, by parsing
// and matching the query into sc.q (sc.parsed).
func (s *Snapshot) triggered(query string, sc *scratch) []uint32 {
	if ranks, ok := s.cache.get(query); ok {
		return ranks
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
	var ranks []uint32
	if n > 0 {
		ranks = make([]uint32, 0, n)
	}
	for w := lo; w <= hi; w++ {
		for word := bits[w]; word != 0; word &= word - 1 {
			ranks = append(ranks, uint32(w*64+mathbits.TrailingZeros64(word)))
		}
		bits[w] = 0 // clean for the next miss
	}
	s.cache.put(query, ranks)
	return ranks
}
