package serving

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/navad/navad/campaigns"
)

// TestIncrementalIndexMatchesRebuild applies random uploads (new stores,
// moves, product changes, renames, unchanged rows) and deletions to one
// index and checks after each step that its offers and presence marks are
// exactly those of an index built from scratch with the same stores.
func TestIncrementalIndexMatchesRebuild(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	advs := []string{"a1", "a2"}
	truth := map[string]map[string]campaigns.Store{"a1": {}, "a2": {}}
	randomStore := func(id string) campaigns.Store {
		s := campaigns.Store{ID: id, Name: "n" + id, Lat: 35.6 + r.Float64()*0.2, Lng: 139.6 + r.Float64()*0.2}
		if r.IntN(20) == 0 { // now and then far away, in another presence shard
			s.Lat, s.Lng = 43+r.Float64(), 141+r.Float64()
		}
		for range 1 + r.IntN(3) {
			s.Products = append(s.Products, fmt.Sprintf("p%d", r.IntN(8)))
		}
		slices.Sort(s.Products)
		s.Products = slices.Compact(s.Products)
		return s
	}
	ix := NewIndex()
	for step := range 40 {
		adv := advs[r.IntN(len(advs))]
		have := slices.Sorted(maps.Keys(truth[adv]))
		if step%5 == 4 && len(have) > 0 {
			id := have[r.IntN(len(have))]
			ix.DeleteStore(adv, id)
			delete(truth[adv], id)
		} else {
			var batch []campaigns.Store
			for range 1 + r.IntN(300) {
				var s campaigns.Store
				switch k := r.IntN(10); {
				case k < 4 || len(have) == 0:
					s = randomStore(fmt.Sprintf("s%d", r.IntN(2000)))
				case k < 6: // unchanged
					s = truth[adv][have[r.IntN(len(have))]]
				case k < 8: // renamed in place
					s = truth[adv][have[r.IntN(len(have))]]
					s.Name += "'"
				default: // moved or re-stocked
					s = randomStore(have[r.IntN(len(have))])
				}
				batch = append(batch, s)
			}
			if err := ix.PutStores(adv, batch); err != nil {
				t.Fatal(err)
			}
			for _, s := range batch {
				truth[adv][s.ID] = s
			}
		}
		ref := NewIndex()
		for _, a := range advs {
			if err := ref.PutStores(a, slices.Collect(maps.Values(truth[a]))); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := describeIndex(ix), describeIndex(ref); got != want {
			t.Fatalf("step %d: incremental index differs from a rebuild:\n got %.2000s\nwant %.2000s", step, got, want)
		}
	}
}

// describeIndex renders the published offers and presence marks by offer
// key, independent of offer ID assignment.
func describeIndex(ix *Index) string {
	snap := ix.Snapshot()
	keyOf := make(map[uint32]offerKey)
	for k, id := range ix.offerIDs {
		keyOf[id] = k
	}
	var lines []string
	for _, o := range snap.offers {
		if o == nil {
			continue
		}
		var ids []string
		for _, s := range o.stores {
			ids = append(ids, fmt.Sprintf("%s@%v,%v:%s", s.ID, s.Lat, s.Lng, s.Name))
		}
		lines = append(lines, fmt.Sprintf("offer %v: %v", o.key, ids))
	}
	for t := range numTiers {
		for _, shard := range snap.presence[t].shards {
			for cell, set := range shard {
				var keys []string
				for _, id := range set.appendIDs(nil) {
					keys = append(keys, fmt.Sprint(keyOf[id]))
				}
				slices.Sort(keys)
				lines = append(lines, fmt.Sprintf("tier %d cell %x: %v", t, cell, keys))
			}
		}
	}
	slices.Sort(lines)
	return fmt.Sprint(len(lines), " lines: ", lines)
}
