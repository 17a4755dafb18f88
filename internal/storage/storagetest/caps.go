package storagetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// CapsBackend opens storage.Caps on one fresh, empty backing store. Each
// call of the returned function opens Caps again on the same backing store,
// as a restarted server would; the suite closes one before it opens the
// next, and closes the last itself only sometimes, so the backend's test
// must close what is left (t.Cleanup) and tolerate a second Close.
type CapsBackend func(t *testing.T) (open func() storage.Caps)

// RunCaps runs the contract suite of storage.Caps as subtests of t. Beyond
// the letter of storage.Caps's comments, it holds backends to:
//
//   - exactness under concurrency: of many concurrent reservations against
//     one limit, exactly the limit succeed;
//   - a graceful restart (Close, then open again) keeps total and daily
//     counts and open user windows;
//   - a cancelled context makes Reserve and Served fail with an error that
//     wraps ctx.Err(), counting nothing;
//   - user keys are opaque bytes: any valid UTF-8 up to 128 characters
//     (512 bytes, the API's limit), NUL,
//     braces and colons included, and two keys differing in one byte are
//     two users.
func RunCaps(t *testing.T, backend CapsBackend) {
	for _, tt := range capsTests {
		t.Run(tt.name, func(t *testing.T) {
			open := backend(t)
			tt.run(t, open)
		})
	}
}

var capsTests = []struct {
	name string
	run  func(t *testing.T, open func() storage.Caps)
}{
	{"NoLimits", testCapsNoLimits},
	{"TotalLimit", testCapsTotalLimit},
	{"DailyLimit", testCapsDailyLimit},
	{"UserWindow", testCapsUserWindow},
	{"NoUserNoUserCap", testCapsNoUser},
	{"RefusalCountsNothing", testCapsRefusalCountsNothing},
	{"CampaignsApart", testCapsCampaignsApart},
	{"SlotsNameNoCampaign", testCapsSlots},
	{"OpaqueUserKeys", testCapsOpaqueUserKeys},
	{"ConcurrentExact", testCapsConcurrentExact},
	{"RestartKeepsCounts", testCapsRestart},
	{"Invalid", testCapsInvalid},
	{"ContextDone", testCapsContextDone},
	{"Close", testCapsClose},
	{"Lease", testCapsLease},
	{"Return", testCapsReturn},
	{"ReturnOnce", testCapsReturnOnce},
	{"LeaseOnce", testCapsLeaseOnce},
	{"LeasedReserve", testCapsLeasedReserve},
	{"LeaseInvalid", testCapsLeaseInvalid},
	{"LeaseBounded", testCapsLeaseBounded},
	{"ConcurrentLeases", testCapsConcurrentLeases},
	{"ConcurrentLeasedReserves", testCapsConcurrentLeasedReserves},
}

// capsT0 is a Friday evening in Tokyo; capsDay is its business day.
var (
	capsTokyo = time.FixedZone("JST", 9*3600)
	capsT0    = time.Date(2026, 11, 27, 19, 0, 0, 0, capsTokyo)
)

// capReq returns a request at now with no limits, on now's calendar day
// (in now's zone).
func capReq(campaign string, now time.Time) storage.CapRequest {
	y, m, d := now.Date()
	return storage.CapRequest{
		CampaignID: campaign, Now: now,
		Day: now.Format("2006-01-02"), DayEnd: time.Date(y, m, d+1, 0, 0, 0, 0, now.Location()),
	}
}

func reserve(t *testing.T, c storage.Caps, r storage.CapRequest) bool {
	t.Helper()
	ok, err := c.Reserve(t.Context(), r)
	if err != nil {
		t.Fatalf("reserve %+v: %v", r, err)
	}
	return ok
}

// reserveN reserves n times and returns how many succeeded.
func reserveN(t *testing.T, c storage.Caps, r storage.CapRequest, n int) int {
	t.Helper()
	got := 0
	for range n {
		if reserve(t, c, r) {
			got++
		}
	}
	return got
}

func served(t *testing.T, c storage.Caps, campaign, day, uid string, now time.Time) storage.CapCounts {
	t.Helper()
	n, err := c.Served(t.Context(), campaign, day, uid, now)
	if err != nil {
		t.Fatalf("served: %v", err)
	}
	return n
}

func wantCounts(t *testing.T, got, want storage.CapCounts) {
	t.Helper()
	if got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
}

func testCapsNoLimits(t *testing.T, open func() storage.Caps) {
	c := open()
	r := capReq("cmp_1", capsT0)
	r.UID = "u1" // without a user limit, no window is kept
	if got := reserveN(t, c, r, 50); got != 50 {
		t.Fatalf("%d of 50 reserved without limits", got)
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "u1", capsT0), storage.CapCounts{Total: 50, Daily: 50})
	wantCounts(t, served(t, c, "cmp_never", r.Day, "u1", capsT0), storage.CapCounts{})
}

