// Package redisstore is navad's shared storage backend: a storage.Catalog in
// Redis, so that many navad replicas serve one state. It works against a
// single Redis node and against Redis Cluster (go-redis's UniversalClient),
// and it appends every change to a change feed that replicas follow to keep
// their in-memory serving indexes in step (see feed.go and package replica).
//
// # Key layout
//
// Every key starts with a hash tag, so that each atomic operation touches keys
// of one Redis Cluster slot only. Accounts and campaigns are few (thousands)
// and share the global tag {navad}; stores and stock are many (a million) and
// are spread over a fixed number of shards, {navad:0} … {navad:N-1}, by a
// hash of the advertiser ID, so that one advertiser's stores, stock and the
// feed that records their changes are always in one slot.
//
//	{navad}:meta                 hash    schema, shards, epoch (random; new when Redis lost its data)
//	{navad}:accounts             hash    account ID → JSON account, key hashes included
//	{navad}:keys                 hash    key hash → account ID (keeps hashes unique)
//	{navad}:campaigns            hash    campaign ID → JSON campaign
//	{navad}:campaign_adv         hash    campaign ID → advertiser ID
//	{navad}:campaigns_by_adv     zset    "advertiser ID NUL campaign ID", score 0 (lexical order)
//	{navad}:campaigns_gone       set     IDs of deleted campaigns, which CreateCampaign does not give again
//	{navad}:caps_pending         set     IDs of deleted campaigns whose caps total may still lack its expiry
//	{navad}:seq                  string  sequence number of the last record of {navad}:feed
//	{navad}:feed                 stream  change records of accounts and campaigns
//
//	{navad:N}:advertisers        zset    advertiser IDs of shard N that have had stores, score 0
//	{navad:N}:stores:<adv>       hash    store ID → binary store (codec.go)
//	{navad:N}:out:<adv>          zset    "store ID NUL product ID" reported out of stock, score 0
//	{navad:N}:seq                string  sequence number of the last record of {navad:N}:feed
//	{navad:N}:feed               stream  change records of the shard's stores and stock
//
// NUL separates the parts of a member: identifiers never contain it (the
// store refuses them), and it sorts before every other byte, so lexical order
// of members is the order of their parts as a tuple. Only out-of-stock
// reports are kept; a product reported back in stock loses its member.
//
// Tracking (storage.Events, events.go) lives under its own tag {navad:ev},
// so that one script both checks that a token has not counted yet and
// counts it in every rollup; caps (storage.Caps, caps.go) under one tag per
// campaign, so that a reservation checks and counts a campaign's total, day
// and user window in one script while campaigns spread over the cluster:
//
//	{navad:ev}:secret                    string  the tracking secret
//	{navad:ev}:raw_days                  set     UTC days that have raw events
//	{navad:ev}:raw:<UTC day>             hash    kind and token ID → raw event (the once-only record)
//	{navad:ev}:batch:<batch ID>          string  a served batch applied (expires after two days)
//	{navad:ev}:advs:<day>, :pubs:<day>   set     advertisers, publishers with counts on a business day
//	{navad:ev}:agg:<a|p|h|c>:<day>:<id>  hash    rollup key NUL counter → count, per advertiser (publisher for p)
//	{navad:caps:<campaign>}:total        string  ads served in total (0, expiring in two days, once the campaign is deleted; capsfree.go)
//	{navad:caps:<campaign>}:day:<day>    string  ads served on a business day (expires two days after it)
//	{navad:caps:<campaign>}:user:<hash>  string  a user's window: count and end (expires when it closes)
//	{navad:caps:<campaign>}:given:<giver> string the highest give-back number of a replica applied (expires a day after)
//	{navad:caps:<campaign>}:leased:<giver> string a replica's last lease, number and grant (expires a day after)
//
// # Atomicity and durability
//
// Every write is one Lua script or one MULTI/EXEC transaction on the keys of
// one slot, and appends its change record (with the next sequence number) in
// the same atomic unit: a reader of the feed never misses a change nor sees
// one that did not happen. PutStores sends all its stores as the arguments
// of one script (see PutStores for why not MULTI or a staging key). A script
// is not rolled back when a command in it fails, so each checks, before its
// first write, that Redis will take every write it makes: Redis itself
// refuses only a script's first write for want of memory or on a replica,
// and the script asks about the user's ACL (scripts.go). Redis writes a
// script's effects to its append-only file as one transaction and, on
// restart, drops a transaction cut short at the end of the file.
//
// A method that returns nil has had its write acknowledged by Redis; how
// durable that is depends on Redis's appendfsync setting (README, "Scaling
// out"). Writes are sent without go-redis's automatic retries, because a
// retried script might apply twice or answer Conflict for its own first
// attempt; once a write is on the wire it is not abandoned when ctx is
// cancelled, so an error return means the write did not happen (or, when
// Redis fails in mid-answer, that it may have: Unavailable).
//
// # Errors
//
// Redis unreachable, loading, read-only, out of memory, refusing writes
// (MISCONF) or a cluster without a master for a slot: campaigns.Unavailable,
// wrapping the cause. A done context: the context's error, wrapped in
// Unavailable.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

