package redisstore

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/campaigns"
)

// The change feed. Every write appends, in the same atomic unit, a record
// to the stream of the slot it wrote: {navad}:feed for accounts and
// campaigns, {navad:N}:feed for the stores and stock of shard N. Records
// are Redis stream entries with these fields:
//
//	seq     the stream's sequence number: 1, 2, 3, … with no gaps
//	op      account | campaign | stores | reload | stock
//	origin  the Origin of the Store that wrote it
//	id      account or campaign ID (account, campaign)
//	adv     advertiser ID (stores, reload, stock; campaign: its owner, so
//	        that a reader can order it after that advertiser's stores)
//	ids     store IDs, NUL-separated (stores: put or deleted)
//	rows    stock rows (stock): store ID NUL product ID NUL "1"|"0" NUL, …
//
// A record says what changed; the rows of a stock record, which say what it
// became, are for logs and tools. A reader re-reads the named objects (for
// stock, Store.Stock), so applying a record twice, or a record overtaken by a
// later write, does no harm: applied as written, a record read just before
// a later write would undo it in the reader's index until the later write's
// own record came. "reload" stands for an upload too big to list its IDs:
// re-read the advertiser's stores and stock.
//
// A reader remembers, per stream, the last entry ID and seq it applied. A
// record whose seq is not the next one means records were trimmed away (the
// reader was gone longer than the retention) or Redis lost its tail; then
// the reader reloads what that stream covers; so it does when the stream's
// sequence number or its last generated ID (Seqs) is below its cursor:
// Redis went back. A new epoch in {navad}:meta means Redis lost
// everything: reload all. A writer learns where its own record went
// (OnWrite), so that it can tell when Redis lost a write before the writer
// read the record back: the stream went back below it, or another record
// came to hold its sequence number.

// Record operations.
const (
	OpAccount  = "account"
	OpCampaign = "campaign"
	OpStores   = "stores"
	OpReload   = "reload"
	OpStock    = "stock"
	// OpUnreadable is no record's operation: ReadFeed gives it to a
	// record it cannot decode (a newer build's format, a hand edit), with
	// Problem saying why, so that the reader reloads that stream as it
	// does for an operation it does not know, and goes on with the others.
	OpUnreadable = "unreadable"
)

// Cursor is a reader's place in one stream: the last entry applied.
type Cursor struct {
	ID  string // stream entry ID; "0-0" before the first
	Seq int64  // its sequence number; 0 before the first
}

// Change is one change record.
type Change struct {
	Cursor              // where the record sits
	Op           string // one of the Op constants; others come from newer builds
	Origin       string // Origin of the writing Store
	ObjectID     string // the account or campaign (OpAccount, OpCampaign)
	AdvertiserID string // OpStores, OpReload, OpStock; OpCampaign (empty in records of older builds)
	StoreIDs     []string
	Deleted      bool // OpStores: StoreIDs were deleted, with all their stock rows
	Stock        []campaigns.StockUpdate
	Problem      string // OpUnreadable: why the record could not be read
}

// OnWrite has fn told of every write made through s: once Redis has
// acknowledged it, the stream and place (sequence number and entry ID) of
// its change record; the last function set is the one told. It returns
// what stops fn being told, and does nothing once another is set. fn runs
// on the writer's goroutine before the write method returns, so it must be
// quick and must not call s.
//
// A replica's follower uses it to tell a record it reads from the record of
// its own write that Redis lost: Redis that restarts without the tail of its
// file, or fails over to a replica that had not received it, gives the lost
// record's sequence number to the next write (package replica).
func (s *Store) OnWrite(fn func(Stream, Cursor)) (stop func()) {
	p := &fn
	s.onWrite.Store(p)
	return func() { s.onWrite.CompareAndSwap(p, nil) }
}

// wrote tells OnWrite's function of a write acknowledged at st, at.
func (s *Store) wrote(st Stream, at Cursor) {
	if fn := s.onWrite.Load(); fn != nil {
		(*fn)(st, at)
	}
}

// writeReply splits the reply of a write script (scripts.go): its status,
// and where it appended its change record when it wrote ({status, seq, id};
// {status} when it wrote nothing, at is then the zero Cursor).
func writeReply(v []any) (status string, at Cursor, err error) {
	if len(v) == 0 {
		return "", Cursor{}, fmt.Errorf("write reply %v: %w", v, errCorrupt)
	}
	status, ok := v[0].(string)
	if !ok {
		return "", Cursor{}, fmt.Errorf("write reply %v: %w", v, errCorrupt)
	}
	if len(v) == 1 {
		if status == "ok" { // a write: where is its record?
			return "", Cursor{}, fmt.Errorf("write reply %v: %w", v, errCorrupt)
		}
		return status, Cursor{}, nil
	}
	if at, err = replyCursor(v[1:]); err != nil {
		return "", Cursor{}, err
	}
	return status, at, nil
}

