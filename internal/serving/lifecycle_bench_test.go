package serving

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/navad/navad/campaigns"
)

// BenchmarkCampaignChange measures one campaign write (a pause) with the
// national number of live campaigns, 10,000, each with ten keywords drawn
// from 2,000: the time until a change reaches decisions, since the write
// publishes a new snapshot before it returns.
func BenchmarkCampaignChange(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	words := make([]string, 2000)
	for i := range words {
		words[i] = fmt.Sprintf("キーワード%d", i)
	}
	ix := NewIndex()
	cs := make([]*campaigns.Campaign, 10_000)
	for i := range cs {
		kw := make([]string, 10)
		for j := range kw {
			kw[j] = words[r.IntN(len(words))]
		}
		cs[i] = campaign(fmt.Sprintf("c%05d", i), fmt.Sprintf("adv%03d", i%200), fmt.Sprintf("p%04d", i%2000), 800, kw...)
	}
	if err := ix.Load(cs, nil, nil); err != nil {
		b.Fatal(err)
	}
	last := cs[len(cs)-1]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c := *last
		c.Status = []campaigns.Status{campaigns.Paused, campaigns.Active}[i%2]
		ix.PutCampaign(&c)
	}
}

// BenchmarkStockBatch measures a point-of-sale batch of 10,000 rows against
// an index of 100,000 stores.
func BenchmarkStockBatch(b *testing.B) {
	stores := make([]campaigns.Store, 100_000)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range stores {
		stores[i] = campaigns.Store{ID: fmt.Sprintf("s%06d", i), Name: "s", Lat: 35 + r.Float64(), Lng: 139 + r.Float64(),
			Products: []string{"beer", "wine"}}
	}
	ix := NewIndex()
	if err := ix.PutStores("adv", stores); err != nil {
		b.Fatal(err)
	}
	rows := make([]campaigns.StockUpdate, 10_000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		out := i%2 == 0
		for j := range rows {
			rows[j] = campaigns.StockUpdate{StoreID: stores[r.IntN(len(stores))].ID, ProductID: "beer", InStock: &out}
		}
		ix.SetStock("adv", rows)
	}
}
