package storagetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// fullCampaign returns a campaign with every field set to something other
// than its zero value.
func fullCampaign(id, advertiserID string) *campaigns.Campaign {
	return &campaigns.Campaign{
		ID:           id,
		AdvertiserID: advertiserID,
		Name:         "冬のビール " + id,
		Status:       campaigns.Paused,
		Start:        time.Date(2026, 11, 1, 0, 0, 0, 0, jst),
		End:          time.Date(2027, 1, 31, 23, 59, 59, 999999999, jst),
		Keywords: []campaigns.Keyword{
			{Text: "居酒屋", Match: campaigns.Broad},
			{Text: "ビール 冷えた", Match: campaigns.Phrase},
			{Text: "beer", Match: campaigns.Exact},
		},
		NegativeKeywords: []string{"求人", "バイト"},
		ProductID:        "beer-350",
		Creative: campaigns.Creative{
			Title:      "キンキンのビール",
			Text:       "この先 240 m、冷えてます",
			ImageURL:   "https://cdn.example.com/beer.png",
			LandingURL: "https://example.com/beer?utm_source=navad&x=1",
		},
		RadiusM:    650,
		Modes:      []campaigns.Mode{campaigns.Walk},
		Publishers: []string{"pub_1", "pub_2"},
		Hours: campaigns.Hours{
			{Days: []string{"fri", "sat"}, From: "17:00", To: "24:00"},
			{From: "22:00", To: "02:00"},
		},
		Priority:     7,
		BidCPM:       312.5,
		Budget:       campaigns.Budget{DailyImpressions: 100000, TotalImpressions: 2000000},
		FrequencyCap: &campaigns.FrequencyCap{Impressions: 3, Per: "24h"},
		CreatedAt:    time.Date(2026, 10, 20, 11, 22, 33, 444555666, time.UTC),
		UpdatedAt:    time.Date(2026, 10, 21, 1, 2, 3, 4, jst),
	}
}

// minimalCampaign returns a campaign as the API stores it when the client
// gave only the required fields: defaults applied, empty (non-nil) lists.
func minimalCampaign(id, advertiserID string) *campaigns.Campaign {
	c := &campaigns.Campaign{
		ID:           id,
		AdvertiserID: advertiserID,
		Name:         "minimal",
		Keywords:     []campaigns.Keyword{{Text: "coffee", Match: campaigns.Exact}},
		ProductID:    "coffee-185",
		Creative:     campaigns.Creative{Title: "Coffee", LandingURL: "https://example.com/"},
	}
	c.ApplyDefaults()
	return c
}

var campaignTests = []test{
	{name: "RoundTrip", run: testCampaignRoundTrip},
	{name: "Replace", run: testCampaignReplace},
	{name: "MoveToAnotherAdvertiser", run: testCampaignMove},
	{name: "ListOrderedByID", run: testCampaignList},
	{name: "NotFound", run: testCampaignNotFound},
	{name: "Delete", run: testCampaignDelete},
	{name: "CreateOnlyNewIDs", run: testCampaignCreate},
	{name: "ReturnsCopies", run: testCampaignCopies},
	{name: "Update", run: testCampaignUpdate},
	{name: "UpdatesConcurrent", run: testCampaignUpdatesConcurrent},
}

func testCampaignRoundTrip(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	noCap := fullCampaign("cmp_nocap", "adv_1")
	noCap.FrequencyCap = nil
	noCap.Budget = campaigns.Budget{}
	noCap.End = time.Time{}
	utc := fullCampaign("cmp_utc", "adv_2")
	utc.Start = utc.Start.UTC()
	tests := []struct {
		name string
		give *campaigns.Campaign
	}{
		{"every field", fullCampaign("cmp_full", "adv_1")},
		{"defaults only", minimalCampaign("cmp_min", "adv_1")},
		{"no cap no budget no end", noCap},
		{"utc start", utc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			must(t, c.PutCampaign(ctx, tt.give))
			got, err := c.Campaign(ctx, tt.give.ID)
			must(t, err)
			wantCampaign(t, got, tt.give)

			// Listings return the same full records.
			for _, adv := range []string{tt.give.AdvertiserID, ""} {
				list, err := c.Campaigns(ctx, adv)
				must(t, err)
				found := false
				for _, l := range list {
					if l.ID == tt.give.ID {
						wantCampaign(t, l, tt.give)
						found = true
					}
				}
				if !found {
					t.Fatalf("Campaigns(%q) lacks %q", adv, tt.give.ID)
				}
			}
		})
	}
}

func testCampaignReplace(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.PutCampaign(ctx, fullCampaign("cmp_1", "adv_1")))
	next := fullCampaign("cmp_1", "adv_1")
	next.Name = "renamed"
	next.Keywords = []campaigns.Keyword{{Text: "ラーメン", Match: campaigns.Exact}}
	next.FrequencyCap = nil
	next.Hours = campaigns.Hours{}
	next.Status = campaigns.Active
	next.UpdatedAt = next.UpdatedAt.Add(time.Hour)
	must(t, c.PutCampaign(ctx, next))

	got, err := c.Campaign(ctx, "cmp_1")
	must(t, err)
	wantCampaign(t, got, next)
	for _, adv := range []string{"adv_1", ""} {
		list, err := c.Campaigns(ctx, adv)
		must(t, err)
		if len(list) != 1 {
			t.Fatalf("Campaigns(%q) has %d campaigns after a replace, want 1", adv, len(list))
		}
		wantCampaign(t, list[0], next)
	}
}