func testCapsTotalLimit(t *testing.T, open func() storage.Caps) {
	c := open()
	r := capReq("cmp_1", capsT0)
	r.TotalLimit = 5
	if got := reserveN(t, c, r, 8); got != 5 {
		t.Fatalf("%d reserved under a total limit of 5", got)
	}
	// The total spans days.
	next := capReq("cmp_1", capsT0.Add(24*time.Hour))
	next.TotalLimit = 5
	if reserve(t, c, next) {
		t.Fatal("a new day reopened a spent total")
	}
	// Limits come with each request: raising one lets more through.
	next.TotalLimit = 7
	if got := reserveN(t, c, next, 3); got != 2 {
		t.Fatalf("%d reserved after raising the total to 7, want 2", got)
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{Total: 7, Daily: 5})
	// Lowering it below the count refuses at once.
	next.TotalLimit = 3
	if reserve(t, c, next) {
		t.Fatal("reserved above a lowered total")
	}
}

func testCapsDailyLimit(t *testing.T, open func() storage.Caps) {
	c := open()
	day1 := capReq("cmp_1", capsT0)
	day1.DailyLimit = 3
	if got := reserveN(t, c, day1, 5); got != 3 {
		t.Fatalf("%d reserved under a daily limit of 3", got)
	}
	// One minute before midnight is still day 1; midnight is day 2.
	late := capReq("cmp_1", time.Date(2026, 11, 27, 23, 59, 0, 0, capsTokyo))
	late.DailyLimit = 3
	if reserve(t, c, late) {
		t.Fatal("reserved at 23:59 on a spent day")
	}
	day2 := capReq("cmp_1", time.Date(2026, 11, 28, 0, 0, 0, 0, capsTokyo))
	day2.DailyLimit = 3
	if got := reserveN(t, c, day2, 5); got != 3 {
		t.Fatalf("%d reserved on day 2, want 3", got)
	}
	wantCounts(t, served(t, c, "cmp_1", day1.Day, "", capsT0), storage.CapCounts{Total: 6, Daily: 3})
	wantCounts(t, served(t, c, "cmp_1", day2.Day, "", capsT0), storage.CapCounts{Total: 6, Daily: 3})
	wantCounts(t, served(t, c, "cmp_1", "2026-11-29", "", capsT0), storage.CapCounts{Total: 6})
}

func testCapsUserWindow(t *testing.T, open func() storage.Caps) {
	c := open()
	at := func(uid string, d time.Duration) storage.CapRequest {
		r := capReq("cmp_1", capsT0.Add(d))
		r.UID, r.UserLimit, r.UserPeriod = uid, 2, time.Hour
		return r
	}
	steps := []struct {
		uid  string
		at   time.Duration
		want bool
	}{
		{"u1", 0, true},                 // opens u1's window until +1h
		{"u1", 10 * time.Minute, true},  // second of two
		{"u1", 20 * time.Minute, false}, // capped
		{"u2", 20 * time.Minute, true},  // another user
		{"u1", time.Hour - time.Nanosecond, false},
		{"u1", time.Hour, true}, // the window has closed: a new one opens
		{"u1", time.Hour + time.Minute, true},
		{"u1", time.Hour + 2*time.Minute, false},
		{"u2", 79 * time.Minute, true}, // u2's window (+20m to +80m) is still open
		{"u2", 79*time.Minute + 30*time.Second, false},
		{"u2", 80 * time.Minute, true}, // closed at +80m: a new one opens
	}
	for i, s := range steps {
		if got := reserve(t, c, at(s.uid, s.at)); got != s.want {
			t.Fatalf("step %d (%s at +%v): reserved %v, want %v", i, s.uid, s.at, got, s.want)
		}
	}
	wantCounts(t, served(t, c, "cmp_1", at("u1", 0).Day, "u1", capsT0.Add(time.Hour+3*time.Minute)), storage.CapCounts{Total: 7, Daily: 7, User: 2})
	wantCounts(t, served(t, c, "cmp_1", at("u1", 0).Day, "u1", capsT0.Add(2*time.Hour)), storage.CapCounts{Total: 7, Daily: 7, User: 0})
	wantCounts(t, served(t, c, "cmp_1", at("u1", 0).Day, "nobody", capsT0), storage.CapCounts{Total: 7, Daily: 7})
}

func testCapsNoUser(t *testing.T, open func() storage.Caps) {
	c := open()
	r := capReq("cmp_1", capsT0)
	r.UserLimit, r.UserPeriod = 1, 24*time.Hour // but no UID
	if got := reserveN(t, c, r, 10); got != 10 {
		t.Fatalf("%d of 10 reserved without a uid: a request without uid is never capped per user", got)
	}
}

