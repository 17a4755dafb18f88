package redisstore

// Events in Redis: storage.Events, so that every replica counts tracking
// events and served ads into one set of aggregates, exactly once per token.
//
// # Key layout
//
// Every key is under the one hash tag {navad:ev}, so that a script may touch
// any of them (in Redis Cluster they share one slot; tracking, thousands of
// events a second, is well within one shard):
//
//	{navad:ev}:secret                    string  the tracking secret
//	{navad:ev}:raw_days                  set     UTC days (2006-01-02) that have a raw hash
//	{navad:ev}:raw:<UTC day>             hash    kind (1 byte) token ID (16) → event (binary, below)
//	{navad:ev}:batch:<batch ID>          string  a served batch applied; expires after two days
//	{navad:ev}:advs:<day>                set     advertisers with counts on a business day
//	{navad:ev}:pubs:<day>                set     publishers with counts on a business day
//	{navad:ev}:detail_days               set     business days with counts in rollup c
//	{navad:ev}:agg:a:<day>:<advertiser>  hash    campaign NUL c → count
//	{navad:ev}:agg:p:<day>:<publisher>   hash    advertiser NUL campaign NUL c → count
//	{navad:ev}:agg:h:<day>:<advertiser>  hash    campaign NUL publisher NUL hour NUL c → count
//	{navad:ev}:agg:c:<day>:<advertiser>  hash    campaign NUL publisher NUL hour NUL store NUL cell NUL c → count
//
// Served counts reach these hashes through logs beside them, appended to
// by AddServed and folded in later (served.go); a report reads both.
//
// Business days are 2006-01-02 in the business time zone; an hour is
// decimal (0-23), a cell hexadecimal; c names the counter: s served, i
// impressions, k clicks, n navigations, v visits. Each counter is its own
// field so that Redis adds to it natively (HINCRBY, a microsecond or two):
// a Record script costs Redis about 30 µs, against 53 µs for one that
// decodes and re-encodes all five counters in Lua (INFO commandstats, Redis
// 7.0), and since every event goes to the one {navad:ev} slot, that is the
// capacity of tracking. A report reads two or three fields per key instead
// of one and sums them per hash before it hands out the row.
//
// The four rollups are those of the embedded store (boltstore/events.go),
// each able to answer the reports that need no more than its dimensions. A
// report reads the smallest one that holds what it groups and filters by,
// one hash per day and advertiser (or publisher, for the publisher-first
// rollup): an advertiser's report reads its own hashes only; 30 days of
// 10,000 campaigns by day and campaign read the 300,000 keys of rollup a,
// however many stores, cells, hours and publishers the events spread over,
// and a hash of a few dozen campaigns stays in Redis's compact listpack
// encoding.
//
// # Atomicity
//
// Record is one script: HSETNX of the raw event (the once-only check: 0
// means counted before) and, only when it set the field, HINCRBY of the
// counter of its kind in the four rollups of its day and SADD to the day's
// member sets. AddServed is one script: SET NX EX of its batch key and,
// only when that succeeded, an APPEND of a block of served counts to a log
// beside each hash it touches (served.go), all rows or none. A script's
// arguments are checked before it is sent and it cannot fail half way, so
// no write is left half done.
// Aggregates reads with HSCAN, which may return a field twice when a big
// hash is resized while it is read; fields of a hash read in more than one
// call are deduplicated.
//
// # Memory
//
// A raw event costs about 160 bytes of Redis memory: a national peak of a
// thousand events a second is some 14 GB a day, so on Redis
// NAVAD_EVENT_RETENTION_DAYS is best set close to its minimum (the token
// lifetime and a day), since raw events are an audit trail and the record of
// which tokens counted, and the aggregates stay regardless.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/record"
)

var _ storage.Events = (*Store)(nil)

const (
	evTag      = "{navad:ev}"
	keySecret  = evTag + ":secret"
	keyRawDays = evTag + ":raw_days"
	// keyDetailDays is the set of business days with counts in rollup c,
	// so that PurgeDetail finds them.
	keyDetailDays = evTag + ":detail_days"

	// batchTTL is how long a served batch ID is remembered: the contract
	// asks for a day; two leave room for a retry after a long outage.
	batchTTL = 48 * time.Hour
	// maxAdIDLen bounds the ad ID kept with an event.
	maxAdIDLen = 256
	// scanCount is the COUNT of each HSCAN, and scanPipeline how many
	// hashes one round trip reads.
	scanCount    = 1000
	scanPipeline = 256
	// eventCodecV1 is the version byte of a raw event's value.
	eventCodecV1 = 1
)

