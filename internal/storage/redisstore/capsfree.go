package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Freeing the caps of deleted campaigns.
//
// A deleted campaign's caps total is given a 48 h expiry by DeleteCampaign
// in a second command after the delete (campaigns.go says why it cannot be
// the same one). When that command fails, the ID stays in
// {navad}:caps_pending; and totals of campaigns deleted by older navads,
// which left them without an expiry, are named only by
// {navad}:campaigns_gone. FreeDeletedCaps sweeps either set. Day counts
// and user windows need no sweep: every write gives them an expiry.

// DefaultCapsSweepInterval is how often a Store opened WithCapsSweep sweeps
// caps_pending: normally empty, so a sweep is one SSCAN.
const DefaultCapsSweepInterval = 5 * time.Minute

// freeChunk is how many IDs a sweep takes per round trip.
const freeChunk = 1000

// scriptFreeTotal gives a deleted campaign's total an expiry, unless it
// has one: so sweeps are idempotent and never push back an expiry. KEYS:
// total. ARGV: keep (ms), "missing" to also create the total at 0 when
// there is none (a reservation still in flight then increments a key that
// expires). Returns 1 when it wrote, else 0.
var scriptFreeTotal = redis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
if ttl >= 0 or (ttl == -2 and ARGV[2] ~= 'missing') then return 0 end
redis.call('SET', KEYS[1], '0', 'PX', ARGV[1])
return 1
`)

// CapsSweep says which deleted campaigns FreeDeletedCaps looks at.
type CapsSweep int

const (
	// SweepPending looks at the campaigns whose delete did not free their
	// total (caps_pending), takes each off the set once freed, and
	// creates a missing total at 0 with its expiry, as DeleteCampaign
	// would have. Its cost is that of the set, normally empty.
	SweepPending CapsSweep = iota
	// SweepGone looks at every campaign ever deleted (campaigns_gone) and
	// gives an expiry to each total that has none: the totals older navads
	// left behind. Its cost grows with the deletes: at 10,000, 10 SSCAN
	// and 10 HMGET pages and 10,000 short scripts in 10 pipelines, some
	// tens of milliseconds of Redis time; it is for start-up.
	SweepGone
)

// FreeDeletedCaps gives the caps total of each deleted campaign in the set
// sw names an expiry of two days, if it has none, and returns how many it
// gave one. A campaign live again (PutCampaign of a deleted ID) is left
// alone. It is idempotent and safe to run on many replicas at once: the
// script writes only a total without an expiry, so a second run finds
// nothing to do. (A PutCampaign of the same ID between a sweep's check and
// its script would have its total expire; the HTTP API never puts a
// deleted ID, CreateCampaign refuses it.)
func (s *Store) FreeDeletedCaps(ctx context.Context, sw CapsSweep) (int, error) {
	const op = "free deleted caps"
	if err := s.begin(ctx); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	set := keyCapsPending
	if sw == SweepGone {
		set = keyCampaignsGone
	}
	freed := 0
	var cursor uint64
	for {
		ids, next, err := s.client.SScan(ctx, set, cursor, "", freeChunk).Result()
		if err != nil {
			return freed, s.fail(ctx, op, err)
		}
		if len(ids) > 0 {
			n, err := s.freeTotals(ctx, ids, sw)
			freed += n
			if err != nil {
				return freed, s.fail(ctx, op, err)
			}
		}
		if next == 0 {
			return freed, nil
		}
		cursor = next
	}
}

// freeTotals frees the totals of the deleted campaigns among ids, and, for
// SweepPending, takes ids off caps_pending once their totals expire.
func (s *Store) freeTotals(ctx context.Context, ids []string, sw CapsSweep) (int, error) {
	live, err := s.client.HMGet(ctx, keyCampaignAdv, ids...).Result()
	if err != nil {
		return 0, err
	}
	// Each total is in its own slot: one script each, pipelined (a cluster
	// client sends each node its share). EVAL, not EVALSHA: the script is
	// short, and a node that lost its script cache cannot fail the sweep.
	mode := "missing"
	if sw == SweepGone {
		mode = ""
	}
	keep := capsDayKeep.Milliseconds()
	pipe := s.client.Pipeline()
	var cmds []*redis.Cmd
	for i, id := range ids {
		if live[i] == nil && checkCampaignKey(id) == nil {
			cmds = append(cmds, scriptFreeTotal.Eval(ctx, pipe, []string{capsTag(id) + ":total"}, keep, mode))
		}
	}
	freed := 0
	if len(cmds) > 0 {
		_, err := pipe.Exec(commitCtx(ctx))
		for _, c := range cmds {
			if n, _ := c.Int(); n == 1 {
				freed++
			}
		}
		if err != nil {
			return freed, err
		}
	}
	if sw != SweepGone {
		if err := s.client.SRem(commitCtx(ctx), keyCapsPending, ids).Err(); err != nil { // go-redis spreads a []string
			return freed, err
		}
	}
	return freed, nil
}

// sweepCaps is WithCapsSweep's goroutine; Close stops it and waits.
func (s *Store) sweepCaps(ctx context.Context, interval time.Duration) {
	defer close(s.sweepDone)
	sw := SweepGone
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_, err := s.FreeDeletedCaps(ctx, sw)
		switch {
		case err == nil:
			sw = SweepPending // every deleted campaign has been looked at
		case ctx.Err() == nil && s.onFoldError != nil:
			s.onFoldError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
