// Package dataset generates navad's national-scale benchmark world,
// deterministically from a seed: a million stores placed around the real
// OpenStreetMap points of internal/osm (packed tight in central Tokyo, Osaka
// and Nagoya, spread thin elsewhere), 200 advertisers in seven industries,
// 2,000 products, 10,000 campaigns bidding on a Japanese keyword vocabulary
// with match types and negatives, stock, opening hours, and the searches
// people send (fixes near stores, a third of them triggering nothing).
//
// The world reaches navad three ways: as files for the public API
// (WriteFiles, then package apiload), straight into a storage backend
// (LoadCatalog: fast, for benchmarks), or straight into a serving index
// (BuildIndex: for in-process benchmarks).
//
// The hard cases of WORKLOAD.md are built in on purpose: 居酒屋, カフェ and
// ラーメン are each bid on by 300–500 campaigns; four chains carry their
// flagship product in 50,000 stores or more while eight advertisers have 12;
// central Shinjuku holds thousands of stores within 800 m.
package dataset

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/osm"
)

// Config sizes the world. Default is the national scale of WORKLOAD.md;
// tests use smaller worlds of the same shape.
type Config struct {
	Seed        uint64
	Stores      int
	Advertisers int // at least 20; split among industries in proportion
	Agencies    int
	Publishers  int
	Products    int
	Campaigns   int
}

// Default returns the national-scale configuration: 1M stores, 200
// advertisers, 20 agencies, 5 publishers, 2,000 products, 10,000 campaigns.
func Default() Config {
	return Config{Seed: 1, Stores: 1_000_000, Advertisers: 200, Agencies: 20, Publishers: 5, Products: 2_000, Campaigns: 10_000}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var p []string
	if c.Stores < 1000 {
		p = append(p, "stores must be at least 1000")
	}
	if c.Advertisers < 20 {
		p = append(p, "advertisers must be at least 20 (four big chains, eight tiny, every industry)")
	}
	if c.Products < c.Advertisers {
		p = append(p, "products must be at least one per advertiser")
	}
	if c.Campaigns < c.Advertisers {
		p = append(p, "campaigns must be at least one per advertiser")
	}
	if c.Agencies < 0 || c.Publishers < 1 {
		p = append(p, "agencies must be ≥ 0 and publishers ≥ 1")
	}
	if len(p) > 0 {
		return fmt.Errorf("dataset config: %v", p)
	}
	return nil
}

// World is a generated catalogue and its tenants.
type World struct {
	Config      Config
	Agencies    []*campaigns.Account
	Advertisers []*Advertiser
	Publishers  []*campaigns.Account
	// Stores holds every store, grouped by advertiser in Advertisers order;
	// each Advertiser's Stores is a window onto it.
	Stores     []campaigns.Store
	Campaigns  []*campaigns.Campaign
	OutOfStock []campaigns.StockKey
}

// Advertiser is an advertiser account with what it sells and where.
type Advertiser struct {
	campaigns.Account
	Industry string
	Brand    string
	Products []Product
	Stores   []campaigns.Store
}

// Product is one of an advertiser's products: the share of its stores that
// carry it, and how often it is out of stock there.
type Product struct {
	ID       string
	Coverage float64
	OutRate  float64
}

// createdAt is the fixed creation time of every generated object, so that
// output files are byte-for-byte reproducible.
var createdAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// AdminKey is the admin key the benchmark servers are started with.
const AdminKey = "navad-loadtest-admin-key-0001"

// Key returns the API key of a generated account: derived from the seed and
// the account ID, so that a direct load and the driver agree on it without
// a file. Loads through the public API get server-chosen keys instead.
func (w *World) Key(accountID string) string {
	h := sha256.Sum256([]byte(strconv.FormatUint(w.Config.Seed, 10) + "/" + accountID))
	return "nvd_lt_" + hex.EncodeToString(h[:20])
}

