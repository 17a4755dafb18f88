package campaigns

import (
	"math/rand/v2"
	"testing"
)

// TestTrie checks the double array against a map: every key is found with
// its value at the end of its walk, and no walk finds a value that is not a
// key's.
func TestTrie(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte("ab\x00\xff\xe3\x81\x82")
	for round := range 50 {
		want := map[string]int32{}
		n := rng.IntN(300)
		if round == 0 {
			n = 0
		}
		for len(want) < n {
			k := make([]byte, rng.IntN(8))
			for i := range k {
				k[i] = alphabet[rng.IntN(len(alphabet))]
			}
			want[string(k)] = int32(len(want))
		}
		var keys []string
		var vals []int32
		for k, v := range want {
			keys = append(keys, k)
			vals = append(vals, v)
		}
		tr := newTrie(keys, vals)
		if tr.empty() != (n == 0) {
			t.Fatalf("round %d: empty() = %v with %d keys", round, tr.empty(), n)
		}
		// Walk random strings and every key: the value at each prefix
		// must be that prefix's, or -1.
		probes := append([]string(nil), keys...)
		for range 300 {
			k := make([]byte, rng.IntN(10))
			for i := range k {
				k[i] = alphabet[rng.IntN(len(alphabet))]
			}
			probes = append(probes, string(k))
		}
		for _, s := range probes {
			node := uint32(0)
			for i := 0; i <= len(s); i++ {
				v, isKey := want[s[:i]]
				if !isKey {
					v = -1
				}
				if got := tr.valueAt(node); got != v {
					t.Fatalf("round %d: value at %q = %d, want %d", round, s[:i], got, v)
				}
				if i == len(s) {
					break
				}
				next, ok := tr.child(node, s[i])
				if !ok {
					// No key may continue this prefix.
					for k := range want {
						if len(k) > i && k[:i+1] == s[:i+1] {
							t.Fatalf("round %d: walk of %q stops at %d but key %q continues it", round, s, i, k)
						}
					}
					break
				}
				node = next
			}
		}
	}
}
