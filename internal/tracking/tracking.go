// Package tracking signs the tracking URLs of every ad navad serves and
// counts what they report: impressions, clicks, navigations (route guidance
// started) and visits (arrival at the store), each once per ad however often
// its URL is fired, plus one "served" per ad a decision returned.
//
// A token carries everything an event needs (see Claims), signed with
// HMAC-SHA256, so that counting needs no lookup and a forged or altered URL
// counts nothing. Events are written through storage.Events, which counts a
// (kind, token) once, exactly, across replicas. Served counts are summed in
// memory and flushed every FlushInterval, because they happen on the
// decision path. With a spool, served counts the store cannot take are
// written to it at shutdown, and during an outage once flushes have failed
// for ServedSpoolAfter, under their batch IDs, and delivered with the
// spooled events.
//
// Privacy: the decision's fix is reduced to an H3 cell at
// geo.EventResolution before it reaches a token; a visit's fix is compared
// with the store and dropped. Neither is stored, logged or returned.
package tracking

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/geo"
	"github.com/navad/navad/internal/storage"
)

// The visit rule: a fix counts as arrival when its great-circle distance to
// the ad's store is at most VisitRadiusM plus the fix's reported accuracy,
// with the accuracy's allowance capped at MaxAccuracyAllowanceM. So a
// visit is never counted more than 100 m from the store, however poor a fix
// claims to be. A fix without acc gets no allowance.
const (
	VisitRadiusM          = 50.0
	MaxAccuracyAllowanceM = 50.0
)

// MaxAccuracyM is the largest acc a visit may report (as for decisions).
const MaxAccuracyM = 100_000

// Defaults of Options.
const (
	DefaultFlushInterval = time.Second
	// DefaultClockSkew is how far in the future a token's issue time may
	// lie, for replicas whose clocks differ a little.
	DefaultClockSkew = 5 * time.Minute
	purgeInterval    = time.Hour
	storeTimeout     = 5 * time.Second
	// drainInterval is how often the spool is offered to the store, and
	// drainChunk how many events are read from it at a time.
	drainInterval = 200 * time.Millisecond
	drainChunk    = 512
	drainWorkers  = 32
	// recordTimeout bounds a Record when a spool can take the event
	// instead: a hung store sends events to the spool after it, rather
	// than after the store client's read timeout.
	recordTimeout = time.Second
	// maxBatchRows bounds the rows of one served flush, so that a flush
	// after a long outage is several scripts of bounded size, not one huge
	// one holding Redis up.
	maxBatchRows = 4096
	// DefaultServedSpoolAfter is how long served flushes fail before the
	// counts kept in memory go to the spool (Options.ServedSpoolAfter).
	DefaultServedSpoolAfter = 10 * time.Second
	// drainServedChunk is how many served batches are read from the spool
	// at a time (each up to maxBatchRows rows).
	drainServedChunk = 16
)

// Paths of the tracking URLs, under the public URL.
const (
	ImpressionPath = "/v1/i/"
	ClickPath      = "/v1/c/"
	NavigatePath   = "/v1/n/"
	VisitPath      = "/v1/v/"
)

// Options configure a Service.
type Options struct {
	// PublicURL is the base of the tracking URLs (NAVAD_PUBLIC_URL).
	PublicURL string
	// Secret signs tokens; see Secret. At least MinSecretLen bytes.
	Secret []byte
	// TTL is how long a token counts after its ad was served.
	TTL time.Duration
	// RetentionDays is how long raw events are kept; never less than the
	// token lifetime and a day, because they are also the record of which
	// tokens were counted.
	RetentionDays int
	// DetailDays is how many business days the aggregates by store and by
	// cell are kept (storage.DetailFrom); 0 keeps them for good.
	DetailDays int
	// Location is the business time zone of report days and hours.
	Location *time.Location
	// Landing returns the landing URL of a campaign, and false when the
	// campaign no longer exists.
	Landing func(campaignID string) (string, bool)
	// Logger receives flush and purge errors.
	Logger *slog.Logger

	// FlushInterval is how often served counts are written; zero means
	// DefaultFlushInterval.
	FlushInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Spool keeps events the store cannot take now, to deliver them
	// later (see the package comment); nil answers such events with the
	// store's error.
	Spool Spool
	// ServedSpoolAfter is how long served flushes must have been failing
	// before each failing flush moves the served counts kept in memory to
	// the spool, where a kill -9 cannot lose them; zero means
	// DefaultServedSpoolAfter. Without a spool they stay in memory.
	ServedSpoolAfter time.Duration
}