// Generate builds the world for c. The same Config always yields the same
// world (with the same Go release: math/rand/v2's PCG and its derived
// distributions are stable, and every map is iterated in sorted order).
func Generate(c Config) (*World, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	pois, err := osm.POIs()
	if err != nil {
		return nil, err
	}
	g := &generator{cfg: c, w: &World{Config: c}, anchors: newAnchors(pois)}
	g.accounts()
	g.products()
	g.stores()
	g.campaigns()
	return g.w, nil
}

type generator struct {
	cfg     Config
	w       *World
	anchors *anchors
}

// rng returns the random stream of one part of the generation, so that
// changing one part (say, campaigns) leaves the others as they were.
func (g *generator) rng(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(g.cfg.Seed, stream))
}

const (
	streamAccounts = iota + 1
	streamProducts
	streamStores
	streamCampaigns
	streamPopular
	streamRequests
)

func (g *generator) accounts() {
	r := g.rng(streamAccounts)
	for i := range g.cfg.Agencies {
		g.w.Agencies = append(g.w.Agencies, &campaigns.Account{
			ID: fmt.Sprintf("agy-%02d", i+1), Type: campaigns.Agency,
			Name: fmt.Sprintf("%s広告社", brandPrefixes[i%len(brandPrefixes)]), CreatedAt: createdAt,
		})
	}
	names := []string{"どこでもナビ", "まちあるきマップ", "ドライブ案内", "乗換ナビ", "グルメ地図"}
	for i := range g.cfg.Publishers {
		g.w.Publishers = append(g.w.Publishers, &campaigns.Account{
			ID: fmt.Sprintf("pub-%02d", i+1), Type: campaigns.Publisher,
			Name: names[i%len(names)] + suffixNum(i/len(names)), CreatedAt: createdAt,
		})
	}
	// Industries share the advertisers in proportion to their weights.
	total := 0
	for _, in := range industries {
		total += in.advertisers
	}
	n := 0
	for k, in := range industries {
		count := in.advertisers * g.cfg.Advertisers / total
		if k == len(industries)-1 {
			count = g.cfg.Advertisers - n
		}
		for j := range count {
			a := &Advertiser{Industry: in.name}
			a.ID = fmt.Sprintf("adv-%03d", n+1)
			a.Type = campaigns.Advertiser
			a.Brand = brandPrefixes[j%len(brandPrefixes)] + in.suffix + suffixNum(j/len(brandPrefixes))
			a.Name = a.Brand
			a.CreatedAt = createdAt
			// Three in five advertisers are managed by an agency.
			if g.cfg.Agencies > 0 && r.IntN(5) < 3 {
				a.AgencyID = g.w.Agencies[r.IntN(g.cfg.Agencies)].ID
			}
			g.w.Advertisers = append(g.w.Advertisers, a)
			n++
		}
	}
}

func suffixNum(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n + 1)
}

func industryOf(name string) *industry {
	for i := range industries {
		if industries[i].name == name {
			return &industries[i]
		}
	}
	panic("dataset: unknown industry " + name)
}

func (g *generator) products() {
	r := g.rng(streamProducts)
	advs := g.w.Advertisers
	counts := make([]int, len(advs))
	sum := 0
	for i := range counts {
		counts[i] = 2 + r.IntN(17) // 2-18, about 10 on average
		sum += counts[i]
	}
	// Adjust one advertiser at a time until the total is exact.
	for sum != g.cfg.Products {
		i := r.IntN(len(counts))
		switch {
		case sum < g.cfg.Products:
			counts[i]++
			sum++
		case counts[i] > 1:
			counts[i]--
			sum--
		}
	}
	next := 0
	for i, a := range advs {
		for j := range counts[i] {
			next++
			p := Product{ID: fmt.Sprintf("%s-%04d", a.Industry, next), Coverage: 1, OutRate: 0.015}
			if j > 0 {
				// Besides the flagship in every store, a product is in
				// 5-60% of them, most often few.
				p.Coverage = 0.05 + 0.55*r.Float64()*r.Float64()
			}
			if r.IntN(10) == 0 {
				p.OutRate = 0.25 // a limited edition that keeps selling out
			}
			a.Products = append(a.Products, p)
		}
	}
}

