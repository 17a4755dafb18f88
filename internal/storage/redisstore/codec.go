package redisstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/navad/navad/campaigns"
)

// Stores are kept in a small binary encoding, not JSON: a national catalogue
// is a million of them, a new replica reads them all before it serves, and
// they are most of what Redis holds. The advertiser and store ID are the key
// and hash field, not part of the value. This is the same layout as the
// embedded store's records (boltstore/codec.go), written here again rather
// than shared so that each backend owns its on-disk format.
//
// Version 1, after a leading version byte; str is a uvarint length and bytes:
//
//	name str, address str, lat float64 LE, lng float64 LE,
//	uvarint product count, product str...,
//	uvarint hour range count, per range: uvarint day count, day str..., from str, to str
const storeCodecV1 = 1

var errCorrupt = errors.New("corrupt store record")

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

// storeSize returns an upper bound of the length of s's encoding, so that
// bulk writes size their buffer once.
func storeSize(s *campaigns.Store) int {
	n := 1 + 2*binary.MaxVarintLen64 + len(s.Name) + len(s.Address) + 16 + binary.MaxVarintLen64
	for _, p := range s.Products {
		n += binary.MaxVarintLen64 + len(p)
	}
	n += binary.MaxVarintLen64
	for _, h := range s.Hours {
		n += 3*binary.MaxVarintLen64 + len(h.From) + len(h.To)
		for _, d := range h.Days {
			n += binary.MaxVarintLen64 + len(d)
		}
	}
	return n
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// maxInterned bounds the strings one decoder shares, so that a catalogue of
// unique product IDs cannot grow the table without limit.
const maxInterned = 1 << 16

// storeDecoder decodes the stores of one iteration. It hands out one string
// per distinct product ID (and day and hour) instead of one per store: a
// million stores name a few thousand products, and sharing them saves the
// serving index tens of megabytes. Not safe for concurrent use.
type storeDecoder struct {
	interned map[string]string
}

func (d *storeDecoder) intern(s string) string {
	if v, ok := d.interned[s]; ok {
		return v
	}
	if d.interned == nil {
		d.interned = make(map[string]string)
	}
	if len(d.interned) < maxInterned {
		d.interned[s] = s
	}
	return s
}

// decode decodes the value v of store id of advertiser adv. Name and address
// share v's memory (v is a string, so nothing can change it).
func (d *storeDecoder) decode(adv, id, v string) (*campaigns.Store, error) {
	s := &campaigns.Store{ID: id, AdvertiserID: adv}
	r := reader{s: v}
	if ver := r.byte(); ver != storeCodecV1 {
		if r.err != nil {
			return nil, fmt.Errorf("store %q of %q: %w", id, adv, r.err)
		}
		return nil, fmt.Errorf("store %q of %q: unknown encoding %d", id, adv, ver)
	}
	s.Name = r.str()
	s.Address = r.str()
	s.Lat = math.Float64frombits(r.uint64())
	s.Lng = math.Float64frombits(r.uint64())
	if n := r.count(); n > 0 {
		s.Products = make([]string, n)
		for j := range s.Products {
			s.Products[j] = d.intern(r.str())
		}
	}
	if n := r.count(); n > 0 {
		s.Hours = make(campaigns.Hours, n)
		for j := range s.Hours {
			h := &s.Hours[j]
			if nd := r.count(); nd > 0 {
				h.Days = make([]string, nd)
				for k := range h.Days {
					h.Days[k] = d.intern(r.str())
				}
			}
			h.From = d.intern(r.str())
			h.To = d.intern(r.str())
		}
	}
	if r.err == nil && r.off != len(v) {
		r.err = fmt.Errorf("%d trailing bytes: %w", len(v)-r.off, errCorrupt)
	}
	if r.err != nil {
		return nil, fmt.Errorf("store %q of %q: %w", id, adv, r.err)
	}
	return s, nil
}

// reader reads the parts of an encoded record. After the first error every
// read returns a zero value and err says what went wrong, so a decoder checks
// once at the end; corrupt input never panics.
type reader struct {
	s   string
	off int
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
}

func (r *reader) byte() byte {
	if r.err != nil || r.off >= len(r.s) {
		r.fail()
		return 0
	}
	c := r.s[r.off]
	r.off++
	return c
}

// uvarint reads a length or a count, which never exceeds the bytes left.
func (r *reader) uvarint() int {
	var x uint64
	var shift uint
	for i := 0; ; i++ {
		if i == binary.MaxVarintLen64 {
			r.fail()
			return 0
		}
		c := r.byte()
		if r.err != nil {
			return 0
		}
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
		shift += 7
	}
	if x > uint64(len(r.s)-r.off) {
		r.fail()
		return 0
	}
	return int(x)
}

func (r *reader) count() int { return r.uvarint() }

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	v := r.s[r.off : r.off+n]
	r.off += n
	return v
}

func (r *reader) uint64() uint64 {
	if r.err != nil || len(r.s)-r.off < 8 {
		r.fail()
		return 0
	}
	var x uint64
	for i := 7; i >= 0; i-- {
		x = x<<8 | uint64(r.s[r.off+i])
	}
	r.off += 8
	return x
}
