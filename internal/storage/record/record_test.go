package record_test

import (
	"testing"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage/record"
	"github.com/navad/navad/internal/storage/storagetest"
)

func TestStoreSize(t *testing.T) {
	stores := storagetest.MakeStores(200)
	stores = append(stores, campaigns.Store{}, campaigns.Store{Name: string(make([]byte, 200)), Address: string(make([]byte, 20000))})
	for i := range stores {
		if got, want := record.StoreSize(&stores[i]), len(record.AppendStore(nil, &stores[i])); got != want {
			t.Fatalf("StoreSize of store %d = %d, encoding is %d bytes", i, got, want)
		}
	}
}

// TestKeyCountRoundTrip: KeyCount reads back what AppendKeyCount wrote,
// key after key, and fails an entry that claims more shared bytes than the
// key before it has.
func TestKeyCountRoundTrip(t *testing.T) {
	keys := []string{"", "a", "ab", "abc", "abd", "b", "b\x00cmp_1", "b\x00cmp_2", "zzzz"}
	var b []byte
	var prev []byte
	for i, k := range keys {
		b = record.AppendKeyCount(b, prev, []byte(k), uint64(i*1000))
		prev = []byte(k)
	}
	r := record.Reader[[]byte]{B: b}
	var key []byte
	for i, want := range keys {
		var n uint64
		key, n = r.KeyCount(key)
		if r.Err != nil || string(key) != want || n != uint64(i*1000) {
			t.Fatalf("entry %d: %q %d (%v), want %q %d", i, key, n, r.Err, want, i*1000)
		}
	}
	if err := r.End(); err != nil {
		t.Fatal(err)
	}

	// "ab" then an entry sharing 3 bytes of it.
	bad := record.AppendKeyCount(nil, nil, []byte("ab"), 1)
	bad = append(bad, 3, 1, 'x', 1)
	r = record.Reader[[]byte]{B: bad}
	key, _ = r.KeyCount(nil)
	r.KeyCount(key)
	if r.Err == nil {
		t.Fatal("an entry sharing more than the key before it was read")
	}
}
