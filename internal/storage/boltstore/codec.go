package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"

	"github.com/navad/navad/campaigns"
)

// Stores use a small binary encoding rather than JSON because a national
// catalogue is a million of them and the serving index loads them all at
// start: decoding is about eight times faster than encoding/json and the
// records are about a third smaller (see BenchmarkStoreCodec). The store's
// advertiser and ID live in the key, not in the value.
//
// Version 1, after a leading version byte; str is a uvarint length and bytes:
//
//	name str, address str, lat float64 LE, lng float64 LE,
//	uvarint product count, product str...,
//	uvarint hour range count, per range: uvarint day count, day str..., from str, to str
//
// A new field means a new version byte; decodeStore keeps reading the old.
const storeCodecV1 = 1

// appendStore appends the encoding of s to dst.
func appendStore(dst []byte, s *campaigns.Store) []byte {
	dst = append(dst, storeCodecV1)
	dst = appendString(dst, s.Name)
	dst = appendString(dst, s.Address)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.Lat))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.Lng))
	dst = binary.AppendUvarint(dst, uint64(len(s.Products)))
	for _, p := range s.Products {
		dst = appendString(dst, p)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Hours)))
	for _, h := range s.Hours {
		dst = binary.AppendUvarint(dst, uint64(len(h.Days)))
		for _, d := range h.Days {
			dst = appendString(dst, d)
		}
		dst = appendString(dst, h.From)
		dst = appendString(dst, h.To)
	}
	return dst
}

// storeSize returns the length of s's encoding, so that bulk writes can
// size their buffer once.
func storeSize(s *campaigns.Store) int {
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

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// maxInterned bounds the strings one storeDecoder shares, so that a catalogue
// of unique product IDs cannot grow the table without limit.
const maxInterned = 1 << 16

// storeDecoder decodes stores for one iteration. It hands out one string per
// distinct product ID and advertiser ID instead of one per store: a million
// stores name a few thousand products, and sharing them saves the serving
// index tens of megabytes. It is not safe for concurrent use.
type storeDecoder struct {
	interner
	lastAdv string
}

var errCorrupt = errors.New("corrupt store record")

// decode decodes the store under key (advertiser ID NUL store ID) from v.
// The result shares no memory with key or v.
func (d *storeDecoder) decode(key, v []byte) (*campaigns.Store, error) {
	i := bytes.IndexByte(key, sep)
	if i < 0 {
		return nil, fmt.Errorf("store key %q: %w", key, errCorrupt)
	}
	if adv := key[:i]; string(adv) != d.lastAdv { // no allocation to compare
		d.lastAdv = string(adv)
	}
	s := &campaigns.Store{AdvertiserID: d.lastAdv}
	if err := d.decodeValue(s, key[i+1:], v); err != nil {
		return nil, fmt.Errorf("store %q of %q: %w", key[i+1:], d.lastAdv, err)
	}
	return s, nil
}

func (d *storeDecoder) decodeValue(s *campaigns.Store, id, v []byte) error {
	r := reader{b: v}
	if ver := r.byte(); ver != storeCodecV1 {
		if r.err != nil {
			return r.err
		}
		return fmt.Errorf("unknown store encoding %d", ver)
	}
	name := r.bytes()
	addr := r.bytes()
	if r.err != nil {
		return r.err
	}
	// One allocation for the ID, name and address: a Builder hands over
	// its buffer without copying, and the three are slices of it.
	var sb strings.Builder
	sb.Grow(len(id) + len(name) + len(addr))
	sb.Write(id)
	sb.Write(name)
	sb.Write(addr)
	text := sb.String()
	s.ID = text[:len(id)]
	s.Name = text[len(id) : len(id)+len(name)]
	s.Address = text[len(id)+len(name):]
	s.Lat = math.Float64frombits(r.uint64())
	s.Lng = math.Float64frombits(r.uint64())
	if n := r.count(); n > 0 {
		s.Products = make([]string, n)
		for j := range s.Products {
			s.Products[j] = d.intern(r.bytes())
		}
	}
	if n := r.count(); n > 0 {
		s.Hours = make(campaigns.Hours, n)
		for j := range s.Hours {
			h := &s.Hours[j]
			if nd := r.count(); nd > 0 {
				h.Days = make([]string, nd)
				for k := range h.Days {
					h.Days[k] = d.intern(r.bytes())
				}
			}
			h.From = d.intern(r.bytes())
			h.To = d.intern(r.bytes())
		}
	}
	if r.err == nil && r.off != len(v) {
		return fmt.Errorf("%d trailing bytes: %w", len(v)-r.off, errCorrupt)
	}
	return r.err
}

// interner hands out one string per distinct byte sequence, for the
// identifiers that repeat across the records of one iteration.
type interner struct {
	m map[string]string
}

func (in *interner) intern(b []byte) string {
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

// reader reads the parts of an encoded record. After the first error every
// read returns a zero value and err says what went wrong, so a decoder
// checks once at the end; corrupt input never panics.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
}

func (r *reader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail()
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) uvarint() int {
	if r.err != nil {
		return 0
	}
	x, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 || x > uint64(len(r.b)-r.off-n) {
		// A length or count never exceeds the bytes left.
		r.fail()
		return 0
	}
	r.off += n
	return int(x)
}

// count reads a number of items, each at least one byte long.
func (r *reader) count() int { return r.uvarint() }

func (r *reader) skip(n int) {
	if r.err != nil {
		return
	}
	if n > len(r.b)-r.off {
		r.fail()
		return
	}
	r.off += n
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	start := r.off
	r.skip(n)
	if r.err != nil {
		return nil
	}
	return r.b[start:r.off]
}

func (r *reader) uint64() uint64 {
	if r.err != nil || len(r.b)-r.off < 8 {
		r.fail()
		return 0
	}
	x := binary.LittleEndian.Uint64(r.b[r.off:])
	r.off += 8
	return x
}
