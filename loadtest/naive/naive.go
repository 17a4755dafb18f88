// Package naive is the design navad is measured against: every store in one
// Redis geo set, and one GEOSEARCH per ad request around the user's fix.
// Redis must examine every store inside the radius to sort them by
// distance, so in a dense centre each request scans thousands of stores.
//
// The server is deliberately generous to the naive design: keyword matching,
// campaign rules and the eligibility checks (product, stock, opening hours)
// run in process memory, a search that triggers no campaign never reaches
// Redis, and the GEOSEARCH never looks further than a fixed radius (800 m by
// default) even for campaigns with a wider one. Only the spatial search is
// naive; what it costs is the comparison.
package naive

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/loadtest/dataset"
)

// GeoKey is the Redis key of the geo set of every store.
const GeoKey = "navad:naive:stores"

// versionKey records which world the geo set holds, so that a second run
// on the same Redis skips the load.
const versionKey = "navad:naive:world"

// Load writes every store of w into the geo set GeoKey (the member is the
// store's index in w.Stores), in pipelined batches. It does nothing when
// the set already holds this world.
func Load(ctx context.Context, rdb *redis.Client, w *dataset.World) error {
	version := fmt.Sprintf("%+v", w.Config)
	if v, err := rdb.Get(ctx, versionKey).Result(); err == nil && v == version {
		return nil
	}
	if err := rdb.Del(ctx, GeoKey, versionKey).Err(); err != nil {
		return fmt.Errorf("load geo set: %w", err)
	}
	const batch = 10_000
	locs := make([]*redis.GeoLocation, 0, batch)
	for lo := 0; lo < len(w.Stores); lo += batch {
		locs = locs[:0]
		for i := lo; i < min(lo+batch, len(w.Stores)); i++ {
			s := &w.Stores[i]
			locs = append(locs, &redis.GeoLocation{Name: strconv.Itoa(i), Longitude: s.Lng, Latitude: s.Lat})
		}
		if err := rdb.GeoAdd(ctx, GeoKey, locs...).Err(); err != nil {
			return fmt.Errorf("load geo set: %w", err)
		}
	}
	if err := rdb.Set(ctx, versionKey, version, 0).Err(); err != nil {
		return fmt.Errorf("load geo set: %w", err)
	}
	return nil
}

// Server answers GET /v1/ads with one GEOSEARCH a request.
type Server struct {
	rdb     *redis.Client
	radiusM float64
	loc     *time.Location

	keywords *campaigns.KeywordIndex
	ranked   []*campaign // active campaigns by priority desc, bid desc, ID
	stores   []store
	out      map[uint64]struct{} // store index << 32 | product index: out of stock
	// publishers maps the generated publishers' keys to their IDs, for
	// campaigns that run on some publishers only. Keys are not checked
	// otherwise: an unknown key is just no publisher.
	publishers map[string]string
	queries    sync.Pool
}

type campaign struct {
	*campaigns.Campaign
	offer      uint32
	product    uint32
	week       campaigns.Week
	start, end int64
	walk, car  bool
	negatives  campaigns.Negatives
}

type store struct {
	id, name string
	lat, lng float64
	offers   []uint32 // the offer (advertiser, product) of each product
	products []uint32
	hours    campaigns.Week
}

