package boltstore

// Events in the embedded store.
//
// # Layout
//
// Raw events double as the record of which tokens were counted: their key
// is the dedupe key, and it starts with the second the token was issued.
// Purging old events is then deleting a key range, and since most events
// come minutes after their ad was served, new keys land near the end of the
// tree: a commit of hundreds of events dirties a few pages, not hundreds.
//
//	events      issue Unix second (4) kind (1) token ID (16) → encoded event
//	batches     applied UTC day (4) batch ID              → empty
//	meta        "tracking_secret"                         → the signing secret
//
// Aggregates are kept in four rollups of the same counters, each keyed by
// the day first so that a date range is a key range, and each able to
// answer the reports that need no more than its dimensions:
//
//	agg_a   day adv NUL cmp                                     day, advertiser, campaign
//	agg_p   day pub NUL adv NUL cmp                             + publisher (publisher first)
//	agg_h   day adv NUL cmp NUL pub NUL hour                    + hour
//	agg_c   day adv NUL cmp NUL pub NUL hour store NUL cell(8)  everything
//
// Each value is five uvarints: served, impressions, clicks, navigations,
// visits. Days are storage.Day plus 2³¹ as a big-endian uint32, so that
// byte order is date order. A report reads the smallest rollup that holds
// the dimensions it groups and filters by: a month of 10,000 campaigns by
// day and campaign is 300,000 rows of agg_a however many stores, cells,
// hours and publishers the events spread over. Writing an event costs four
// counter updates instead of one; reading a report costs the rows of its
// own granularity instead of the finest.
//
// # Served counts
//
// AddServed (a flush of tracking's served counts, once a second) updates
// no rollup in place. At national scale nearly every ad served is a key
// agg_c has never seen, and thousands of random inserts a second each
// dirtied a page of the B+tree and grew the file by hundreds of kilobytes
// a flush; the coarse rollups' keys repeat from flush to flush, but a
// flush still touched some 10,000 of them at random places, a dirty page
// each. Instead each flush appends, in its transaction, one record per
// rollup, day and hour of its rows, and a compaction later merges the
// records of an hour: agg_c's into a run, the coarse rollups' back into
// their B+trees (served.go):
//
//	served_log    day hour(1) seq(8) adv NUL block(4) → served block of agg_c keys
//	served_run    day hour(1) seq(8) adv NUL block(4) → served block of agg_c keys
//	served_log_a  day hour(1) seq(8) adv NUL block(4) → served block of agg_a keys
//	served_log_p  day hour(1) seq(8) pub NUL block(4) → served block of agg_p keys
//	served_log_h  day hour(1) seq(8) adv NUL block(4) → served block of agg_h keys
//	meta          "served_seq"                        → the last seq (8)
//
// seq numbers the flushes' records (one number for a flush's records of
// one hour, in every log) and the runs in the order they were written, so
// a flush's record lands at the end of its hour, which is the end of the
// tree. A served block is a version byte, the Unix second it was written,
// the number of entries, and that many entries of its rollup's keys
// without the day, sorted and distinct, each as the length of the prefix
// it shares with the previous key, the rest of the key (length first) and
// the served count, all uvarints: 25 to 30 bytes an entry of agg_c at
// national scale, a few of the coarse rollups. A record or run is split
// into blocks of one lead ID each (the first part of the keys: the
// advertiser, the publisher in agg_p), of about 1,000 bytes: so that a
// report of some advertisers seeks to their blocks in each record and run,
// as it seeks to their keys in the B+trees, and so that blocks fill pages
// (bbolt puts a larger value on contiguous pages of its own, which a
// fragmented file finds mostly by growing).
//
// An hour's agg_c log is merged when it reaches about 1 MB, and so are its
// coarse logs together, each on its own (by AddServed, after its commit);
// both are merged when the hour is over: a later hour has records and it
// has had none for a minute, or it has had none for 15 minutes (by the
// Store's background loop). A merge takes about 1 MB of the oldest
// records of the logs it merges, in one write transaction: it sums
// agg_c's entries into one run, or adds each coarse rollup's summed
// entries into its B+tree in key order, and deletes the records. Runs
// are not merged again: at national scale an hour has some hundred runs
// whose keys rarely repeat, and a quiet hour has one run, or a few if
// stragglers come late; PurgeDetail deletes a day's runs, records and
// agg_c keys once the day is past the detail retention. The coarse
// rollups' keys do repeat, so a merge of some ten flushes updates not many
// more keys of their B+trees than one flush did in place, and the coarse
// logs stay short (only hours not merged yet have records).
//
// A report reads the B+tree of the rollup it is planned onto (Record's
// counts, and the served counts merged, or written before the logs), then
// the blocks of that rollup's log on the days asked, and for agg_c its
// runs (only the blocks of its advertisers, or in agg_p publishers, when
// it names some), filtering each entry; one key may come in several rows,
// which the contract allows. No merge runs while a report reads
// (Store.compactMu), so that no count moves between the report's read
// transactions, from a log into a run or a B+tree.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/record"
)