// rollup is one of the aggregate tables of the layout above.
type rollup struct {
	name        string
	dims        storage.Dims // what it can answer
	byPublisher bool         // its hashes are per publisher, not per advertiser
	fields      int          // NUL-separated parts of a field
}

var (
	rollupA = rollup{"a", storage.DimsOf(storage.DimDay, storage.DimAdvertiser, storage.DimCampaign), false, 1}
	rollupP = rollup{"p", storage.DimsOf(storage.DimDay, storage.DimPublisher, storage.DimAdvertiser, storage.DimCampaign), true, 2}
	rollupH = rollup{"h", storage.DimsOf(storage.DimDay, storage.DimHour, storage.DimAdvertiser, storage.DimCampaign, storage.DimPublisher), false, 3}
	rollupC = rollup{"c", storage.AllDims, false, 5}
	// rollups are in the order the planner tries them: smallest first.
	rollups = [...]rollup{rollupA, rollupP, rollupH, rollupC}
)

// part returns the advertiser or publisher whose hash holds k in r.
func (r rollup) part(k *storage.AggKey) string {
	if r.byPublisher {
		return k.PublisherID
	}
	return k.AdvertiserID
}

// key returns the hash of day d and part (advertiser or publisher) in r.
func (r rollup) key(d storage.Day, part string) string {
	return evTag + ":agg:" + r.name + ":" + d.String() + ":" + part
}

// field returns the hash field of k in r, without its counter.
func (r rollup) field(k *storage.AggKey) string {
	var b [128]byte
	return string(r.appendField(b[:0], k))
}

// counterLetters name the counters in fields, in storage.Counts order.
const counterLetters = "siknv"

// counter returns the letter of the counter of kind k.
func counter(k storage.Kind) string { return counterLetters[k : k+1] }

// splitField cuts the counter off a field: the key part of the field, and
// the counter's index in counterLetters.
func splitField(field string) (string, int, bool) {
	if len(field) < 3 || field[len(field)-2] != 0 {
		return "", 0, false
	}
	i := strings.IndexByte(counterLetters, field[len(field)-1])
	return field[:len(field)-2], i, i >= 0
}

// decode fills k from the part and the key part of a field (splitField) of
// a hash of r on day d.
func (r rollup) decode(d storage.Day, part, field string, k *storage.AggKey) error {
	*k = storage.AggKey{Day: d}
	var parts [5]string
	n := 0
	for n < len(parts)-1 {
		i := strings.IndexByte(field, 0)
		if i < 0 {
			break
		}
		parts[n], field = field[:i], field[i+1:]
		n++
	}
	parts[n] = field
	n++
	if n != r.fields || parts[0] == "" {
		return errCorruptAgg
	}
	switch r.name {
	case "a":
		k.AdvertiserID, k.CampaignID = part, parts[0]
	case "p":
		k.PublisherID, k.AdvertiserID, k.CampaignID = part, parts[0], parts[1]
	default:
		k.AdvertiserID, k.CampaignID, k.PublisherID = part, parts[0], parts[1]
		h, err := strconv.ParseUint(parts[2], 10, 8)
		if err != nil || h > 23 {
			return errCorruptAgg
		}
		k.Hour = uint8(h)
		if r.name == "c" {
			k.StoreID = parts[3]
			if k.Cell, err = strconv.ParseUint(parts[4], 16, 64); err != nil {
				return errCorruptAgg
			}
		}
	}
	return nil
}

var errCorruptAgg = fmt.Errorf("corrupt aggregate field")

func advsKey(d storage.Day) string { return evTag + ":advs:" + d.String() }
func pubsKey(d storage.Day) string { return evTag + ":pubs:" + d.String() }

// partsKey returns the set of advertisers, or publishers, of day d.
func (r rollup) partsKey(d storage.Day) string {
	if r.byPublisher {
		return pubsKey(d)
	}
	return advsKey(d)
}

func batchKey(id string) string { return evTag + ":batch:" + id }

