package campaigns

import (
	"slices"
	"strings"
)

// Packed returns a deep copy of c whose strings share one allocation, its
// statuses, match types and modes the package's constants. A campaign
// decoded from JSON holds a string object for each of its fields and
// keywords, some twenty; a server holding ten thousand campaigns for
// months has every garbage collection trace them all. c is not changed.
func (c *Campaign) Packed() *Campaign {
	p := *c
	p.Status = constant(c.Status, Active, Paused)
	p.Keywords = slices.Clone(c.Keywords)
	p.NegativeKeywords = slices.Clone(c.NegativeKeywords)
	p.Publishers = slices.Clone(c.Publishers)
	p.Modes = slices.Clone(c.Modes)
	for i, m := range p.Modes {
		p.Modes[i] = constant(m, Walk, Car)
	}
	p.Hours = slices.Clone(c.Hours)
	if c.FrequencyCap != nil {
		fc := *c.FrequencyCap
		p.FrequencyCap = &fc
	}

	// Every string of the copy, each named once: written end to end into
	// one string, then pointed into it.
	n := 9 + len(p.Keywords) + len(p.NegativeKeywords) + len(p.Publishers) + 2*len(p.Hours)
	for _, h := range p.Hours {
		n += len(h.Days)
	}
	strs := append(make([]*string, 0, n), &p.ID, &p.AdvertiserID, &p.Name, &p.ProductID,
		&p.Creative.Title, &p.Creative.Text, &p.Creative.ImageURL, &p.Creative.LandingURL)
	if p.FrequencyCap != nil {
		strs = append(strs, (*string)(&p.FrequencyCap.Per))
	}
	for i := range p.Keywords {
		p.Keywords[i].Match = constant(p.Keywords[i].Match, Exact, Phrase, Broad)
		strs = append(strs, &p.Keywords[i].Text)
	}
	for i := range p.NegativeKeywords {
		strs = append(strs, &p.NegativeKeywords[i])
	}
	for i := range p.Publishers {
		strs = append(strs, &p.Publishers[i])
	}
	for i := range p.Hours {
		h := &p.Hours[i]
		h.Days = slices.Clone(h.Days)
		strs = append(strs, &h.From, &h.To)
		for j := range h.Days {
			strs = append(strs, &h.Days[j])
		}
	}
	size := 0
	for _, s := range strs {
		size += len(*s)
	}
	var b strings.Builder
	b.Grow(size)
	for _, s := range strs {
		b.WriteString(*s)
	}
	all, at := b.String(), 0
	for _, s := range strs {
		n := len(*s)
		*s, at = all[at:at+n], at+n
	}
	return &p
}

// constant returns v as the constant of its value among consts, which a
// program holds once, or a copy of v when it is none of them.
func constant[T ~string](v T, consts ...T) T {
	for _, c := range consts {
		if v == c {
			return c
		}
	}
	return T(strings.Clone(string(v)))
}
