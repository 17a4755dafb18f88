package serving

import (
	"slices"
	"testing"

	"github.com/navad/navad/campaigns"
)

// TestRomajiCompoundSameWhateverWriteHistory: a romaji search written as
// one word (shinjukuizakaya) triggers the same campaigns whether they were
// loaded together (as on every restart), one was created after start (and
// sits in the delta index), or one had its title edited. Romaji words were
// once read whole only over the hits of keywords in the same index, so the
// 居酒屋 campaign matched only while the 新宿 one shared its index.
func TestRomajiCompoundSameWhateverWriteHistory(t *testing.T) {
	stores := func() []*campaigns.Store {
		return []*campaigns.Store{{ID: "s1", AdvertiserID: "adv", Name: "s1", Lat: 35.6909, Lng: 139.7003, Products: []string{"beer"}}}
	}
	beer := campaign("beer", "adv", "beer", 800, "居酒屋")
	station := campaign("station", "adv", "beer", 800, "新宿")
	req := Request{Lat: 35.6909, Lng: 139.7003, Query: "shinjukuizakaya", N: 3}

	together := NewIndex()
	if err := together.Load([]*campaigns.Campaign{beer, station}, stores(), nil); err != nil {
		t.Fatal(err)
	}
	created := NewIndex()
	if err := created.Load([]*campaigns.Campaign{beer}, stores(), nil); err != nil {
		t.Fatal(err)
	}
	created.PutCampaign(station)
	edited := NewIndex()
	if err := edited.Load([]*campaigns.Campaign{beer, station}, stores(), nil); err != nil {
		t.Fatal(err)
	}
	retitled := *station
	retitled.Creative.Title = "new title"
	edited.PutCampaign(&retitled)

	tests := []struct {
		name string
		ix   *Index
	}{
		{"loaded together", together},
		{"新宿 created after start", created},
		{"新宿 title edited", edited},
	}
	want := []string{"beer", "station"}
	for _, tt := range tests {
		var got []string
		for _, a := range decide(t, newEngine(t, tt.ix, nil), req) {
			got = append(got, a.Campaign.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q triggered %v, want %v", tt.name, req.Query, got, want)
		}
	}
}