var _ storage.Events = (*Store)(nil)

var (
	bucketEvents  = []byte("events")
	bucketBatches = []byte("batches")
	bucketAggA    = []byte("agg_a")
	bucketAggP    = []byte("agg_p")
	bucketAggH    = []byte("agg_h")
	bucketAggC    = []byte("agg_c")

	eventBuckets = [][]byte{bucketEvents, bucketBatches, bucketAggA, bucketAggP, bucketAggH, bucketAggC,
		bucketServedLog, bucketServedRun, bucketServedLogA, bucketServedLogP, bucketServedLogH}

	keyTrackingSecret = []byte("tracking_secret")
)

// rollup is one of the aggregate tables of the layout above.
type rollup struct {
	bucket []byte
	log    []byte       // AddServed's log of its served counts
	dims   storage.Dims // what it can answer
	kind   rollupKind
}

type rollupKind uint8

const (
	rollupA rollupKind = iota
	rollupP
	rollupH
	rollupC
)

// rollups are in the order the planner tries them, smallest first, which
// is the order of their kinds: rollups[k].kind == k.
var rollups = [...]rollup{
	{bucketAggA, bucketServedLogA, storage.DimsOf(storage.DimDay, storage.DimAdvertiser, storage.DimCampaign), rollupA},
	{bucketAggP, bucketServedLogP, storage.DimsOf(storage.DimDay, storage.DimPublisher, storage.DimAdvertiser, storage.DimCampaign), rollupP},
	{bucketAggH, bucketServedLogH, storage.DimsOf(storage.DimDay, storage.DimHour, storage.DimAdvertiser, storage.DimCampaign, storage.DimPublisher), rollupH},
	{bucketAggC, bucketServedLog, storage.AllDims, rollupC},
}

const (
	eventVersion = 1
	// aggChunk is how many aggregate rows a report reads per read
	// transaction; see scan for why reads are chunked.
	aggChunk = 4096
	// maxAdIDLen bounds the ad ID kept with an event.
	maxAdIDLen = 256
	// batchDays is how many UTC days (today and the days before) a served
	// batch ID is remembered.
	batchDays = 2
)

func encodeDay(dst []byte, d storage.Day) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(int64(d)+1<<31))
}

// encodeDayAfter returns the first key after those of day d: nil, no
// bound, after the last Day, whose d+1 would wrap round to the first.
func encodeDayAfter(d storage.Day) []byte {
	if d == math.MaxInt32 {
		return nil
	}
	return encodeDay(nil, d+1)
}

func decodeDay(b []byte) storage.Day {
	return storage.Day(int64(binary.BigEndian.Uint32(b)) - 1<<31)
}

// utcDay is the number of the UTC day of t, for batch keys.
func utcDay(t time.Time) uint32 {
	return uint32(t.Unix() / 86400)
}

func rawKey(e *storage.Event) []byte {
	k := make([]byte, 0, 4+1+len(e.Token))
	k = binary.BigEndian.AppendUint32(k, uint32(e.Issued.Unix()))
	k = append(k, byte(e.Kind))
	return append(k, e.Token[:]...)
}

