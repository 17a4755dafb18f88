package serving

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestStockMarksMatchesMap: random marks and unmarks leave a stockMarks
// holding what a map of pairs holds, with the real hash and with one that
// collides all the time, across compactions, with IDs long enough to take
// two bytes of length.
func TestStockMarksMatchesMap(t *testing.T) {
	for _, tt := range []struct {
		name string
		hash func(stockKey) uint64
	}{
		{"maphash", hashStock},
		{"colliding", func(k stockKey) uint64 { return uint64(len(k.store)+len(k.product)) % 3 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			m := newStockMarks()
			m.hash = tt.hash
			want := map[stockKey]bool{}
			long := strings.Repeat("店", 60) // 180 bytes
			key := func() stockKey {
				store := fmt.Sprint("s", r.IntN(60))
				if r.IntN(10) == 0 {
					store = long + fmt.Sprint("s", r.IntN(4))
				}
				return stockKey{store, fmt.Sprint("p", r.IntN(8))}
			}
			compactions := 0
			for step := range 6000 {
				k := key()
				if r.IntN(2) == 0 {
					m.add(k)
					want[k] = true
				} else {
					before := len(m.text)
					m.del(k)
					delete(want, k)
					if len(m.text) < before {
						compactions++
					}
				}
				if m.len() != len(want) {
					t.Fatalf("step %d: %d pairs, want %d", step, m.len(), len(want))
				}
				if step%50 == 0 {
					checkMarks(t, step, m, want)
				}
			}
			checkMarks(t, -1, m, want)
			if tt.name == "maphash" && compactions == 0 {
				t.Fatalf("the marks never compacted: %d bytes, %d dead", len(m.text), m.dead)
			}
			if m.dead > len(m.text) {
				t.Fatalf("%d dead bytes of %d", m.dead, len(m.text))
			}
		})
	}
	var nilMarks *stockMarks
	nilMarks.del(stockKey{"s", "p"})
	if nilMarks.len() != 0 || nilMarks.has(stockKey{"s", "p"}) {
		t.Fatal("a nil set is not empty")
	}
	for range nilMarks.all() {
		t.Fatal("a nil set yielded a pair")
	}
}

func checkMarks(t *testing.T, step int, m *stockMarks, want map[stockKey]bool) {
	t.Helper()
	for s := range 60 {
		for p := range 8 {
			for _, store := range []string{fmt.Sprint("s", s), strings.Repeat("店", 60) + fmt.Sprint("s", s)} {
				k := stockKey{store, fmt.Sprint("p", p)}
				if m.has(k) != want[k] {
					t.Fatalf("step %d: has(%v) = %v", step, k, m.has(k))
				}
			}
		}
	}
	seen := map[stockKey]bool{}
	for k := range m.all() {
		if !want[k] || seen[k] {
			t.Fatalf("step %d: all yielded %v, not marked or twice", step, k)
		}
		seen[k] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("step %d: all yielded %d pairs, want %d", step, len(seen), len(want))
	}
}