// storeCounts sizes the advertisers: four big chains (8%, 7%, 6% and 5.2% of
// all stores: at national scale 80,000 down to 52,000), eight with exactly
// twelve stores, and the rest log-uniform between 200 and 20,000 before
// scaling to the total.
func (g *generator) storeCounts(r *rand.Rand) []int {
	advs := g.w.Advertisers
	counts := make([]int, len(advs))
	first := func(industry string, skip int) int {
		for i, a := range advs {
			if a.Industry == industry {
				if skip == 0 {
					return i
				}
				skip--
			}
		}
		panic("dataset: no advertiser in " + industry)
	}
	giants := map[int]float64{
		first("drink", 0): 0.08, first("snack", 0): 0.07, first("beer", 0): 0.06, first("drink", 1): 0.052,
	}
	rest := g.cfg.Stores
	for i, share := range giants {
		counts[i] = int(share * float64(g.cfg.Stores))
		rest -= counts[i]
	}
	var others []int
	for i := range advs {
		if _, ok := giants[i]; !ok {
			others = append(others, i)
		}
	}
	r.Shuffle(len(others), func(a, b int) { others[a], others[b] = others[b], others[a] })
	const tiny = 8
	for _, i := range others[:tiny] {
		counts[i] = 12
		rest -= 12
	}
	others = others[tiny:]
	slices.Sort(others)
	weights := make([]float64, len(others))
	wsum := 0.0
	for k := range others {
		weights[k] = math.Exp(math.Log(200) + r.Float64()*(math.Log(20_000)-math.Log(200)))
		wsum += weights[k]
	}
	// Twelve stores each at least, the rest in proportion to the weights;
	// what rounding leaves goes to the first.
	spare := rest - 12*len(others)
	left := spare
	for k, i := range others {
		extra := int(float64(spare) * weights[k] / wsum)
		counts[i] = 12 + extra
		left -= extra
	}
	counts[others[0]] += left
	return counts
}

func (g *generator) stores() {
	r := g.rng(streamStores)
	counts := g.storeCounts(r)
	g.w.Stores = make([]campaigns.Store, 0, g.cfg.Stores)
	for i, a := range g.w.Advertisers {
		in := industryOf(a.Industry)
		lo := len(g.w.Stores)
		pick := g.anchors.sampler(in.osm)
		hourW := 0
		for _, h := range in.hours {
			hourW += h.weight
		}
		for n := range counts[i] {
			p, lat, lng := pick(r)
			s := campaigns.Store{
				ID:           fmt.Sprintf("%s-s%06d", a.ID, n+1),
				AdvertiserID: a.ID,
				Name:         p.Name + " " + strconv.Itoa(n%97+1) + "号店",
				Address:      fmt.Sprintf("%s %d-%d-%d", nearestCity(lat, lng), 1+r.IntN(9), 1+r.IntN(30), 1+r.IntN(20)),
				Lat:          lat,
				Lng:          lng,
			}
			for j, prod := range a.Products {
				if j == 0 || r.Float64() < prod.Coverage {
					s.Products = append(s.Products, prod.ID)
					if r.Float64() < prod.OutRate {
						g.w.OutOfStock = append(g.w.OutOfStock, campaigns.StockKey{AdvertiserID: a.ID, StoreID: s.ID, ProductID: prod.ID})
					}
				}
			}
			s.Hours = pickHours(r, in.hours, hourW)
			g.w.Stores = append(g.w.Stores, s)
		}
		a.Stores = g.w.Stores[lo:len(g.w.Stores):len(g.w.Stores)]
	}
}

func pickHours(r *rand.Rand, hs []weightedHours, total int) campaigns.Hours {
	x := r.IntN(total)
	for _, h := range hs {
		if x < h.weight {
			return h.hours
		}
		x -= h.weight
	}
	return nil
}

