package geo

import (
	"math"

	"github.com/uber/h3-go/v4"
)

// vec3 is a point on the unit sphere, for exact spherical geometry: the
// distances between cell boundaries behind [CellCover], and the tests that
// measure the bounds behind [Cover].
type vec3 struct{ x, y, z float64 }

func unitVec(ll h3.LatLng) vec3 {
	sinLat, cosLat := math.Sincos(ll.Lat * degToRad)
	sinLng, cosLng := math.Sincos(ll.Lng * degToRad)
	return vec3{cosLat * cosLng, cosLat * sinLng, sinLat}
}

func (a vec3) dot(b vec3) float64   { return a.x*b.x + a.y*b.y + a.z*b.z }
func (a vec3) add(b vec3) vec3      { return vec3{a.x + b.x, a.y + b.y, a.z + b.z} }
func (a vec3) scale(f float64) vec3 { return vec3{a.x * f, a.y * f, a.z * f} }
func (a vec3) unit() vec3           { return a.scale(1 / math.Sqrt(a.dot(a))) }
func (a vec3) cross(b vec3) vec3 {
	return vec3{a.y*b.z - a.z*b.y, a.z*b.x - a.x*b.z, a.x*b.y - a.y*b.x}
}

// angle is the angle in radians between a and b, accurate at small angles.
func angle(a, b vec3) float64 {
	c := a.cross(b)
	return math.Atan2(math.Sqrt(c.dot(c)), a.dot(b))
}

// arcDistance is the angle in radians from p to the minor great-circle arc
// from a to b.
func arcDistance(p, a, b vec3) float64 {
	n := a.cross(b).unit()
	s := p.dot(n)
	q := p.add(n.scale(-s)) // p projected on the arc's plane
	if a.cross(q).dot(n) >= 0 && q.cross(b).dot(n) >= 0 {
		return math.Abs(math.Asin(max(-1, min(1, s))))
	}
	return min(angle(p, a), angle(p, b))
}