func testCapsRefusalCountsNothing(t *testing.T, open func() storage.Caps) {
	c := open()
	base := func() storage.CapRequest {
		r := capReq("cmp_1", capsT0)
		r.UID, r.UserPeriod = "u1", time.Hour
		r.TotalLimit, r.DailyLimit, r.UserLimit = 100, 100, 100
		return r
	}
	must(t, errIf(!reserve(t, c, base()), "first reservation refused"))
	want := storage.CapCounts{Total: 1, Daily: 1, User: 1}
	for _, tt := range []struct {
		name  string
		limit func(*storage.CapRequest)
	}{
		{"total", func(r *storage.CapRequest) { r.TotalLimit = 1 }},
		{"daily", func(r *storage.CapRequest) { r.DailyLimit = 1 }},
		{"user", func(r *storage.CapRequest) { r.UserLimit = 1 }},
	} {
		r := base()
		tt.limit(&r)
		if reserve(t, c, r) {
			t.Fatalf("%s limit of 1 not enforced", tt.name)
		}
		// A refusal by one limit increments none of the counters.
		wantCounts(t, served(t, c, "cmp_1", r.Day, "u1", capsT0), want)
	}
	// A refusal does not open a window either: u2, refused by the total,
	// has no window, so after the total is raised u2 gets UserLimit ads.
	r := base()
	r.UID, r.TotalLimit, r.UserLimit = "u2", 1, 1
	if reserve(t, c, r) {
		t.Fatal("total limit of 1 not enforced for u2")
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "u2", capsT0), storage.CapCounts{Total: 1, Daily: 1})
}

func errIf(cond bool, msg string) error {
	if cond {
		return errors.New(msg)
	}
	return nil
}

func testCapsCampaignsApart(t *testing.T, open func() storage.Caps) {
	c := open()
	for _, id := range []string{"cmp_a", "cmp_b", "cmp_a:b", "cmp_a.b"} {
		r := capReq(id, capsT0)
		r.TotalLimit, r.DailyLimit, r.UID, r.UserLimit, r.UserPeriod = 2, 2, "u1", 2, time.Hour
		if got := reserveN(t, c, r, 3); got != 2 {
			t.Fatalf("%s: %d reserved, want 2 (campaigns count apart)", id, got)
		}
	}
}

// testCapsSlots: a request's Slot may spare a backend the campaign ID's
// hash, but the ID decides. A slot that named another campaign in an
// earlier request (another index's), the same campaign under several
// slots, and slots out of any table's range all count by ID.
func testCapsSlots(t *testing.T, open func() storage.Caps) {
	c := open()
	req := func(id string, slot uint32) storage.CapRequest {
		r := capReq(id, capsT0)
		r.TotalLimit, r.Slot = 3, slot
		r.UID, r.UserLimit, r.UserPeriod = "u1", 2, time.Hour
		return r
	}
	steps := []struct {
		id   string
		slot uint32
		want bool
	}{
		{"cmp_a", 1, true},
		{"cmp_b", 1, true},  // slot 1 now names cmp_b
		{"cmp_a", 1, true},  // and cmp_a again: its user's second ad
		{"cmp_a", 7, false}, // cmp_a under another slot: u1 is at 2 of 2
		{"cmp_b", 0, true},
		{"cmp_b", 1 << 31, false}, // cmp_b at 2 of 2 for u1, whatever the slot
		{"cmp_c", 1<<32 - 1, true},
		{"cmp_c", 7, true},
		{"cmp_c", 1, false},
	}
	for i, st := range steps {
		if got := reserve(t, c, req(st.id, st.slot)); got != st.want {
			t.Fatalf("step %d: %s at slot %d reserved %v, want %v", i, st.id, st.slot, got, st.want)
		}
	}
	for _, id := range []string{"cmp_a", "cmp_b", "cmp_c"} {
		wantCounts(t, served(t, c, id, capsT0.Format("2006-01-02"), "u1", capsT0), storage.CapCounts{Total: 2, Daily: 2, User: 2})
	}
	// The total limit, with a fresh user each ad: cmp_a's third, under the
	// slot cmp_c had last.
	r := req("cmp_a", 1)
	r.UID = "u2"
	if !reserve(t, c, r) {
		t.Fatal("cmp_a's third ad refused under a total of 3")
	}
	r.UID = "u3"
	if reserve(t, c, r) {
		t.Fatal("cmp_a's fourth ad reserved under a total of 3")
	}
	wantCounts(t, served(t, c, "cmp_c", capsT0.Format("2006-01-02"), "u2", capsT0), storage.CapCounts{Total: 2, Daily: 2})
}

