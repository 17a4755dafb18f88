package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage/record"
)

const (
	// recordIDsMax is how many store IDs a change record lists; a bigger
	// upload records "reload", and replicas re-read the whole advertiser.
	recordIDsMax = 1000
	// readAhead is how many chunks of stores one round trip fetches while a
	// long iteration reads.
	readAhead = 8
)

// PutStores upserts stores of one advertiser (by store ID) all or nothing.
// Stores are stored with AdvertiserID set to advertiserID. A store with an
// empty ID fails the whole call. Duplicate IDs in one call: the last wins.
//
// The stores go out as the arguments of one script (scriptPutStores), which
// writes them with HSETs of 1,000 stores each, and the change record,
// in one atomic unit. Not MULTI … EXEC with the record's script queued after
// the HSETs, as before: Redis checks a queued command when it queues it, but
// a script's commands only when the script runs, so a refusal there (an ACL
// that forbids XADD) came after EXEC had applied the HSETs, leaving an
// upload without its record, which no replica would ever hear of. The
// script checks every command it will run before its first write. Nor a
// staging key: a staging hash would have to be merged into the live one at
// commit (a loop over every store, as long as this one), or copied whole and
// renamed over it (copying the advertiser's existing stores too, and losing
// concurrent writes without a version check). The price is that Redis holds
// the upload in memory while it reads the call, bounded by the upload limit
// (NAVAD_MAX_UPLOAD_ROWS), and that the script keeps Redis busy while it
// applies it (0.1–0.3 s for 100,000 stores). A connection that dies before
// Redis has read the whole call leaves nothing behind.
//
// ctx is checked before the call is sent; once sent it runs to the end, so
// a nil return means every store is there and an error means none (or, for
// Unavailable, possibly all of them: retrying converges).
func (s *Store) PutStores(ctx context.Context, advertiserID string, stores []campaigns.Store) error {
	const op = "put stores"
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := checkKey("advertiser id", advertiserID); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for i := range stores {
		if err := checkKey("store id", stores[i].ID); err != nil {
			return fmt.Errorf("%s: row %d: %w", op, i+1, err)
		}
	}
	if len(stores) == 0 {
		return nil
	}
	// Encode into one shared buffer: one allocation rather than one per
	// store. go-redis writes []byte arguments as they are.
	size := 0
	for i := range stores {
		size += record.StoreSize(&stores[i])
	}
	buf := make([]byte, 0, size)
	st := s.shardOf(advertiserID)

	args := make([]any, 0, 5+2*len(stores))
	args = append(args, s.retentionArg(), s.origin, advertiserID, OpStores, "")
	if len(stores) <= recordIDsMax {
		ids := make([]string, len(stores))
		for i := range stores {
			ids[i] = stores[i].ID
		}
		args[4] = strings.Join(ids, sep)
	} else {
		args[3] = OpReload
	}
	for i := range stores {
		start := len(buf)
		buf = record.AppendStore(buf, &stores[i])
		args = append(args, stores[i].ID, buf[start:len(buf):len(buf)])
	}
	keys := []string{storesKey(st, advertiserID), advertisersKey(st), st.seqKey(), st.feedKey()}
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	// EVAL, not EVALSHA: after a NOSCRIPT, Run would send every store again.
	res, err := s.runWrite(ctx, op, st, scriptPutStores.Eval(commitCtx(ctx), s.client, keys, args...))
	switch {
	case err != nil:
		return err
	case res != "ok":
		return fmt.Errorf("%s: unexpected reply %q", op, res)
	}
	return nil
}

// Store returns one store of an advertiser. NotFound.
func (s *Store) Store(ctx context.Context, advertiserID, storeID string) (*campaigns.Store, error) {
	const op = "get store"
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !validKey(advertiserID) || !validKey(storeID) {
		return nil, fmt.Errorf("%s: %w", op, notFound("store %q of advertiser %q not found", storeID, advertiserID))
	}
	v, err := s.client.HGet(ctx, storesKey(s.shardOf(advertiserID), advertiserID), storeID).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%s: %w", op, notFound("store %q of advertiser %q not found", storeID, advertiserID))
	}
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	var d storeDecoder
	st, err := d.decode(advertiserID, storeID, v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return st, nil
}

