// Package httpapi is navad's HTTP edge on gin: routing, authentication,
// request parsing and limits, and the mapping of errors to the public API's
// error body. Handlers are thin: bind and validate, make one call, map the
// error, write.
package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/catalog"
	"github.com/navad/navad/internal/metrics"
	"github.com/navad/navad/internal/reports"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/tracking"
)

// Options are the edge's limits; config.Config supplies them, and
// docs/configuration.md documents them.
type Options struct {
	MaxBodyBytes     int64         // store uploads
	MaxJSONBodyBytes int64         // every other body
	MaxUploadRows    int           // stores per upload
	MaxStockRows     int           // rows per stock batch
	DecisionTimeout  time.Duration // time budget of one decision
	// MaxAds caps the ads of one decision, 1 to 10 (API.md's bound on n);
	// a larger n is served up to it. 0 means 10.
	MaxAds int

	// Token buckets per account: requests per second for publishers'
	// decisions and for management calls (every call of admin, agency and
	// advertiser keys, and a publisher's calls other than decisions, from
	// a bucket apart from its decisions'), and the bucket size. A rate of
	// 0 is unlimited. MaxRateLimited bounds the buckets kept; 0 means
	// DefaultMaxRateLimited.
	RatePublisher  float64
	RateManagement float64
	RateBurst      int
	MaxRateLimited int
}

// Deps are the services the edge calls.
type Deps struct {
	Catalog *catalog.Service
	Engine  *serving.Engine
	Keys    *auth.Keys
	Logger  *slog.Logger
	// Ready reports whether the server can serve: storage reachable and the
	// index loaded. nil means always ready.
	Ready func(ctx context.Context) error
	// Tracking signs the ads' tracking URLs and counts them; nil serves
	// ads without tracking URLs and no tracking routes.
	Tracking *tracking.Service
	// Reports answers /v1/reports; nil leaves the reports routes out.
	Reports *reports.Service
	// Metrics receives the edge's series and is served at /metrics. nil
	// means a fresh one: every server owns its registry.
	Metrics *metrics.Metrics
	// Degraded reports a problem that stops writes but not decisions: a
	// replica whose shared store is out of reach still answers ads from
	// memory. /readyz then answers 200 with status "degraded", so that a
	// load balancer keeps the replica. nil means never degraded.
	Degraded func(ctx context.Context) error
}

// Server holds the gin engine and the dependencies of its handlers.
type Server struct {
	Deps
	opt    Options
	engine *gin.Engine
	ids    requestIDs
	limits *limiter
	// linkBase is the tracking URLs' base escaped for JSON, once: the
	// decision answer writes each ad's URLs from it and the ad's token.
	linkBase string
}

