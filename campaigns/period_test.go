package campaigns

import (
	"testing"
	"time"
)

// TestPeriodDuration: periods in days are parsed without overflow. A day
// count whose nanoseconds pass int64 wrapped around: "213504d" came out as
// 25 minutes and passed the frequency cap's 1m–366d check.
func TestPeriodDuration(t *testing.T) {
	for _, tt := range []struct {
		give Period
		want time.Duration
		ok   bool
	}{
		{"24h", 24 * time.Hour, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"0d", 0, true},
		{"106751d", 106751 * 24 * time.Hour, true},
		{"106752d", 0, false},
		{"213504d", 0, false},
		{"-1d", 0, false},
		{"d", 0, false},
	} {
		got, err := tt.give.Duration()
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Period(%q).Duration() = %v, %v; want %v, ok %v", tt.give, got, err, tt.want, tt.ok)
		}
	}
	c := Campaign{ID: "cmp", AdvertiserID: "adv", Name: "c", ProductID: "p", RadiusM: 500,
		Keywords: []Keyword{{Text: "居酒屋", Match: Broad}}, Creative: Creative{Title: "t", LandingURL: "https://example.com/"},
		FrequencyCap: &FrequencyCap{Impressions: 1, Per: "213504d"}}
	c.ApplyDefaults()
	if err := c.Validate(); err == nil {
		t.Fatal(`a frequency cap "per": "213504d" passed validation`)
	}
}