// Spool is a durable, bounded set of events waiting for the store (package
// spool), which also keeps served batches. Put is durable when it returns
// nil, holds an event once per (kind, token), and answers Unavailable when
// the spool is full. Holds reports whether it holds an event of e's kind
// and token. PutServed is durable when it returns nil and keeps each batch
// under its ID; Served is the served ads its batches count. Safe for
// concurrent use.
type Spool interface {
	Put(e *storage.Event) error
	Holds(e *storage.Event) bool
	Len() int
	Peek(n int) ([]*storage.Event, error)
	Remove(events []*storage.Event) error
	PutServed(batches []storage.ServedBatch, unsent []storage.ServedCount) error
	PeekServed(n int) ([]storage.ServedBatch, error)
	RemoveServed(batchID string) error
	Served() int
	SetAside() int // unreadable records Peek and PeekServed set aside, for the log
}

// Service signs tracking URLs and counts events. Its methods are safe for
// concurrent use. It owns three goroutines, the served-count flusher, the
// raw-event purger and the spool's deliverer; Close stops them.
type Service struct {
	events  storage.Events
	signer  *Signer
	opt     Options
	base    string
	keep    time.Duration
	served  servedCounter
	batches batchIDs

	// Outages are logged when they start and end, not at every retry.
	spooling atomic.Bool
	// dropped counts spooled entries (events and served batches) the
	// store refused for good.
	dropped atomic.Int64
	// storeDown is set when the store failed to take an event and cleared
	// when it takes one from the spool again. While it is set, events go
	// to the spool without trying the store (each try would wait for
	// recordTimeout). It is not "the spool is not empty": once the store
	// is back, new events go straight to it while the spool drains, or a
	// stream of events faster than the drain would keep the spool from
	// ever emptying.
	storeDown atomic.Bool
	// servedDelivered is set when the drain delivers a spooled served
	// batch: in a long outage the flush loop learns from it that the
	// store is back.
	servedDelivered atomic.Bool

	ctx    context.Context // cancelled by Close: stops the loops
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New returns a running Service over events.
func New(events storage.Events, opt Options) (*Service, error) {
	if events == nil || opt.Location == nil || opt.Landing == nil || opt.Logger == nil {
		return nil, errors.New("new tracking: events, location, landing and logger are required")
	}
	if opt.TTL <= 0 || opt.RetentionDays < 1 {
		return nil, errors.New("new tracking: token TTL and retention must be positive")
	}
	u, err := url.Parse(opt.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("new tracking: public URL %q must be an absolute http or https URL", opt.PublicURL)
	}
	signer, err := NewSigner(opt.Secret)
	if err != nil {
		return nil, fmt.Errorf("new tracking: %w", err)
	}
	if opt.FlushInterval <= 0 {
		opt.FlushInterval = DefaultFlushInterval
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.ServedSpoolAfter <= 0 {
		opt.ServedSpoolAfter = DefaultServedSpoolAfter
	}
	s := &Service{
		events:  events,
		signer:  signer,
		opt:     opt,
		base:    strings.TrimRight(opt.PublicURL, "/"),
		keep:    retention(opt.RetentionDays, opt.TTL),
		batches: newBatchIDs(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(3)
	go s.flushLoop()
	go s.purgeLoop()
	go s.drainLoop()
	return s, nil
}

// Close stops the background work, writes the served counts still in
// memory (to the spool, when the store cannot take them), offers the spool
// to the store once more, and waits. It does not close the storage or the
// spool: what the store still cannot take stays in the spool for the next
// server started on it. Safe to call more than once.
func (s *Service) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown is Close within ctx rather than a fixed few seconds: a server
// stopping under load may need longer to write the last served counts.
// What the store cannot take by then goes to the spool, under its batch
// IDs; without a spool it is lost, and Shutdown returns the flush's error.
// cmd/navad gives it the shutdown timeout.
func (s *Service) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		err = s.Flush(ctx)
		sp := s.opt.Spool
		if sp == nil {
			return
		}
		if err != nil {
			// Written to local disk, not the store: no ctx to wait on.
			if _, serr := s.spoolServed(); serr != nil {
				err = errors.Join(err, serr)
			} else {
				err = nil
			}
		}
		if sp.Len() > 0 || sp.Served() > 0 {
			if _, derr := s.Drain(ctx); derr != nil || sp.Len() > 0 || sp.Served() > 0 {
				s.opt.Logger.Warn("tracking events and served counts left in the spool; the next server started on this data directory delivers them",
					"events", sp.Len(), "served", sp.Served(), "err", derr)
			}
		}
	})
	return err
}

// Secret returns the tracking secret: configured when it is not empty,
// otherwise the one kept in storage, generated and stored by the first
// server that needed it, so that every replica and every restart signs and
// verifies alike.
func Secret(ctx context.Context, events storage.Events, configured string) ([]byte, error) {
	if configured != "" {
		if len(configured) < MinSecretLen {
			return nil, fmt.Errorf("tracking secret: %d characters, want at least %d", len(configured), MinSecretLen)
		}
		return []byte(configured), nil
	}
	candidate := make([]byte, 32)
	_, _ = rand.Read(candidate) // never fails on supported platforms
	secret, err := events.TrackingSecret(ctx, candidate)
	if err != nil {
		return nil, fmt.Errorf("tracking secret: %w", err)
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("tracking secret: stored secret of %d bytes is too short", len(secret))
	}
	return secret, nil
}

// ---- Serving ----

// Now returns the service's current time: what a decision's tokens are
// issued at.
func (s *Service) Now() time.Time { return s.opt.Now() }

// Decision is what every ad of one decision shares: computed once per
// decision by NewDecision.
type Decision struct {
	PublisherID string
	Issued      time.Time
	Cell        uint64
	day         storage.Day
	hour        uint8
}

// NewDecision prepares the tracking of a decision made at now for
// publisherID at the fix lat, lng, which is reduced here to its cell and
// goes no further. It costs one H3 cell (about half a microsecond).
func (s *Service) NewDecision(publisherID string, now time.Time, lat, lng float64) Decision {
	d := Decision{PublisherID: publisherID, Issued: now}
	if c, err := geo.Cell(lat, lng, geo.EventResolution); err == nil {
		d.Cell = uint64(c)
	}
	local := now.In(s.opt.Location)
	d.day, d.hour = storage.DayOf(local), uint8(local.Hour())
	return d
}

// Ad is what Serve needs of one served ad.
type Ad struct {
	AdID               string
	CampaignID         string
	AdvertiserID       string
	StoreID            string
	StoreLat, StoreLng float64
}

// Links are the tracking URLs of one ad.
type Links struct {
	Impression, Click, Navigate, Visit string
}

// Serve counts ad as served in d and returns its tracking URLs. It signs
// one token (the four URLs share it; the path says what to count) and
// builds the URLs in one allocation: about 1.5 µs in all. The served count
// is added in memory and reaches storage at the next flush.
func (s *Service) Serve(d *Decision, ad *Ad) Links {
	var tok [512]byte
	t := s.AppendServe(tok[:0], d, ad)
	var b strings.Builder
	b.Grow(4 * (len(s.base) + len(ImpressionPath) + len(t)))
	var ends [4]int
	for i, p := range [...]string{ImpressionPath, ClickPath, NavigatePath, VisitPath} {
		b.WriteString(s.base)
		b.WriteString(p)
		b.Write(t)
		ends[i] = b.Len()
	}
	all := b.String()
	return Links{Impression: all[:ends[0]], Click: all[ends[0]:ends[1]], Navigate: all[ends[1]:ends[2]], Visit: all[ends[2]:]}
}

// AppendServe counts ad as served in d, as Serve does, and appends its
// token to dst instead of building the URLs: each tracking URL is BaseURL,
// one of ImpressionPath, ClickPath, NavigatePath and VisitPath, and the
// token. The token is base64url, so a writer may copy it into JSON or a
// URL as it is: the decision answer writes the four URLs straight into
// its buffer, without four strings an ad to allocate and escape.
func (s *Service) AppendServe(dst []byte, d *Decision, ad *Ad) []byte {
	s.served.add(storage.AggKey{
		Day: d.day, Hour: d.hour, AdvertiserID: ad.AdvertiserID, CampaignID: ad.CampaignID,
		PublisherID: d.PublisherID, StoreID: ad.StoreID, Cell: d.Cell,
	})
	return s.signer.AppendToken(dst, &Claims{
		AdID: ad.AdID, CampaignID: ad.CampaignID, AdvertiserID: ad.AdvertiserID, PublisherID: d.PublisherID,
		StoreID: ad.StoreID, StoreLat: ad.StoreLat, StoreLng: ad.StoreLng, Cell: d.Cell, Issued: d.Issued,
	})
}

// BaseURL is what every tracking URL begins with: the public URL without
// a trailing slash.
func (s *Service) BaseURL() string { return s.base }

// ---- Counting ----

// Result is the outcome of a tracking call that was answered with success.
type Result struct {
	// Counted is true when this call counted the event: false for a
	// repeat, for a declared bot, and for an event spooled.
	Counted bool
	// Spooled is true when the store could not take the event now and it
	// was kept in the spool, to be counted (unless it is a repeat) once the
	// store is back.
	Spooled bool
	// Landing is where a click goes.
	Landing string
}

// Fix is a handset's position on arrival, as POST /v1/v/{token} sends it.
// It is used to decide the visit and then dropped.
type Fix struct {
	Lat, Lng float64
	Acc      *float64 // reported accuracy in metres; nil when not given
}

func errInvalidToken() error {
	return campaigns.Errorf(campaigns.Invalid, "the tracking token is not valid")
}

// claims verifies token and its lifetime. Invalid for a malformed, altered
// or forged token (or one issued implausibly far in the future), Gone for
// an expired one.
func (s *Service) claims(token string, now time.Time) (Claims, storage.TokenID, error) {
	c, id, err := s.signer.Verify(token)
	if err != nil {
		return Claims{}, id, errInvalidToken()
	}
	if c.Issued.After(now.Add(DefaultClockSkew)) {
		return Claims{}, id, errInvalidToken()
	}
	if now.Sub(c.Issued) > s.opt.TTL {
		return Claims{}, id, campaigns.Errorf(campaigns.Gone, "the tracking token has expired")
	}
	return c, id, nil
}

// Count handles an impression, click or navigation URL. A valid token
// counts once per kind; repeats and declared bots (bot true) get the same
// success but count nothing. For a click, Result.Landing is the campaign's
// landing URL (http or https only). Invalid for a bad token or kind, Gone
// for an expired token or a click whose campaign no longer exists,
// Unavailable or internal when storage fails (then nothing is counted and
// the caller must not answer success).
func (s *Service) Count(ctx context.Context, kind storage.Kind, token string, bot bool) (Result, error) {
	if kind != storage.Impression && kind != storage.Click && kind != storage.Navigation {
		return Result{}, campaigns.Errorf(campaigns.Invalid, "%v is not counted by this call", kind)
	}
	now := s.opt.Now()
	c, id, err := s.claims(token, now)
	if err != nil {
		return Result{}, err
	}
	var res Result
	if kind == storage.Click {
		landing, ok := s.opt.Landing(c.CampaignID)
		if !ok {
			return Result{}, campaigns.Errorf(campaigns.Gone, "the ad's campaign no longer exists")
		}
		if u, err := url.Parse(landing); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Result{}, campaigns.Errorf(campaigns.Gone, "the ad has no web landing page")
		}
		res.Landing = landing
	}
	if bot {
		return res, nil
	}
	res.Counted, res.Spooled, err = s.record(ctx, kind, id, &c, now)
	return res, err
}

