package geo

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/uber/h3-go/v4"
)

// FuzzInputs feeds arbitrary numbers to every entry point: none may panic,
// and each either returns an error wrapping ErrInvalid (or
// ErrCoverTooLarge) or a result that keeps its promises.
func FuzzInputs(f *testing.F) {
	f.Add(35.690921, 139.700258, 800.0, 7, uint64(0x882f5a3751fffff))
	f.Add(math.NaN(), math.Inf(1), -1.0, -1, uint64(0))
	f.Add(90.0, -180.0, float64(MaxCoverRadiusM), 0, uint64(math.MaxUint64))
	f.Add(-90.0, 180.0, 0.0, 15, uint64(0x8f2f5a3751a1d6f))
	f.Add(1e308, -1e308, 1e308, 1<<30, uint64(1)<<59)
	f.Fuzz(func(t *testing.T, lat, lng, radiusM float64, res int, cell uint64) {
		valid := lat >= -90 && lat <= 90 && lng >= -180 && lng <= 180

		c, err := Cell(lat, lng, res)
		if (err == nil) != (valid && res >= 0 && res <= maxRes) {
			t.Fatalf("Cell(%v, %v, %d) = %v, %v", lat, lng, res, c, err)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Cell error %v does not wrap ErrInvalid", err)
		}
		if err == nil {
			if _, err := CellPolygon(c); err != nil {
				t.Fatalf("CellPolygon(%v): %v", c, err)
			}
		}

		cells, err := Cover(lat, lng, radiusM, res)
		switch {
		case err == nil && (len(cells) == 0 || len(cells) > MaxCoverCells):
			t.Fatalf("Cover returned %d cells", len(cells))
		case err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrCoverTooLarge):
			t.Fatalf("Cover error %v wraps neither sentinel", err)
		}

		uri, err := GeoURI(lat, lng)
		if (err == nil) != valid {
			t.Fatalf("GeoURI(%v, %v) = %q, %v", lat, lng, uri, err)
		}
		if err == nil {
			parts := strings.Split(strings.TrimPrefix(uri, "geo:"), ",")
			gotLat, err1 := strconv.ParseFloat(parts[0], 64)
			gotLng, err2 := strconv.ParseFloat(parts[1], 64)
			// RFC 5870: a pole's longitude is 0, also where lat rounds to one.
			atPole := math.Abs(gotLat) == 90
			if err1 != nil || err2 != nil || math.Abs(gotLat-lat) > 5.0001e-7 ||
				(atPole && gotLng != 0) || (!atPole && math.Abs(gotLng-lng) > 5.0001e-7) {
				t.Fatalf("GeoURI(%v, %v) = %q", lat, lng, uri)
			}
		}
		if _, err := GoogleMapsWalkURL(lat, lng); (err == nil) != valid {
			t.Fatalf("GoogleMapsWalkURL(%v, %v): %v", lat, lng, err)
		}
		if _, err := GoogleMapsDriveURL(lat, lng); (err == nil) != valid {
			t.Fatalf("GoogleMapsDriveURL(%v, %v): %v", lat, lng, err)
		}

		for _, e := range []Estimate{Walk(radiusM), Drive(radiusM)} {
			if e.DistanceM < 0 || e.ETASeconds < 0 || e.ETASeconds%60 != 0 {
				t.Fatalf("estimate for %v m = %+v", radiusM, e)
			}
		}
		_ = DistanceM(lat, lng, radiusM, float64(res))
		_ = CoverResolution(radiusM)

		p := Parent(cell, res)
		lo, hi := DescendantRange(cell, res)
		if !h3.Cell(cell).IsValid() || res < 0 || res > maxRes {
			return
		}
		if r := h3.Cell(cell).Resolution(); res <= r {
			want, err := h3.Cell(cell).Parent(res)
			if err != nil || p != uint64(want) {
				t.Fatalf("Parent(%#x, %d) = %#x, h3 says %v (%v)", cell, res, p, want, err)
			}
		} else {
			child, err := h3.Cell(cell).CenterChild(res)
			if err != nil || uint64(child) < lo || uint64(child) >= hi {
				t.Fatalf("DescendantRange(%#x, %d) = [%#x, %#x) misses centre child %v (%v)", cell, res, lo, hi, child, err)
			}
		}
	})
}