func testCampaignMove(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.PutCampaign(ctx, fullCampaign("cmp_1", "adv_1")))
	moved := fullCampaign("cmp_1", "adv_2")
	must(t, c.PutCampaign(ctx, moved))

	list, err := c.Campaigns(ctx, "adv_1")
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("old advertiser still lists %d campaigns", len(list))
	}
	list, err = c.Campaigns(ctx, "adv_2")
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("new advertiser lists %d campaigns, want 1", len(list))
	}
	wantCampaign(t, list[0], moved)
}

func testCampaignList(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	// Advertiser IDs that share a prefix, and campaign IDs that sort
	// differently as bytes and as numbers, in scrambled order.
	puts := []struct{ id, adv string }{
		{"cmp_3", "a"}, {"cmp_10", "a"}, {"cmp_1", "a"},
		{"cmp_2", "a:"}, {"cmp_0", "ab"}, {"cmp_9", "a-"},
		{"Cmp_5", "a"}, {"cmp_4", "b"},
	}
	for _, p := range puts {
		must(t, c.PutCampaign(ctx, minimalCampaign(p.id, p.adv)))
	}
	tests := []struct {
		give string
		want []string
	}{
		{"a", []string{"Cmp_5", "cmp_1", "cmp_10", "cmp_3"}},
		{"a:", []string{"cmp_2"}},
		{"ab", []string{"cmp_0"}},
		{"a-", []string{"cmp_9"}},
		{"b", []string{"cmp_4"}},
		{"nobody", nil},
		{"", []string{"Cmp_5", "cmp_0", "cmp_1", "cmp_10", "cmp_2", "cmp_3", "cmp_4", "cmp_9"}},
	}
	for _, tt := range tests {
		list, err := c.Campaigns(ctx, tt.give)
		must(t, err)
		var got []string
		for _, l := range list {
			got = append(got, l.ID)
			if tt.give != "" && l.AdvertiserID != tt.give {
				t.Fatalf("Campaigns(%q) returned %q of advertiser %q", tt.give, l.ID, l.AdvertiserID)
			}
		}
		diff(t, "Campaigns("+tt.give+")", got, tt.want)
	}
}

func testCampaignNotFound(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.PutCampaign(ctx, minimalCampaign("cmp_1", "adv_1")))
	for _, id := range []string{"cmp_2", "cmp", "cmp_10", "adv_1", ""} {
		_, err := c.Campaign(ctx, id)
		wantCode(t, err, campaigns.NotFound)
		wantCode(t, c.DeleteCampaign(ctx, id), campaigns.NotFound)
	}
	// The failed deletes removed nothing.
	_, err := c.Campaign(ctx, "cmp_1")
	must(t, err)
}

func testCampaignDelete(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	keep := fullCampaign("cmp_keep", "adv_1")
	must(t, c.PutCampaign(ctx, keep))
	must(t, c.PutCampaign(ctx, fullCampaign("cmp_gone", "adv_1")))
	must(t, c.DeleteCampaign(ctx, "cmp_gone"))

	_, err := c.Campaign(ctx, "cmp_gone")
	wantCode(t, err, campaigns.NotFound)
	wantCode(t, c.DeleteCampaign(ctx, "cmp_gone"), campaigns.NotFound)
	for _, adv := range []string{"adv_1", ""} {
		list, err := c.Campaigns(ctx, adv)
		must(t, err)
		if len(list) != 1 {
			t.Fatalf("Campaigns(%q) has %d campaigns, want only the kept one", adv, len(list))
		}
		wantCampaign(t, list[0], keep)
	}
	// The ID is not given again, by PutCampaign either: an edit that read
	// the campaign before it was deleted must not bring it back.
	wantCode(t, c.PutCampaign(ctx, minimalCampaign("cmp_gone", "adv_1")), campaigns.Conflict)
	_, err = c.Campaign(ctx, "cmp_gone")
	wantCode(t, err, campaigns.NotFound)
	_, err = c.UpdateCampaign(ctx, "cmp_gone", func(old *campaigns.Campaign) (*campaigns.Campaign, error) { return old, nil })
	wantCode(t, err, campaigns.NotFound)
}

func testCampaignCopies(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	give := fullCampaign("cmp_1", "adv_1")
	must(t, c.PutCampaign(ctx, give))
	give.Name = "changed after put"
	give.Keywords[0].Text = "changed"
	give.FrequencyCap.Impressions = 99
	give.Hours[0].Days[0] = "mon"

	got, err := c.Campaign(ctx, "cmp_1")
	must(t, err)
	got.Keywords[0].Text = "changed"
	got.FrequencyCap.Impressions = 99
	got.Publishers[0] = "changed"

	got, err = c.Campaign(ctx, "cmp_1")
	must(t, err)
	wantCampaign(t, got, fullCampaign("cmp_1", "adv_1"))
}

