package storagetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/navad/navad/internal/storage"
)

// CampaignCapsBackend opens a backend's Catalog and Caps together on one
// fresh, empty backing store, for RunCampaignCaps. Each call of open opens
// both again on the same backing store, as a restarted server would; the
// suite closes the Caps it had before it calls open again, and the
// backend's test closes what is left (t.Cleanup), tolerating a second
// Close.
//
// held reports what the backend still keeps of a campaign's counters that
// would not go by itself (a key without an expiry, a record in memory,
// user windows), one line each, or nothing: it is how the suite sees a
// leak that the counts (Caps.Served) do not show.
type CampaignCapsBackend func(t *testing.T) (open func() (storage.Catalog, storage.Caps), held func(campaignID string) []string)

// RunCampaignCaps runs, as subtests of t, the contract that ties a
// backend's Caps to its Catalog: deleting a campaign frees its counters,
// for good. Deleted campaign IDs are never given again (CreateCampaign), so
// nothing counted for one can matter; without this, a backend keeps every
// deleted campaign's lifetime total for ever.
func RunCampaignCaps(t *testing.T, backend CampaignCapsBackend) {
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, open func() (storage.Catalog, storage.Caps), held func(string) []string)
	}{
		{"DeleteFreesCaps", testDeleteFreesCaps},
		{"LateReservationsAfterDelete", testLateReservationsAfterDelete},
		{"LateLeasedReserveAfterDelete", testLateLeasedReserveAfterDelete},
		{"ReservationsRacingDelete", testReservationsRacingDelete},
	} {
		t.Run(tt.name, func(t *testing.T) {
			open, held := backend(t)
			tt.run(t, open, held)
		})
	}
}

// capsOfEveryKind counts ads of campaign against its total, its day and
// two users' windows, by Reserve and by Lease, under slot.
func capsOfEveryKind(t *testing.T, caps storage.Caps, campaign string, slot uint32) {
	t.Helper()
	r := capReq(campaign, capsT0)
	r.TotalLimit, r.DailyLimit, r.Slot = 1000, 100, slot
	r.UserLimit, r.UserPeriod = 5, time.Hour
	for _, uid := range []string{"u1", "u2"} {
		r.UID = uid
		if got := reserveN(t, caps, r, 2); got != 2 {
			t.Fatalf("%s: %d of 2 reserved", campaign, got)
		}
	}
	lease := capReq(campaign, capsT0)
	lease.Slot = slot
	if g, _, err := caps.Lease(t.Context(), lease, 3, leaseID()); err != nil || g != 3 {
		t.Fatalf("%s: lease granted %d, %v; want 3", campaign, g, err)
	}
}

// wantNoTotal fails unless a deleted campaign's total is gone. Its day and
// user counts may stay until they expire (on Redis, where finding them
// would take a SCAN of every key).
func wantNoTotal(t *testing.T, got storage.CapCounts) {
	t.Helper()
	if got.Total != 0 {
		t.Fatalf("a deleted campaign's total is %d, want 0 (counts %+v)", got.Total, got)
	}
}

// wantHeld fails unless held reports something of campaign when want, and
// nothing when not.
func wantHeld(t *testing.T, held func(string) []string, campaign string, want bool, when string) {
	t.Helper()
	got := held(campaign)
	if want && len(got) == 0 {
		t.Fatalf("%s: nothing held of %s's counters (the check sees nothing)", when, campaign)
	}
	if !want && len(got) > 0 {
		t.Fatalf("%s: the backend still holds of %s's counters: %q", when, campaign, got)
	}
}

// testDeleteFreesCaps: after DeleteCampaign the campaign's total is gone
// and nothing of its counters is held for ever, also after a restart;
// another campaign's counters are kept.
func testDeleteFreesCaps(t *testing.T, open func() (storage.Catalog, storage.Caps), held func(string) []string) {
	ctx := t.Context()
	cat, caps := open()
	must(t, cat.CreateCampaign(ctx, minimalCampaign("cmp_1", "adv_1")))
	must(t, cat.CreateCampaign(ctx, minimalCampaign("cmp_2", "adv_1")))
	capsOfEveryKind(t, caps, "cmp_1", 1)
	capsOfEveryKind(t, caps, "cmp_2", 2)
	day := capReq("cmp_1", capsT0).Day
	kept := storage.CapCounts{Total: 7, Daily: 7, User: 2}
	wantCounts(t, served(t, caps, "cmp_1", day, "u1", capsT0), kept)
	wantHeld(t, held, "cmp_1", true, "before the delete")

	must(t, cat.DeleteCampaign(ctx, "cmp_1"))
	wantNoTotal(t, served(t, caps, "cmp_1", day, "u1", capsT0))
	wantCounts(t, served(t, caps, "cmp_2", day, "u1", capsT0), kept)
	wantHeld(t, held, "cmp_1", false, "after the delete")
	wantHeld(t, held, "cmp_2", true, "after another campaign's delete")

	must(t, caps.Close())
	_, caps = open()
	wantNoTotal(t, served(t, caps, "cmp_1", day, "u1", capsT0))
	wantCounts(t, served(t, caps, "cmp_2", day, "u1", capsT0), kept)
	wantHeld(t, held, "cmp_1", false, "after a restart")
	wantHeld(t, held, "cmp_2", true, "after a restart")
}

