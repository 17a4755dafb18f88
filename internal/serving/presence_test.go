package serving

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/geo"
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
	outOfStock := map[campaigns.StockKey]bool{}
	ix := NewIndex()
	steps := 40
	if testing.Short() {
		steps = 15 // the race pass; the first pass takes all forty
	}
	for step := range steps {
		adv := advs[r.IntN(len(advs))]
		have := slices.Sorted(maps.Keys(truth[adv]))
		if step%3 == 2 && len(have) > 0 { // stock flips, before the step's write
			var rows []campaigns.StockUpdate
			for range 1 + r.IntN(40) {
				s := truth[adv][have[r.IntN(len(have))]]
				in := r.IntN(2) == 0
				rows = append(rows, campaigns.StockUpdate{StoreID: s.ID, ProductID: s.Products[r.IntN(len(s.Products))], InStock: &in})
			}
			ix.SetStock(adv, rows)
			for _, row := range rows {
				k := campaigns.StockKey{AdvertiserID: adv, StoreID: row.StoreID, ProductID: row.ProductID}
				if *row.InStock {
					delete(outOfStock, k)
				} else {
					outOfStock[k] = true
				}
			}
		}
		if step%5 == 4 && len(have) > 0 {
			id := have[r.IntN(len(have))]
			ix.DeleteStore(adv, id)
			for k := range outOfStock { // a deleted store's stock goes with it
				if k.AdvertiserID == adv && k.StoreID == id {
					delete(outOfStock, k)
				}
			}
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
		var cs []*campaigns.Store
		for _, a := range advs {
			for _, s := range truth[a] {
				s.AdvertiserID = a
				cs = append(cs, &s)
			}
		}
		if err := ref.Load(nil, cs, slices.Collect(maps.Keys(outOfStock))); err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(cs, func(s *campaigns.Store) bool { return s != nil }); i >= 0 {
			t.Fatalf("step %d: Load left store %d of its argument for the collector to keep", step, i)
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
		for i := range o.refs {
			s, mark := o.store(i), ""
			if o.isOut(i) {
				mark = " (out)"
			}
			ids = append(ids, fmt.Sprintf("%s@%v,%v:%s%s", s.ID(), s.Lat(), s.Lng(), s.Name(), mark))
		}
		lines = append(lines, fmt.Sprintf("offer %v: %v", o.key, ids))
	}
	for t := range numTiers {
		for cell, set := range snap.presence[t].all() {
			var keys []string
			for _, id := range set.appendIDs(nil) {
				keys = append(keys, fmt.Sprint(keyOf[id]))
			}
			slices.Sort(keys)
			lines = append(lines, fmt.Sprintf("tier %d cell %x: %v", t, cell, keys))
		}
	}
	slices.Sort(lines)
	return fmt.Sprint(len(lines), " lines: ", lines)
}

// TestStockAndCampaignsDoNotWaitForStoreWriters: while a store writer
// rebuilds offers (held inside its rebuild here), stock and campaign writes
// and decisions complete, and the rebuild, once installed, keeps the stock
// changes made meanwhile.
func TestStockAndCampaignsDoNotWaitForStoreWriters(t *testing.T) {
	ix := NewIndex()
	stores := []campaigns.Store{
		{ID: "near", Name: "near", Lat: 35.6901, Lng: 139.7000, Products: []string{"beer"}},
		{ID: "far", Name: "far", Lat: 35.6950, Lng: 139.7000, Products: []string{"beer"}},
	}
	if err := ix.PutStores("adv", stores); err != nil {
		t.Fatal(err)
	}
	ix.PutCampaign(campaign("c", "adv", "beer", 1000, "居酒屋"))
	e := newEngine(t, ix, nil)
	target := func() string { return nearestTarget(t, e) }
	inRebuild, release := pauseRebuild(ix)
	done := make(chan error)
	go func() { // a new store of another product, and "near" renamed
		done <- ix.PutStores("adv", []campaigns.Store{
			{ID: "near", Name: "near, renamed", Lat: 35.6901, Lng: 139.7000, Products: []string{"beer"}},
			{ID: "new", Name: "new", Lat: 35.6902, Lng: 139.7000, Products: []string{"wine"}},
		})
	}()
	<-inRebuild
	out, in := false, true
	waitFor(t, "stock write during a rebuild", func() {
		ix.SetStock("adv", []campaigns.StockUpdate{{StoreID: "near", ProductID: "beer", InStock: &out}})
	})
	if got := target(); got != "far" {
		t.Fatalf("during the rebuild: target %q, want far (near is out of stock)", got)
	}
	waitFor(t, "campaign write during a rebuild", func() { ix.PutCampaign(campaign("c2", "adv", "beer", 1000, "焼き鳥")) })
	if n := ix.Snapshot().Campaigns(); n != 2 {
		t.Fatalf("%d campaigns during the rebuild, want 2", n)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ix.rebuildHook = nil
	if got := target(); got != "far" {
		t.Fatalf("after the rebuild: target %q, want far: the stock change made during it was lost", got)
	}
	ix.SetStock("adv", []campaigns.StockUpdate{{StoreID: "near", ProductID: "beer", InStock: &in}})
	if got := target(); got != "near" {
		t.Fatalf("back in stock: target %q, want near", got)
	}
}

// waitFor runs f and fails the test if it has not returned within a
// minute: a guard against a deadlock, not a timing assertion.
func waitFor(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s blocked behind the store writer", what)
	}
}

// TestPresenceNeverHidesANearStore: for fixes near random stores, many of
// them just inside a tier's radius, every tier whose radius reaches a store
// of an offer marks the offer in the fix's cell. Presence may say "maybe"
// wrongly, never "absent". Most stores are in Tokyo; some sit by the twelve
// pentagons, on the antimeridian and in the far north, where H3's cells are
// least regular.
func TestPresenceNeverHidesANearStore(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	cells, err := h3.Pentagons(8)
	if err != nil {
		t.Fatal(err)
	}
	var pentagons []h3.LatLng
	for _, c := range cells {
		ll, err := c.LatLng()
		if err != nil {
			t.Fatal(err)
		}
		pentagons = append(pentagons, ll)
	}
	var stores []campaigns.Store
	for i := range 400 {
		s := campaigns.Store{ID: fmt.Sprintf("s%d", i), Name: "n", Lat: 35.5 + r.Float64()*0.4, Lng: 139.5 + r.Float64()*0.4}
		switch i % 10 {
		case 0: // a few far north, in another shard
			s.Lat, s.Lng = 43+r.Float64(), 141+r.Float64()
		case 1: // by a pentagon, where cells are smallest and least regular
			p := pentagons[r.IntN(len(pentagons))]
			s.Lat, s.Lng = p.Lat+0.1*(r.Float64()-0.5), p.Lng+0.1*(r.Float64()-0.5)
		case 2: // on the antimeridian or far north
			s.Lat, s.Lng = 140*r.Float64()-70, 179.99+0.01*r.Float64()
			if r.IntN(2) == 0 {
				s.Lat, s.Lng = 80+9*r.Float64(), 360*r.Float64()-180
			}
		}
		s.Products = []string{fmt.Sprintf("p%d", r.IntN(6))}
		stores = append(stores, s)
	}
	ix := NewIndex()
	if err := ix.PutStores("adv", stores); err != nil {
		t.Fatal(err)
	}
	snap := ix.Snapshot()
	var s search
	checked := 0
	for range 4000 {
		base := stores[r.IntN(len(stores))]
		tr := tiers[r.IntN(numTiers)]
		// Mostly just inside the radius, where a coarse cover is tightest.
		d := tr.radius * (0.9 + 0.1*r.Float64())
		if r.IntN(4) == 0 {
			d = tr.radius * r.Float64()
		}
		lat, lng := walkFrom(base.Lat, base.Lng, r.Float64()*2*math.Pi, d)
		s.reset(lat, lng, 0)
		s.spread = r.IntN(2) == 0 // sparse sets searched as lists, or spread into bitsets
		for tier, tr := range tiers {
			for _, st := range stores {
				if geo.DistanceM(lat, lng, st.Lat, st.Lng) > tr.radius {
					continue
				}
				id := ix.offerIDs[offerKey{"adv", st.Products[0]}]
				checked++
				if !s.present(snap, uint8(tier), id) {
					t.Fatalf("fix %.6f,%.6f: store %s of %s is %.1f m away, but tier %d (%v m, resolution %d) says absent",
						lat, lng, st.ID, st.Products[0], geo.DistanceM(lat, lng, st.Lat, st.Lng), tier, tr.radius, tr.res)
				}
			}
		}
	}
	t.Logf("%d (fix, tier, store within the tier's radius) checks", checked)
}

// TestPresentReadsEverySet checks search.present against the set it looks
// up, dense or sparse, with sparse sets searched as lists or spread into a
// bitset, and a spread bitset reused by the next decision.
func TestPresentReadsEverySet(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	const lat, lng = 35.6896, 139.7006
	fix, err := geo.Cell(lat, lng, geo.IndexResolution)
	if err != nil {
		t.Fatal(err)
	}
	var s search
	for trial := range 200 {
		maxID := uint32(1 + r.IntN(2000))
		snap := &Snapshot{}
		want := make([]map[uint32]bool, numTiers)
		for tier := range numTiers {
			want[tier] = map[uint32]bool{}
			snap.presence[tier] = newPresence()
			if r.IntN(8) == 0 {
				continue // nothing marked in the fix's cell
			}
			// Mostly sparse sets, some dense (a list of 4 bytes an ID
			// costs more than a bitset of maxID bits).
			k := 1 + r.IntN(int(maxID)/32+2)
			if r.IntN(4) == 0 {
				k = int(maxID)/16 + 4
			}
			var ids []uint32
			for range k {
				id := uint32(r.IntN(int(maxID)))
				if !want[tier][id] {
					want[tier][id] = true
					ids = append(ids, id)
				}
			}
			slices.Sort(ids)
			cell := uint64(geo.Parent(uint64(fix), tiers[tier].res))
			sh := &presenceShard{}
			sh.put(cell, ids, maxID)
			sh.clip()
			snap.presence[tier].shards[geo.Parent(cell, shardRes)] = sh
		}
		s.reset(lat, lng, 0)
		s.spread = trial%3 != 0
		for tier := range numTiers {
			for id := range maxID + 100 {
				if got := s.present(snap, uint8(tier), id); got != want[tier][id] {
					t.Fatalf("trial %d (spread %v), tier %d: present(%d) = %v, want %v", trial, s.spread, tier, id, got, !got)
				}
			}
		}
	}
}

func TestTierForCoversTheRadius(t *testing.T) {
	for _, radius := range []float64{1, 300, 500, 799, 800, 801, 1000, 1500, 2000, 3000, 5000} {
		tr := tiers[tierFor(radius)]
		if tr.radius < radius {
			t.Errorf("tierFor(%v) is the %v m tier", radius, tr.radius)
		}
		for _, other := range tiers {
			if other.radius >= radius && other.radius < tr.radius {
				t.Errorf("tierFor(%v) is the %v m tier, not the smaller %v m one", radius, tr.radius, other.radius)
			}
		}
	}
}

// walkFrom returns the point d metres from lat, lng along bearing, its
// longitude in [-180, 180] across the antimeridian.
func walkFrom(lat, lng, bearing, d float64) (float64, float64) {
	φ1, λ1 := lat*math.Pi/180, lng*math.Pi/180
	δ := d / geo.EarthRadiusM
	φ2 := math.Asin(math.Sin(φ1)*math.Cos(δ) + math.Cos(φ1)*math.Sin(δ)*math.Cos(bearing))
	λ2 := λ1 + math.Atan2(math.Sin(bearing)*math.Sin(δ)*math.Cos(φ1), math.Cos(δ)-math.Sin(φ1)*math.Sin(φ2))
	return φ2 * 180 / math.Pi, math.Remainder(λ2*180/math.Pi, 360) // into [-180, 180]
}

// TestPublishedShardFindsEveryCell: a shard's cells, published into its
// open-addressing table, are found with the sets they were put with,
// sparse and dense alike; cells around them and the null cell are not
// found; each yields every cell once.
func TestPublishedShardFindsEveryCell(t *testing.T) {
	centre, err := geo.Cell(35.6909, 139.7003, 8)
	if err != nil {
		t.Fatal(err)
	}
	disk, err := centre.GridDisk(20) // 1,261 neighbouring cells: H3 indexes differ in few bits
	if err != nil {
		t.Fatal(err)
	}
	ring, err := centre.GridRing(21)
	if err != nil {
		t.Fatal(err)
	}
	const maxID = 300
	sh := &presenceShard{}
	want := map[uint64][]uint32{}
	for k, c := range disk {
		ids := []uint32{}
		for id := uint32(k % 5); id < maxID; id += uint32(1 + k%40) { // from 8 to 300 IDs: some sets dense
			ids = append(ids, id)
		}
		sh.put(uint64(c), ids, maxID)
		want[uint64(c)] = ids
	}
	dense := 0
	for _, sp := range sh.spans {
		if sp.dense {
			dense++
		}
	}
	if dense == 0 || dense == len(sh.spans) {
		t.Fatalf("%d of %d sets dense: the test wants both kinds", dense, len(sh.spans))
	}
	sh.clip()
	if sh.built != nil || len(sh.index) < 2*len(disk) {
		t.Fatalf("published with the building list kept (%v) or a table of %d slots for %d cells", sh.built != nil, len(sh.index), len(disk))
	}
	for c, ids := range want {
		sp, ok := sh.find(c)
		if !ok {
			t.Fatalf("cell %x not found once published", c)
		}
		if got := sh.set(sp).appendIDs(nil); !slices.Equal(got, ids) {
			t.Fatalf("cell %x: set %v once published, want %v", c, got, ids)
		}
	}
	for _, c := range append(ring, 0) {
		if _, ok := sh.find(uint64(c)); ok {
			t.Fatalf("cell %x found, never put", uint64(c))
		}
	}
	seen := map[uint64]bool{}
	sh.each(func(c uint64, sp setSpan) bool {
		if seen[c] || want[c] == nil {
			t.Fatalf("each yields %x again or unput", c)
		}
		seen[c] = true
		return true
	})
	if len(seen) != len(want) {
		t.Fatalf("each yields %d cells, want %d", len(seen), len(want))
	}
}

// nearestTarget returns the store of the first ad an izakaya search at
// 35.6900, 139.7000 gets, "" for none.
func nearestTarget(t *testing.T, e *Engine) string {
	t.Helper()
	ads := decide(t, e, Request{Lat: 35.6900, Lng: 139.7000, Query: "居酒屋"})
	if len(ads) == 0 {
		return ""
	}
	return ads[0].Store.ID()
}

// pauseRebuild makes ix's next rebuild of offers stop before it installs:
// inRebuild is closed when it gets there, and it goes on once release is
// closed.
func pauseRebuild(ix *Index) (inRebuild, release chan struct{}) {
	inRebuild, release = make(chan struct{}), make(chan struct{})
	ix.rebuildHook = func() {
		close(inRebuild)
		<-release
	}
	return inRebuild, release
}