var _ storage.Catalog = (*Store)(nil)

// ErrClosed is returned (wrapped) by every method of a Store called after
// Close. Ping returns an Unavailable *campaigns.Error that wraps it.
var ErrClosed = errors.New("redisstore: closed")

// schemaVersion is the layout described in the package comment. Open refuses
// a Redis written by a newer layout rather than misread it.
const schemaVersion = 1

// DefaultShards is the number of store shards a new navad database gets.
// Sixteen slots spread stores over up to sixteen cluster masters, while each
// replica follows only seventeen feeds. The number is kept in {navad}:meta
// at creation and read from there ever after.
const DefaultShards = 16

// DefaultFeedRetention is how long change records stay in the feed: a
// replica cut off from Redis for less catches up record by record, one cut
// off for longer reloads the shards it missed.
const DefaultFeedRetention = 10 * time.Minute

// Store is a storage.Catalog in Redis. Create one with Open; it is safe for
// concurrent use.
type Store struct {
	client    redis.UniversalClient
	shards    int
	epoch     string
	origin    string
	retention time.Duration
	closed    atomic.Bool
	pipe      groupPipe                            // Record and Caps.Reserve (pipeline.go)
	onWrite   atomic.Pointer[func(Stream, Cursor)] // OnWrite's function

	// Served logs folded in the background (served.go): one at a time, in
	// the order asked, each log queued once however often it is asked for.
	foldMu      sync.Mutex
	foldQueue   []foldJob
	foldQueued  map[string]bool // by log key
	folding     bool            // a goroutine is working through foldQueue
	folds       sync.WaitGroup
	onFoldError func(error)

	// The caps sweep (capsfree.go), when opened WithCapsSweep.
	sweepStop context.CancelFunc
	sweepDone chan struct{}
}

// Option changes how Open connects.
type Option func(*options)

type options struct {
	shards    int
	retention time.Duration
	onError   func(error)
	sweep     time.Duration
}

// WithOnError sets what is told of errors in background work (folding
// served logs, served.go; the caps sweep, capsfree.go), which is retried
// later by itself; nil ignores them.
func WithOnError(fn func(error)) Option { return func(o *options) { o.onError = fn } }

// WithCapsSweep has the Store free the caps of deleted campaigns in the
// background (FreeDeletedCaps): every campaign ever deleted once, at once,
// then the ones whose delete did not free them every interval, until
// Close. Errors go to WithOnError's function, and the sweep is tried again
// at the next interval. A server sets it; tools that open the Store for a
// moment do not.
func WithCapsSweep(interval time.Duration) Option { return func(o *options) { o.sweep = interval } }

// WithShards sets the number of store shards of a new database (default
// DefaultShards). It has no effect on a database that exists.
func WithShards(n int) Option { return func(o *options) { o.shards = n } }