func testCapsOpaqueUserKeys(t *testing.T, open func() storage.Caps) {
	c := open()
	long := string(make([]byte, 0, 128))
	for range 32 {
		long += "ユ" // 3 bytes: 96 bytes
	}
	long += "0123456789abcdef0123456789abcdef" // 128 bytes
	widest := strings.Repeat("😀", 128)         // the API's longest uid: 128 characters, 512 bytes
	for _, uid := range []string{"a", "a\x00", "a\x00b", "{cmp_1}", "a:b", "A", long, long[:125], "ü", widest, widest[:508]} {
		r := capReq("cmp_1", capsT0)
		r.UID, r.UserLimit, r.UserPeriod = uid, 1, time.Hour
		if !reserve(t, c, r) {
			t.Fatalf("uid %q: refused; it is a user of its own", uid)
		}
		if reserve(t, c, r) {
			t.Fatalf("uid %q: second ad reserved under a limit of 1", uid)
		}
	}
}

func testCapsConcurrentExact(t *testing.T, open func() storage.Caps) {
	c := open()
	const workers, each = 8, 60
	for _, tt := range []struct {
		name string
		req  func(w, i int) storage.CapRequest
		want int64
	}{
		{"total", func(w, i int) storage.CapRequest {
			r := capReq("cmp_total", capsT0)
			r.TotalLimit = 250
			return r
		}, 250},
		{"daily", func(w, i int) storage.CapRequest {
			r := capReq("cmp_daily", capsT0)
			r.DailyLimit = 101
			return r
		}, 101},
		{"user", func(w, i int) storage.CapRequest {
			r := capReq("cmp_user", capsT0)
			r.UID, r.UserLimit, r.UserPeriod = "u1", 7, time.Hour
			return r
		}, 7},
		{"all at once", func(w, i int) storage.CapRequest {
			r := capReq("cmp_all", capsT0)
			r.TotalLimit, r.DailyLimit = 300, 200
			r.UID, r.UserLimit, r.UserPeriod = fmt.Sprintf("u%d", i%50), 3, time.Hour
			return r
		}, 150}, // 50 users × 3 is reached before the daily 200
	} {
		t.Run(tt.name, func(t *testing.T) {
			var wg sync.WaitGroup
			var got atomic.Int64
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						ok, err := c.Reserve(context.Background(), tt.req(w, i))
						if err != nil {
							t.Error(err)
							return
						}
						if ok {
							got.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			if got.Load() != tt.want {
				t.Fatalf("%d of %d concurrent reservations succeeded, want exactly %d", got.Load(), workers*each, tt.want)
			}
			r := tt.req(0, 0)
			if n := served(t, c, r.CampaignID, r.Day, "", capsT0); n.Total != tt.want || n.Daily != tt.want {
				t.Fatalf("counted %+v, want %d", n, tt.want)
			}
		})
	}
}

func testCapsRestart(t *testing.T, open func() storage.Caps) {
	c := open()
	r := capReq("cmp_1", capsT0)
	r.TotalLimit, r.DailyLimit = 10, 4
	r.UID, r.UserLimit, r.UserPeriod = "u1", 3, time.Hour
	if got := reserveN(t, c, r, 3); got != 3 {
		t.Fatalf("%d reserved before the restart", got)
	}
	other := capReq("cmp_2", capsT0)
	must(t, errIf(!reserve(t, c, other), "cmp_2 refused"))
	must(t, c.Close())

	c = open()
	wantCounts(t, served(t, c, "cmp_1", r.Day, "u1", capsT0), storage.CapCounts{Total: 3, Daily: 3, User: 3})
	wantCounts(t, served(t, c, "cmp_2", r.Day, "", capsT0), storage.CapCounts{Total: 1, Daily: 1})
	if reserve(t, c, r) {
		t.Fatal("u1's window was forgotten across a restart")
	}
	r.UID = "u2"
	if got := reserveN(t, c, r, 3); got != 1 {
		t.Fatalf("%d reserved after the restart, want 1 (daily limit 4, 3 before)", got)
	}
	_ = c.Close()
}

func testCapsInvalid(t *testing.T, open func() storage.Caps) {
	c := open()
	for _, tt := range []struct {
		name   string
		change func(*storage.CapRequest)
	}{
		{"no campaign", func(r *storage.CapRequest) { r.CampaignID = "" }},
		{"no day", func(r *storage.CapRequest) { r.Day = "" }},
		{"no now", func(r *storage.CapRequest) { r.Now = time.Time{} }},
		{"no day end", func(r *storage.CapRequest) { r.DayEnd = time.Time{} }},
		{"negative limit", func(r *storage.CapRequest) { r.DailyLimit = -1 }},
		{"user limit without period", func(r *storage.CapRequest) { r.UID, r.UserLimit = "u1", 1 }},
	} {
		r := capReq("cmp_1", capsT0)
		tt.change(&r)
		ok, err := c.Reserve(t.Context(), r)
		if ok || campaigns.ErrorCode(err) != campaigns.Invalid {
			t.Fatalf("%s: reserved %v, err %v; want Invalid", tt.name, ok, err)
		}
	}
	wantCounts(t, served(t, c, "cmp_1", capReq("cmp_1", capsT0).Day, "u1", capsT0), storage.CapCounts{})
}

func testCapsContextDone(t *testing.T, open func() storage.Caps) {
	c := open()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r := capReq("cmp_1", capsT0)
	if ok, err := c.Reserve(ctx, r); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("Reserve with a cancelled context: %v, %v", ok, err)
	}
	if _, err := c.Served(ctx, "cmp_1", r.Day, "", capsT0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Served with a cancelled context: %v", err)
	}
	if g, _, err := c.Lease(ctx, r, 5, leaseID()); g != 0 || !errors.Is(err, context.Canceled) || !errors.Is(err, storage.ErrNotApplied) {
		t.Fatalf("Lease with a cancelled context: %d, %v; want context.Canceled and storage.ErrNotApplied", g, err)
	}
	// Never sent: the pacer may send it again (storage.ErrNotApplied).
	if err := c.Return(ctx, "cmp_1", r.Day, 1, giveBack()); !errors.Is(err, context.Canceled) || !errors.Is(err, storage.ErrNotApplied) {
		t.Fatalf("Return with a cancelled context: %v, want context.Canceled and storage.ErrNotApplied", err)
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{})
}

