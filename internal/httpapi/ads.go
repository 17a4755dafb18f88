package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strconv"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/geo"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/serving"
)

// Limits of the decision request (API.md).
const (
	maxQueryChars = 100
	defaultN      = 3
	maxN          = 10
	// maxUIDChars bounds the opaque user key (API.md sets no length; it
	// is hashed before anything keeps it), so that one request stays
	// small.
	maxUIDChars = 1024
)

// AdLabel is the label every ad carries, as navigation apps show it.
const AdLabel = "オススメ情報"

// adRequestJSON is the POST /v1/ads body.
type adRequestJSON struct {
	Lat  *float64 `json:"lat"`
	Lng  *float64 `json:"lng"`
	Q    *string  `json:"q"`
	N    *float64 `json:"n"` // integral: 3.0 is 3, as JSON Schema's integer
	Mode *string  `json:"mode"`
	Acc  *float64 `json:"acc"`
	UID  *string  `json:"uid"`
}

func (s *Server) getAds(c *gin.Context, who *auth.Principal) {
	req, err := parseDecisionQuery(c.Request.URL.RawQuery, s.opt.MaxAds)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.decide(c, who, &req)
}

func (s *Server) postAds(c *gin.Context, who *auth.Principal) {
	body := limitBody(c, s.opt.MaxJSONBodyBytes)
	req, err := parseDecisionJSON(body, s.opt.MaxAds)
	if err != nil {
		s.fail(c, body.fail(err))
		return
	}
	s.decide(c, who, &req)
}

// parseDecisionQuery reads and validates the raw query of GET /v1/ads. It
// answers a request, or an Invalid *campaigns.Error naming every bad field.
// Pure: the fuzz target FuzzDecisionQuery drives it directly.
func parseDecisionQuery(raw string, maxAds int) (serving.Request, error) {
	var (
		p    campaigns.Problems
		qs   = readDecisionQuery(raw)
		have = qs.get
	)
	for i, f := range decisionFields {
		if qs.twice[i] {
			p.Add(f, "must be given once")
		}
	}
	num := func(field string, required bool) (float64, bool) {
		v, ok := have(field)
		if !ok {
			if required {
				p.Add(field, "is required")
			}
			return 0, false
		}
		f, ok := campaigns.ParseDecimal(v) // a plain decimal: not 0x1p5, 1_0, Inf or NaN
		if !ok {
			p.Add(field, "must be a number, got %q", truncate(v, 20))
			return 0, false
		}
		return f, true
	}
	lat, okLat := num("lat", true)
	lng, okLng := num("lng", true)
	var n *int
	if v, ok := have("n"); ok {
		i, err := strconv.Atoi(v)
		if err != nil {
			p.Add("n", "must be an integer between 1 and %d, got %q", maxN, truncate(v, 20))
		} else {
			n = &i
		}
	}
	var acc *float64
	if v, ok := num("acc", false); ok {
		acc = &v
	}
	q, hasQ := have("q")
	mode, hasMode := have("mode")
	uid, hasUID := have("uid")
	return decisionInput{
		lat: lat, lng: lng, haveLat: okLat, haveLng: okLng,
		q: strPtr(q, hasQ), n: n, mode: strPtr(mode, hasMode), acc: acc, uid: strPtr(uid, hasUID),
	}.request(&p, maxAds)
}

// parseDecisionJSON reads and validates a POST /v1/ads body: one JSON
// object; fields navad does not know are ignored. It answers a request, or
// an Invalid *campaigns.Error. Pure apart from reading r: the fuzz target
// FuzzDecisionJSON drives it directly.
func parseDecisionJSON(r io.Reader, maxAds int) (serving.Request, error) {
	body, err := decodeDecisionJSON(r)
	if err != nil {
		return serving.Request{}, err
	}
	var p campaigns.Problems
	in := decisionInput{q: body.Q, mode: body.Mode, acc: body.Acc, uid: body.UID}
	if body.N != nil {
		switch f := *body.N; {
		case f != math.Trunc(f):
			p.Add("n", "must be an integer between 1 and %d, got %v", maxN, f)
		case f < -maxN || f > 2*maxN: // out of range, and maybe of int's
			p.Add("n", "must be between 1 and %d, got %v", maxN, f)
		default:
			n := int(f)
			in.n = &n
		}
	}
	if body.Lat == nil {
		p.Add("lat", "is required")
	} else {
		in.lat, in.haveLat = *body.Lat, true
	}
	if body.Lng == nil {
		p.Add("lng", "is required")
	} else {
		in.lng, in.haveLng = *body.Lng, true
	}
	return in.request(&p, maxAds)
}