// Visit handles a visit URL: it counts a visit once per token when fix is
// within reach of the ad's store (see VisitRadiusM); declared bots (bot
// true) get the same answer but count nothing. Invalid for a bad token or
// fix, Gone for an expired token, NotAtStore when the fix is too far.
func (s *Service) Visit(ctx context.Context, token string, fix Fix, bot bool) (Result, error) {
	now := s.opt.Now()
	c, id, err := s.claims(token, now)
	if err != nil {
		return Result{}, err
	}
	var p campaigns.Problems
	campaigns.CheckLatLng(&p, "lat", "lng", fix.Lat, fix.Lng)
	if math.IsInf(fix.Lat, 0) || math.IsInf(fix.Lng, 0) {
		p.Add("lat", "must be a finite number")
	}
	if fix.Acc != nil && !(*fix.Acc >= 0 && *fix.Acc <= MaxAccuracyM) {
		p.Add("acc", "must be between 0 and %d metres", MaxAccuracyM)
	}
	if err := p.Err(); err != nil {
		return Result{}, err
	}
	if !AtStore(fix, c.StoreLat, c.StoreLng) {
		return Result{}, campaigns.Errorf(campaigns.NotAtStore, "the fix is not within reach of the ad's store")
	}
	if bot {
		return Result{}, nil
	}
	var res Result
	res.Counted, res.Spooled, err = s.record(ctx, storage.Visit, id, &c, now)
	return res, err
}

