// Package campaigns holds navad's advertiser-facing domain: accounts,
// campaigns and their keywords and creatives, stores and their stock, the
// validation that names every bad field, and the keyword normalization and
// matching that decide whether a search triggers a campaign.
//
// It has no knowledge of HTTP or storage; every other package builds on it.
package campaigns

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Status says whether a campaign may be served.
type Status string

// Campaign statuses.
const (
	Active Status = "active"
	Paused Status = "paused"
)

// Mode is how the user travels to the store.
type Mode string

// Travel modes.
const (
	Walk Mode = "walk"
	Car  Mode = "car"
)

// Limits on campaign fields. They are part of the API contract and documented
// in docs/limits.md.
const (
	MinRadiusM       = 50
	MaxRadiusM       = 5000
	DefaultRadiusM   = 800
	MaxKeywords      = 1000
	MaxNegatives     = 1000
	MaxKeywordLen    = 100 // characters, as for the q parameter
	MaxNameLen       = 200
	MaxTextLen       = 1000
	MaxURLLen        = 2048
	MaxIDLen         = 128
	MaxPublishers    = 1000
	MaxPriority      = 1000
	MaxHourRanges    = 100
	MaxProductsStore = 1000
)

// Creative is what the ad says and where a click leads.
type Creative struct {
	Title      string `json:"title"`
	Text       string `json:"text"`
	ImageURL   string `json:"image_url"`
	LandingURL string `json:"landing_url"`
}

// Budget caps how many ads a campaign serves. Zero means no cap.
type Budget struct {
	DailyImpressions int64 `json:"daily_impressions"`
	TotalImpressions int64 `json:"total_impressions"`
}

// FrequencyCap limits how many ads of a campaign one user (uid) is served per
// period.
type FrequencyCap struct {
	Impressions int    `json:"impressions"`
	Per         Period `json:"per"`
}

// Period is a duration written as Go does ("24h", "90m") or in days ("7d").
type Period string