// decodeDecisionJSON decodes a POST /v1/ads body, taking a member for a
// field only under the field's exact name. Go's JSON decoder matches member
// names without regard to case, so an app's own "N" or "Mode", which the
// contract has navad ignore, was taken for n or mode (and a "Q" after the
// q replaced the search). The members are read as raw values first: a few
// allocations more a POST, none on GET. A known member that is not UTF-8
// is refused, as GET refuses it; so is one given twice (repeatedMembers).
func decodeDecisionJSON(r io.Reader) (adRequestJSON, error) {
	var (
		body    adRequestJSON
		members map[string]json.RawMessage
		read    bytes.Buffer // the body as read, for repeatedMembers
	)
	dec := json.NewDecoder(io.TeeReader(r, &read))
	if err := dec.Decode(&members); err != nil {
		return body, campaigns.JSONError(err)
	}
	if err := campaigns.ExpectEnd(dec, "the JSON document"); err != nil {
		return body, err
	}
	if err := repeatedMembers(read.Bytes()); err != nil {
		return body, err
	}
	for _, f := range [...]struct {
		name string
		dst  any
	}{
		{"lat", &body.Lat}, {"lng", &body.Lng}, {"q", &body.Q}, {"n", &body.N},
		{"mode", &body.Mode}, {"acc", &body.Acc}, {"uid", &body.UID},
	} {
		raw, ok := members[f.name]
		if !ok {
			continue
		}
		// The decoder would replace each byte that is not UTF-8 with
		// U+FFFD: a body in Shift_JIS would be searched as replacement
		// characters. GET refuses such a q or uid; so does POST. An
		// escaped lone surrogate ("\ud800") is the same text in other
		// clothes: UTF-8 cannot hold it, and the decoder makes it U+FFFD.
		if !utf8.Valid(raw) || escapesLoneSurrogate(raw) {
			var p campaigns.Problems
			p.Add(f.name, "must be valid UTF-8")
			return body, p.Err()
		}
		if err := json.Unmarshal(raw, f.dst); err != nil {
			var typ *json.UnmarshalTypeError
			if errors.As(err, &typ) {
				typ.Field = f.name // named as the struct's decoder named it
				if f.name == "n" {
					typ.Type = reflect.TypeFor[int]() // "a whole number", not "a number"
				}
			}
			return body, campaigns.JSONError(err)
		}
	}
	return body, nil
}

// repeatedMembers returns an Invalid error naming each decision field that
// obj, a valid JSON object, holds more than once, or nil. The map decoded
// from it keeps the last of them, where GET would read the first: neither
// is taken (RFC 8259 leaves a repeated name's meaning to the reader).
func repeatedMembers(obj []byte) error {
	var (
		p    campaigns.Problems
		seen [len(decisionFields)]int
	)
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // the '{'
		return campaigns.JSONError(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return campaigns.JSONError(err)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return campaigns.JSONError(err)
		}
		name, _ := k.(string)
		for i, f := range decisionFields {
			if name == f {
				if seen[i]++; seen[i] == 2 {
					p.Add(f, "must be given once")
				}
			}
		}
	}
	return p.Err()
}

