package serving

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/navad/navad/campaigns"
)

// TestStoreDirMatchesMap runs random puts and deletes on a directory and on
// a map by ID side by side, with the real hash and with one under which IDs
// collide all the time (so that the IDs kept by ID are exercised), and
// checks after every step that the directory finds and yields exactly the
// map's stores and keeps exactly the slabs that hold them.
func TestStoreDirMatchesMap(t *testing.T) {
	for _, tt := range []struct {
		name string
		hash func(string) uint64
	}{
		{"maphash", hashID},
		{"colliding", func(id string) uint64 { return uint64(len(id) % 3) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 8))
			d := newStoreDir()
			d.hash = tt.hash
			want := map[string]Store{}
			id := func() string { return fmt.Sprintf("s%d", r.IntN(40)) }
			for step := range 3000 {
				if r.IntN(3) == 0 {
					k := id()
					got, ok := d.del(k)
					if w, wok := want[k]; ok != wok || got != w {
						t.Fatalf("step %d: del(%s) = %v %v, want %v %v", step, k, got, ok, w, wok)
					}
					delete(want, k)
				} else {
					ids := make([]string, 1+r.IntN(6)) // may repeat an ID, as an upload may
					for i := range ids {
						ids[i] = id()
					}
					slab := slabOf(ids...)
					slot := d.add(slab)
					for i := range ids {
						if r.IntN(4) > 0 {
							d.put(slot, uint32(i))
							want[ids[i]] = Store{slab, uint32(i)}
						}
					}
					d.settle(slot)
				}
				checkDir(t, step, d, want)
			}
		})
	}
}

func checkDir(t *testing.T, step int, d *storeDir, want map[string]Store) {
	t.Helper()
	if d.len() != len(want) {
		t.Fatalf("step %d: %d stores, want %d", step, d.len(), len(want))
	}
	live := map[*storeSlab]int{}
	for k, w := range want {
		if got, ok := d.get(k); !ok || got != w {
			t.Fatalf("step %d: get(%s) = %v %v, want %v", step, k, got, ok, w)
		}
		live[w.slab]++
	}
	seen := 0
	for st := range d.all() {
		if want[st.ID()] != st {
			t.Fatalf("step %d: all yielded %s, not the current store of its ID", step, st.ID())
		}
		seen++
	}
	if seen != len(want) {
		t.Fatalf("step %d: all yielded %d stores, want %d", step, seen, len(want))
	}
	held := 0
	for slot, ds := range d.slots {
		if ds.slab == nil {
			if !slices.Contains(d.free, uint32(slot)) {
				t.Fatalf("step %d: empty slot %d not free", step, slot)
			}
			continue
		}
		held++
		if ds.live != live[ds.slab] || ds.live == 0 {
			t.Fatalf("step %d: slot %d counts %d live stores, holds %d", step, slot, ds.live, live[ds.slab])
		}
	}
	if held != len(live) {
		t.Fatalf("step %d: %d slabs held, %d hold current stores", step, held, len(live))
	}
}

