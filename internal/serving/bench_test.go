package serving

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/osm"
)

// benchWorld is the ~26k real stores of internal/osm: restaurants carry two
// beers (two brewers), convenience stores a canned coffee and a snack, cafés
// a coffee; 40 campaigns share the popular keywords.
func benchWorld(b *testing.B) (*Engine, []campaigns.Store) {
	b.Helper()
	ix := NewIndex()
	all := realStores(b, "", func(osm.POI) []string { return []string{"x"} })
	byAdv := map[string][]campaigns.Store{}
	pois, _ := osm.POIs()
	for i, p := range pois {
		s := all[i]
		switch p.Category {
		case "restaurant":
			s.Products = []string{"beer-a", "beer-b"}
			byAdv["brewer"] = append(byAdv["brewer"], s)
		case "convenience":
			s.Products = []string{"coffee", "snack"}
			byAdv["maker"] = append(byAdv["maker"], s)
		case "cafe":
			s.Products = []string{"coffee"}
			byAdv["roaster"] = append(byAdv["roaster"], s)
		}
	}
	for adv, ss := range byAdv {
		if err := ix.PutStores(adv, ss); err != nil {
			b.Fatal(err)
		}
	}
	offers := []struct{ adv, product string }{
		{"brewer", "beer-a"}, {"brewer", "beer-b"}, {"maker", "coffee"}, {"maker", "snack"}, {"roaster", "coffee"},
	}
	kws := [][]string{{"居酒屋", "飲み屋"}, {"居酒屋", "焼き鳥"}, {"コーヒー", "カフェ"}, {"コンビニ", "お菓子"}, {"カフェ", "コーヒー"}}
	for i := range 40 {
		o := offers[i%len(offers)]
		c := campaign(fmt.Sprintf("c%02d", i), o.adv, o.product, []int{300, 500, 800, 1500}[i%4], kws[i%len(kws)]...)
		c.Priority, c.BidCPM = i%3, float64(100+i)
		c.NegativeKeywords = []string{"バイト", "求人"}
		ix.PutCampaign(c)
	}
	return newEngine(b, ix, nil), all
}

type benchReq struct {
	lat, lng float64
	q        string
}

func benchRequests(stores []campaigns.Store, queries []string) []benchReq {
	r := rand.New(rand.NewPCG(7, 7))
	reqs := make([]benchReq, 4096)
	for i := range reqs {
		lat, lng := randomFix(r, stores)
		reqs[i] = benchReq{lat, lng, queries[r.IntN(len(queries))]}
	}
	return reqs
}

// BenchmarkDecide measures one in-process decision over the real stores,
// for queries that trigger campaigns and for those that trigger nothing.
func BenchmarkDecide(b *testing.B) {
	e, stores := benchWorld(b)
	for _, bc := range []struct {
		name    string
		queries []string
	}{
		{"hit", []string{"居酒屋", "コーヒー", "新宿 居酒屋", "カフェ"}},
		{"miss", []string{"歯医者", "駅", "病院"}},
		{"mixed", []string{"居酒屋", "コーヒー", "歯医者", "駅", "カフェ", "居酒屋 バイト"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			reqs := benchRequests(stores, bc.queries)
			dst := make([]Ad, 0, 10)
			ctx := context.Background()
			ads := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				r := &reqs[i%len(reqs)]
				req := Request{Lat: r.lat, Lng: r.lng, Query: r.q, N: 3, Mode: campaigns.Walk}
				out, err := e.Decide(ctx, &req, dst[:0])
				if err != nil {
					b.Fatal(err)
				}
				ads += len(out)
			}
			b.ReportMetric(float64(ads)/float64(b.N), "ads/op")
		})
	}
}
