package campaigns

import "strings"

// Packed returns a deep copy of c whose strings share one allocation, its
// statuses, match types and modes the package's constants. A campaign
// decoded from JSON holds a string object for each of its fields and
// keywords, some twenty; a server holding ten thousand campaigns for
// months has every garbage collection trace them all. c is not changed.
func (c *Campaign) Packed() *Campaign {
	size := len(c.ID) + len(c.AdvertiserID) + len(c.Name) + len(c.ProductID) +
		len(c.Creative.Title) + len(c.Creative.Text) + len(c.Creative.ImageURL) + len(c.Creative.LandingURL)
	n := 8 + len(c.Keywords) + len(c.NegativeKeywords) + len(c.Publishers) + 2*len(c.Hours) + 1
	for _, k := range c.Keywords {
		size += len(k.Text)
	}
	for _, s := range c.NegativeKeywords {
		size += len(s)
	}
	for _, s := range c.Publishers {
		size += len(s)
	}
	for _, h := range c.Hours {
		size += len(h.From) + len(h.To)
		for _, d := range h.Days {
			size += len(d)
		}
		n += len(h.Days)
	}
	if c.FrequencyCap != nil {
		size += len(c.FrequencyCap.Per)
	}
	var b strings.Builder
	b.Grow(size)
	// The strings are cut from the builder's one string once it is whole:
	// each is recorded as where it ends.
	ends := make([]int, 0, n)
	put := func(s string) {
		b.WriteString(s)
		ends = append(ends, b.Len())
	}
	put(c.ID)
	put(c.AdvertiserID)
	put(c.Name)
	put(c.ProductID)
	put(c.Creative.Title)
	put(c.Creative.Text)
	put(c.Creative.ImageURL)
	put(c.Creative.LandingURL)
	for _, k := range c.Keywords {
		put(k.Text)
	}
	for _, s := range c.NegativeKeywords {
		put(s)
	}
	for _, s := range c.Publishers {
		put(s)
	}
	for _, h := range c.Hours {
		put(h.From)
		put(h.To)
		for _, d := range h.Days {
			put(d)
		}
	}
	if c.FrequencyCap != nil {
		put(string(c.FrequencyCap.Per))
	}
	all, from := b.String(), 0
	next := func() string {
		s := all[from:ends[0]]
		from, ends = ends[0], ends[1:]
		return s
	}

	p := *c
	p.Status = constant(c.Status, Active, Paused)
	p.ID, p.AdvertiserID, p.Name, p.ProductID = next(), next(), next(), next()
	p.Creative = Creative{Title: next(), Text: next(), ImageURL: next(), LandingURL: next()}
	if c.Keywords != nil {
		p.Keywords = make([]Keyword, len(c.Keywords))
		for i, k := range c.Keywords {
			p.Keywords[i] = Keyword{Text: next(), Match: constant(k.Match, Exact, Phrase, Broad)}
		}
	}
	p.NegativeKeywords = packStrings(c.NegativeKeywords, next)
	p.Publishers = packStrings(c.Publishers, next)
	if c.Modes != nil {
		p.Modes = make([]Mode, len(c.Modes))
		for i, m := range c.Modes {
			p.Modes[i] = constant(m, Walk, Car)
		}
	}
	if c.Hours != nil {
		p.Hours = make(Hours, len(c.Hours))
		for i, h := range c.Hours {
			p.Hours[i] = HourRange{From: next(), To: next(), Days: packStrings(h.Days, next)}
		}
	}
	if c.FrequencyCap != nil {
		fc := *c.FrequencyCap
		fc.Per = Period(next())
		p.FrequencyCap = &fc
	}
	return &p
}

// packStrings returns a copy of ss (nil for nil) whose strings next cuts.
func packStrings(ss []string, next func() string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i := range ss {
		out[i] = next()
	}
	return out
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
