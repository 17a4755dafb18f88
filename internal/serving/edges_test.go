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

// edgeEngine returns an engine over stores of advertiser "adv" and cs, with
// schedules read in loc.
func edgeEngine(t *testing.T, loc *time.Location, stores []campaigns.Store, cs ...*campaigns.Campaign) *Engine {
	ix := NewIndex()
	if err := ix.PutStores("adv", stores); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		ix.PutCampaign(c)
	}
	e, err := NewEngine(ix, loc, func() time.Time { return monday10 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestOpeningHoursAroundMidnight: a range past midnight belongs to the day
// it starts on (Saturday 18:00-02:00 is open early Sunday, Sunday's early
// Monday, across the week's wrap), closes at its "to" exactly, and "24:00"
// ends the day.
func TestOpeningHoursAroundMidnight(t *testing.T) {
	stores := []campaigns.Store{
		{ID: "sat", Name: "n", Lat: 35.69, Lng: 139.70, Products: []string{"beer"}, Hours: campaigns.Hours{{Days: []string{"sat"}, From: "18:00", To: "02:00"}}},
		{ID: "sun", Name: "n", Lat: 35.691, Lng: 139.70, Products: []string{"beer"}, Hours: campaigns.Hours{{Days: []string{"sun"}, From: "18:00", To: "02:00"}}},
		{ID: "fri24", Name: "n", Lat: 35.692, Lng: 139.70, Products: []string{"beer"}, Hours: campaigns.Hours{{Days: []string{"fri"}, From: "17:00", To: "24:00"}}},
	}
	e := edgeEngine(t, tokyo, stores, campaign("c", "adv", "beer", 800, "居酒屋"))
	tests := []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 11, 28, 17, 59, 0, 0, tokyo), ""},
		{time.Date(2026, 11, 28, 18, 0, 0, 0, tokyo), "sat"},
		{time.Date(2026, 11, 29, 1, 59, 59, 0, tokyo), "sat"},
		{time.Date(2026, 11, 29, 2, 0, 0, 0, tokyo), ""},
		{time.Date(2026, 11, 29, 18, 0, 0, 0, tokyo), "sun"},
		{time.Date(2026, 11, 30, 1, 0, 0, 0, tokyo), "sun"},
		{time.Date(2026, 11, 30, 2, 0, 0, 0, tokyo), ""},
		{time.Date(2026, 11, 27, 23, 59, 59, 0, tokyo), "fri24"},
		{time.Date(2026, 11, 28, 0, 0, 0, 0, tokyo), ""},
		{time.Date(2026, 11, 27, 16, 59, 0, 0, tokyo), ""},
	}
	for _, tt := range tests {
		if got := izakayaStoreAt(t, e, tt.at); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.at.Format(time.RFC3339), got, tt.want)
		}
	}
}

// TestRadiusEdgeAcrossTheGlobe: a store at the radius (the farthest fix
// bisection finds within it) is served and one just past it is not, in
// Tokyo, on both sides of the antimeridian and near the poles, for radii in
// every presence tier.
func TestRadiusEdgeAcrossTheGlobe(t *testing.T) {
	for _, p := range [][2]float64{{35.69, 139.70}, {0, 179.9999}, {0, -179.9999}, {89.99, 10}, {-89.99, 170}, {60, 179.999}, {35.69, 139.70}} {
		for _, r := range []int{50, 300, 500, 800, 1000, 1999, 2000, 3000, 5000} {
			stores := []campaigns.Store{{ID: "s", Name: "n", Lat: p[0], Lng: p[1], Products: []string{"beer"}}}
			e := edgeEngine(t, tokyo, stores, campaign("c", "adv", "beer", r, "居酒屋"))
			for _, dir := range [][2]float64{{1, 0}, {-1, 0}, {0, 1}, {0, -1}, {0.7, 0.7}} {
				// Bisect for the farthest fix along dir within r of the store.
				lo, hi := 0.0, 1.0
				fix := func(s float64) (float64, float64) {
					lat := p[0] + s*dir[0]
					lng := p[1] + s*dir[1]
					if lat > 90 || lat < -90 {
						lat = p[0] - s*dir[0]
					}
					if lng > 180 {
						lng -= 360
					}
					if lng < -180 {
						lng += 360
					}
					return lat, lng
				}
				for range 200 {
					m := (lo + hi) / 2
					la, ln := fix(m)
					if geo.DistanceM(la, ln, p[0], p[1]) <= float64(r) {
						lo = m
					} else {
						hi = m
					}
				}
				la, ln := fix(lo)
				d := geo.DistanceM(la, ln, p[0], p[1])
				ads := decide(t, e, Request{Lat: la, Lng: ln, Query: "居酒屋"})
				if len(ads) != 1 {
					t.Errorf("store %v r %d dir %v: fix %v,%v at %v: %d ads", p, r, dir, la, ln, d, len(ads))
				}
				la, ln = fix(hi)
				if ads := decide(t, e, Request{Lat: la, Lng: ln, Query: "居酒屋"}); len(ads) != 0 && geo.DistanceM(la, ln, p[0], p[1]) > float64(r) {
					t.Errorf("outside served")
				}
				// And fixes well inside.
				for _, f := range []float64{0.1, 0.5, 0.9, 0.99} {
					la, ln = fix(lo * f)
					if ads := decide(t, e, Request{Lat: la, Lng: ln, Query: "居酒屋"}); len(ads) != 1 {
						t.Errorf("store %v r %d dir %v f %v: inside not served", p, r, dir, f)
					}
				}
			}
		}
	}
}

