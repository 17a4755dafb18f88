package serving

import (
	"errors"
	"hash/maphash"
	"iter"
	"math"
	"slices"
	"strings"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/geo"
)

// A national catalogue is a million stores, and every pointer in the index
// is a word each garbage collection follows: with a pointer a store in each
// of the offers it sits in (2.9 million), in the advertisers' maps by ID and
// in the stores themselves, marking the stores was three quarters of a
// collection's work. So the stores hold no pointers at all. They sit in
// slabs, one an upload, whose arrays the collector never scans; offers name
// them by number, and an advertiser's stores are found by a hash of their
// ID. A collection then marks a slab's four arrays, not its stores.

// Store is a store as served: a handle on its record in a slab. It is
// immutable once published and cheap to copy.
type Store struct {
	slab *storeSlab
	i    uint32
}

// storeRec is a store's record: where it is, and where its texts, products
// and hours are in its slab. It holds no pointers.
type storeRec struct {
	lat, lng float64
	cell     uint64 // H3 cell at geo.IndexResolution
	// slab.text[text:idEnd] is the ID, [idEnd:nameEnd] the name,
	// [nameEnd:end] the address.
	text, idEnd, nameEnd, end uint32
	prod, prodEnd             uint32 // slab.products[prod:prodEnd], in Index.productName
	week                      uint16 // the opening hours in Index.weeks, or noWeek
}

// storeSlab holds the stores of one upload (those still current when it was
// kept). Offers and the advertiser's directory point at the slab, not at
// its stores, and it is freed with the last of them.
type storeSlab struct {
	recs     []storeRec
	text     string
	products []uint32
	hours    map[uint32]campaigns.Week // by record, for those whose week is noWeek; nil when none
}

func (s Store) rec() *storeRec { return &s.slab.recs[s.i] }

// ID returns the store's ID, unique within its advertiser's stores.
func (s Store) ID() string {
	r := s.rec()
	return s.slab.text[r.text:r.idEnd]
}

// Name returns the store's name.
func (s Store) Name() string {
	r := s.rec()
	return s.slab.text[r.idEnd:r.nameEnd]
}

// Address returns the store's address.
func (s Store) Address() string {
	r := s.rec()
	return s.slab.text[r.nameEnd:r.end]
}

// Lat returns the store's latitude.
func (s Store) Lat() float64 { return s.rec().lat }

// Lng returns the store's longitude.
func (s Store) Lng() float64 { return s.rec().lng }

// Cell returns the store's H3 cell at geo.IndexResolution.
func (s Store) Cell() uint64 { return s.rec().cell }

// products returns the numbers of the products the store carries.
func (s Store) products() []uint32 {
	r := s.rec()
	return s.slab.products[r.prod:r.prodEnd:r.prodEnd]
}

func (s Store) week() uint16 { return s.rec().week }

// hours returns the store's opening hours when its week is noWeek.
func (s Store) hours() campaigns.Week { return s.slab.hours[s.i] }

// sameAs reports whether s and t are served the same way in every respect.
func (s Store) sameAs(t Store) bool {
	a, b := s.rec(), t.rec()
	return a.lat == b.lat && a.lng == b.lng && slices.Equal(s.products(), t.products()) && s.Name() == t.Name() && s.Address() == t.Address() &&
		a.week == b.week && (a.week != noWeek || s.hours().Equal(t.hours()))
}

// samePlace reports whether s and t sit at the same place with the same
// products: their offers' presence marks then stand.
func (s Store) samePlace(t Store) bool {
	a, b := s.rec(), t.rec()
	return a.lat == b.lat && a.lng == b.lng && slices.Equal(s.products(), t.products())
}

