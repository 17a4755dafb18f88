package pacing_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/navad/navad/internal/pacing"
	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/redisstore"
)

// redisCaps starts a redis-server for the test and returns it with the
// caps of a store on it.
func redisCaps(t *testing.T) (*redistest.Server, storage.Caps) {
	t.Helper()
	redisstore.SetLogger(slog.New(slog.DiscardHandler)) // go-redis would log every failed dial
	srv := redistest.Start(t)
	s, err := redisstore.Open(context.Background(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return srv, s.Caps()
}

// TestReturnDuringRedisOutageIsSentAgain: the ads a replica's idle lease
// holds when Redis is down are given back once it is back. The return
// refused at connect was dropped as if it might have happened, and the
// campaign's total stayed short of its budget by the lease for good.
func TestReturnDuringRedisOutageIsSentAgain(t *testing.T) {
	srv, caps := redisCaps(t)
	p := leasing(t, caps)
	c := capped("cmp_1", 0, 1000, nil)
	for range 10 {
		if !p.Allow(t.Context(), c, "", time.Now()) {
			t.Fatal("refused under its budget")
		}
	}
	if n := counted(t, caps, "cmp_1").Total; n <= 10 {
		t.Fatalf("counted %d for 10 ads: nothing held", n)
	}

	srv.Stop()
	if err := pacing.ReturnIdleLeases(p, time.Now().Add(time.Hour)); err == nil {
		t.Fatal("a return with Redis down reported no error")
	}
	srv.Restart()
	time.Sleep(pacing.ProbeInterval + 100*time.Millisecond) // the breaker's rest after the failure
	if err := pacing.ReturnIdleLeases(p, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := counted(t, caps, "cmp_1"); n.Total != 10 || n.Daily != 10 {
		t.Fatalf("counters %+v once Redis is back, want the 10 served", n)
	}
}
