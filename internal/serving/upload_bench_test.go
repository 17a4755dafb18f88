package serving

import (
	"testing"

	"github.com/navad/navad/internal/storage/storagetest"
)

// BenchmarkPutStores100k measures the index side of a 100,000-store upload
// (storagetest.MakeStores: a chain spread over Japan, 3 to 8 of 2,000
// products a store, the worst case for presence marks): first into an empty
// index, then the same list again, which must change nothing.
func BenchmarkPutStores100k(b *testing.B) {
	stores := storagetest.MakeStores(100_000)
	b.Run("new", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			ix := NewIndex()
			b.StartTimer()
			if err := ix.PutStores("adv", stores); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("again", func(b *testing.B) {
		ix := NewIndex()
		if err := ix.PutStores("adv", stores); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := ix.PutStores("adv", stores); err != nil {
				b.Fatal(err)
			}
		}
	})
}