// Stores calls fn for every store of an advertiser, or of all when
// advertiserID is "", ordered by (advertiser, store ID), until fn returns
// false. The *Store passed to fn is fn's to keep. It checks ctx between
// stores; fn may call other methods of s.
//
// It reads an advertiser's store IDs (HKEYS), sorts them, and fetches the
// stores in chunks. Like the embedded store's, the iteration is not a
// snapshot: a store added meanwhile is not visited, one deleted meanwhile
// may not be; every store is visited at most once, in order.
//
// Stores that name the same product share the product ID string.
func (s *Store) Stores(ctx context.Context, advertiserID string, fn func(*campaigns.Store) bool) error {
	const op = "list stores"
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	advs, err := s.advertisersOf(ctx, advertiserID)
	if err != nil {
		return s.fail(ctx, op, err)
	}
	var d storeDecoder
	for _, adv := range advs {
		more, err := s.storesOf(ctx, s.client, &d, adv, nil, fn)
		if err != nil {
			return s.fail(ctx, op, err)
		}
		if !more {
			return nil
		}
	}
	return nil
}

// storesOf calls fn for the stores of adv named by ids, or for all of them
// in ID order when ids is nil, skipping IDs that name no store, read
// through c (the client, or a transaction's connection). It returns false
// when fn stopped the iteration.
func (s *Store) storesOf(ctx context.Context, c storeReader, d *storeDecoder, adv string, ids []string, fn func(*campaigns.Store) bool) (bool, error) {
	key := storesKey(s.shardOf(adv), adv)
	if ids == nil {
		var err error
		if ids, err = c.HKeys(ctx, key).Result(); err != nil {
			return false, err
		}
		slices.Sort(ids)
	}
	for start := 0; start < len(ids); start += readChunk * readAhead {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		end := min(start+readChunk*readAhead, len(ids))
		pipe := c.Pipeline()
		cmds := make([]*redis.SliceCmd, 0, readAhead)
		for i := start; i < end; i += readChunk {
			cmds = append(cmds, pipe.HMGet(ctx, key, ids[i:min(i+readChunk, end)]...))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return false, err
		}
		i := start
		for _, cmd := range cmds {
			for _, v := range cmd.Val() {
				id := ids[i]
				i++
				str, ok := v.(string)
				if !ok {
					continue // deleted since the IDs were read
				}
				st, err := d.decode(adv, id, str)
				if err != nil {
					return false, err
				}
				if err := ctx.Err(); err != nil {
					return false, err
				}
				if !fn(st) {
					return false, nil
				}
			}
		}
	}
	return true, nil
}

