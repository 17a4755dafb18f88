package campaigns

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"
)

// KeywordRef is a keyword of some campaign. Ref is the caller's handle for
// the campaign (the decision engine uses a campaign ordinal).
type KeywordRef struct {
	Keyword Keyword
	Ref     uint32
}

// KeywordIndex finds the keywords a query triggers, by the match types that
// docs/matching.md defines.
//
// It is built when campaigns are written: all keyword-side analysis
// (normalization, readings from the dictionary, romaji, word boundaries)
// happens in NewKeywordIndex and is cached by keyword text, never per
// request. An index is immutable and safe for concurrent use; build a new one
// off to the side and swap it in.
type KeywordIndex struct {
	main   *trie // spellings and readings of terms, and dictionary words that contain them
	romaji *trie // phonetic keys of kana spellings and readings, for romaji queries

	entries      []indexEntry // values of both tries
	forms        []formRef
	romajiBlocks []termBlock // what romaji keys block: see indexEntry

	terms      []indexTerm
	groups     []keywordGroup
	groupTerms []uint32 // groups[g]'s terms, in order
	anchored   []uint32 // multi-term groups, by anchor term
	refs       []uint32 // groups[g]'s Refs

	kata        *kataLexicon // katakana words of the dictionary, to split katakana compounds
	romajiWords *trie        // phonetic keys of the dictionary's words, to read romaji words whole
}

// indexEntry is what a trie key means: spellings of terms (forms[formLo:formHi])
// and, when split is not zero, a dictionary word that blocks the terms it
// contains at places where it is not split (or, with the anchored bit, a
// word and the rest of a term that it straddles: see straddlers). In the
// romaji trie, a key may also be the phonetic key of dictionary words
// that block the terms romajiBlocks[blockLo:blockHi] name, each at its
// own places (kafeore, カフェオレ, does not hold カフェ).
type indexEntry struct {
	formLo, formHi   uint32
	blockLo, blockHi uint32
	split            uint64
}

// termBlock says that a romaji key blocks term, unless split at both ends
// of it. It is kept per term, not merged over the index, so that what
// blocks a term depends on that term alone.
type termBlock struct {
	term  uint32
	split uint64
}

// formRef is a term's spelling in an index.
type formRef struct {
	term  uint32
	split uint64 // rune offsets inside the spelling where the user may type a space
	kind  formKind
	short shortness
}

// indexTerm is a distinct term (a word of some keywords) in an index.
type indexTerm struct {
	single         [3]int32 // the one-term keyword group per match type, or -1
	anchLo, anchHi uint32   // multi-term groups anchored on this term
}

// keywordGroup is the set of identical keywords (same terms, same match type)
// of all campaigns: matched once per query however many campaigns share it.
type keywordGroup struct {
	match          uint8
	termLo, termHi uint32
	refLo, refHi   uint32
}

// Match types as indexes.
const (
	mExact uint8 = iota
	mPhrase
	mBroad
)

func matchIndex(m MatchType) uint8 {
	switch m {
	case Broad:
		return mBroad
	case Phrase:
		return mPhrase
	}
	return mExact // the narrowest, for anything unvalidated
}

// hit is a term spelling found in a query, at runes [s, e) of its compact
// text.
type hit struct {
	term uint32
	form uint32
	s, e int32
}

// wordSpan is a dictionary word found in a query.
type wordSpan struct {
	s, e  int32
	split uint64
}

