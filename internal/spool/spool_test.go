package spool_test

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/spool"
	"github.com/navad/navad/internal/storage"
)

func open(t *testing.T, path string, max int) *spool.Spool {
	t.Helper()
	s, err := spool.Open(path, max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func event(kind storage.Kind, n int) *storage.Event {
	e := &storage.Event{Kind: kind, AdID: fmt.Sprintf("req%d.1", n),
		Issued: time.Unix(1795000000+int64(n), 0).UTC(), At: time.Unix(1795000100+int64(n), 0).UTC(),
		Key: storage.AggKey{Day: 20770, Hour: 19, AdvertiserID: "adv_1", CampaignID: "cmp_1", PublisherID: "pub_1",
			StoreID: "store-ü", Cell: 0x882f5aa6b7fffff}}
	binary.BigEndian.PutUint64(e.Token[:], uint64(n))
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPutPeekRemove: events come back as they went in, once per (kind,
// token), and go when removed.
func TestPutPeekRemove(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), spool.FileName), 100)
	want := []*storage.Event{event(storage.Impression, 1), event(storage.Click, 1), event(storage.Visit, 2)}
	for _, e := range want {
		must(t, s.Put(e))
		must(t, s.Put(e)) // again: held once
	}
	if s.Len() != 3 {
		t.Fatalf("len %d, want 3", s.Len())
	}
	got, err := s.Peek(10)
	must(t, err)
	if len(got) != 3 {
		t.Fatalf("peeked %d", len(got))
	}
	for _, g := range got {
		found := false
		for _, w := range want {
			if reflect.DeepEqual(g, w) {
				found = true
			}
		}
		if !found {
			t.Fatalf("peeked %+v, not one of those put", g)
		}
	}
	if two, _ := s.Peek(2); len(two) != 2 {
		t.Fatalf("peek 2 gave %d", len(two))
	}
	must(t, s.Remove(got[:2]))
	must(t, s.Remove(got[:2])) // gone already: nothing more
	if s.Len() != 1 {
		t.Fatalf("len %d after removing two, want 1", s.Len())
	}
}

// TestBound: a full spool refuses new events with Unavailable, still
// accepts one it holds, and takes new ones again once events are removed;
// concurrent puts never exceed the bound.
func TestBound(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), spool.FileName), 10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for i := range 30 {
		wg.Go(func() {
			err := s.Put(event(storage.Impression, i))
			if campaigns.ErrorCode(err) == campaigns.Unavailable {
				mu.Lock()
				refused++
				mu.Unlock()
			} else if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if refused != 20 || s.Len() != 10 {
		t.Fatalf("%d refused, %d held; want 20 and 10", refused, s.Len())
	}
	held, err := s.Peek(10)
	must(t, err)
	must(t, s.Put(held[0])) // held already: acknowledged
	must(t, s.Remove(held[:1]))
	must(t, s.Put(event(storage.Navigation, 99)))
	if err := s.Put(event(storage.Navigation, 100)); campaigns.ErrorCode(err) != campaigns.Unavailable {
		t.Fatalf("put into a full spool: %v", err)
	}
}

// TestReopen: what was put is there after the spool is closed and opened
// again (as after a restart), counted.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), spool.FileName)
	s, err := spool.Open(path, 5)
	must(t, err)
	for i := range 4 {
		must(t, s.Put(event(storage.Impression, i)))
	}
	must(t, s.Close())
	if err := s.Put(event(storage.Impression, 9)); err == nil {
		t.Fatal("put after close succeeded")
	}
	s = open(t, path, 5)
	if s.Len() != 4 {
		t.Fatalf("len %d after reopening, want 4", s.Len())
	}
	got, err := s.Peek(10)
	must(t, err)
	if len(got) != 4 || !reflect.DeepEqual(got[0], event(storage.Impression, 0)) {
		t.Fatalf("after reopening: %d events, first %+v", len(got), got[0])
	}
}

// TestOneProcessAtATime: a second open of the same file fails rather than
// waits.
func TestOneProcessAtATime(t *testing.T) {
	path := filepath.Join(t.TempDir(), spool.FileName)
	open(t, path, 5)
	if s, err := spool.Open(path, 5); err == nil {
		_ = s.Close()
		t.Fatal("the same spool opened twice")
	}
}

// BenchmarkPut measures spooling distinct events from 128 goroutines, as
// tracking does during an outage: each Put is fsynced before it returns,
// concurrent Puts share the fsync.
func BenchmarkPut(b *testing.B) {
	s, err := spool.Open(filepath.Join(b.TempDir(), spool.FileName), 100_000_000)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var next atomic.Int64
	b.SetParallelism(64)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Put(event(storage.Impression, int(next.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
