package geo

import (
	"math"

	"github.com/uber/h3-go/v4"
)

// vec3 is a point on the unit sphere: [PointCovers] compares a point with
// its cells' centres by dot product, and the tests that measure the bounds
// behind [Cover] do exact spherical geometry with it.
type vec3 struct{ x, y, z float64 }

func unitVec(ll h3.LatLng) vec3 {
	sinLat, cosLat := math.Sincos(ll.Lat * degToRad)
	sinLng, cosLng := math.Sincos(ll.Lng * degToRad)
	return vec3{cosLat * cosLng, cosLat * sinLng, sinLat}
}

func (a vec3) dot(b vec3) float64 { return a.x*b.x + a.y*b.y + a.z*b.z }
