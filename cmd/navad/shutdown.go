package main

import (
	"context"
	"fmt"
)

// Flusher makes durable what a part of the server holds in memory: the
// tracking events store's pending events. Close calls every flusher in
// Main.Flushers after the last request in flight has finished (so nothing
// is added after the flush) and before the store closes.
//
// This is the hook for the tracking branch: Run appends its events store
// here once it exists.
type Flusher interface {
	// Flush writes out everything pending. It must return by ctx's
	// deadline, reporting what it could not write as an error.
	Flush(ctx context.Context) error
}

// FlusherFunc adapts a function to Flusher.
type FlusherFunc func(ctx context.Context) error

// Flush calls f.
func (f FlusherFunc) Flush(ctx context.Context) error { return f(ctx) }

// flush calls every flusher within the shutdown timeout; a flusher's error
// does not stop the others.
func (m *Main) flush() []error {
	if len(m.Flushers) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
	defer cancel()
	var errs []error
	for _, f := range m.Flushers {
		if err := f.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush: %w", err))
		}
	}
	return errs
}