// rollupKey returns the key of k in rollup r.
func rollupKey(r rollupKind, k *storage.AggKey) []byte {
	return appendRollupBody(encodeDay(make([]byte, 0, 4+rollupBodyLen(r, k)), k.Day), r, k)
}

// rollupBodyLen returns the length of k's key in rollup r without its day
// (or a little more).
func rollupBodyLen(r rollupKind, k *storage.AggKey) int {
	n := len(k.AdvertiserID) + len(k.CampaignID) + 2
	if r != rollupA {
		n += len(k.PublisherID) + 2
	}
	if r == rollupC {
		n += len(k.StoreID) + 1 + 8
	}
	return n
}

// appendRollupBody appends the key of k in rollup r without its day.
func appendRollupBody(b []byte, r rollupKind, k *storage.AggKey) []byte {
	switch r {
	case rollupA:
		b = append(append(append(b, k.AdvertiserID...), sep), k.CampaignID...)
	case rollupP:
		b = append(append(append(append(append(b, k.PublisherID...), sep), k.AdvertiserID...), sep), k.CampaignID...)
	case rollupH, rollupC:
		b = append(append(append(append(append(b, k.AdvertiserID...), sep), k.CampaignID...), sep), k.PublisherID...)
		b = append(b, sep, k.Hour)
		if r == rollupC {
			b = append(append(b, k.StoreID...), sep)
			b = binary.BigEndian.AppendUint64(b, k.Cell)
		}
	}
	return b
}

// keyDecoder turns rollup keys back into AggKeys, sharing the strings that
// repeat across the rows of one report.
type keyDecoder struct {
	record.Interner
}

func (d *keyDecoder) decode(r rollupKind, b []byte, k *storage.AggKey) error {
	*k = storage.AggKey{}
	if len(b) < 4 {
		return errCorrupt
	}
	k.Day = decodeDay(b)
	rest := b[4:]
	next := func() []byte { // the bytes up to the next sep
		i := bytes.IndexByte(rest, sep)
		if i < 0 {
			p := rest
			rest = nil
			return p
		}
		p := rest[:i]
		rest = rest[i+1:]
		return p
	}
	switch r {
	case rollupA:
		k.AdvertiserID = record.Intern(&d.Interner, next())
		k.CampaignID = record.Intern(&d.Interner, rest)
		if len(k.CampaignID) == 0 {
			return errCorrupt
		}
	case rollupP:
		k.PublisherID = record.Intern(&d.Interner, next())
		k.AdvertiserID = record.Intern(&d.Interner, next())
		k.CampaignID = record.Intern(&d.Interner, rest)
		if len(k.CampaignID) == 0 {
			return errCorrupt
		}
	case rollupH, rollupC:
		k.AdvertiserID = record.Intern(&d.Interner, next())
		k.CampaignID = record.Intern(&d.Interner, next())
		k.PublisherID = record.Intern(&d.Interner, next())
		if len(rest) < 1 {
			return errCorrupt
		}
		k.Hour, rest = rest[0], rest[1:]
		if r == rollupC {
			k.StoreID = record.Intern(&d.Interner, next())
			if len(rest) != 8 {
				return errCorrupt
			}
			k.Cell = binary.BigEndian.Uint64(rest)
		} else if len(rest) != 0 {
			return errCorrupt
		}
	}
	return nil
}

func encodeCounts(c *storage.Counts) []byte {
	return appendCounts(make([]byte, 0, 5*3), c)
}

// appendCounts appends encodeCounts' encoding of c to b.
func appendCounts(b []byte, c *storage.Counts) []byte {
	for _, x := range [...]uint64{c.Served, c.Impressions, c.Clicks, c.Navigations, c.Visits} {
		b = binary.AppendUvarint(b, x)
	}
	return b
}

func decodeCounts(v []byte, c *storage.Counts) error {
	for _, p := range [...]*uint64{&c.Served, &c.Impressions, &c.Clicks, &c.Navigations, &c.Visits} {
		x, n := binary.Uvarint(v)
		if n <= 0 {
			return errCorrupt
		}
		*p, v = x, v[n:]
	}
	if len(v) != 0 {
		return errCorrupt
	}
	return nil
}

