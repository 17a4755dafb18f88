package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/tracking"
)

// maxVisitBodyBytes bounds the body of a visit: three numbers.
const maxVisitBodyBytes = 4 << 10

// routeTracking adds the signed tracking URLs (no API key: the token is
// the credential). HEAD is answered like GET, for link checkers, and never
// counted: a person's tap is a GET.
func (s *Server) routeTracking(v1 *gin.RouterGroup) {
	if s.Tracking == nil {
		return
	}
	for _, r := range []struct {
		path string
		kind storage.Kind
	}{{"/i/:token", storage.Impression}, {"/c/:token", storage.Click}, {"/n/:token", storage.Navigation}} {
		v1.GET(r.path, s.countEvent(r.kind))
		v1.HEAD(r.path, s.countEvent(r.kind))
	}
	v1.POST("/v/:token", s.countVisit)
}

// isBot reports whether the request must be answered but not counted: a
// declared bot or prefetch (tracking.DeclaredBot), or a HEAD request.
func isBot(c *gin.Context) bool {
	_, bot := tracking.DeclaredBot(c.Request.Header)
	return bot || c.Request.Method == http.MethodHead
}

// countEvent answers an impression or navigation URL with 204, a click URL
// with 302 to the landing page, after the event is durably counted. Neither
// has a body: the click's answer is its Location header (c.Redirect would
// add net/http's HTML "<a href=…>Found</a>." and a text/html type).
func (s *Server) countEvent(kind storage.Kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		res, err := s.Tracking.Count(c.Request.Context(), kind, c.Param("token"), isBot(c))
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Header("Cache-Control", "no-store")
		if kind == storage.Click {
			c.Header("Referrer-Policy", "no-referrer")
			c.Header("Location", res.Landing)
			c.Status(http.StatusFound)
			return
		}
		c.Status(http.StatusNoContent)
	}
}

// visitJSON is the body of POST /v1/v/{token}.
type visitJSON struct {
	Lat *float64 `json:"lat"`
	Lng *float64 `json:"lng"`
	Acc *float64 `json:"acc"`
}

// countVisit answers a visit URL: 204 when the arrival fix is at the store
// (counted once), 422 not_at_store otherwise. The fix goes no further than
// the distance check: it is not logged, stored or echoed.
func (s *Server) countVisit(c *gin.Context) {
	var body visitJSON
	if err := s.readJSON(c, maxVisitBodyBytes, &body, false); err != nil {
		s.fail(c, err)
		return
	}
	var p campaigns.Problems
	if body.Lat == nil {
		p.Add("lat", "is required")
	}
	if body.Lng == nil {
		p.Add("lng", "is required")
	}
	if err := p.Err(); err != nil {
		s.fail(c, err)
		return
	}
	fix := tracking.Fix{Lat: *body.Lat, Lng: *body.Lng, Acc: body.Acc}
	if _, err := s.Tracking.Visit(c.Request.Context(), c.Param("token"), fix, isBot(c)); err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusNoContent)
}

// trackAds counts each ad of a decision as served and gives it its
// tracking URLs. The fix goes into NewDecision, which keeps only its cell.
func (s *Server) trackAds(req *serving.Request, ads []serving.Ad, out []adJSON, tokens []byte) []byte {
	if s.Tracking == nil || len(ads) == 0 {
		return tokens
	}
	d := s.Tracking.NewDecision(req.PublisherID, s.Tracking.Now(), req.Lat, req.Lng)
	for i := range ads {
		st, cmp := ads[i].Store, ads[i].Campaign
		from := len(tokens)
		tokens = s.Tracking.AppendServe(tokens, &d, &tracking.Ad{
			AdID: out[i].AdID, CampaignID: cmp.ID, AdvertiserID: cmp.AdvertiserID,
			StoreID: st.ID(), StoreLat: st.Lat(), StoreLng: st.Lng(),
		})
		// A later append may move tokens; this ad's bytes stay where they
		// are, in the array they were written to.
		out[i].token = tokens[from:len(tokens):len(tokens)]
	}
	return tokens
}
