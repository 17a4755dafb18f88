package boltstore

// Served counts kept as logs: the finest rollup's merged into runs, the
// coarse rollups' folded into their B+trees; see "Served counts" in the
// layout comment of events.go.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/record"
)

var (
	bucketServedLog  = []byte("served_log")
	bucketServedRun  = []byte("served_run")
	bucketServedLogA = []byte("served_log_a")
	bucketServedLogP = []byte("served_log_p")
	bucketServedLogH = []byte("served_log_h")

	keyServedSeq = []byte("served_seq")

	// servedBuckets are read by reports of agg_c in this order.
	servedBuckets = [...][]byte{bucketServedLog, bucketServedRun}
)

const (
	servedBlockVersion = 1
	// servedGroupLen is the day and hour that start the keys of the
	// served logs and runs.
	servedGroupLen = 4 + 1
	// maxCellKeyLen bounds a decoded key (a rollup key without its day;
	// agg_c's are the longest):
	// four IDs of checkKey's largest size, three seps, an hour, a sep and
	// a cell.
	maxCellKeyLen = 4*campaigns.MaxIDLen*4 + 3 + 1 + 1 + 8
	// servedRecordLen is the group and sequence number that start the
	// keys of a record's (or run's) blocks; the advertiser, a sep and the
	// block number follow.
	servedRecordLen = servedGroupLen + 8
	// servedBlockBytes is about the most bytes of one block. Blocks fit
	// in a page, several to a page: bbolt stores a larger value on
	// pages of its own, contiguous ones, which in a file whose free
	// pages are scattered singles (a merge into the coarse rollups frees
	// a few hundred) are mostly found by growing the file.
	servedBlockBytes = 1000

	// defaultCompactBytes is how many bytes of log records of one hour
	// start a compaction, and about the most one compaction merges in
	// its one write transaction: at national scale (5,000 new keys a
	// second, some 150 KB a flush) seven flushes of agg_c's log, merged
	// in 35 to 60 ms on a shared 2-core machine, and ten of the coarse
	// logs (some 105 KB a flush together).
	defaultCompactBytes = 1 << 20
	// defaultCompactEvery is how often the Store's background loop looks
	// for finished hours.
	defaultCompactEvery = time.Minute
	// compactGrace is how long after its last record the log of an hour
	// that has a later hour in the log waits for stragglers (replicas
	// that flush late) before it is merged; compactIdle is how long any
	// hour's log waits without a new record.
	compactGrace = time.Minute
	compactIdle  = 15 * time.Minute
)

// errCompactBusy says a report was reading the served records, so the
// compaction did not run; it runs again later.
var errCompactBusy = errors.New("served counts being read")

// appendServedGroupKey appends the day and hour that start the keys of a
// group (servedGroupLen bytes).
func appendServedGroupKey(dst []byte, day storage.Day, hour uint8) []byte {
	return append(encodeDay(dst, day), hour)
}

// ---- Blocks ----
//
// A served block is a piece of a log record or of a run:
//
//	version (1) written Unix second (uvarint) entries (uvarint)
//	entries × { shared (uvarint) suffix length (uvarint) suffix served (uvarint) }
//
// Each entry's key is a rollup key without the day (the block's key has
// it; agg_c's in served_log and served_run, agg_a's in served_log_a, and
// so on): the first shared bytes of the previous entry's key, then suffix.
// Keys are distinct and ascending, so that consecutive keys of one
// campaign share most of their bytes.

// servedEntry is one row of a block being written.
type servedEntry struct {
	key []byte // agg_c key without the day
	n   uint64
}