// addCounts adds add to the counters under key in b.
func addCounts(b *bolt.Bucket, key []byte, add *storage.Counts) error {
	var c storage.Counts
	if v := b.Get(key); v != nil {
		if err := decodeCounts(v, &c); err != nil {
			return fmt.Errorf("counters %q: %w", key, err)
		}
	}
	c.Add(*add)
	return b.Put(key, encodeCounts(&c))
}

func encodeEvent(e *storage.Event) []byte {
	b := make([]byte, 0, 64+len(e.AdID)+len(e.Key.AdvertiserID)+len(e.Key.CampaignID)+len(e.Key.PublisherID)+len(e.Key.StoreID))
	b = append(b, eventVersion)
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

func decodeEvent(k, v []byte) (*storage.Event, error) {
	if len(k) != 4+1+len(storage.TokenID{}) || len(v) < 1 || v[0] != eventVersion {
		return nil, fmt.Errorf("event %x: %w", k, errCorrupt)
	}
	e := &storage.Event{Kind: storage.Kind(k[4])}
	copy(e.Token[:], k[5:])
	v = v[1:]
	var ints [3]int64
	for i := range ints {
		x, n := binary.Varint(v)
		if n <= 0 {
			return nil, fmt.Errorf("event %x: %w", k, errCorrupt)
		}
		ints[i], v = x, v[n:]
	}
	e.Issued, e.At, e.Key.Day = time.Unix(ints[0], 0).UTC(), time.Unix(ints[1], 0).UTC(), storage.Day(ints[2])
	r := record.Reader[[]byte]{B: v}
	e.Key.Hour = r.Byte()
	if r.Err == nil && len(v)-r.Off >= 8 {
		e.Key.Cell = binary.BigEndian.Uint64(v[r.Off:])
		r.Off += 8
	} else {
		r.Fail()
	}
	for _, p := range [...]*string{&e.AdID, &e.Key.AdvertiserID, &e.Key.CampaignID, &e.Key.PublisherID, &e.Key.StoreID} {
		*p = string(r.Str())
	}
	if r.Err == nil && r.Off != len(v) {
		r.Fail()
	}
	if r.Err != nil {
		return nil, fmt.Errorf("event %x: %w", k, r.Err)
	}
	return e, nil
}

// checkAggKey guards the file against keys that would blur the layout.
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

// Record counts e once per (Kind, Token); see storage.Events. Concurrent
// calls share one transaction and one fsync (see groupCommit): a lone event
// commits at once, and a busy server commits hundreds of events per fsync.
// A token already counted is answered from a read transaction, without
// joining a write.
func (s *Store) Record(ctx context.Context, e *storage.Event) (bool, error) {
	if !e.Kind.Valid() {
		return false, fmt.Errorf("record event: invalid kind %d", e.Kind)
	}
	if len(e.AdID) > maxAdIDLen {
		return false, fmt.Errorf("record event: ad id of %d bytes is too long", len(e.AdID))
	}
	if err := checkAggKey(&e.Key); err != nil {
		return false, fmt.Errorf("record event: %w", err)
	}
	raw := rawKey(e)
	if err := s.begin(ctx); err != nil {
		return false, fmt.Errorf("record event: %w", err)
	}
	defer s.end()
	seen := false
	if err := s.db.View(func(tx *bolt.Tx) error {
		seen = tx.Bucket(bucketEvents).Get(raw) != nil
		return nil
	}); err != nil {
		return false, fmt.Errorf("record event: %w", err)
	}
	if seen {
		return false, nil
	}
	val := encodeEvent(e)
	keys := make([][]byte, len(rollups))
	for i, r := range rollups {
		keys[i] = rollupKey(r.kind, &e.Key)
	}
	var add storage.Counts
	add.AddKind(e.Kind, 1)
	counted := false
	// apply may run more than once, each time in a fresh transaction; only
	// the run in the committed one decides counted.
	err := s.events.do(s.db, &groupWrite{apply: func(tx *bolt.Tx) error {
		counted = false
		events := tx.Bucket(bucketEvents)
		if events.Get(raw) != nil {
			return nil
		}
		if err := events.Put(raw, val); err != nil {
			return err
		}
		for i, r := range rollups {
			if err := addCounts(tx.Bucket(r.bucket), keys[i], &add); err != nil {
				return err
			}
		}
		counted = true
		return nil
	}})
	if err != nil {
		return false, fmt.Errorf("record event: %w", err)
	}
	return counted, nil
}

// AddServed adds served counts in one transaction; see storage.Events. A
// batch ID is remembered for the UTC day it was applied and the day after.
// The finest counts go to the served log (see the layout); when that fills
// an hour's log to the compaction size, AddServed merges it after the
// commit, and an error of the merge is told to WithOnError, not returned.
func (s *Store) AddServed(ctx context.Context, batchID string, rows []storage.ServedCount) error {
	if err := checkKey("batch id", batchID); err != nil {
		return fmt.Errorf("add served: %w", err)
	}
	for i := range rows {
		if err := checkAggKey(&rows[i].Key); err != nil {
			return fmt.Errorf("add served: row %d: %w", i+1, err)
		}
	}
	// Sum rows that share a rollup key before the transaction, sorted, a
	// group per day and hour: the records of the served logs. Their
	// buffers go back to the pool once the merges that the flush makes due
	// are done with the groups' keys.
	sc := flushScratches.Get().(*flushScratch)
	defer flushScratches.Put(sc)
	groups := groupServedAll(rows, sc)
	now := s.now()
	today := utcDay(now)
	var due []dueGroup
	err := s.update(ctx, func(tx *bolt.Tx) error {
		due = nil
		batches := tx.Bucket(bucketBatches)
		for d := range uint32(batchDays) {
			if batches.Get(batchKey(today-d, batchID)) != nil {
				return nil // applied already
			}
		}
		if err := batches.Put(batchKey(today, batchID), empty); err != nil {
			return err
		}
		var err error
		sc.blocks = sc.blocks[:0]
		due, err = s.appendServedLog(tx, now.Unix(), &groups, &sc.blocks)
		return err
	})
	if err != nil {
		return fmt.Errorf("add served: %w", err)
	}
	s.compactFilled(ctx, due)
	return nil
}

func batchKey(day uint32, id string) []byte {
	return append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(id)), day), id...)
}

