package geo

import (
	"errors"
	"math"
	"net/url"
	"strings"
	"testing"
)

func TestGeoURI(t *testing.T) {
	tests := []struct {
		name     string
		lat, lng float64
		want     string
		wantErr  error
	}{
		{name: "Shinjuku", lat: 35.6909, lng: 139.7003, want: "geo:35.6909,139.7003"},
		{name: "float noise", lat: 35.690900000000003, lng: 139.70029999999997, want: "geo:35.6909,139.7003"},
		{name: "rounds to 6 decimals", lat: 35.69092149, lng: 139.70025851, want: "geo:35.690921,139.700259"},
		{name: "integers", lat: 35, lng: 139, want: "geo:35,139"},
		{name: "southern and western", lat: -33.8568, lng: -151.2153, want: "geo:-33.8568,-151.2153"},
		{name: "no negative zero", lat: -0.0000001, lng: -0.0000004, want: "geo:0,0"},
		{name: "north pole", lat: 90, lng: 139.7, want: "geo:90,0"},
		{name: "south pole", lat: -90, lng: -20, want: "geo:-90,0"},
		{name: "rounds to the north pole", lat: 89.9999996, lng: 139.7, want: "geo:90,0"},
		{name: "rounds to the south pole", lat: -89.99999951, lng: -20, want: "geo:-90,0"},
		{name: "just short of the pole", lat: 89.9999994, lng: 139.7, want: "geo:89.999999,139.7"},
		{name: "antimeridian", lat: 0, lng: -180, want: "geo:0,-180"},
		{name: "lat NaN", lat: math.NaN(), lng: 139.7, wantErr: ErrInvalid},
		{name: "lng Inf", lat: 35.7, lng: math.Inf(1), wantErr: ErrInvalid},
		{name: "lat 91", lat: 91, lng: 139.7, wantErr: ErrInvalid},
		{name: "lng -181", lat: 35.7, lng: -181, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := GeoURI(tt.lat, tt.lng)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("GeoURI() error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("GeoURI() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGoogleMapsURL(t *testing.T) {
	tests := []struct {
		name     string
		build    func(lat, lng float64) (string, error)
		lat, lng float64
		want     string
		wantErr  error
	}{
		{
			name: "walk", build: GoogleMapsWalkURL, lat: 35.6909, lng: 139.7003,
			want: "https://www.google.com/maps/dir/?api=1&destination=35.6909%2C139.7003&travelmode=walking",
		},
		{
			name: "drive", build: GoogleMapsDriveURL, lat: 35.6909, lng: 139.7003,
			want: "https://www.google.com/maps/dir/?api=1&destination=35.6909%2C139.7003&travelmode=driving",
		},
		{
			name: "negative", build: GoogleMapsWalkURL, lat: -33.8568, lng: -151.2153,
			want: "https://www.google.com/maps/dir/?api=1&destination=-33.8568%2C-151.2153&travelmode=walking",
		},
		{name: "walk NaN", build: GoogleMapsWalkURL, lat: math.NaN(), lng: 0, wantErr: ErrInvalid},
		{name: "drive out of range", build: GoogleMapsDriveURL, lat: 0, lng: 200, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.build(tt.lat, tt.lng)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if err != nil {
				return
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if d := q.Get("destination"); d != strings.TrimPrefix(mustGeoURI(t, tt.lat, tt.lng), "geo:") {
				t.Errorf("destination = %q", d)
			}
			// The user's position never goes into a link.
			for _, key := range []string{"origin", "origin_place_id", "waypoints"} {
				if q.Has(key) {
					t.Errorf("link has %s", key)
				}
			}
		})
	}
}

func mustGeoURI(t *testing.T, lat, lng float64) string {
	t.Helper()
	s, err := GeoURI(lat, lng)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
