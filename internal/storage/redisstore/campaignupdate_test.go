package redisstore_test

import (
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/redistest"
)

func testCampaign(id string) *campaigns.Campaign {
	c := &campaigns.Campaign{
		ID: id, AdvertiserID: "adv_1", Name: "beer",
		Keywords:  []campaigns.Keyword{{Text: "居酒屋", Match: campaigns.Broad}},
		ProductID: "beer", RadiusM: 1000,
		Creative:  campaigns.Creative{Title: "乾杯", LandingURL: "https://example.com/"},
		CreatedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
	}
	c.ApplyDefaults()
	return c
}

// TestUpdateDoesNotReviveDeletedCampaign: a replica's edit that read a
// campaign another replica then deleted does not bring it back: the
// update finds it gone (NotFound), and it stays deleted.
func TestUpdateDoesNotReviveDeletedCampaign(t *testing.T) {
	srv := redistest.Start(t)
	a, b := open(t, srv.URL()), open(t, srv.URL())
	must(t, a.CreateCampaign(t.Context(), testCampaign("cmp_1")))
	calls := 0
	_, err := a.UpdateCampaign(t.Context(), "cmp_1", func(old *campaigns.Campaign) (*campaigns.Campaign, error) {
		calls++
		if calls == 1 {
			must(t, b.DeleteCampaign(t.Context(), "cmp_1"))
		}
		next := *old
		next.Status = campaigns.Paused
		return &next, nil
	})
	if campaigns.ErrorCode(err) != campaigns.NotFound {
		t.Fatalf("update of a campaign deleted after it was read: %v, want NotFound", err)
	}
	if _, err := b.Campaign(t.Context(), "cmp_1"); campaigns.ErrorCode(err) != campaigns.NotFound {
		t.Fatalf("the deleted campaign after the update: %v, want NotFound", err)
	}
	list, err := b.Campaigns(t.Context(), "adv_1")
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("%d campaigns listed after the delete", len(list))
	}
}

// TestUpdateKeepsAnotherReplicasEdit: an edit another replica writes
// between this update's read and its write is not lost: the update reads
// the campaign again and changes that.
func TestUpdateKeepsAnotherReplicasEdit(t *testing.T) {
	srv := redistest.Start(t)
	a, b := open(t, srv.URL()), open(t, srv.URL())
	must(t, a.CreateCampaign(t.Context(), testCampaign("cmp_1")))
	calls := 0
	got, err := a.UpdateCampaign(t.Context(), "cmp_1", func(old *campaigns.Campaign) (*campaigns.Campaign, error) {
		calls++
		if calls == 1 { // another replica renames it meanwhile
			_, err := b.UpdateCampaign(t.Context(), "cmp_1", func(o *campaigns.Campaign) (*campaigns.Campaign, error) {
				next := *o
				next.Name = "renamed"
				return &next, nil
			})
			must(t, err)
		}
		next := *old
		next.Status = campaigns.Paused
		return &next, nil
	})
	must(t, err)
	if calls != 2 {
		t.Fatalf("change called %d times, want 2: again after the other replica's write", calls)
	}
	stored, err := b.Campaign(t.Context(), "cmp_1")
	must(t, err)
	if stored.Name != "renamed" || stored.Status != campaigns.Paused || got.Name != "renamed" {
		t.Fatalf("stored %q %s, returned %q: want both edits (renamed, paused)", stored.Name, stored.Status, got.Name)
	}
}
