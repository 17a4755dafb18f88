package redisstore

// Served counts as logs.
//
// Every decision serves ads, so served counts come at the rate of
// decisions, each on its own store and cell: a flush of one second holds a
// row per ad served, nearly all of them new fields of the finest rollup.
// Adding them with HINCRBY cost Redis about 30 µs of its CPU per decision
// (four fields per row, one Lua call each) and some 250 bytes of memory.
// So AddServed appends instead: each flush adds one block per log, a
// sorted, prefix-compressed list of (field, count), to a string with
// APPEND, and a report adds the logs it reads to the hash beside them.
//
//	{navad:ev}:slog:a:<day>:<advertiser>         string  served blocks of rollup a's hash
//	{navad:ev}:slog:p:<day>:<publisher>          string  ... of rollup p's
//	{navad:ev}:slog:h:<day>:<advertiser>         string  ... of rollup h's
//	{navad:ev}:slog:c:<day>:<hour>:<slot>:<advertiser>  string  ... of rollup c's, six logs an hour
//	{navad:ev}:sgen:<rollup>:<day>:<part>        string  how often the hash's log was folded
//
// The coarse rollups (a, p, h) fold: once a log passes foldAt bytes, the
// replica that appended to it adds its counts into the hash, summed (a
// campaign served a thousand times in the log is one HINCRBY), in one
// script that applies only if the log still begins with what was read, and
// cuts that much off. The finest rollup's rows hardly repeat, so folding
// would only move its cost: its logs stay, six an hour (cSlots) so that no
// log grows past some tens of megabytes, at about a fifth of a hash
// field's memory. They and rollup c's hash are what PurgeDetail deletes
// once their day is past the detail retention (events.go): nothing else
// bounds them.
//
// A report reads a hash's logs and generation with its first HSCAN page in
// one MULTI, a consistent view. A hash that takes more than one page is
// read again if a fold happened meanwhile (its generation moved), so no
// count is read twice or missed.