// testCampaignCreate: CreateCampaign stores a campaign whose ID was never
// taken, and refuses one that exists or was deleted, by any advertiser:
// counters are kept by campaign ID, so a deleted campaign's ID given again
// handed its budget and frequency windows to the new campaign.
func testCampaignCreate(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.CreateCampaign(ctx, minimalCampaign("cmp_1", "adv_1")))
	got, err := c.Campaign(ctx, "cmp_1")
	must(t, err)
	if got.AdvertiserID != "adv_1" {
		t.Fatalf("created campaign of %q", got.AdvertiserID)
	}
	list, err := c.Campaigns(ctx, "adv_1")
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("adv_1 lists %d campaigns, want 1", len(list))
	}

	again := minimalCampaign("cmp_1", "adv_2")
	again.Name = "another"
	wantCode(t, c.CreateCampaign(ctx, again), campaigns.Conflict)
	got, err = c.Campaign(ctx, "cmp_1")
	must(t, err)
	if got.AdvertiserID != "adv_1" || got.Name == "another" {
		t.Fatalf("a refused create changed the campaign: %+v", got)
	}

	must(t, c.DeleteCampaign(ctx, "cmp_1"))
	for _, adv := range []string{"adv_1", "adv_2"} {
		wantCode(t, c.CreateCampaign(ctx, minimalCampaign("cmp_1", adv)), campaigns.Conflict)
		_, err := c.Campaign(ctx, "cmp_1")
		wantCode(t, err, campaigns.NotFound)
	}
	// Other IDs are free as before.
	must(t, c.CreateCampaign(ctx, minimalCampaign("cmp_2", "adv_1")))
}

// testCampaignUpdate: UpdateCampaign writes and returns what change makes
// of the stored campaign; an error of change is returned as is, and writes
// nothing; an update of an unknown campaign, or one that changes its ID,
// writes nothing either.
func testCampaignUpdate(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.PutCampaign(ctx, fullCampaign("cmp_1", "adv_1")))
	got, err := c.UpdateCampaign(ctx, "cmp_1", func(old *campaigns.Campaign) (*campaigns.Campaign, error) {
		if old.Name != "冬のビール cmp_1" {
			t.Errorf("change given %q, want the stored campaign", old.Name)
		}
		next := *old
		next.Name = "renamed"
		return &next, nil
	})
	must(t, err)
	stored, err := c.Campaign(ctx, "cmp_1")
	must(t, err)
	if got.Name != "renamed" || stored.Name != "renamed" {
		t.Fatalf("after the update: returned %q, stored %q; want renamed", got.Name, stored.Name)
	}
	wantCampaign(t, stored, got)

	mine := errors.New("refused by change")
	if _, err := c.UpdateCampaign(ctx, "cmp_1", func(*campaigns.Campaign) (*campaigns.Campaign, error) { return nil, mine }); err != mine {
		t.Fatalf("an update whose change failed: %v, want change's error as is", err)
	}
	moved := func(old *campaigns.Campaign) (*campaigns.Campaign, error) {
		next := *old
		next.ID, next.Name = "cmp_2", "moved"
		return &next, nil
	}
	if _, err := c.UpdateCampaign(ctx, "cmp_1", moved); err == nil {
		t.Fatal("an update that changed the campaign's ID succeeded")
	}
	_, err = c.UpdateCampaign(ctx, "cmp_9", func(old *campaigns.Campaign) (*campaigns.Campaign, error) { return old, nil })
	wantCode(t, err, campaigns.NotFound)
	stored, err = c.Campaign(ctx, "cmp_1")
	must(t, err)
	wantCampaign(t, stored, got)
	for _, id := range []string{"cmp_2", "cmp_9"} {
		_, err := c.Campaign(ctx, id)
		wantCode(t, err, campaigns.NotFound)
	}
}

// testCampaignUpdatesConcurrent: updates made at once, each of what the
// one before left, all land: none is written over a campaign another
// changed after it was read.
func testCampaignUpdatesConcurrent(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	start := minimalCampaign("cmp_1", "adv_1")
	start.Budget.DailyImpressions = 1
	must(t, c.PutCampaign(ctx, start))
	const n = 8 // fewer than the attempts a backend may make before it reports a Conflict
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := c.UpdateCampaign(ctx, "cmp_1", func(old *campaigns.Campaign) (*campaigns.Campaign, error) {
				next := *old
				next.Budget.DailyImpressions++
				return &next, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := c.Campaign(ctx, "cmp_1")
	must(t, err)
	if got.Budget.DailyImpressions != 1+n {
		t.Fatalf("daily budget %d after %d concurrent updates adding 1 to 1: updates were lost", got.Budget.DailyImpressions, n)
	}
}
