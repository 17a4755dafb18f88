package inproc

import (
	"context"
	"testing"

	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/loadtest/dataset"
)

// TestDigest: the digest is the same for the same engine and searches, and
// changes when the ads do.
func TestDigest(t *testing.T) {
	cfg := dataset.Default()
	cfg.Stores, cfg.Campaigns = 20000, 500
	w, err := dataset.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := dataset.BuildIndex(w)
	if err != nil {
		t.Fatal(err)
	}
	e, err := serving.NewEngine(ix, Tokyo, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ds := Prepare(w, w.Requests(2000, 1), EveningPeak)
	ctx := context.Background()
	ads, sum, err := Digest(ctx, e, ds)
	if err != nil {
		t.Fatal(err)
	}
	if ads == 0 {
		t.Fatal("no ad chosen for 2,000 searches")
	}
	ads2, sum2, err := Digest(ctx, e, ds)
	if err != nil || ads2 != ads || sum2 != sum {
		t.Fatalf("the same searches twice: %d ads %s, then %d ads %s (%v)", ads, sum, ads2, sum2, err)
	}
	// Move every search by a few hundred metres: other stores, other
	// distances, another digest.
	for i := range ds.Requests {
		ds.Requests[i].Lat += 0.003
	}
	if _, sum3, err := Digest(ctx, e, ds); err != nil || sum3 == sum {
		t.Fatalf("moved searches gave the same digest %s (%v)", sum3, err)
	}
}
