package serving

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/geo"
)

// TestDecideMatchesReference compares Decide with a reference decision
// written from its contract, on random worlds: campaigns tied on priority
// and bid, with dates, modes, schedules and publishers, sharing offers, and
// fixes from the middle of the stores to far from any. Changes to the
// decision loop's order of checks must not change a single ad.
func TestDecideMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	advs := []string{"a1", "a2"}
	products := []string{"p0", "p1", "p2", "p3"}
	radii := []int{300, 500, 800, 1000, 2000, 5000}
	modes := []campaigns.Mode{campaigns.Walk, campaigns.Car}
	pubs := []string{"pub-a", "pub-b", "pub-c"}
	// Negative lists shared by many campaigns (the engine tests each once
	// a request), one of them in two orders, and queries some block.
	negatives := [][]string{nil, {"バイト"}, {"求人", "バイト"}, {"バイト", "求人"}, {"口コミ"}}
	queries := []string{"居酒屋", "居酒屋 バイト", "居酒屋 口コミ"}
	worlds := 20
	if testing.Short() {
		worlds = 5 // the race pass; the first pass compares all twenty
	}
	for world := range worlds {
		ix := NewIndex()
		var stores []campaigns.Store
		for _, adv := range advs {
			var ss []campaigns.Store
			for i := range 50 + r.IntN(150) {
				s := campaigns.Store{ID: fmt.Sprintf("%s-s%d", adv, i), AdvertiserID: adv, Name: "n",
					Lat: 35.6 + r.Float64()*0.1, Lng: 139.6 + r.Float64()*0.1}
				for _, p := range products {
					if r.IntN(2) == 0 {
						s.Products = append(s.Products, p)
					}
				}
				if len(s.Products) == 0 {
					s.Products = []string{"p0"}
				}
				ss = append(ss, s)
			}
			if err := ix.PutStores(adv, ss); err != nil {
				t.Fatal(err)
			}
			stores = append(stores, ss...)
		}
		var cs []*campaigns.Campaign
		for i := range 40 + r.IntN(40) {
			c := campaign(fmt.Sprintf("c%02d", i), advs[r.IntN(len(advs))], products[r.IntN(len(products))],
				radii[r.IntN(len(radii))], "居酒屋")
			c.Priority = r.IntN(3)
			c.BidCPM = float64(100 * (1 + r.IntN(2)))
			c.NegativeKeywords = negatives[r.IntN(len(negatives))]
			switch r.IntN(8) {
			case 0:
				c.End = monday10.Add(-time.Hour)
			case 1:
				c.Start = monday10.Add(-time.Hour)
			case 2:
				c.Hours = campaigns.Hours{{From: "17:00", To: "23:00"}}
			case 3:
				c.Hours = campaigns.Hours{{From: "09:00", To: "12:00"}}
			case 4:
				c.Publishers = []string{pubs[r.IntN(len(pubs))]}
			case 5:
				c.Modes = []campaigns.Mode{modes[r.IntN(len(modes))]}
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			ix.PutCampaign(c)
			cs = append(cs, c)
		}
		e := newEngine(t, ix, nil)
		for fix := range 200 {
			lat, lng := 35.6+r.Float64()*0.1, 139.6+r.Float64()*0.1
			if fix%4 == 0 { // away from the stores
				lat, lng = 35.55+r.Float64()*0.2, 139.55+r.Float64()*0.2
			}
			req := Request{Lat: lat, Lng: lng, Query: queries[r.IntN(len(queries))], N: 1 + r.IntN(6),
				Mode: modes[r.IntN(len(modes))], PublisherID: pubs[r.IntN(len(pubs))]}
			got := describeAds(decide(t, e, req))
			want := describeAds(referenceDecision(cs, stores, req, monday10))
			if got != want {
				t.Fatalf("world %d, fix %d (%+v):\n got %s\nwant %s", world, fix, req, got, want)
			}
		}
	}
}

// referenceDecision decides by brute force: every live campaign, its
// nearest store carrying its product within its radius (ties by store ID),
// then by priority and bid, nearest first within a tie, at most req.N.
func referenceDecision(cs []*campaigns.Campaign, stores []campaigns.Store, req Request, now time.Time) []Ad {
	var cands []Ad
	var q campaigns.Query
	q.Parse(req.Query)
	for _, c := range cs {
		week, _ := c.Hours.Compile()
		negatives := campaigns.CompileNegatives(c.NegativeKeywords)
		switch {
		case !c.Start.IsZero() && now.Before(c.Start), !c.End.IsZero() && now.After(c.End),
			!slices.Contains(c.Modes, req.Mode), !week.Contains(now.In(tokyo)),
			len(c.Publishers) > 0 && !slices.Contains(c.Publishers, req.PublisherID),
			negatives.Block(&q):
			continue
		}
		var best *campaigns.Store
		var bestD float64
		for i := range stores {
			s := &stores[i]
			if s.AdvertiserID != c.AdvertiserID || !s.HasProduct(c.ProductID) {
				continue
			}
			d := geo.DistanceM(req.Lat, req.Lng, s.Lat, s.Lng)
			if d <= float64(c.RadiusM) && (best == nil || d < bestD || d == bestD && s.ID < best.ID) {
				best, bestD = s, d
			}
		}
		if best != nil {
			cands = append(cands, Ad{Campaign: &Campaign{Campaign: c}, Store: storeOf(best.ID), DistanceM: bestD})
		}
	}
	slices.SortFunc(cands, func(a, b Ad) int {
		if c := cmp.Compare(b.Campaign.Priority, a.Campaign.Priority); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Campaign.BidCPM, a.Campaign.BidCPM); c != 0 {
			return c
		}
		if c := cmp.Compare(a.DistanceM, b.DistanceM); c != 0 {
			return c
		}
		return cmp.Compare(a.Campaign.ID, b.Campaign.ID)
	})
	return cands[:min(len(cands), req.N)]
}

func describeAds(ads []Ad) string {
	var s string
	for _, ad := range ads {
		s += fmt.Sprintf("%s→%s@%.3f ", ad.Campaign.ID, ad.Store.ID(), ad.DistanceM)
	}
	return s
}
