package storagetest

import (
	"fmt"
	"math/rand/v2"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/osm"
)

// MakeChainStores returns n stores of one brand as a real store list looks:
// placed where shops are (around the real locations of internal/osm, a few
// hundred metres off, so that they cluster in cities), each carrying three
// to six of the brand's ten products ("drink-00" … "drink-09"), with IDs
// "st-000000", "st-000001", … in order. The same n always gives the same
// stores. MakeStores is the opposite case, 2,000 products spread evenly
// over the country, the worst for the serving index.
func MakeChainStores(n int) []campaigns.Store {
	pois, err := osm.POIs()
	if err != nil {
		panic(err) // the embedded file is part of the build
	}
	r := rand.New(rand.NewPCG(uint64(n), 0x636861696e))
	stores := make([]campaigns.Store, n)
	for i := range stores {
		p := pois[i%len(pois)]
		s := &stores[i]
		s.ID = fmt.Sprintf("st-%06d", i)
		s.Name = fmt.Sprintf("ドリンクショップ %d号店", i)
		s.Address = "東京都新宿区"
		s.Lat = p.Lat + (r.Float64()-0.5)*0.006
		s.Lng = p.Lng + (r.Float64()-0.5)*0.006
		seen := map[int]bool{}
		for want := 3 + r.IntN(4); len(s.Products) < want; {
			k := r.IntN(10)
			if !seen[k] {
				seen[k] = true
				s.Products = append(s.Products, fmt.Sprintf("drink-%02d", k))
			}
		}
	}
	return stores
}