func testCapsClose(t *testing.T, open func() storage.Caps) {
	c := open()
	r := capReq("cmp_1", capsT0)
	must(t, errIf(!reserve(t, c, r), "refused"))
	must(t, c.Close())
	if ok, err := c.Reserve(t.Context(), r); ok || err == nil {
		t.Fatalf("Reserve after Close: %v, %v", ok, err)
	}
	if _, err := c.Served(t.Context(), "cmp_1", r.Day, "", capsT0); err == nil {
		t.Fatal("Served after Close succeeded")
	}
	if g, _, err := c.Lease(t.Context(), r, 1, leaseID()); g != 0 || !errors.Is(err, storage.ErrNotApplied) {
		t.Fatalf("Lease after Close: %d, %v; want storage.ErrNotApplied", g, err)
	}
	if err := c.Return(t.Context(), "cmp_1", r.Day, 1, giveBack()); !errors.Is(err, storage.ErrNotApplied) {
		t.Fatalf("Return after Close: %v, want storage.ErrNotApplied", err)
	}
	must(t, c.Close())
}

// lease leases want ads of r and returns what was granted and left.
func lease(t *testing.T, c storage.Caps, r storage.CapRequest, want int64) (granted, left int64) {
	t.Helper()
	g, l, err := c.Lease(t.Context(), r, want, leaseID())
	if err != nil {
		t.Fatalf("lease %d of %+v: %v", want, r, err)
	}
	return g, l
}

func testCapsLease(t *testing.T, open func() storage.Caps) {
	c := open()
	r := capReq("cmp_1", capsT0)
	r.TotalLimit, r.DailyLimit = 100, 30
	day := r.Day
	if g, l := lease(t, c, r, 10); g != 10 || l != 20 {
		t.Fatalf("lease 10 of a fresh day of 30: granted %d, left %d; want 10, 20", g, l)
	}
	wantCounts(t, served(t, c, "cmp_1", day, "", capsT0), storage.CapCounts{Total: 10, Daily: 10})
	// Leases and reservations count against the same limits.
	if got := reserveN(t, c, r, 5); got != 5 {
		t.Fatalf("%d of 5 reserved after a lease", got)
	}
	if g, l := lease(t, c, r, 40); g != 15 || l != 0 {
		t.Fatalf("lease 40 with 15 left of the day: granted %d, left %d; want 15, 0", g, l)
	}
	if g, l := lease(t, c, r, 1); g != 0 || l != 0 {
		t.Fatalf("lease at the daily limit: granted %d, left %d", g, l)
	}
	if reserve(t, c, r) {
		t.Fatal("reserved past the daily limit reached by leases")
	}
	wantCounts(t, served(t, c, "cmp_1", day, "", capsT0), storage.CapCounts{Total: 30, Daily: 30})

	// What a replica did not serve goes back, and can be leased again.
	must(t, c.Return(t.Context(), "cmp_1", day, 8, giveBack()))
	wantCounts(t, served(t, c, "cmp_1", day, "", capsT0), storage.CapCounts{Total: 22, Daily: 22})
	if g, l := lease(t, c, r, 100); g != 8 || l != 0 {
		t.Fatalf("lease after a return of 8: granted %d, left %d", g, l)
	}
	// A new day starts from zero; the total limit leaves 70.
	next := capReq("cmp_1", capsT0.Add(24*time.Hour))
	next.TotalLimit, next.DailyLimit = 100, 80
	if g, l := lease(t, c, next, 75); g != 70 || l != 0 {
		t.Fatalf("lease 75 on the next day with 70 of the total left: granted %d, left %d; want 70, 0", g, l)
	}
	wantCounts(t, served(t, c, "cmp_1", next.Day, "", next.Now), storage.CapCounts{Total: 100, Daily: 70})
	// Without limits, everything asked is granted.
	free := capReq("cmp_free", capsT0)
	if g, l := lease(t, c, free, 1000); g != 1000 || l != math.MaxInt64 {
		t.Fatalf("lease without limits: granted %d, left %d", g, l)
	}
}

