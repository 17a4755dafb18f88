package serving

import (
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
)

// TestCampaignPeriodAtItsInstants: start and end are instants (API.md), and
// both belong to the campaign's period: it serves from its start to its end
// inclusive, and not a moment outside. They were compared in whole seconds
// (the request's time truncated), so a campaign ending at 00:00:00 served on
// through that second, into a day it had no part in, and one starting at
// 12:00:00.5 served half a second early.
func TestCampaignPeriodAtItsInstants(t *testing.T) {
	midnight := time.Date(2026, 12, 1, 0, 0, 0, 0, tokyo)
	half := time.Date(2026, 11, 30, 12, 0, 0, 500_000_000, tokyo)
	tests := []struct {
		name       string
		start, end time.Time
		at         time.Time
		want       bool
	}{
		{"at the end", time.Time{}, midnight, midnight, true},
		{"a nanosecond past the end", time.Time{}, midnight, midnight.Add(time.Nanosecond), false},
		{"half a second past the end", time.Time{}, midnight, midnight.Add(500 * time.Millisecond), false},
		{"a second before a fractional end", time.Time{}, half, half.Add(-time.Second), true},
		{"past a fractional end, in its second", time.Time{}, half, half.Add(100 * time.Millisecond), false},
		{"at the start", midnight, time.Time{}, midnight, true},
		{"a nanosecond before the start", midnight, time.Time{}, midnight.Add(-time.Nanosecond), false},
		{"before a fractional start, in its second", half, time.Time{}, half.Add(-300 * time.Millisecond), false},
		{"at a fractional start", half, time.Time{}, half, true},
		{"a start long ago", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, midnight, true},
		{"an end far ahead", time.Time{}, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), midnight, true},
		{"an end long ago", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), midnight, false},
		{"a start far ahead", time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, midnight, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := NewIndex()
			if err := ix.PutStores("adv", []campaigns.Store{{ID: "s", Name: "s", Lat: 35.69, Lng: 139.70, Products: []string{"beer"}}}); err != nil {
				t.Fatal(err)
			}
			c := campaign("c", "adv", "beer", 800, "居酒屋")
			c.Start, c.End = tt.start, tt.end
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			ix.PutCampaign(c)
			got := len(decide(t, newEngine(t, ix, nil), Request{Lat: 35.6905, Lng: 139.7003, Query: "居酒屋", Now: tt.at})) == 1
			if got != tt.want {
				t.Fatalf("served at %s = %v, want %v", tt.at.Format(time.RFC3339Nano), got, tt.want)
			}
		})
	}
}