// keyRange is the keys k with lo <= k < hi.
type keyRange struct{ lo, hi []byte }

// prefixRange is the keys that start with p.
func prefixRange(p []byte) keyRange {
	hi := bytes.Clone(p)
	for i := len(hi) - 1; i >= 0; i-- {
		if hi[i] < 0xff {
			hi[i]++
			return keyRange{p, hi[:i+1]}
		}
	}
	return keyRange{p, nil} // all 0xff: no upper bound
}

// plan picks the rollup for q and the key ranges to read in it.
func plan(q *storage.AggregateQuery) (rollup, []keyRange) {
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
	r := rollups[len(rollups)-1]
	for _, c := range rollups {
		if need.Within(c.dims) {
			r = c
			break
		}
	}
	advs, pubs := sortedSet(q.Advertisers), sortedSet(q.Publishers)
	var ranges []keyRange
	switch {
	case r.kind == rollupP && pubs != nil:
		for d := range q.Days() {
			for _, p := range pubs {
				if advs == nil {
					ranges = append(ranges, prefixRange(dayPrefix(d, p)))
					continue
				}
				for _, a := range advs {
					ranges = append(ranges, prefixRange(dayPrefix(d, p, a)))
				}
			}
		}
	case r.kind != rollupP && advs != nil:
		for d := range q.Days() {
			for _, a := range advs {
				ranges = append(ranges, prefixRange(dayPrefix(d, a)))
			}
		}
	default:
		ranges = []keyRange{{encodeDay(nil, q.From), encodeDayAfter(q.To)}}
	}
	return r, ranges
}

// dayPrefix returns the key prefix of day d followed by parts, each ended
// by sep.
func dayPrefix(d storage.Day, parts ...string) []byte {
	b := encodeDay(nil, d)
	for _, p := range parts {
		b = append(append(b, p...), sep)
	}
	return b
}