// NewKeywordIndex indexes refs. Identical keywords (equal after
// normalization, same match type) are grouped, so matching costs the same
// whether one campaign or five hundred bid on 居酒屋. Keywords with nothing
// left after normalization are left out; a match type other than exact,
// phrase or broad (which validation rejects) is taken as exact.
//
// The analysis of each distinct keyword is cached by text: a new keyword
// costs about half a millisecond (spread over the cores), and a rebuild of
// 30,000 known keywords about 0.15 s.
//
// The first index that holds Japanese keywords loads the morphological
// dictionary (about a second, once per process; see docs/matching.md).
func NewKeywordIndex(refs []KeywordRef) *KeywordIndex {
	ix := &KeywordIndex{}
	type groupKey struct {
		terms string
		match uint8
	}
	groupOf := map[groupKey]int{}
	var groupRefs [][]uint32
	var groupTermText [][]termSource
	for _, r := range refs {
		terms := keywordTerms(r.Keyword.Text)
		if len(terms) == 0 {
			continue
		}
		k := groupKey{joinTerms(terms), matchIndex(r.Keyword.Match)}
		g, ok := groupOf[k]
		if !ok {
			g = len(groupRefs)
			groupOf[k] = g
			groupRefs = append(groupRefs, nil)
			groupTermText = append(groupTermText, terms)
			ix.groups = append(ix.groups, keywordGroup{match: k.match})
		}
		groupRefs[g] = append(groupRefs[g], r.Ref)
	}

	// Terms, and how many groups use each (to anchor multi-term groups on
	// their rarest term).
	termOf := map[string]uint32{}
	var termText []string
	var termKana [][]string
	var uses []int
	for g, terms := range groupTermText {
		ix.groups[g].termLo = uint32(len(ix.groupTerms))
		for _, t := range terms {
			id, ok := termOf[t.text]
			if !ok {
				id = uint32(len(termText))
				termOf[t.text] = id
				termText = append(termText, t.text)
				termKana = append(termKana, nil)
				uses = append(uses, 0)
			}
			if !slices.Contains(termKana[id], t.kana) {
				termKana[id] = append(termKana[id], t.kana)
			}
			uses[id]++
			ix.groupTerms = append(ix.groupTerms, id)
		}
		ix.groups[g].termHi = uint32(len(ix.groupTerms))
		ix.groups[g].refLo = uint32(len(ix.refs))
		ix.refs = append(ix.refs, groupRefs[g]...)
		ix.groups[g].refHi = uint32(len(ix.refs))
	}
	ix.terms = make([]indexTerm, len(termText))
	anchors := make([][]uint32, len(termText))
	for i := range ix.terms {
		ix.terms[i].single = [3]int32{-1, -1, -1}
	}
	for g, kg := range ix.groups {
		terms := ix.groupTerms[kg.termLo:kg.termHi]
		if len(terms) == 1 {
			ix.terms[terms[0]].single[kg.match] = int32(g)
			continue
		}
		a := terms[0]
		for _, t := range terms[1:] {
			if uses[t] < uses[a] {
				a = t
			}
		}
		anchors[a] = append(anchors[a], uint32(g))
	}
	for t, gs := range anchors {
		ix.terms[t].anchLo = uint32(len(ix.anchored))
		ix.anchored = append(ix.anchored, gs...)
		ix.terms[t].anchHi = uint32(len(ix.anchored))
	}

	// Spellings and blocking words, in the two tries.
	analyses := analyzeTerms(termText, termKana)
	b := newIndexBuilder()
	for id, a := range analyses {
		for _, f := range a.forms {
			b.addForm(uint32(id), f)
		}
		for _, w := range a.blockers {
			b.addBlocker(w)
			b.addRomajiBlocker(uint32(id), w)
		}
	}
	ix.main, ix.romaji, ix.entries, ix.forms, ix.romajiBlocks = b.build()
	ix.kata = kataWords()
	ix.romajiWords = romajiLexicon()
	return ix
}

// joinTerms returns the folded text of a keyword's terms.
func joinTerms(ts []termSource) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return b.String()
}

// indexBuilder collects trie keys and their meanings.
type indexBuilder struct {
	main, romaji map[string]*builderEntry
}

type builderEntry struct {
	forms   []formRef
	split   uint64
	natural bool
	blocks  []termBlock // romaji trie only
}

func newIndexBuilder() *indexBuilder {
	return &indexBuilder{main: map[string]*builderEntry{}, romaji: map[string]*builderEntry{}}
}

func (b *indexBuilder) entry(m map[string]*builderEntry, key string) *builderEntry {
	e := m[key]
	if e == nil {
		e = &builderEntry{}
		m[key] = e
	}
	return e
}

func (b *indexBuilder) addForm(term uint32, f termForm) {
	if f.text == "" {
		return
	}
	m := b.main
	if f.kind.romaji() {
		m = b.romaji
	}
	e := b.entry(m, f.text)
	ref := formRef{term: term, split: f.split, kind: f.kind, short: f.short}
	for _, old := range e.forms {
		if old == ref {
			return
		}
	}
	e.forms = append(e.forms, ref)
}