func nearestCity(lat, lng float64) string {
	best, bestD := 0, math.Inf(1)
	for i, c := range cities {
		dl, dg := lat-c.lat, (lng-c.lng)*math.Cos(lat*math.Pi/180)
		if d := dl*dl + dg*dg; d < bestD {
			best, bestD = i, d
		}
	}
	return cities[best].name
}

func (g *generator) campaigns() {
	r := g.rng(streamCampaigns)
	advs := g.w.Advertisers
	// Campaigns per advertiser grow with the square root of its stores.
	weights := make([]float64, len(advs))
	wsum := 0.0
	for i, a := range advs {
		weights[i] = 5 + math.Sqrt(float64(len(a.Stores)))
		wsum += weights[i]
	}
	counts := make([]int, len(advs))
	left := g.cfg.Campaigns
	for i := range advs {
		counts[i] = max(1, int(float64(g.cfg.Campaigns)*weights[i]/wsum))
		left -= counts[i]
	}
	for i := 0; left != 0; i = (i + 1) % len(counts) {
		switch {
		case left > 0:
			counts[i]++
			left--
		case counts[i] > 1:
			counts[i]--
			left++
		}
	}
	industryOfCampaign := make([]string, 0, g.cfg.Campaigns)
	for i, a := range advs {
		in := industryOf(a.Industry)
		for range counts[i] {
			c := g.campaign(r, a, in, len(g.w.Campaigns)+1)
			g.w.Campaigns = append(g.w.Campaigns, c)
			industryOfCampaign = append(industryOfCampaign, a.Industry)
		}
	}
	// The popular keywords: exactly the target number of campaigns each.
	pr := g.rng(streamPopular)
	for _, pt := range popularTargets {
		var eligible []int
		for i, ind := range industryOfCampaign {
			if slices.Contains(pt.industries, ind) {
				eligible = append(eligible, i)
			}
		}
		pr.Shuffle(len(eligible), func(a, b int) { eligible[a], eligible[b] = eligible[b], eligible[a] })
		n := min(len(eligible), pt.campaigns*g.cfg.Campaigns/10_000)
		for _, i := range eligible[:n] {
			c := g.w.Campaigns[i]
			m := campaigns.Broad
			switch x := pr.IntN(10); {
			case x == 0:
				m = campaigns.Exact
			case x < 3:
				m = campaigns.Phrase
			}
			c.Keywords = append(c.Keywords, campaigns.Keyword{Text: pt.text, Match: m})
		}
	}
}