// NewServer builds the in-memory side of the naive design from w: the
// same campaigns and stores that the geo set holds.
func NewServer(rdb *redis.Client, w *dataset.World, radiusM float64, loc *time.Location) (*Server, error) {
	if rdb == nil || w == nil || loc == nil || radiusM <= 0 {
		return nil, fmt.Errorf("new naive server: redis, world, location and a positive radius are required")
	}
	s := &Server{rdb: rdb, radiusM: radiusM, loc: loc, out: map[uint64]struct{}{}, publishers: map[string]string{}}
	for _, p := range w.Publishers {
		s.publishers["Bearer "+w.Key(p.ID)] = p.ID
	}
	s.queries.New = func() any { return new(campaigns.Query) }
	offers := map[[2]string]uint32{}
	offerOf := func(adv, product string) uint32 {
		k := [2]string{adv, product}
		id, ok := offers[k]
		if !ok {
			id = uint32(len(offers))
			offers[k] = id
		}
		return id
	}
	products := map[string]uint32{}
	productOf := func(p string) uint32 {
		id, ok := products[p]
		if !ok {
			id = uint32(len(products))
			products[p] = id
		}
		return id
	}
	index := map[[2]string]int{}
	s.stores = make([]store, len(w.Stores))
	for i := range w.Stores {
		src := &w.Stores[i]
		week, _ := src.Hours.Compile()
		st := store{id: src.ID, name: src.Name, lat: src.Lat, lng: src.Lng, hours: week}
		for _, p := range src.Products {
			st.offers = append(st.offers, offerOf(src.AdvertiserID, p))
			st.products = append(st.products, productOf(p))
		}
		s.stores[i] = st
		index[[2]string{src.AdvertiserID, src.ID}] = i
	}
	for _, k := range w.OutOfStock {
		s.out[uint64(index[[2]string{k.AdvertiserID, k.StoreID}])<<32|uint64(productOf(k.ProductID))] = struct{}{}
	}
	for _, c := range w.Campaigns {
		if c.Status != campaigns.Active {
			continue
		}
		week, _ := c.Hours.Compile()
		nc := &campaign{Campaign: c, offer: offerOf(c.AdvertiserID, c.ProductID), product: productOf(c.ProductID),
			week: week, negatives: campaigns.CompileNegatives(c.NegativeKeywords),
			walk: slices.Contains(c.Modes, campaigns.Walk), car: slices.Contains(c.Modes, campaigns.Car)}
		if !c.Start.IsZero() {
			nc.start = c.Start.Unix()
		}
		if !c.End.IsZero() {
			nc.end = c.End.Unix()
		}
		s.ranked = append(s.ranked, nc)
	}
	slices.SortFunc(s.ranked, func(a, b *campaign) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		if c := cmp.Compare(b.BidCPM, a.BidCPM); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	var refs []campaigns.KeywordRef
	for rank, c := range s.ranked {
		for _, k := range c.Keywords {
			refs = append(refs, campaigns.KeywordRef{Keyword: k, Ref: uint32(rank)})
		}
	}
	s.keywords = campaigns.NewKeywordIndex(refs)
	return s, nil
}

// Handler returns the gin engine: GET /v1/ads (lat, lng, q, n, mode; the
// key only says which publisher asks) and GET /readyz.
func (s *Server) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	g := gin.New()
	g.GET("/v1/ads", s.ads)
	g.GET("/readyz", func(c *gin.Context) {
		if err := s.rdb.Ping(c.Request.Context()).Err(); err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
	})
	return g
}

type adJSON struct {
	CampaignID string    `json:"campaign_id"`
	Title      string    `json:"title"`
	LandingURL string    `json:"landing_url"`
	Store      storeJSON `json:"store"`
	DistanceM  int       `json:"distance_m"`
}

type storeJSON struct {
	ID   string  `json:"id"`
	Name string  `json:"name"`
	Lat  float64 `json:"lat"`
	Lng  float64 `json:"lng"`
}

type pick struct {
	c     *campaign
	store int
	dist  float64
}

func (s *Server) ads(c *gin.Context) {
	lat, err1 := strconv.ParseFloat(c.Query("lat"), 64)
	lng, err2 := strconv.ParseFloat(c.Query("lng"), 64)
	q := c.Query("q")
	n, err3 := strconv.Atoi(c.DefaultQuery("n", "3"))
	if err1 != nil || err2 != nil || err3 != nil || q == "" || n < 1 || n > 10 || math.Abs(lat) > 90 || math.Abs(lng) > 180 {
		c.JSON(http.StatusBadRequest, gin.H{"error": gin.H{"code": "invalid_argument", "message": "bad lat, lng, q or n"}})
		return
	}
	car := c.Query("mode") == "car"
	pub := s.publishers[c.GetHeader("Authorization")]
	ads, err := s.decide(c.Request.Context(), lat, lng, q, n, car, pub)
	if err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": gin.H{"code": "unavailable", "message": err.Error()}})
		return
	}
	c.JSON(http.StatusOK, gin.H{"request_id": "naive", "ads": ads})
}

