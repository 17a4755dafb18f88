package driver

import (
	"math"
	"slices"
)

// Ratio compares the throughput of two targets driven in the same rounds.
// The targets of one round run back to back, seconds apart, while a shared
// machine's speed drifts over minutes; so each round's ratio compares the
// two under nearly the same conditions, and the rounds' ratios are samples
// of one quantity whose spread is the machine's.
type Ratio struct {
	// Rounds holds a's throughput over b's, round by round (rounds where
	// b has none are left out).
	Rounds []float64
	// Median and Mean are of Rounds.
	Median, Mean float64
	// Low and High bound the 95% confidence interval of the mean (Student's
	// t over the rounds, taken as independent samples); with fewer than
	// two rounds both equal the mean.
	Low, High float64
}

// CompareRounds returns a's throughput against b's, round by round: a[i]
// with b[i].
func CompareRounds(a, b []*Result) Ratio {
	var r Ratio
	for i := range min(len(a), len(b)) {
		if b[i].Throughput > 0 {
			r.Rounds = append(r.Rounds, a[i].Throughput/b[i].Throughput)
		}
	}
	n := len(r.Rounds)
	if n == 0 {
		return r
	}
	s := slices.Sorted(slices.Values(r.Rounds))
	r.Median = s[n/2]
	if n%2 == 0 {
		r.Median = (s[n/2-1] + s[n/2]) / 2
	}
	var sum float64
	for _, v := range r.Rounds {
		sum += v
	}
	r.Mean = sum / float64(n)
	r.Low, r.High = r.Mean, r.Mean
	if n < 2 {
		return r
	}
	var ss float64
	for _, v := range r.Rounds {
		ss += (v - r.Mean) * (v - r.Mean)
	}
	half := tCritical95(n-1) * math.Sqrt(ss/float64(n-1)/float64(n))
	r.Low, r.High = r.Mean-half, r.Mean+half
	return r
}

// tCritical95 returns the two-sided 95% critical value of Student's t with
// df degrees of freedom (df ≥ 1): from the table up to 30, beyond it from
// the Cornish–Fisher expansion about the normal's 1.95996, which is within
// 0.0001 of the exact value there and closer as df grows. (A coarse table
// of 2.021 for df 31–40, 2.000 to 60, 1.980 to 120 and 1.960 beyond gave
// the smallest value of each span, so intervals a little too narrow.)
func tCritical95(df int) float64 {
	table := [...]float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	if df <= len(table) {
		return table[df-1]
	}
	const z = 1.959963984540054 // the normal's 97.5% point
	z3, z5, z7, z9 := z*z*z, z*z*z*z*z, z*z*z*z*z*z*z, z*z*z*z*z*z*z*z*z
	v := float64(df)
	return z + (z3+z)/(4*v) + (5*z5+16*z3+3*z)/(96*v*v) + (3*z7+19*z5+17*z3-15*z)/(384*v*v*v) +
		(79*z9+776*z7+1482*z5-1920*z3-945*z)/(92160*v*v*v*v)
}
