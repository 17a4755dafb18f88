package main

import (
	"testing"

	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/loadtest/dataset"
	"github.com/navad/navad/loadtest/inproc"
)

// TestEmbeddedPacerCapsDecisions: the engine decide measures with -caps
// reserves its ads against the world's frequency caps, as navad does: a
// user who repeats a search sees a campaign capped at three a day at most
// three times, where the engine without caps shows it every time.
func TestEmbeddedPacerCapsDecisions(t *testing.T) {
	w, err := dataset.Generate(dataset.Config{Seed: 7, Stores: 2000, Advertisers: 20, Agencies: 2, Publishers: 2, Products: 50, Campaigns: 200})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := dataset.BuildIndex(w)
	if err != nil {
		t.Fatal(err)
	}
	free, err := serving.NewEngine(ix, inproc.Tokyo, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pacer, done, err := embeddedPacer()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	capped, err := serving.NewEngine(ix, inproc.Tokyo, nil, pacer)
	if err != nil {
		t.Fatal(err)
	}
	ds := inproc.Prepare(w, w.Requests(2000, 1), inproc.EveningPeak)
	count := func(e *serving.Engine, req *serving.Request, id string) int {
		n := 0
		for range 6 {
			ads, err := e.Decide(t.Context(), req, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range ads {
				if a.Campaign.ID == id {
					n++
				}
			}
		}
		return n
	}
	for i := range ds.Requests {
		req := &ds.Requests[i]
		if req.UID == "" {
			continue
		}
		ads, err := free.Decide(t.Context(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range ads {
			fc := a.Campaign.FrequencyCap
			if fc == nil || fc.Impressions != 3 || fc.Per != "24h" {
				continue
			}
			if n := count(free, req, a.Campaign.ID); n != 6 {
				t.Fatalf("without caps, %d of 6 repeats showed campaign %s, want 6", n, a.Campaign.ID)
			}
			if n := count(capped, req, a.Campaign.ID); n != 3 {
				t.Fatalf("with caps, %d of 6 repeats by user %q showed campaign %s (3 a day), want 3", n, req.UID, a.Campaign.ID)
			}
			return
		}
	}
	t.Fatal("no search of the world showed a frequency-capped campaign")
}
