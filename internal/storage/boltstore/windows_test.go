package boltstore

import (
	"math"
	"math/rand/v2"
	"testing"
)

type windowKey struct {
	camp uint32
	uid  uint64
}

// TestUserWindowsMatchAMap: random puts, gets and drops on a table of
// sixteen slots a shard (so probes collide, wrap around the shard's end and
// cross the holes drops leave) agree with a map, and each yields exactly
// what the map holds. A shard refuses a new window at three quarters full.
func TestUserWindowsMatchAMap(t *testing.T) {
	tab := newUserWindows(1)
	if tab.size != 16 {
		t.Fatalf("a shard of %d slots, want the least, 16", tab.size)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[windowKey]capWindow{}
	perShard := [windowShards]int{}
	full := 0
	check := func(step int) {
		t.Helper()
		for k, w := range want {
			got, ok := tab.get(k.camp, k.uid)
			if !ok || got != w {
				t.Fatalf("step %d: window %v is %v %v, want %v", step, k, got, ok, w)
			}
		}
		seen := 0
		tab.each(func(camp uint32, uid uint64, w capWindow) {
			seen++
			if want[windowKey{camp, uid}] != w {
				t.Fatalf("step %d: each yields %d/%d %v, not in the map", step, camp, uid, w)
			}
		})
		if seen != len(want) {
			t.Fatalf("step %d: each yields %d windows, want %d", step, seen, len(want))
		}
	}
	for step := range 200_000 {
		// Few keys, so that most operations find one already there.
		k := windowKey{camp: 1 + uint32(rng.IntN(4)), uid: uint64(rng.IntN(600))}
		sh := windowHash(k.camp, k.uid) >> (64 - windowShardBits)
		switch op := rng.IntN(10); {
		case op < 5:
			w := capWindow{n: int64(rng.IntN(5)), end: int64(rng.IntN(100))}
			_, had := want[k]
			ok := tab.put(k.camp, k.uid, w)
			switch {
			case !had && perShard[sh] >= 12:
				if ok {
					t.Fatalf("step %d: a 13th window taken in a shard of 16", step)
				}
				full++
			case !ok:
				t.Fatalf("step %d: put %v refused with %d in its shard", step, k, perShard[sh])
			default:
				if !had {
					perShard[sh]++
				}
				want[k] = w
			}
		case op < 8:
			latest := int64(rng.IntN(100))
			w, had := want[k]
			dropped := tab.drop(k.camp, k.uid, latest)
			if dropped != (had && w.end <= latest) {
				t.Fatalf("step %d: drop %v at %d reported %v; the window %v %v", step, k, latest, dropped, w, had)
			}
			if dropped {
				delete(want, k)
				perShard[sh]--
			}
		default:
			w, had := want[k]
			got, ok := tab.get(k.camp, k.uid)
			if ok != had || got != w {
				t.Fatalf("step %d: get %v = %v %v, want %v %v", step, k, got, ok, w, had)
			}
		}
		if step%997 == 0 {
			check(step)
		}
	}
	check(-1)
	if full == 0 {
		t.Fatal("no shard was ever full: the test did not reach the refusal")
	}
}

// TestUserWindowsKeepCampaignsApart: the same user hash under two
// campaigns is two windows, and a count beyond 32 bits stays at the most.
func TestUserWindowsKeepCampaignsApart(t *testing.T) {
	tab := newUserWindows(1000)
	if !tab.put(1, 42, capWindow{n: 2, end: 10}) || !tab.put(2, 42, capWindow{n: 7, end: 20}) {
		t.Fatal("put refused in an empty table")
	}
	if w, _ := tab.get(1, 42); w != (capWindow{n: 2, end: 10}) {
		t.Fatalf("campaign 1's window %v", w)
	}
	if w, _ := tab.get(2, 42); w != (capWindow{n: 7, end: 20}) {
		t.Fatalf("campaign 2's window %v", w)
	}
	if tab.drop(1, 42, 9) {
		t.Fatal("a window open until 10 dropped at 9")
	}
	if !tab.drop(1, 42, 10) {
		t.Fatal("a window closed at 10 kept")
	}
	if _, ok := tab.get(2, 42); !ok {
		t.Fatal("dropping campaign 1's window dropped campaign 2's")
	}
	tab.put(3, 1, capWindow{n: math.MaxInt64, end: 1})
	if w, _ := tab.get(3, 1); w.n != math.MaxUint32 {
		t.Fatalf("a count beyond 32 bits kept as %d, want %d", w.n, uint32(math.MaxUint32))
	}
}

// TestExpiryQueue: entries come out in the order they went in, across
// chunks, and a chunk done with is used again rather than allocated.
func TestExpiryQueue(t *testing.T) {
	var q expiryQueue
	next, out := int64(0), int64(0)
	for round := range 5 {
		for range 1500 + round*700 {
			q.push(capExpiry{key: uint64(next), end: next})
			next++
		}
		for range 1200 + round*600 {
			e, ok := q.first()
			if !ok || e.end != out || e.key != uint64(out) {
				t.Fatalf("round %d: first is %v %v, want %d", round, e, ok, out)
			}
			q.pop()
			out++
		}
		if q.n != int(next-out) {
			t.Fatalf("round %d: len %d, want %d", round, q.n, next-out)
		}
	}
	for q.n > 0 {
		q.pop()
		out++
	}
	if _, ok := q.first(); ok || out != next {
		t.Fatalf("emptied after %d of %d entries, first still there: %v", out, next, ok)
	}
	// Steady state: a chunk filled and emptied at the pace of the pushes
	// reuses the one before it.
	allocs := testing.AllocsPerRun(10, func() {
		for range expiryChunk {
			q.push(capExpiry{})
		}
		for range expiryChunk {
			q.pop()
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations a chunk filled and emptied, want 0", allocs)
	}
}

// TestUserWindowsPrefault: prefault allocates every shard in full, and the
// table works as before: a window put after it is found, a shard holds as
// many as without it.
func TestUserWindowsPrefault(t *testing.T) {
	tab := newUserWindows(10_000)
	tab.put(7, 1, capWindow{n: 1, end: 5}) // a shard allocated before: kept
	tab.prefault()
	for k := range tab.shards {
		if len(tab.shards[k].slots) != tab.size {
			t.Fatalf("shard %d has %d slots after prefault, want %d", k, len(tab.shards[k].slots), tab.size)
		}
	}
	if w, ok := tab.get(7, 1); !ok || w.n != 1 {
		t.Fatalf("a window put before prefault: %v %v", w, ok)
	}
	if tab.size != 512 {
		t.Fatalf("%d slots a shard for 10,000 windows, want 512 (twice, rounded up)", tab.size)
	}
}