func (b *indexBuilder) addBlocker(w blockWord) {
	if w.text == "" || w.split == 0 {
		return
	}
	e := b.entry(b.main, w.text)
	// A string that is several dictionary words may be split where any
	// of them is: block only where none is. A dictionary word blocks
	// wherever it is found; a straddling string only where anchored.
	e.split |= w.split &^ anchored
	e.natural = e.natural || w.split&anchored == 0
}

// addRomajiBlocker adds the phonetic key of blocking word w, if it is
// written in kana, as blocking term in romaji. Anchored strings (a place
// name and the rest of a term, see straddlers) are left out: romaji words
// are read whole, so 東京 + 都 cannot find 京都 in tokyoto anyway.
func (b *indexBuilder) addRomajiBlocker(term uint32, w blockWord) {
	if w.split&anchored != 0 || !isKatakanaWord(w.text) {
		return
	}
	key, split := phoneticKeySplit(w.text, w.split)
	if utf8.RuneCountInString(key) < minRomajiWord {
		return
	}
	e := b.entry(b.romaji, key)
	for i := range e.blocks {
		if e.blocks[i].term == term {
			e.blocks[i].split |= split // several words of one key: block where none splits
			return
		}
	}
	e.blocks = append(e.blocks, termBlock{term, split})
}

func (b *indexBuilder) build() (main, romaji *trie, entries []indexEntry, forms []formRef, blocks []termBlock) {
	one := func(m map[string]*builderEntry) *trie {
		keys := make([]string, 0, len(m))
		vals := make([]int32, 0, len(m))
		for k, e := range m {
			keys = append(keys, k)
			vals = append(vals, int32(len(entries)))
			ie := indexEntry{formLo: uint32(len(forms)), split: e.split}
			if e.split != 0 && !e.natural {
				ie.split |= anchored
			}
			forms = append(forms, e.forms...)
			ie.formHi = uint32(len(forms))
			ie.blockLo = uint32(len(blocks))
			blocks = append(blocks, e.blocks...)
			ie.blockHi = uint32(len(blocks))
			entries = append(entries, ie)
		}
		return newTrie(keys, vals)
	}
	main = one(b.main)
	romaji = one(b.romaji)
	return main, romaji, entries, forms, blocks
}

// Match appends to dst the Ref of every keyword that q triggers and returns
// the extended slice. A Ref appears once per triggered keyword, so it may
// appear more than once; order is unspecified.
//
// Match looks keywords up by the query's own text: its cost depends on the
// query's length and on the keywords it triggers, not on how many keywords
// the index holds. With a reused Query and a dst of enough capacity it does
// not allocate. It is safe to call concurrently with distinct Queries.
func (ix *KeywordIndex) Match(q *Query, dst []uint32) []uint32 {
	if ix == nil || len(ix.groups) == 0 || q.runes() == 0 {
		return dst
	}
	q.hits = q.hits[:0]
	q.blocks = q.blocks[:0]
	q.valid = q.valid[:0]
	ix.scan(q)
	ix.scanRomaji(q)
	for _, h := range q.hits {
		if ix.valid(q, h) {
			q.valid = append(q.valid, h)
		}
	}
	if len(q.valid) == 0 {
		return dst
	}
	slices.SortFunc(q.valid, func(a, b hit) int {
		if c := cmp.Compare(a.term, b.term); c != 0 {
			return c
		}
		return cmp.Compare(a.s, b.s)
	})
	n := int32(q.runes())
	for i := 0; i < len(q.valid); {
		t := q.valid[i].term
		j := i + 1
		for j < len(q.valid) && q.valid[j].term == t {
			j++
		}
		tm := &ix.terms[t]
		if g := tm.single[mBroad]; g >= 0 {
			dst = ix.appendRefs(dst, g)
		}
		if g := tm.single[mPhrase]; g >= 0 {
			dst = ix.appendRefs(dst, g)
		}
		if g := tm.single[mExact]; g >= 0 {
			for _, h := range q.valid[i:j] {
				if h.s == 0 && h.e == n {
					dst = ix.appendRefs(dst, g)
					break
				}
			}
		}
		for _, g := range ix.anchored[tm.anchLo:tm.anchHi] {
			if ix.groupMatches(q, &ix.groups[g]) {
				dst = ix.appendRefs(dst, int32(g))
			}
		}
		i = j
	}
	return dst
}