func testCapsReturn(t *testing.T, open func() storage.Caps) {
	c := open()
	r := capReq("cmp_1", capsT0)
	lease(t, c, r, 5)
	// Never below zero.
	must(t, c.Return(t.Context(), "cmp_1", r.Day, 9, giveBack()))
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{})
	// To a day never counted, and to a campaign never counted: nothing.
	must(t, c.Return(t.Context(), "cmp_1", "2026-11-20", 3, giveBack()))
	must(t, c.Return(t.Context(), "cmp_none", r.Day, 3, giveBack()))
	wantCounts(t, served(t, c, "cmp_none", r.Day, "", capsT0), storage.CapCounts{})
	lease(t, c, r, 4)
	must(t, c.Return(t.Context(), "cmp_1", "2026-11-20", 3, giveBack())) // the total goes down, the day is another
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{Total: 1, Daily: 4})
	if err := c.Return(t.Context(), "cmp_1", r.Day, 0, giveBack()); campaigns.ErrorCode(err) != campaigns.Invalid {
		t.Fatalf("return of 0: %v, want Invalid", err)
	}
	for _, gb := range []storage.GiveBack{{By: "", Seq: 1}, {By: "a b", Seq: 1}, {By: "a:b", Seq: 1}, {By: "{x}", Seq: 1},
		{By: strings.Repeat("x", 65), Seq: 1}, {By: "g", Seq: 0}, {By: "g", Seq: 1<<53 + 1}} {
		if err := c.Return(t.Context(), "cmp_1", r.Day, 1, gb); campaigns.ErrorCode(err) != campaigns.Invalid {
			t.Fatalf("give-back %+v: %v, want Invalid", gb, err)
		}
	}
}

// giveBacks numbers the contract's give-backs, from one giver.
var giveBacks struct {
	sync.Mutex
	by  string
	seq uint64
}

// giveBack returns the next give-back of the contract's giver.
func giveBack() storage.GiveBack {
	giveBacks.Lock()
	defer giveBacks.Unlock()
	if giveBacks.by == "" {
		giveBacks.by = storage.NewGiver()
	}
	giveBacks.seq++
	return storage.GiveBack{By: giveBacks.by, Seq: giveBacks.seq}
}

// testCapsReturnOnce: a Return sent again (a retry after a failure whose
// reply was lost) takes nothing back twice, nor does one numbered below
// its giver's latest for the campaign; the next number does, and so does
// another giver's, or the same number for another campaign.
func testCapsReturnOnce(t *testing.T, open func() storage.Caps) {
	c := open()
	r := capReq("cmp_1", capsT0)
	lease(t, c, r, 30)
	by := storage.NewGiver()
	for range 3 {
		must(t, c.Return(t.Context(), "cmp_1", r.Day, 5, storage.GiveBack{By: by, Seq: 7}))
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{Total: 25, Daily: 25})
	must(t, c.Return(t.Context(), "cmp_1", r.Day, 5, storage.GiveBack{By: by, Seq: 6}))
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{Total: 25, Daily: 25})
	must(t, c.Return(t.Context(), "cmp_1", r.Day, 5, storage.GiveBack{By: by, Seq: 8}))
	must(t, c.Return(t.Context(), "cmp_1", r.Day, 5, storage.GiveBack{By: storage.NewGiver(), Seq: 1}))
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{Total: 15, Daily: 15})
	r2 := capReq("cmp_2", capsT0)
	lease(t, c, r2, 4)
	must(t, c.Return(t.Context(), "cmp_2", r2.Day, 2, storage.GiveBack{By: by, Seq: 8}))
	wantCounts(t, served(t, c, "cmp_2", r2.Day, "", capsT0), storage.CapCounts{Total: 2, Daily: 2})
}

// leaseID names a lease of a holder of its own: the contract's leases are
// not one holder's sequence unless a test says so.
func leaseID() storage.LeaseID { return storage.LeaseID{By: storage.NewGiver(), Seq: 1} }