// AtStore reports whether fix is within reach of a store at storeLat,
// storeLng: at most VisitRadiusM plus the fix's accuracy (capped at
// MaxAccuracyAllowanceM) away.
func AtStore(fix Fix, storeLat, storeLng float64) bool {
	reach := VisitRadiusM
	if fix.Acc != nil {
		reach += min(max(*fix.Acc, 0), MaxAccuracyAllowanceM)
	}
	return geo.DistanceM(fix.Lat, fix.Lng, storeLat, storeLng) <= reach
}

// record counts an event, or spools it (see the package comment).
func (s *Service) record(ctx context.Context, kind storage.Kind, id storage.TokenID, c *Claims, now time.Time) (counted, spooled bool, err error) {
	local := now.In(s.opt.Location)
	e := storage.Event{
		Kind: kind, Token: id, AdID: c.AdID, Issued: c.Issued, At: now,
		Key: storage.AggKey{
			Day: storage.DayOf(local), Hour: uint8(local.Hour()),
			AdvertiserID: c.AdvertiserID, CampaignID: c.CampaignID, PublisherID: c.PublisherID,
			StoreID: c.StoreID, Cell: c.Cell,
		},
	}
	sp := s.opt.Spool
	if sp != nil && s.storeDown.Load() {
		// The store failed a moment ago: join the events waiting.
		return false, true, s.spool(&e, nil)
	}
	if sp != nil && sp.Len() > 0 && sp.Holds(&e) {
		// A repeat of an event still waiting in the spool (the store is
		// back and the spool draining): that one counts, when delivered,
		// at the time it happened. Sent to the store now, this one would
		// count instead, at its own time (after midnight, on the wrong day).
		return false, true, nil
	}
	caller := ctx
	if sp != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, recordTimeout)
		defer cancel()
	}
	counted, err = s.events.Record(ctx, &e)
	if err == nil {
		return counted, false, nil
	}
	if sp != nil && campaigns.ErrorCode(err) == campaigns.Unavailable {
		// It may have landed all the same; delivering it again is safe.
		if caller.Err() != nil {
			// The client left (the store answers a done context as
			// Unavailable): that says nothing about the store, and other
			// clients' events still go to it.
			return false, true, s.spool(&e, nil)
		}
		s.storeDown.Store(true)
		return false, true, s.spool(&e, err)
	}
	return false, false, fmt.Errorf("count %v: %w", kind, err)
}