// New builds the HTTP handler with every route of API.md.
func New(d Deps, opt Options) (*Server, error) {
	if d.Catalog == nil || d.Engine == nil || d.Keys == nil || d.Logger == nil {
		return nil, errors.New("new http server: catalog, engine, keys and logger are required")
	}
	if opt.MaxBodyBytes <= 0 || opt.MaxJSONBodyBytes <= 0 || opt.MaxUploadRows <= 0 || opt.MaxStockRows <= 0 || opt.DecisionTimeout <= 0 {
		return nil, errors.New("new http server: every limit must be positive")
	}
	if opt.MaxAds == 0 {
		opt.MaxAds = maxN
	}
	if opt.MaxAds < 1 || opt.MaxAds > maxN {
		return nil, fmt.Errorf("new http server: max ads must be between 1 and %d", maxN)
	}
	finite := func(r float64) bool { return r >= 0 && !math.IsInf(r, 0) } // false for NaN too
	if !finite(opt.RatePublisher) || !finite(opt.RateManagement) || ((opt.RatePublisher > 0 || opt.RateManagement > 0) && opt.RateBurst < 1) {
		return nil, errors.New("new http server: rates must be finite and not negative, and a rate needs a burst of at least 1")
	}
	if d.Metrics == nil {
		d.Metrics = metrics.New()
	}
	doc, err := OpenAPI()
	if err != nil {
		return nil, fmt.Errorf("new http server: %w", err)
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{Deps: d, opt: opt, ids: newRequestIDs(),
		limits: newLimiter(opt.RatePublisher, opt.RateManagement, opt.RateBurst, opt.MaxRateLimited, nil)}
	if d.Tracking != nil {
		s.linkBase = jsonEscaped(d.Tracking.BaseURL())
	}
	g := gin.New()
	// gin answers a path with a stray trailing slash with a redirect of
	// its own, before any middleware: an HTML body, no request ID, unseen
	// by metrics and the rate limit. Such a path is an unknown endpoint.
	g.RedirectTrailingSlash = false
	g.HandleMethodNotAllowed = true
	g.ContextWithFallback = true
	g.Use(s.requestID, s.instrument, s.accessLog, s.recover)
	g.NoRoute(func(c *gin.Context) {
		s.fail(c, campaigns.Errorf(campaigns.NotFound, "no such endpoint: %s", c.Request.URL.Path))
	})
	g.NoMethod(func(c *gin.Context) {
		s.failStatus(c, http.StatusMethodNotAllowed, campaigns.Errorf(campaigns.Invalid, "method %s is not allowed here", c.Request.Method))
	})

	g.GET("/healthz", s.healthz)
	g.GET("/readyz", s.readyz)
	g.GET("/metrics", gin.WrapH(s.Metrics.Handler()))
	g.GET("/openapi.json", openAPIHandler(doc))

	v1 := g.Group("/v1")
	publisher := s.keyedDecisions(campaigns.Publisher, campaigns.Admin)
	v1.GET("/ads", publisher(s.getAds))
	v1.POST("/ads", publisher(s.postAds))

	anyKey := s.keyed(campaigns.Admin, campaigns.Agency, campaigns.Advertiser, campaigns.Publisher)
	v1.POST("/accounts", anyKey(s.createAccount))
	v1.GET("/accounts/:id", anyKey(s.getAccount))
	v1.POST("/accounts/:id/keys", anyKey(s.rotateKey))
	v1.DELETE("/accounts/:id/keys/old", anyKey(s.revokeOldKeys))

	manager := oneAdvertiser(s, s.keyed(campaigns.Admin, campaigns.Agency, campaigns.Advertiser))
	v1.POST("/campaigns", manager(s.createCampaign))
	v1.GET("/campaigns", manager(s.listCampaigns))
	v1.GET("/campaigns/:id", manager(s.getCampaign))
	v1.PUT("/campaigns/:id", manager(s.replaceCampaign))
	v1.PATCH("/campaigns/:id", manager(s.patchCampaign))
	v1.DELETE("/campaigns/:id", manager(s.deleteCampaign))
	v1.POST("/campaigns/:id/pause", manager(s.pauseCampaign))
	v1.POST("/campaigns/:id/resume", manager(s.resumeCampaign))
	v1.PUT("/stores", manager(s.putStores))
	v1.GET("/stores", manager(s.listStores))
	v1.GET("/stores/:id", manager(s.getStore))
	v1.DELETE("/stores/:id", manager(s.deleteStore))
	v1.PUT("/inventory", manager(s.putInventory))

	s.routeTracking(v1)
	s.routeReports(v1)

	s.engine = g
	return s, nil
}

// Handler returns the http.Handler serving every route.
func (s *Server) Handler() http.Handler { return s.engine }

// Gin returns the gin engine, for packages that add routes (tracking,
// reports, metrics) before the server starts.
func (s *Server) Gin() *gin.Engine { return s.engine }

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) readyz(c *gin.Context) {
	if s.Ready != nil {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "error": errorJSON{Code: campaigns.Unavailable, Message: campaigns.ErrorMessage(err)}})
			return
		}
	}
	if s.Degraded != nil {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		if err := s.Degraded(ctx); err != nil {
			c.JSON(http.StatusOK, gin.H{"status": "degraded", "decisions": "ok", "writes": "unavailable",
				"error": errorJSON{Code: campaigns.Unavailable, Message: campaigns.ErrorMessage(err)}})
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// ---- Middleware ----

// keyed returns what makes a route's handler of one that needs an API key
// of one of roles (see admit): the handler gets the key's principal as an
// argument, rather than through gin's Keys, a map made for each request
// that sets one (on the decision routes, every search).
func (s *Server) keyed(roles ...campaigns.Role) func(func(*gin.Context, *auth.Principal)) gin.HandlerFunc {
	return s.keyedAs(false, roles)
}

// keyedDecisions is keyed for the decision routes, whose calls draw on a
// publisher's decision rate rather than the management rate.
func (s *Server) keyedDecisions(roles ...campaigns.Role) func(func(*gin.Context, *auth.Principal)) gin.HandlerFunc {
	return s.keyedAs(true, roles)
}

// oneAdvertiser wraps keyed management handlers: their advertiser_id names
// one advertiser, and given twice it is a 400 naming it, as a field given
// twice to a decision is, rather than the first silently acting.
func oneAdvertiser(s *Server, keyed func(func(*gin.Context, *auth.Principal)) gin.HandlerFunc) func(func(*gin.Context, *auth.Principal)) gin.HandlerFunc {
	return func(h func(*gin.Context, *auth.Principal)) gin.HandlerFunc {
		return keyed(func(c *gin.Context, who *auth.Principal) {
			var p campaigns.Problems
			if !givenOnce(c.Request.URL.Query(), &p, "advertiser_id") {
				s.fail(c, p.Err())
				return
			}
			h(c, who)
		})
	}
}

func (s *Server) keyedAs(decision bool, roles []campaigns.Role) func(func(*gin.Context, *auth.Principal)) gin.HandlerFunc {
	return func(h func(*gin.Context, *auth.Principal)) gin.HandlerFunc {
		return func(c *gin.Context) {
			who, ok := s.admit(c, decision, roles)
			if !ok {
				return
			}
			// Go's query reader drops a pair it cannot read (a `;`
			// separator, a bad %-escape) without a word, which would
			// turn report?from=…;to=… into a report of today. The
			// decision routes read their query themselves, strictly.
			if !decision && c.Request.URL.RawQuery != "" {
				if _, err := url.ParseQuery(c.Request.URL.RawQuery); err != nil {
					s.fail(c, campaigns.Errorf(campaigns.Invalid, "the query string cannot be read: %s", truncate(err.Error(), 80)))
					return
				}
			}
			h(c, who)
		}
	}
}

// admit returns the principal of the request's API key if it belongs to
// one of roles; otherwise it answers the request (no or a bad key is 401, a
// key over its account's rate limit 429, a good key of another role 403)
// and returns false. decision says which of a publisher's limits the call
// draws on.
func (s *Server) admit(c *gin.Context, decision bool, roles []campaigns.Role) (*auth.Principal, bool) {
	key, ok := bearer(c.GetHeader("Authorization"))
	if !ok {
		s.fail(c, campaigns.Errorf(campaigns.Unauthenticated, "an API key is required: Authorization: Bearer <key>"))
		return nil, false
	}
	p, err := s.Keys.Authenticate(c.Request.Context(), key)
	if err != nil {
		s.fail(c, err)
		return nil, false
	}
	if ok, wait := s.limits.allow(p, decision); !ok {
		c.Header("Retry-After", strconv.Itoa(wait))
		s.fail(c, campaigns.Errorf(campaigns.RateLimited, "this key is over its rate limit; retry in %d s", wait))
		return nil, false
	}
	for _, r := range roles {
		if p.Role == r {
			return p, true
		}
	}
	s.fail(c, campaigns.Errorf(campaigns.PermissionDenied, "a %s key may not call %s %s", p.Role, c.Request.Method, c.FullPath()))
	return nil, false
}

func bearer(h string) (string, bool) {
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	key := strings.TrimSpace(h[len(prefix):])
	return key, key != ""
}

const requestIDHeader = "X-Request-Id" // canonical, as http.Header keeps it

// requestID gives every request an ID, returned in X-Request-Id and used in
// logs and as the base of ad IDs, and sets the headers every answer has.
func (s *Server) requestID(c *gin.Context) {
	h := c.Writer.Header()
	h[requestIDHeader] = []string{s.ids.next()}
	// Every answer is JSON (or CSV, or metrics text): a browser must never
	// sniff one into HTML, whatever a tenant wrote into a name.
	h["X-Content-Type-Options"] = nosniff
	c.Next()
}

// requestIDOf returns the request's ID, kept in its answer's header (not
// in gin's Keys, which would make a map and box a string on every request).
func requestIDOf(c *gin.Context) string {
	if v := c.Writer.Header()[requestIDHeader]; len(v) > 0 {
		return v[0]
	}
	return ""
}

var nosniff = []string{"nosniff"}

// accessLog writes one line a request: method, route (the pattern, never
// the query string, which may hold a fix), status, latency, request ID. It
// never logs a key or a coordinate.
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelError
	} else if status >= 400 {
		level = slog.LevelInfo
	}
	s.Logger.LogAttrs(c.Request.Context(), level, "request",
		slog.String("request_id", requestIDOf(c)),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Duration("latency", time.Since(start)),
	)
}

