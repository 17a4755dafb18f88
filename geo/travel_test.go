package geo

import (
	"math"
	"testing"
)

func TestWalk(t *testing.T) {
	tests := []struct {
		give float64
		want Estimate
	}{
		{give: 0, want: Estimate{}},
		{give: -5, want: Estimate{}},
		{give: math.NaN(), want: Estimate{}},
		{give: math.Inf(-1), want: Estimate{}},
		{give: 0.1, want: Estimate{DistanceM: 0, ETASeconds: 0}},       // rounds to 0 m
		{give: 1, want: Estimate{DistanceM: 1, ETASeconds: 60}},        // a part minute is a minute
		{give: 61.5, want: Estimate{DistanceM: 80, ETASeconds: 60}},    // exactly 80 m: 1 minute
		{give: 62, want: Estimate{DistanceM: 81, ETASeconds: 120}},     // 81 m: 2 minutes
		{give: 184.6, want: Estimate{DistanceM: 240, ETASeconds: 180}}, // 240 m: 3 minutes
		{give: 500, want: Estimate{DistanceM: 650, ETASeconds: 540}},
		{give: 5000, want: Estimate{DistanceM: 6500, ETASeconds: 4920}},
	}
	for _, tt := range tests {
		if got := Walk(tt.give); got != tt.want {
			t.Errorf("Walk(%v) = %+v, want %+v", tt.give, got, tt.want)
		}
	}
}

func TestDrive(t *testing.T) {
	tests := []struct {
		give float64
		want Estimate
	}{
		{give: 0, want: Estimate{}},
		{give: math.NaN(), want: Estimate{}},
		{give: 1, want: Estimate{DistanceM: 1, ETASeconds: 60}},
		{give: 238, want: Estimate{DistanceM: 333, ETASeconds: 60}},     // 333 m: under a minute at 20 km/h
		{give: 239, want: Estimate{DistanceM: 335, ETASeconds: 120}},    // 335 m: just over
		{give: 1000, want: Estimate{DistanceM: 1400, ETASeconds: 300}},  // 4.2 minutes: 5
		{give: 5000, want: Estimate{DistanceM: 7000, ETASeconds: 1260}}, // 21 minutes exactly
	}
	for _, tt := range tests {
		if got := Drive(tt.give); got != tt.want {
			t.Errorf("Drive(%v) = %+v, want %+v", tt.give, got, tt.want)
		}
	}
}

// TestEstimateCap checks that distances beyond any on Earth are capped
// rather than overflowing.
func TestEstimateCap(t *testing.T) {
	for _, f := range []func(float64) Estimate{Walk, Drive} {
		want := f(maxStraightM)
		if want.DistanceM < 20_000_000 || want.ETASeconds <= 0 {
			t.Errorf("estimate at half the circumference = %+v", want)
		}
		for _, give := range []float64{maxStraightM + 1, 1e300, math.MaxFloat64, math.Inf(1)} {
			if got := f(give); got != want {
				t.Errorf("estimate at %v m = %+v, want %+v", give, got, want)
			}
		}
	}
}

// TestEstimateMonotonic checks that a farther store never gets a shorter
// estimate.
func TestEstimateMonotonic(t *testing.T) {
	for _, f := range []func(float64) Estimate{Walk, Drive} {
		var prev Estimate
		for d := 0.0; d < 20_000; d += 0.37 {
			got := f(d)
			if got.DistanceM < prev.DistanceM || got.ETASeconds < prev.ETASeconds {
				t.Fatalf("estimate at %v m = %+v, less than %+v just before", d, got, prev)
			}
			if got.ETASeconds%60 != 0 {
				t.Fatalf("estimate at %v m = %+v, not whole minutes", d, got)
			}
			prev = got
		}
	}
}