// sortedSet returns the distinct values of s in order, nil for nil.
func sortedSet(s []string) []string {
	if s == nil {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// Aggregates reads the smallest rollup that holds q's dimensions and
// filters (see the layout), in chunks of read transactions like Stores; see
// storage.Events. It then reads the served counts of that rollup's log
// (and of agg_c's runs) on its days, entry by entry. A filter on
// advertisers (or, in the publisher-first rollup, publishers) seeks
// straight to their keys and blocks; the other filters are checked row by
// row.
func (s *Store) Aggregates(ctx context.Context, q *storage.AggregateQuery, fn func(*storage.Aggregate) bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("aggregates: %w", err)
	}
	if err := q.Check(); err != nil {
		return err
	}
	if q.To < q.From || q.Advertisers != nil && len(q.Advertisers) == 0 ||
		q.Campaigns != nil && len(q.Campaigns) == 0 || q.Publishers != nil && len(q.Publishers) == 0 {
		return nil
	}
	r, ranges := plan(q)
	filter := q.Filter()
	var dec keyDecoder
	items := make([]storage.Aggregate, 0, aggChunk)
	// emit hands items to fn; stop is true when fn or ctx says so.
	emit := func(items []storage.Aggregate) (stop bool, err error) {
		for i := range items {
			if i%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return true, fmt.Errorf("aggregates: %w", err)
				}
			}
			if !fn(&items[i]) {
				return true, nil
			}
		}
		return false, nil
	}
	// The served counts of the rollup are in its B+tree and in its log
	// (and agg_c's in runs); no compaction may move them between the
	// chunks, from the log into the B+tree or a run. One waits for the
	// report.
	s.compactMu.RLock()
	defer s.compactMu.RUnlock()
	ri := 0
	var after []byte // the last key read in ranges[ri]; nil before the first
	for ri < len(ranges) {
		items = items[:0]
		if err := s.begin(ctx); err != nil {
			return fmt.Errorf("aggregates: %w", err)
		}
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(r.bucket).Cursor()
			for ; ri < len(ranges); ri, after = ri+1, nil {
				rg := ranges[ri]
				var k, v []byte
				if after != nil {
					k, v = c.Seek(after)
					if bytes.Equal(k, after) {
						k, v = c.Next()
					}
				} else {
					k, v = c.Seek(rg.lo)
				}
				for ; k != nil && (rg.hi == nil || bytes.Compare(k, rg.hi) < 0); k, v = c.Next() {
					if len(items) == aggChunk {
						// Resume after the last key read, in the next
						// transaction; copied now, while its page is mapped.
						after = bytes.Clone(after)
						return nil
					}
					after = k
					var a storage.Aggregate
					if err := dec.decode(r.kind, k, &a.AggKey); err != nil {
						return fmt.Errorf("aggregate key %q: %w", k, err)
					}
					if !filter.Admits(&a.AggKey) {
						continue
					}
					if err := decodeCounts(v, &a.Counts); err != nil {
						return fmt.Errorf("aggregate %q: %w", k, err)
					}
					items = append(items, a)
				}
			}
			return nil
		})
		s.end()
		if err != nil {
			return fmt.Errorf("aggregates: %w", err)
		}
		if stop, err := emit(items); stop || err != nil {
			return err
		}
	}
	// Then the served counts that are not in the B+tree (see the layout),
	// only the blocks of the advertisers (publishers, in agg_p) asked
	// for when there are some.
	var sc servedCursor
	buckets, leads := [][]byte{r.log}, sortedSet(q.Advertisers)
	switch r.kind {
	case rollupC:
		buckets = servedBuckets[:]
	case rollupP:
		leads = sortedSet(q.Publishers)
	}
	for done := false; !done; {
		items = items[:0]
		if err := s.begin(ctx); err != nil {
			return fmt.Errorf("aggregates: %w", err)
		}
		err := s.db.View(func(tx *bolt.Tx) error {
			var err error
			items, done, err = readServed(tx, &sc, buckets, r.kind, q.From, q.To, leads, &filter, &dec, items)
			return err
		})
		s.end()
		if err != nil {
			return fmt.Errorf("aggregates: %w", err)
		}
		if stop, err := emit(items); stop || err != nil {
			return err
		}
	}
	return nil
}