// runWrite reads the reply of a write script run as cmd (writeReply) and,
// when it wrote ("ok"), tells OnWrite's function where its record went in
// stream st. It returns the script's status for the caller's own cases.
func (s *Store) runWrite(ctx context.Context, op string, st Stream, cmd *redis.Cmd) (string, error) {
	reply, err := cmd.Slice()
	if err != nil {
		return "", s.fail(ctx, op, err)
	}
	res, at, err := writeReply(reply)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if res == "ok" {
		s.wrote(st, at)
	}
	return res, nil
}

// replyCursor reads a change record's place from a script's reply: seq (an
// integer) then entry ID.
func replyCursor(v []any) (Cursor, error) {
	if len(v) < 2 {
		return Cursor{}, fmt.Errorf("record place %v: %w", v, errCorrupt)
	}
	seq, ok1 := v[0].(int64)
	id, ok2 := v[1].(string)
	if _, _, ok := parseID(id); !ok1 || !ok2 || !ok || seq < 1 {
		return Cursor{}, fmt.Errorf("record place %v: %w", v[:2], errCorrupt)
	}
	return Cursor{ID: id, Seq: seq}, nil
}

// Streams returns every stream of the database: CampaignsStream, then one
// per shard.
func (s *Store) Streams() []Stream {
	all := make([]Stream, s.shards+1)
	for i := range all {
		all[i] = Stream(i)
	}
	return all
}

// StreamOf returns the stream recording advertiserID's stores and stock.
func (s *Store) StreamOf(advertiserID string) Stream { return s.shardOf(advertiserID) }

// Heads returns the cursor of the last record of each stream, in one
// pipelined round trip. Reading state after taking heads and then following
// from them misses nothing.
func (s *Store) Heads(ctx context.Context, streams []Stream) ([]Cursor, error) {
	return s.streamCursors(ctx, "feed heads", scriptHeadSrc, streams)
}

// streamCursors runs script, which answers a stream's {seq, entry ID}, for
// each stream in one pipelined round trip (Heads, Seqs).
func (s *Store) streamCursors(ctx context.Context, op, script string, streams []Stream) ([]Cursor, error) {
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	pipe := s.client.Pipeline()
	cmds := make([]*redis.Cmd, len(streams))
	for i, st := range streams {
		// EVAL, not EVALSHA: a pipeline cannot recover from NOSCRIPT.
		cmds[i] = pipe.Eval(ctx, script, []string{st.seqKey(), st.feedKey()})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.fail(ctx, op, err)
	}
	out := make([]Cursor, len(streams))
	for i, c := range cmds {
		v, err := c.StringSlice()
		if err != nil || len(v) != 2 {
			return nil, fmt.Errorf("%s: unexpected reply %v (%v)", op, c.Val(), err)
		}
		seq, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: seq %q: %w", op, v[0], err)
		}
		if _, _, ok := parseID(v[1]); !ok {
			return nil, fmt.Errorf("%s: entry ID %q: %w", op, v[1], errCorrupt)
		}
		out[i] = Cursor{ID: v[1], Seq: seq}
	}
	return out, nil
}

// Seqs returns, for each stream, its current sequence number and the ID
// Redis last generated for it (XINFO STREAM's last-generated-id: unlike the
// last entry's ID, it stays when the stream is trimmed empty; "0-0" for a
// stream that does not exist), in one pipelined round trip: a cheap check
// that Redis did not lose records a reader has applied. A reader whose
// cursor is past either lost them even when later writes have taken the
// sequence number back up (a failover to a Redis replica that missed the
// last records, its clock behind: XADD gives the new records IDs below the
// reader's cursor, and XREAD after it never returns them).
//
// Redis builds the stream's first and last entries into the XINFO reply
// that the script reads: a few µs a stream with small records, more with
// large ones (about 1 ms with 300 KB stock records at both ends).
func (s *Store) Seqs(ctx context.Context, streams []Stream) ([]Cursor, error) {
	return s.streamCursors(ctx, "feed seqs", scriptSeqSrc, streams)
}

// CompareIDs compares two stream entry IDs in Redis's order, milliseconds
// then sequence (not as strings: "9-0" is before "10-0"): -1 when a is
// before b, 0 when they are equal, +1 when a is after b. An ID that is not
// of the form ms-seq, as Redis gives them, reads as 0-0.
func CompareIDs(a, b string) int {
	ams, aseq, _ := parseID(a)
	bms, bseq, _ := parseID(b)
	if c := cmp.Compare(ams, bms); c != 0 {
		return c
	}
	return cmp.Compare(aseq, bseq)
}

