package boltstore

import (
	"math"
	"math/bits"
	"sync"
	"unsafe"
)

// userWindows holds the open per-user windows of every campaign in one
// open-addressing table with linear probing, sized once from
// MaxUserWindows and split into shards, each with its own lock.
//
// It replaces a Go map per campaign, which grew with the campaign's
// audience by rehashing its tables of 1,024 entries into new ones: a
// reservation that landed on such a split did it under the campaign's
// mutex, 50–75 µs, some 1,900 times in a 20 s national run, and those
// reservations were among the slowest decisions (BENCHMARKS.md, "In
// process", item 16). Here a shard's slots are allocated with its first
// window and never move: an insert or a lookup probes a few neighbouring
// slots, usually one cache line, and allocates nothing.
//
// A window is keyed by its campaign's number (capCampaign.num) and the
// 64-bit hash of the user's key, as the per-campaign maps were.
type userWindows struct {
	shards [windowShards]windowShard
	size   int // slots a shard: a power of two
}

// windowShards is how many shards the table has: reservations on
// different cores rarely wait for each other's lock.
const (
	windowShardBits = 6
	windowShards    = 1 << windowShardBits
)

type windowShard struct {
	mu    sync.Mutex
	slots []windowSlot // nil until the shard's first window
	n     int          // slots used
	_     [24]byte     // a shard to a cache line of its own
}

// windowSlot is one window: 24 bytes.
type windowSlot struct {
	uid  uint64 // xxhash of the user's key
	end  int64  // Unix ns: the window is open before it
	camp uint32 // the campaign's number; 0 when the slot is empty
	n    uint32 // ads counted in the window (saturating)
}

// newUserWindows returns a table for limit windows: twice as many slots,
// rounded up to a power of two a shard, so that probes stay short. A shard
// refuses windows beyond three quarters of its slots, which takes some 50%
// more than its share: with limit windows open, spread by a hash, that does
// not happen.
func newUserWindows(limit int64) *userWindows {
	per := max(2*limit/windowShards, 16)
	size := 1 << bits.Len64(uint64(per-1))
	return &userWindows{size: size}
}

// prefault allocates every shard's slots and writes a slot of each page,
// so that the kernel backs the whole table now: the first write to a page
// of a fresh table otherwise faults on the decision path (a tenth of a
// reservation's time over HTTP in the first minutes after start), and a
// table resident before navad moves its memory into huge pages is moved
// with it (internal/hugepages).
func (t *userWindows) prefault() {
	const perPage = 4096 / int(unsafe.Sizeof(windowSlot{}))
	for k := range t.shards {
		sh := &t.shards[k]
		sh.mu.Lock()
		if sh.allocate(t.size) {
			for i := 0; i < len(sh.slots); i += perPage {
				sh.slots[i] = windowSlot{}
			}
		}
		sh.mu.Unlock()
	}
}

// allocate gives the shard its size slots, unless it has them, and
// reports whether it did. sh.mu is held.
func (sh *windowShard) allocate(size int) bool {
	if sh.slots != nil {
		return false
	}
	sh.slots = make([]windowSlot, size)
	return true
}

// windowHash mixes a campaign's number into a user's hash: its top bits
// choose the shard, its low bits the first slot to probe.
func windowHash(camp uint32, uid uint64) uint64 {
	h := (uid ^ uint64(camp)*0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
	return h ^ h>>31
}

func (t *userWindows) shard(h uint64) *windowShard {
	return &t.shards[h>>(64-windowShardBits)]
}

// find returns the slot of (camp, uid) in sh and true, or the empty slot
// that ends its probe and false (-1 when the shard has no slots). sh.mu is
// held.
func (sh *windowShard) find(h uint64, camp uint32, uid uint64) (int, bool) {
	if sh.slots == nil {
		return -1, false
	}
	mask := len(sh.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := &sh.slots[i]
		if s.camp == 0 {
			return i, false
		}
		if s.camp == camp && s.uid == uid {
			return i, true
		}
	}
}

// get returns the window of (camp, uid), if there is one.
func (t *userWindows) get(camp uint32, uid uint64) (capWindow, bool) {
	h := windowHash(camp, uid)
	sh := t.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, ok := sh.find(h, camp, uid)
	if !ok {
		return capWindow{}, false
	}
	s := sh.slots[i]
	return capWindow{n: int64(s.n), end: s.end}, true
}

// put sets the window of (camp, uid), and reports false when it is new and
// its shard is full. A count beyond 2³²−1 is kept at that.
func (t *userWindows) put(camp uint32, uid uint64, w capWindow) bool {
	h := windowHash(camp, uid)
	sh := t.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.allocate(t.size)
	i, ok := sh.find(h, camp, uid)
	if !ok {
		if sh.n >= len(sh.slots)/4*3 {
			return false
		}
		sh.n++
	}
	sh.slots[i] = windowSlot{uid: uid, end: w.end, camp: camp, n: uint32(min(max(w.n, 0), math.MaxUint32))}
	return true
}

// drop removes the window of (camp, uid) if it closed by latest (its end is
// not after it), and reports whether it did.
func (t *userWindows) drop(camp uint32, uid uint64, latest int64) bool {
	h := windowHash(camp, uid)
	sh := t.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, ok := sh.find(h, camp, uid)
	if !ok || sh.slots[i].end > latest {
		return false
	}
	sh.remove(i)
	return true
}

// remove empties slot i, moving back the slots after it whose probe
// passed it (deletion without tombstones). sh.mu is held.
func (sh *windowShard) remove(i int) {
	mask := len(sh.slots) - 1
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		s := sh.slots[j]
		if s.camp == 0 {
			break
		}
		// s may fill the hole at i unless its first slot lies cyclically
		// in (i, j]: then its probe never passed i.
		home := int(windowHash(s.camp, s.uid)) & mask
		if (j-home)&mask >= (j-i)&mask {
			sh.slots[i] = s
			i = j
		}
	}
	sh.slots[i] = windowSlot{}
	sh.n--
}

