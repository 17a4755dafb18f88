package boltstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/internal/storage/storagetest"
)

// restartable returns a function that opens a Store and its Caps on one
// file, and at each later call restarts them: the previous Caps was closed
// by the suite, so it closes the Store and opens both again. The last pair
// is closed when the test ends.
func restartable(t *testing.T, opt boltstore.CapsOptions) func() (*boltstore.Store, *boltstore.Caps) {
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
	return func() (*boltstore.Store, *boltstore.Caps) {
		if store != nil {
			must(t, store.Close())
		}
		store = open(t, dir)
		var err error
		caps, err = boltstore.NewCaps(store, opt)
		must(t, err)
		return store, caps
	}
}

func TestCapsContract(t *testing.T) {
	storagetest.RunCaps(t, func(t *testing.T) func() storage.Caps {
		restart := restartable(t, boltstore.CapsOptions{})
		return func() storage.Caps {
			_, caps := restart()
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

// TestCapsShortenedPeriodWindowsClose: a campaign's windows close when
// their own period ends, also behind a longer window opened before its
// period was shortened, and also after a restart.
func TestCapsShortenedPeriodWindowsClose(t *testing.T) {
	dir := t.TempDir()
	store := open(t, dir)
	caps, err := boltstore.NewCaps(store, boltstore.CapsOptions{FlushInterval: time.Hour, MaxUserWindows: 100})
	must(t, err)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	reserve := func(c *boltstore.Caps, campaign, uid string, at time.Time, period time.Duration) bool {
		t.Helper()
		ok, err := c.Reserve(ctx, capRequest(campaign, uid, at, 1, period))
		must(t, err)
		return ok
	}
	tick := func(c *boltstore.Caps, at time.Time) { // moves the caps' clock on
		t.Helper()
		_, err := c.Reserve(ctx, capRequest("cmp_2", "x", at, 0, 0))
		must(t, err)
	}
	reserve(caps, "cmp_1", "old", t0, 24*time.Hour) // then the period is shortened
	for i := range 99 {
		reserve(caps, "cmp_1", fmt.Sprintf("u%d", i), t0.Add(time.Second), time.Minute)
	}
	t1 := t0.Add(10 * time.Minute)
	tick(caps, t1)
	must(t, caps.Flush())
	if n := caps.Stats().UserWindows; n != 1 {
		t.Fatalf("%d windows open after the minute-long ones closed, want 1 (the day-long one)", n)
	}
	if !reserve(caps, "cmp_1", "new", t1, time.Minute) || reserve(caps, "cmp_1", "new", t1, time.Minute) {
		t.Fatal("a new user was not capped at one ad a minute: the table was still full")
	}
	if reserve(caps, "cmp_1", "old", t1, time.Minute) {
		t.Fatal("old was served again within its day-long window")
	}

	// After a restart the windows read back close in order of their ends,
	// and those opened since, with their own period, too.
	must(t, caps.Close())
	caps, err = boltstore.NewCaps(store, boltstore.CapsOptions{FlushInterval: time.Hour, MaxUserWindows: 100})
	must(t, err)
	t.Cleanup(func() { _ = caps.Close() })
	for i := range 50 {
		reserve(caps, "cmp_1", fmt.Sprintf("v%d", i), t1, time.Minute)
	}
	tick(caps, t1.Add(10*time.Minute))
	must(t, caps.Flush())
	if n := caps.Stats().UserWindows; n != 1 {
		t.Fatalf("after a restart %d windows open, want 1 (the day-long one)", n)
	}
}

// TestCapsWindowsSurviveClose: the windows of many users of several
// campaigns, closed and opened again, keep their counts, still close when
// their period ends, and are left out past a lowered MaxUserWindows.
func TestCapsWindowsSurviveClose(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 19, 0, 0, 0, time.UTC)
	req := func(c, u int, at time.Time) storage.CapRequest {
		// Campaign c caps a user at c+1 ads in c hours.
		return capRequest(fmt.Sprint("cmp_", c), fmt.Sprint("u", u), at, int64(c+1), time.Duration(c)*time.Hour)
	}
	store := open(t, dir)
	caps, err := boltstore.NewCaps(store, boltstore.CapsOptions{FlushInterval: time.Hour})
	must(t, err)
	for c := 1; c <= 3; c++ {
		for u := range 2000 {
			for range 1 + u%(c+1) { // u's count: 1 + u mod (c+1), at most the cap
				if ok, err := caps.Reserve(ctx, req(c, u, t0)); err != nil || !ok {
					t.Fatalf("cmp_%d u%d refused: %v", c, u, err)
				}
			}
		}
	}
	must(t, caps.Close())
	must(t, store.Close())

	store = open(t, dir)
	caps, err = boltstore.NewCaps(store, boltstore.CapsOptions{FlushInterval: time.Hour})
	must(t, err)
	if n := caps.Stats().UserWindows; n != 6000 {
		t.Fatalf("%d windows after the restart, want 6000", n)
	}
	for c := 1; c <= 3; c++ {
		for u := range 2000 {
			n, err := caps.Served(ctx, fmt.Sprint("cmp_", c), req(c, u, t0).Day, fmt.Sprint("u", u), t0)
			must(t, err)
			if want := int64(1 + u%(c+1)); n.User != want {
				t.Fatalf("cmp_%d u%d: %d in its window after the restart, want %d", c, u, n.User, want)
			}
		}
	}
	// Two hours on, cmp_1's windows have closed and cmp_2's close then: a
	// flush drops them, and keeps cmp_3's.
	r := req(3, 0, t0.Add(2*time.Hour))
	if ok, err := caps.Reserve(ctx, r); err != nil || !ok { // u0 of cmp_3 had 1 of 4
		t.Fatalf("cmp_3 u0 refused two hours on: %v", err)
	}
	must(t, caps.Flush())
	if n := caps.Stats().UserWindows; n != 2000 {
		t.Fatalf("%d windows two hours on, want cmp_3's 2000", n)
	}
	must(t, caps.Close())
	must(t, store.Close())

	store = open(t, dir)
	caps, err = boltstore.NewCaps(store, boltstore.CapsOptions{FlushInterval: time.Hour, MaxUserWindows: 500})
	must(t, err)
	t.Cleanup(func() { _ = caps.Close() })
	if n := caps.Stats().UserWindows; n != 500 {
		t.Fatalf("%d windows loaded under a limit of 500", n)
	}
}

// TestCapsRefusesBadCampaignIDs: an ID that cannot be part of a key in the
// file is Invalid for a reservation and a lease, and leaves no counters;
// one checked once is not checked again, and still counts.
func TestCapsRefusesBadCampaignIDs(t *testing.T) {
	_, caps := handFlushedCaps(t, t.TempDir())
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 19, 0, 0, 0, time.UTC)
	for _, id := range []string{"cmp\x001", strings.Repeat("c", 1000)} {
		ok, err := caps.Reserve(ctx, capRequest(id, "", t0, 0, 0))
		if ok || campaigns.ErrorCode(err) != campaigns.Invalid {
			t.Fatalf("reserve for %.20q: %v, %v; want Invalid", id, ok, err)
		}
		if _, _, err := caps.Lease(ctx, capRequest(id, "", t0, 0, 0), 5, storage.LeaseID{By: storage.NewGiver(), Seq: 1}); campaigns.ErrorCode(err) != campaigns.Invalid {
			t.Fatalf("lease for %.20q: %v; want Invalid", id, err)
		}
	}
	if n := caps.Stats().Campaigns; n != 0 {
		t.Fatalf("%d campaigns counted after bad IDs only", n)
	}
	for range 2 {
		if ok, err := caps.Reserve(ctx, capRequest("cmp_1", "", t0, 0, 0)); err != nil || !ok {
			t.Fatalf("cmp_1 refused: %v", err)
		}
	}
	n, err := caps.Served(ctx, "cmp_1", t0.Format("2006-01-02"), "", t0)
	must(t, err)
	if n.Total != 2 {
		t.Fatalf("cmp_1 served %d, want 2", n.Total)
	}
}

// TestCapsCrashKeepsFlushedCounts: a kill -9 loses the user windows and
// what was counted since the last flush, never what was flushed.
func TestCapsCrashKeepsFlushedCounts(t *testing.T) {
	dir := t.TempDir()
	store, caps := handFlushedCaps(t, dir)
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

// TestCapsDropsOldDays: a day's count is kept two days after the day ends,
// then dropped from memory and from the file at a flush; a later day of
// the same campaign and its total stay, and are dropped in their turn.
func TestCapsDropsOldDays(t *testing.T) {
	dir := t.TempDir()
	store, caps := handFlushedCaps(t, dir)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 19, 0, 0, 0, time.UTC)
	days := make([]storage.CapRequest, 3)
	for i := range days {
		days[i] = capRequest("cmp_1", "", t0.Add(time.Duration(i)*24*time.Hour), 0, 0)
	}
	reserve := func(c *boltstore.Caps, r storage.CapRequest) {
		t.Helper()
		if _, err := c.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// check wants cmp_1's daily counts of days, and its total.
	check := func(c *boltstore.Caps, when string, total int64, daily ...int64) {
		t.Helper()
		for i, want := range daily {
			n, err := c.Served(ctx, "cmp_1", days[i].Day, "", days[i].Now)
			must(t, err)
			if n.Daily != want || n.Total != total {
				t.Errorf("%s: %s: %+v, want daily %d of total %d", when, days[i].Day, n, want, total)
			}
		}
	}
	// pass has another campaign serve at d after the end of cmp_1's day i
	// (the clock of expiry is the latest reservation), then flushes.
	pass := func(c *boltstore.Caps, i int, d time.Duration) {
		t.Helper()
		reserve(c, capRequest("cmp_2", "", days[i].DayEnd.Add(d), 0, 0))
		must(t, c.Flush())
	}
	reserve(caps, days[0])
	reserve(caps, days[1])
	must(t, caps.Flush())
	check(caps, "before", 2, 1, 1)
	pass(caps, 0, 48*time.Hour-time.Minute)
	check(caps, "just before two days", 2, 1, 1)
	pass(caps, 0, 48*time.Hour+time.Minute)
	check(caps, "two days after day 0", 2, 0, 1)
	must(t, caps.Close())
	must(t, store.Close())

	_, again := handFlushedCaps(t, dir)
	check(again, "reopened", 2, 0, 1)
	reserve(again, days[2])
	pass(again, 1, 48*time.Hour+time.Minute)
	check(again, "two days after day 1", 3, 0, 0, 1)
	pass(again, 2, 48*time.Hour+time.Minute)
	check(again, "two days after day 2", 3, 0, 0, 0)
	// A late ad of a dropped day counts in a day begun afresh, not in
	// the count dropped (the last day reserved is remembered apart).
	reserve(again, days[2])
	check(again, "a late ad of day 2", 4, 0, 0, 1)
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

// BenchmarkCapsFlush is one flush of the counts of 3,000 campaigns that
// served since the last (of 10,000 known), as a national second brings:
// ns/op and allocations are per flush.
func BenchmarkCapsFlush(b *testing.B) {
	_, caps := handFlushedCaps(b, b.TempDir())
	t0 := time.Date(2026, 11, 27, 19, 0, 0, 0, time.UTC)
	reqs := make([]storage.CapRequest, 10_000)
	for i := range reqs {
		reqs[i] = capRequest(fmt.Sprintf("cmp_%05d", i), "", t0, 0, 0)
		reqs[i].DailyLimit, reqs[i].TotalLimit = 1<<40, 1<<40
		if _, err := caps.Reserve(b.Context(), reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
	must(b, caps.Flush())
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		b.StopTimer()
		for range 3_000 {
			if _, err := caps.Reserve(b.Context(), reqs[n%len(reqs)]); err != nil {
				b.Fatal(err)
			}
			n += 7
		}
		b.StartTimer()
		must(b, caps.Flush())
	}
}

// handFlushedCaps opens the store in dir and Caps on it that flush when
// told to (and at Close, which the test's cleanup calls).
func handFlushedCaps(t testing.TB, dir string) (*boltstore.Store, *boltstore.Caps) {
	t.Helper()
	store := open(t, dir)
	caps, err := boltstore.NewCaps(store, boltstore.CapsOptions{FlushInterval: time.Hour})
	must(t, err)
	t.Cleanup(func() { _ = caps.Close() })
	return store, caps
}

// TestCampaignCapsContract: deleting a campaign frees its counters, in the
// file and in memory (storagetest.RunCampaignCaps). Caps flush every
// millisecond, so that flushes race the deletes.
func TestCampaignCapsContract(t *testing.T) {
	storagetest.RunCampaignCaps(t, func(t *testing.T) (func() (storage.Catalog, storage.Caps), func(string) []string) {
		restart := restartable(t, boltstore.CapsOptions{FlushInterval: time.Millisecond, MaxUserWindows: 10_000})
		var store *boltstore.Store
		var caps *boltstore.Caps
		reopen := func() (storage.Catalog, storage.Caps) {
			store, caps = restart()
			return store, caps
		}
		held := func(id string) []string { return append(store.CapsKeys(id), caps.Held(id)...) }
		return reopen, held
	})
}

// TestCapsDeleteFreesMemory: a deleted campaign leaves Caps' memory at
// once: Stats no longer counts it nor its user windows, and all its counts
// read zero.
func TestCapsDeleteFreesMemory(t *testing.T) {
	store := open(t, t.TempDir())
	caps, err := boltstore.NewCaps(store, boltstore.CapsOptions{FlushInterval: time.Hour, MaxUserWindows: 1000})
	must(t, err)
	t.Cleanup(func() { _ = caps.Close() })
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 19, 0, 0, 0, time.UTC)
	for _, id := range []string{"cmp_1", "cmp_2"} {
		must(t, store.CreateCampaign(ctx, &campaigns.Campaign{ID: id, AdvertiserID: "adv_1", Name: id}))
		for i := range 10 {
			r := capRequest(id, fmt.Sprintf("u%d", i), t0, 1, time.Hour)
			r.Slot = 7 // both under one slot: the table keeps the last
			ok, err := caps.Reserve(ctx, r)
			must(t, err)
			if !ok {
				t.Fatalf("%s: u%d refused", id, i)
			}
		}
	}
	if got := caps.Stats(); got.Campaigns != 2 || got.UserWindows != 20 {
		t.Fatalf("stats before the delete %+v, want 2 campaigns, 20 windows", got)
	}
	must(t, store.DeleteCampaign(ctx, "cmp_2"))
	if got := caps.Stats(); got.Campaigns != 1 || got.UserWindows != 10 {
		t.Fatalf("stats after the delete %+v, want 1 campaign, 10 windows", got)
	}
	n, err := caps.Served(ctx, "cmp_2", "2026-11-27", "u1", t0)
	must(t, err)
	if n != (storage.CapCounts{}) {
		t.Fatalf("a deleted campaign's counts %+v, want none", n)
	}
	if held := caps.Held("cmp_2"); len(held) > 0 {
		t.Fatalf("still held of cmp_2: %q", held)
	}
}

// TestCapsDropLeftoversOfDeletedCampaigns: counters that an older build
// left in the file for a deleted campaign, totals, days and the user
// windows saved by Close, are neither loaded nor kept by NewCaps.
func TestCapsDropLeftoversOfDeletedCampaigns(t *testing.T) {
	store := open(t, t.TempDir())
	caps, err := boltstore.NewCaps(store, boltstore.CapsOptions{FlushInterval: time.Hour, MaxUserWindows: 1000})
	must(t, err)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 19, 0, 0, 0, time.UTC)
	for _, id := range []string{"cmp_1", "cmp_2"} {
		must(t, store.CreateCampaign(ctx, &campaigns.Campaign{ID: id, AdvertiserID: "adv_1", Name: id}))
		for i := range 5 {
			_, err := caps.Reserve(ctx, capRequest(id, fmt.Sprintf("u%d", i), t0, 1, time.Hour))
			must(t, err)
		}
	}
	must(t, caps.Close()) // writes counts and windows
	must(t, store.DeleteCampaignOnly("cmp_2"))
	if len(store.CapsKeys("cmp_2")) != 3 { // total, day, windows
		t.Fatalf("leftovers before the reopen %q, want 3", store.CapsKeys("cmp_2"))
	}

	caps, err = boltstore.NewCaps(store, boltstore.CapsOptions{FlushInterval: time.Hour, MaxUserWindows: 1000})
	must(t, err)
	t.Cleanup(func() { _ = caps.Close() })
	if got := caps.Stats(); got.Campaigns != 1 || got.UserWindows != 5 {
		t.Fatalf("stats %+v, want 1 campaign and its 5 windows", got)
	}
	if keys := store.CapsKeys("cmp_2"); len(keys) > 0 {
		t.Fatalf("leftovers after the reopen: %q", keys)
	}
	n, err := caps.Served(ctx, "cmp_1", "2026-11-27", "u1", t0)
	must(t, err)
	if n != (storage.CapCounts{Total: 5, Daily: 5, User: 1}) {
		t.Fatalf("cmp_1 counts %+v, want its own kept", n)
	}
}