func (g *generator) campaign(r *rand.Rand, a *Advertiser, in *industry, n int) *campaigns.Campaign {
	// The flagship in two campaigns of five; otherwise any product.
	prod := a.Products[0]
	if r.IntN(5) >= 2 {
		prod = a.Products[r.IntN(len(a.Products))]
	}
	c := &campaigns.Campaign{
		ID:           fmt.Sprintf("cmp-%05d", n),
		AdvertiserID: a.ID,
		Name:         fmt.Sprintf("%s %s キャンペーン%d", a.Brand, prod.ID, n),
		Status:       campaigns.Active,
		ProductID:    prod.ID,
		Creative: campaigns.Creative{
			Title:      a.Brand + "をお近くのお店で",
			Text:       "歩いてすぐのお店で取り扱っています",
			ImageURL:   fmt.Sprintf("https://img.example.com/%s/%s.png", a.ID, prod.ID),
			LandingURL: fmt.Sprintf("https://example.com/%s/%s", a.ID, prod.ID),
		},
		Priority:  r.IntN(6),
		BidCPM:    float64(50 + r.IntN(951)),
		Budget:    campaigns.Budget{DailyImpressions: 100_000, TotalImpressions: 10_000_000},
		CreatedAt: createdAt,
		UpdatedAt: createdAt,
	}
	// Keywords: half the campaigns bid on one of the industry's head
	// words; most on the brand; all on one to four long-tail keywords.
	seen := map[string]bool{}
	add := func(text string, m campaigns.MatchType) {
		if !seen[text] {
			seen[text] = true
			c.Keywords = append(c.Keywords, campaigns.Keyword{Text: text, Match: m})
		}
	}
	hw := totalWeight(in.keywords)
	if r.IntN(2) == 0 {
		add(draw(r, in.keywords, hw), pickMatch(r))
	}
	if r.IntN(5) < 3 {
		add(a.Brand, campaigns.Broad)
	}
	for range 1 + r.IntN(4) {
		add(draw(r, in.keywords, hw)+" "+modifiers[r.IntN(len(modifiers))], pickMatch(r))
	}
	c.NegativeKeywords = slices.Clone(negativeSets[r.IntN(len(negativeSets))])
	switch x := r.IntN(100); {
	case x < 10:
		c.RadiusM = 300
	case x < 40:
		c.RadiusM = 500
	case x < 70:
		c.RadiusM = 800
	case x < 85:
		c.RadiusM = 1000
	case x < 95:
		c.RadiusM = 2000
	default:
		c.RadiusM = 5000
		c.Modes = []campaigns.Mode{campaigns.Car}
	}
	if c.Modes == nil {
		switch x := r.IntN(10); {
		case x < 7:
			c.Modes = []campaigns.Mode{campaigns.Walk, campaigns.Car}
		case x < 9:
			c.Modes = []campaigns.Mode{campaigns.Walk}
		default:
			c.Modes = []campaigns.Mode{campaigns.Car}
		}
	}
	// One campaign in ten runs on one or two navigation apps only.
	if r.IntN(10) == 0 {
		for range 1 + r.IntN(2) {
			id := g.w.Publishers[r.IntN(len(g.w.Publishers))].ID
			if !slices.Contains(c.Publishers, id) {
				c.Publishers = append(c.Publishers, id)
			}
		}
	}
	if in.campaignHours != nil && r.IntN(100) < in.campaignHoursPct {
		c.Hours = in.campaignHours
	}
	if r.IntN(10) < 3 {
		c.FrequencyCap = &campaigns.FrequencyCap{Impressions: 3, Per: "24h"}
	}
	switch x := r.IntN(100); {
	case x < 3:
		c.Status = campaigns.Paused
	case x < 4: // ended: kept, never served
		c.Start = time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
		c.End = time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	case x < 35:
		c.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		c.End = time.Date(2030, 12, 31, 0, 0, 0, 0, time.UTC)
	}
	c.ApplyDefaults()
	return c
}

func pickMatch(r *rand.Rand) campaigns.MatchType {
	x := r.IntN(100)
	for _, m := range matchTypes {
		if x < m.weight {
			return m.match
		}
		x -= m.weight
	}
	return campaigns.Broad
}

// Stats summarises a world: what a benchmark report states about its data.
type Stats struct {
	Stores, Advertisers, Agencies, Publishers, Products, Campaigns, ActiveCampaigns int
	StoreProducts, OutOfStock                                                       int
	LargestAdvertiser, SmallestAdvertiser                                           int
	LargestCampaignStores                                                           int // stores carrying the product of the widest campaign
	KeywordCampaigns                                                                map[string]int
	StoresNearShinjuku                                                              int // within 800 m of Shinjuku station
}

// ShinjukuStation is where the dense-centre figures are measured.
var ShinjukuStation = struct{ Lat, Lng float64 }{35.6909, 139.7003}

