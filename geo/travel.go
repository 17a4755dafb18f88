package geo

import "math"

// Estimate is a travel estimate to a store: the distance along streets and
// the time it takes, both rounded for display.
type Estimate struct {
	// DistanceM is the estimated route length in whole metres.
	DistanceM int
	// ETASeconds is the estimated travel time in seconds, always a whole
	// number of minutes (see [Walk]).
	ETASeconds int
}

// Walking and driving assumptions. They turn a straight-line distance into
// a route estimate without a routing engine, which navad deliberately does
// not have: the navigation app routes once the user taps.
const (
	// WalkDetour is the ratio of walking route length to straight-line
	// distance. Studies of route directness ("circuity") put this ratio for
	// urban trips at roughly 1.2 to 1.4, higher for short trips, where a
	// block to walk around or a crossing to reach is a large share of the
	// way. Japanese city centres have fine street grids, but also rail
	// lines, elevated expressways and large station blocks to walk around.
	// 1.3 sits in the middle and errs long: an ETA that proves short is
	// worse than one the user beats.
	WalkDetour = 1.3

	// WalkMetresPerHour is 80 m per minute, the walking speed of the
	// Japanese real-estate convention (不動産の表示に関する公正競争規約
	// 施行規則: 徒歩所要時間は道路距離80メートルにつき1分), which users
	// know from every listing's "駅徒歩5分". Speeds are whole metres per
	// hour so that ETAs are computed exactly in integers.
	WalkMetresPerHour = 80 * 60

	// DriveDetour is the ratio of driving route length to straight-line
	// distance in cities: higher than walking, because cars follow one-way
	// streets and turn restrictions and cannot cut through stations,
	// arcades or parks.
	DriveDetour = 1.4

	// DriveMetresPerHour is an urban average driving speed, 20 km/h,
	// including signals and congestion. Peak-hour average travel speeds on
	// general roads in large Japanese cities, as the MLIT road traffic
	// census (道路交通センサス) reports them, are of this order: slower in
	// central Tokyo, faster in regional towns. Parking is not included.
	DriveMetresPerHour = 20_000
)

// maxStraightM caps the input of [Walk] and [Drive] at half the Earth's
// circumference, the longest great-circle distance, so that the integer
// conversions cannot overflow.
const maxStraightM = math.Pi * EarthRadiusM

// Walk estimates walking to a target straightM metres away in a straight
// line (as [DistanceM] measures): the route is WalkDetour times longer,
// rounded to the metre, and walked at 80 m per minute. Following the
// real-estate convention, a part minute counts as a whole one (1分未満の端数
// は1分として算出), so any positive distance takes at least one minute and
// the ETA is a whole number of minutes; a distance of 0 takes 0. NaN and
// negative distances count as 0, values beyond half the Earth's
// circumference as that. O(1), no allocation.
func Walk(straightM float64) Estimate {
	return estimate(straightM, WalkDetour, WalkMetresPerHour)
}

// Drive estimates driving to a target straightM metres away in a straight
// line: the route is DriveDetour times longer, rounded to the metre, and
// driven at DriveMetresPerHour. Minutes are rounded up as in [Walk], so
// the ETA is a whole number of minutes and at least one for any positive
// distance. NaN and negative distances count as 0. O(1), no allocation.
func Drive(straightM float64) Estimate {
	return estimate(straightM, DriveDetour, DriveMetresPerHour)
}

func estimate(straightM, detour float64, metresPerHour int64) Estimate {
	// The negated comparison also catches NaN.
	if !(straightM > 0) {
		return Estimate{}
	}
	d := int64(math.Round(min(straightM, maxStraightM) * detour))
	// The ETA comes from the rounded distance, so a client recomputing it
	// from DistanceM gets the same minutes: ceil(d / metres per minute).
	minutes := (d*60 + metresPerHour - 1) / metresPerHour
	return Estimate{DistanceM: int(d), ETASeconds: int(minutes) * 60}
}
