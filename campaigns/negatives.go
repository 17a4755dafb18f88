package campaigns

import (
	"bytes"
)

// Negatives is a campaign's compiled negative keywords. The zero value blocks
// nothing. It is immutable and safe for concurrent use.
//
// A negative keyword blocks a query that contains all of its words, in any
// order, each standing as a word of the query (so the negative 酒屋 does not
// block 居酒屋). Unlike keywords, negatives match without close variants:
// no readings, no romaji and no long-vowel variants; only the folding of
// Normalize (width, case, hiragana and katakana) applies.
type Negatives struct {
	sets  []negativeSet
	words []negativeWord
	kata  *kataLexicon
}

type negativeSet struct {
	lo, hi int
	bloom  uint64
}

type negativeWord struct {
	text     []byte
	bloom    uint64
	split    uint64
	short    shortness
	blockers []negativeBlocker
}

type negativeBlocker struct {
	text  []byte
	split uint64
}

// CompileNegatives compiles a campaign's negative keywords. Words with nothing
// left after normalization are ignored.
func CompileNegatives(words []string) Negatives {
	var n Negatives
	seen := map[string]bool{}
	for _, w := range words {
		terms := keywordTerms(w)
		key := joinTerms(terms)
		if len(terms) == 0 || seen[key] {
			continue
		}
		seen[key] = true
		set := negativeSet{lo: len(n.words)}
		for i, a := range analyzeNegatives(terms) {
			f := a.forms[0]
			nw := negativeWord{text: []byte(terms[i].text), bloom: textBloom(terms[i].text), split: f.split, short: f.short}
			for _, b := range a.blockers {
				nw.blockers = append(nw.blockers, negativeBlocker{[]byte(b.text), b.split})
			}
			n.words = append(n.words, nw)
			set.bloom |= nw.bloom
		}
		set.hi = len(n.words)
		n.sets = append(n.sets, set)
	}
	if len(n.sets) > 0 {
		n.kata = kataWords()
	}
	return n
}

// Block reports whether any negative keyword blocks q. It costs a few
// nanoseconds per negative whose characters are not all in the query, and
// does not allocate.
func (n Negatives) Block(q *Query) bool {
	for _, s := range n.sets {
		if s.bloom&^q.bloom != 0 {
			continue
		}
		all := true
		for i := s.lo; i < s.hi && all; i++ {
			all = n.occurs(q, &n.words[i])
		}
		if all {
			return true
		}
	}
	return false
}

// occurs reports whether w stands as a word somewhere in q.
func (n Negatives) occurs(q *Query, w *negativeWord) bool {
	if w.bloom&^q.bloom != 0 {
		return false
	}
	for from := 0; ; {
		p := bytes.Index(q.cmp[from:], w.text)
		if p < 0 {
			return false
		}
		p += from
		from = p + 1
		s, e := q.rix[p], q.rix[p+len(w.text)]
		if q.spaceWithin(s, e, w.split) || !q.boundary(int(s), w.short, n.kata, true) || !q.boundary(int(e), w.short, n.kata, false) {
			continue
		}
		if !blockedBy(q, s, e, w.blockers) {
			return true
		}
	}
}

// blockedBy reports whether one of the dictionary words ws occurs in q over
// runes [s, e) without being split at both ends of it.
func blockedBy(q *Query, s, e int32, ws []negativeBlocker) bool {
	for _, w := range ws {
		for from := 0; ; {
			p := bytes.Index(q.cmp[from:], w.text)
			if p < 0 {
				break
			}
			p += from
			from = p + 1
			bs, be := q.rix[p], q.rix[p+len(w.text)]
			if bs > s || be < e || bs == s && be == e || q.spaceWithin(bs, be, 0) || w.split&anchored != 0 && !q.clearBoundary(int(bs)) {
				continue
			}
			if !splitAt(w.split, s-bs) || !splitAt(w.split, e-bs) {
				return true
			}
		}
	}
	return false
}
