package campaigns

import (
	"unicode/utf8"
)

// Query is a search as analysed for matching: the normalized text, with each
// character's script and the places where the user typed a space.
//
// The zero value is ready to use. Parse resets a Query and reuses its
// buffers, so a Query kept in a sync.Pool makes Parse, KeywordIndex.Match and
// Negatives.Block allocate nothing for typical searches. A Query is not safe
// for concurrent use: matching writes scratch space inside it.
type Query struct {
	norm   normalizer
	raw    string
	text   string
	textOK bool

	// cmp is the normalized text without its spaces: keywords are looked up
	// in it, so that 缶 コーヒー finds 缶コーヒー. The spaces live on as
	// spaceBefore flags in info.
	cmp   []byte
	start []int32 // start[i] is the offset in cmp of rune i; start[runes] = len(cmp)
	rix   []int32 // rix[b] is the rune that starts at offset b of cmp
	info  []uint8 // per rune: class | flags
	// hasKanji reports a kanji in the query: then a keyword may not be
	// matched by its reading alone (はいしゃ may be 歯医者, but 歯科 はいしゃ is
	// not looked at that way).
	hasKanji bool
	bloom    uint64 // one bit per rune hash, to skip negatives quickly

	// Latin words read as romaji: their phonetic keys one after another in
	// key (UTF-8), key rune k at key[keyStart[k]:keyStart[k+1]], its
	// syllable starting at rune keyAt[k] of cmp.
	latin    []latinToken
	key      []byte
	keyStart []int32
	keyAt    []int32
	keyKana  []byte  // key rune k as kanaByte, for romajiWords
	kana     []rune  // scratch
	kanaAt   []int32 // scratch
	keyRunes []rune  // scratch

	// Matching scratch.
	hits   []hit
	blocks []wordSpan
	valid  []hit
	reach  []bool
	// Known words in romaji words: see knownWordEdges.
	edges, edgeAt, cover []int32
	// romajiBlocks are the blocking keys of a romaji word (scanRomajiWords).
	romajiBlocks []romajiBlock
}

// Rune classes in Query.info. Words change at a change of class; within
// kanji and kana the dictionary decides where words end.
const (
	clsOther uint8 = iota
	clsAlnum       // Latin (and other alphabetic) letters and digits
	clsHan         // kanji, 々, 〆, 〇
	clsKata        // katakana typed as katakana
	clsHira        // kana typed as hiragana (katakana in cmp)

	clsMask     = 0x0F
	spaceBefore = 0x10 // the user typed a space before this rune
	longMark    = 0x20 // ー, which continues the kana before it
)

// Parse analyses raw, replacing what q held. It never panics; any bytes are
// accepted.
func (q *Query) Parse(raw string) {
	out := q.norm.normalize(raw, false)
	q.raw = raw
	q.textOK = string(out) == raw
	if q.textOK {
		q.text = raw
	}
	q.cmp = q.cmp[:0]
	q.start = q.start[:0]
	q.info = q.info[:0]
	q.hasKanji = false
	q.bloom = 0
	space := false
	prev := clsOther
	hira := q.norm.hira
	i := 0 // the offset of rune k in out
	for k, r := range q.norm.outR {
		size := utf8.RuneLen(r)
		if size < 0 { // not a valid rune: out holds U+FFFD for it
			r, size = utf8.RuneError, 3
		}
		b := out[i : i+size]
		i += size
		if r == ' ' {
			space = true
			continue
		}
		var c uint8
		switch {
		case r == 0x30FC: // ー continues the word before it
			c = clsKata | longMark
			if prev == clsHira {
				c = clsHira | longMark
			}
		case 0x30A1 <= r && r <= 0x30FE:
			c = clsKata
			if k < len(hira) && hira[k] {
				c = clsHira
			}
		case isHan(r):
			c = clsHan
			q.hasKanji = true
		case isAlnum(r) || r == '-' || r == '\'' || r == '.' || r == '&':
			c = clsAlnum
		}
		prev = c & clsMask
		if space {
			c |= spaceBefore
			space = false
		}
		q.start = append(q.start, int32(len(q.cmp)))
		q.cmp = append(q.cmp, b...)
		q.info = append(q.info, c)
		q.bloom |= runeBit(r)
	}
	q.start = append(q.start, int32(len(q.cmp)))
	if cap(q.rix) < len(q.cmp)+1 {
		q.rix = make([]int32, len(q.cmp)+1)
	}
	q.rix = q.rix[:len(q.cmp)+1]
	for i, b := range q.start {
		q.rix[b] = int32(i)
	}
	q.parseRomaji()
}

// Text returns the normalized query, as Normalize would. It allocates only
// when the query was not typed normalized, and then once per Parse.
func (q *Query) Text() string {
	if !q.textOK {
		q.text = string(q.norm.out)
		q.textOK = true
	}
	return q.text
}

// runes returns the number of runes in the compact text.
func (q *Query) runes() int { return len(q.info) }

// class returns the class of rune i.
func (q *Query) class(i int) uint8 { return q.info[i] & clsMask }

// runeBit hashes r to one of 64 bits, for a Bloom-style filter of the runes
// in a text.
func runeBit(r rune) uint64 {
	return 1 << ((uint32(r) * 0x9E3779B1) >> 26)
}

// textBloom returns the union of runeBit over s.
func textBloom(s string) uint64 {
	var b uint64
	for _, r := range s {
		b |= runeBit(r)
	}
	return b
}