// WithFeedRetention sets how long change records are kept (default
// DefaultFeedRetention).
func WithFeedRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// Open connects to the Redis at rawURL and checks the database layout,
// creating it in an empty Redis. rawURL is one of:
//
//	redis://[user:password@]host:port[/db][?option=value…]    one node
//	rediss://…                                                one node over TLS
//	redis+cluster://[user:password@]host:port[,host:port…][?addr=host:port…]
//	rediss+cluster://…                                        Redis Cluster over TLS
//
// The cluster form names one or more seed nodes; the rest are discovered.
// Query options are go-redis's (dial_timeout, read_timeout, pool_size…).
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	o := options{shards: DefaultShards, retention: DefaultFeedRetention}
	for _, opt := range opts {
		opt(&o)
	}
	if o.shards < 1 || o.shards > 1024 {
		return nil, fmt.Errorf("open redis store: %d shards: want 1 to 1024", o.shards)
	}
	if o.retention < time.Second {
		return nil, fmt.Errorf("open redis store: feed retention %v: want at least a second", o.retention)
	}
	client, err := NewClient(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open redis store: %w", err)
	}
	s := &Store{client: client, retention: o.retention, origin: randomID(), pipe: groupPipe{client: client}, foldQueued: make(map[string]bool), onFoldError: o.onError}
	if s.shards, s.epoch, err = s.initMeta(ctx, o.shards); err != nil {
		_ = client.Close() // the meta error is the one to report
		return nil, fmt.Errorf("open redis store: %w", err)
	}
	if o.sweep > 0 {
		var sweepCtx context.Context
		sweepCtx, s.sweepStop = context.WithCancel(context.Background())
		s.sweepDone = make(chan struct{})
		go s.sweepCaps(sweepCtx, o.sweep)
	}
	return s, nil
}

// NewClient returns a go-redis client for a URL of the forms Open takes, with
// navad's defaults: context deadlines honoured, short dial timeouts, and no
// automatic retries (see the package comment).
func NewClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	switch u.Scheme {
	case "redis", "rediss":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		o.ContextTimeoutEnabled = true
		o.MaxRetries = -1
		o.DialTimeout = orDefault(o.DialTimeout, 2*time.Second)
		o.DialerRetries = max(o.DialerRetries, 1)
		o.ReadTimeout = orDefault(o.ReadTimeout, 5*time.Second)
		o.WriteTimeout = orDefault(o.WriteTimeout, 5*time.Second)
		return redis.NewClient(o), nil
	case "redis+cluster", "rediss+cluster":
		// go-redis's cluster URL is redis://seed?addr=seed2&addr=seed3;
		// commas in the host list are navad's shorter spelling of the same.
		u.Scheme = strings.TrimSuffix(u.Scheme, "+cluster")
		hosts := strings.Split(u.Host, ",")
		u.Host = hosts[0]
		q := u.Query()
		for _, h := range hosts[1:] {
			if h != "" {
				q.Add("addr", h)
			}
		}
		u.RawQuery = q.Encode()
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		o.ContextTimeoutEnabled = true
		o.MaxRetries = -1
		o.DialTimeout = orDefault(o.DialTimeout, 2*time.Second)
		o.DialerRetries = max(o.DialerRetries, 1)
		o.ReadTimeout = orDefault(o.ReadTimeout, 5*time.Second)
		o.WriteTimeout = orDefault(o.WriteTimeout, 5*time.Second)
		return redis.NewClusterClient(o), nil
	}
	return nil, fmt.Errorf("redis url: scheme %q: want redis, rediss, redis+cluster or rediss+cluster", u.Scheme)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// initMeta creates {navad}:meta in an empty Redis (or one that lost its
// data) and returns the database's shard count and epoch.
func (s *Store) initMeta(ctx context.Context, shards int) (int, string, error) {
	res, err := scriptInitMeta.Run(ctx, s.client, []string{keyMeta}, schemaVersion, shards, randomID()).StringSlice()
	if err != nil {
		return 0, "", s.fail(ctx, "init meta", err)
	}
	if len(res) != 3 {
		return 0, "", fmt.Errorf("init meta: unexpected reply %q", res)
	}
	schema, err1 := strconv.Atoi(res[0])
	n, err2 := strconv.Atoi(res[1])
	if err1 != nil || err2 != nil || n < 1 || res[2] == "" {
		return 0, "", fmt.Errorf("init meta: malformed %s: %q", keyMeta, res)
	}
	if schema > schemaVersion {
		return 0, "", fmt.Errorf("redis holds schema version %d, this build knows %d", schema, schemaVersion)
	}
	return n, res[2], nil
}

