package serving

import (
	"testing"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage/storagetest"
)

// BenchmarkPutStores100k measures the index side of a 100,000-store upload,
// first into an empty index, then the same list again (which must change
// nothing), for two lists: "chain", a brand's stores where shops are with
// three to six of its ten products (storagetest.MakeChainStores), and
// "spread", three to eight of 2,000 products a store spread evenly over
// Japan (storagetest.MakeStores), the worst case for presence marks.
func BenchmarkPutStores100k(b *testing.B) {
	for _, ds := range []struct {
		name   string
		stores []campaigns.Store
	}{
		{"chain", storagetest.MakeChainStores(100_000)},
		{"spread", storagetest.MakeStores(100_000)},
	} {
		b.Run(ds.name+"/new", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				ix := NewIndex()
				b.StartTimer()
				if err := ix.PutStores("adv", ds.stores); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(ds.name+"/again", func(b *testing.B) {
			ix := NewIndex()
			if err := ix.PutStores("adv", ds.stores); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := ix.PutStores("adv", ds.stores); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
