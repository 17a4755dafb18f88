package boltstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/internal/storage/storagetest"
)

func TestCapsContract(t *testing.T) {
	storagetest.RunCaps(t, func(t *testing.T) func() storage.Caps {
		dir := t.TempDir()
		var store *boltstore.Store
		var caps *boltstore.Caps
		t.Cleanup(func() {
			if caps != nil {
				_ = caps.Close()
			}
			if store != nil {
				_ = store.Close()
			}
		})
		return func() storage.Caps {
			// A restart: the previous Caps was closed by the suite; close
			// its Store and open both again on the same file.
			if store != nil {
				must(t, store.Close())
			}
			store = open(t, dir)
			var err error
			caps, err = boltstore.NewCaps(store, boltstore.CapsOptions{})
			must(t, err)
			return caps
		}
	})
}

func capRequest(campaign, uid string, now time.Time, userLimit int64, period time.Duration) storage.CapRequest {
	y, m, d := now.Date()
	return storage.CapRequest{CampaignID: campaign, Now: now, Day: now.Format("2006-01-02"),
		DayEnd: time.Date(y, m, d+1, 0, 0, 0, 0, now.Location()), UID: uid, UserLimit: userLimit, UserPeriod: period}
}

// TestCapsUserWindowsExpire: memory follows the users of the last period.
// Windows are dropped once closed, and MaxUserWindows bounds them.
func TestCapsUserWindowsExpire(t *testing.T) {
	store := open(t, t.TempDir())
	caps, err := boltstore.NewCaps(store, boltstore.CapsOptions{FlushInterval: time.Hour, MaxUserWindows: 1000})
	must(t, err)
	t.Cleanup(func() { _ = caps.Close() })
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 19, 0, 0, 0, time.UTC)
	for i := range 800 {
		ok, err := caps.Reserve(ctx, capRequest("cmp_1", fmt.Sprintf("u%d", i), t0, 1, time.Hour))
		must(t, err)
		if !ok {
			t.Fatalf("u%d refused", i)
		}
	}
	if n := caps.Stats().UserWindows; n != 800 {
		t.Fatalf("%d windows open, want 800", n)
	}
	// Past the limit, new users are served uncapped rather than remembered.
	for i := 800; i < 1300; i++ {
		ok, err := caps.Reserve(ctx, capRequest("cmp_2", fmt.Sprintf("u%d", i), t0, 1, time.Hour))
		must(t, err)
		if !ok {
			t.Fatalf("u%d refused beyond MaxUserWindows; it should be served as without uid", i)
		}
	}
	if st := caps.Stats(); st.UserWindows != 1000 || st.Unwindowed != 300 {
		t.Fatalf("stats %+v, want 1000 windows and 300 unwindowed", st)
	}
	// An hour later every window has closed: u0 opens a new one in place of
	// its old, and a flush drops the others.
	ok, err := caps.Reserve(ctx, capRequest("cmp_1", "u0", t0.Add(time.Hour), 1, time.Hour))
	must(t, err)
	if !ok {
		t.Fatal("u0 refused after its window closed")
	}
	must(t, caps.Flush())
	if n := caps.Stats().UserWindows; n != 1 {
		t.Fatalf("%d windows after they closed, want 1 (u0's new one)", n)
	}
	ok, err = caps.Reserve(ctx, capRequest("cmp_1", "u0", t0.Add(time.Hour+time.Minute), 1, time.Hour))
	must(t, err)
	if ok {
		t.Fatal("u0's new window was dropped with the closed ones")
	}
}

// TestCapsCrashKeepsFlushedCounts: a kill -9 loses the user windows and
// what was counted since the last flush, never what was flushed.
func TestCapsCrashKeepsFlushedCounts(t *testing.T) {
	dir := t.TempDir()
	store := open(t, dir)
	caps, err := boltstore.NewCaps(store, boltstore.CapsOptions{FlushInterval: time.Hour})
	must(t, err)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 19, 0, 0, 0, time.UTC)
	r := capRequest("cmp_1", "u1", t0, 5, time.Hour)
	for range 3 {
		if _, err := caps.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	must(t, caps.Flush())
	if _, err := caps.Reserve(ctx, r); err != nil { // after the flush: lost in the crash
		t.Fatal(err)
	}
	// The crash: the file is closed under the running Caps, which never
	// writes again.
	must(t, store.Close())

	store = open(t, dir)
	again, err := boltstore.NewCaps(store, boltstore.CapsOptions{})
	must(t, err)
	t.Cleanup(func() { _ = again.Close() })
	n, err := again.Served(ctx, "cmp_1", r.Day, "u1", t0)
	must(t, err)
	if n != (storage.CapCounts{Total: 3, Daily: 3}) {
		t.Fatalf("after a crash: %+v, want the flushed 3 and no window", n)
	}
	_ = caps.Close() // the crashed one: its final writes fail harmlessly
}

// BenchmarkCapsReserve measures one reservation on the decision path: a
// campaign with daily, total and frequency caps, users drawn from a million.
func BenchmarkCapsReserve(b *testing.B) {
	store := open(b, b.TempDir())
	caps, err := boltstore.NewCaps(store, boltstore.CapsOptions{})
	must(b, err)
	b.Cleanup(func() { _ = caps.Close() })
	t0 := time.Date(2026, 11, 27, 19, 0, 0, 0, time.UTC)
	uids := make([]string, 1<<20)
	for i := range uids {
		uids[i] = fmt.Sprintf("user-%08x", i*2654435761)
	}
	reqs := make([]storage.CapRequest, 8)
	for i := range reqs {
		reqs[i] = capRequest(fmt.Sprint("cmp_", i), "", t0, 3, 24*time.Hour)
		reqs[i].DailyLimit, reqs[i].TotalLimit = 1<<40, 1<<40
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r := reqs[i%len(reqs)]
			r.UID = uids[i&(len(uids)-1)]
			if _, err := caps.Reserve(b.Context(), r); err != nil {
				b.Error(err)
				return
			}
			i += 7919
		}
	})
}