// Epoch returns the database's epoch, creating the layout again when Redis
// has lost it. A new epoch means every replica must reload.
func (s *Store) Epoch(ctx context.Context) (string, error) {
	if err := s.begin(ctx); err != nil {
		return "", fmt.Errorf("epoch: %w", err)
	}
	n, epoch, err := s.initMeta(ctx, s.shards)
	if err != nil {
		return "", fmt.Errorf("epoch: %w", err)
	}
	if n != s.shards {
		return "", fmt.Errorf("epoch: database now has %d shards, this store was opened with %d", n, s.shards)
	}
	return epoch, nil
}

// Client returns the go-redis client, for other Redis-backed parts of navad
// that share the connection pool.
func (s *Store) Client() redis.UniversalClient { return s.client }

// Origin returns the random ID this Store writes into its change records,
// so that a replica can tell its own changes from others'.
func (s *Store) Origin() string { return s.origin }

// Shards returns the number of store shards of the database.
func (s *Store) Shards() int { return s.shards }

// Close closes the connection pool. Closing a closed Store does nothing and
// returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.sweepStop != nil {
		s.sweepStop()
		<-s.sweepDone
	}
	s.pipe.close()
	// foldLater adds to folds under foldMu once it has seen the Store
	// open: past this lock every such Add is done, and later ones see it
	// closed, so none races the Wait.
	s.foldMu.Lock()
	s.foldMu.Unlock()
	s.folds.Wait()
	err := s.client.Close()
	s.pipe.wait()
	if err != nil {
		return fmt.Errorf("close redis store: %w", err)
	}
	return nil
}

// Ping reports whether Redis can serve reads and writes now: every master
// answers PING. Unavailable; the error also wraps the cause (ErrClosed,
// ctx.Err(), or go-redis's) for errors.Is.
func (s *Store) Ping(ctx context.Context) error {
	unavailable := func(err error) error {
		return fmt.Errorf("ping: %w: %w", campaigns.Errorf(campaigns.Unavailable, "redis unavailable"), err)
	}
	if err := s.begin(ctx); err != nil {
		return unavailable(err)
	}
	var err error
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.Ping(ctx).Err()
		})
	} else {
		err = s.client.Ping(ctx).Err()
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// begin checks that the Store is open and ctx is live. Every method calls it
// first.
func (s *Store) begin(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return unavailableErr(err)
	}
	return nil
}

// commitCtx is the context a write is sent with once begun: ctx's values
// without its cancellation, so that a cancel cannot leave the caller unsure
// whether Redis applied the write. The client's read and write timeouts
// still bound it.
func commitCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func unavailableErr(cause error) error {
	return fmt.Errorf("%w: %w", campaigns.Errorf(campaigns.Unavailable, "redis unavailable"), cause)
}