// escapesLoneSurrogate reports whether the JSON value v holds a \u escape
// of a UTF-16 surrogate (D800-DFFF) that is not half of a high-low pair.
func escapesLoneSurrogate(v []byte) bool {
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' {
			continue
		}
		i++ // the escaped byte: a backslash escapes only it
		if i >= len(v) || v[i] != 'u' {
			continue
		}
		r := hex4(v, i+1)
		switch {
		case r < 0xD800 || r > 0xDFFF:
		case r <= 0xDBFF && i+10 < len(v) && v[i+5] == '\\' && v[i+6] == 'u' &&
			hex4(v, i+7) >= 0xDC00 && hex4(v, i+7) <= 0xDFFF:
			i += 6 // the pair's low half
		default:
			return true
		}
		i += 4
	}
	return false
}

// hex4 returns the value of the four hex digits at v[i:], or -1.
func hex4(v []byte, i int) rune {
	if i+4 > len(v) {
		return -1
	}
	var r rune
	for _, c := range v[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

func strPtr(s string, ok bool) *string {
	if !ok {
		return nil
	}
	return &s
}

// decisionInput is a decision request as sent, GET or POST alike.
type decisionInput struct {
	lat, lng         float64
	haveLat, haveLng bool
	q                *string
	n                *int
	mode             *string
	acc              *float64
	uid              *string
}

// request validates in, adding to the problems p already holds, into the
// engine's request; n above maxAds is served up to it.
func (in decisionInput) request(p *campaigns.Problems, maxAds int) (serving.Request, error) {
	var req serving.Request
	if in.haveLat && (in.lat < -90 || in.lat > 90) {
		p.Add("lat", "must be between -90 and 90")
	}
	if in.haveLng && (in.lng < -180 || in.lng > 180) {
		p.Add("lng", "must be between -180 and 180")
	}
	req.Lat, req.Lng = in.lat, in.lng
	switch {
	case in.q == nil:
		p.Add("q", "is required")
	case !utf8.ValidString(*in.q):
		p.Add("q", "must be valid UTF-8")
	case *in.q == "":
		p.Add("q", "must not be empty")
	case utf8.RuneCountInString(*in.q) > maxQueryChars:
		p.Add("q", "must be at most %d characters", maxQueryChars)
	default:
		// A query of spaces, punctuation or symbols alone (🍺, "!!") is
		// what the user typed, and triggers nothing: a 200 without ads,
		// as API.md wants of any query that triggers nothing.
		req.Query = *in.q
	}
	req.N = defaultN
	if in.n != nil {
		if *in.n < 1 || *in.n > maxN {
			p.Add("n", "must be between 1 and %d, got %d", maxN, *in.n)
		}
		req.N = *in.n
	}
	req.N = min(req.N, maxAds) // "at most n": the operator's cap serves fewer
	req.Mode = campaigns.Walk
	if in.mode != nil {
		switch m := campaigns.Mode(*in.mode); m {
		case campaigns.Walk, campaigns.Car:
			req.Mode = m
		default:
			p.Add("mode", "must be walk or car, got %q", truncate(*in.mode, 20))
		}
	}
	if in.acc != nil && (math.IsNaN(*in.acc) || math.IsInf(*in.acc, 0) || *in.acc < 0) {
		p.Add("acc", "must be a number of metres, 0 or more")
	}
	if in.uid != nil {
		switch {
		// Characters, as the OpenAPI UID schema's maxLength counts them
		// (and as q is counted); a uid of at most maxUIDChars bytes is at
		// most as many characters, so the rune count is needed only past
		// that.
		case len(*in.uid) > maxUIDChars && utf8.RuneCountInString(*in.uid) > maxUIDChars:
			p.Add("uid", "must be at most %d characters", maxUIDChars)
		case !utf8.ValidString(*in.uid):
			p.Add("uid", "must be valid UTF-8")
		default:
			req.UID = *in.uid
		}
	}
	if err := p.Err(); err != nil {
		return serving.Request{}, err
	}
	return req, nil
}

// decide answers a validated request: the one path shared by GET and POST.
func (s *Server) decide(c *gin.Context, who *auth.Principal, req *serving.Request) {
	req.PublisherID = who.ID
	ctx := newDecisionCtx(c.Request.Context(), s.opt.DecisionTimeout)
	defer ctx.stop()
	sb := decisionBufs.Get().(*decisionScratch)
	defer sb.release()
	ads, err := s.Engine.Decide(ctx, req, sb.found[:0])
	sb.found = ads
	if err != nil {
		s.Metrics.ObserveDecisionError()
		s.fail(c, err)
		return
	}
	s.Metrics.ObserveDecision(req.N, len(ads))
	rid := requestIDOf(c)
	out := decisionJSON{RequestID: rid, Ads: sb.ads[:0], linkBase: s.linkBase}
	for i, ad := range ads {
		out.Ads = append(out.Ads, s.renderAd(rid, i, req.Mode, ad))
	}
	sb.ads = out.Ads
	sb.tokens = s.trackAds(req, ads, out.Ads, sb.tokens[:0])
	sb.json = appendDecision(sb.json[:0], &out)
	writeWhole(c, "application/json; charset=utf-8", sb.json)
}

type decisionJSON struct {
	RequestID string   `json:"request_id"`
	Ads       []adJSON `json:"ads"`

	linkBase string // the tracking URLs' base, JSON-escaped, for the ads' tokens
}

type adJSON struct {
	AdID          string    `json:"ad_id"`
	CampaignID    string    `json:"campaign_id"`
	Label         string    `json:"label"`
	Title         string    `json:"title"`
	Text          string    `json:"text"`
	ImageURL      string    `json:"image_url"`
	LandingURL    string    `json:"landing_url"`
	Store         storeJSON `json:"store"`
	Route         routeJSON `json:"route"`
	ImpressionURL string    `json:"impression_url,omitempty"`
	ClickURL      string    `json:"click_url,omitempty"`
	NavigateURL   string    `json:"navigate_url,omitempty"`
	VisitURL      string    `json:"visit_url,omitempty"`

	// Set by trackAds instead of the four URLs above: the ad's tracking
	// token, which appendDecision writes as the four URLs after the
	// answer's linkBase (see tracking.Service.AppendServe).
	token []byte
}

type storeJSON struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Address string  `json:"address"`
	Lat     float64 `json:"lat"`
	Lng     float64 `json:"lng"`
}

type latLngJSON struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

type routeJSON struct {
	Mode   string     `json:"mode"`
	Target latLngJSON `json:"target"`
	// DistanceM is the great-circle distance (API.md); RouteDistanceM the
	// estimated distance along streets, from which ETASeconds comes.
	DistanceM      int       `json:"distance_m"`
	RouteDistanceM int       `json:"route_distance_m"`
	ETASeconds     int       `json:"eta_s"`
	Links          linksJSON `json:"links"`
}

type linksJSON struct {
	Geo        string `json:"geo"`
	GoogleMaps string `json:"google_maps"`

	// Set by renderAd instead of the two URLs above: the links are to the
	// route's target, and appendAd writes them straight into the answer
	// rather than into two strings an ad.
	ofTarget bool
	drive    bool // Google Maps' driving directions, not walking
}

func (s *Server) renderAd(rid string, i int, mode campaigns.Mode, ad serving.Ad) adJSON {
	c, st := ad.Campaign, ad.Store
	est := geo.Walk(ad.DistanceM)
	if mode == campaigns.Car {
		est = geo.Drive(ad.DistanceM)
	}
	return adJSON{
		AdID:       rid + "." + strconv.Itoa(i+1),
		CampaignID: c.ID,
		Label:      AdLabel,
		Title:      c.Creative.Title,
		Text:       c.Creative.Text,
		ImageURL:   c.Creative.ImageURL,
		LandingURL: c.Creative.LandingURL,
		Store:      storeJSON{ID: st.ID(), Name: st.Name(), Address: st.Address(), Lat: st.Lat(), Lng: st.Lng()},
		Route: routeJSON{
			Mode:           string(mode),
			Target:         latLngJSON{Lat: st.Lat(), Lng: st.Lng()},
			DistanceM:      int(math.Round(ad.DistanceM)),
			RouteDistanceM: est.DistanceM,
			ETASeconds:     est.ETASeconds,
			Links:          linksJSON{ofTarget: true, drive: mode == campaigns.Car},
		},
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