// testCapsLeaseOnce: a Lease sent again under its holder's last number (a
// retry after a failure whose reply was lost) grants what it granted then
// and counts nothing, whatever it asks and whatever the limits leave now;
// one numbered below grants nothing; the next number, another holder's, or
// the same number for another campaign, lease anew. A malformed name is
// Invalid.
func testCapsLeaseOnce(t *testing.T, open func() storage.Caps) {
	c := open()
	r := capReq("cmp_1", capsT0)
	r.TotalLimit, r.DailyLimit = 100, 30
	by := storage.NewGiver()
	leaseAs := func(r storage.CapRequest, want int64, id storage.LeaseID) (granted, left int64) {
		t.Helper()
		g, l, err := c.Lease(t.Context(), r, want, id)
		if err != nil {
			t.Fatalf("lease %d as %+v: %v", want, id, err)
		}
		return g, l
	}
	if g, l := leaseAs(r, 10, storage.LeaseID{By: by, Seq: 5}); g != 10 || l != 20 {
		t.Fatalf("first lease: granted %d, left %d; want 10, 20", g, l)
	}
	for _, want := range []int64{10, 3, 25} {
		if g, l := leaseAs(r, want, storage.LeaseID{By: by, Seq: 5}); g != 10 || l != 20 {
			t.Fatalf("the lease sent again asking %d: granted %d, left %d; want 10 (as then), 20", want, g, l)
		}
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{Total: 10, Daily: 10})
	if g, _ := leaseAs(r, 10, storage.LeaseID{By: by, Seq: 4}); g != 0 {
		t.Fatalf("a lease numbered below the last: granted %d, want 0", g)
	}
	if g, l := leaseAs(r, 10, storage.LeaseID{By: by, Seq: 6}); g != 10 || l != 10 {
		t.Fatalf("the next lease: granted %d, left %d; want 10, 10", g, l)
	}
	if g, _ := leaseAs(r, 5, storage.LeaseID{By: storage.NewGiver(), Seq: 1}); g != 5 {
		t.Fatalf("another holder's lease: granted %d, want 5", g)
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{Total: 25, Daily: 25})

	// At the day's limit a lease grants nothing; sent again once ads came
	// back, it still grants what it granted then.
	if g, _ := leaseAs(r, 10, storage.LeaseID{By: by, Seq: 7}); g != 5 {
		t.Fatalf("a lease of what the day leaves: granted %d, want 5", g)
	}
	if g, l := leaseAs(r, 10, storage.LeaseID{By: by, Seq: 8}); g != 0 || l != 0 {
		t.Fatalf("a lease at the day's limit: granted %d, left %d; want 0, 0", g, l)
	}
	must(t, c.Return(t.Context(), "cmp_1", r.Day, 4, giveBack()))
	if g, l := leaseAs(r, 10, storage.LeaseID{By: by, Seq: 8}); g != 0 || l != 4 {
		t.Fatalf("the empty lease sent again after a return: granted %d, left %d; want 0, 4", g, l)
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{Total: 26, Daily: 26})

	r2 := capReq("cmp_2", capsT0)
	if g, _ := leaseAs(r2, 3, storage.LeaseID{By: by, Seq: 8}); g != 3 {
		t.Fatalf("another campaign's lease under the same number: granted %d, want 3", g)
	}
	wantCounts(t, served(t, c, "cmp_2", r2.Day, "", capsT0), storage.CapCounts{Total: 3, Daily: 3})

	for _, id := range []storage.LeaseID{{By: "", Seq: 1}, {By: by, Seq: 0}, {By: "a b", Seq: 1}, {By: by, Seq: 1<<53 + 1}} {
		if g, _, err := c.Lease(t.Context(), r, 1, id); g != 0 || campaigns.ErrorCode(err) != campaigns.Invalid {
			t.Fatalf("lease named %+v: granted %d, err %v; want Invalid", id, g, err)
		}
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{Total: 26, Daily: 26})
}

// testCapsLeasedReserve: an ad taken from a lease counts against its user's
// window only.
func testCapsLeasedReserve(t *testing.T, open func() storage.Caps) {
	c := open()
	r := capReq("cmp_1", capsT0)
	r.TotalLimit, r.DailyLimit = 10, 10
	if g, _ := lease(t, c, r, 10); g != 10 {
		t.Fatalf("granted %d of 10", g)
	}
	u := r
	u.UID, u.UserLimit, u.UserPeriod, u.Leased = "u1", 2, time.Hour, true
	if got := reserveN(t, c, u, 5); got != 2 {
		t.Fatalf("%d leased ads reserved for u1 with a user limit of 2, at the daily limit; want 2", got)
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "u1", capsT0), storage.CapCounts{Total: 10, Daily: 10, User: 2})
	// The window closes by the request's clock, as for Reserve.
	u.Now = capsT0.Add(time.Hour)
	must(t, errIf(!reserve(t, c, u), "a leased ad refused after u1's window closed"))
}