// fail wraps a go-redis error with the operation's name and the right code.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	var ce *campaigns.Error
	switch {
	case errors.As(err, &ce):
		return fmt.Errorf("%s: %w", op, err)
	case s.closed.Load() && errors.Is(err, redis.ErrClosed):
		return fmt.Errorf("%s: %w", op, ErrClosed)
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		// A deadline that struck inside go-redis shows as a net timeout.
		return fmt.Errorf("%s: %w", op, unavailableErr(fmt.Errorf("%w: %w", ctx.Err(), err)))
	case isUnavailable(err):
		return fmt.Errorf("%s: %w", op, unavailableErr(err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// neverSent reports whether err says a command was never sent to Redis:
// no connection could be made (a dial failed) or taken from the pool, or
// the Store was closed before it went out. Such a write certainly did not
// happen, and may be sent again. On a single node only: the client there
// makes one attempt (MaxRetries -1), so its last error is its only one.
// go-redis's cluster client tries a command again after a network error,
// up to MaxRedirects times, whatever MaxRetries says, so a dial error
// there may follow an attempt that reached Redis and lost its reply.
func (s *Store) neverSent(err error) bool {
	if _, cluster := s.client.(*redis.ClusterClient); cluster {
		return errors.Is(err, ErrClosed)
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial" ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted) || errors.Is(err, ErrClosed)
}

// isUnavailable reports whether err means Redis cannot serve now, as
// opposed to a bug or corrupt data.
func isUnavailable(err error) bool {
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted),
		redis.IsLoadingError(err), redis.IsReadOnlyError(err), redis.IsClusterDownError(err),
		redis.IsTryAgainError(err), redis.IsMasterDownError(err), redis.IsMaxClientsError(err),
		redis.IsOOMError(err), redis.HasErrorPrefix(err, "MISCONF"), redis.HasErrorPrefix(err, "BUSY"):
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr)
}

// ---- Keys ----

// NUL joins the parts of a member; see the package comment.
const sep = "\x00"

const (
	keyMeta           = "{navad}:meta"
	keyAccounts       = "{navad}:accounts"
	keyKeys           = "{navad}:keys"
	keyCampaigns      = "{navad}:campaigns"
	keyCampaignAdv    = "{navad}:campaign_adv"
	keyCampaignsByAdv = "{navad}:campaigns_by_adv"
	keyCampaignsGone  = "{navad}:campaigns_gone" // set: IDs of deleted campaigns, not given again
	keyCapsPending    = "{navad}:caps_pending"   // set: deleted campaigns whose caps total may lack its expiry
)

// Stream names one change feed: CampaignsStream (0) is the global one
// (accounts and campaigns), stream n ≥ 1 that of store shard n-1.
type Stream int

// CampaignsStream records accounts and campaigns; every other stream is a
// store shard's.
const CampaignsStream Stream = 0

func (st Stream) tag() string {
	if st == CampaignsStream {
		return "{navad}"
	}
	return "{navad:" + strconv.Itoa(int(st)-1) + "}"
}

func (st Stream) seqKey() string  { return st.tag() + ":seq" }
func (st Stream) feedKey() string { return st.tag() + ":feed" }

// shardOf returns the stream of the shard holding advertiserID's stores.
func (s *Store) shardOf(advertiserID string) Stream {
	h := fnv.New32a()
	_, _ = io.WriteString(h, advertiserID)
	return Stream(1 + int(h.Sum32()%uint32(s.shards)))
}

func storesKey(st Stream, adv string) string  { return st.tag() + ":stores:" + adv }
func outKey(st Stream, adv string) string     { return st.tag() + ":out:" + adv }
func stockAtKey(st Stream, adv string) string { return st.tag() + ":stockat:" + adv }
func advertisersKey(st Stream) string         { return st.tag() + ":advertisers" }

// prefixRange returns the ZRANGE BYLEX bounds of the members that start with
// prefix NUL.
func prefixRange(prefix string) (lo, hi string) { return "[" + prefix + sep, "(" + prefix + "\x01" }

func (s *Store) retentionArg() string { return strconv.FormatInt(s.retention.Milliseconds(), 10) }

func validKey(id string) bool { return checkKey("", id) == nil }

func notFound(format string, a ...any) error {
	return campaigns.Errorf(campaigns.NotFound, format, a...)
}
func conflict(format string, a ...any) error {
	return campaigns.Errorf(campaigns.Conflict, format, a...)
}

// checkKey reports whether id can be a key part or member part: not empty,
// no NUL (which would blur members), not absurdly long. The HTTP layer
// validates identifiers before they get here; this guards the data.
func checkKey(what, id string) error {
	if id == "" {
		return fmt.Errorf("empty %s", what)
	}
	if len(id) > campaigns.MaxIDLen*4 {
		return fmt.Errorf("%s of %d bytes is too long", what, len(id))
	}
	if strings.Contains(id, sep) {
		return fmt.Errorf("%s %q contains a NUL byte", what, id)
	}
	return nil
}

// SetLogger sends go-redis's own log lines (a failed dial per connection
// attempt while Redis is down, and the like) to l at debug level, instead
// of to standard error. go-redis has one logger per process, so this is
// process-wide; navad's own components log outages once, at warn.
func SetLogger(l *slog.Logger) { redis.SetLogger(slogPrinter{l}) }

type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(ctx context.Context, format string, v ...any) {
	if p.l.Enabled(ctx, slog.LevelDebug) {
		p.l.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
	}
}