// spool keeps e in the spool; cause is the store's error that sent it
// there, if any.
func (s *Service) spool(e *storage.Event, cause error) error {
	if err := s.opt.Spool.Put(e); err != nil {
		return fmt.Errorf("spool %v: %w", e.Kind, err)
	}
	if cause != nil && !s.spooling.Swap(true) {
		s.opt.Logger.Warn("tracking store unavailable: events are kept in the local spool until it is back", "err", cause)
	}
	return nil
}

// Drain delivers the spooled served batches and events to the store,
// removing each from the spool once the store has it (applied, or found
// applied before: a batch ID and an event's token count once), until the
// spool is empty or the store fails. Events go a chunk at a time and
// several at once (the Redis backend pipelines concurrent calls). It
// returns how many events the store recorded (dropped ones not included).
//
// Only an entry the store refuses as Invalid, one that could never be
// applied, is dropped, with an error log, and counted by Dropped; so is an
// event whose token was issued before the raw-event retention (see the
// horizon below). Any other
// error (the store unreachable or closed, ctx done, an internal error)
// stops the drain and keeps the entry for the next one: the spool is kept
// to deliver what a store could not take now.
func (s *Service) Drain(ctx context.Context) (int, error) {
	sp := s.opt.Spool
	if sp == nil {
		return 0, nil
	}
	if err := s.drainServed(ctx); err != nil {
		return 0, err
	}
	total := 0
	var stale int
	defer func() {
		if stale > 0 {
			s.opt.Logger.Error("spooled events older than the raw-event retention dropped: the store may have forgotten whether they counted", "count", stale, "kept_days", int(s.keep.Hours()/24))
		}
	}()
	const (
		pending = iota
		recorded
		droppedStale   // past the retention: see horizon
		droppedInvalid // refused by the store for good
	)
	for {
		aside := sp.SetAside()
		events, err := sp.Peek(drainChunk)
		if n := sp.SetAside() - aside; n > 0 {
			s.opt.Logger.Error("unreadable spooled events set aside in the spool file", "count", n)
		}
		if err != nil || len(events) == 0 {
			return total, err
		}
		// Raw events of tokens issued before horizon's UTC day may be
		// purged (Purge, with this service's retention; DefaultClockSkew
		// earlier, for a replica whose clock is ahead and has purged
		// already): the store no longer knows whether such an event
		// counted (another replica took a retry of its URL; a write this
		// replica gave up on landed), so delivering it could count it
		// twice. It is dropped instead: a repeat counts once, and a spool
		// older than the retention cannot keep that promise for what it
		// holds.
		horizon := s.opt.Now().Add(DefaultClockSkew - s.keep)
		outcome := make([]int, len(events))
		var (
			next     atomic.Int64
			firstErr atomic.Pointer[error]
			wg       sync.WaitGroup
		)
		for range min(drainWorkers, len(events)) {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= len(events) || firstErr.Load() != nil {
						return
					}
					if s.keep < time.Duration(math.MaxInt64) && storage.PurgedBy(events[i].Issued, horizon) {
						outcome[i] = droppedStale
						continue
					}
					_, err := s.events.Record(ctx, events[i])
					switch {
					case err == nil:
						outcome[i] = recorded
						if s.storeDown.Load() {
							s.storeDown.Store(false) // back: new events go straight to it
						}
					case campaigns.ErrorCode(err) == campaigns.Invalid:
						s.opt.Logger.Error("spooled event refused by the store for good; dropped", "kind", events[i].Kind, "err", err)
						outcome[i] = droppedInvalid
					default: // try later
						firstErr.CompareAndSwap(nil, &err)
						return
					}
				}
			})
		}
		wg.Wait()
		gone := make([]*storage.Event, 0, len(events))
		var nRecorded, nStale, nInvalid int
		for i, o := range outcome {
			switch o {
			case recorded:
				nRecorded++
			case droppedStale:
				nStale++
			case droppedInvalid:
				nInvalid++
			default:
				continue
			}
			gone = append(gone, events[i])
		}
		if err := sp.Remove(gone); err != nil {
			return total, err // the next drain takes them again
		}
		total += nRecorded
		stale += nStale
		s.dropped.Add(int64(nStale + nInvalid))
		if p := firstErr.Load(); p != nil {
			return total, fmt.Errorf("deliver spooled events: %w", *p)
		}
	}
}

