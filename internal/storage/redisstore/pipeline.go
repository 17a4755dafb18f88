package redisstore

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// groupPipe sends the script calls of concurrent callers together, in one
// pipelined round trip: the calls that arrived while the previous round
// trip was out. Record (a tracking event) and Reserve (a served ad) are
// small scripts that a busy replica runs thousands of times a second; sent
// one by one, each costs a write and a read system call on both sides,
// which is most of what they cost. Like the embedded store's group commit it
// adds no delay: a lone call goes out at once.
//
// There is no background goroutine. The first caller to find no round trip
// out leads: it sends everything queued, hands each waiter its reply, and
// passes the lead to the first caller that queued meanwhile.
//
// Each script is still one atomic unit in Redis; a pipeline only saves
// round trips, it does not make its scripts one transaction.
type groupPipe struct {
	client redis.UniversalClient

	mu      sync.Mutex
	queue   []*pipeCall
	leading bool
}

// pipeCall is one caller's script run.
type pipeCall struct {
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
	wake   chan bool // true: lead the next round trip; false: cmd is done
}

// maxPipe bounds the calls of one round trip.
const maxPipe = 512

// run runs script with keys and args, with the calls of other callers, and
// returns its reply. ctx gives the round trip its values only: as for every
// write of this package, a call on the wire is not abandoned (commitCtx).
func (g *groupPipe) run(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	c := &pipeCall{script: script, keys: keys, args: args, wake: make(chan bool, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if g.leading {
		g.mu.Unlock()
		if lead := <-c.wake; !lead {
			return c.cmd
		}
	} else {
		g.leading = true
		g.mu.Unlock()
	}
	// Leading: c is still queued, so it goes out in this round trip.
	g.mu.Lock()
	n := min(len(g.queue), maxPipe)
	batch := g.queue[:n:n]
	g.queue = append([]*pipeCall(nil), g.queue[n:]...)
	g.mu.Unlock()

	g.send(commitCtx(ctx), batch)
	for _, o := range batch {
		if o != c {
			o.wake <- false
		}
	}
	g.mu.Lock()
	if len(g.queue) > 0 {
		next := g.queue[0]
		g.mu.Unlock()
		next.wake <- true
	} else {
		g.leading = false
		g.mu.Unlock()
	}
	return c.cmd
}

// send runs batch as EVALSHA in one pipeline, and the calls that found
// their script missing (NOSCRIPT: Redis restarted or was flushed) again as
// EVAL with the source.
func (g *groupPipe) send(ctx context.Context, batch []*pipeCall) {
	if len(batch) == 1 {
		c := batch[0]
		c.cmd = c.script.Run(ctx, g.client, c.keys, c.args...)
		return
	}
	pipe := g.client.Pipeline()
	for _, c := range batch {
		c.cmd = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	var again []*pipeCall
	for _, c := range batch {
		if err := c.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			again = append(again, c)
		}
	}
	if len(again) == 0 {
		return
	}
	pipe = g.client.Pipeline()
	for _, c := range again {
		c.cmd = c.script.Eval(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx)
}
