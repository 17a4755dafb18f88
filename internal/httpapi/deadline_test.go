package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDecisionCtxDeadline: before its deadline a decision's context is
// live; after it, Err says so without anyone having asked for Done, and a
// Done asked for then is closed already.
func TestDecisionCtxDeadline(t *testing.T) {
	ctx := newDecisionCtx(context.Background(), 20*time.Millisecond)
	defer ctx.stop()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > 20*time.Millisecond {
		t.Fatalf("deadline %v, %v", d, ok)
	}
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err before the deadline: %v", err)
	}
	time.Sleep(25 * time.Millisecond)
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline: %v", err)
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done asked for after the deadline is not closed")
	}
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err once Done was asked for: %v", err)
	}
}

// TestDecisionCtxDone: a Done asked for before the deadline closes at it,
// and a context derived from the decision's ends with it.
func TestDecisionCtxDone(t *testing.T) {
	ctx := newDecisionCtx(context.Background(), 30*time.Millisecond)
	defer ctx.stop()
	derived, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case <-ctx.Done():
		t.Fatal("Done closed before the deadline")
	default:
	}
	for _, c := range []context.Context{ctx, derived} {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed after the deadline")
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err %v", c.Err())
		}
	}
}

// TestDecisionCtxParent: the request's end (the client went away) ends the
// decision, before and after Done was asked for; and a parent's earlier
// deadline is kept.
func TestDecisionCtxParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx := newDecisionCtx(parent, time.Hour)
	defer ctx.stop()
	cancel()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("Err after the parent ended, Done never asked for: %v", ctx.Err())
	}
	parent, cancel = context.WithCancel(context.Background())
	ctx = newDecisionCtx(parent, time.Hour)
	defer ctx.stop()
	done := ctx.Done()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed when the parent ended")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("Err %v", ctx.Err())
	}

	early, cancelEarly := context.WithTimeout(context.Background(), time.Minute)
	defer cancelEarly()
	pd, _ := early.Deadline()
	if d, _ := newDecisionCtx(early, time.Hour).Deadline(); !d.Equal(pd) {
		t.Fatalf("deadline %v, want the parent's %v", d, pd)
	}
}

// TestDecisionCtxStop: stop ends the context: a timer that was made, and
// one asked for after stop, which is closed already; and Err says
// Canceled from then on.
func TestDecisionCtxStop(t *testing.T) {
	ctx := newDecisionCtx(context.Background(), time.Hour)
	done := ctx.Done()
	ctx.stop()
	select {
	case <-done:
	default:
		t.Fatal("stop did not end the timer")
	}
	ctx = newDecisionCtx(context.Background(), time.Hour)
	ctx.stop()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("Err after stop: %v", ctx.Err())
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done asked for after stop is not closed")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("Err once Done was asked for after stop: %v", ctx.Err())
	}
}

// TestDecisionCtxErrStays: once Err has said why the decision ended, it
// says the same for good, even if the request ends later and Done is
// asked for after that (context's contract).
func TestDecisionCtxErrStays(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx := newDecisionCtx(parent, time.Millisecond)
	defer ctx.stop()
	time.Sleep(5 * time.Millisecond)
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline: %v", ctx.Err())
	}
	cancel()
	<-ctx.Done()
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err after the request ended and Done was asked for: %v, want it to stay DeadlineExceeded", err)
	}
	if cause := context.Cause(ctx); !errors.Is(cause, context.DeadlineExceeded) {
		t.Fatalf("Cause %v", cause)
	}
}
