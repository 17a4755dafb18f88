package serving

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/geo"
	"github.com/navad/navad/internal/osm"
)

var tokyo = mustLoc("Asia/Tokyo")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// monday10 is a Monday, 10:00 in Tokyo.
var monday10 = time.Date(2026, 11, 23, 10, 0, 0, 0, tokyo)

func campaign(id, adv, product string, radius int, kw ...string) *campaigns.Campaign {
	c := &campaigns.Campaign{
		ID: id, AdvertiserID: adv, Name: id, ProductID: product, RadiusM: radius,
		Creative: campaigns.Creative{Title: id, LandingURL: "https://example.com/" + id},
	}
	for _, k := range kw {
		c.Keywords = append(c.Keywords, campaigns.Keyword{Text: k, Match: campaigns.Broad})
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

func realStores(t testing.TB, adv string, product func(osm.POI) []string) []campaigns.Store {
	t.Helper()
	pois, err := osm.POIs()
	if err != nil {
		t.Fatal(err)
	}
	var out []campaigns.Store
	for _, p := range pois {
		prods := product(p)
		if len(prods) == 0 {
			continue
		}
		out = append(out, campaigns.Store{ID: p.ID, AdvertiserID: adv, Name: p.Name, Lat: p.Lat, Lng: p.Lng, Products: prods})
	}
	return out
}

func newEngine(t testing.TB, ix *Index, pacer Pacer) *Engine {
	t.Helper()
	e, err := NewEngine(ix, tokyo, func() time.Time { return monday10 }, pacer)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func decide(t testing.TB, e *Engine, req Request) []Ad {
	t.Helper()
	if req.N == 0 {
		req.N = 3
	}
	if req.Mode == "" {
		req.Mode = campaigns.Walk
	}
	ads, err := e.Decide(context.Background(), &req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ads
}

// bruteNearest is the reference: the nearest store carrying product within
// radius, by scanning every store: dist[i] is the distance to stores[i], and
// near lists the stores within the largest radius tested.
func bruteNearest(stores []campaigns.Store, dist []float64, near []int, product string, out map[string]bool, radius float64) (string, float64) {
	best, bestD := "", math.Inf(1)
	for _, i := range near {
		s, d := stores[i], dist[i]
		if d > radius || d > bestD || !s.HasProduct(product) || out[s.ID] {
			continue
		}
		if d < bestD || s.ID < best {
			best, bestD = s.ID, d
		}
	}
	return best, bestD
}

// randomFix returns a fix near a random real store (most searches happen
// where shops are), sometimes far out in the countryside or at sea.
func randomFix(r *rand.Rand, stores []campaigns.Store) (float64, float64) {
	if r.IntN(10) == 0 {
		return 24 + r.Float64()*21.5, 123 + r.Float64()*23
	}
	s := stores[r.IntN(len(stores))]
	d := r.Float64() * 4000 * r.Float64()
	bearing := r.Float64() * 2 * math.Pi
	dLat := d * math.Cos(bearing) / 111_320
	dLng := d * math.Sin(bearing) / (111_320 * math.Cos(s.Lat*math.Pi/180))
	return s.Lat + dLat, s.Lng + dLng
}

// TestNearestMatchesBruteForce checks the chosen store of every campaign
// against a brute-force great-circle search over the ~26k real stores, for
// 1,200 random fixes and radii from 50 m to 5 km.
func TestNearestMatchesBruteForce(t *testing.T) {
	stores := realStores(t, "adv", func(p osm.POI) []string {
		switch p.Category {
		case "convenience":
			return []string{"coffee", "snack"}
		case "restaurant":
			return []string{"beer"}
		}
		return []string{"coffee"}
	})
	radii := []int{50, 150, 400, 800, 1500, 3000, 5000}
	products := []string{"coffee", "snack", "beer"}
	ix := NewIndex()
	if err := ix.PutStores("adv", stores); err != nil {
		t.Fatal(err)
	}
	// Out of stock: a deterministic tenth of the coffee.
	out := map[string]bool{}
	var rows []campaigns.StockUpdate
	f := false
	for i, s := range stores {
		if i%10 == 3 && s.HasProduct("coffee") {
			out[s.ID] = true
			rows = append(rows, campaigns.StockUpdate{StoreID: s.ID, ProductID: "coffee", InStock: &f})
		}
	}
	ix.SetStock("adv", rows)

	type spec struct {
		product string
		radius  int
	}
	specs := map[string]spec{}
	for i, p := range products {
		for j, r := range radii {
			id := fmt.Sprintf("c-%s-%d", p, r)
			c := campaign(id, "adv", p, r, "居酒屋")
			c.Priority = i*10 + j // distinct priorities: every campaign is ranked apart
			ix.PutCampaign(c)
			specs[id] = spec{p, r}
		}
	}
	e := newEngine(t, ix, nil)
	r := rand.New(rand.NewPCG(1, 2))
	checked, found := 0, 0
	dist := make([]float64, len(stores))
	var near []int
	fixes := 1200
	if testing.Short() {
		fixes = 200 // the race pass; the plain pass runs all 1,200
	}
	for range fixes {
		lat, lng := randomFix(r, stores)
		near = near[:0]
		for i, s := range stores {
			dist[i] = geo.DistanceM(lat, lng, s.Lat, s.Lng)
			if dist[i] <= 5000 {
				near = append(near, i)
			}
		}
		ads := decide(t, e, Request{Lat: lat, Lng: lng, Query: "居酒屋", N: 10})
		got := map[string]Ad{}
		for _, ad := range ads {
			got[ad.Campaign.ID] = ad
		}
		for id, sp := range specs {
			outOf := map[string]bool{}
			if sp.product == "coffee" {
				outOf = out
			}
			wantID, wantD := bruteNearest(stores, dist, near, sp.product, outOf, float64(sp.radius))
			ad, ok := got[id]
			checked++
			switch {
			case wantID == "" && ok:
				t.Fatalf("fix %.6f,%.6f campaign %s: got store %s at %.1f m, want none", lat, lng, id, ad.Store.ID(), ad.DistanceM)
			case wantID != "" && !ok && len(ads) < 10:
				t.Fatalf("fix %.6f,%.6f campaign %s: got none, want store %s at %.1f m", lat, lng, id, wantID, wantD)
			case ok && ad.DistanceM != wantD:
				t.Fatalf("fix %.6f,%.6f campaign %s: got store %s at %.3f m, want %s at %.3f m", lat, lng, id, ad.Store.ID(), ad.DistanceM, wantID, wantD)
			case ok:
				found++
			}
		}
	}
	if found < checked/10 {
		t.Fatalf("only %d of %d campaign checks found a store: the fixes are not exercising the index", found, checked)
	}
	t.Logf("%d campaign checks, %d with a store", checked, found)
}

// TestProductListedTwice: a store whose upload lists a product twice (as
// "beer|beer" in a CSV) carries it once: out of stock, it is not served,
// before and after a rebuild of the offer.
func TestProductListedTwice(t *testing.T) {
	st := campaigns.Store{ID: "s", AdvertiserID: "adv", Name: "s", Lat: 35.6910, Lng: 139.7003, Products: []string{"beer", "wine", "beer"}}
	if err := campaigns.CheckStores([]campaigns.Store{st}, nil); err != nil {
		t.Fatalf("the upload is refused, so this cannot happen: %v", err)
	}
	ix := NewIndex()
	if err := ix.PutStores("adv", []campaigns.Store{st}); err != nil {
		t.Fatal(err)
	}
	ix.PutCampaign(campaign("c", "adv", "beer", 800, "居酒屋"))
	e := newEngine(t, ix, nil)
	req := Request{Lat: 35.6909, Lng: 139.7003, Query: "居酒屋"}
	if ads := decide(t, e, req); len(ads) != 1 {
		t.Fatalf("in stock: %d ads, want 1", len(ads))
	}
	no := false
	ix.SetStock("adv", []campaigns.StockUpdate{{StoreID: "s", ProductID: "beer", InStock: &no}})
	if ads := decide(t, e, req); len(ads) != 0 {
		t.Fatalf("out of stock, yet served: %s", ads[0].Store.ID())
	}
	if err := ix.PutStores("adv", []campaigns.Store{{ID: "t", AdvertiserID: "adv", Name: "t", Lat: 36, Lng: 140, Products: []string{"beer"}}}); err != nil {
		t.Fatal(err)
	}
	if ads := decide(t, e, req); len(ads) != 0 {
		t.Fatalf("out of stock after a rebuild, yet served: %s", ads[0].Store.ID())
	}
}

func TestStockChangesWithoutRebuild(t *testing.T) {
	ix := NewIndex()
	stores := []campaigns.Store{
		{ID: "near", Name: "near", Lat: 35.6900, Lng: 139.7000, Products: []string{"beer"}},
		{ID: "far", Name: "far", Lat: 35.6930, Lng: 139.7000, Products: []string{"beer"}},
	}
	if err := ix.PutStores("adv", stores); err != nil {
		t.Fatal(err)
	}
	ix.PutCampaign(campaign("c", "adv", "beer", 800, "居酒屋"))
	e := newEngine(t, ix, nil)
	req := Request{Lat: 35.6899, Lng: 139.7000, Query: "居酒屋"}
	storeOf := func() string {
		ads := decide(t, e, req)
		if len(ads) == 0 {
			return ""
		}
		return ads[0].Store.ID()
	}
	if got := storeOf(); got != "near" {
		t.Fatalf("got %q, want near", got)
	}
	before := ix.Snapshot()
	no, yes := false, true
	ix.SetStock("adv", []campaigns.StockUpdate{{StoreID: "near", ProductID: "beer", InStock: &no}})
	if ix.Snapshot() != before {
		t.Error("a stock change published a new snapshot; it should flip a bit in place")
	}
	if got := storeOf(); got != "far" {
		t.Fatalf("near out of stock: got %q, want far", got)
	}
	ix.SetStock("adv", []campaigns.StockUpdate{{StoreID: "far", ProductID: "beer", InStock: &no}})
	if got := storeOf(); got != "" {
		t.Fatalf("both out of stock: got %q, want none", got)
	}
	ix.SetStock("adv", []campaigns.StockUpdate{{StoreID: "near", ProductID: "beer", InStock: &yes}})
	if got := storeOf(); got != "near" {
		t.Fatalf("near back in stock: got %q, want near", got)
	}
	// Stock survives a rebuild of the offer.
	if err := ix.PutStores("adv", []campaigns.Store{{ID: "new", Name: "new", Lat: 35.70, Lng: 139.70, Products: []string{"beer"}}}); err != nil {
		t.Fatal(err)
	}
	ix.SetStock("adv", []campaigns.StockUpdate{{StoreID: "near", ProductID: "beer", InStock: &no}})
	if err := ix.PutStores("adv", []campaigns.Store{{ID: "new2", Name: "new2", Lat: 35.71, Lng: 139.70, Products: []string{"beer"}}}); err != nil {
		t.Fatal(err)
	}
	if got := storeOf(); got != "" {
		t.Fatalf("after a rebuild: got %q, want none (near and far are out of stock)", got)
	}
}

func TestCampaignEligibility(t *testing.T) {
	store := campaigns.Store{ID: "s", Name: "s", Lat: 35.69, Lng: 139.70, Products: []string{"beer"}}
	fix := Request{Lat: 35.6905, Lng: 139.7003, Query: "居酒屋"}
	tests := []struct {
		name   string
		change func(*campaigns.Campaign)
		req    func(*Request)
		want   bool
	}{
		{name: "active", want: true},
		{name: "paused", change: func(c *campaigns.Campaign) { c.Status = campaigns.Paused }},
		{name: "expired", change: func(c *campaigns.Campaign) { c.End = monday10.Add(-time.Hour) }},
		{name: "not started", change: func(c *campaigns.Campaign) { c.Start = monday10.Add(time.Hour) }},
		{name: "within dates", change: func(c *campaigns.Campaign) {
			c.Start, c.End = monday10.Add(-time.Hour), monday10.Add(time.Hour)
		}, want: true},
		{name: "negative keyword blocks", change: func(c *campaigns.Campaign) { c.NegativeKeywords = []string{"バイト"} },
			req: func(r *Request) { r.Query = "居酒屋 バイト" }},
		{name: "negative keyword absent", change: func(c *campaigns.Campaign) { c.NegativeKeywords = []string{"バイト"} }, want: true},
		{name: "other keyword", req: func(r *Request) { r.Query = "歯医者" }},
		{name: "publisher targeted", change: func(c *campaigns.Campaign) { c.Publishers = []string{"pub-a"} },
			req: func(r *Request) { r.PublisherID = "pub-a" }, want: true},
		{name: "publisher not targeted", change: func(c *campaigns.Campaign) { c.Publishers = []string{"pub-a"} },
			req: func(r *Request) { r.PublisherID = "pub-b" }},
		{name: "car only, walking", change: func(c *campaigns.Campaign) { c.Modes = []campaigns.Mode{campaigns.Car} }},
		{name: "car only, driving", change: func(c *campaigns.Campaign) { c.Modes = []campaigns.Mode{campaigns.Car} },
			req: func(r *Request) { r.Mode = campaigns.Car }, want: true},
		{name: "evening hours, morning", change: func(c *campaigns.Campaign) {
			c.Hours = campaigns.Hours{{From: "17:00", To: "02:00"}}
		}},
		{name: "evening hours, after midnight", change: func(c *campaigns.Campaign) {
			c.Hours = campaigns.Hours{{Days: []string{"sun"}, From: "17:00", To: "02:00"}}
		}, req: func(r *Request) { r.Now = time.Date(2026, 11, 23, 1, 30, 0, 0, tokyo) }, want: true},
		{name: "out of radius", req: func(r *Request) { r.Lat += 0.01 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := NewIndex()
			if err := ix.PutStores("adv", []campaigns.Store{store}); err != nil {
				t.Fatal(err)
			}
			c := campaign("c", "adv", "beer", 800, "居酒屋")
			if tt.change != nil {
				tt.change(c)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			ix.PutCampaign(c)
			req := fix
			if tt.req != nil {
				tt.req(&req)
			}
			got := len(decide(t, newEngine(t, ix, nil), req)) == 1
			if got != tt.want {
				t.Fatalf("served = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRankingAndLimits(t *testing.T) {
	ix := NewIndex()
	stores := []campaigns.Store{
		{ID: "s1", Name: "s1", Lat: 35.6901, Lng: 139.7000, Products: []string{"p1", "p2", "p3", "p4", "p5"}},
		{ID: "s2", Name: "s2", Lat: 35.6950, Lng: 139.7000, Products: []string{"p3", "p4"}},
	}
	if err := ix.PutStores("adv", stores); err != nil {
		t.Fatal(err)
	}
	mk := func(id, product string, prio int, bid float64) {
		c := campaign(id, "adv", product, 1000, "居酒屋")
		c.Priority, c.BidCPM = prio, bid
		ix.PutCampaign(c)
	}
	mk("low", "p1", 1, 1000)
	mk("high-cheap", "p2", 9, 10)
	mk("high-rich", "p3", 9, 20)
	mk("z-mid", "p4", 5, 50)
	mk("a-twin", "p5", 5, 50) // same priority and bid as z-mid: distance decides, then ID
	e := newEngine(t, ix, nil)
	ads := decide(t, e, Request{Lat: 35.6900, Lng: 139.7000, Query: "居酒屋", N: 10})
	var got []string
	for _, ad := range ads {
		got = append(got, ad.Campaign.ID)
	}
	// At s1 both twins are equally near: the ID breaks the tie.
	want := []string{"high-rich", "high-cheap", "a-twin", "z-mid", "low"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order: got %v, want %v", got, want)
	}
	ads = decide(t, e, Request{Lat: 35.6900, Lng: 139.7000, Query: "居酒屋", N: 2})
	if len(ads) != 2 || ads[0].Campaign.ID != "high-rich" || ads[1].Campaign.ID != "high-cheap" {
		t.Fatalf("n=2: got %v", ads)
	}
	// At s2, z-mid's product (p4) is right there while a-twin's (p5) is only
	// at s1: distance ranks z-mid first despite its ID.
	ads = decide(t, e, Request{Lat: 35.6950, Lng: 139.7000, Query: "居酒屋", N: 10})
	got = got[:0]
	for _, ad := range ads {
		got = append(got, ad.Campaign.ID)
	}
	want = []string{"high-rich", "high-cheap", "z-mid", "a-twin", "low"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("at s2: got %v, want %v", got, want)
	}
	if ads[2].Store.ID() != "s2" || ads[3].Store.ID() != "s1" {
		t.Fatalf("at s2: z-mid should lead to s2 and a-twin to s1, got %s and %s", ads[2].Store.ID(), ads[3].Store.ID())
	}
}

// TestStoreHours checks opening hours as decisions see them, with the
// schedules interned in the index's table and, once that is full, read from
// the stores themselves.
func TestStoreHours(t *testing.T) {
	for _, full := range []bool{false, true} {
		t.Run(fmt.Sprintf("table full %v", full), func(t *testing.T) { testStoreHours(t, full) })
	}
}

func testStoreHours(t *testing.T, tableFull bool) {
	ix := NewIndex()
	if tableFull {
		for len(ix.weeks) < noWeek {
			ix.weeks = append(ix.weeks, campaigns.Week{})
		}
	}
	stores := []campaigns.Store{
		{ID: "night", Name: "night", Lat: 35.6901, Lng: 139.7000, Products: []string{"beer"},
			Hours: campaigns.Hours{{From: "17:00", To: "02:00"}}},
		{ID: "day", Name: "day", Lat: 35.6920, Lng: 139.7000, Products: []string{"beer"},
			Hours: campaigns.Hours{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "09:00", To: "18:00"}}},
	}
	if err := ix.PutStores("adv", stores); err != nil {
		t.Fatal(err)
	}
	for st := range ix.stores["adv"].all() {
		if got := st.week() == noWeek; got != tableFull {
			t.Fatalf("store %s: week %d with the table full %v", st.ID(), st.week(), tableFull)
		}
	}
	ix.PutCampaign(campaign("c", "adv", "beer", 800, "居酒屋"))
	e := newEngine(t, ix, nil)
	tests := []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 11, 23, 10, 0, 0, 0, tokyo), "day"},   // Monday morning: night is closed
		{time.Date(2026, 11, 23, 20, 0, 0, 0, tokyo), "night"}, // Monday evening: night is nearer
		{time.Date(2026, 11, 24, 1, 59, 0, 0, tokyo), "night"}, // past midnight, still open
		{time.Date(2026, 11, 29, 12, 0, 0, 0, tokyo), ""},      // Sunday noon: both closed
	}
	for _, tt := range tests {
		if got := izakayaStoreAt(t, e, tt.at); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.at.Format(time.RFC3339), got, tt.want)
		}
	}
}

// izakayaStoreAt is the store of the first ad for 居酒屋 near Shinjuku at
// time at, "" for none.
func izakayaStoreAt(t *testing.T, e *Engine, at time.Time) string {
	t.Helper()
	ads := decide(t, e, Request{Lat: 35.6900, Lng: 139.7000, Query: "居酒屋", Now: at})
	if len(ads) == 0 {
		return ""
	}
	return ads[0].Store.ID()
}

func TestUpdatesAndDeletes(t *testing.T) {
	ix := NewIndex()
	if err := ix.PutStores("adv", []campaigns.Store{
		{ID: "a", Name: "a", Lat: 35.6901, Lng: 139.7000, Products: []string{"beer"}},
		{ID: "b", Name: "b", Lat: 35.6920, Lng: 139.7000, Products: []string{"beer"}},
	}); err != nil {
		t.Fatal(err)
	}
	ix.PutCampaign(campaign("c", "adv", "beer", 800, "居酒屋"))
	e := newEngine(t, ix, nil)
	req := Request{Lat: 35.6900, Lng: 139.7000, Query: "居酒屋"}
	first := func() string {
		ads := decide(t, e, req)
		if len(ads) == 0 {
			return ""
		}
		return ads[0].Store.ID()
	}
	if got := first(); got != "a" {
		t.Fatalf("got %q, want a", got)
	}
	// Store a stops carrying beer: b is the target.
	if err := ix.PutStores("adv", []campaigns.Store{{ID: "a", Name: "a", Lat: 35.6901, Lng: 139.7000, Products: []string{"wine"}}}); err != nil {
		t.Fatal(err)
	}
	if got := first(); got != "b" {
		t.Fatalf("after a drops beer: got %q, want b", got)
	}
	ix.DeleteStore("adv", "b")
	if got := first(); got != "" {
		t.Fatalf("after deleting b: got %q, want none", got)
	}
	// Deleting a store of an advertiser the index has no stores of (a
	// replica that saw a store put and deleted only as missing) is nothing,
	// not a panic, and writes go on.
	ix.DeleteStore("never-seen", "b")
	ix.DeleteStore("adv", "no-such-store")
	ix.SetStock("adv", nil)
	// Another advertiser's store never serves this campaign.
	if err := ix.PutStores("other", []campaigns.Store{{ID: "x", Name: "x", Lat: 35.6900, Lng: 139.7000, Products: []string{"beer"}}}); err != nil {
		t.Fatal(err)
	}
	if got := first(); got != "" {
		t.Fatalf("another advertiser's store served: %q", got)
	}
	ix.PutCampaign(campaign("c", "adv", "wine", 800, "居酒屋"))
	if got := first(); got != "a" {
		t.Fatalf("campaign switched to wine: got %q, want a", got)
	}
	ix.DeleteCampaign("c")
	if got := first(); got != "" {
		t.Fatalf("deleted campaign served: %q", got)
	}
}

// TestReadersDuringWrites runs decisions while stores, stock and campaigns
// change; run with -race, it shows that readers never see a torn write.
func TestReadersDuringWrites(t *testing.T) {
	ix := NewIndex()
	stores := realStores(t, "adv", func(p osm.POI) []string {
		if p.Lat > 35.6 && p.Lat < 35.8 && p.Lng > 139.6 && p.Lng < 139.8 {
			return []string{"beer"}
		}
		return nil
	})
	if err := ix.PutStores("adv", stores); err != nil {
		t.Fatal(err)
	}
	ix.PutCampaign(campaign("c", "adv", "beer", 800, "居酒屋"))
	e := newEngine(t, ix, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for ctx.Err() == nil {
				lat, lng := randomFix(r, stores)
				req := Request{Lat: lat, Lng: lng, Query: "居酒屋", N: 3, Mode: campaigns.Walk}
				ads, err := e.Decide(ctx, &req, nil)
				if err != nil {
					t.Error(err)
					return
				}
				for _, ad := range ads {
					if ad.DistanceM > 1000 || ad.Campaign.AdvertiserID != "adv" {
						t.Errorf("bad ad %+v", ad)
					}
				}
			}
		}()
	}
	no := false
	for i := range 50 {
		s := stores[i*7%len(stores)]
		ix.SetStock("adv", []campaigns.StockUpdate{{StoreID: s.ID, ProductID: "beer", InStock: &no}})
		if err := ix.PutStores("adv", stores[i*10:i*10+10]); err != nil {
			t.Fatal(err)
		}
		c := campaign("c", "adv", "beer", 500+i*10, "居酒屋")
		ix.PutCampaign(c)
	}
	cancel()
	wg.Wait()
}

// capPacer allows max ads per campaign, counting reservations.
type capPacer struct {
	mu  sync.Mutex
	max int
	n   map[string]int
}

func (p *capPacer) Allow(_ context.Context, c *Campaign, _ string, _ time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[c.ID] >= p.max {
		return false
	}
	p.n[c.ID]++
	return true
}

func TestPacerSkipsCappedCampaigns(t *testing.T) {
	ix := NewIndex()
	if err := ix.PutStores("adv", []campaigns.Store{{ID: "s", Name: "s", Lat: 35.69, Lng: 139.70, Products: []string{"a", "b"}}}); err != nil {
		t.Fatal(err)
	}
	ca := campaign("ca", "adv", "a", 800, "居酒屋")
	ca.Priority = 2
	ix.PutCampaign(ca)
	ix.PutCampaign(campaign("cb", "adv", "b", 800, "居酒屋"))
	p := &capPacer{max: 2, n: map[string]int{}}
	e := newEngine(t, ix, p)
	var served []string
	for range 4 {
		ads := decide(t, e, Request{Lat: 35.69, Lng: 139.70, Query: "居酒屋", N: 1})
		for _, ad := range ads {
			served = append(served, ad.Campaign.ID)
		}
	}
	want := []string{"ca", "ca", "cb", "cb"}
	if fmt.Sprint(served) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", served, want)
	}
}

// cancelPacer ends the decision's context at its first reservation and
// refuses it, as a pacer whose backend did not answer in time does.
type cancelPacer struct {
	cancel context.CancelFunc
	calls  int
}

func (p *cancelPacer) Allow(context.Context, *Campaign, string, time.Time) bool {
	p.calls++
	p.cancel()
	return false
}

// TestDecisionStopsWhenOutOfTime: once the decision's context has ended,
// the engine answers with what it has instead of searching and asking on
// for every other triggered campaign.
func TestDecisionStopsWhenOutOfTime(t *testing.T) {
	ix := NewIndex()
	if err := ix.PutStores("adv", []campaigns.Store{{ID: "s", Name: "s", Lat: 35.69, Lng: 139.70, Products: []string{"a"}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		c := campaign(fmt.Sprintf("c%02d", i), "adv", "a", 800, "居酒屋")
		c.Priority = i // every campaign ranked apart: one reservation per group
		ix.PutCampaign(c)
	}
	ctx, cancel := context.WithCancel(t.Context())
	p := &cancelPacer{cancel: cancel}
	e := newEngine(t, ix, p)
	ads, err := e.Decide(ctx, &Request{Lat: 35.69, Lng: 139.70, Query: "居酒屋", N: 3, Mode: campaigns.Walk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ads) != 0 || p.calls != 1 {
		t.Fatalf("%d ads after %d reservations; want none after 1", len(ads), p.calls)
	}
}

// TestStoreAsServed: a store's ID, name and address come back as they were
// put, kept in one string; a rename or a new address in place (same place,
// same products) reaches decisions too.
func TestStoreAsServed(t *testing.T) {
	ix := NewIndex()
	put := func(name, address string) {
		t.Helper()
		err := ix.PutStores("adv", []campaigns.Store{
			{ID: "店-1", Name: name, Address: address, Lat: 35.6901, Lng: 139.7000, Products: []string{"beer"}},
			{ID: "s2", Name: "far", Address: "x", Lat: 35.6990, Lng: 139.7000, Products: []string{"beer"}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put("居酒屋 新宿店", "東京都新宿区西新宿1-1-1")
	ix.PutCampaign(campaign("c", "adv", "beer", 800, "居酒屋"))
	e := newEngine(t, ix, nil)
	req := Request{Lat: 35.6900, Lng: 139.7000, Query: "居酒屋"}
	for _, want := range []struct{ name, address string }{
		{"居酒屋 新宿店", "東京都新宿区西新宿1-1-1"},
		{"居酒屋 新宿本店", "東京都新宿区西新宿1-1-1"}, // renamed
		{"居酒屋 新宿本店", ""},               // its address removed
		{"新宿", "東京都新宿区西新宿2-2-2"},       // both changed
		{"新宿東京都", "新宿区西新宿2-2-2"},       // the same text end to end, split elsewhere
	} {
		put(want.name, want.address)
		ads := decide(t, e, req)
		if len(ads) == 0 {
			t.Fatalf("%q: no ad", want.name)
		}
		if st := ads[0].Store; st.ID() != "店-1" || st.Name() != want.name || st.Address() != want.address {
			t.Fatalf("store %q %q %q, want 店-1 %q %q", st.ID(), st.Name(), st.Address(), want.name, want.address)
		}
	}
}

// TestCampaignLimits: the caps a pacer reads are the campaign's, read when
// it is indexed (and by LimitsOf for a Campaign made outside an index),
// and follow a campaign rewritten with other caps.
func TestCampaignLimits(t *testing.T) {
	ix := NewIndex()
	c := campaign("c1", "adv", "beer", 800, "居酒屋")
	c.Budget = campaigns.Budget{DailyImpressions: 1000, TotalImpressions: 50_000}
	c.FrequencyCap = &campaigns.FrequencyCap{Impressions: 3, Per: "7d"}
	ix.PutCampaign(c)
	got := ix.Snapshot().Campaign("c1").Limits()
	want := Limits{Daily: 1000, Total: 50_000, PerUser: 3, Period: 7 * 24 * time.Hour, set: true}
	if got != want {
		t.Fatalf("indexed: %+v, want %+v", got, want)
	}
	if got := (&Campaign{Campaign: c}).Limits(); got != want {
		t.Fatalf("outside an index: %+v, want %+v", got, want)
	}

	c2 := campaign("c1", "adv", "beer", 800, "居酒屋")
	c2.FrequencyCap = &campaigns.FrequencyCap{Impressions: 2, Per: "90m"}
	ix.PutCampaign(c2)
	want = Limits{PerUser: 2, Period: 90 * time.Minute, set: true}
	if got := ix.Snapshot().Campaign("c1").Limits(); got != want {
		t.Fatalf("rewritten: %+v, want %+v", got, want)
	}
	for _, fc := range []*campaigns.FrequencyCap{nil, {Impressions: 0, Per: "24h"}, {Impressions: 3, Per: "soon"}, {Impressions: 3, Per: "0s"}} {
		c3 := campaign("c3", "adv", "beer", 800, "居酒屋")
		c3.FrequencyCap = fc
		if got := LimitsOf(c3); got.PerUser != 0 || got.Period != 0 {
			t.Errorf("frequency cap %+v: %+v, want no user cap", fc, got)
		}
	}
}

// TestCapSlots: a campaign's number for the pacer's backend is its own
// for as long as the index lives, through updates and a deletion, and 0
// for a campaign made outside an index.
func TestCapSlots(t *testing.T) {
	ix := NewIndex()
	if err := ix.PutStores("adv", []campaigns.Store{{ID: "s", Name: "s", Lat: 35.69, Lng: 139.70, Products: []string{"a"}}}); err != nil {
		t.Fatal(err)
	}
	slot := func(id string) uint32 {
		t.Helper()
		c := ix.Snapshot().Campaign(id)
		if c == nil {
			t.Fatalf("campaign %s not indexed", id)
		}
		got, slot := c.CapKey()
		if got != id {
			t.Fatalf("campaign %s has the cap key %q", id, got)
		}
		return slot
	}
	ix.PutCampaign(campaign("ca", "adv", "a", 800, "居酒屋"))
	ix.PutCampaign(campaign("cb", "adv", "a", 800, "居酒屋"))
	a, b := slot("ca"), slot("cb")
	if a == 0 || b == 0 || a == b {
		t.Fatalf("slots %d and %d: want two distinct ones from 1", a, b)
	}
	changed := campaign("ca", "adv", "a", 500, "居酒屋")
	changed.Priority = 3
	ix.PutCampaign(changed)
	ix.DeleteCampaign("cb")
	ix.PutCampaign(campaign("cc", "adv", "a", 800, "居酒屋"))
	ix.PutCampaign(campaign("cb", "adv", "a", 800, "居酒屋"))
	if got := slot("ca"); got != a {
		t.Fatalf("ca's slot %d after an update, want %d", got, a)
	}
	if got := slot("cb"); got != b {
		t.Fatalf("cb's slot %d after its deletion and return, want %d", got, b)
	}
	if c := slot("cc"); c == a || c == b || c == 0 {
		t.Fatalf("cc's slot %d, want one of its own (ca %d, cb %d)", c, a, b)
	}
	if id, got := (&Campaign{Campaign: campaign("cx", "adv", "a", 800, "x")}).CapKey(); id != "cx" || got != 0 {
		t.Fatalf("a campaign outside an index has the cap key %q, slot %d; want cx, 0", id, got)
	}
}
