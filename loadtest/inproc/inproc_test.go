package inproc

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/loadtest/dataset"
)

// smallWorld generates a world of stores and campaigns and returns it with
// an engine over its index, without caps.
func smallWorld(t *testing.T, stores, campaigns int) (*dataset.World, *serving.Engine) {
	t.Helper()
	return smallWorldPaced(t, stores, campaigns, nil)
}

// smallWorldPaced is smallWorld with an engine asking pacer.
func smallWorldPaced(t *testing.T, stores, campaigns int, pacer serving.Pacer) (*dataset.World, *serving.Engine) {
	t.Helper()
	cfg := dataset.Default()
	cfg.Stores, cfg.Campaigns = stores, campaigns
	w, err := dataset.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := dataset.BuildIndex(w)
	if err != nil {
		t.Fatal(err)
	}
	e, err := serving.NewEngine(ix, Tokyo, nil, pacer)
	if err != nil {
		t.Fatal(err)
	}
	return w, e
}

// TestDigest: the digest is the same for the same engine and searches, and
// changes when the ads do.
func TestDigest(t *testing.T) {
	w, e := smallWorld(t, 20000, 500)
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

// TestRun: every decision of a run is timed and counted once, by kind;
// with yieldEvery, each goroutine yields once per that many decisions.
func TestRun(t *testing.T) {
	w, e := smallWorld(t, 5000, 200)
	ds := Prepare(w, w.Requests(500, 1), EveningPeak)
	for _, yield := range []int{0, 1, 7} {
		r, err := Run(context.Background(), e, ds, 50*time.Millisecond, 2, yield)
		if err != nil {
			t.Fatal(err)
		}
		if r.Decisions == 0 || r.Latency.Count != r.Decisions {
			t.Fatalf("yield %d: %d decisions, %d timed", yield, r.Decisions, r.Latency.Count)
		}
		var byKind uint64
		for _, l := range r.ByKind {
			byKind += l.Count
		}
		if byKind != r.Decisions {
			t.Fatalf("yield %d: %d decisions, %d by kind", yield, r.Decisions, byKind)
		}
		// A goroutine yields before its decisions k·yield+1, so each
		// yields ⌊(n−1)/yield⌋ times: between n/yield − 2 and n/yield
		// for both together.
		switch {
		case yield == 0 && r.Yields != 0:
			t.Fatalf("never yielding: %d yields", r.Yields)
		case yield > 0 && (r.Yields > r.Decisions/uint64(yield) || r.Yields+2 < r.Decisions/uint64(yield)):
			t.Fatalf("yield every %d: %d yields in %d decisions", yield, r.Yields, r.Decisions)
		}
	}
	// MeasureSpread decides each search once a pass.
	sp, err := MeasureSpread(context.Background(), e, ds, 3, 64)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Searches != 500 || sp.Passes != 3 || sp.Top != 5 || len(sp.Kept) != 2 || sp.Kept[0] > 5 || sp.Kept[1] > 5 ||
		sp.FastestP99 <= 0 || sp.FastestP99 > sp.MedianP99 {
		t.Fatalf("spread of 500 searches, 3 passes: %+v", sp)
	}
	// CompareYield times decisions in both modes, by turns.
	y, n, err := CompareYield(context.Background(), e, ds, 600*time.Millisecond, 4)
	if err != nil || y.Count == 0 || n.Count == 0 {
		t.Fatalf("CompareYield: %d decisions yielding, %d never (%v)", y.Count, n.Count, err)
	}
}

// TestSlowest: the slowest percent, at least one, by index.
func TestSlowest(t *testing.T) {
	took := make([]time.Duration, 300)
	for i := range took {
		took[i] = time.Duration((i*7919)%300) * time.Microsecond // a permutation of 0–299 µs
	}
	top := slowest(took)
	if len(top) != 3 {
		t.Fatalf("%d slowest of 300, want 3", len(top))
	}
	for i := range top {
		if took[i] < 297*time.Microsecond {
			t.Fatalf("search %d (%v) among the slowest", i, took[i])
		}
	}
	if top := slowest(took[:50]); len(top) != 1 {
		t.Fatalf("%d slowest of 50, want 1", len(top))
	}
}

// TestJitter: the fixed computation is timed over and over, whether it
// yields or not.
func TestJitter(t *testing.T) {
	for _, yield := range []int{0, 3} {
		s := Jitter(context.Background(), 5*time.Microsecond, 20*time.Millisecond, yield)
		if s.Count < 10 || s.P50 <= 0 || s.P99 < s.P50 || s.Max < s.P99 {
			t.Fatalf("yield %d: %+v", yield, s)
		}
	}
}

// TestFreshUsers: after FreshUsers each pass over the requests has users
// of its own, the same for a pass whichever decision asks, and the same
// searches otherwise; passes go round after the last; without it, a
// request is itself every pass.
func TestFreshUsers(t *testing.T) {
	ds := Decisions{
		Requests: []serving.Request{{Query: "居酒屋", UID: "u7"}, {Query: "歯医者"}, {Query: "カフェ", UID: "u12345"}},
		Kinds:    []dataset.Kind{dataset.Trigger, dataset.Neutral, dataset.Trigger},
	}
	n := uint64(len(ds.Requests))
	if r, _ := ds.at(2 + 5*n); r.UID != "u12345" {
		t.Fatalf("without FreshUsers: user %q, want u12345", r.UID)
	}
	ds.FreshUsers(3)
	seen := map[string]bool{}
	for pass := range uint64(3) {
		for i := range n {
			r, kind := ds.at(pass*n + i)
			if r.Query != ds.Requests[i].Query || kind != ds.Kinds[i] {
				t.Fatalf("pass %d, request %d: %q (%v), want %q (%v)", pass, i, r.Query, kind, ds.Requests[i].Query, ds.Kinds[i])
			}
			if ds.Requests[i].UID == "" {
				if r.UID != "" {
					t.Fatalf("pass %d: a search without a user got %q", pass, r.UID)
				}
				continue
			}
			want := ds.Requests[i].UID + "~0" + string(rune('0'+pass))
			if r.UID != want || seen[r.UID] {
				t.Fatalf("pass %d, request %d: user %q, want %q, new", pass, i, r.UID, want)
			}
			seen[r.UID] = true
		}
	}
	if r, _ := ds.at(3*n + 2); r.UID != "u12345~00" {
		t.Fatalf("pass 3 of 3: user %q, want the first pass's again", r.UID)
	}
	if ds.Requests[0].UID != "u7" {
		t.Fatalf("the requests themselves changed: %q", ds.Requests[0].UID)
	}
}

// userPacer records the users it is asked for, until it counts how many
// of those it is asked for again.
type userPacer struct {
	mu       sync.Mutex
	seen     map[string]bool
	counting bool
	n, again int
}

func (p *userPacer) Allow(_ context.Context, _ *serving.Campaign, uid string, _ time.Time) bool {
	if uid == "" {
		return true // no user: nothing to replay
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.counting {
		p.n++
		if p.seen[uid] {
			p.again++
		}
	} else {
		p.seen[uid] = true
	}
	return true
}

// TestRunFromTheWarmup: a measured run that starts From the pass after
// the warm-up's (as decide runs them) reserves for no user the warm-up
// served: from decision 0 it replayed them, about a tenth of its
// decisions, whose frequency windows the warm-up had opened.
func TestRunFromTheWarmup(t *testing.T) {
	p := &userPacer{seen: map[string]bool{}}
	w, e := smallWorldPaced(t, 20000, 500, p)
	ds := Prepare(w, w.Requests(1<<12, 1), EveningPeak)
	ds.FreshUsers(64)
	ctx := context.Background()
	warm, err := Run(ctx, e, ds, 100*time.Millisecond, 1, 64)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.counting = true
	p.mu.Unlock()
	ds.From = ds.PassAfter(warm.Decisions)
	if _, err := Run(ctx, e, ds, 300*time.Millisecond, 1, 64); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 || p.again > 0 {
		t.Fatalf("%d reservations after the warm-up, %d of them for users the warm-up served", p.n, p.again)
	}
}
