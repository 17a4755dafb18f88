package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/loadtest/baseline"
	"github.com/navad/navad/loadtest/naive"
)

func cmdServeBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve-baseline", stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	if err := parse(fs, args); err != nil {
		return err
	}
	return serve(ctx, *addr, baseline.Handler())
}

func cmdServeNaive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve-naive", stderr)
	var wf worldFlags
	wf.register(fs)
	addr := fs.String("addr", "127.0.0.1:8091", "listen address")
	redisAddr := fs.String("redis", "127.0.0.1:6379", "redis-server address")
	radius := fs.Float64("radius", 800, "GEOSEARCH radius in metres")
	tz := fs.String("timezone", "Asia/Tokyo", "business time zone for opening hours")
	if err := parse(fs, args); err != nil {
		return err
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return err
	}
	w, err := wf.generate(stderr)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr, PoolSize: 64})
	defer rdb.Close()
	start := time.Now()
	if err := naive.Load(ctx, rdb, w); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "geo set loaded in %v\n", time.Since(start).Round(time.Millisecond))
	s, err := naive.NewServer(rdb, w, *radius, loc)
	if err != nil {
		return err
	}
	w = nil // the server keeps what it needs; the world is garbage now
	runtime.GC()
	return serve(ctx, *addr, s.Handler())
}

// serve runs h on addr until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, addr string, h http.Handler) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }() // waited for below
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