func testCapsLeaseInvalid(t *testing.T, open func() storage.Caps) {
	c := open()
	r := capReq("cmp_1", capsT0)
	for _, tt := range []struct {
		name   string
		change func(*storage.CapRequest)
		want   int64
	}{
		{"no campaign", func(r *storage.CapRequest) { r.CampaignID = "" }, 1},
		{"no day", func(r *storage.CapRequest) { r.Day = "" }, 1},
		{"a user", func(r *storage.CapRequest) { r.UID, r.UserLimit, r.UserPeriod = "u1", 1, time.Hour }, 1},
		{"want 0", func(*storage.CapRequest) {}, 0},
		{"want negative", func(*storage.CapRequest) {}, -3},
	} {
		rr := r
		tt.change(&rr)
		g, _, err := c.Lease(t.Context(), rr, tt.want, leaseID())
		if g != 0 || campaigns.ErrorCode(err) != campaigns.Invalid {
			t.Fatalf("%s: granted %d, err %v; want Invalid", tt.name, g, err)
		}
	}
	leased := r
	leased.Leased = true // without a user cap
	if ok, err := c.Reserve(t.Context(), leased); ok || campaigns.ErrorCode(err) != campaigns.Invalid {
		t.Fatalf("leased reserve without a user cap: %v, %v; want Invalid", ok, err)
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{})
}

// testCapsLeaseBounded: without limits a lease grants what is asked, so a
// want beyond storage.MaxLease is Invalid: it would wrap a campaign's total
// round to a negative count (or, on Redis, pass Lua's exact integers).
func testCapsLeaseBounded(t *testing.T, open func() storage.Caps) {
	c := open()
	r := capReq("cmp_1", capsT0)
	if !reserve(t, c, r) {
		t.Fatal("reserve without limits refused")
	}
	for _, want := range []int64{math.MaxInt64, storage.MaxLease + 1} {
		g, _, err := c.Lease(t.Context(), r, want, leaseID())
		if g != 0 || campaigns.ErrorCode(err) != campaigns.Invalid {
			t.Fatalf("lease of %d without limits: granted %d, err %v; want Invalid", want, g, err)
		}
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{Total: 1, Daily: 1})
	if g, l := lease(t, c, r, storage.MaxLease); g != storage.MaxLease || l != math.MaxInt64 {
		t.Fatalf("lease of MaxLease without limits: granted %d, left %d", g, l)
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{Total: 1 + storage.MaxLease, Daily: 1 + storage.MaxLease})
}

// testCapsConcurrentLeasedReserves: ads taken from leases and reserved for
// their users concurrently hold each user's cap exactly.
func testCapsConcurrentLeasedReserves(t *testing.T, open func() storage.Caps) {
	c := open()
	var (
		wg  sync.WaitGroup
		got [10]atomic.Int64
	)
	for w := range 8 {
		wg.Go(func() {
			for i := range 60 {
				r := capReq("cmp_1", capsT0)
				r.UID, r.UserLimit, r.UserPeriod, r.Leased = fmt.Sprint("u", (w+i)%10), 5, time.Hour, true
				ok, err := c.Reserve(context.Background(), r)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					got[(w+i)%10].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for u := range got {
		uid := fmt.Sprint("u", u)
		if n := got[u].Load(); n != 5 {
			t.Fatalf("%s was reserved %d leased ads under a cap of 5", uid, n)
		}
		wantCounts(t, served(t, c, "cmp_1", capReq("cmp_1", capsT0).Day, uid, capsT0), storage.CapCounts{User: 5})
	}
}

// testCapsConcurrentLeases: leases taken concurrently never grant more
// than the limit, and together reach it.
func testCapsConcurrentLeases(t *testing.T, open func() storage.Caps) {
	c := open()
	r := capReq("cmp_1", capsT0)
	r.DailyLimit = 997
	var (
		wg  sync.WaitGroup
		got atomic.Int64
	)
	for w := range 8 {
		wg.Go(func() {
			for i := range 40 {
				g, _, err := c.Lease(context.Background(), r, int64(1+(w*7+i)%9), leaseID())
				if err != nil {
					t.Error(err)
					return
				}
				got.Add(g)
			}
		})
	}
	wg.Wait()
	if got.Load() != 997 {
		t.Fatalf("concurrent leases granted %d under a daily limit of 997", got.Load())
	}
	wantCounts(t, served(t, c, "cmp_1", r.Day, "", capsT0), storage.CapCounts{Total: 997, Daily: 997})
}
