package serving

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/navad/navad/campaigns"
)

// TestCampaignChangesThroughDeltaAndCompaction writes hundreds of campaigns
// one at a time (so the keyword index goes through its delta, masking and
// compactions), changes, pauses and deletes some, and checks after every
// step that each keyword triggers exactly the campaigns expected; then loads
// the same campaigns into a fresh index in one go and checks again.
func TestCampaignChangesThroughDeltaAndCompaction(t *testing.T) {
	ix := NewIndex()
	if err := ix.PutStores("adv", []campaigns.Store{{ID: "s", Name: "s", Lat: 35.69, Lng: 139.70, Products: []string{"p"}}}); err != nil {
		t.Fatal(err)
	}
	words := []string{"居酒屋", "カフェ", "ラーメン", "寿司", "焼肉", "ビール", "コーヒー", "パン"}
	want := map[string]*campaigns.Campaign{} // live campaigns by ID
	r := rand.New(rand.NewPCG(11, 12))
	check := func(e *Engine, step string) {
		t.Helper()
		for _, w := range words {
			ads := decide(t, e, Request{Lat: 35.69, Lng: 139.70, Query: w, N: 10})
			var got []string
			for _, ad := range ads {
				got = append(got, ad.Campaign.ID)
			}
			var exp []string
			for id, c := range want {
				if c.Status == campaigns.Active && c.Keywords[0].Text == w {
					exp = append(exp, id)
				}
			}
			slices.Sort(got)
			slices.Sort(exp)
			if len(exp) > 10 {
				// Only the top ten by priority are served; all share one.
				if len(got) != 10 {
					t.Fatalf("%s: %s: got %d ads, want 10 of %d", step, w, len(got), len(exp))
				}
				for _, id := range got {
					if !slices.Contains(exp, id) {
						t.Fatalf("%s: %s: served %s, which does not bid on it", step, w, id)
					}
				}
				continue
			}
			if fmt.Sprint(got) != fmt.Sprint(exp) {
				t.Fatalf("%s: %s: got %v, want %v", step, w, got, exp)
			}
		}
	}
	e := newEngine(t, ix, nil)
	steps := 400
	if testing.Short() {
		steps = 160 // the race pass: still past a compaction (more than 64 changed)
	}
	for i := range steps {
		id := fmt.Sprintf("c%03d", r.IntN(150)) // rewrites hit earlier campaigns
		c := campaign(id, "adv", "p", 800, words[r.IntN(len(words))])
		c.Priority = r.IntN(3)
		switch r.IntN(10) {
		case 0:
			if old, ok := want[id]; ok {
				ix.DeleteCampaign(id)
				delete(want, old.ID)
				check(e, fmt.Sprintf("step %d delete %s", i, id))
				continue
			}
		case 1:
			c.Status = campaigns.Paused
		}
		ix.PutCampaign(c)
		want[id] = c
		if i%10 == 0 || i > steps-20 {
			check(e, fmt.Sprintf("step %d put %s", i, id))
		}
	}
	check(e, "end")

	fresh := NewIndex()
	var all []*campaigns.Campaign
	for _, c := range want {
		all = append(all, c)
	}
	stores := []*campaigns.Store{{ID: "s", AdvertiserID: "adv", Name: "s", Lat: 35.69, Lng: 139.70, Products: []string{"p"}}}
	if err := fresh.Load(all, stores, nil); err != nil {
		t.Fatal(err)
	}
	check(newEngine(t, fresh, nil), "loaded")
}

// BenchmarkPutCampaign measures one campaign write into an index of 10,000
// campaigns with three keywords each: ranking, the delta keyword index, and
// the amortized share of compactions.
func BenchmarkPutCampaign(b *testing.B) {
	ix := NewIndex()
	vocab := []string{"居酒屋", "カフェ", "ラーメン", "寿司", "焼肉", "ビール", "コーヒー", "パン", "焼き鳥", "飲み屋",
		"缶コーヒー", "自販機", "コンビニ", "ランチ", "ピザ", "弁当", "生ビール", "うどん", "そば", "定食"}
	r := rand.New(rand.NewPCG(1, 1))
	mk := func(i int) *campaigns.Campaign {
		c := campaign(fmt.Sprintf("c%05d", i), "adv", "p", 800,
			vocab[r.IntN(len(vocab))], vocab[r.IntN(len(vocab))]+" "+vocab[r.IntN(len(vocab))], vocab[r.IntN(len(vocab))])
		c.Priority, c.BidCPM = r.IntN(10), float64(r.IntN(1000))
		return c
	}
	var all []*campaigns.Campaign
	for i := range 10000 {
		all = append(all, mk(i))
	}
	if err := ix.Load(all, nil, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ix.PutCampaign(mk(r.IntN(10000)))
	}
}

// TestNegativeListsWithNUL checks that campaigns share a compiled negative
// list only when their words are the same: the one negative "バイト\x00求人"
// (which validation accepts, and which blocks a query with both words) and
// the two negatives バイト and 求人 (either blocks) were one list, since the
// lists were keyed by their words joined with NUL, and whichever campaign
// came first decided what the other's negatives did.
func TestNegativeListsWithNUL(t *testing.T) {
	ix := NewIndex()
	if err := ix.PutStores("adv", []campaigns.Store{{ID: "s", Name: "s", Lat: 35.69, Lng: 139.70, Products: []string{"p"}}}); err != nil {
		t.Fatal(err)
	}
	both := campaign("both", "adv", "p", 800, "居酒屋")
	both.NegativeKeywords = []string{"バイト\x00求人"}
	either := campaign("either", "adv", "p", 800, "居酒屋")
	either.NegativeKeywords = []string{"バイト", "求人"}
	for _, c := range []*campaigns.Campaign{both, either} {
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		ix.PutCampaign(c)
	}
	e := newEngine(t, ix, nil)
	tests := []struct {
		give string
		want []string
	}{
		{"居酒屋 バイト", []string{"both"}},
		{"居酒屋 バイト 求人", nil},
		{"居酒屋", []string{"both", "either"}},
	}
	for _, tt := range tests {
		var got []string
		for _, ad := range decide(t, e, Request{Lat: 35.69, Lng: 139.70, Query: tt.give, N: 10}) {
			got = append(got, ad.Campaign.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: served %v, want %v", tt.give, got, tt.want)
		}
	}
}