// testLateReservationsAfterDelete: a decision already in flight when its
// campaign is deleted may still reserve, lease and return for it; that
// must not bring its counters back for good, nor across a restart.
func testLateReservationsAfterDelete(t *testing.T, open func() (storage.Catalog, storage.Caps), held func(string) []string) {
	ctx := t.Context()
	cat, caps := open()
	must(t, cat.CreateCampaign(ctx, minimalCampaign("cmp_1", "adv_1")))
	capsOfEveryKind(t, caps, "cmp_1", 1)
	must(t, cat.DeleteCampaign(ctx, "cmp_1"))

	// The same calls again, by slot and by ID, and a leased ad's user.
	for _, slot := range []uint32{1, 0} {
		r := capReq("cmp_1", capsT0.Add(time.Minute))
		r.TotalLimit, r.Slot = 1000, slot
		r.UID, r.UserLimit, r.UserPeriod = "u3", 5, time.Hour
		if _, err := caps.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
		r.Leased, r.UID = true, "u4"
		if _, err := caps.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
		lease := capReq("cmp_1", capsT0.Add(time.Minute))
		lease.Slot = slot
		if _, _, err := caps.Lease(ctx, lease, 2, leaseID()); err != nil {
			t.Fatal(err)
		}
		must(t, caps.Return(ctx, "cmp_1", lease.Day, 1, giveBack()))
	}
	eventually(t, func() []string { return held("cmp_1") }, "after late reservations")

	must(t, caps.Close())
	cat, caps = open()
	wantHeld(t, held, "cmp_1", false, "after late reservations and a restart")
	// Counting goes on as before for a campaign created since.
	must(t, cat.CreateCampaign(ctx, minimalCampaign("cmp_2", "adv_1")))
	capsOfEveryKind(t, caps, "cmp_2", 1)
	wantHeld(t, held, "cmp_2", true, "a new campaign under the deleted one's slot")
}

// testLateLeasedReserveAfterDelete: the one call in flight is an ad of a
// lease, which counts for its user only; it must not bring the campaign's
// counters back for good either.
func testLateLeasedReserveAfterDelete(t *testing.T, open func() (storage.Catalog, storage.Caps), held func(string) []string) {
	ctx := t.Context()
	cat, caps := open()
	must(t, cat.CreateCampaign(ctx, minimalCampaign("cmp_1", "adv_1")))
	capsOfEveryKind(t, caps, "cmp_1", 1)
	must(t, cat.DeleteCampaign(ctx, "cmp_1"))
	r := capReq("cmp_1", capsT0.Add(time.Minute))
	r.Leased, r.UID, r.UserLimit, r.UserPeriod = true, "u3", 5, time.Hour
	if _, err := caps.Reserve(ctx, r); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() []string { return held("cmp_1") }, "after a late leased ad")
	must(t, caps.Close())
	open()
	wantHeld(t, held, "cmp_1", false, "after a late leased ad and a restart")
}

// testReservationsRacingDelete: reservations of many goroutines, by slot
// and with user windows, while the campaign is deleted (run it with
// -race). Once they stop, nothing of the campaign is held, or after a
// restart.
func testReservationsRacingDelete(t *testing.T, open func() (storage.Catalog, storage.Caps), held func(string) []string) {
	ctx := t.Context()
	cat, caps := open()
	for i := range 8 {
		must(t, cat.CreateCampaign(ctx, minimalCampaign(fmt.Sprintf("cmp_%d", i), "adv_1")))
	}
	var (
		wg   sync.WaitGroup
		stop = make(chan struct{})
		errs = make(chan error, 8)
	)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("cmp_%d", i)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				r := capReq(id, capsT0.Add(time.Duration(n)*time.Millisecond))
				r.Slot = uint32(i + 1)
				r.UID, r.UserLimit, r.UserPeriod = fmt.Sprintf("u%d", n%50), 3, time.Hour
				if _, err := caps.Reserve(ctx, r); err != nil {
					errs <- err
					return
				}
				if n%10 == 0 {
					lease := capReq(id, r.Now)
					lease.Slot = r.Slot
					if _, _, err := caps.Lease(ctx, lease, 2, leaseID()); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	for i := range 4 { // half of them, while all reserve
		must(t, cat.DeleteCampaign(ctx, fmt.Sprintf("cmp_%d", i)))
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range 4 {
		eventually(t, func() []string { return held(fmt.Sprintf("cmp_%d", i)) }, "after reservations racing the delete")
	}
	wantHeld(t, held, "cmp_4", true, "a campaign not deleted")

	must(t, caps.Close())
	open()
	for i := range 4 {
		wantHeld(t, held, fmt.Sprintf("cmp_%d", i), false, "after reservations racing the delete and a restart")
	}
	wantHeld(t, held, "cmp_4", true, "a campaign not deleted, after a restart")
}

// eventually fails unless held reports nothing within five seconds: a
// backend may drop what a late reservation counted at its next flush.
func eventually(t *testing.T, held func() []string, when string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := held()
		if len(got) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the backend still holds %q", when, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
