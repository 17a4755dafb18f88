package serving

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestGallopFindsLowerBound(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		n := r.IntN(300)
		cells := make([]uint64, n)
		for i := range cells {
			cells[i] = uint64(r.IntN(500))
		}
		slices.Sort(cells)
		from := 0
		if n > 0 {
			from = r.IntN(n + 1)
		}
		key := uint64(r.IntN(520))
		want, _ := slices.BinarySearch(cells[from:], key)
		want += from
		if got := gallop(cells, from, key); got != want {
			t.Fatalf("gallop(%v, %d, %d) = %d, want %d", cells, from, key, got, want)
		}
	}
}