// utcDay returns the UTC date of t, which names its raw hash.
func utcDay(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func rawKey(utcDate string) string { return evTag + ":raw:" + utcDate }

// rawField is kind (1 byte) and token ID (16 bytes).
func rawField(e *storage.Event) string {
	var b [1 + len(storage.TokenID{})]byte
	b[0] = byte(e.Kind)
	copy(b[1:], e.Token[:])
	return string(b[:])
}

// appendEvent appends the value of a raw event: a version byte, then
// varints issued, at (Unix seconds) and day, the hour byte, the cell
// (uint64 big-endian), and strings (uvarint length, bytes) ad ID,
// advertiser, campaign, publisher, store. Kind and token are the field.
func appendEvent(b []byte, e *storage.Event) []byte {
	b = append(b, eventCodecV1)
	b = binary.AppendVarint(b, e.Issued.Unix())
	b = binary.AppendVarint(b, e.At.Unix())
	b = binary.AppendVarint(b, int64(e.Key.Day))
	b = append(b, e.Key.Hour)
	b = binary.BigEndian.AppendUint64(b, e.Key.Cell)
	for _, s := range [...]string{e.AdID, e.Key.AdvertiserID, e.Key.CampaignID, e.Key.PublisherID, e.Key.StoreID} {
		b = record.AppendString(b, s)
	}
	return b
}

func decodeEvent(field, v string) (*storage.Event, error) {
	if len(field) != 1+len(storage.TokenID{}) {
		return nil, fmt.Errorf("raw event field %x: %w", field, errCorrupt)
	}
	e := &storage.Event{Kind: storage.Kind(field[0])}
	copy(e.Token[:], field[1:])
	r := record.Reader[string]{B: v}
	if ver := r.Byte(); ver != eventCodecV1 {
		return nil, fmt.Errorf("raw event %x: encoding %d: %w", field, ver, errCorrupt)
	}
	issued, at, day := r.Varint(), r.Varint(), r.Varint()
	e.Issued, e.At, e.Key.Day = time.Unix(issued, 0).UTC(), time.Unix(at, 0).UTC(), storage.Day(day)
	e.Key.Hour = r.Byte()
	var cell uint64
	for range 8 {
		cell = cell<<8 | uint64(r.Byte())
	}
	e.Key.Cell = cell
	for _, p := range [...]*string{&e.AdID, &e.Key.AdvertiserID, &e.Key.CampaignID, &e.Key.PublisherID, &e.Key.StoreID} {
		*p = r.Str()
	}
	if r.Err == nil && r.Off != len(v) {
		r.Fail()
	}
	if r.Err != nil {
		return nil, fmt.Errorf("raw event %x: %w", field, r.Err)
	}
	return e, nil
}

// checkAggKey guards the layout against keys that would blur it.
func checkAggKey(k *storage.AggKey) error {
	if k.Hour > 23 {
		return fmt.Errorf("hour %d out of range", k.Hour)
	}
	for _, p := range []struct{ what, id string }{
		{"advertiser id", k.AdvertiserID}, {"campaign id", k.CampaignID},
		{"publisher id", k.PublisherID}, {"store id", k.StoreID},
	} {
		if err := checkKey(p.what, p.id); err != nil {
			return err
		}
	}
	return nil
}

// scriptRecord counts one event once. KEYS: raw hash, raw_days, rollup
// hashes a, p, h, c, advs, pubs, detail_days. ARGV: raw field, raw value,
// UTC day, counter fields in a, p, h, c, advertiser, publisher, business
// day. Returns 1 when it counted the event, 0 when it was counted before.
var scriptRecord = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[3])
for r = 1, 4 do redis.call('HINCRBY', KEYS[2 + r], ARGV[3 + r], 1) end
redis.call('SADD', KEYS[7], ARGV[8])
redis.call('SADD', KEYS[8], ARGV[9])
redis.call('SADD', KEYS[9], ARGV[10])
return 1
`)

// scriptPurgeDay deletes one raw hash. KEYS: raw hash, raw_days. ARGV: the
// UTC day. Returns how many events it held.
var scriptPurgeDay = redis.NewScript(`
local n = redis.call('HLEN', KEYS[1])
redis.call('UNLINK', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return n
`)

// scriptSecret stores ARGV[1] unless a secret is kept, and returns the one
// kept. KEYS: secret.
var scriptSecret = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
`)