// RawEvents calls fn for every raw event, in key order (issue day, kind,
// token), reading in chunks like Stores; see storage.Events.
func (s *Store) RawEvents(ctx context.Context, fn func(*storage.Event) bool) error {
	if err := scan(ctx, s, bucketEvents, nil, decodeEvent, fn); err != nil {
		return fmt.Errorf("raw events: %w", err)
	}
	return nil
}

// PurgeEvents deletes raw events of tokens issued on UTC days before
// before's, a chunk per write transaction so that writers of new events
// are not held up for long, and forgets served batch IDs applied before
// yesterday (UTC); see storage.Events.
func (s *Store) PurgeEvents(ctx context.Context, before time.Time) (int, error) {
	var n int
	// Raw events are keyed by unsigned Unix seconds: a cutoff before 1970
	// (a retention of a century) would wrap round to the next one and
	// delete them all. No token was issued before 1970.
	if before.Unix() > 0 {
		cutoff := binary.BigEndian.AppendUint32(nil, utcDay(before)*86400) // the UTC day's first second
		var err error
		n, err = s.deleteBefore(ctx, bucketEvents, cutoff, nil)
		if err != nil {
			return n, fmt.Errorf("purge events: %w", err)
		}
	}
	oldBatches := binary.BigEndian.AppendUint32(nil, utcDay(s.now())-batchDays+1)
	if _, err := s.deleteBefore(ctx, bucketBatches, oldBatches, nil); err != nil {
		return n, fmt.Errorf("purge events: %w", err)
	}
	return n, nil
}

// deleteBefore deletes the keys of bucket that sort before cutoff, a chunk
// per write transaction so that other writers are not held up for long,
// calling deleted (when not nil) with each, and returns how many it
// deleted.
func (s *Store) deleteBefore(ctx context.Context, bucket, cutoff []byte, deleted func(k []byte)) (int, error) {
	total := 0
	for {
		n := 0
		err := s.update(ctx, func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			var doomed [][]byte
			c := b.Cursor()
			for k, _ := c.First(); k != nil && bytes.Compare(k, cutoff) < 0 && len(doomed) < 10000; k, _ = c.Next() {
				doomed = append(doomed, bytes.Clone(k))
			}
			for _, k := range doomed {
				if err := b.Delete(k); err != nil {
					return err
				}
				if deleted != nil {
					deleted(k)
				}
			}
			n = len(doomed)
			return nil
		})
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// TrackingSecret returns the stored signing secret, storing candidate first
// when there is none; see storage.Events.
func (s *Store) TrackingSecret(ctx context.Context, candidate []byte) ([]byte, error) {
	if len(candidate) == 0 {
		return nil, campaigns.Errorf(campaigns.Invalid, "empty tracking secret")
	}
	var secret []byte
	err := s.update(ctx, func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyTrackingSecret); v != nil {
			secret = bytes.Clone(v)
			return nil
		}
		secret = bytes.Clone(candidate)
		return meta.Put(keyTrackingSecret, secret)
	})
	if err != nil {
		return nil, fmt.Errorf("tracking secret: %w", err)
	}
	return secret, nil
}

// PurgeDetail deletes agg_c's keys, its served logs' records and its runs
// of business days before before, a chunk per write transaction, and
// reports how many days it deleted any of; see storage.Events. It does not
// hold compactMu, which would hold up reports for all of a national day's
// purge: a compaction moves agg_c records from the log into a run in one
// write transaction, and the log is purged before the runs, so whatever a
// compaction moves meanwhile is in a run when the runs are purged.
func (s *Store) PurgeDetail(ctx context.Context, before storage.Day) (int, error) {
	cutoff := encodeDay(nil, before)
	days := make(map[storage.Day]struct{})
	for _, bucket := range [][]byte{bucketAggC, bucketServedLog, bucketServedRun} { // the log before the runs
		_, err := s.deleteBefore(ctx, bucket, cutoff, func(k []byte) { days[decodeDay(k)] = struct{}{} })
		if err != nil {
			return len(days), fmt.Errorf("purge detail: %w", err)
		}
	}
	return len(days), nil
}
