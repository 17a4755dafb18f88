package campaigns

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func fullCampaign(keywords int) *Campaign {
	c := &Campaign{
		ID: "c1", AdvertiserID: "adv", Name: "秋のビール", Status: Status(strings.Clone("paused")),
		Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		NegativeKeywords: []string{"無料", "求人"},
		ProductID:        "beer-350",
		Creative:         Creative{Title: "冷えたビール", Text: "近くのお店で", ImageURL: "https://example.com/i.png", LandingURL: "https://example.com/"},
		RadiusM:          800,
		Modes:            []Mode{Mode(strings.Clone("walk")), Car},
		Publishers:       []string{"app1", "app2"},
		Hours:            Hours{{Days: []string{"mon", "fri"}, From: "17:00", To: "23:00"}, {From: "12:00", To: "13:00"}},
		Priority:         2,
		BidCPM:           120.5,
		Budget:           Budget{DailyImpressions: 1000, TotalImpressions: 50000},
		FrequencyCap:     &FrequencyCap{Impressions: 3, Per: "24h"},
		CreatedAt:        time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC),
	}
	for i := range keywords {
		c.Keywords = append(c.Keywords, Keyword{Text: fmt.Sprint("居酒屋", i), Match: MatchType(strings.Clone("broad"))})
	}
	return c
}

// TestPacked: a packed campaign equals the original, field by field; the
// original is untouched and shares nothing with it; and its statuses,
// match types and modes are the package's constants.
func TestPacked(t *testing.T) {
	c := fullCampaign(5)
	orig := fullCampaign(5)
	p := c.Packed()
	if !reflect.DeepEqual(p, c) {
		t.Fatalf("packed %+v\nwant %+v", p, c)
	}
	if !reflect.DeepEqual(c, orig) {
		t.Fatal("the original changed")
	}
	p.Keywords[0].Text, p.Publishers[0], p.Hours[0].Days[0], p.FrequencyCap.Impressions = "x", "x", "x", 9
	if !reflect.DeepEqual(c, orig) {
		t.Fatal("the packed copy shares slices or the cap with the original")
	}
	if p.Status != Paused || p.Modes[0] != Walk || p.Keywords[1].Match != Broad {
		t.Fatal("constants not kept")
	}
	var empty Campaign
	if q := empty.Packed(); !reflect.DeepEqual(q, &empty) {
		t.Fatalf("an empty campaign packed as %+v", q)
	}
}

// TestPackedAllocs: a packed campaign's strings cost one allocation however
// many keywords it has.
func TestPackedAllocs(t *testing.T) {
	small := testing.AllocsPerRun(20, func() { fullCampaign(1).Packed() }) - testing.AllocsPerRun(20, func() { fullCampaign(1) })
	large := testing.AllocsPerRun(20, func() { fullCampaign(40).Packed() }) - testing.AllocsPerRun(20, func() { fullCampaign(40) })
	// The campaign, its one string, the list of where its strings end, the
	// keyword, negative, publisher, mode and hours arrays, the one range's
	// days and the cap.
	if small > 10 || large != small {
		t.Fatalf("packing allocates %v times with 1 keyword, %v with 40", small, large)
	}
}
