package httpapi

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// decisionCtx is a decision's context: the request's, bounded by the
// decision's deadline. context.WithTimeout would arm a timer and register
// with the request's context on every decision (about 1.6 µs and six
// allocations), though most decisions never wait on anything: the
// embedded store answers from memory, and on Redis only some ads ask it.
// decisionCtx answers Deadline and Err from the clock and makes the timer
// only when something asks for Done, to wait (a Redis call).
//
// It keeps context's contract: Err is nil until the deadline passes or
// the request's context ends; once Done has been asked for, Err is the
// timer's, and a timer made after the deadline ends at once.
type decisionCtx struct {
	context.Context // the request's
	deadline        time.Time

	once   sync.Once
	timed  atomic.Pointer[context.Context] // set by the first Done
	cancel context.CancelFunc
}

// newDecisionCtx bounds parent by timeout. stop must be called when the
// decision is over, to release the timer if one was made.
func newDecisionCtx(parent context.Context, timeout time.Duration) *decisionCtx {
	d := time.Now().Add(timeout)
	if pd, ok := parent.Deadline(); ok && pd.Before(d) {
		d = pd
	}
	return &decisionCtx{Context: parent, deadline: d}
}

func (c *decisionCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *decisionCtx) Done() <-chan struct{} { return c.timer().Done() }

func (c *decisionCtx) Err() error {
	if t := c.timed.Load(); t != nil {
		return (*t).Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// AfterFunc lets a context derived from this one (context.WithCancel, say)
// follow it without a goroutine of its own, as it follows a context of
// the context package.
func (c *decisionCtx) AfterFunc(f func()) func() bool {
	return context.AfterFunc(c.timer(), f)
}

func (c *decisionCtx) timer() context.Context {
	c.once.Do(func() {
		t, cancel := context.WithDeadline(c.Context, c.deadline)
		c.cancel = cancel
		c.timed.Store(&t)
	})
	return *c.timed.Load()
}

// stop releases the timer, if one was made.
func (c *decisionCtx) stop() {
	if c.timed.Load() != nil {
		c.cancel()
	}
}
