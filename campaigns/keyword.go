package campaigns

import (
	"strings"
	"unicode/utf8"
)

// MatchType says how a search must relate to a keyword to trigger it.
// docs/matching.md defines each with examples.
type MatchType string

// Match types, in the spirit of the big search ad platforms.
const (
	Exact  MatchType = "exact"
	Phrase MatchType = "phrase"
	Broad  MatchType = "broad"
)

// Keyword is a word or phrase a campaign bids on, and how it must match.
type Keyword struct {
	Text  string    `json:"text"`
	Match MatchType `json:"match"`
}

func (k Keyword) check(p *Problems) {
	checkKeywordText(p, "text", k.Text)
	switch k.Match {
	case Exact, Phrase, Broad:
	default:
		p.Add("match", "must be exact, phrase or broad, got %q", k.Match)
	}
}

// checkKeywordText checks a keyword or negative keyword as written by the
// advertiser: 1-100 characters, something left after normalization.
func checkKeywordText(p *Problems, field, s string) {
	switch {
	case !utf8.ValidString(s):
		p.Add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(s) > MaxKeywordLen:
		p.Add(field, "must be at most %d characters", MaxKeywordLen)
	case strings.TrimSpace(Normalize(s)) == "":
		p.Add(field, "must contain a word")
	}
}