// putServedBlocks writes entries, which must be sorted and distinct, in
// blocks of about servedBlockBytes, each of one lead ID (the first part of
// the keys: the advertiser, or in agg_p the publisher), under the keys
// record (group and sequence number), lead ID, sep, block number.
//
// The blocks are written end to end into *arena, from its length on, and
// bbolt keeps pointing into it until the transaction ends: the caller may
// truncate and reuse it only then. (When the arena grows, the blocks
// already put stay in the old array, which bbolt keeps alive. bbolt copies
// keys, so one buffer serves them all.)
func putServedBlocks(b *bolt.Bucket, record []byte, written int64, entries []servedEntry, arena *[]byte) error {
	// New keys of the current hour come last in the bucket: pages filled
	// full, not split in half.
	b.FillPercent = 1
	buf := *arena
	defer func() { *arena = buf }()
	var key []byte
	for block := uint32(0); len(entries) > 0; block++ {
		adv := keyLead(entries[0].key)
		n, size := 0, 0
		for n < len(entries) && size < servedBlockBytes && bytes.Equal(keyLead(entries[n].key), adv) {
			size += len(entries[n].key) // an upper bound of its encoding, but for varints
			n++
		}
		key = binary.BigEndian.AppendUint32(append(append(append(key[:0], record...), adv...), sep), block)
		start := len(buf)
		buf = appendServedBlock(slices.Grow(buf, size+64), written, entries[:n])
		if err := b.Put(key, buf[start:len(buf):len(buf)]); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}

// keyLead returns the ID that starts a rollup key without its day:
// the advertiser, or in agg_p the publisher.
func keyLead(k []byte) []byte {
	if i := bytes.IndexByte(k, sep); i >= 0 {
		return k[:i]
	}
	return k
}

// servedKeyLead returns the lead ID (see putServedBlocks) of a
// block's key, nil when the key is malformed.
func servedKeyLead(k []byte) []byte {
	if len(k) < servedRecordLen+1+1+4 || k[len(k)-5] != sep {
		return nil
	}
	adv := k[servedRecordLen : len(k)-5]
	if bytes.IndexByte(adv, sep) >= 0 {
		return nil
	}
	return adv
}

// appendServedBlock encodes entries, which must be sorted and distinct.
func appendServedBlock(dst []byte, written int64, entries []servedEntry) []byte {
	dst = append(dst, servedBlockVersion)
	dst = binary.AppendUvarint(dst, uint64(max(written, 0)))
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	var prev []byte
	for _, e := range entries {
		dst = record.AppendKeyCount(dst, prev, e.key, e.n)
		prev = e.key
	}
	return dst
}

// blockReader decodes a served block entry by entry, with record's
// reader (the entries are record.AppendKeyCount's). Its state outlives the
// transaction that mapped the block: to resume, set rd.B to the same
// block's bytes again.
type blockReader struct {
	rd      record.Reader[[]byte]
	left    uint64 // entries not read yet
	written int64
	key     []byte // the last key read; the reader's own
}

// open starts reading block v.
func (r *blockReader) open(v []byte) error {
	*r = blockReader{rd: record.Reader[[]byte]{B: v, Off: 1}, key: r.key[:0]}
	if len(v) < 1 || v[0] != servedBlockVersion {
		return errCorrupt
	}
	w := r.rd.Uvarint64()
	r.left = r.rd.Uvarint64()
	if r.rd.Err != nil || w > 1<<62 || r.left > uint64(len(v)) { // an entry takes 3 bytes or more
		return errCorrupt
	}
	r.written = int64(w)
	return nil
}

// next returns the next entry's key, valid until the next call, and count;
// ok is false at the end of the block.
func (r *blockReader) next() (key []byte, n uint64, ok bool, err error) {
	if r.left == 0 {
		if r.rd.Off != len(r.rd.B) {
			return nil, 0, false, errCorrupt
		}
		return nil, 0, false, nil
	}
	r.key, n = r.rd.KeyCount(r.key)
	if r.rd.Err != nil || len(r.key) > maxCellKeyLen || len(r.key) == 0 {
		return nil, 0, false, errCorrupt
	}
	r.left--
	return r.key, n, true, nil
}

// ---- Writing ----

// servedGroup is one rollup's rows of one flush for one day and hour,
// sorted.
type servedGroup struct {
	group   []byte // appendServedGroupKey's
	entries []servedEntry
}

// groupServedAll sums the rows by their key in each rollup (without the
// day) and splits them by day and hour: its groups of every rollup
// (indexed by rollupKind) are the same days and hours, in the same order,
// each group's entries sorted. The keys are written one after another into
// a buffer per rollup, and the entries' keys are pieces of them: a flush
// of thousands of rows makes a handful of allocations, not several a row.
// One sort serves all four rollups. agg_a's and agg_h's keys are
// prefixes of agg_c's, field by field (campaign, then publisher and hour;
// sep is 0, below every byte of an ID), so agg_c's order is theirs too
// and they are summed from it in one pass; agg_p's (publisher first) is
// agg_h's sorted stably by publisher, group by group.
//
// The keys and entries are in sc's buffers, valid until its next use.
func groupServedAll(rows []storage.ServedCount, sc *flushScratch) (out [len(rollups)][]servedGroup) {
	var sizes [len(rollups)]int
	for i := range rows {
		for r := range sizes {
			sizes[r] += rollupBodyLen(rollupKind(r), &rows[i].Key)
		}
	}
	buf := slices.Grow(sc.keys[rollupC][:0], sizes[rollupC]+len(rows)*servedGroupLen)
	es := slices.Grow(sc.sorted[:0], len(rows))[:len(rows)]
	// Each rollup's groups' entries, end to end: no rollup has more
	// entries than there are rows, so appending never moves them.
	var all [len(rollups)][]servedEntry
	for r := range all {
		all[r] = slices.Grow(sc.entries[r][:0], len(rows))
	}
	for i := range rows {
		k := &rows[i].Key
		start := len(buf)
		buf = appendRollupBody(appendServedGroupKey(buf, k.Day, k.Hour), rollupC, k)
		es[i] = servedSortEntry{start, len(buf), rows[i].N, i}
	}
	key := func(e servedSortEntry) []byte { return buf[e.start:e.end:e.end] }
	slices.SortFunc(es, func(a, b servedSortEntry) int { return bytes.Compare(key(a), key(b)) })
	var bufs [len(rollups)][]byte // the coarse rollups' keys; never grown, so never moved
	for r := range bufs {
		if rollupKind(r) != rollupC {
			bufs[r] = slices.Grow(sc.keys[r][:0], sizes[r])
		}
	}
	appendEntry := func(r rollupKind, row int, n uint64) {
		start := len(bufs[r])
		bufs[r] = appendRollupBody(bufs[r], r, &rows[row].Key)
		all[r] = append(all[r], servedEntry{bufs[r][start:len(bufs[r]):len(bufs[r])], n})
	}
	hs, as := sc.hs[:0], sc.as[:0]
	for i := 0; i < len(es); {
		g := key(es[i])[:servedGroupLen:servedGroupLen]
		var from [len(rollups)]int // where the group's entries start in all
		for r := range from {
			from[r] = len(all[r])
		}
		hs, as = hs[:0], as[:0]
		for ; i < len(es) && bytes.Equal(key(es[i])[:servedGroupLen], g); i++ {
			e := es[i]
			for i+1 < len(es) && bytes.Equal(key(es[i+1]), key(e)) {
				i++
				e.n += es[i].n
			}
			all[rollupC] = append(all[rollupC], servedEntry{key(e)[servedGroupLen:], e.n})
			k := &rows[e.row].Key
			if n := len(hs); n > 0 {
				if p := &rows[hs[n-1].row].Key; p.AdvertiserID == k.AdvertiserID && p.CampaignID == k.CampaignID && p.PublisherID == k.PublisherID {
					hs[n-1].n += e.n
					continue
				}
			}
			hs = append(hs, servedSum{e.row, e.n})
		}
		for _, h := range hs {
			appendEntry(rollupH, h.row, h.n)
			k := &rows[h.row].Key
			if n := len(as); n > 0 {
				if p := &rows[as[n-1].row].Key; p.AdvertiserID == k.AdvertiserID && p.CampaignID == k.CampaignID {
					as[n-1].n += h.n
					continue
				}
			}
			as = append(as, h)
		}
		for _, a := range as {
			appendEntry(rollupA, a.row, a.n)
		}
		slices.SortStableFunc(hs, func(a, b servedSum) int {
			return strings.Compare(rows[a.row].Key.PublisherID, rows[b.row].Key.PublisherID)
		})
		for _, h := range hs {
			appendEntry(rollupP, h.row, h.n)
		}
		for r := range out {
			out[r] = append(out[r], servedGroup{g, all[r][from[r]:len(all[r]):len(all[r])]})
		}
	}
	// The buffers, grown, for the next flush.
	bufs[rollupC] = buf
	sc.keys, sc.sorted, sc.entries, sc.hs, sc.as = bufs, es, all, hs, as
	return out
}

// flushScratch is the buffers of one AddServed: groupServedAll's and
// putServedBlocks' arena. A flush at national scale fills a few
// megabytes of them, every second; kept in flushScratches from one flush
// to the next, they are allocated about once a collection rather than
// once a flush.
type flushScratch struct {
	keys    [len(rollups)][]byte        // each rollup's keys, end to end
	sorted  []servedSortEntry           // agg_c's keys, sorted
	entries [len(rollups)][]servedEntry // each rollup's groups' entries, end to end
	hs, as  []servedSum
	blocks  []byte // putServedBlocks' arena
}

var flushScratches = sync.Pool{New: func() any { return new(flushScratch) }}

// servedSortEntry is a row's agg_c key in flushScratch.keys[rollupC]:
// [start, end), and its count.
type servedSortEntry struct {
	start, end int
	n          uint64
	row        int // a row with the key, for its fields
}

// servedSum is a count summed over rows that share a coarse key.
type servedSum struct {
	row int
	n   uint64
}

// nextServedSeq returns the next number of a log record or run, unique
// in the file, so that new records sort last in their hour.
func nextServedSeq(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	var seq uint64
	if v := meta.Get(keyServedSeq); v != nil {
		if len(v) != 8 {
			return 0, fmt.Errorf("served sequence: %w", errCorrupt)
		}
		seq = binary.BigEndian.Uint64(v)
	}
	seq++
	return seq, meta.Put(keyServedSeq, binary.BigEndian.AppendUint64(nil, seq))
}

// logSize returns the bytes of the blocks of group in log, counting up to
// limit at most.
func logSize(log *bolt.Bucket, group []byte, limit int) int {
	size := 0
	c := log.Cursor()
	for k, v := c.Seek(group); k != nil && bytes.HasPrefix(k, group) && size < limit; k, v = c.Next() {
		size += len(v)
	}
	return size
}

// servedParts are the logs of an hour that a compaction merges.
type servedParts uint8

const (
	finestLog  servedParts = 1 << iota // served_log, into a run
	coarseLogs                         // the coarse rollups' logs, into their B+trees
)

// dueGroup is an hour whose logs are due for compaction.
type dueGroup struct {
	group []byte
	parts servedParts
}

// appendServedLog writes one log record per rollup and group (groups[i]
// are rollups[i]'s, from groupServedAll; nil skips a coarse rollup), the
// records of one group under one sequence number, and returns the groups
// that are due for compaction: whose finest log, or whose coarse logs
// together, have grown to s.compactBytes. It runs in AddServed's
// transaction; arena is putServedBlocks'.
func (s *Store) appendServedLog(tx *bolt.Tx, written int64, groups *[len(rollups)][]servedGroup, arena *[]byte) ([]dueGroup, error) {
	var due []dueGroup
	for j, g := range groups[rollupC] {
		seq, err := nextServedSeq(tx)
		if err != nil {
			return nil, err
		}
		record := binary.BigEndian.AppendUint64(bytes.Clone(g.group), seq)
		coarse := 0
		for i, r := range rollups {
			if groups[i] == nil {
				continue
			}
			if j >= len(groups[i]) || !bytes.Equal(groups[i][j].group, g.group) {
				return nil, fmt.Errorf("served groups of %s and agg_c differ", r.bucket)
			}
			log := tx.Bucket(r.log)
			if err := putServedBlocks(log, record, written, groups[i][j].entries, arena); err != nil {
				return nil, err
			}
			if r.kind != rollupC {
				coarse += logSize(log, g.group, s.compactBytes-coarse)
			}
		}
		var parts servedParts
		if logSize(tx.Bucket(bucketServedLog), g.group, s.compactBytes) >= s.compactBytes {
			parts |= finestLog
		}
		if coarse >= s.compactBytes {
			parts |= coarseLogs
		}
		if parts != 0 {
			due = append(due, dueGroup{g.group, parts})
		}
	}
	return due, nil
}

// ---- Compaction ----

// compactFilled merges the hours that a flush filled up (due, from
// appendServedLog) after AddServed's commit. It is tracking's background
// work as much as the flush itself, but a failure of it is no failure of
// the flush: it is told to WithOnError, and the next flush or the
// background loop merges the hour. Two merges an hour at most, so that a
// log that grew while reports held merges off is caught up over a few
// flushes rather than in one long one.
func (s *Store) compactFilled(ctx context.Context, due []dueGroup) {
	for _, g := range due {
		for range 2 {
			_, left, err := s.compactGroup(ctx, g.group, g.parts)
			if err != nil {
				if !errors.Is(err, errCompactBusy) && ctx.Err() == nil {
					s.tell(fmt.Errorf("compact served: %w", err))
				}
				break
			}
			if left < s.compactBytes {
				break
			}
		}
	}
}

// tell hands an error of the Store's background work to WithOnError's
// function; ErrClosed, work that Close cut short, is none.
func (s *Store) tell(err error) {
	if s.onError != nil && !errors.Is(err, ErrClosed) {
		s.onError(err)
	}
}

// CompactServed merges the log records of every hour that is due: hours
// whose finest log, or whose coarse logs together, have s.compactBytes or
// more, hours whose last record is a minute old while a later hour has
// records (the hour is over), and hours without a new record for 15
// minutes. Each merge is a write transaction of its own of about 1 MB of
// records of each log at most: the finest log's make a run, the coarse
// logs' are added into their rollups' B+trees. It returns how many log
// blocks it merged. The Store's background loop calls it every minute;
// AddServed merges hours that reach the size itself. While a report reads
// served counts no merge runs (it would move counts under the report's
// feet); CompactServed then returns what it merged so far and nil, and a
// later call catches up.
func (s *Store) CompactServed(ctx context.Context) (int, error) {
	type groupState struct {
		group          []byte
		finest, coarse int // bytes of log
		newest         int64
	}
	var groups []groupState
	err := s.view(ctx, func(tx *bolt.Tx) error {
		byGroup := make(map[string]int) // index in groups
		var r blockReader
		for _, ru := range rollups {
			name := ru.log
			c := tx.Bucket(name).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if servedKeyLead(k) == nil {
					return fmt.Errorf("%s key %x: %w", name, k, errCorrupt)
				}
				if err := r.open(v); err != nil {
					return fmt.Errorf("%s %x: %w", name, k, err)
				}
				gi, ok := byGroup[string(k[:servedGroupLen])]
				if !ok {
					gi = len(groups)
					byGroup[string(k[:servedGroupLen])] = gi
					groups = append(groups, groupState{group: bytes.Clone(k[:servedGroupLen])})
				}
				g := &groups[gi]
				if ru.kind == rollupC {
					g.finest += len(v)
				} else {
					g.coarse += len(v)
				}
				g.newest = max(g.newest, r.written)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("compact served: %w", err)
	}
	slices.SortFunc(groups, func(a, b groupState) int { return bytes.Compare(a.group, b.group) })
	now := s.now().Unix()
	total := 0
	for i, g := range groups {
		age := time.Duration(now-g.newest) * time.Second
		byTime := age >= compactIdle || i < len(groups)-1 && age >= compactGrace
		var parts servedParts
		size := 0
		if byTime && g.finest > 0 || g.finest >= s.compactBytes {
			parts |= finestLog
			size = g.finest
		}
		if byTime && g.coarse > 0 || g.coarse >= s.compactBytes {
			parts |= coarseLogs
			size = max(size, g.coarse)
		}
		if parts == 0 {
			continue
		}
		// Passes enough for the log seen, not for what comes meanwhile.
		for range size/s.compactBytes + 1 {
			n, left, err := s.compactGroup(ctx, g.group, parts)
			total += n
			if errors.Is(err, errCompactBusy) {
				return total, nil
			}
			if err != nil {
				return total, fmt.Errorf("compact served: %w", err)
			}
			if n == 0 || left == 0 || !byTime && left < s.compactBytes {
				break
			}
		}
	}
	return total, nil
}

// compactGroup merges the oldest log records of one hour, in one write
// transaction that also deletes them: with finestLog about s.compactBytes
// of the finest log (at least one record) into a run, with coarseLogs
// about as much of each coarse log into its rollup's B+tree. The two are
// due at different times (a flush adds fewer bytes to the coarse logs),
// and a flush that merges one does not pay for the other too. It returns
// how many blocks it merged and the bytes of log left in the hour (in the
// finest log or the coarse logs together, whichever is more, of the parts
// merged); errCompactBusy if a report is reading.
func (s *Store) compactGroup(ctx context.Context, group []byte, parts servedParts) (merged, left int, err error) {
	if !s.compactMu.TryLock() {
		return 0, 0, errCompactBusy
	}
	defer s.compactMu.Unlock()
	err = s.update(ctx, func(tx *bolt.Tx) error {
		merged, left = 0, 0
		coarseLeft := 0
		s.logScratch.blocks = s.logScratch.blocks[:0] // the last transaction's are written
		for _, r := range rollups {
			if r.kind == rollupC && parts&finestLog == 0 || r.kind != rollupC && parts&coarseLogs == 0 {
				continue
			}
			log := tx.Bucket(r.log)
			entries, doomed, rest, err := takeLog(ctx, log, r.kind, group, s.compactBytes, &s.logScratch)
			if err != nil {
				return err
			}
			if r.kind == rollupC {
				left = rest
			} else {
				coarseLeft += rest
			}
			if len(doomed) == 0 {
				continue
			}
			if r.kind == rollupC {
				seq, err := nextServedSeq(tx)
				if err != nil {
					return err
				}
				runKey := binary.BigEndian.AppendUint64(bytes.Clone(group), seq)
				if err := putServedBlocks(tx.Bucket(bucketServedRun), runKey, s.now().Unix(), entries, &s.logScratch.blocks); err != nil {
					return err
				}
			} else if err := foldServed(ctx, tx.Bucket(r.bucket), group[:4], entries, &s.logScratch.blocks); err != nil {
				return err
			}
			for _, k := range doomed {
				if err := log.Delete(k); err != nil {
					return err
				}
			}
			merged += len(doomed)
		}
		left = max(left, coarseLeft)
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return merged, left, nil
}

// logScratch is takeLog's buffers, kept by the Store from one compaction
// to the next (compactions hold compactMu, one at a time): at national
// scale a compaction a few seconds reads a megabyte of log into several.
type logScratch struct {
	arena        []byte // every key read, end to end
	ents, merged []logEnt
	entries      []servedEntry
	blocks       []byte // putServedBlocks' and foldServed's arena
}

// logEnt is a key read by takeLog: arena[off:end], and its count.
type logEnt struct {
	off, end uint32
	n        uint64
}

// takeLog reads the oldest records of group in log, whole records of
// about limit bytes (at least one), and returns their entries summed by
// key in key order, the keys of their blocks, and the bytes of log left in
// the group after them. The entries and their keys are in sc's buffers,
// valid until its next use.
func takeLog(ctx context.Context, log *bolt.Bucket, kind rollupKind, group []byte, limit int, sc *logScratch) (entries []servedEntry, doomed [][]byte, left int, err error) {
	// Every key, end to end in one buffer, and the entries that point
	// into it: a million small allocations otherwise.
	arena, ents := sc.arena[:0], sc.ents[:0]
	// runs are where each record's entries start in ents: a record's
	// blocks come in key order (lead ID, then block number), so its
	// entries do too, and the records are merged rather than sorted.
	var runs []int
	inOrder := true // each run ascending, as written; checked, not trusted
	var r blockReader
	size := 0
	c := log.Cursor()
	k, v := c.Seek(group)
	for ; k != nil && bytes.HasPrefix(k, group); k, v = c.Next() {
		if servedKeyLead(k) == nil {
			return nil, nil, 0, fmt.Errorf("served log key %x: %w", k, errCorrupt)
		}
		// Whole records (all their blocks), about limit.
		if size >= limit && !bytes.Equal(k[:servedRecordLen], doomed[len(doomed)-1][:servedRecordLen]) {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, 0, err
		}
		if err := r.open(v); err != nil {
			return nil, nil, 0, fmt.Errorf("served log %x: %w", k, err)
		}
		if len(doomed) == 0 || !bytes.Equal(k[:servedRecordLen], doomed[len(doomed)-1][:servedRecordLen]) {
			runs = append(runs, len(ents))
		}
		for {
			key, n, ok, err := r.next()
			if err != nil {
				return nil, nil, 0, fmt.Errorf("served log %x: %w", k, err)
			}
			if !ok {
				break
			}
			if !validRollupKey(kind, key) {
				return nil, nil, 0, fmt.Errorf("served log %x: key %q: %w", k, key, errCorrupt)
			}
			if len(arena)+len(key) > 1<<32-1 {
				return nil, nil, 0, fmt.Errorf("served log of %x: too large to merge", group)
			}
			if n := len(ents); n > runs[len(runs)-1] && bytes.Compare(arena[ents[n-1].off:ents[n-1].end], key) >= 0 {
				inOrder = false
			}
			off := uint32(len(arena))
			arena = append(arena, key...)
			ents = append(ents, logEnt{off, uint32(len(arena)), n})
		}
		doomed = append(doomed, bytes.Clone(k))
		size += len(v)
	}
	for ; k != nil && bytes.HasPrefix(k, group); k, v = c.Next() {
		left += len(v)
	}
	keyOf := func(e logEnt) []byte { return arena[e.off:e.end] }
	cmp := func(a, b logEnt) int { return bytes.Compare(keyOf(a), keyOf(b)) }
	if inOrder {
		ents, sc.merged = mergeRuns(ents, sc.merged, runs, cmp)
	} else {
		slices.SortStableFunc(ents, cmp)
	}
	entries = sc.entries[:0]
	for _, e := range ents {
		if n := len(entries); n > 0 && bytes.Equal(entries[n-1].key, keyOf(e)) {
			entries[n-1].n += e.n
			continue
		}
		entries = append(entries, servedEntry{keyOf(e), e.n})
	}
	sc.arena, sc.ents, sc.entries = arena, ents, entries // kept for the next merge
	return entries, doomed, left, nil
}

// mergeRuns sorts s, whose pieces starting at the indices runs (ascending,
// the first 0) are each sorted already, by merging neighbouring runs pass
// by pass: about len(s) × log2(len(runs)) comparisons rather than a sort's
// len(s) × log2(len(s)). Equal elements keep their order. It returns the
// sorted elements, in s or in buf (grown if it is short), and the other of
// the two, for use as the next buf.
func mergeRuns[E any](s, buf []E, runs []int, cmp func(a, b E) int) (sorted, spare []E) {
	if len(runs) <= 1 {
		return s, buf
	}
	bounds := append(slices.Clone(runs), len(s))
	if cap(buf) < len(s) {
		buf = make([]E, len(s))
	}
	buf = buf[:len(s)]
	for len(bounds) > 2 {
		next := bounds[:1]
		for i := 0; i+1 < len(bounds); i += 2 {
			lo, mid := bounds[i], bounds[i+1]
			hi := mid
			if i+2 < len(bounds) {
				hi = bounds[i+2]
			}
			a, b, out := lo, mid, lo
			for a < mid && b < hi {
				if cmp(s[b], s[a]) < 0 {
					buf[out] = s[b]
					b++
				} else {
					buf[out] = s[a]
					a++
				}
				out++
			}
			out += copy(buf[out:], s[a:mid])
			copy(buf[out:], s[b:hi])
			next = append(next, hi)
		}
		s, buf, bounds = buf, s, next
	}
	return s, buf
}

// foldServed adds the served counts of entries (keys without the day, in
// key order) into b, a coarse rollup's B+tree, on day (encoded): one
// update per distinct key of the records merged, in key order, where the
// flushes they came from would each have updated theirs.
//
// It reads with one cursor, repositioned by every Seek after a Put, and
// writes the values end to end into *arena, as putServedBlocks does: a
// merge makes a few allocations rather than several a key.
func foldServed(ctx context.Context, b *bolt.Bucket, day []byte, entries []servedEntry, arena *[]byte) error {
	key := make([]byte, 0, 4+maxCellKeyLen)
	buf := *arena
	defer func() { *arena = buf }()
	c := b.Cursor()
	for i, e := range entries {
		if i%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		key = append(append(key[:0], day...), e.key...)
		counts := storage.Counts{Served: e.n}
		if k, v := c.Seek(key); v != nil && bytes.Equal(k, key) {
			var old storage.Counts
			if err := decodeCounts(v, &old); err != nil {
				return fmt.Errorf("counters %q: %w", key, err)
			}
			counts.Add(old)
		}
		start := len(buf)
		buf = appendCounts(buf, &counts)
		if err := b.Put(key, buf[start:len(buf):len(buf)]); err != nil {
			return err
		}
	}
	return nil
}

// validRollupKey reports whether k is a key of rollup r without its day,
// the IDs not empty (see rollupKey): agg_a adv NUL cmp, agg_p pub NUL adv
// NUL cmp, agg_h adv NUL cmp NUL pub NUL hour, agg_c the same and store
// NUL cell(8).
func validRollupKey(r rollupKind, k []byte) bool {
	ids := 3 // the IDs that a sep ends
	switch r {
	case rollupA:
		ids = 1
	case rollupP:
		ids = 2
	}
	for range ids {
		i := bytes.IndexByte(k, sep)
		if i <= 0 {
			return false
		}
		k = k[i+1:]
	}
	switch r {
	case rollupA, rollupP:
		return len(k) > 0 && bytes.IndexByte(k, sep) < 0
	case rollupH:
		return len(k) == 1 && k[0] <= 23
	}
	if len(k) < 1 || k[0] > 23 {
		return false
	}
	k = k[1:]
	i := bytes.IndexByte(k, sep)
	return i > 0 && len(k) == i+1+8
}

// compactLoop runs CompactServed every s.compactEvery until Close.
func (s *Store) compactLoop() {
	defer close(s.done)
	t := time.NewTicker(s.compactEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if _, err := s.CompactServed(context.Background()); err != nil {
				s.tell(err)
			}
		}
	}
}

// ---- Reading ----

// servedCursor is where a report stands in the served blocks, kept
// between its read transactions.
type servedCursor struct {
	bucket int    // index in readServed's buckets
	after  []byte // the block being read or last read; nil before the first
	r      blockReader
	inside bool // r holds the rest of the block at after
}

// readServed appends to items the admitted rows of rollup kind in the
// served blocks of buckets (servedBuckets for agg_c, a coarse rollup's
// log) on days from to to, until items holds aggChunk rows; done reports
// that the blocks are all read. With leads (sorted, distinct advertisers,
// or publishers in agg_p) it reads only the blocks of those, seeking from
// one to the next in each record and run. The caller holds s.compactMu
// for reading across its calls, so that no block moves or changes between
// them.
func readServed(tx *bolt.Tx, sc *servedCursor, buckets [][]byte, kind rollupKind, from, to storage.Day, leads []string, filter *storage.KeyFilter, dec *keyDecoder, items []storage.Aggregate) (_ []storage.Aggregate, done bool, _ error) {
	lo, hi := encodeDay(nil, from), encodeDayAfter(to)
	full := make([]byte, 0, 4+maxCellKeyLen)
	var seek []byte
	for ; sc.bucket < len(buckets); sc.bucket, sc.after, sc.inside = sc.bucket+1, nil, false {
		c := tx.Bucket(buckets[sc.bucket]).Cursor()
		var k, v []byte
		switch {
		case sc.after == nil:
			k, v = c.Seek(lo)
		case sc.inside:
			// The block left half read; were it gone (the lock rules
			// that out), go on with the next.
			k, v = c.Seek(sc.after)
			sc.inside = bytes.Equal(k, sc.after)
		default:
			k, v = c.Seek(sc.after)
			if bytes.Equal(k, sc.after) {
				k, v = c.Next()
			}
		}
		for k != nil && (hi == nil || bytes.Compare(k, hi) < 0) {
			adv := servedKeyLead(k)
			if adv == nil {
				return items, false, fmt.Errorf("served key %x: %w", k, errCorrupt)
			}
			if leads != nil && !sc.inside {
				// The first lead ID asked for at or after adv in this
				// record, else the next record.
				i, _ := slices.BinarySearchFunc(leads, adv, func(a string, b []byte) int { return strings.Compare(a, string(b)) })
				switch {
				case i < len(leads) && leads[i] == string(adv):
				case i < len(leads):
					seek = append(append(append(seek[:0], k[:servedRecordLen]...), leads[i]...), sep)
					k, v = c.Seek(seek)
					continue
				default:
					next := prefixRange(k[:servedRecordLen]).hi
					if next == nil { // no record can follow
						k = nil
						continue
					}
					k, v = c.Seek(next)
					continue
				}
			}
			if sc.inside {
				sc.r.rd.B = v // the same bytes as before: blocks do not change
			} else if err := sc.r.open(v); err != nil {
				return items, false, fmt.Errorf("served block %x: %w", k, err)
			}
			sc.after, sc.inside = k, true
			full = append(full[:0], k[:4]...)
			for {
				if len(items) == aggChunk {
					sc.after = bytes.Clone(sc.after) // resumed in the next transaction
					return items, false, nil
				}
				key, n, ok, err := sc.r.next()
				if err != nil {
					return items, false, fmt.Errorf("served block %x: %w", k, err)
				}
				if !ok {
					break
				}
				if !validRollupKey(kind, key) {
					return items, false, fmt.Errorf("served block %x: key %q: %w", k, key, errCorrupt)
				}
				full = append(full[:4], key...)
				var a storage.Aggregate
				if err := dec.decode(kind, full, &a.AggKey); err != nil {
					return items, false, fmt.Errorf("served block %x: key %q: %w", k, key, err)
				}
				if !filter.Admits(&a.AggKey) {
					continue
				}
				a.Served = n
				items = append(items, a)
			}
			sc.inside = false
			k, v = c.Next()
		}
	}
	return items, true, nil
}