// Record counts e once per (Kind, Token), atomically with its aggregates,
// in one script; see storage.Events and the layout above.
func (s *Store) Record(ctx context.Context, e *storage.Event) (bool, error) {
	const op = "record event"
	if err := s.begin(ctx); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	// An event these refuse can never be recorded: Invalid, so that a
	// spool delivering it drops it rather than keep it for ever.
	if !e.Kind.Valid() {
		return false, fmt.Errorf("%s: %w", op, campaigns.Errorf(campaigns.Invalid, "invalid kind %d", e.Kind))
	}
	if len(e.AdID) > maxAdIDLen {
		return false, fmt.Errorf("%s: %w", op, campaigns.Errorf(campaigns.Invalid, "ad id of %d bytes is too long", len(e.AdID)))
	}
	if err := checkAggKey(&e.Key); err != nil {
		return false, fmt.Errorf("%s: %w", op, campaigns.Errorf(campaigns.Invalid, "%v", err))
	}
	k := &e.Key
	raw := utcDay(e.Issued)
	keys := []string{
		rawKey(raw), keyRawDays,
		rollupA.key(k.Day, rollupA.part(k)), rollupP.key(k.Day, rollupP.part(k)),
		rollupH.key(k.Day, rollupH.part(k)), rollupC.key(k.Day, rollupC.part(k)),
		advsKey(k.Day), pubsKey(k.Day), keyDetailDays,
	}
	args := []any{
		rawField(e), appendEvent(make([]byte, 0, 64+len(e.AdID)+len(k.AdvertiserID)+len(k.CampaignID)+len(k.PublisherID)+len(k.StoreID)), e),
		raw,
		rollupA.field(k) + sep + counter(e.Kind), rollupP.field(k) + sep + counter(e.Kind),
		rollupH.field(k) + sep + counter(e.Kind), rollupC.field(k) + sep + counter(e.Kind),
		k.AdvertiserID, k.PublisherID, k.Day.String(),
	}
	n, err := s.pipe.run(ctx, scriptRecord, keys, args...).Int()
	if err != nil {
		return false, s.fail(ctx, op, err)
	}
	return n == 1, nil
}

// plan picks the rollup for q: the smallest that holds the dimensions q
// groups and filters by.
func plan(q *storage.AggregateQuery) rollup {
	need := q.Dims
	if q.Advertisers != nil {
		need |= storage.DimsOf(storage.DimAdvertiser)
	}
	if q.Campaigns != nil {
		need |= storage.DimsOf(storage.DimCampaign)
	}
	if q.Publishers != nil {
		need |= storage.DimsOf(storage.DimPublisher)
	}
	for _, r := range rollups {
		if need.Within(r.dims) {
			return r
		}
	}
	return rollupC
}

// hashScan is one hash being read with HSCAN.
type hashScan struct {
	key    string
	day    storage.Day
	part   string
	cursor uint64
	seen   map[string]struct{} // fields read, once the hash takes more than one call
	sums   *keySums

	// logs are the served logs read with the first page, and gen the key
	// of the hash's fold generation (served.go); genAt is the generation
	// then, and pages the HSCAN calls made.
	logs     []string
	gen      string
	genAt    int64
	pages    int
	restarts int
}

// keySums sums the counter fields of one hash by key.
type keySums struct {
	index  map[string]int
	keys   []string
	counts []storage.Counts
}

func (k *keySums) add(key string, c int, x uint64) {
	i, ok := k.index[key]
	if !ok {
		i = len(k.keys)
		k.index[key] = i
		k.keys = append(k.keys, key)
		k.counts = append(k.counts, storage.Counts{})
	}
	sum := &k.counts[i]
	*[...]*uint64{&sum.Served, &sum.Impressions, &sum.Clicks, &sum.Navigations, &sum.Visits}[c] += x
}

// addServed adds x served ads to a key in bytes, copied only when it is
// new (a served log's field).
func (k *keySums) addServed(key []byte, x uint64) {
	if i, ok := k.index[string(key)]; ok {
		k.counts[i].Served += x
		return
	}
	k.add(string(key), 0, x)
}

func (k *keySums) reset() {
	clear(k.index)
	k.keys, k.counts = k.keys[:0], k.counts[:0]
}