// drainServed delivers the spooled served batches, under their batch IDs;
// see Drain.
func (s *Service) drainServed(ctx context.Context) error {
	sp := s.opt.Spool
	for sp.Served() > 0 {
		aside := sp.SetAside()
		batches, err := sp.PeekServed(drainServedChunk)
		if n := sp.SetAside() - aside; n > 0 {
			s.opt.Logger.Error("unreadable spooled served counts set aside in the spool file", "batches", n)
		}
		if err != nil || len(batches) == 0 {
			return err
		}
		for i := range batches {
			b := &batches[i]
			err := s.events.AddServed(ctx, b.ID, b.Rows)
			switch {
			case err == nil:
				if s.storeDown.Load() {
					s.storeDown.Store(false)
				}
				s.servedDelivered.Store(true)
			case campaigns.ErrorCode(err) == campaigns.Invalid:
				s.opt.Logger.Error("spooled served counts refused by the store for good; dropped", "batch", b.ID, "rows", len(b.Rows), "err", err)
				s.dropped.Add(1)
			default: // try later
				return fmt.Errorf("deliver spooled served counts: %w", err)
			}
			if err := sp.RemoveServed(b.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Dropped returns how many spooled entries (events and served batches)
// Drain has dropped because the store refused them for good, or because
// they are events older than the raw-event retention.
func (s *Service) Dropped() int { return int(s.dropped.Load()) }

func (s *Service) drainLoop() {
	defer s.wg.Done()
	sp := s.opt.Spool
	if sp == nil {
		return
	}
	t := time.NewTicker(drainInterval)
	drainFailing := false // said once, not every drain interval
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if sp.Len() == 0 {
			// No event to deliver, so nothing to learn the store is back
			// from (the spool may have refused the events: disk full):
			// the next event tries the store again.
			s.storeDown.Store(false)
			if sp.Served() == 0 {
				continue
			}
		}
		n, err := s.Drain(s.ctx)
		switch {
		case err == nil:
			if sp.Len() == 0 && sp.Served() == 0 && s.spooling.Swap(false) {
				s.opt.Logger.Info("tracking store back: spooled events delivered", "delivered", n)
			}
			if drainFailing {
				drainFailing = false
				s.opt.Logger.Info("spooled tracking data delivered again")
			}
		case campaigns.ErrorCode(err) != campaigns.Unavailable && s.ctx.Err() == nil && !drainFailing:
			// Not an outage (those are logged where they start): kept
			// and retried, but said once.
			drainFailing = true
			s.opt.Logger.Error("spooled tracking data not delivered; kept and retried", "err", err)
		}
	}
}

// ---- Served counts ----

// servedCounter keeps the ads served since the last take, a row each: a
// decision holds its lock for one append. At national scale nearly every
// ad served is a key of its own (a store and a cell), so summing them in a
// map on the decision path (a hash of four strings and a probe of a map
// larger than the cache, under a lock both cores wanted: 3.5% of a
// replica's CPU in a profile) bought nothing; the backends' AddServed add
// up repeated keys, and Flush sums what waits behind a failing batch.
type servedCounter struct {
	mu   sync.Mutex
	rows []storage.ServedCount
	// spare is the array of rows written by the last flush, cleared,
	// which the next take starts filling: at national scale a flush is
	// thousands of rows, a megabyte or two a second to allocate otherwise.
	spare []storage.ServedCount
	// ads counts the served ads kept since the last take, and unflushed
	// those taken but not yet written: together, the backlog.
	ads, unflushed atomic.Int64
}

func (c *servedCounter) add(k storage.AggKey) {
	c.mu.Lock()
	c.rows = append(c.rows, storage.ServedCount{Key: k, N: 1})
	c.mu.Unlock()
	c.ads.Add(1)
}

// take returns the rows so far and starts afresh, with room for a quarter
// more than there were (a flush interval's traffic, which changes slowly).
func (c *servedCounter) take() []storage.ServedCount {
	c.mu.Lock()
	rows := c.rows
	if len(rows) == 0 {
		c.mu.Unlock()
		return nil
	}
	next := c.spare
	c.spare = nil
	if cap(next) < len(rows)+len(rows)/4 {
		next = make([]storage.ServedCount, 0, len(rows)+len(rows)/4)
	}
	c.rows = next
	c.mu.Unlock()
	n := int64(len(rows))
	c.unflushed.Add(n)
	c.ads.Add(-n)
	return rows
}

// recycle gives back rows that take returned, once they are written and
// nothing refers to them, as the array the next take fills.
func (c *servedCounter) recycle(rows []storage.ServedCount) {
	clear(rows) // no campaign or store strings kept alive
	c.mu.Lock()
	if cap(rows) > cap(c.spare) {
		c.spare = rows[:0]
	}
	c.mu.Unlock()
}

// Backlog reports how much tracking has accepted and the store does not
// hold yet: served ads counted in memory (what a kill -9 would lose now)
// plus events and served ads waiting in the spool (kept on disk). It is
// the navad_tracking_backlog_events metric. Safe for concurrent use.
func (s *Service) Backlog() int {
	n := int(s.served.ads.Load() + s.served.unflushed.Load())
	if s.opt.Spool != nil {
		n += s.opt.Spool.Len() + s.opt.Spool.Served()
	}
	return n
}

// batchIDs names served flushes uniquely across replicas and restarts.
type batchIDs struct {
	prefix string
	mu     sync.Mutex
	n      uint64
	// pending are batches of a flush not yet written, the first of which
	// failed: retried with their IDs before anything newer, so that a write
	// that landed despite an error counts once.
	pending []storage.ServedBatch
	// waiting sums the served ads taken while a batch was pending, so that
	// an outage keeps a row per distinct key rather than per ad.
	waiting map[storage.AggKey]uint64
}

// wait adds rows to the counts waiting behind the pending batches.
func (b *batchIDs) wait(rows []storage.ServedCount) {
	if len(rows) == 0 {
		return
	}
	if b.waiting == nil {
		b.waiting = make(map[storage.AggKey]uint64)
	}
	for _, r := range rows {
		b.waiting[r.Key] += r.N
	}
}

// unwait returns rows with the waiting counts added, and forgets them.
func (b *batchIDs) unwait(rows []storage.ServedCount) []storage.ServedCount {
	for k, n := range b.waiting {
		rows = append(rows, storage.ServedCount{Key: k, N: n})
	}
	b.waiting = nil
	return rows
}

// servedAds sums the served ads of rows.
func servedAds(rows []storage.ServedCount) int64 {
	var n int64
	for _, r := range rows {
		n += int64(r.N)
	}
	return n
}

// split appends rows to the pending batches, in batches of at most
// maxBatchRows rows under new IDs. The batches are pieces of rows.
func (b *batchIDs) split(rows []storage.ServedCount) {
	for len(rows) > 0 {
		n := min(len(rows), maxBatchRows)
		b.n++
		b.pending = append(b.pending, storage.ServedBatch{ID: fmt.Sprintf("%s-%d", b.prefix, b.n), Rows: rows[:n:n]})
		rows = rows[n:]
	}
}

func newBatchIDs() batchIDs {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return batchIDs{prefix: hex.EncodeToString(b[:])}
}

// Flush writes the served counts kept in memory: first batches that
// failed before, under their old batch IDs (so that a write that landed
// despite an error counts once), then what was served since, in batches of
// at most maxBatchRows rows. While a batch fails, newer counts wait in
// memory, summed by key.
func (s *Service) Flush(ctx context.Context) error {
	s.batches.mu.Lock()
	defer s.batches.mu.Unlock()
	for range 2 {
		rows := s.served.take()
		var taken []storage.ServedCount // the array the new batches are pieces of
		if len(s.batches.pending) > 0 {
			s.batches.wait(rows)
			s.served.recycle(rows)
		} else {
			rows = s.batches.unwait(rows)
			if len(rows) == 0 {
				return nil
			}
			taken = rows
			s.batches.split(rows)
		}
		for len(s.batches.pending) > 0 {
			b := s.batches.pending[0]
			if err := s.events.AddServed(ctx, b.ID, b.Rows); err != nil {
				if campaigns.ErrorCode(err) != campaigns.Invalid {
					// pending[0] was offered to the store and may have
					// landed: it keeps its ID to the end (spoolServed).
					return fmt.Errorf("flush served counts: %w", err)
				}
				// Refused for good: the store will not keep a row of it.
				// Retried, it would be refused at every flush while every
				// later batch waited behind it and memory grew, so its
				// counts are given up, loudly.
				s.opt.Logger.Error("served counts refused by the store and dropped", "batch", b.ID, "rows", len(b.Rows), "err", err)
			}
			s.batches.pending = s.batches.pending[1:]
			s.served.unflushed.Add(-servedAds(b.Rows))
		}
		// Every batch is written: nothing refers to the rows taken now (the
		// batches were pieces of them, and AddServed keeps no reference).
		if taken != nil {
			s.served.recycle(taken)
		}
	}
	return nil
}

// spoolServed moves the served counts kept in memory to the spool, in one
// transaction: the batch whose write failed under its ID (it may have
// landed, and the store applies an ID once), and the rest as unsent rows,
// which the spool sums by key with the unsent rows it holds. It returns
// how many served ads it moved. When the spool cannot take them, they stay
// in memory.
func (s *Service) spoolServed() (int64, error) {
	sp := s.opt.Spool
	s.batches.mu.Lock()
	defer s.batches.mu.Unlock()
	unsent := s.batches.unwait(s.served.take())
	// Flush leaves batches pending only when the first one's write failed:
	// that one was offered to the store, the others never were.
	pending := s.batches.pending
	var sent []storage.ServedBatch
	if len(pending) > 0 {
		sent, pending = pending[:1], pending[1:]
	}
	for _, b := range pending { // never offered to the store
		unsent = append(unsent, b.Rows...)
	}
	ads := servedAds(unsent)
	for _, b := range sent {
		ads += servedAds(b.Rows)
	}
	if ads == 0 { // nothing: a batch holds one served ad at least
		return 0, nil
	}
	if err := sp.PutServed(sent, unsent); err != nil {
		// Kept in memory: the batch that may have landed under its ID,
		// the rest summed behind it (or, without it, taken by the next
		// flush).
		s.batches.pending = sent
		s.batches.wait(unsent)
		return 0, fmt.Errorf("spool served counts: %w", err)
	}
	s.batches.pending = nil
	s.served.unflushed.Add(-ads)
	s.served.recycle(unsent) // encoded into the spool: nothing refers to it
	return ads, nil
}

func (s *Service) flushLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opt.FlushInterval)
	defer t.Stop()
	var (
		failingSince   time.Time // zero while flushes succeed
		spoolFailing   bool      // said once, not every flush interval
		servedSpooling bool      // the move to the spool said, until flushes succeed
	)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if servedSpooling {
				// A long outage, and the served counts spooled: they go
				// on to the spool, unsent, without asking the store at
				// each flush interval. A write that fails leaves a batch
				// that may have landed, kept whole under its ID: a batch
				// an interval. Unsent, the spool sums them by key and
				// hour. The drain, which retries the spooled batches,
				// tells when the store is back.
				if s.servedDelivered.Swap(false) {
					failingSince, servedSpooling = time.Time{}, false
					s.opt.Logger.Info("served counts flushed again")
				} else if _, serr := s.spoolServed(); serr == nil {
					spoolFailing = false
					continue
				} else if !spoolFailing {
					// Kept in memory; the store is tried below.
					spoolFailing = true
					s.opt.Logger.Error("served counts not spooled; kept in memory", "err", serr)
				}
			}
			// A flush with nothing in memory succeeds without asking the
			// store, so it tells nothing of an outage (spoolServed may just
			// have emptied memory): taken for the store being back, it
			// restarted ServedSpoolAfter, and the next counts stayed in
			// memory that long again.
			held := s.served.ads.Load()+s.served.unflushed.Load() > 0
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			err := s.Flush(ctx)
			cancel()
			switch {
			case err != nil && failingSince.IsZero():
				failingSince = time.Now()
				s.opt.Logger.Error("served counts not flushed; kept in memory and retried every flush interval", "err", err)
			case err == nil && held && !failingSince.IsZero():
				failingSince = time.Time{}
				servedSpooling = false
				s.opt.Logger.Info("served counts flushed again")
			}
			if err == nil {
				spoolFailing = false
			}
			if err != nil && s.opt.Spool != nil && time.Since(failingSince) >= s.opt.ServedSpoolAfter {
				// A long outage: memory would grow with it, and a kill -9
				// lose all of it. Spooled, they are delivered by the drain.
				if !servedSpooling {
					// Before spooling: the drain may deliver what is
					// spooled now, and that news must not be lost.
					s.servedDelivered.Store(false)
				}
				ads, serr := s.spoolServed()
				switch {
				case serr != nil:
					if !spoolFailing {
						s.opt.Logger.Error("served counts not spooled; kept in memory", "err", serr)
					}
					spoolFailing = true
				case ads > 0 && !servedSpooling:
					servedSpooling = true
					s.opt.Logger.Warn("served counts not flushed for a while: kept in the local spool until the store is back",
						"after", s.opt.ServedSpoolAfter)
				}
			}
		}
	}
}

