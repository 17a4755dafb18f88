package storage

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/navad/navad/campaigns"
)

// Events keeps what the tracking URLs and the decision path count: raw
// events for a retention period, and aggregate counters that stay. Reports
// are sums of the aggregates; nothing in it is a user's position (the cell
// is coarse, see geo.EventResolution).
//
// A backend implements Events alongside Catalog on the same connection;
// closing the Catalog closes both. Every method returns *campaigns.Error
// values only where its comment names a code; any other error is internal.
// A method that returns nil has made its write durable.
//
// # Exactness
//
// Record is the only way an impression, click, navigation or visit is
// counted, and it counts a (Kind, TokenID) pair at most once, atomically
// with its aggregates, even when many replicas call it at once. AddServed
// applies a batch ID at most once, so a flush retried after an ambiguous
// failure (a timeout after the write landed) does not count twice.
//
// # Redis mapping
//
// The Redis backend (redisstore/events.go has the exact layout) keeps every
// key of this interface under one hash tag, {navad:ev}, so that one Lua
// script may touch them atomically (in Redis Cluster they share a shard;
// tracking volume, thousands of events a second, is well within one
// shard):
//
//	{navad:ev}:raw:<issue UTC day>           hash  <kind><token> → encoded Event
//	{navad:ev}:agg:<rollup>:<day>:<adv|pub>  hash  <rollup key fields> NUL <counter> → integer
//	{navad:ev}:batch:<batch ID>              string, with EX of two days
//	{navad:ev}:secret                        string
//
// Record is one script: HSETNX on the raw hash of the token's issue day
// (the dedupe: 0 means already counted, return false), then HINCRBY of the
// event's counter field in each rollup hash of the event's day. AddServed is
// one script: SET {navad:ev}:batch:<id> NX EX, and only if that succeeded
// HINCRBY of the served field of every row in every rollup. Aggregates reads
// the rollup hashes of the days asked for (HSCAN), choosing the rollup the
// way the embedded store does. PurgeEvents deletes whole raw-day hashes;
// PurgeDetail the finest rollup's hashes and served logs of whole days.
// TrackingSecret is SET NX followed by GET. Counters are exact because
// every increment happens in the same script as the check that admits it.
type Events interface {
	// Record counts e once: it stores the raw event and adds one to e's
	// kind in the aggregates of e.Key, and reports true, unless an event of
	// the same Kind and TokenID was recorded before (and not purged since),
	// in which case it changes nothing and reports false. Concurrent calls
	// with the same pair count it exactly once.
	Record(ctx context.Context, e *Event) (counted bool, err error)

	// AddServed adds each row's N to the served counter of its key, all
	// rows or none. A batchID applied in the last 24 hours changes nothing,
	// so a caller may retry a failed call with the same ID. It keeps no
	// reference to rows once it returns: the caller reuses their array.
	AddServed(ctx context.Context, batchID string, rows []ServedCount) error

	// Aggregates calls fn with aggregate rows for the days q.From to q.To
	// (inclusive) that pass q's filters, until fn returns false. Invalid
	// when the days are more than MaxAggregateDays (q.Check). Each row
	// sets at least the key fields of the dimensions in q.Dims; other key
	// fields may be zero. Rows may be finer than q.Dims, and one group may
	// span many rows: summing the rows by the dimensions of q.Dims gives the
	// exact counts of each group. fn must not keep the *Aggregate, which
	// the next call may reuse; its strings are fn's to keep.
	Aggregates(ctx context.Context, q *AggregateQuery, fn func(*Aggregate) bool) error

	// RawEvents calls fn with every raw event kept, in no particular order,
	// until fn returns false: what an audit (or a privacy check) sees. The
	// *Event passed to fn is fn's to keep.
	RawEvents(ctx context.Context, fn func(*Event) bool) error

	// PurgeEvents deletes the raw events of tokens issued on UTC days
	// before the UTC day of before (PurgedBy), and may forget served batch
	// IDs older than 24 hours. Aggregates are kept. It returns how many raw
	// events it deleted. A purged token could be counted again, so callers
	// purge only tokens that have expired.
	PurgeEvents(ctx context.Context, before time.Time) (int, error)

	// PurgeDetail deletes the aggregates by store and by cell (the finest
	// rollup, the only one that knows them) of business days before
	// before, and reports how many days it deleted them of. The aggregates
	// by day, hour, advertiser, campaign and publisher are kept, so every
	// report that does not group by store or cell is unchanged. Counts of
	// a purged day written afterwards (a late event) are deleted by the
	// next call. At national scale nearly every ad served is a new row of
	// that rollup, which is why it is the one kept for a limited time.
	PurgeDetail(ctx context.Context, before Day) (int, error)

	// TrackingSecret returns the secret that signs tracking URLs. The first
	// call on a backend stores candidate and returns it; every later call,
	// from any replica, returns that stored secret and ignores candidate.
	// Invalid for an empty candidate.
	TrackingSecret(ctx context.Context, candidate []byte) ([]byte, error)
}