// scanHashes reads every field of the hashes with HSCAN, scanPipeline
// hashes per round trip, and calls fn with each field and value once, and
// end (when not nil) once a hash has been read whole, until fn or end
// returns false. It checks ctx between round trips.
//
// Served logs (served.go) are handed to log (which must not be nil then)
// before the hash's end. Those of a hash with a fold generation are read
// with its first page and its generation in one MULTI, a consistent view;
// when such a hash takes more than one page and its generation moved
// meanwhile, restart is called and it is read again from the start (at
// most maxRestarts times). Logs that are never folded (rollup c's) are
// read apart (finishHashes), about logBatchBytes a round trip, so that no
// reply holds them all.
func (s *Store) scanHashes(ctx context.Context, hashes []*hashScan, fn func(h *hashScan, field, value string) bool,
	log func(h *hashScan, v string) bool, restart func(h *hashScan), end func(h *hashScan) bool) error {
	queue := hashes
	for len(queue) > 0 {
		if err := s.begin(ctx); err != nil {
			return err
		}
		n := min(len(queue), scanPipeline)
		batch := queue[:n]
		pipe := s.client.TxPipeline() // every key is in {navad:ev}: one slot
		cmds := make([]*redis.ScanCmd, n)
		gens := make([]*redis.StringCmd, n)
		logs := make([]*redis.SliceCmd, n)
		for i, h := range batch {
			if h.pages == 0 && h.gen != "" {
				gens[i] = pipe.Get(ctx, h.gen)
				if len(h.logs) > 0 {
					logs[i] = pipe.MGet(ctx, h.logs...)
				}
			}
			cmds[i] = pipe.HScan(ctx, h.key, h.cursor, "", scanCount)
		}
		_, _ = pipe.Exec(ctx) // each command carries its own error
		for i := range batch {
			if err := cmds[i].Err(); err != nil {
				return s.fail(ctx, "scan", err)
			}
			if gens[i] != nil && gens[i].Err() != nil && !errors.Is(gens[i].Err(), redis.Nil) {
				return s.fail(ctx, "scan", gens[i].Err())
			}
			if logs[i] != nil && logs[i].Err() != nil {
				return s.fail(ctx, "scan", logs[i].Err())
			}
		}
		var again, checks []*hashScan
		for i, h := range batch {
			if gens[i] != nil {
				h.genAt, _ = gens[i].Int64() // none yet: 0
			}
			if logs[i] != nil {
				for _, v := range logs[i].Val() {
					if v, ok := v.(string); ok && v != "" && !log(h, v) {
						return nil
					}
				}
			}
			h.pages++
			kv, cursor := cmds[i].Val()
			if cursor != 0 && h.seen == nil {
				h.seen = make(map[string]struct{}, 2*len(kv))
			}
			for j := 0; j+1 < len(kv); j += 2 {
				if h.seen != nil {
					if _, dup := h.seen[kv[j]]; dup {
						continue
					}
					h.seen[kv[j]] = struct{}{}
				}
				if !fn(h, kv[j], kv[j+1]) {
					return nil
				}
			}
			h.cursor = cursor
			if cursor != 0 {
				again = append(again, h)
				continue
			}
			checks = append(checks, h)
		}
		if ok, err := s.finishHashes(ctx, checks, log, restart, end, &again); !ok || err != nil {
			return err
		}
		queue = append(again, queue[n:]...)
	}
	return nil
}

// maxRestarts bounds how often a hash is read again because a fold changed
// it while it was read.
const maxRestarts = 5

// logBatchBytes is about how many bytes of unfolded logs (rollup c's) one
// round trip reads: finishHashes takes their lengths first, then reads the
// logs that hold anything, in key order, as many a round trip as fit (at
// least one). lenPipeline bounds the lengths asked in one round trip.
var logBatchBytes = 4 << 20

const lenPipeline = 4096