import (
	"bytes"
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

// foldAt is the length past which a coarse rollup's log is folded.
var foldAt = 64 << 10

// cSlots is how many logs rollup c has an hour, each written by the
// flushes of a tenth of an hour (by the flushing replica's clock): so that
// no log passes a few tens of megabytes even if one advertiser had all of
// a national peak's traffic (Redis strings stop at 512 MB).
const cSlots = 6

// logKey returns the served log of rollup r's hash of day d and part; for
// rollup c, of hour and slot.
func (r rollup) logKey(d storage.Day, part string, hour, slot uint8) string {
	if r.name == "c" {
		return evTag + ":slog:c:" + d.String() + ":" + strconv.Itoa(int(hour)) + ":" + strconv.Itoa(int(slot)) + ":" + part
	}
	return evTag + ":slog:" + r.name + ":" + d.String() + ":" + part
}

// logKeys returns the served logs of rollup r's hash of day d and part.
func (r rollup) logKeys(d storage.Day, part string) []string {
	if r.name != "c" {
		return []string{r.logKey(d, part, 0, 0)}
	}
	keys := make([]string, 0, 24*cSlots)
	for h := range 24 {
		for slot := range cSlots {
			keys = append(keys, r.logKey(d, part, uint8(h), uint8(slot)))
		}
	}
	return keys
}

// genKey returns the fold generation of rollup r's hash of day d and part.
func (r rollup) genKey(d storage.Day, part string) string {
	return evTag + ":sgen:" + r.name + ":" + d.String() + ":" + part
}

// appendField appends the hash field of k in r, without its counter.
func (r rollup) appendField(dst []byte, k *storage.AggKey) []byte {
	if r.name == "p" {
		return append(append(append(dst, k.AdvertiserID...), sep...), k.CampaignID...)
	}
	dst = append(dst, k.CampaignID...)
	if r.name == "a" {
		return dst
	}
	dst = append(append(dst, sep...), k.PublisherID...)
	dst = strconv.AppendUint(append(dst, sep...), uint64(k.Hour), 10)
	if r.name == "h" {
		return dst
	}
	dst = append(append(append(dst, sep...), k.StoreID...), sep...)
	return strconv.AppendUint(dst, k.Cell, 16)
}

// readLog calls fn with every field and count of a log's blocks; the
// field's bytes are valid during the call only. A corrupt log is an error.
func readLog(log string, fn func(field []byte, n uint64)) error {
	r := record.Reader[string]{B: log}
	var key []byte
	for r.Err == nil && r.Off < len(log) {
		n := r.Uvarint()
		for range n {
			var count uint64
			if key, count = r.KeyCount(key); r.Err != nil {
				break
			}
			fn(key, count)
		}
	}
	if r.Err != nil {
		return fmt.Errorf("served log at byte %d: %w", r.Off, errCorruptAgg)
	}
	return nil
}

// scriptAddServed applies a served batch once. KEYS: the batch key, the
// member sets, then the logs. ARGV: batch TTL in seconds, the number m of
// set members, m pairs (key index, member), the key index of the first
// log, then a block for each log in order. Returns 0 when the batch was
// applied before, else the logs' lengths after it.
var scriptAddServed = redis.NewScript(`
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  redis.call('SADD', KEYS[tonumber(ARGV[i])], ARGV[i + 1])
  i = i + 2
end
local k = tonumber(ARGV[i])
local lens = {}
for j = i + 1, #ARGV do
  lens[#lens + 1] = redis.call('APPEND', KEYS[k], ARGV[j])
  k = k + 1
end
return lens
`)

// scriptFold folds a log into its hash. KEYS: log, hash, generation.
// ARGV: the generation and the log as read, then pairs (field, count).
// Applies only if no fold came since (the generation) and the log still
// begins with what was read; returns 1 then, else 0.
var scriptFold = redis.NewScript(`
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[1] then return 0 end
local n = #ARGV[2]
if redis.call('GETRANGE', KEYS[1], 0, n - 1) ~= ARGV[2] then return 0 end
for i = 3, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
local rest = redis.call('GETRANGE', KEYS[1], n, -1)
if rest == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], rest) end
redis.call('INCR', KEYS[3])
return 1
`)

// servedLog is what one flush appends to one log: its rows' fields, one
// after another in arena, and their counts.
type servedLog struct {
	key, hash, gen string // hash and gen are "" for rollup c's logs
	arena          []byte
	ends           []int // where each field ends in arena
	counts         []uint64
}

// logID names a log without building its key.
type logID struct {
	rollup uint8
	day    storage.Day
	hour   uint8 // rollup c only
	part   string
}

// block sorts the log's fields, sums those that repeat, and appends them
// to dst as a block of sums: a uvarint count, then the fields, sorted and
// distinct, with their counts (record.AppendKeyCount).
func (l *servedLog) block(dst []byte) []byte {
	type entry struct {
		f []byte
		n uint64
	}
	es := make([]entry, len(l.ends))
	start := 0
	for i, end := range l.ends {
		es[i] = entry{l.arena[start:end], l.counts[i]}
		start = end
	}
	slices.SortFunc(es, func(a, b entry) int { return bytes.Compare(a.f, b.f) })
	w := 0
	for _, e := range es {
		if w > 0 && bytes.Equal(es[w-1].f, e.f) {
			es[w-1].n += e.n
			continue
		}
		es[w] = e
		w++
	}
	dst = binary.AppendUvarint(dst, uint64(w))
	var prev []byte
	for _, e := range es[:w] {
		dst = record.AppendKeyCount(dst, prev, e.f, e.n)
		prev = e.f
	}
	return dst
}

// AddServed appends served counts to the logs, in one script, all rows or
// none, once per batch ID (remembered for two days); see storage.Events
// and the comment above. Logs it made longer than foldAt are folded in
// the background.
func (s *Store) AddServed(ctx context.Context, batchID string, rows []storage.ServedCount) error {
	const op = "add served"
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	// A batch these refuse can never be applied: Invalid, which a flush
	// or a spool's delivery drops rather than retry for ever.
	if err := checkKey("batch id", batchID); err != nil {
		return fmt.Errorf("%s: %w", op, campaigns.Errorf(campaigns.Invalid, "%v", err))
	}
	for i := range rows {
		if err := checkAggKey(&rows[i].Key); err != nil {
			return fmt.Errorf("%s: %w", op, campaigns.Errorf(campaigns.Invalid, "row %d: %v", i+1, err))
		}
	}
	if len(rows) == 0 {
		return nil
	}
	type member struct {
		day       storage.Day
		publisher bool
		id        string
	}
	members := make(map[member]struct{})
	days := make(map[storage.Day]struct{}) // with rows of rollup c, for PurgeDetail
	logs := make(map[logID]*servedLog)
	slot := uint8(time.Now().Minute() * cSlots / 60)
	for i := range rows {
		k := &rows[i].Key
		members[member{k.Day, false, k.AdvertiserID}] = struct{}{}
		members[member{k.Day, true, k.PublisherID}] = struct{}{}
		days[k.Day] = struct{}{}
		for ri, r := range rollups {
			id := logID{uint8(ri), k.Day, 0, r.part(k)}
			if r.name == "c" {
				id.hour = k.Hour
			}
			l := logs[id]
			if l == nil {
				l = &servedLog{key: r.logKey(k.Day, id.part, k.Hour, slot)}
				if r.name != "c" {
					l.hash, l.gen = r.key(k.Day, id.part), r.genKey(k.Day, id.part)
				}
				logs[id] = l
			}
			l.arena = r.appendField(l.arena, k)
			l.ends = append(l.ends, len(l.arena))
			l.counts = append(l.counts, rows[i].N)
		}
	}
	type setMember struct{ set, id string }
	memberList := make([]setMember, 0, len(members)+len(days))
	for m := range members {
		set := advsKey(m.day)
		if m.publisher {
			set = pubsKey(m.day)
		}
		memberList = append(memberList, setMember{set, m.id})
	}
	for d := range days {
		memberList = append(memberList, setMember{keyDetailDays, d.String()})
	}
	slices.SortFunc(memberList, func(a, b setMember) int {
		if c := strings.Compare(a.set, b.set); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	order := make([]*servedLog, 0, len(logs)) // sorted, so that scripts are deterministic
	for _, l := range logs {
		order = append(order, l)
	}
	slices.SortFunc(order, func(a, b *servedLog) int { return strings.Compare(a.key, b.key) })

	keys := []string{batchKey(batchID)}
	index := make(map[string]int)
	args := make([]any, 0, 3+2*len(memberList)+len(order))
	args = append(args, int64(batchTTL/time.Second), len(memberList))
	for _, m := range memberList {
		i, ok := index[m.set]
		if !ok {
			keys = append(keys, m.set)
			i = len(keys) // Lua counts from 1
			index[m.set] = i
		}
		args = append(args, i, m.id)
	}
	args = append(args, len(keys)+1)
	var block []byte
	for _, l := range order {
		keys = append(keys, l.key)
		block = l.block(block[:0])
		args = append(args, string(block))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, unavailableErr(err))
	}
	res, err := scriptAddServed.Run(commitCtx(ctx), s.client, keys, args...).Result()
	if err != nil {
		return s.fail(ctx, op, err)
	}
	if lens, ok := res.([]any); ok && len(lens) == len(order) {
		for i, l := range order {
			if n, ok := lens[i].(int64); ok && n > int64(foldAt) && l.hash != "" {
				s.foldLater(l.key, l.hash, l.gen)
			}
		}
	}
	return nil
}

// foldJob is a log to fold into its hash.
type foldJob struct{ log, hash, gen string }

// foldLater folds a log in the background: queued behind the folds asked
// for before it, one at a time, so that a log asked for while another is
// folding is still folded though no append asks again. (Dropping the ask
// when a fold was running left such a log past its length.)
func (s *Store) foldLater(log, hash, gen string) {
	s.foldMu.Lock()
	defer s.foldMu.Unlock()
	if s.closed.Load() || s.foldQueued[log] {
		return
	}
	s.foldQueued[log] = true
	s.foldQueue = append(s.foldQueue, foldJob{log, hash, gen})
	if s.folding {
		return
	}
	s.folding = true
	s.folds.Add(1)
	go s.foldQueuedLogs()
}

// foldQueuedLogs folds foldLater's queue until it is empty or the Store
// closes.
func (s *Store) foldQueuedLogs() {
	defer s.folds.Done()
	for {
		s.foldMu.Lock()
		if len(s.foldQueue) == 0 || s.closed.Load() {
			s.foldQueue, s.folding = nil, false
			clear(s.foldQueued)
			s.foldMu.Unlock()
			return
		}
		j := s.foldQueue[0]
		s.foldQueue = s.foldQueue[1:]
		delete(s.foldQueued, j.log)
		s.foldMu.Unlock()
		if _, err := s.fold(context.Background(), j.log, j.hash, j.gen); err != nil && !errors.Is(err, ErrClosed) && s.onFoldError != nil {
			s.onFoldError(err)
		}
	}
}

// fold adds what log holds into hash, summed, and cuts it off the log; it
// reports whether it did (not when the log changed at its start meanwhile,
// or is empty).
func (s *Store) fold(ctx context.Context, log, hash, gen string) (bool, error) {
	const op = "fold served log"
	if err := s.begin(ctx); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	pipe := s.client.TxPipeline()
	getGen, getLog := pipe.Get(ctx, gen), pipe.Get(ctx, log)
	_, _ = pipe.Exec(ctx)
	g, err := getGen.Result()
	if errors.Is(err, redis.Nil) {
		g, err = "0", nil
	}
	if err != nil {
		return false, s.fail(ctx, op, err)
	}
	v, err := getLog.Result()
	if errors.Is(err, redis.Nil) || v == "" {
		return false, nil
	}
	if err != nil {
		return false, s.fail(ctx, op, err)
	}
	sums := make(map[string]uint64)
	if err := readLog(v, func(f []byte, n uint64) { sums[string(f)] += n }); err != nil {
		return false, fmt.Errorf("%s %s: %w", op, log, err)
	}
	fields := make([]string, 0, len(sums))
	for f := range sums {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	args := make([]any, 0, 2+2*len(fields))
	args = append(args, g, v)
	for _, f := range fields {
		args = append(args, f+sep+"s", sums[f])
	}
	n, err := scriptFold.Run(commitCtx(ctx), s.client, []string{log, hash, gen}, args...).Int()
	if err != nil {
		return false, s.fail(ctx, op, err)
	}
	return n == 1, nil
}

// FoldServed folds every served log of the coarse rollups into its hash,
// however short, and returns how many it folded. The server folds a log
// once it passes a size by itself; this is for tests and tools.
func (s *Store) FoldServed(ctx context.Context) (int, error) {
	var node redis.Cmdable = s.client
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		// Every log is in {navad:ev}'s slot: scan its master.
		c, err := cc.MasterForKey(ctx, evTag)
		if err != nil {
			return 0, s.fail(ctx, "fold served logs", err)
		}
		node = c
	}
	folded := 0
	for _, r := range rollups[:3] {
		prefix := evTag + ":slog:" + r.name + ":"
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, prefix+"*", 1000).Result()
			if err != nil {
				return folded, s.fail(ctx, "fold served logs", err)
			}
			for _, k := range keys {
				day, part, ok := strings.Cut(strings.TrimPrefix(k, prefix), ":")
				d, err := storage.ParseDay(day)
				if !ok || err != nil {
					return folded, fmt.Errorf("fold served logs: key %q: %w", k, errCorruptAgg)
				}
				did, err := s.fold(ctx, k, r.key(d, part), r.genKey(d, part))
				if err != nil {
					return folded, err
				}
				if did {
					folded++
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	return folded, nil
}

// scan returns the read of rollup r's hash of day d and part, with its
// served logs and fold generation.
func (r rollup) scan(d storage.Day, part string) *hashScan {
	h := &hashScan{key: r.key(d, part), day: d, part: part, logs: r.logKeys(d, part)}
	if r.name != "c" {
		h.gen = r.genKey(d, part)
	}
	return h
}
