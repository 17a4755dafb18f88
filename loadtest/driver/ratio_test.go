package driver

import (
	"math"
	"slices"
	"testing"
)

func results(tps ...float64) []*Result {
	rs := make([]*Result, len(tps))
	for i, tp := range tps {
		rs[i] = &Result{Throughput: tp}
	}
	return rs
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestCompareRounds(t *testing.T) {
	// Ratios 0.6, 0.7, 0.65: mean 0.65, sample deviation 0.05, standard
	// error 0.05/√3, t(2) = 4.303.
	r := CompareRounds(results(6, 7, 6.5), results(10, 10, 10))
	if !slices.EqualFunc(r.Rounds, []float64{0.6, 0.7, 0.65}, near) {
		t.Fatalf("rounds %v", r.Rounds)
	}
	half := 4.303 * 0.05 / math.Sqrt(3)
	if !near(r.Median, 0.65) || !near(r.Mean, 0.65) || !near(r.Low, 0.65-half) || !near(r.High, 0.65+half) {
		t.Errorf("got %+v, want median and mean 0.65, interval ±%.6f", r, half)
	}

	// Rounds pair by index; a round b has no throughput in is left out, as
	// is a's extra round; an even count's median is the middle two's mean.
	r = CompareRounds(results(5, 9, 8, 3, 4), results(10, 0, 10, 10))
	if !slices.EqualFunc(r.Rounds, []float64{0.5, 0.8, 0.3}, near) {
		t.Fatalf("rounds %v", r.Rounds)
	}
	r = CompareRounds(results(5, 8, 3, 4), results(10, 10, 10, 10))
	if !near(r.Median, 0.45) || !near(r.Mean, 0.5) {
		t.Errorf("median %v mean %v, want 0.45 and 0.5", r.Median, r.Mean)
	}

	// One round: no interval to speak of.
	r = CompareRounds(results(6), results(10))
	if !near(r.Mean, 0.6) || r.Low != r.Mean || r.High != r.Mean {
		t.Errorf("one round: %+v", r)
	}
	if r := CompareRounds(nil, results(10)); len(r.Rounds) != 0 || r.Mean != 0 {
		t.Errorf("no rounds: %+v", r)
	}
}

func TestTCritical95(t *testing.T) {
	// Exact values (R's qt(0.975, df)) to three decimals: from the table
	// up to 30 degrees of freedom, from the expansion beyond.
	for _, tt := range []struct {
		df   int
		want float64
	}{{1, 12.706}, {2, 4.303}, {9, 2.262}, {19, 2.093}, {30, 2.042}, {31, 2.040}, {35, 2.030}, {39, 2.023},
		{40, 2.021}, {41, 2.020}, {59, 2.001}, {79, 1.990}, {95, 1.985}, {121, 1.980}, {200, 1.972}, {1000, 1.962}} {
		if got := tCritical95(tt.df); math.Abs(got-tt.want) > 0.0006 {
			t.Errorf("tCritical95(%d) = %.4f, want %.3f", tt.df, got, tt.want)
		}
	}
	// The critical value falls as the degrees of freedom rise, towards the
	// normal's 1.96, and never below it.
	for df := 2; df < 2000; df++ {
		if tCritical95(df) > tCritical95(df-1) || tCritical95(df) < 1.959963 {
			t.Errorf("tCritical95(%d) = %v after %v", df, tCritical95(df), tCritical95(df-1))
		}
	}
}

func TestMedian(t *testing.T) {
	twenty := make([]float64, 20)
	for i := range twenty {
		twenty[i] = float64((i*7)%20 + 1) // 1..20, shuffled
	}
	tests := []struct {
		give []float64
		want float64
	}{
		{[]float64{5}, 5},
		{[]float64{9, 5}, 9}, // the faster of the middle two
		{[]float64{9, 5, 7}, 7},
		{twenty, 11},
	}
	for _, tt := range tests {
		if got := Median(results(tt.give...)); got.Throughput != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.give, got.Throughput, tt.want)
		}
	}
	if Median(nil) != nil {
		t.Error("Median of no rounds: want nil")
	}
}