// parseID splits a stream entry ID "ms-seq" into its numbers; ok is false
// (and both 0) when it is not of that form.
func parseID(id string) (ms, seq uint64, ok bool) {
	m, q, found := strings.Cut(id, "-")
	ms, err1 := strconv.ParseUint(m, 10, 64)
	seq, err2 := strconv.ParseUint(q, 10, 64)
	if !found || err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return ms, seq, true
}

// ReadFeed returns, for each stream, up to count records after its cursor,
// oldest first, in one pipelined round trip. It does not block.
func (s *Store) ReadFeed(ctx context.Context, streams []Stream, after []Cursor, count int) ([][]Change, error) {
	const op = "read feed"
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	pipe := s.client.Pipeline()
	cmds := make([]*redis.XStreamSliceCmd, len(streams))
	for i, st := range streams {
		// One stream per XREAD: in Redis Cluster the streams live in
		// different slots.
		cmds[i] = pipe.XRead(ctx, &redis.XReadArgs{
			Streams: []string{st.feedKey(), after[i].ID},
			Count:   int64(count),
			Block:   -1,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, s.fail(ctx, op, err)
	}
	out := make([][]Change, len(streams))
	for i, c := range cmds {
		res, err := c.Result()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
	stream:
		for _, xs := range res {
			for _, m := range xs.Messages {
				ch, err := decodeChange(m)
				if err != nil {
					// Its stream is reloaded; the records after it
					// are read again from the reloaded place.
					out[i] = append(out[i], Change{Cursor: ch.Cursor, Op: OpUnreadable, Problem: err.Error()})
					break stream
				}
				out[i] = append(out[i], ch)
			}
		}
	}
	return out, nil
}

func decodeChange(m redis.XMessage) (Change, error) {
	get := func(k string) string {
		v, _ := m.Values[k].(string)
		return v
	}
	seq, err := strconv.ParseInt(get("seq"), 10, 64)
	if err != nil {
		return Change{Cursor: Cursor{ID: m.ID}}, fmt.Errorf("record %s: seq %q: %w", m.ID, get("seq"), err)
	}
	ch := Change{
		Cursor:       Cursor{ID: m.ID, Seq: seq},
		Op:           get("op"),
		Origin:       get("origin"),
		ObjectID:     get("id"),
		AdvertiserID: get("adv"),
		Deleted:      get("deleted") == "1",
	}
	if ids := get("ids"); ids != "" {
		ch.StoreIDs = strings.Split(ids, sep)
	}
	if rows := get("rows"); rows != "" {
		parts := strings.Split(strings.TrimSuffix(rows, sep), sep)
		if len(parts)%3 != 0 {
			return Change{Cursor: ch.Cursor}, fmt.Errorf("record %s: %d stock row parts: %w", m.ID, len(parts), errCorrupt)
		}
		ch.Stock = make([]campaigns.StockUpdate, 0, len(parts)/3)
		yes, no := true, false
		for i := 0; i < len(parts); i += 3 {
			u := campaigns.StockUpdate{StoreID: parts[i], ProductID: parts[i+1], InStock: &no}
			if parts[i+2] == "1" {
				u.InStock = &yes
			}
			ch.Stock = append(ch.Stock, u)
		}
	}
	return ch, nil
}

// Advertisers returns the advertisers of a store shard that have had stores,
// sorted.
func (s *Store) Advertisers(ctx context.Context, st Stream) ([]string, error) {
	const op = "list advertisers"
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if st <= CampaignsStream || int(st) > s.shards {
		return nil, fmt.Errorf("%s: stream %d is not a store shard", op, st)
	}
	advs, err := s.client.ZRange(ctx, advertisersKey(st), 0, -1).Result()
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return advs, nil
}

// StoresByID reads the named stores of an advertiser: those that exist, and
// the IDs of those that do not (deleted).
func (s *Store) StoresByID(ctx context.Context, advertiserID string, ids []string) (found []campaigns.Store, missing []string, err error) {
	const op = "stores by id"
	if err := s.begin(ctx); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	if len(ids) == 0 {
		return nil, nil, nil
	}
	present := make(map[string]bool, len(ids))
	var d storeDecoder
	_, err = s.storesOf(ctx, s.client, &d, advertiserID, ids, func(st *campaigns.Store) bool {
		found = append(found, *st)
		present[st.ID] = true
		return true
	})
	if err != nil {
		return nil, nil, s.fail(ctx, op, err)
	}
	for _, id := range ids {
		if !present[id] {
			missing = append(missing, id)
		}
	}
	return found, missing, nil
}