func (ix *KeywordIndex) appendRefs(dst []uint32, g int32) []uint32 {
	kg := &ix.groups[g]
	return append(dst, ix.refs[kg.refLo:kg.refHi]...)
}

// scan finds every key of the main trie in the query's compact text.
func (ix *KeywordIndex) scan(q *Query) {
	t := ix.main
	n := q.runes()
	for i := range n {
		node := uint32(0)
		for b := int(q.start[i]); b < len(q.cmp); b++ {
			var ok bool
			node, ok = t.child(node, q.cmp[b])
			if !ok {
				break
			}
			v := t.valueAt(node)
			if v < 0 {
				continue
			}
			e := q.rix[b+1]
			ix.record(q, v, int32(i), e)
		}
	}
}

// record notes the forms and the blocking word of entry v found at runes
// [s, e).
func (ix *KeywordIndex) record(q *Query, v int32, s, e int32) {
	en := &ix.entries[v]
	for f := en.formLo; f < en.formHi; f++ {
		q.hits = append(q.hits, hit{term: ix.forms[f].term, form: f, s: s, e: e})
	}
	if en.split != 0 && !q.spaceWithin(s, e, 0) && (en.split&anchored == 0 || q.clearBoundary(int(s))) {
		q.blocks = append(q.blocks, wordSpan{s, e, en.split})
	}
}

// clearBoundary reports whether rune i begins the query, follows a space or
// changes script.
func (q *Query) clearBoundary(i int) bool {
	return i == 0 || q.info[i]&spaceBefore != 0 || q.class(i-1) != q.class(i)
}

// spaceWithin reports whether the user typed a space inside runes [s, e) at
// an offset that split does not allow.
func (q *Query) spaceWithin(s, e int32, split uint64) bool {
	for j := s + 1; j < e; j++ {
		if q.info[j]&spaceBefore != 0 {
			off := j - s
			if off >= 64 || split&(1<<off) == 0 {
				return true
			}
		}
	}
	return false
}

// valid reports whether a hit of a spelling stands as a word of the query.
func (ix *KeywordIndex) valid(q *Query, h hit) bool {
	f := &ix.forms[h.form]
	if f.kind.readingOnly() && q.hasKanji {
		return false
	}
	if f.kind.romaji() {
		return true // checked when found: see scanRomaji
	}
	if q.spaceWithin(h.s, h.e, f.split) {
		return false
	}
	if !q.boundary(int(h.s), f.short, ix.kata, true) || !q.boundary(int(h.e), f.short, ix.kata, false) {
		return false
	}
	return !q.blocked(h.s, h.e)
}

// blocked reports whether a dictionary word found in the query covers runes
// [s, e) without being split at both ends of it.
func (q *Query) blocked(s, e int32) bool {
	for _, b := range q.blocks {
		if covers(b.s, b.e, s, e) && blocksAt(b.split, b.s, s, e) {
			return true
		}
	}
	return false
}

// covers reports whether a word spanning bs to be holds the other span s
// to e, and is not that span itself.
func covers(bs, be, s, e int32) bool {
	return bs <= s && e <= be && (bs != s || be != e)
}

// blocksAt reports whether a word beginning at bs, with split as its
// places where the analyser splits it, blocks the span s to e it covers:
// it is not split at both of the span's ends.
func blocksAt(split uint64, bs, s, e int32) bool {
	return !splitAt(split, s-bs) || !splitAt(split, e-bs)
}

func splitAt(split uint64, off int32) bool {
	return off < 64 && split&(1<<off) != 0
}

// boundary reports whether a word may begin (left) or end (!left) between
// runes i-1 and i.
//
// Spaces, the ends of the query and changes of script are boundaries. Inside
// a run of Latin letters and digits there are none. Inside katakana typed as
// katakana, the rest of the run on that side must be made of dictionary
// words (see kataLexicon). Inside kanji or hiragana there may be one, unless
// the spelling is short; dictionary words that straddle it then decide (see
// blocked). A spelling of one character needs a space or a change of
// script.
func (q *Query) boundary(i int, short shortness, kata *kataLexicon, left bool) bool {
	n := q.runes()
	if i <= 0 || i >= n || q.info[i]&spaceBefore != 0 {
		return true
	}
	a, b := q.info[i-1], q.info[i]
	if b&longMark != 0 {
		return false // ー belongs to the kana before it
	}
	ca, cb := a&clsMask, b&clsMask
	if ca != cb {
		return true
	}
	switch {
	case short == oneChar || ca == clsAlnum:
		return false
	case ca == clsKata:
		return kata.splits(q, i, left)
	}
	return short == notShort
}