// allAdvertisers returns the advertisers of every shard that have had
// stores, sorted.
func (s *Store) allAdvertisers(ctx context.Context) ([]string, error) {
	pipe := s.client.Pipeline()
	cmds := make([]*redis.StringSliceCmd, s.shards)
	for i := range cmds {
		cmds[i] = pipe.ZRange(ctx, advertisersKey(Stream(i+1)), 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	var advs []string
	for _, c := range cmds {
		advs = append(advs, c.Val()...)
	}
	slices.Sort(advs)
	return advs, nil
}

// DeleteStore removes a store and its stock rows. NotFound.
func (s *Store) DeleteStore(ctx context.Context, advertiserID, storeID string) error {
	const op = "delete store"
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !validKey(advertiserID) || !validKey(storeID) {
		return fmt.Errorf("%s: %w", op, notFound("store %q of advertiser %q not found", storeID, advertiserID))
	}
	st := s.shardOf(advertiserID)
	keys := []string{storesKey(st, advertiserID), outKey(st, advertiserID), st.seqKey(), st.feedKey(), stockAtKey(st, advertiserID)}
	res, err := s.runWrite(ctx, op, st, scriptDeleteStore.Run(commitCtx(ctx), s.client, keys, s.retentionArg(), s.origin, advertiserID, storeID))
	switch {
	case err != nil:
		return err
	case res == "notfound":
		return fmt.Errorf("%s: %w", op, notFound("store %q of advertiser %q not found", storeID, advertiserID))
	case res != "ok":
		return fmt.Errorf("%s: unexpected reply %q", op, res)
	}
	return nil
}

// PutStock records a point-of-sale batch of one advertiser all or nothing.
// Invalid, with a Detail per row (Row counted from 1), when a row names a
// store the advertiser does not have; then nothing is written. Within a
// batch the last row for a (store, product) wins, unless it is stale (see
// storage.Catalog). One script checks every row and applies the batch, so
// the check and the write see the same stores.
func (s *Store) PutStock(ctx context.Context, advertiserID string, rows []campaigns.StockUpdate) ([]int, error) {
	const op = "put stock"
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := checkKey("advertiser id", advertiserID); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	for i, r := range rows {
		if err := checkKey("product id", r.ProductID); err != nil {
			return nil, fmt.Errorf("%s: row %d: %w", op, i+1, err)
		}
	}
	if len(rows) == 0 {
		return nil, nil
	}
	st := s.shardOf(advertiserID)
	args := make([]any, 0, 4+4*len(rows))
	args = append(args, s.retentionArg(), s.origin, advertiserID, encodeStockRows(rows))
	for _, r := range rows {
		at := ""
		if ms := r.AsOfMillis(); ms != 0 {
			at = fmt.Sprintf("%016d", ms)
		}
		args = append(args, r.StoreID, r.ProductID, stockFlag(r.Available()), at)
	}
	keys := []string{storesKey(st, advertiserID), outKey(st, advertiserID), st.seqKey(), st.feedKey(), stockAtKey(st, advertiserID)}
	reply, err := scriptPutStock.Run(commitCtx(ctx), s.client, keys, args...).Slice()
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	// {0, seq, id, stale rows…} or {1, bad rows…}: row numbers from 1.
	var status int64 = -1
	if len(reply) > 0 {
		status, _ = reply[0].(int64)
	}
	rowsOf := func(v []any) ([]int, error) {
		out := make([]int, 0, len(v))
		for _, x := range v {
			row, ok := x.(int64)
			if !ok || row < 1 || row > int64(len(rows)) {
				return nil, fmt.Errorf("%s: row %v: %w", op, x, errCorrupt)
			}
			out = append(out, int(row)-1)
		}
		return out, nil
	}
	switch status {
	case 0:
		at, err := replyCursor(reply[1:])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		s.wrote(st, at) // applied, whatever the rows below say
		stale, err := rowsOf(reply[3:])
		if err != nil {
			return nil, err
		}
		if len(stale) == 0 {
			stale = nil
		}
		return stale, nil
	case 1:
		bad, err := rowsOf(reply[1:])
		if err != nil {
			return nil, err
		}
		var p campaigns.Problems
		for _, i := range bad {
			p.AddRow(i+1, "unknown store %q", rows[i].StoreID)
		}
		return nil, fmt.Errorf("%s: %w", op, p.Err())
	}
	return nil, fmt.Errorf("%s: reply %v: %w", op, reply, errCorrupt) // the script always answers {0, …} or {1, …}
}

// StockRead names stock rows of one advertiser to read back (Store.Stock).
type StockRead struct {
	AdvertiserID string
	Rows         []campaigns.StockUpdate
}

// Stock returns the rows each read names, each row as Redis holds it now:
// out of stock when it was last reported out, in stock otherwise (never
// reported, reported back in, or its store deleted since); reads[i]'s rows
// are the answer's [i]. One ZMSCORE a read, all in one pipelined round trip,
// so that a replica applying a poll's stock records waits once, not once a
// record. A replica applies a stock record with what this returns rather
// than with the rows the record carries: those may be older than a write
// this replica has since made, and applied as written they would undo it in
// its index. A read of an advertiser ID no write accepts gets no rows.
func (s *Store) Stock(ctx context.Context, reads []StockRead) ([][]campaigns.StockUpdate, error) {
	const op = "read stock"
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out := make([][]campaigns.StockUpdate, len(reads))
	cmds := make([]*redis.Cmd, len(reads))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range reads {
			if len(r.Rows) == 0 || !validKey(r.AdvertiserID) {
				continue
			}
			args := make([]any, 0, 2+len(r.Rows))
			args = append(args, "ZMSCORE", outKey(s.shardOf(r.AdvertiserID), r.AdvertiserID))
			for _, row := range r.Rows {
				args = append(args, row.StoreID+sep+row.ProductID)
			}
			cmds[i] = p.Do(ctx, args...)
		}
		return nil
	})
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	yes, no := true, false
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		scores, err := cmd.Slice()
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		rows := reads[i].Rows
		if len(scores) != len(rows) {
			return nil, fmt.Errorf("%s: %d scores for %d rows: %w", op, len(scores), len(rows), errCorrupt)
		}
		out[i] = make([]campaigns.StockUpdate, len(rows))
		for j, r := range rows {
			out[i][j] = campaigns.StockUpdate{StoreID: r.StoreID, ProductID: r.ProductID, InStock: &yes}
			if scores[j] != nil {
				out[i][j].InStock = &no
			}
		}
	}
	return out, nil
}

func stockFlag(available bool) string {
	if available {
		return "1"
	}
	return "0"
}