// TestUploadKeepsOnlyChangedStores: an upload keeps a slab of the stores
// it changed alone, copied with their texts, products and hours; one that
// changes nothing keeps nothing; and a slab is dropped once all its stores
// are replaced or deleted.
func TestUploadKeepsOnlyChangedStores(t *testing.T) {
	ix := NewIndex()
	for len(ix.weeks) < noWeek { // so that stores keep their own hours, which a copy must move
		ix.weeks = append(ix.weeks, campaigns.Week{})
	}
	night := campaigns.Hours{{From: "17:00", To: "02:00"}}
	list := make([]campaigns.Store, 100)
	for i := range list {
		list[i] = campaigns.Store{ID: fmt.Sprintf("s%d", i), Name: fmt.Sprintf("store %d", i), Address: "addr",
			Lat: 35.69 + float64(i)*1e-4, Lng: 139.70, Products: []string{"beer", fmt.Sprintf("p%d", i%7)}}
	}
	put := func(stores ...campaigns.Store) {
		t.Helper()
		if err := ix.PutStores("adv", stores); err != nil {
			t.Fatal(err)
		}
	}
	slabs := func() (n, recs int) {
		for _, ds := range ix.stores["adv"].slots {
			if ds.slab != nil {
				n++
				recs += len(ds.slab.recs)
			}
		}
		return n, recs
	}
	check := func(want []campaigns.Store, wantSlabs, wantRecs int) {
		t.Helper()
		dir := ix.stores["adv"]
		if dir.len() != len(want) || ix.Snapshot().Stores() != len(want) {
			t.Fatalf("%d stores (snapshot %d), want %d", dir.len(), ix.Snapshot().Stores(), len(want))
		}
		for _, w := range want {
			st, ok := dir.get(w.ID)
			if !ok {
				t.Fatalf("store %s missing", w.ID)
			}
			var products []string
			for _, n := range st.products() {
				products = append(products, ix.productName[n])
			}
			// Always open is weeks[0], even with the table full.
			hours, _ := w.Hours.Compile()
			hoursOK := st.week() == 0 && hours.Always() || st.week() == noWeek && st.hours().Equal(hours)
			if st.Name() != w.Name || st.Address() != w.Address || st.Lat() != w.Lat || st.Lng() != w.Lng ||
				!slices.Equal(products, w.Products) || !hoursOK {
				t.Fatalf("store %s: %q %q %v,%v %v week %d, want %+v", w.ID, st.Name(), st.Address(), st.Lat(), st.Lng(), products, st.week(), w)
			}
		}
		if n, recs := slabs(); n != wantSlabs || recs != wantRecs {
			t.Fatalf("%d slabs of %d records, want %d of %d", n, recs, wantSlabs, wantRecs)
		}
	}
	put(list...)
	check(list, 1, 100)

	put(list...) // the same again
	check(list, 1, 100)
	put() // nothing
	check(list, 1, 100)

	// Two changed, one of them twice in the upload (the later wins), and
	// the rest the same: a slab of the two.
	a, b, b2 := list[3], list[50], list[50]
	a.Name, a.Hours = "renamed", night
	b.Lat, b2.Lat, b2.Address, b2.Products = 35.80, 35.81, "moved twice", []string{"wine"}
	upload := slices.Clone(list)
	upload[3], upload[50] = a, b
	upload = append(upload, b2)
	put(upload...)
	list[3], list[50] = a, b2
	check(list, 2, 102)

	// Replacing the rest of the first upload drops its slab.
	for i := range list {
		if i != 3 && i != 50 {
			list[i].Address = "new"
		}
	}
	put(list...)
	check(list, 2, 2+98)

	ix.DeleteStore("adv", "s3")
	ix.DeleteStore("adv", "s50")
	list = slices.Delete(list, 50, 51)
	list = slices.Delete(list, 3, 4)
	check(list, 1, 98)
}

// TestPrepareStoresChangesNothing: preparing an upload leaves the index as
// it was (a writer prepares, stores, then puts), putting it adds the stores,
// and a prepared upload goes in once.
func TestPrepareStoresChangesNothing(t *testing.T) {
	ix := NewIndex()
	if err := ix.PutStores("adv", []campaigns.Store{{ID: "s0", Name: "zero", Lat: 35.69, Lng: 139.70, Products: []string{"p"}}}); err != nil {
		t.Fatal(err)
	}
	p, err := PrepareStores([]campaigns.Store{
		{ID: "s1", Name: "one", Lat: 35.691, Lng: 139.701, Products: []string{"p"}},
		{ID: "s2", Name: "two", Lat: 34.70, Lng: 135.50, Products: []string{"q"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := ix.Snapshot().Stores(); n != 1 {
		t.Fatalf("after PrepareStores the index holds %d stores, want 1", n)
	}
	ix.PutPrepared("adv", p)
	if n := ix.Snapshot().Stores(); n != 3 {
		t.Fatalf("after PutPrepared the index holds %d stores, want 3", n)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a prepared upload was put twice")
		}
	}()
	ix.PutPrepared("adv", p)
}