// ---- Retention ----

// retention is how long raw events are kept: days, but at least the token
// lifetime, the clock skew and a day. Days too many for a time.Duration
// (more than 106,751) keep them for good rather than overflow.
func retention(days int, ttl time.Duration) time.Duration {
	keep := time.Duration(math.MaxInt64)
	if int64(days) < int64(keep/(24*time.Hour)) {
		keep = time.Duration(days) * 24 * time.Hour
	}
	return max(keep, ttl+DefaultClockSkew+24*time.Hour)
}

// Purge deletes raw events of tokens issued before the retention period
// (and before the token lifetime and a day, whichever is longer), and the
// aggregates by store and by cell of days before the detail period, and
// returns how many raw events and how many days of detail it deleted.
func (s *Service) Purge(ctx context.Context) (events, detailDays int, err error) {
	now := s.opt.Now()
	events, err = s.events.PurgeEvents(ctx, now.Add(-s.keep))
	if err != nil {
		return events, 0, fmt.Errorf("purge raw events: %w", err)
	}
	if s.opt.DetailDays > 0 {
		detailDays, err = s.events.PurgeDetail(ctx, storage.DetailFrom(now, s.opt.Location, s.opt.DetailDays))
		if err != nil {
			return events, detailDays, fmt.Errorf("purge store and cell detail: %w", err)
		}
	}
	return events, detailDays, nil
}

func (s *Service) purgeLoop() {
	defer s.wg.Done()
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		n, days, err := s.Purge(s.ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			s.opt.Logger.Error("tracking data not purged; will retry", "err", err)
		}
		if n > 0 {
			s.opt.Logger.Info("raw events purged", "deleted", n, "kept_days", int(s.keep.Hours()/24))
		}
		if days > 0 {
			s.opt.Logger.Info("store and cell detail purged", "days", days, "kept_days", s.opt.DetailDays)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}
