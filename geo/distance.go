package geo

import "math"

// EarthRadiusM is the radius of the sphere on which distances are measured:
// the authalic radius H3 uses (EARTH_RADIUS_KM), so that [DistanceM] agrees
// with h3.GreatCircleDistanceM and the cell geometry behind [Cover]. True
// distances on the WGS 84 ellipsoid differ by up to about 0.5%, 5 m in a
// kilometre: less than the error of a phone's fix.
const EarthRadiusM = 6371007.180918475

const degToRad = math.Pi / 180

// DistanceM returns the great-circle (haversine) distance in metres between
// two coordinates on a sphere of radius [EarthRadiusM]. It is pure Go, does
// not allocate and takes about 0.1 µs (no cgo call, unlike
// h3.GreatCircleDistanceM). Haversine stays accurate at the short distances
// navad measures, where the spherical law of cosines loses precision.
//
// Inputs are not validated, because the hot path has validated them once
// already: NaN in gives NaN out, and out-of-range coordinates give a finite
// but meaningless distance.
func DistanceM(lat1, lng1, lat2, lng2 float64) float64 {
	phi1, phi2 := lat1*degToRad, lat2*degToRad
	sinDPhi := math.Sin((phi2 - phi1) / 2)
	sinDLambda := math.Sin((lng2 - lng1) * degToRad / 2)
	a := sinDPhi*sinDPhi + math.Cos(phi1)*math.Cos(phi2)*sinDLambda*sinDLambda
	// Rounding can push a just above 1 for antipodal points.
	return 2 * EarthRadiusM * math.Asin(math.Sqrt(min(a, 1)))
}
