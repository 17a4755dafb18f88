package boltstore_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/internal/storage/storagetest"
)

// The kill -9 tests run the real Store in a child process (this test
// binary again, with crashChildEnv set), which writes a line to an
// acknowledgement file after each write returns nil; the parent kills it
// with SIGKILL at a random point and opens the data dir itself.

const crashChildEnv = "NAVAD_BOLT_CRASH_CHILD"

// crashBatchRows is the rows of each served batch in the crash tests.
const crashBatchRows = 40

// crashBatch returns the rows of served batch i (from 1): the same in the
// child and the parent.
func crashBatch(i int) []storage.ServedCount {
	return servedRows(rand.New(rand.NewPCG(7, uint64(i))), crashBatchRows, 0, 1, 2, 3)
}

// crashCapsFlush is the child's caps flush interval.
const crashCapsFlush = 50 * time.Millisecond

// crashEvent returns event i of writer w.
func crashEvent(w, i int) *storage.Event {
	r := rand.New(rand.NewPCG(uint64(w), uint64(i)))
	row := servedRows(r, 1, 0, 1, 2, 3)[0]
	at := time.Date(2026, 11, 2, 1, 0, 0, 0, time.UTC)
	e := &storage.Event{Kind: storage.Kind(1 + r.IntN(4)), AdID: "r.1", Issued: at, At: at, Key: row.Key}
	binary.BigEndian.PutUint32(e.Token[:], uint32(w))
	binary.BigEndian.PutUint64(e.Token[4:], uint64(i))
	return e
}

// fastClock runs 600 times faster than the wall clock from a fixed day,
// so that hours of served counts fall due for compaction by time within a
// run of the child.
func fastClock() func() time.Time {
	base, start := time.Date(2026, 11, 2, 0, 30, 0, 0, time.UTC), time.Now()
	return func() time.Time { return base.Add(time.Since(start) * 600) }
}