// groupMatches evaluates a keyword of several terms against the query's
// valid hits.
func (ix *KeywordIndex) groupMatches(q *Query, g *keywordGroup) bool {
	terms := ix.groupTerms[g.termLo:g.termHi]
	switch g.match {
	case mBroad:
		for _, t := range terms {
			if lo, hi := q.termHits(t); lo == hi {
				return false
			}
		}
		return true
	case mPhrase:
		return q.chain(terms, -1, false)
	default:
		return q.chain(terms, -1, true)
	}
}

// termHits returns the range of q.valid holding hits of term t.
func (q *Query) termHits(t uint32) (int, int) {
	lo, _ := slices.BinarySearchFunc(q.valid, t, func(h hit, t uint32) int { return cmp.Compare(h.term, t) })
	hi := lo
	for hi < len(q.valid) && q.valid[hi].term == t {
		hi++
	}
	return lo, hi
}

// chain reports whether terms occur in order, each right after the previous
// one (prevEnd; -1 for the first), apart from spaces and particles; when
// exact, the chain must also cover the whole query.
func (q *Query) chain(terms []uint32, prevEnd int32, exact bool) bool {
	if len(terms) == 0 {
		return !exact || prevEnd == int32(q.runes())
	}
	lo, hi := q.termHits(terms[0])
	for _, h := range q.valid[lo:hi] {
		switch {
		case prevEnd < 0:
			if exact && h.s != 0 {
				continue
			}
		case !q.adjacent(prevEnd, h.s):
			continue
		}
		if q.chain(terms[1:], h.e, exact) {
			return true
		}
	}
	return false
}

// adjacent reports whether a word ending at rune a and one starting at rune
// b follow each other, with at most a particle between (新宿の居酒屋).
func (q *Query) adjacent(a, b int32) bool {
	if a == b {
		return true
	}
	if b < a || b-a > 2 {
		return false
	}
	gap := q.cmp[q.start[a]:q.start[b]]
	// The words on either side were found standing as words; the particle
	// must be set off by a space or a change of script, or sit inside
	// hiragana (しんじゅくのいざかや), never inside a run of Latin letters or
	// katakana.
	if !q.boundary(int(a), notShort, nil, false) || !q.boundary(int(b), notShort, nil, true) {
		return false
	}
	return isParticle(gap)
}

// isParticle reports the particles that may stand between the words of a
// phrase or exact keyword without changing what is asked for, in the spirit
// of Google's function words: 新宿の居酒屋 is 新宿 居酒屋.
func isParticle(b []byte) bool {
	switch string(b) {
	case "ノ", "ト", "ヤ", "デ", "ニ", "ヘ", "ヲ", "ガ", "no", "de", "ni", "to", "ya":
		return true
	}
	return false
}

// formKind says how a spelling relates to its term.
type formKind uint8

const (
	surfaceForm       formKind = iota // the term as written (normalized), or a long-vowel variant
	readingForm                       // the dictionary reading of a term with kanji
	romajiSurfaceForm                 // the phonetic key of a kana term, for romaji queries
	romajiReadingForm                 // the phonetic key of a reading
)

func (k formKind) readingOnly() bool { return k == readingForm || k == romajiReadingForm }
func (k formKind) romaji() bool      { return k == romajiSurfaceForm || k == romajiReadingForm }

// shortness says how clearly a spelling must be set off in a query.
type shortness uint8

const (
	notShort  shortness = iota
	shortKana           // two kana: inside kana only where katakana splits
	oneChar             // one character: only at a space or change of script
)

// shortnessOf returns how short s is for matching: a single character could
// be part of almost any word, and two kana inside a run of hiragana too.
func shortnessOf(s string) shortness {
	switch n := utf8.RuneCountInString(s); {
	case n <= 1:
		return oneChar
	case n == 2 && !strings.ContainsFunc(s, isHan):
		return shortKana
	}
	return notShort
}
