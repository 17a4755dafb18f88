package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/navad/navad/internal/storage"
)

func testEntries(n int) []servedEntry {
	var out []servedEntry
	for i := range n {
		k := storage.AggKey{Hour: uint8(i % 24), AdvertiserID: fmt.Sprintf("adv_%d", i%3), CampaignID: fmt.Sprintf("cmp_%d", i%7),
			PublisherID: "pub", StoreID: fmt.Sprintf("s%d", i), Cell: uint64(i) << 8}
		out = append(out, servedEntry{rollupKey(rollupC, &k)[4:], uint64(i * i)})
	}
	slices.SortFunc(out, func(a, b servedEntry) int { return bytes.Compare(a.key, b.key) })
	return out
}

// TestServedBlockRoundTrip: what appendServedBlock writes, blockReader
// reads back, also when resumed from a copy of its state.
func TestServedBlockRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		give []servedEntry
	}{
		{"none", nil},
		{"one", testEntries(1)},
		{"many", testEntries(500)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := appendServedBlock(nil, 1793582400, tt.give)
			var r blockReader
			if err := r.open(v); err != nil {
				t.Fatal(err)
			}
			if r.written != 1793582400 {
				t.Fatalf("written %d", r.written)
			}
			for i := 0; ; i++ {
				if i == len(tt.give)/2 { // resume on another copy of the bytes
					r.rd.B = bytes.Clone(v)
				}
				k, n, ok, err := r.next()
				if err != nil {
					t.Fatalf("entry %d: %v", i, err)
				}
				if !ok {
					if i != len(tt.give) {
						t.Fatalf("%d entries, want %d", i, len(tt.give))
					}
					break
				}
				if w := tt.give[i]; !bytes.Equal(k, w.key) || n != w.n || !validRollupKey(rollupC, k) {
					t.Fatalf("entry %d: %q %d, want %q %d", i, k, n, w.key, w.n)
				}
			}
		})
	}
}

// FuzzServedBlock: no block, however damaged, panics the reader or makes
// it loop.
func FuzzServedBlock(f *testing.F) {
	f.Add(appendServedBlock(nil, 7, testEntries(20)))
	f.Add([]byte{1, 0, 0})
	f.Add(append(appendServedBlock(nil, 7, testEntries(3)), 0))
	f.Add(binary.AppendUvarint([]byte{1, 0, 1, 0}, 1<<62))
	f.Fuzz(func(t *testing.T, v []byte) {
		var r blockReader
		if r.open(v) != nil {
			return
		}
		for i := 0; ; i++ {
			if i > len(v) {
				t.Fatalf("more than %d entries in %d bytes", i, len(v))
			}
			k, _, ok, err := r.next()
			if err != nil || !ok {
				return
			}
			if len(k) > maxCellKeyLen {
				t.Fatalf("key of %d bytes", len(k))
			}
		}
	})
}
