package dataset

import (
	"math/rand/v2"
	"net/url"
	"strconv"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/osm"
)

// Request is one search a navigation app forwards to navad.
type Request struct {
	Lat, Lng  float64
	Query     string
	Mode      campaigns.Mode
	UID       string
	Publisher int // index into World.Publishers
	Kind      Kind
}

// Kind is the family a search was drawn from.
type Kind uint8

// Search families.
const (
	Trigger Kind = iota // a word some campaigns bid on, perhaps with an area
	Neutral             // a word no campaign bids on (駅, 歯医者)
	Blocked             // a trigger word with a word negatives block (居酒屋 バイト)
)

func (k Kind) String() string {
	switch k {
	case Neutral:
		return "neutral"
	case Blocked:
		return "blocked"
	}
	return "trigger"
}

// The search mix, in percent.
const (
	pctNeutral = 33
	pctBlocked = 3
	pctPopular = 25
	pctArea    = 12
	pctLong    = 4 // a head word and a modifier (焼肉 食べ放題)
	pctBrand   = 2 // a brand (麦星ビール)
	// the rest: one common trigger word
)

// Requests returns n searches drawn from the same seed as the world (and
// stream), so that a run is reproducible: where people are (95% within a
// few hundred metres of a store, so weighted by store density; 5% in the
// wider area of an OpenStreetMap point), what they type (a third trigger no
// campaign), how they travel (15% by car), who they are (200,000 users) and
// which app they use (the first app carries half the traffic).
func (w *World) Requests(n int, stream uint64) []Request {
	r := rand.New(rand.NewPCG(w.Config.Seed, streamRequests<<32|stream))
	pois, _ := osm.POIs() // parsed once already by Generate
	out := make([]Request, n)
	popW, comW, neuW := totalWeight(searchPopular), totalWeight(searchCommon), totalWeight(searchNeutral)
	for i := range out {
		q := &out[i]
		if r.IntN(100) < 95 {
			s := &w.Stores[r.IntN(len(w.Stores))]
			q.Lat, q.Lng = scatter(r, s.Lat, s.Lng, 250)
		} else {
			p := &pois[r.IntN(len(pois))]
			q.Lat, q.Lng = scatter(r, p.Lat, p.Lng, 3000)
		}
		switch x := r.IntN(100); {
		case x < pctNeutral:
			q.Kind, q.Query = Neutral, draw(r, searchNeutral, neuW)
		case x < pctNeutral+pctBlocked:
			q.Kind, q.Query = Blocked, searchBlocked[r.IntN(len(searchBlocked))]
		case x < pctNeutral+pctBlocked+pctPopular:
			q.Query = draw(r, searchPopular, popW)
		case x < pctNeutral+pctBlocked+pctPopular+pctArea:
			word := draw(r, searchPopular, popW)
			if r.IntN(2) == 0 {
				word = draw(r, searchCommon, comW)
			}
			area := searchAreas[r.IntN(len(searchAreas))]
			if r.IntN(4) == 0 {
				q.Query = word + " " + area
			} else {
				q.Query = area + " " + word
			}
		case x < pctNeutral+pctBlocked+pctPopular+pctArea+pctLong:
			in := &industries[r.IntN(len(industries))]
			q.Query = draw(r, in.keywords, totalWeight(in.keywords)) + " " + modifiers[r.IntN(len(modifiers))]
		case x < pctNeutral+pctBlocked+pctPopular+pctArea+pctLong+pctBrand:
			q.Query = w.Advertisers[r.IntN(len(w.Advertisers))].Brand
		default:
			q.Query = draw(r, searchCommon, comW)
		}
		q.Mode = campaigns.Walk
		if r.IntN(100) < 15 {
			q.Mode = campaigns.Car
		}
		q.UID = "u" + strconv.Itoa(r.IntN(200_000))
		if r.IntN(2) == 0 {
			q.Publisher = 0
		} else {
			q.Publisher = r.IntN(len(w.Publishers))
		}
	}
	return out
}

// Path returns the request as the path and query of GET /v1/ads.
func (q *Request) Path() string {
	v := url.Values{}
	v.Set("lat", strconv.FormatFloat(q.Lat, 'f', 6, 64))
	v.Set("lng", strconv.FormatFloat(q.Lng, 'f', 6, 64))
	v.Set("q", q.Query)
	v.Set("n", "3")
	v.Set("mode", string(q.Mode))
	v.Set("uid", q.UID)
	return "/v1/ads?" + v.Encode()
}

func totalWeight(ws []weighted) int {
	t := 0
	for _, w := range ws {
		t += w.weight
	}
	return t
}

func draw(r *rand.Rand, ws []weighted, total int) string {
	x := r.IntN(total)
	for _, w := range ws {
		if x < w.weight {
			return w.text
		}
		x -= w.weight
	}
	return ws[len(ws)-1].text
}