// TestDecideWithHoursStockAndDST compares Decide with a brute-force
// decision where stores and campaigns have opening hours (past midnight,
// across the week's wrap, in the hour Europe/Berlin skips or repeats) and
// products go out of stock and back, at times around both DST switches.
func TestDecideWithHoursStockAndDST(t *testing.T) {
	berlin := mustLoc("Europe/Berlin")
	r := rand.New(rand.NewPCG(1, 2))
	hourSets := []campaigns.Hours{nil,
		{{From: "18:00", To: "02:00"}},
		{{Days: []string{"sun"}, From: "22:00", To: "03:00"}},
		{{Days: []string{"sat", "sun"}, From: "00:00", To: "24:00"}},
		{{From: "02:00", To: "03:00"}},
		{{Days: []string{"mon", "wed"}, From: "09:00", To: "24:00"}, {Days: []string{"tue"}, From: "00:00", To: "01:00"}},
	}
	for world := range 10 {
		ix := NewIndex()
		var stores []campaigns.Store
		for i := range 200 {
			s := campaigns.Store{ID: fmt.Sprintf("s%03d", i), Name: "n", Lat: 52.5 + r.Float64()*0.05, Lng: 13.4 + r.Float64()*0.05,
				Products: []string{"p0", "p1"}[:1+r.IntN(2)], Hours: hourSets[r.IntN(len(hourSets))]}
			stores = append(stores, s)
		}
		if err := ix.PutStores("adv", stores); err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		var rows []campaigns.StockUpdate
		for i := range stores {
			if r.IntN(4) == 0 {
				f := false
				rows = append(rows, campaigns.StockUpdate{StoreID: stores[i].ID, ProductID: "p0", InStock: &f})
				out[stores[i].ID] = true
			}
		}
		ix.SetStock("adv", rows)
		// Half of them back in stock.
		rows = rows[:0]
		for id := range out {
			if r.IntN(2) == 0 {
				tr := true
				rows = append(rows, campaigns.StockUpdate{StoreID: id, ProductID: "p0", InStock: &tr})
				delete(out, id)
			}
		}
		ix.SetStock("adv", rows)
		var cs []*campaigns.Campaign
		for i := range 10 {
			c := campaign(fmt.Sprintf("c%d", i), "adv", []string{"p0", "p1"}[r.IntN(2)], []int{300, 800, 2000}[r.IntN(3)], "居酒屋")
			c.Hours = hourSets[r.IntN(len(hourSets))]
			ix.PutCampaign(c)
			cs = append(cs, c)
		}
		e, err := NewEngine(ix, berlin, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		base := time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC)
		for fix := range 300 {
			now := base.Add(time.Duration(r.IntN(3*24*60)) * time.Minute)
			if world%2 == 1 {
				now = time.Date(2026, 10, 24, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(3*24*60)) * time.Minute)
			}
			lat, lng := 52.5+r.Float64()*0.05, 13.4+r.Float64()*0.05
			req := Request{Lat: lat, Lng: lng, Query: "居酒屋", N: 10, Mode: campaigns.Walk, Now: now}
			got := describeAds(decide(t, e, req))
			// The reference: every campaign, every store.
			var cands []Ad
			for _, c := range cs {
				w, _ := c.Hours.Compile()
				if !w.Contains(now.In(berlin)) {
					continue
				}
				best, bestD := "", 0.0
				for _, s := range stores {
					sw, _ := s.Hours.Compile()
					if !s.HasProduct(c.ProductID) || (c.ProductID == "p0" && out[s.ID]) || !sw.Contains(now.In(berlin)) {
						continue
					}
					d := geo.DistanceM(lat, lng, s.Lat, s.Lng)
					if d <= float64(c.RadiusM) && (best == "" || d < bestD || d == bestD && s.ID < best) {
						best, bestD = s.ID, d
					}
				}
				if best != "" {
					cands = append(cands, Ad{Campaign: &Campaign{Campaign: c}, Store: storeOf(best), DistanceM: bestD})
				}
			}
			slices.SortFunc(cands, func(a, b Ad) int {
				if c := cmp.Compare(a.DistanceM, b.DistanceM); c != 0 {
					return c
				}
				return cmp.Compare(a.Campaign.ID, b.Campaign.ID)
			})
			if want := describeAds(cands); got != want {
				t.Fatalf("world %d fix %d at %s:\n got %s\nwant %s", world, fix, now.In(berlin), got, want)
			}
		}
	}
}