// Duration parses p.
func (p Period) Duration() (time.Duration, error) {
	s := string(p)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		// Past maxDays the product wraps: "213504d" came out as 25 minutes.
		const maxDays = math.MaxInt64 / int64(24*time.Hour)
		if err != nil || days < 0 || int64(days) > maxDays {
			return 0, fmt.Errorf("bad period %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Campaign is an advertiser's order: which searches trigger it, which product
// it promotes, the creative, where and when it runs, and how much.
type Campaign struct {
	ID               string        `json:"id"`
	AdvertiserID     string        `json:"advertiser_id"`
	Name             string        `json:"name"`
	Status           Status        `json:"status"`
	Start            time.Time     `json:"start,omitzero"`
	End              time.Time     `json:"end,omitzero"`
	Keywords         []Keyword     `json:"keywords"`
	NegativeKeywords []string      `json:"negative_keywords"`
	ProductID        string        `json:"product_id"`
	Creative         Creative      `json:"creative"`
	RadiusM          int           `json:"radius_m"`
	Modes            []Mode        `json:"modes"`
	Publishers       []string      `json:"publishers"`
	Hours            Hours         `json:"hours"`
	Priority         int           `json:"priority"`
	BidCPM           float64       `json:"bid_cpm"`
	Budget           Budget        `json:"budget"`
	FrequencyCap     *FrequencyCap `json:"frequency_cap,omitempty"`
	CreatedAt        time.Time     `json:"created_at,omitzero"`
	UpdatedAt        time.Time     `json:"updated_at,omitzero"`
}

// MarshalJSON writes every member of the campaign, null for start, end and
// frequency_cap when it has none, so that a client decoding strictly
// (non-optional members) finds each one that API.md shows.
func (c Campaign) MarshalJSON() ([]byte, error) {
	type plain Campaign // without this method
	out := struct {
		plain
		Start        *time.Time    `json:"start"`
		End          *time.Time    `json:"end"`
		FrequencyCap *FrequencyCap `json:"frequency_cap"`
	}{plain: plain(c), FrequencyCap: c.FrequencyCap}
	if !c.Start.IsZero() {
		out.Start = &c.Start
	}
	if !c.End.IsZero() {
		out.End = &c.End
	}
	return json.Marshal(out)
}

// ApplyDefaults fills the fields a client may leave out.
func (c *Campaign) ApplyDefaults() {
	if c.Status == "" {
		c.Status = Active
	}
	if c.RadiusM == 0 {
		c.RadiusM = DefaultRadiusM
	}
	if len(c.Modes) == 0 {
		c.Modes = []Mode{Walk, Car}
	}
	if c.Keywords == nil {
		c.Keywords = []Keyword{}
	}
	if c.NegativeKeywords == nil {
		c.NegativeKeywords = []string{}
	}
	if c.Publishers == nil {
		c.Publishers = []string{}
	}
	if c.Hours == nil {
		c.Hours = Hours{}
	}
}

// Validate checks every field and returns an Invalid *Error naming each bad
// one, or nil.
func (c *Campaign) Validate() error {
	var p Problems
	checkID(&p, "id", c.ID, false)
	checkID(&p, "advertiser_id", c.AdvertiserID, true)
	checkText(&p, "name", c.Name, MaxNameLen, true)
	if c.Status != Active && c.Status != Paused {
		p.Add("status", "must be active or paused, got %q", c.Status)
	}
	checkTime(&p, "start", c.Start)
	checkTime(&p, "end", c.End)
	if !c.Start.IsZero() && !c.End.IsZero() && !c.End.After(c.Start) {
		p.Add("end", "must be after start")
	}
	switch {
	case len(c.Keywords) == 0:
		p.Add("keywords", "must name at least one keyword")
	case len(c.Keywords) > MaxKeywords:
		p.Add("keywords", "must have at most %d keywords, got %d", MaxKeywords, len(c.Keywords))
	default:
		for i, k := range c.Keywords {
			var kp Problems
			k.check(&kp)
			p.Merge(fmt.Sprintf("keywords[%d]", i), &kp)
		}
	}
	if len(c.NegativeKeywords) > MaxNegatives {
		p.Add("negative_keywords", "must have at most %d keywords, got %d", MaxNegatives, len(c.NegativeKeywords))
	} else {
		for i, n := range c.NegativeKeywords {
			checkKeywordText(&p, fmt.Sprintf("negative_keywords[%d]", i), n)
		}
	}
	checkID(&p, "product_id", c.ProductID, true)
	checkText(&p, "creative.title", c.Creative.Title, MaxNameLen, true)
	checkText(&p, "creative.text", c.Creative.Text, MaxTextLen, false)
	checkURL(&p, "creative.image_url", c.Creative.ImageURL, false)
	checkURL(&p, "creative.landing_url", c.Creative.LandingURL, true)
	if c.RadiusM < MinRadiusM || c.RadiusM > MaxRadiusM {
		p.Add("radius_m", "must be between %d and %d metres, got %d", MinRadiusM, MaxRadiusM, c.RadiusM)
	}
	for i, m := range c.Modes {
		if m != Walk && m != Car {
			p.Add(fmt.Sprintf("modes[%d]", i), "must be walk or car, got %q", m)
		}
	}
	if len(c.Publishers) > MaxPublishers {
		p.Add("publishers", "must have at most %d publishers", MaxPublishers)
	}
	for i, id := range c.Publishers {
		checkID(&p, fmt.Sprintf("publishers[%d]", i), id, true)
	}
	if len(c.Hours) > MaxHourRanges {
		p.Add("hours", "must have at most %d ranges", MaxHourRanges)
	} else if _, hp := c.Hours.Compile(); hp.Len() > 0 {
		p.Merge("hours", hp)
	}
	if c.Priority < 0 || c.Priority > MaxPriority {
		p.Add("priority", "must be between 0 and %d, got %d", MaxPriority, c.Priority)
	}
	if math.IsNaN(c.BidCPM) || c.BidCPM < 0 || c.BidCPM > 1e9 {
		p.Add("bid_cpm", "must be a number between 0 and 1e9")
	}
	if c.Budget.DailyImpressions < 0 {
		p.Add("budget.daily_impressions", "must not be negative")
	}
	if c.Budget.TotalImpressions < 0 {
		p.Add("budget.total_impressions", "must not be negative")
	}
	if fc := c.FrequencyCap; fc != nil {
		if fc.Impressions < 1 {
			p.Add("frequency_cap.impressions", "must be at least 1, got %d", fc.Impressions)
		}
		if d, err := fc.Per.Duration(); err != nil || d < time.Minute || d > 366*24*time.Hour {
			p.Add("frequency_cap.per", "must be a period between 1m and 366d such as \"24h\" or \"7d\", got %q", fc.Per)
		}
	}
	return p.Err()
}

// Serves reports whether the campaign may serve in mode m.
func (c *Campaign) Serves(m Mode) bool {
	return slices.Contains(c.Modes, m)
}

// checkID checks an identifier chosen by a client or by navad: 1-128
// characters from a safe set, so that it can appear in a URL path, a CSV
// cell or a Redis key without escaping tricks.
func checkID(p *Problems, field, id string, required bool) {
	if id == "" {
		if required {
			p.Add(field, "is required")
		}
		return
	}
	if err := ValidateID(id); err != nil {
		p.Add(field, "%s", err.Error())
	}
}

// ValidateID reports whether id is a well-formed identifier: 1 to 128 of
// A-Z a-z 0-9 and - _ . : , not starting with a dot.
func ValidateID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("must be 1 to %d characters", MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == ':':
		case c == '.' && i > 0:
		default:
			return fmt.Errorf("may hold only letters, digits and - _ . : (not starting with a dot), got %q", id)
		}
	}
	return nil
}

func checkText(p *Problems, field, s string, maxLen int, required bool) {
	switch {
	case !utf8.ValidString(s):
		p.Add(field, "must be valid UTF-8")
	case strings.TrimSpace(s) == "" && required:
		p.Add(field, "is required")
	case utf8.RuneCountInString(s) > maxLen:
		p.Add(field, "must be at most %d characters", maxLen)
	case strings.ContainsFunc(s, isControl):
		p.Add(field, "must not contain control characters")
	}
}

func isControl(r rune) bool {
	return r < 0x20 && r != '\t' || r == 0x7f
}

func checkURL(p *Problems, field, s string, required bool) {
	if s == "" {
		if required {
			p.Add(field, "is required")
		}
		return
	}
	if len(s) > MaxURLLen {
		p.Add(field, "must be at most %d bytes", MaxURLLen)
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Add(field, "must be an absolute http or https URL")
	}
}

// CheckLatLng reports problems with a coordinate pair under the given field
// names.
func CheckLatLng(p *Problems, latField, lngField string, lat, lng float64) {
	if math.IsNaN(lat) || lat < -90 || lat > 90 {
		p.Add(latField, "must be between -90 and 90")
	}
	if math.IsNaN(lng) || lng < -180 || lng > 180 {
		p.Add(lngField, "must be between -180 and 180")
	}
}

// checkTime refuses a schedule time outside the years 0001–9999 in UTC. RFC
// 3339 lets an offset carry "0000-01-01T00:00:00+01:00" into the year 0 and
// "9999-12-31T23:30:00-05:00" into 10000, where a time no longer has an RFC
// 3339 form: any code that writes it in UTC (a report, a log, another
// store) would fail on a campaign that was accepted.
func checkTime(p *Problems, field string, t time.Time) {
	if t.IsZero() {
		return
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		p.Add(field, "must be in the years 0001 to 9999 in UTC")
	}
}