// each calls f for every window, shard by shard, each shard locked while
// f runs for it.
func (t *userWindows) each(f func(camp uint32, uid uint64, w capWindow)) {
	for k := range t.shards {
		sh := &t.shards[k]
		sh.mu.Lock()
		for _, s := range sh.slots {
			if s.camp != 0 {
				f(s.camp, s.uid, capWindow{n: int64(s.n), end: s.end})
			}
		}
		sh.mu.Unlock()
	}
}

// expiryQueues are a campaign's windows, each with the end it opened with,
// in one expiryQueue per frequency period: windows of one period close in
// the order they opened, so expiry finds the closed ones at the queues'
// heads. A single queue held up every window behind the first one still
// open: after a campaign's period was shortened from a day to a minute, its
// minute windows waited out the day-long one before them, filled the
// table, and every new user went uncapped. Usually there is one queue; one
// more while windows of a former period are still open.
type expiryQueues []periodQueue

type periodQueue struct {
	period int64 // ns; loadedPeriod for windows read back at start
	q      expiryQueue
}

// loadedPeriod names the queue of windows read back from the file at
// start, whose periods are not stored: they are queued sorted by end.
const loadedPeriod = -1

// push queues e, a window of the given period.
func (qs *expiryQueues) push(period int64, e capExpiry) {
	for i := len(*qs) - 1; i >= 0; i-- {
		if (*qs)[i].period == period {
			(*qs)[i].q.push(e)
			return
		}
	}
	*qs = append(*qs, periodQueue{period: period})
	(*qs)[len(*qs)-1].q.push(e)
}

// expire pops every entry ended by latest, handing each to drop, and
// forgets the queues left empty but the newest, which keeps its spare
// chunk for the windows to come.
func (qs *expiryQueues) expire(latest int64, drop func(capExpiry)) {
	kept := (*qs)[:0]
	for i := range *qs {
		pq := &(*qs)[i]
		for e, ok := pq.q.first(); ok && e.end <= latest; e, ok = pq.q.first() {
			drop(e)
			pq.q.pop()
		}
		if pq.q.n > 0 || i == len(*qs)-1 {
			kept = append(kept, *pq) // into a slot already visited
		}
	}
	clear((*qs)[len(kept):])
	*qs = kept
}

// expiryQueue is windows in the order they opened, each with the end it
// opened with, for expiry to find the closed ones first. It is
// kept in chunks that are never copied: a slice that doubled, then copied
// hundreds of thousands of entries, did so under the campaign's mutex. A
// chunk done with is kept for the next, so that a campaign whose audience
// comes and goes allocates nothing.
type expiryQueue struct {
	chunks [][]capExpiry // each of cap expiryChunk; all but the last are full
	head   int           // chunks[0][:head] are done with
	spare  []capExpiry
	n      int
}

const expiryChunk = 1024

type capExpiry struct {
	key uint64
	end int64
}

func (q *expiryQueue) push(e capExpiry) {
	if k := len(q.chunks); k == 0 || len(q.chunks[k-1]) == expiryChunk {
		c := q.spare
		if c == nil {
			c = make([]capExpiry, 0, expiryChunk)
		}
		q.spare = nil
		q.chunks = append(q.chunks, c)
	}
	last := &q.chunks[len(q.chunks)-1]
	*last = append(*last, e)
	q.n++
}

// first returns the entry queued longest, if any.
func (q *expiryQueue) first() (capExpiry, bool) {
	if q.n == 0 {
		return capExpiry{}, false
	}
	return q.chunks[0][q.head], true
}

// pop drops the entry queued longest; there must be one.
func (q *expiryQueue) pop() {
	q.head++
	q.n--
	if q.head == expiryChunk || q.n == 0 {
		q.spare = q.chunks[0][:0]
		// Shifted down rather than resliced, so that the array of chunks
		// is not reallocated as the queue moves along it.
		k := copy(q.chunks, q.chunks[1:])
		q.chunks[k] = nil
		q.chunks = q.chunks[:k]
		q.head = 0
	}
}