// advertisersOf returns the advertisers an iteration visits: advertiserID,
// none when it cannot be a key, or all when it is "".
func (s *Store) advertisersOf(ctx context.Context, advertiserID string) ([]string, error) {
	switch {
	case advertiserID == "":
		return s.allAdvertisers(ctx)
	case !validKey(advertiserID):
		return nil, nil
	}
	return []string{advertiserID}, nil
}

// encodeStockRows encodes rows for a change record: store ID, product ID and
// "1" (in stock) or "0" (out) per row, every part followed by NUL.
func encodeStockRows(rows []campaigns.StockUpdate) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.StoreID)
		b.WriteString(sep)
		b.WriteString(r.ProductID)
		b.WriteString(sep)
		b.WriteString(stockFlag(r.Available()))
		b.WriteString(sep)
	}
	return b.String()
}

// storeReader is what storesOf reads through: the client, or the
// connection of a transaction that watches the stores' hash.
type storeReader interface {
	HKeys(ctx context.Context, key string) *redis.StringSliceCmd
	Pipeline() redis.Pipeliner
}

// snapshotTries is how many times StoresAtOnce reads an advertiser's
// stores while uploads keep changing them.
const snapshotTries = 3

// StoresAtOnce returns the stores of adv as one upload left them, in ID
// order. Stores reads a large list in many round trips, between which
// another upload of the same advertiser may land (it is atomic in Redis),
// so that the list read would be part of each: a replica applying it
// served, for seconds, a mixture no upload made. StoresAtOnce watches the
// advertiser's hash while it reads (WATCH, then an empty MULTI/EXEC) and
// reads again when an upload changed it meanwhile. After snapshotTries
// reads that uploads kept interrupting, it returns the last one and mixed
// true: the newer uploads' own feed records, which a replica applies after
// the one it is applying, replace it.
func (s *Store) StoresAtOnce(ctx context.Context, adv string) (stores []campaigns.Store, mixed bool, err error) {
	const op = "read stores at once"
	if err := s.begin(ctx); err != nil {
		return nil, false, fmt.Errorf("%s: %w", op, err)
	}
	var d storeDecoder
	for try := 1; ; try++ {
		stores = stores[:0]
		err := s.client.Watch(ctx, func(tx *redis.Tx) error {
			if _, err := s.storesOf(ctx, tx, &d, adv, nil, func(st *campaigns.Store) bool {
				stores = append(stores, *st)
				return true
			}); err != nil {
				return err
			}
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Ping(ctx)
				return nil
			})
			return err
		}, storesKey(s.shardOf(adv), adv))
		switch {
		case err == nil:
			return stores, false, nil
		case !errors.Is(err, redis.TxFailedErr):
			return nil, false, s.fail(ctx, op, err)
		case try == snapshotTries:
			return stores, true, nil
		}
	}
}

// OutOfStock calls fn for every (store, product) of an advertiser, or of all
// when advertiserID is "", that was last reported out of stock, until fn
// returns false. Keys come in (advertiser, store, product) order; like
// Stores, the iteration is not a snapshot.
func (s *Store) OutOfStock(ctx context.Context, advertiserID string, fn func(campaigns.StockKey) bool) error {
	const op = "list out of stock"
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	advs, err := s.advertisersOf(ctx, advertiserID)
	if err != nil {
		return s.fail(ctx, op, err)
	}
	var d storeDecoder // for its interner
	for _, adv := range advs {
		more, err := s.outOf(ctx, &d, adv, fn)
		if err != nil {
			return s.fail(ctx, op, err)
		}
		if !more {
			return nil
		}
	}
	return nil
}

func (s *Store) outOf(ctx context.Context, d *storeDecoder, adv string, fn func(campaigns.StockKey) bool) (bool, error) {
	key := outKey(s.shardOf(adv), adv)
	from := "-"
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		members, err := s.client.ZRangeArgs(ctx, redis.ZRangeArgs{
			Key: key, Start: from, Stop: "+", ByLex: true, Count: readChunk,
		}).Result()
		if err != nil {
			return false, err
		}
		for _, m := range members {
			store, product, ok := strings.Cut(m, sep)
			if !ok {
				return false, fmt.Errorf("stock member %q of %q: %w", m, adv, errCorrupt)
			}
			if err := ctx.Err(); err != nil {
				return false, err
			}
			if !fn(campaigns.StockKey{AdvertiserID: adv, StoreID: store, ProductID: record.Intern(&d.Interner, product)}) {
				return false, nil
			}
		}
		if len(members) < readChunk {
			return true, nil
		}
		from = "(" + members[len(members)-1]
	}
}
