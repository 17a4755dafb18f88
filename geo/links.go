package geo

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
)

// Route links point at the target only. They never carry the user's own
// position as an origin: the navigation app starts from the device's
// location anyway, and navad must not echo a fix into a URL that may be
// logged, shared or prefetched.

// formatCoord formats a degree value with at most six decimals and no
// trailing zeros. Six decimals is about 0.1 m, below the error of any GPS
// fix or geocoded store address, so rounding loses nothing while keeping
// links short and free of float noise (35.6909, not 35.690900000000003).
// The shortest representation of the rounded value never needs more than
// six decimals.
func formatCoord(v float64) string {
	r := math.Round(v*1e6) / 1e6
	if r == 0 {
		r = 0 // no "-0"
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// GeoURI returns the RFC 5870 geo URI of lat, lng, such as
// "geo:35.6909,139.7003", with at most six decimals (about 0.1 m). RFC 5870
// has no place for a label, so there is none. At a pole the longitude is
// written as 0, as the RFC asks. Coordinates must be valid WGS 84.
func GeoURI(lat, lng float64) (string, error) {
	if err := checkLatLng(lat, lng); err != nil {
		return "", fmt.Errorf("geo uri: %w", err)
	}
	if lat == 90 || lat == -90 {
		lng = 0
	}
	return "geo:" + formatCoord(lat) + "," + formatCoord(lng), nil
}

// GoogleMapsWalkURL returns a Google Maps URL (Maps URLs, api=1) that opens
// walking directions from the device's own location to lat, lng. The
// coordinates are URL-encoded ("," as %2C, as Google asks).
func GoogleMapsWalkURL(lat, lng float64) (string, error) {
	return googleMapsURL(lat, lng, "walking")
}

// GoogleMapsDriveURL returns a Google Maps URL (Maps URLs, api=1) that opens
// driving directions from the device's own location to lat, lng.
func GoogleMapsDriveURL(lat, lng float64) (string, error) {
	return googleMapsURL(lat, lng, "driving")
}

func googleMapsURL(lat, lng float64, travelMode string) (string, error) {
	if err := checkLatLng(lat, lng); err != nil {
		return "", fmt.Errorf("google maps url: %w", err)
	}
	q := url.Values{
		"api":         {"1"},
		"destination": {formatCoord(lat) + "," + formatCoord(lng)},
		"travelmode":  {travelMode},
	}
	// Encode sorts the keys: api, destination, travelmode.
	return "https://www.google.com/maps/dir/?" + q.Encode(), nil
}
