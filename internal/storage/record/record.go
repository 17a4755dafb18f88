// Package record holds the binary record encodings both storage backends
// write: the store record, and the reader and interner their decoders
// share. One layout, so that a catalogue moved between the embedded store
// and Redis is the same bytes, and one decoder to fix.
//
// Stores are kept in this encoding rather than JSON because a national
// catalogue is a million of them and the serving index (or a new replica)
// loads them all at start: decoding is about eight times faster than
// encoding/json and the records are about a third smaller (see
// boltstore's BenchmarkStoreCodec). The store's advertiser and ID are the
// backend's key, not part of the value.
//
// Version 1, after a leading version byte; str is a uvarint length and bytes:
//
//	name str, address str, lat float64 LE, lng float64 LE,
//	uvarint product count, product str...,
//	uvarint hour range count, per range: uvarint day count, day str..., from str, to str
//
// A new field means a new version byte; Decode keeps reading the old.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/navad/navad/campaigns"
)

const storeV1 = 1

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("corrupt record")

// AppendStore appends the encoding of s to dst.
func AppendStore(dst []byte, s *campaigns.Store) []byte {
	dst = append(dst, storeV1)
	dst = AppendString(dst, s.Name)
	dst = AppendString(dst, s.Address)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.Lat))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.Lng))
	dst = binary.AppendUvarint(dst, uint64(len(s.Products)))
	for _, p := range s.Products {
		dst = AppendString(dst, p)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Hours)))
	for _, h := range s.Hours {
		dst = binary.AppendUvarint(dst, uint64(len(h.Days)))
		for _, d := range h.Days {
			dst = AppendString(dst, d)
		}
		dst = AppendString(dst, h.From)
		dst = AppendString(dst, h.To)
	}
	return dst
}

// StoreSize returns the length of s's encoding, so that bulk writes can
// size their buffer once.
func StoreSize(s *campaigns.Store) int {
	n := 1 + stringSize(s.Name) + stringSize(s.Address) + 16 + uvarintSize(len(s.Products))
	for _, p := range s.Products {
		n += stringSize(p)
	}
	n += uvarintSize(len(s.Hours))
	for _, h := range s.Hours {
		n += uvarintSize(len(h.Days)) + stringSize(h.From) + stringSize(h.To)
		for _, d := range h.Days {
			n += stringSize(d)
		}
	}
	return n
}

func stringSize(s string) int { return uvarintSize(len(s)) + len(s) }

func uvarintSize(x int) int { return (bits.Len64(uint64(x)|1) + 6) / 7 }

// AppendString appends s as a uvarint length and its bytes.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeStore decodes the value v of store id into s (whose AdvertiserID
// the caller sets), interning the identifiers that repeat across stores in
// in. The result shares no memory with id or v. T is string or []byte, as
// the backend's client hands values out.
func DecodeStore[T ~string | ~[]byte](in *Interner, s *campaigns.Store, id, v T) error {
	r := Reader[T]{B: v}
	if ver := r.Byte(); ver != storeV1 {
		if r.Err != nil {
			return r.Err
		}
		return fmt.Errorf("unknown store encoding %d", ver)
	}
	name, addr := r.Str(), r.Str()
	if r.Err != nil {
		return r.Err
	}
	// One allocation for the ID, name and address (the compiler converts
	// concatenation operands without copying them first); the three are
	// slices of it.
	text := string(id) + string(name) + string(addr)
	s.ID = text[:len(id)]
	s.Name = text[len(id) : len(id)+len(name)]
	s.Address = text[len(id)+len(name):]
	s.Lat = math.Float64frombits(r.Uint64())
	s.Lng = math.Float64frombits(r.Uint64())
	if n := r.Uvarint(); n > 0 {
		s.Products = make([]string, n)
		for j := range s.Products {
			s.Products[j] = Intern(in, r.Str())
		}
	}
	if n := r.Uvarint(); n > 0 {
		s.Hours = make(campaigns.Hours, n)
		for j := range s.Hours {
			h := &s.Hours[j]
			if nd := r.Uvarint(); nd > 0 {
				h.Days = make([]string, nd)
				for k := range h.Days {
					h.Days[k] = Intern(in, r.Str())
				}
			}
			h.From = Intern(in, r.Str())
			h.To = Intern(in, r.Str())
		}
	}
	return r.End()
}

