package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/storage/redisstore"
)

// uploadDuringReads lands another upload after the first round of reads of
// each attempt to read key's stores (an attempt begins with its HKEYS),
// for the first times attempts.
type uploadDuringReads struct {
	key    string
	mu     sync.Mutex
	times  int
	armed  bool
	upload func(n int)
	n      int
}

func (h *uploadDuringReads) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *uploadDuringReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); len(a) > 1 && strings.EqualFold(fmt.Sprint(a[0]), "hkeys") && fmt.Sprint(a[1]) == h.key {
			h.mu.Lock()
			h.armed = h.n < h.times
			h.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

func (h *uploadDuringReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if a := cmds[0].Args(); len(a) > 1 && strings.EqualFold(fmt.Sprint(a[0]), "hmget") && fmt.Sprint(a[1]) == h.key {
			h.mu.Lock()
			fire := h.armed
			h.armed = false
			if fire {
				h.n++
			}
			n := h.n
			h.mu.Unlock()
			if fire {
				h.upload(n)
			}
		}
		return err
	}
}

// TestStoresAtOnce: an upload landing while a large list is read in round
// trips makes the read start again, so that what is returned is one
// upload's list; uploads that keep landing are read no more than three
// times, and the answer says the list may be a mixture.
func TestStoresAtOnce(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	open := func() *redisstore.Store {
		s, err := redisstore.Open(ctx, srv.URL())
		must(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	reader, writer := open(), open()
	const n = 10_000 // more than one round of reads
	must(t, writer.PutStores(ctx, "adv", refusedStores(n, "upload 0")))
	h := &uploadDuringReads{key: fmt.Sprintf("{navad:%d}:stores:adv", int(reader.StreamOf("adv"))-1)}
	h.upload = func(k int) { must(t, writer.PutStores(ctx, "adv", refusedStores(n, fmt.Sprint("upload ", k)))) }
	reader.Client().AddHook(h)

	for _, c := range []struct {
		interrupts int
		mixed      bool
	}{{1, false}, {2, false}, {3, true}} {
		h.mu.Lock()
		h.times, h.n = c.interrupts, 0
		h.mu.Unlock()
		stores, mixed, err := reader.StoresAtOnce(ctx, "adv")
		must(t, err)
		names := map[string]int{}
		for _, st := range stores {
			names[st.Name]++
		}
		if len(stores) != n || mixed != c.mixed {
			t.Fatalf("%d uploads during the reads: %d stores, mixed %v; want %d, %v", c.interrupts, len(stores), mixed, n, c.mixed)
		}
		if !mixed && (len(names) != 1 || names[fmt.Sprint("upload ", c.interrupts)] != n) {
			t.Fatalf("%d uploads during the reads: stores of %v, want all of the last upload", c.interrupts, names)
		}
		if mixed && len(names) < 2 {
			t.Fatalf("said mixed, but all of one upload: %v", names)
		}
	}
}
