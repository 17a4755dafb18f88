package latency

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestIndexUpperAreConsistent(t *testing.T) {
	// Every value lies at or below its bucket's upper edge and above the
	// previous bucket's, and buckets are at most 1/128 of their values wide.
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		v := r.Uint64N(1 << uint(r.IntN(62)+1))
		i := index(v)
		if up := upper(i); v > up {
			t.Fatalf("value %d above its bucket %d's upper edge %d", v, i, up)
		}
		if i > 0 && v <= upper(i-1) {
			t.Fatalf("value %d not above the previous bucket's upper edge %d", v, upper(i-1))
		}
		if lo := upper(i-1) + 1; i > 0 && float64(upper(i)-lo) > float64(v)/128 {
			t.Fatalf("bucket %d of %d is %d wide", i, v, upper(i)-lo)
		}
	}
}

func TestQuantilesAgainstSortedSamples(t *testing.T) {
	tests := []struct {
		name string
		give func(r *rand.Rand) time.Duration
	}{
		{"uniform µs", func(r *rand.Rand) time.Duration { return time.Duration(r.IntN(1_000_000)) }},
		{"exponential tail", func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * 50_000) }},
		{"bimodal", func(r *rand.Rand) time.Duration {
			if r.IntN(100) == 0 {
				return 20*time.Millisecond + time.Duration(r.IntN(1000))
			}
			return 300*time.Microsecond + time.Duration(r.IntN(1000))
		}},
		{"tiny exact", func(r *rand.Rand) time.Duration { return time.Duration(r.IntN(100)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			var h Histogram
			vals := make([]time.Duration, 200_001)
			for i := range vals {
				vals[i] = tt.give(r)
				h.Record(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := max(int(float64(len(vals))*q+0.999999), 1)
				want := vals[rank-1]
				got := h.Quantile(q)
				if got < want || float64(got-want) > float64(want)/128+1 {
					t.Errorf("q%v = %v, want %v within 0.8%% above", q, got, want)
				}
			}
			if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
				t.Errorf("min/max = %v/%v, want %v/%v", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
			}
			if h.Count() != uint64(len(vals)) {
				t.Errorf("count = %d", h.Count())
			}
		})
	}
}

func TestMergeAndEmpty(t *testing.T) {
	var a, b, all, empty Histogram
	if empty.Quantile(0.99) != 0 || empty.Mean() != 0 || empty.Min() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	a.Merge(&empty)
	if a.Summary() != all.Summary() {
		t.Fatalf("merged %v, want %v", a.Summary(), all.Summary())
	}
	a.Reset()
	if a.Count() != 0 || a.Quantile(0.5) != 0 {
		t.Fatalf("reset histogram reports %v", a.Summary())
	}
	a.Record(-5)
	if a.Min() != 0 {
		t.Fatalf("negative durations must count as zero, min = %v", a.Min())
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i & 0xFFFFF))
	}
}
