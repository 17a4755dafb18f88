//go:build race

package httpapi_test

// raceSlowdown stretches the timing bounds of tests under the race
// detector, which slows code by an order of magnitude; the promises they
// check are about the production build.
const raceSlowdown = 5