// recover turns a panic in a handler into a 500 with the API's error body.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.Logger.Error("panic", "request_id", requestIDOf(c), "route", c.FullPath(), "panic", r)
			s.failStatus(c, http.StatusInternalServerError, campaigns.Errorf(campaigns.Internal, "internal error"))
		}
	}()
	c.Next()
}

// ---- Errors ----

type errorJSON struct {
	Code    string             `json:"code"`
	Message string             `json:"message"`
	Details []campaigns.Detail `json:"details,omitempty"`
}

type errorBody struct {
	Error errorJSON `json:"error"`
}

// statusOf maps an error code to its HTTP status: the one place that does.
func statusOf(code string) int {
	switch code {
	case campaigns.Invalid:
		return http.StatusBadRequest
	case campaigns.Unauthenticated:
		return http.StatusUnauthorized
	case campaigns.PermissionDenied:
		return http.StatusForbidden
	case campaigns.NotFound:
		return http.StatusNotFound
	case campaigns.Conflict:
		return http.StatusConflict
	case campaigns.Gone:
		return http.StatusGone
	case campaigns.TooLarge:
		return http.StatusRequestEntityTooLarge
	case campaigns.NotAtStore:
		return http.StatusUnprocessableEntity
	case campaigns.RateLimited:
		return http.StatusTooManyRequests
	case campaigns.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// statusClientClosed is the status a request is logged and counted with
// when its client left before the answer (as proxies log it): no one reads
// the answer, and it is no server error.
const statusClientClosed = 499

// fail writes err as the API's error body; internal errors are logged here
// and only here, and their text never reaches the client.
func (s *Server) fail(c *gin.Context, err error) {
	s.failStatus(c, statusOf(campaigns.ErrorCode(err)), err)
}

func (s *Server) failStatus(c *gin.Context, status int, err error) {
	code := campaigns.ErrorCode(err)
	if code == campaigns.Internal && errors.Is(err, context.Canceled) && c.Request.Context().Err() != nil {
		// The client left (a phone that lost its signal) and the store
		// gave up on the request for it: not a fault of the server.
		s.Logger.Info("client closed the request", "request_id", requestIDOf(c), "route", c.FullPath())
		c.AbortWithStatus(statusClientClosed)
		return
	}
	if code == campaigns.Internal {
		s.Logger.Error("internal error", "request_id", requestIDOf(c), "route", c.FullPath(), "err", err)
	}
	body := errorBody{Error: errorJSON{Code: code, Message: campaigns.ErrorMessage(err)}}
	var e *campaigns.Error
	if errors.As(err, &e) {
		body.Error.Details = e.Details
	}
	if status == http.StatusTooManyRequests && c.Writer.Header().Get("Retry-After") == "" {
		c.Header("Retry-After", "1")
	}
	c.AbortWithStatusJSON(status, body)
}

// ---- Bodies ----

// readJSON decodes a JSON body of at most limit bytes into dst, rejecting
// unknown fields and an object naming a member twice when strict (see
// campaigns.CheckUniqueKeys). Too large is 413; anything malformed 400.
func (s *Server) readJSON(c *gin.Context, limit int64, dst any, strict bool) error {
	body := limitBody(c, limit)
	var dec *json.Decoder
	if strict {
		b, err := io.ReadAll(body)
		if err != nil {
			return body.fail(err)
		}
		if err := campaigns.CheckUniqueKeys(b); err != nil {
			return err
		}
		dec = json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
	} else {
		dec = json.NewDecoder(body)
	}
	if err := dec.Decode(dst); err != nil {
		return body.fail(err)
	}
	// A read error is answered as the body says (body.fail).
	if err := campaigns.ExpectEnd(dec, "the JSON document"); err != nil {
		return body.fail(err)
	}
	return nil
}

// bodyError maps a body-reading error: over the limit is 413.
func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return campaigns.Errorf(campaigns.TooLarge, "the body is larger than %d bytes", tooBig.Limit)
	}
	var e *campaigns.Error
	if errors.As(err, &e) {
		return e
	}
	return campaigns.JSONError(err)
}

// ---- Request IDs ----

// requestIDs hands out unique request IDs: a random per-process prefix and a
// counter, so IDs are unique across replicas and cost no syscall.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() requestIDs {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return requestIDs{prefix: strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))}
}

func (r *requestIDs) next() string {
	return r.prefix + strconv.FormatUint(r.n.Add(1), 36)
}