// decide answers one request: the triggered, live campaigns, then one
// GEOSEARCH of every store within the radius, nearest first, from which each
// campaign takes its nearest eligible store.
func (s *Server) decide(ctx context.Context, lat, lng float64, text string, n int, car bool, publisher string) ([]adJSON, error) {
	now := time.Now().In(s.loc)
	unix, minute := now.Unix(), campaigns.MinuteOfWeek(now)
	q := s.queries.Get().(*campaigns.Query)
	defer s.queries.Put(q)
	q.Parse(text)
	refs := s.keywords.Match(q, nil)
	slices.Sort(refs)
	refs = slices.Compact(refs)
	want := map[uint32][]*pick{} // by offer
	var cands []*pick
	for _, r := range refs {
		cp := s.ranked[r]
		if cp.start != 0 && unix < cp.start || cp.end != 0 && unix > cp.end ||
			car && !cp.car || !car && !cp.walk || !cp.week.ContainsMinute(minute) ||
			len(cp.Publishers) > 0 && !slices.Contains(cp.Publishers, publisher) || cp.negatives.Block(q) {
			continue
		}
		p := &pick{c: cp, store: -1}
		want[cp.offer] = append(want[cp.offer], p)
		cands = append(cands, p)
	}
	if len(cands) == 0 {
		return []adJSON{}, nil // no campaign: Redis is never asked
	}
	locs, err := s.rdb.GeoSearchLocation(ctx, GeoKey, &redis.GeoSearchLocationQuery{
		GeoSearchQuery: redis.GeoSearchQuery{Longitude: lng, Latitude: lat, Radius: s.radiusM, RadiusUnit: "m", Sort: "ASC"},
		WithDist:       true,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("geosearch: %w", err)
	}
	left := len(cands)
	for _, l := range locs {
		i, err := strconv.Atoi(l.Name)
		if err != nil || i < 0 || i >= len(s.stores) {
			continue
		}
		st := &s.stores[i]
		if !st.hours.ContainsMinute(minute) {
			continue
		}
		for j, o := range st.offers {
			for _, p := range want[o] {
				if p.store >= 0 || l.Dist > float64(p.c.RadiusM) {
					continue
				}
				if _, gone := s.out[uint64(i)<<32|uint64(st.products[j])]; gone {
					continue
				}
				p.store, p.dist = i, l.Dist
				left--
			}
		}
		if left == 0 {
			break
		}
	}
	// cands is in rank order; equal ranks go nearest first.
	var found []*pick
	for _, p := range cands {
		if p.store >= 0 {
			found = append(found, p)
		}
	}
	slices.SortStableFunc(found, func(a, b *pick) int {
		if c := cmp.Compare(b.c.Priority, a.c.Priority); c != 0 {
			return c
		}
		if c := cmp.Compare(b.c.BidCPM, a.c.BidCPM); c != 0 {
			return c
		}
		return cmp.Compare(a.dist, b.dist)
	})
	out := make([]adJSON, 0, n)
	for _, p := range found[:min(n, len(found))] {
		st := &s.stores[p.store]
		out = append(out, adJSON{
			CampaignID: p.c.ID, Title: p.c.Creative.Title, LandingURL: p.c.Creative.LandingURL,
			Store:     storeJSON{ID: st.id, Name: st.name, Lat: st.lat, Lng: st.lng},
			DistanceM: int(math.Round(p.dist)),
		})
	}
	return out, nil
}