// Stats computes the world's summary.
func (w *World) Stats() Stats {
	s := Stats{
		Stores: len(w.Stores), Advertisers: len(w.Advertisers), Agencies: len(w.Agencies),
		Publishers: len(w.Publishers), Campaigns: len(w.Campaigns), OutOfStock: len(w.OutOfStock),
		SmallestAdvertiser: math.MaxInt, KeywordCampaigns: map[string]int{},
	}
	carriers := map[[2]string]int{}
	for _, a := range w.Advertisers {
		s.Products += len(a.Products)
		s.LargestAdvertiser = max(s.LargestAdvertiser, len(a.Stores))
		s.SmallestAdvertiser = min(s.SmallestAdvertiser, len(a.Stores))
	}
	for i := range w.Stores {
		st := &w.Stores[i]
		s.StoreProducts += len(st.Products)
		for _, p := range st.Products {
			carriers[[2]string{st.AdvertiserID, p}]++
		}
		if haversineM(ShinjukuStation.Lat, ShinjukuStation.Lng, st.Lat, st.Lng) <= 800 {
			s.StoresNearShinjuku++
		}
	}
	for _, c := range w.Campaigns {
		if c.Status == campaigns.Active {
			s.ActiveCampaigns++
		}
		s.LargestCampaignStores = max(s.LargestCampaignStores, carriers[[2]string{c.AdvertiserID, c.ProductID}])
		seen := map[string]bool{}
		for _, k := range c.Keywords {
			if !seen[k.Text] {
				seen[k.Text] = true
				s.KeywordCampaigns[k.Text]++
			}
		}
	}
	return s
}

// TopKeywords returns the n keywords bid on by the most campaigns.
func (s Stats) TopKeywords(n int) []KeywordCount {
	out := make([]KeywordCount, 0, len(s.KeywordCampaigns))
	for k, c := range s.KeywordCampaigns {
		out = append(out, KeywordCount{k, c})
	}
	slices.SortFunc(out, func(a, b KeywordCount) int {
		if c := cmp.Compare(b.Campaigns, a.Campaigns); c != 0 {
			return c
		}
		return cmp.Compare(a.Keyword, b.Keyword)
	})
	return out[:min(n, len(out))]
}

// KeywordCount is how many campaigns bid on a keyword.
type KeywordCount struct {
	Keyword   string
	Campaigns int
}

func haversineM(lat1, lng1, lat2, lng2 float64) float64 {
	const r = 6_371_008.8
	p := math.Pi / 180
	a := math.Sin((lat2-lat1)*p/2)*math.Sin((lat2-lat1)*p/2) +
		math.Cos(lat1*p)*math.Cos(lat2*p)*math.Sin((lng2-lng1)*p/2)*math.Sin((lng2-lng1)*p/2)
	return 2 * r * math.Asin(math.Sqrt(a))
}

// Fingerprint returns a SHA-256 over every generated store, campaign and
// stock report: two worlds with the same fingerprint are the same.
func (w *World) Fingerprint() string {
	h := sha256.New()
	for i := range w.Stores {
		s := &w.Stores[i]
		fmt.Fprintf(h, "%s|%s|%s|%s|%v|%v|%v|%v\n", s.AdvertiserID, s.ID, s.Name, s.Address, s.Lat, s.Lng, s.Products, s.Hours)
	}
	for _, c := range w.Campaigns {
		fmt.Fprintf(h, "%s|%s|%s|%v|%v|%d|%v|%v|%d|%v|%v|%v\n", c.ID, c.AdvertiserID, c.ProductID, c.Keywords, c.NegativeKeywords,
			c.RadiusM, c.Modes, c.Publishers, c.Priority, c.BidCPM, c.Hours, c.Status)
	}
	for _, k := range w.OutOfStock {
		fmt.Fprintf(h, "%s|%s|%s\n", k.AdvertiserID, k.StoreID, k.ProductID)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TriggerShare returns the share of searches whose text triggers at least
// one active campaign's keyword (before negatives, places and times).
func (w *World) TriggerShare(searches []Request) float64 {
	var refs []campaigns.KeywordRef
	for i, c := range w.Campaigns {
		if c.Status != campaigns.Active {
			continue
		}
		for _, k := range c.Keywords {
			refs = append(refs, campaigns.KeywordRef{Keyword: k, Ref: uint32(i)})
		}
	}
	ix := campaigns.NewKeywordIndex(refs)
	var q campaigns.Query
	var out []uint32
	hit := 0
	for _, s := range searches {
		q.Parse(s.Query)
		if out = ix.Match(&q, out[:0]); len(out) > 0 {
			hit++
		}
	}
	return float64(hit) / float64(len(searches))
}