// Kind is what a tracking URL counts.
type Kind uint8

// Kinds of events. Their values are stored; never renumber them.
const (
	Impression Kind = 1 // the app showed the ad
	Click      Kind = 2 // the user opened the landing page
	Navigation Kind = 3 // the user started route guidance to the store
	Visit      Kind = 4 // the user arrived at the store
)

// Kinds lists every kind, in value order.
var Kinds = [...]Kind{Impression, Click, Navigation, Visit}

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool { return k >= Impression && k <= Visit }

// String returns the kind's name: "impression", "click", "navigation",
// "visit".
func (k Kind) String() string {
	switch k {
	case Impression:
		return "impression"
	case Click:
		return "click"
	case Navigation:
		return "navigation"
	case Visit:
		return "visit"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// TokenID identifies a signed tracking token: the first 16 bytes of its
// HMAC, unique to its contents. With a Kind it is the key that makes an
// event count once.
type TokenID [16]byte

// Event is one counted tracking event: the token's contents (never the
// user's fix) and when it happened.
type Event struct {
	Kind   Kind
	Token  TokenID
	AdID   string    // the ad's ID in the decision ("<request ID>.<n>")
	Issued time.Time // when the ad was served and its token signed
	At     time.Time // when the event happened
	// Key is where the event counts: Day and Hour of At in the business
	// time zone, the rest from the token.
	Key AggKey
}

// ServedCount is how many times an ad of one aggregate key was served.
type ServedCount struct {
	Key AggKey
	N   uint64
}

// ServedBatch is one flush of served counts under its batch ID, the ID
// AddServed applies once: kept under it wherever it waits (a replica's
// spool), so that delivering it twice counts it once.
type ServedBatch struct {
	ID   string
	Rows []ServedCount
}

// Day is a calendar day in the business time zone, numbered from
// 1970-01-01 (day 0).
type Day int32

// DetailFrom returns the first business day whose aggregates by store and
// by cell are kept when they are kept for days days (today, in loc, is the
// last of them): what the tracking service's purge keeps (PurgeDetail) and
// what reports by store or cell may ask for.
func DetailFrom(now time.Time, loc *time.Location, days int) Day {
	return DayOf(now.In(loc)) - Day(days-1)
}

// DayOf returns the calendar date of t in t's location.
func DayOf(t time.Time) Day {
	y, m, d := t.Date()
	return Day(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// Date returns the year, month and day of d.
func (d Day) Date() (year int, month time.Month, day int) {
	return time.Unix(int64(d)*86400, 0).UTC().Date()
}

// String returns d as 2006-01-02.
func (d Day) String() string {
	return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
}

// ParseDay parses a 2006-01-02 date.
func ParseDay(s string) (Day, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("parse day %q: want YYYY-MM-DD", s)
	}
	return DayOf(t), nil
}

// Dim is a dimension by which reports group and filter.
type Dim uint8

// Dimensions, in the order report rows are keyed and sorted.
const (
	DimDay        Dim = iota // calendar day of the event in the business time zone
	DimHour                  // clock hour (0-23) of the event in the business time zone
	DimAdvertiser            // the campaign's advertiser
	DimCampaign              // the campaign
	DimPublisher             // the navigation app that asked for the ad
	DimStore                 // the store the ad led to (with its advertiser)
	DimCell                  // the H3 cell (geo.EventResolution) of the decision's fix
	numDims
)

var dimNames = [numDims]string{"day", "hour", "advertiser", "campaign", "publisher", "store", "cell"}

// String returns the dimension's name as the API spells it in group_by.
func (d Dim) String() string {
	if d < numDims {
		return dimNames[d]
	}
	return fmt.Sprintf("dim(%d)", uint8(d))
}

// ParseDim returns the dimension named s, as String spells it.
func ParseDim(s string) (Dim, bool) {
	for d, name := range dimNames {
		if s == name {
			return Dim(d), true
		}
	}
	return 0, false
}

// Dims is a set of dimensions.
type Dims uint8

// AllDims holds every dimension.
const AllDims = Dims(1<<numDims - 1)

// DimsOf returns the set of ds.
func DimsOf(ds ...Dim) Dims {
	var s Dims
	for _, d := range ds {
		s |= 1 << d
	}
	return s
}

// Has reports whether d is in s.
func (s Dims) Has(d Dim) bool { return s&(1<<d) != 0 }

// Within reports whether every dimension of s is in t.
func (s Dims) Within(t Dims) bool { return s&^t == 0 }

// List returns the dimensions of s in order.
func (s Dims) List() []Dim {
	var out []Dim
	for d := range numDims {
		if s.Has(d) {
			out = append(out, d)
		}
	}
	return out
}

// AggKey names one cell of the aggregate cube.
type AggKey struct {
	Day          Day
	Hour         uint8 // 0-23
	AdvertiserID string
	CampaignID   string
	PublisherID  string
	StoreID      string // unique only within AdvertiserID
	Cell         uint64 // H3 cell at geo.EventResolution; 0 when unknown
}

// Project returns k with the fields of dimensions outside dims zeroed: the
// key of k's group when grouping by dims. A store is only unique within its
// advertiser, so DimStore keeps AdvertiserID too.
func (k AggKey) Project(dims Dims) AggKey {
	var p AggKey
	if dims.Has(DimDay) {
		p.Day = k.Day
	}
	if dims.Has(DimHour) {
		p.Hour = k.Hour
	}
	if dims.Has(DimAdvertiser) || dims.Has(DimStore) {
		p.AdvertiserID = k.AdvertiserID
	}
	if dims.Has(DimCampaign) {
		p.CampaignID = k.CampaignID
	}
	if dims.Has(DimPublisher) {
		p.PublisherID = k.PublisherID
	}
	if dims.Has(DimStore) {
		p.StoreID = k.StoreID
	}
	if dims.Has(DimCell) {
		p.Cell = k.Cell
	}
	return p
}

// Counts are the counters of one aggregate key.
type Counts struct {
	Served      uint64 // ads returned by decisions
	Impressions uint64
	Clicks      uint64
	Navigations uint64
	Visits      uint64
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Served += o.Served
	c.Impressions += o.Impressions
	c.Clicks += o.Clicks
	c.Navigations += o.Navigations
	c.Visits += o.Visits
}

// AddKind adds n to the counter of kind k.
func (c *Counts) AddKind(k Kind, n uint64) {
	switch k {
	case Impression:
		c.Impressions += n
	case Click:
		c.Clicks += n
	case Navigation:
		c.Navigations += n
	case Visit:
		c.Visits += n
	}
}

// Aggregate is the counts of one aggregate key.
type Aggregate struct {
	AggKey
	Counts
}

// AggregateQuery selects aggregate rows. A nil filter admits every value; a
// non-nil one admits only the values listed, so an empty non-nil filter
// admits nothing.
type AggregateQuery struct {
	From, To    Day  // inclusive
	Dims        Dims // the dimensions the caller groups by
	Advertisers []string
	Campaigns   []string
	Publishers  []string
}

// MaxAggregateDays bounds the days of one AggregateQuery, a century:
// backends plan their reads day by day (a report covers at most a year).
const MaxAggregateDays = 100 * 366

// Check reports an Invalid *campaigns.Error when q covers more than
// MaxAggregateDays days, else nil (To before From is no days).
func (q *AggregateQuery) Check() error {
	if n := int64(q.To) - int64(q.From) + 1; n > MaxAggregateDays {
		return campaigns.Errorf(campaigns.Invalid, "aggregates of %d days: at most %d", n, MaxAggregateDays)
	}
	return nil
}

// Days yields the days q.From to q.To in order. It counts in int64, so a
// range that ends on the last Day (math.MaxInt32) ends.
func (q *AggregateQuery) Days() iter.Seq[Day] {
	return func(yield func(Day) bool) {
		for d := int64(q.From); d <= int64(q.To); d++ {
			if !yield(Day(d)) {
				return
			}
		}
	}
}

// KeyFilter admits the aggregate keys of the advertisers, campaigns and
// publishers a query names (a nil list admits all), with a set lookup each;
// backends build one per query and test every key they read.
type KeyFilter struct {
	advertisers, campaigns, publishers map[string]struct{}
}

// Filter returns the KeyFilter of q.
func (q *AggregateQuery) Filter() KeyFilter {
	return KeyFilter{setOf(q.Advertisers), setOf(q.Campaigns), setOf(q.Publishers)}
}

// Admits reports whether k belongs to the query.
func (f *KeyFilter) Admits(k *AggKey) bool {
	return admits(f.advertisers, k.AdvertiserID) && admits(f.campaigns, k.CampaignID) && admits(f.publishers, k.PublisherID)
}

// setOf returns a set of s, nil for nil.
func setOf(s []string) map[string]struct{} {
	if s == nil {
		return nil
	}
	m := make(map[string]struct{}, len(s))
	for _, v := range s {
		m[v] = struct{}{}
	}
	return m
}

func admits(set map[string]struct{}, v string) bool {
	if set == nil {
		return true
	}
	_, ok := set[v]
	return ok
}

// PurgedBy reports whether PurgeEvents(before) deletes the raw events of a
// token issued at issued: whether its UTC day is before before's.
func PurgedBy(issued, before time.Time) bool {
	iy, im, id := issued.UTC().Date()
	by, bm, bd := before.UTC().Date()
	return time.Date(iy, im, id, 0, 0, 0, 0, time.UTC).Before(time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC))
}
