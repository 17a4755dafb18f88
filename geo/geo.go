// Package geo is navad's geometry, a leaf on H3 (github.com/uber/h3-go/v4)
// and orb with no project imports.
//
// Cells: [Cell] gives the H3 cell of a fix; events keep the
// [EventResolution] cell instead of the fix, and stores are indexed by their
// [IndexResolution] cell. [Parent] and [DescendantRange] work on the bits of
// an index without cgo, so that a sorted []uint64 of store cells answers
// "which stores are in this cell" with two binary searches. [CellPolygon]
// draws a cell for GeoJSON.
//
// Covers: [Cover] lists the cells to look up for every store within a
// radius, never missing one; [CoverResolution] picks the resolution that
// keeps that list at 19 cells or fewer. [NewPointCovers] makes the cover
// for any point filed under a cell, and [PointCovers] picks from it the
// smaller cover of one such point: the cells a store marks as "near".
//
// Distance and travel: [DistanceM] is the great-circle distance; [Walk] and
// [Drive] turn it into a route length and ETA.
//
// Links: [GeoURI], [GoogleMapsWalkURL] and [GoogleMapsDriveURL] point a
// navigation app at a store, never at the user.
//
// Coordinates are WGS 84 decimal degrees, latitude first. Every function is
// safe for concurrent use; none keeps state. Functions that return an error
// reject NaN, infinite and out-of-range arguments with an error wrapping
// [ErrInvalid]; nothing here panics on any input. The hot-path helpers that
// return no error ([DistanceM], [Parent], [DescendantRange], [Walk],
// [Drive], [CoverResolution]) document what they do with bad input instead
// of checking it again: the HTTP edge validates a fix once.
package geo

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error caused by an argument: a coordinate
// that is NaN, infinite or out of range, a resolution outside 0-15, a
// negative or non-finite radius, or an invalid cell.
var ErrInvalid = errors.New("invalid argument")

// ErrCoverTooLarge is returned by [Cover] when the circle would need more
// than [MaxCoverCells] cells at the requested resolution; ask again at a
// coarser one, such as [CoverResolution] of the radius.
var ErrCoverTooLarge = errors.New("cover too large for resolution")

// checkLatLng reports whether lat, lng is a WGS 84 coordinate. The negated
// comparisons also reject NaN.
func checkLatLng(lat, lng float64) error {
	if !(lat >= -90 && lat <= 90) {
		return fmt.Errorf("%w: lat %v not in [-90, 90]", ErrInvalid, lat)
	}
	if !(lng >= -180 && lng <= 180) {
		return fmt.Errorf("%w: lng %v not in [-180, 180]", ErrInvalid, lng)
	}
	return nil
}

// checkRes reports whether res is an H3 resolution.
func checkRes(res int) error {
	if res < 0 || res > maxRes {
		return fmt.Errorf("%w: resolution %d not in [0, %d]", ErrInvalid, res, maxRes)
	}
	return nil
}
