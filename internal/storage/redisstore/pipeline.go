package redisstore

import (
	"context"
	"slices"
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
// Round trips are made by one goroutine at a time, started by the call that
// finds none running and ending when the queue is empty; Close waits for
// it. Callers wait for their reply or their context, whichever comes first:
// a decision whose deadline passes while Redis hangs gives up at its
// deadline, not at the client's read timeout. A call given up while still
// queued is never sent; one given up while on the wire may have happened
// (Unavailable, as for every write here).
//
// Each script is still one atomic unit in Redis; a pipeline only saves
// round trips, it does not make its scripts one transaction.
type groupPipe struct {
	client redis.UniversalClient

	mu     sync.Mutex
	queue  []*pipeCall
	flying bool
	closed bool
	wg     sync.WaitGroup
}

// pipeCall is one caller's script run.
type pipeCall struct {
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
	done   chan struct{} // closed when cmd holds the reply
}

// maxPipe bounds the calls of one round trip.
const maxPipe = 512

// run runs script with keys and args, with the calls of other callers, and
// returns its reply, or ctx's error when ctx ends first.
func (g *groupPipe) run(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	c := &pipeCall{script: script, keys: keys, args: args, done: make(chan struct{})}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(ErrClosed)
		return cmd
	}
	g.queue = append(g.queue, c)
	if !g.flying {
		g.flying = true
		g.wg.Add(1)
		go g.fly()
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.cmd
	case <-ctx.Done():
	}
	g.mu.Lock()
	if i := slices.Index(g.queue, c); i >= 0 {
		g.queue = slices.Delete(g.queue, i, i+1) // never sent
	}
	g.mu.Unlock()
	cmd := redis.NewCmd(ctx)
	cmd.SetErr(ctx.Err())
	return cmd
}

// fly makes round trips until the queue is empty.
func (g *groupPipe) fly() {
	defer g.wg.Done()
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxPipe)
		if n == 0 {
			g.flying = false
			g.mu.Unlock()
			return
		}
		batch := g.queue[:n:n]
		g.queue = append([]*pipeCall(nil), g.queue[n:]...)
		g.mu.Unlock()
		g.send(batch)
		for _, c := range batch {
			close(c.done)
		}
	}
}

// send runs batch as EVALSHA in one pipeline, and the calls that found
// their script missing (NOSCRIPT: Redis restarted or was flushed) again as
// EVAL with the source. The round trip is bounded by the client's read and
// write timeouts, not by any one caller's context.
func (g *groupPipe) send(batch []*pipeCall) {
	ctx := context.Background()
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

// close refuses further calls. Store.Close calls it, then closes the client
// (which ends a round trip in flight at once), then wait.
func (g *groupPipe) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// wait waits for the round trip in flight, if any.
func (g *groupPipe) wait() { g.wg.Wait() }