// finishHashes ends the reads of hashes whose last page came: it checks
// the generation of those read in several pages (queueing them in again
// to be read from the start when a fold came between), reads the logs not
// read with the first page, and calls end. It reports false when a
// callback stopped the scan.
func (s *Store) finishHashes(ctx context.Context, done []*hashScan, log func(h *hashScan, v string) bool,
	restart func(h *hashScan), end func(h *hashScan) bool, again *[]*hashScan) (bool, error) {
	var multi []*hashScan
	for _, h := range done {
		h.seen = nil
		if h.pages > 1 && h.gen != "" {
			multi = append(multi, h)
		}
	}
	moved := make(map[*hashScan]bool)
	if len(multi) > 0 {
		pipe := s.client.Pipeline()
		now := make([]*redis.StringCmd, len(multi))
		for i, h := range multi {
			now[i] = pipe.Get(ctx, h.gen)
		}
		_, _ = pipe.Exec(ctx)
		for i, h := range multi {
			if err := now[i].Err(); err != nil && !errors.Is(err, redis.Nil) {
				return false, s.fail(ctx, "scan", err)
			}
			if g, _ := now[i].Int64(); g != h.genAt {
				if h.restarts++; h.restarts > maxRestarts {
					return false, campaigns.Errorf(campaigns.Unavailable, "scan %s: folded %d times while read; try again", h.key, h.restarts)
				}
				h.pages, h.cursor = 0, 0
				restart(h)
				*again = append(*again, h)
				moved[h] = true
			}
		}
	}
	// Unfolded logs: a day of rollup c has 144 a hash (24 hours of cSlots),
	// most of them empty for most advertisers. Their lengths for every hash
	// first, in a few round trips, then only the logs that hold anything.
	var unfolded []*hashScan
	for _, h := range done {
		if !moved[h] && h.gen == "" && len(h.logs) > 0 {
			unfolded = append(unfolded, h)
		}
	}
	lens, err := s.logLengths(ctx, unfolded)
	if err != nil {
		return false, err
	}
	for _, h := range done {
		if moved[h] {
			continue
		}
		if h.gen == "" && len(h.logs) > 0 {
			ok, err := s.readLogs(ctx, h, lens[h], log)
			if !ok || err != nil {
				return false, err
			}
		}
		if end != nil && !end(h) {
			return false, nil
		}
	}
	return true, nil
}

