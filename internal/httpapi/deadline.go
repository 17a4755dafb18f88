package httpapi

import (
	"context"
	"sync"
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
// It keeps context's contract: Err is nil until the deadline passes, the
// request's context ends or stop is called, and then the same error for
// good; a Done asked for after that is closed already, and agrees with
// Err. (context.Cause of it, before any Done, is the request context's
// cause: nil while the request lives.)
type decisionCtx struct {
	context.Context // the request's
	deadline        time.Time

	mu     sync.Mutex
	err    error           // the first non-nil Err, before any Done
	timed  context.Context // made by the first Done
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

func (c *decisionCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timerLocked().Done()
}

func (c *decisionCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timed != nil {
		return c.timed.Err()
	}
	if c.err == nil {
		if !time.Now().Before(c.deadline) {
			c.err = context.DeadlineExceeded
		} else {
			c.err = c.Context.Err()
		}
	}
	return c.err
}

func (c *decisionCtx) Value(key any) any {
	c.mu.Lock()
	t := c.timed
	c.mu.Unlock()
	if t != nil {
		return t.Value(key) // so that context.Cause finds the timer's cause
	}
	return c.Context.Value(key)
}

// AfterFunc lets a context derived from this one (context.WithCancel, say)
// follow it without a goroutine of its own, as it follows a context of
// the context package.
func (c *decisionCtx) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	t := c.timerLocked()
	c.mu.Unlock()
	return context.AfterFunc(t, f)
}

// timerLocked returns the timer's context, made on first use: one that
// ends at the deadline or with the request, or, if Err has reported an
// end already, one that has ended with that error.
func (c *decisionCtx) timerLocked() context.Context {
	if c.timed != nil {
		return c.timed
	}
	switch c.err {
	case nil:
		c.timed, c.cancel = context.WithDeadline(c.Context, c.deadline)
	case context.DeadlineExceeded:
		// Past the deadline: ended at once, whatever the request did since.
		c.timed, c.cancel = context.WithDeadline(context.WithoutCancel(c.Context), c.deadline)
	default:
		c.timed, c.cancel = context.WithCancel(context.WithoutCancel(c.Context))
		c.cancel()
	}
	return c.timed
}

// stop ends the decision's context: it releases the timer, if one was
// made, and Err reports context.Canceled from then on if nothing ended it
// before.
func (c *decisionCtx) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timed != nil {
		c.cancel()
		return
	}
	if c.err == nil {
		c.err = context.Canceled
	}
}