// maxInterned bounds the strings one Interner shares, so that a catalogue
// of unique product IDs cannot grow the table without limit.
const maxInterned = 1 << 16

// Interner hands out one string per distinct value for the identifiers
// that repeat across the records of one iteration (a million stores name a
// few thousand products: sharing them saves the serving index tens of
// megabytes). The zero value is ready; not safe for concurrent use.
type Interner struct {
	m map[string]string
}

// Intern returns the shared string equal to b.
func Intern[T ~string | ~[]byte](in *Interner, b T) string {
	if s, ok := in.m[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	return s
}

// Reader reads the parts of an encoded record in B. After the first error
// every read returns a zero value and Err says what went wrong, so a
// decoder checks once at the end; corrupt input never panics.
type Reader[T ~string | ~[]byte] struct {
	B   T
	Off int
	Err error
}

// Fail records ErrCorrupt unless an error is recorded already.
func (r *Reader[T]) Fail() {
	if r.Err == nil {
		r.Err = ErrCorrupt
	}
}

// End returns the error so far, or one if bytes are left over.
func (r *Reader[T]) End() error {
	if r.Err == nil && r.Off != len(r.B) {
		r.Err = fmt.Errorf("%d trailing bytes: %w", len(r.B)-r.Off, ErrCorrupt)
	}
	return r.Err
}

// Byte reads one byte.
func (r *Reader[T]) Byte() byte {
	if r.Err != nil || r.Off >= len(r.B) {
		r.Fail()
		return 0
	}
	c := r.B[r.Off]
	r.Off++
	return c
}

func (r *Reader[T]) rawUvarint() uint64 {
	var x uint64
	var shift uint
	for i := 0; ; i++ {
		if i == binary.MaxVarintLen64 {
			r.Fail()
			return 0
		}
		c := r.Byte()
		if r.Err != nil {
			return 0
		}
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
		shift += 7
	}
}

// Uvarint reads a length or a count, which never exceeds the bytes left
// (every item is at least a byte long).
func (r *Reader[T]) Uvarint() int {
	x := r.rawUvarint()
	if x > uint64(len(r.B)-r.Off) {
		r.Fail()
		return 0
	}
	return int(x)
}

// AppendKeyCount appends one entry of a list of (key, count) sorted by key
// and prefix-compressed: a uvarint of the bytes key shares with prev (the
// entry before, nil for the first), a uvarint of the rest's length, the
// rest, and the count as a uvarint. The served-count blocks of both
// backends are such lists.
func AppendKeyCount(dst, prev, key []byte, n uint64) []byte {
	shared := 0
	for shared < len(prev) && shared < len(key) && prev[shared] == key[shared] {
		shared++
	}
	dst = binary.AppendUvarint(dst, uint64(shared))
	dst = binary.AppendUvarint(dst, uint64(len(key)-shared))
	dst = append(dst, key[shared:]...)
	return binary.AppendUvarint(dst, n)
}

// KeyCount reads an entry that AppendKeyCount wrote after the entry whose
// key was prev, and returns its key (built in prev's array) and count. An
// entry sharing more bytes than prev has fails r.
func (r *Reader[T]) KeyCount(prev []byte) ([]byte, uint64) {
	shared := r.Uvarint64() // of prev: may exceed it in a corrupt list
	rest := r.Str()
	n := r.Uvarint64()
	if r.Err != nil {
		return prev, 0
	}
	if shared > uint64(len(prev)) {
		r.Fail()
		return prev, 0
	}
	return append(prev[:shared], rest...), n
}

// Uvarint64 reads an unsigned varint of any size (a count).
func (r *Reader[T]) Uvarint64() uint64 { return r.rawUvarint() }

// Varint reads a signed (zig-zag) varint.
func (r *Reader[T]) Varint() int64 {
	ux := r.rawUvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// Str reads a uvarint length and that many bytes, sharing B's memory.
func (r *Reader[T]) Str() T {
	n := r.Uvarint()
	if r.Err != nil {
		var zero T
		return zero
	}
	v := r.B[r.Off : r.Off+n]
	r.Off += n
	return v
}

// Uint64 reads a little-endian uint64.
func (r *Reader[T]) Uint64() uint64 {
	if r.Err != nil || len(r.B)-r.Off < 8 {
		r.Fail()
		return 0
	}
	var x uint64
	for i := 7; i >= 0; i-- {
		x = x<<8 | uint64(r.B[r.Off+i])
	}
	r.Off += 8
	return x
}