// logLengths returns the length of each unfolded log of hashes (by hash,
// in the order of its logs), lenPipeline a round trip.
func (s *Store) logLengths(ctx context.Context, hashes []*hashScan) (map[*hashScan][]int64, error) {
	lens := make(map[*hashScan][]int64, len(hashes))
	type ask struct {
		h   *hashScan
		i   int
		cmd *redis.IntCmd
	}
	var asks []ask
	flush := func() error {
		if len(asks) == 0 {
			return nil
		}
		if err := s.begin(ctx); err != nil {
			return err
		}
		pipe := s.client.Pipeline()
		for j := range asks {
			asks[j].cmd = pipe.StrLen(ctx, asks[j].h.logs[asks[j].i])
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return s.fail(ctx, "scan", err)
		}
		for _, a := range asks {
			lens[a.h][a.i] = a.cmd.Val()
		}
		asks = asks[:0]
		return nil
	}
	for _, h := range hashes {
		lens[h] = make([]int64, len(h.logs))
		for i := range h.logs {
			asks = append(asks, ask{h: h, i: i})
			if len(asks) == lenPipeline {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return lens, nil
}

// readLogs hands h's unfolded logs that had anything when their lengths
// (lens) were taken to log, in key order, about logBatchBytes a round
// trip. A log written to since is read as it is now; one that was empty
// then is left out, as if the report had read it first. It reports false
// when log stopped the scan.
func (s *Store) readLogs(ctx context.Context, h *hashScan, lens []int64, log func(h *hashScan, v string) bool) (bool, error) {
	var keys []string
	var size int64
	read := func() (bool, error) {
		if err := s.begin(ctx); err != nil {
			return false, err
		}
		vals, err := s.client.MGet(ctx, keys...).Result()
		if err != nil {
			return false, s.fail(ctx, "scan", err)
		}
		for _, v := range vals {
			if v, ok := v.(string); ok && v != "" && !log(h, v) {
				return false, nil
			}
		}
		keys, size = keys[:0], 0
		return true, nil
	}
	for i, k := range h.logs {
		if lens[i] == 0 {
			continue
		}
		keys = append(keys, k)
		if size += lens[i]; size >= int64(logBatchBytes) {
			if ok, err := read(); !ok || err != nil {
				return ok, err
			}
		}
	}
	if len(keys) > 0 {
		return read()
	}
	return true, nil
}

// Aggregates reads the smallest rollup that holds q's dimensions and
// filters, one hash per day and advertiser (publisher in rollup p): the
// filter's advertisers (publishers) when q names them, otherwise those the
// day's set lists. It sums each key's counter fields per hash and hands out
// one row per key; other filters are checked row by row. See
// storage.Events.
func (s *Store) Aggregates(ctx context.Context, q *storage.AggregateQuery, fn func(*storage.Aggregate) bool) error {
	const op = "aggregates"
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := q.Check(); err != nil {
		return err
	}
	if q.To < q.From || q.Advertisers != nil && len(q.Advertisers) == 0 ||
		q.Campaigns != nil && len(q.Campaigns) == 0 || q.Publishers != nil && len(q.Publishers) == 0 {
		return nil
	}
	r := plan(q)
	filter := q.Advertisers
	if r.byPublisher {
		filter = q.Publishers
	}
	var hashes []*hashScan
	if filter != nil {
		parts := slices.Compact(slices.Sorted(slices.Values(filter)))
		for d := range q.Days() {
			for _, p := range parts {
				hashes = append(hashes, r.scan(d, p))
			}
		}
	} else {
		pipe := s.client.Pipeline()
		cmds := make([]*redis.StringSliceCmd, 0, int(q.To)-int(q.From)+1)
		for d := range q.Days() {
			cmds = append(cmds, pipe.SMembers(ctx, r.partsKey(d)))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return s.fail(ctx, op, err)
		}
		for i, cmd := range cmds {
			d := q.From + storage.Day(i)
			parts := cmd.Val()
			slices.Sort(parts)
			for _, p := range parts {
				hashes = append(hashes, r.scan(d, p))
			}
		}
	}
	keys := q.Filter()
	var (
		a     storage.Aggregate
		bad   error
		n     int
		spare []*keySums // sums of hashes handed out, for reuse
	)
	// sumsOf returns h's sums, taking them from spare when it has none.
	sumsOf := func(h *hashScan) *keySums {
		if h.sums == nil {
			if k := len(spare); k > 0 {
				h.sums, spare = spare[k-1], spare[:k-1]
			} else {
				h.sums = &keySums{index: make(map[string]int)}
			}
		}
		return h.sums
	}
	add := func(h *hashScan, field, value string) bool {
		key, c, ok := splitField(field)
		if !ok {
			bad = fmt.Errorf("%s: %s field %q: %w", op, h.key, field, errCorruptAgg)
			return false
		}
		x, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			bad = fmt.Errorf("%s: %s field %q: %w", op, h.key, field, errCorruptAgg)
			return false
		}
		sumsOf(h).add(key, c, x)
		return true
	}
	log := func(h *hashScan, v string) bool {
		sums := sumsOf(h)
		if err := readLog(v, func(f []byte, n uint64) { sums.addServed(f, n) }); err != nil {
			bad = fmt.Errorf("%s: %s: %w", op, h.key, err)
			return false
		}
		return true
	}
	restart := func(h *hashScan) {
		if h.sums != nil {
			h.sums.reset()
		}
	}
	end := func(h *hashScan) bool {
		if h.sums == nil {
			return true
		}
		defer func() {
			h.sums.reset()
			spare, h.sums = append(spare, h.sums), nil
		}()
		for i, key := range h.sums.keys {
			if err := r.decode(h.day, h.part, key, &a.AggKey); err != nil {
				bad = fmt.Errorf("%s: %s field %q: %w", op, h.key, key, err)
				return false
			}
			if !keys.Admits(&a.AggKey) {
				continue
			}
			if n++; n%1024 == 0 && ctx.Err() != nil {
				bad = fmt.Errorf("%s: %w", op, unavailableErr(ctx.Err()))
				return false
			}
			a.Counts = h.sums.counts[i]
			if !fn(&a) {
				return false
			}
		}
		return true
	}
	if err := s.scanHashes(ctx, hashes, add, log, restart, end); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return bad
}

// RawEvents calls fn for every raw event, one UTC day's hash after another;
// see storage.Events.
func (s *Store) RawEvents(ctx context.Context, fn func(*storage.Event) bool) error {
	const op = "raw events"
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	days, err := s.client.SMembers(ctx, keyRawDays).Result()
	if err != nil {
		return s.fail(ctx, op, err)
	}
	slices.Sort(days)
	hashes := make([]*hashScan, len(days))
	for i, d := range days {
		hashes[i] = &hashScan{key: rawKey(d)}
	}
	var bad error
	err = s.scanHashes(ctx, hashes, func(_ *hashScan, field, value string) bool {
		e, err := decodeEvent(field, value)
		if err != nil {
			bad = fmt.Errorf("%s: %w", op, err)
			return false
		}
		return fn(e)
	}, nil, nil, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return bad
}

// PurgeEvents deletes the raw hashes of UTC days before before's, one
// script per day (UNLINK frees their memory in the background); served
// batch IDs expire by themselves. See storage.Events.
func (s *Store) PurgeEvents(ctx context.Context, before time.Time) (int, error) {
	const op = "purge events"
	if err := s.begin(ctx); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	days, err := s.client.SMembers(ctx, keyRawDays).Result()
	if err != nil {
		return 0, s.fail(ctx, op, err)
	}
	cutoff := utcDay(before)
	slices.Sort(days)
	total := 0
	for _, d := range days {
		if d >= cutoff {
			break
		}
		if err := s.begin(ctx); err != nil {
			return total, fmt.Errorf("%s: %w", op, err)
		}
		n, err := scriptPurgeDay.Run(commitCtx(ctx), s.client, []string{rawKey(d), keyRawDays}, d).Int()
		if err != nil {
			return total, s.fail(ctx, op, err)
		}
		total += n
	}
	return total, nil
}

// TrackingSecret stores candidate unless a secret is kept, and returns the
// kept one, in one script; see storage.Events.
func (s *Store) TrackingSecret(ctx context.Context, candidate []byte) ([]byte, error) {
	const op = "tracking secret"
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if len(candidate) == 0 {
		return nil, campaigns.Errorf(campaigns.Invalid, "empty tracking secret")
	}
	v, err := scriptSecret.Run(commitCtx(ctx), s.client, []string{keySecret}, candidate).Text()
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return []byte(v), nil
}

// PurgeDetail deletes rollup c's hashes and served logs of the business
// days of detail_days before before; see storage.Events. For each day it
// unlinks the hash and the logs of every advertiser of the day (UNLINK
// frees their memory in the background; a few advertisers a call, so that
// Redis is never held for long), then takes the day out of detail_days and
// reads its advertisers again in one transaction, and unlinks once more:
// what a late write added before the day left the set goes then, and a
// write after it puts the day back for the next call. A purge cut short
// leaves the day in the set, to be purged again.
func (s *Store) PurgeDetail(ctx context.Context, before storage.Day) (int, error) {
	const op = "purge detail"
	if err := s.begin(ctx); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	members, err := s.client.SMembers(ctx, keyDetailDays).Result()
	if err != nil {
		return 0, s.fail(ctx, op, err)
	}
	purged := 0
	for _, m := range members {
		d, err := storage.ParseDay(m)
		if err != nil || d >= before {
			continue
		}
		advs, err := s.client.SMembers(ctx, advsKey(d)).Result()
		if err != nil {
			return purged, s.fail(ctx, op, err)
		}
		if err := s.unlinkDetail(ctx, d, advs); err != nil {
			return purged, s.fail(ctx, op, err)
		}
		var again *redis.StringSliceCmd
		_, err = s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.SRem(ctx, keyDetailDays, m)
			again = p.SMembers(ctx, advsKey(d))
			return nil
		})
		if err == nil {
			if err = s.unlinkDetail(ctx, d, again.Val()); err != nil {
				// Back in the set, so that the next call finishes it.
				s.client.SAdd(context.WithoutCancel(ctx), keyDetailDays, m)
			}
		}
		if err != nil {
			return purged, s.fail(ctx, op, err)
		}
		purged++
	}
	return purged, nil
}

// unlinkDetail unlinks rollup c's hash and served logs of day d of each
// of advs, a few advertisers a call.
func (s *Store) unlinkDetail(ctx context.Context, d storage.Day, advs []string) error {
	const perCall = 8 // advertisers: 8 × 145 keys
	for len(advs) > 0 {
		n := min(len(advs), perCall)
		var keys []string
		for _, a := range advs[:n] {
			keys = append(keys, rollupC.key(d, a))
			keys = append(keys, rollupC.logKeys(d, a)...)
		}
		if err := s.client.Unlink(ctx, keys...).Err(); err != nil {
			return err
		}
		advs = advs[n:]
	}
	return nil
}
