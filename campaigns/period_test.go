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

// TestScheduleYears: a start or end that an offset carries out of the years
// 0001–9999 in UTC is refused; the same instants' neighbours inside the range
// pass.
func TestScheduleYears(t *testing.T) {
	for _, tt := range []struct {
		start, end string
		ok         bool
	}{
		{"0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", true},
		{"0001-01-01T01:00:00+01:00", "9999-12-31T18:59:59-05:00", true},
		{"0000-01-01T00:00:00+01:00", "", false},
		{"", "9999-12-31T23:30:00-05:00", false},
	} {
		c := Campaign{ID: "cmp", AdvertiserID: "adv", Name: "c", ProductID: "p", RadiusM: 500,
			Keywords: []Keyword{{Text: "居酒屋", Match: Broad}}, Creative: Creative{Title: "t", LandingURL: "https://example.com/"}}
		for _, f := range []struct {
			dst  *time.Time
			text string
		}{{&c.Start, tt.start}, {&c.End, tt.end}} {
			if f.text == "" {
				continue
			}
			if err := f.dst.UnmarshalText([]byte(f.text)); err != nil {
				t.Fatal(err)
			}
		}
		c.ApplyDefaults()
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("start %q end %q: Validate() = %v, want ok %v", tt.start, tt.end, err, tt.ok)
		}
	}
}