// servedStores returns a slab of stores as served, in order, their products
// and hours not yet numbered (see Index.numberStores), and each store's
// compiled opening hours. A large upload's cells and hours are computed on
// every processor: at national scale they are seconds of cgo calls and
// parsing at start-up.
func servedStores(stores []*campaigns.Store) (*storeSlab, []campaigns.Week, error) {
	const chunk = 4096
	slab := &storeSlab{recs: make([]storeRec, len(stores))}
	hours := make([]campaigns.Week, len(stores))
	// The texts end to end in one string: each chunk writes its part.
	at := make([]int, (len(stores)+chunk-1)/chunk+1)
	for c := range len(at) - 1 {
		n := 0
		for _, s := range stores[c*chunk : min(len(stores), (c+1)*chunk)] {
			n += len(s.ID) + len(s.Name) + len(s.Address)
		}
		at[c+1] = at[c] + n
	}
	products := 0
	for _, s := range stores {
		products += len(s.Products)
	}
	if at[len(at)-1] > math.MaxUint32 || products > math.MaxUint32 {
		return nil, nil, errors.New("stores: an upload too large for one slab")
	}
	text := make([]byte, at[len(at)-1])
	errs := make([]error, len(at)-1)
	parallel(len(errs), func(_, c int) {
		lo, hi := c*chunk, min(len(stores), (c+1)*chunk)
		b := text[at[c]:at[c]]
		for i := lo; i < hi; i++ {
			s := stores[i]
			cell, err := geo.Cell(s.Lat, s.Lng, geo.IndexResolution)
			if err != nil {
				errs[c] = err
				return
			}
			hours[i], _ = s.Hours.Compile()
			r := &slab.recs[i]
			r.lat, r.lng, r.cell = s.Lat, s.Lng, uint64(cell)
			r.text = uint32(at[c] + len(b))
			b = append(b, s.ID...)
			r.idEnd = uint32(at[c] + len(b))
			b = append(b, s.Name...)
			r.nameEnd = uint32(at[c] + len(b))
			b = append(b, s.Address...)
			r.end = uint32(at[c] + len(b))
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, nil, err
		}
	}
	slab.text = string(text)
	return slab, hours, nil
}

// compact returns a slab of the given stores of s alone, in order: what a
// directory keeps of an upload when some of its stores were not kept.
func (s *storeSlab) compact(keep []uint32) *storeSlab {
	size, products := 0, 0
	for _, i := range keep {
		r := &s.recs[i]
		size += int(r.end - r.text)
		products += int(r.prodEnd - r.prod)
	}
	c := &storeSlab{recs: make([]storeRec, len(keep)), products: make([]uint32, 0, products)}
	var b strings.Builder
	b.Grow(size)
	for k, i := range keep {
		r := s.recs[i]
		at := uint32(b.Len())
		b.WriteString(s.text[r.text:r.end])
		r.text, r.idEnd, r.nameEnd, r.end = at, at+(r.idEnd-r.text), at+(r.nameEnd-r.text), at+(r.end-r.text)
		from := uint32(len(c.products))
		c.products = append(c.products, s.products[r.prod:r.prodEnd]...)
		r.prod, r.prodEnd = from, uint32(len(c.products))
		if r.week == noWeek {
			if c.hours == nil {
				c.hours = make(map[uint32]campaigns.Week)
			}
			c.hours[uint32(k)] = s.hours[i]
		}
		c.recs[k] = r
	}
	c.text = b.String()
	return c
}

// storeDir is an advertiser's current stores by ID. It holds its stores'
// slabs, each once, and finds a store by a hash of its ID in a map of
// numbers (which the collector does not scan); the rare IDs whose hash
// another ID already has are kept by ID. A slab is dropped when none of its
// stores is current any more. It is not safe for concurrent use.
type storeDir struct {
	slots []dirSlot
	free  []uint32          // slots whose slab was dropped, for reuse
	byID  map[uint64]uint64 // hash of an ID → its store's ref
	clash map[string]uint64 // ID → ref, for IDs whose hash byID holds for another
	hash  func(id string) uint64
}

// A ref names a store in a directory: slot<<32 | record.
type dirSlot struct {
	slab *storeSlab
	live int // the slab's stores that are current
}

// idSeed seeds the hash of store IDs. A process-wide seed: the hashes are
// never stored.
var idSeed = maphash.MakeSeed()

func hashID(id string) uint64 { return maphash.String(idSeed, id) }

func newStoreDir() *storeDir { return &storeDir{byID: make(map[uint64]uint64), hash: hashID} }

// len returns how many stores d holds.
func (d *storeDir) len() int {
	if d == nil {
		return 0
	}
	return len(d.byID) + len(d.clash)
}

func (d *storeDir) at(ref uint64) Store {
	return Store{d.slots[ref>>32].slab, uint32(ref)}
}

// get returns the store with the given ID. d may be nil.
func (d *storeDir) get(id string) (Store, bool) {
	if d == nil {
		return Store{}, false
	}
	if ref, ok := d.byID[d.hash(id)]; ok {
		if st := d.at(ref); st.ID() == id {
			return st, true
		}
	}
	if ref, ok := d.clash[id]; ok {
		return d.at(ref), true
	}
	return Store{}, false
}

// add gives slab a slot, for put. A slab none of whose stores is put must
// be handed to settle.
func (d *storeDir) add(slab *storeSlab) uint32 {
	if n := len(d.free); n > 0 {
		slot := d.free[n-1]
		d.free = d.free[:n-1]
		d.slots[slot] = dirSlot{slab: slab}
		return slot
	}
	d.slots = append(d.slots, dirSlot{slab: slab})
	return uint32(len(d.slots) - 1)
}

// put makes record i of the slab in slot the store of its ID, replacing
// any store of that ID.
func (d *storeDir) put(slot, i uint32) {
	ref := uint64(slot)<<32 | uint64(i)
	id := d.at(ref).ID()
	h := d.hash(id)
	d.slots[slot].live++
	if old, ok := d.byID[h]; ok && d.at(old).ID() == id {
		d.byID[h] = ref
		d.release(old)
		return
	} else if ok {
		if old, ok := d.clash[id]; ok {
			d.release(old)
		}
		if d.clash == nil {
			d.clash = make(map[string]uint64)
		}
		d.clash[id] = ref
		return
	}
	// The ID's hash is free, though the ID may sit in clash from when
	// another held the hash.
	if old, ok := d.clash[id]; ok {
		delete(d.clash, id)
		d.release(old)
	}
	d.byID[h] = ref
}

// del removes the store with the given ID and returns it.
func (d *storeDir) del(id string) (Store, bool) {
	if d == nil { // an advertiser without stores
		return Store{}, false
	}
	h := d.hash(id)
	if ref, ok := d.byID[h]; ok {
		if st := d.at(ref); st.ID() == id {
			delete(d.byID, h)
			d.release(ref)
			return st, true
		}
	}
	if ref, ok := d.clash[id]; ok {
		st := d.at(ref)
		delete(d.clash, id)
		d.release(ref)
		return st, true
	}
	return Store{}, false
}

// settleUpload settles the upload in slot once its stores have been put:
// a slab none of whose stores was kept is dropped, and one only some of
// whose were (the others unchanged, or replaced by a later store of the
// same ID) is copied down to those, so that an upload that changes a few
// stores keeps only those few. A slab still holds stores replaced after it
// was kept until the last of its stores is: at worst twice the stores'
// memory, for an advertiser who changes a few stores of a large list at a
// time.
func (d *storeDir) settleUpload(slot uint32) {
	ds := d.slots[slot]
	if ds.live == 0 { // an empty upload too
		d.settle(slot)
		return
	}
	if ds.live == len(ds.slab.recs) {
		return
	}
	keep := make([]uint32, 0, ds.live)
	for i := range ds.slab.recs {
		st := Store{ds.slab, uint32(i)}
		if cur, _ := d.get(st.ID()); cur == st {
			keep = append(keep, uint32(i))
		}
	}
	to := d.add(ds.slab.compact(keep))
	for k := range keep {
		d.put(to, uint32(k)) // replaces, and at the last drops, the upload's
	}
}

// release notes that ref is no longer current, dropping its slab with the
// last of its stores.
func (d *storeDir) release(ref uint64) {
	slot := uint32(ref >> 32)
	d.slots[slot].live--
	d.settle(slot)
}

// settle drops the slab in slot if none of its stores is current.
func (d *storeDir) settle(slot uint32) {
	if d.slots[slot].live == 0 && d.slots[slot].slab != nil {
		d.slots[slot] = dirSlot{}
		d.free = append(d.free, slot)
	}
}

// all yields every store of d, in no particular order. d may be nil, and
// may be changed (del) while it yields.
func (d *storeDir) all() iter.Seq[Store] {
	return func(yield func(Store) bool) {
		if d == nil {
			return
		}
		for _, ref := range d.byID {
			if !yield(d.at(ref)) {
				return
			}
		}
		for _, ref := range d.clash {
			if !yield(d.at(ref)) {
				return
			}
		}
	}
}