// TestCrashChild is the child's side; it only runs under crashChildEnv.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("the child of the kill -9 tests")
	}
	s, err := boltstore.Open(dir, boltstore.WithClock(fastClock()), boltstore.WithCompaction(1500, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := os.OpenFile(filepath.Join(dir, "ack"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprintf(ack, format+"\n", args...); err != nil {
			panic(err)
		}
	}
	ctx := context.Background()
	first, _ := strconv.Atoi(os.Getenv(crashChildEnv + "_FIRST"))
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := first; ; i++ {
			if err := s.AddServed(ctx, fmt.Sprint("b", i), crashBatch(i)); err != nil {
				panic(err)
			}
			acked("s %d", i)
			time.Sleep(5 * time.Millisecond) // a flush a second in navad; many here
		}
	})
	caps, err := boltstore.NewCaps(s, boltstore.CapsOptions{FlushInterval: crashCapsFlush})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		for i := 1; ; i++ {
			now := time.Now()
			r := capRequest("cmp_caps", "", now, 0, 0)
			if ok, err := caps.Reserve(ctx, r); err != nil || !ok {
				panic(fmt.Sprint(ok, err))
			}
			acked("c %d %d", i, now.UnixNano())
			time.Sleep(100 * time.Microsecond)
		}
	})
	for w := range 4 {
		wg.Go(func() {
			for i := first * 10; ; i++ {
				if _, err := s.Record(ctx, crashEvent(w, i)); err != nil {
					panic(err)
				}
				acked("e %d %d", w, i)
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
}

// TestCrashKill9 kills a Store in the middle of served flushes, their
// compactions (by size and by time) and tracking events, several times
// over one data dir, and checks after each kill that every acknowledged
// write is there, the batch in flight at most once, and every report
// agrees with the raw events and the served batches, before and after
// the logs are merged.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	served := 0          // batches known to be in the file
	var capsBefore int64 // the caps total found after the last kill
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s_FIRST=%d", crashChildEnv, served+1))
		cmd.Stderr = os.Stderr
		must(t, os.WriteFile(filepath.Join(dir, "ack"), nil, 0o600))
		must(t, cmd.Start())
		// Long enough that some reservations are due on disk by the
		// kill, which falls at a random point in the child's writes.
		want, until := 20+r.IntN(300), time.Now().Add(1500*time.Millisecond+time.Duration(r.IntN(1000))*time.Millisecond)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
			if time.Now().After(until) && len(ackLines(t, dir)) >= want {
				break
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("round %d: the child acknowledged too little", round)
			}
		}
		killed := time.Now()
		must(t, cmd.Process.Kill())
		_ = cmd.Wait()

		lines := ackLines(t, dir)
		ackedEvents := make(map[storage.TokenID]bool)
		lastBatch := served
		capsAcked, capsDue := 0, 0 // reserved; reserved a flush and more before the kill
		for _, l := range lines {
			var a, b int
			switch {
			case strings.HasPrefix(l, "c "):
				_, _ = fmt.Sscanf(l, "c %d %d", &a, &b)
				capsAcked = max(capsAcked, a)
				if killed.Sub(time.Unix(0, int64(b))) > crashCapsFlush+time.Second {
					capsDue = max(capsDue, a)
				}
			case strings.HasPrefix(l, "s "):
				_, _ = fmt.Sscanf(l, "s %d", &a)
				lastBatch = max(lastBatch, a)
			case strings.HasPrefix(l, "e "):
				_, _ = fmt.Sscanf(l, "e %d %d", &a, &b)
				ackedEvents[crashEvent(a, b).Token] = true
			}
		}
		c := newClock()
		s, err := boltstore.Open(dir, boltstore.WithClock(c.now), boltstore.WithCompaction(1500, 0))
		must(t, err)
		// The events: every acknowledged one is there, and the counts
		// are those of the raw events, each once.
		events := make(storagetest.Ledger)
		raw := make(map[storage.TokenID]bool)
		must(t, s.RawEvents(t.Context(), func(e *storage.Event) bool {
			if raw[e.Token] {
				t.Errorf("round %d: event %x twice", round, e.Token)
			}
			raw[e.Token] = true
			var n storage.Counts
			n.AddKind(e.Kind, 1)
			events.Add(e.Key, n)
			return true
		}))
		for tok := range ackedEvents {
			if !raw[tok] {
				t.Fatalf("round %d: acknowledged event %x lost", round, tok)
			}
		}
		// The served batches: those acknowledged, and perhaps the one in
		// flight, each once.
		match := func(what string) int {
			for _, n := range []int{lastBatch, lastBatch + 1} {
				l := maps.Clone(events)
				for i := 1; i <= n; i++ {
					l.Served(crashBatch(i))
				}
				if crashReportsMatch(t, s, l) {
					return n
				}
			}
			t.Fatalf("round %d, %s: the reports are neither %d nor %d batches and the raw events", round, what, lastBatch, lastBatch+1)
			return 0
		}
		n := match("as found")
		if _, runs, err := s.ServedBlocks(); err != nil || runs == 0 {
			t.Fatalf("round %d: no run: the child merged nothing (%v)", round, err)
		}
		c.add(48 * time.Hour)
		if _, err := s.CompactServed(t.Context()); err != nil {
			t.Fatal(err)
		}
		if log, _, err := s.ServedBlocks(); err != nil || log != 0 {
			t.Fatalf("round %d: %d log blocks left after merging everything: %v", round, log, err)
		}
		if m := match("merged"); m != n {
			t.Fatalf("round %d: %d batches before the merge, %d after", round, n, m)
		}
		// The caps: what was counted a flush before the kill is kept
		// (the README's promise), and nothing is counted twice.
		caps, err := boltstore.NewCaps(s, boltstore.CapsOptions{})
		must(t, err)
		var total int64
		for _, day := range []time.Time{killed, killed.Add(-24 * time.Hour)} {
			got, err := caps.Served(t.Context(), "cmp_caps", capRequest("cmp_caps", "", day, 0, 0).Day, "", killed)
			must(t, err)
			total = max(total, got.Total)
		}
		if total < capsBefore+int64(capsDue) || total > capsBefore+int64(capsAcked)+1 {
			t.Fatalf("round %d: caps total %d after the kill, want %d to %d", round, total, capsBefore+int64(capsDue), capsBefore+int64(capsAcked)+1)
		}
		capsBefore = total
		must(t, caps.Close())
		must(t, s.Close())
		served = n
		t.Logf("round %d: %d batches, %d events (%d acknowledged), %d ads reserved (%d acknowledged, %d due on disk)",
			round, n, len(raw), len(ackedEvents), total, capsAcked, capsDue)
	}
}

// crashReportsMatch reports whether every query of servedQueries (and
// one of all days) agrees with l.
func crashReportsMatch(t *testing.T, s *boltstore.Store, l storagetest.Ledger) bool {
	qs := append(servedQueries(), storage.AggregateQuery{From: servedDay - 1, To: servedDay + 3, Dims: storage.AllDims})
	for _, q := range qs {
		if !maps.Equal(storagetest.Grouped(t, s, q), l.Want(q)) {
			return false
		}
	}
	return true
}

// ackLines returns the whole lines of dir's acknowledgement file.
func ackLines(t *testing.T, dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "ack"))
	must(t, err)
	lines := strings.Split(string(b), "\n")
	return lines[:len(lines)-1] // "", or a line the kill cut short
}
