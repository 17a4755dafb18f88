package campaigns

import (
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/ikawaha/kagome/v2/tokenizer"
)

// Keyword-side analysis. Everything here runs when an index or a set of
// negatives is built, never per request, and is cached by text: the
// dictionary is slow (about 10 µs a word) but keywords repeat across
// campaigns and across rebuilds.

// termSource is a term of a keyword: its folded text, which queries are
// compared with, and its normalized text with hiragana kept, which the
// analyser reads (it needs the hiragana to tell particles and okurigana).
type termSource struct{ text, kana string }

// termAnalysis is everything an index needs to know about a term.
type termAnalysis struct {
	forms []termForm
	// blockers are the dictionary words that contain a spelling of the
	// term where the analyser does not split them; surfaceBlockers those
	// of the term's own spelling only (for negatives).
	blockers, surfaceBlockers []blockWord
}

// termForm is a spelling of a term.
type termForm struct {
	text  string // normalized, without spaces
	kind  formKind
	split uint64 // rune offsets where the analyser splits the spelling
	short shortness
}

// blockWord is a dictionary word that contains a term's spelling, and the
// rune offsets where the analyser splits it (always 0 and its length).
type blockWord struct {
	text  string
	split uint64
}

// cacheMu guards keywordCache and termCache.
var cacheMu sync.Mutex

var (
	keywordCache = map[string][]termSource{}
	termCache    = map[string]*termAnalysis{}
)

// maxCached bounds each cache; past it the cache starts over, so keywords of
// deleted campaigns do not stay forever.
const maxCached = 1 << 17

// keywordTerms returns the terms of a keyword: its words, and inside a word
// the parts around a particle (新宿の居酒屋 is 新宿 and 居酒屋).
func keywordTerms(text string) []termSource {
	h := normalizeKeepHiragana(text)
	if h == "" {
		return nil
	}
	cacheMu.Lock()
	ts, ok := keywordCache[h]
	cacheMu.Unlock()
	if ok {
		return ts
	}
	for _, w := range strings.Split(h, " ") {
		for _, p := range splitParticles(w) {
			ts = append(ts, termSource{text: Normalize(p), kana: p})
		}
	}
	cacheMu.Lock()
	if len(keywordCache) >= maxCached {
		clear(keywordCache)
	}
	keywordCache[h] = ts
	cacheMu.Unlock()
	return ts
}

// particles are the particles that split a keyword's word into terms.
var particles = map[string]bool{"の": true, "と": true, "や": true, "で": true, "に": true, "へ": true, "を": true, "が": true}

// splitParticles splits a word at particles that the analyser finds between
// words not written in hiragana (新宿の居酒屋, not やきとり).
func splitParticles(w string) []string {
	if !strings.ContainsFunc(w, isHiragana) || utf8.RuneCountInString(w) < 3 {
		return []string{w}
	}
	d := japaneseDictionary()
	toks := d.tok.Analyze(w, tokenizer.Normal)
	var out []string
	from := 0
	for i := 1; i+1 < len(toks); i++ {
		t := toks[i]
		if pos := d.tokenPOS(t); !particles[t.Surface] || len(pos) == 0 || pos[0] != "助詞" {
			continue
		}
		before, _ := utf8.DecodeLastRuneInString(toks[i-1].Surface)
		after, _ := utf8.DecodeRuneInString(toks[i+1].Surface)
		if isHiragana(before) || isHiragana(after) {
			continue
		}
		out = append(out, joinSurfaces(toks[from:i]))
		from = i + 1
	}
	return append(out, joinSurfaces(toks[from:]))
}

func joinSurfaces(toks []tokenizer.Token) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.Surface)
	}
	return b.String()
}

func isHiragana(r rune) bool { return 0x3041 <= r && r <= 0x309F }

// hasJapanese reports kana or kanji in s.
func hasJapanese(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return isKana(r) || isHan(r) })
}

// analyzeTerms analyses each term, given by its folded text and the
// hiragana-keeping spellings it was written in.
func analyzeTerms(texts []string, kanas [][]string) []termAnalysis {
	// Analyse the spellings not in the cache on every core first: the
	// analyser is slow, and safe for concurrent use.
	var todo []termSource
	cacheMu.Lock()
	for i, t := range texts {
		for _, k := range kanas[i] {
			if _, ok := termCache[k]; !ok {
				todo = append(todo, termSource{text: t, kana: k})
			}
		}
	}
	cacheMu.Unlock()
	if len(todo) > 1 {
		var wg sync.WaitGroup
		var next atomic.Int64
		for range min(runtime.GOMAXPROCS(0), len(todo)) {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < int64(len(todo)); i = next.Add(1) - 1 {
					analyzeTerm(todo[i])
				}
			})
		}
		wg.Wait()
	}
	out := make([]termAnalysis, len(texts))
	for i, t := range texts {
		for j, k := range kanas[i] {
			a := analyzeTerm(termSource{text: t, kana: k})
			if j == 0 {
				out[i] = *a
				continue
			}
			out[i] = mergeAnalyses(out[i], *a)
		}
	}
	return out
}

func mergeAnalyses(a, b termAnalysis) termAnalysis {
	m := termAnalysis{
		forms:           append([]termForm(nil), a.forms...),
		blockers:        append([]blockWord(nil), a.blockers...),
		surfaceBlockers: a.surfaceBlockers,
	}
	for _, f := range b.forms {
		m.addForm(f)
	}
	m.blockers = append(m.blockers, b.blockers...)
	return m
}

// analyzeTerm returns the analysis of a term, from the cache when it can.
func analyzeTerm(src termSource) *termAnalysis {
	cacheMu.Lock()
	a, ok := termCache[src.kana]
	cacheMu.Unlock()
	if ok {
		return a
	}
	a = computeAnalysis(src)
	cacheMu.Lock()
	if len(termCache) >= maxCached {
		clear(termCache)
	}
	termCache[src.kana] = a
	cacheMu.Unlock()
	return a
}

// computeAnalysis finds a term's spellings: as written; its readings when it
// has kanji; long-vowel variants (コーヒー, コーヒ); the phonetic keys of its
// kana spellings for romaji; and the dictionary words that block them.
func computeAnalysis(src termSource) *termAnalysis {
	t, h := src.text, src.kana
	a := &termAnalysis{}
	if !hasJapanese(t) {
		// Latin words end at non-letters; the dictionary has nothing to add.
		a.addForm(termForm{text: t, kind: surfaceForm, short: shortnessOf(t)})
		return a
	}
	d := japaneseDictionary()
	toks := d.tok.Analyze(h, tokenizer.Search)
	n := utf8.RuneCountInString(t)
	split := ends(n) | scriptSplits(h)
	if sp, joined := tokenSplits(toks, func(tk tokenizer.Token) (string, bool) { return Normalize(tk.Surface), true }); joined == t {
		split |= sp
	}
	a.addForm(termForm{text: t, kind: surfaceForm, split: split, short: shortnessOf(t)})
	if strings.ContainsFunc(t, isHan) {
		for _, r := range d.readings(h, toks) {
			a.addForm(termForm{text: r.text, kind: readingForm, split: r.split, short: shortnessOf(r.text)})
		}
		for _, v := range d.okuriganaVariants(t, a.forms) {
			a.addForm(v)
		}
	}
	for _, f := range a.forms {
		for _, v := range longVowelVariants(f.text, f.kind == surfaceForm && isKatakanaWord(h)) {
			m := utf8.RuneCountInString(v)
			a.addForm(termForm{text: v, kind: f.kind, split: f.split&below(m) | ends(m), short: shortnessOf(v)})
		}
	}
	for _, f := range a.forms {
		if f.kind.romaji() || !isKatakanaWord(f.text) {
			continue
		}
		k := phoneticKey(f.text)
		if k == "" {
			continue
		}
		kind := romajiSurfaceForm
		if f.kind == readingForm {
			kind = romajiReadingForm
		}
		// A key is as short as the spelling it reads (アメ for 雨 needs a
		// whole romaji word, as あめ needs a space or a change of script),
		// or one kana (コーヒー's key コヒ is not short, ト for トウ is).
		short := f.short
		if shortnessOf(k) == oneChar {
			short = oneChar
		}
		a.addForm(termForm{text: k, kind: kind, short: short})
	}
	seen := map[string]bool{}
	var readingSt []blockWord
	for i, f := range a.forms {
		if f.short == oneChar || f.kind.romaji() {
			continue
		}
		bs := d.blockers(f.text)
		if f.kind == surfaceForm {
			st, rs := d.straddlers(f.text)
			bs = append(bs, st...)
			if i == 0 {
				readingSt = rs
			}
		}
		for _, b := range bs {
			if i == 0 {
				a.surfaceBlockers = append(a.surfaceBlockers, b)
			}
			if !seen[b.text] {
				seen[b.text] = true
				a.blockers = append(a.blockers, b)
			}
		}
	}
	// The straddlers' readings last, where no blocker of the same text is
	// kept already: an anchored one must not take the place of a
	// dictionary word that blocks anywhere (城下 keeps トウジョウカ, 頭状花).
	// They are for the keyword's readings only: negatives (which keep
	// surfaceBlockers) match no readings.
	for _, b := range readingSt {
		if !seen[b.text] && a.straddlesReading(b) {
			seen[b.text] = true
			a.blockers = append(a.blockers, b)
		}
	}
	return a
}

// straddlesReading reports whether b holds one of a's readings starting
// where b does not split, as トウキョウト holds キョウト.
func (a *termAnalysis) straddlesReading(b blockWord) bool {
	for _, f := range a.forms {
		if f.kind != readingForm {
			continue
		}
		for from := 0; from < len(b.text); {
			i := strings.Index(b.text[from:], f.text)
			if i < 0 {
				break
			}
			i += from
			from = i + 1
			if !splitAt(b.split, int32(utf8.RuneCountInString(b.text[:i]))) {
				return true
			}
		}
	}
	return false
}

func (a *termAnalysis) addForm(f termForm) {
	if f.text == "" {
		return
	}
	for _, old := range a.forms {
		if old.text == f.text && old.kind == f.kind {
			return
		}
	}
	a.forms = append(a.forms, f)
}

// ends returns a split with bits for offset 0 and n.
func ends(n int) uint64 {
	if n >= 64 {
		return 1
	}
	return 1 | 1<<n
}

// below returns a split with bits for offsets 0 to n-1.
func below(n int) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}

// scriptSplits returns the offsets of s where kanji, katakana and Latin
// letters meet (生|ビール, T|シャツ): a boundary even inside a dictionary word,
// since a change of script is one people see. Hiragana do not count:
// 焼き鳥 is one word.
func scriptSplits(s string) uint64 {
	var split uint64
	prev := -1
	i := 0
	for _, r := range s {
		c := -1
		switch {
		case isHan(r):
			c = 0
		case 0x30A1 <= r && r <= 0x30FA, r == 0x30FC:
			c = 1
		case isAlnum(r):
			c = 2
		}
		if i > 0 && i < 64 && c >= 0 && prev >= 0 && c != prev && r != 0x30FC {
			split |= 1 << i
		}
		prev = c
		i++
	}
	return split
}

// tokenSplits returns the offsets between tokens (each token's text given by
// text) and the tokens' texts joined.
func tokenSplits(toks []tokenizer.Token, text func(tokenizer.Token) (string, bool)) (uint64, string) {
	var split uint64
	var b strings.Builder
	off := 0
	for _, tk := range toks {
		s, ok := text(tk)
		if !ok {
			return 0, ""
		}
		if off > 0 && off < 64 {
			split |= 1 << off
		}
		b.WriteString(s)
		off += utf8.RuneCountInString(s)
	}
	return split, b.String()
}

// tokenPOS returns a token's part of speech: a known word's from the
// entry table (kagome's own is dropped: see ipaEntries). The caller must
// not modify it.
func (d *dictionary) tokenPOS(tk tokenizer.Token) []string {
	if tk.Class == tokenizer.KNOWN {
		return d.entries.pos(tk.ID)
	}
	return tk.POS()
}

// tokenReading returns a token's reading in katakana: its own text for kana.
func (d *dictionary) tokenReading(tk tokenizer.Token) (string, bool) {
	s := Normalize(tk.Surface)
	if isKatakanaWord(s) {
		return s, true
	}
	var r string
	var ok bool
	switch tk.Class {
	case tokenizer.KNOWN:
		_, r, ok = d.entries.entry(tk.ID) // kagome's own features are dropped: see ipaEntries
	case tokenizer.USER:
		r, ok = tk.FeatureAt(2) // user dictionary: pos, tokens, readings
		r = strings.ReplaceAll(r, "/", "")
	default:
		r, ok = tk.Reading()
	}
	if !ok || r == "" || r == "*" {
		return "", false
	}
	r = Normalize(r)
	return r, isKatakanaWord(r)
}

type reading struct {
	text  string
	split uint64
}

// readings returns the readings of a term with kanji, whole. For a word in
// the dictionary, the readings of its common-noun entries (市場 is イチバ and
// シジョウ); for a compound, the readings of its parts joined, the
// analyser's choice first and then each part's other readings (牛丼 is
// ギュウドン though the analyser reads ウシドンブリ).
func (d *dictionary) readings(h string, searchToks []tokenizer.Token) []reading {
	var out []reading
	add := func(text string, split uint64) {
		if text == "" || len(out) >= maxReadings {
			return
		}
		for _, r := range out {
			if r.text == text {
				return
			}
		}
		out = append(out, reading{text, split | ends(utf8.RuneCountInString(text))})
	}
	if utf8.RuneCountInString(h) >= 2 {
		for _, r := range d.entryReadings(h, false) {
			add(r, 0)
		}
	}
	for _, toks := range [][]tokenizer.Token{searchToks, d.tok.Analyze(h, tokenizer.Normal)} {
		if len(toks) == 0 || len(toks) > 4 {
			continue
		}
		alts := make([][]string, len(toks))
		for i, tk := range toks {
			r, ok := d.tokenReading(tk)
			if !ok {
				alts = nil
				break
			}
			alts[i] = append(alts[i], r)
			if strings.ContainsFunc(tk.Surface, isHan) {
				for _, r := range d.entryReadings(tk.Surface, true) {
					if len(alts[i]) < 3 && !slices.Contains(alts[i], r) {
						alts[i] = append(alts[i], r)
					}
				}
			}
		}
		if alts == nil {
			continue
		}
		// Every combination, the analyser's own first.
		idx := make([]int, len(alts))
		for {
			var b strings.Builder
			var split uint64
			for i, k := range idx {
				if n := utf8.RuneCountInString(b.String()); i > 0 && n < 64 {
					split |= 1 << n
				}
				b.WriteString(alts[i][k])
			}
			add(b.String(), split)
			i := len(idx) - 1
			for i >= 0 && idx[i] == len(alts[i])-1 {
				idx[i] = 0
				i--
			}
			if i < 0 {
				break
			}
			idx[i]++
		}
	}
	return out
}

// okuriganaVariants returns the dictionary's other spellings of a word with
// kanji that differ only in the kana between the kanji (焼き鳥, 焼鳥; お好み焼き,
// お好み焼) and read the same, as surface spellings.
func (d *dictionary) okuriganaVariants(t string, forms []termForm) []termForm {
	skel := kanjiOnly(t)
	if skel == "" {
		return nil
	}
	// The words holding skel's rarest kanji (the first of equals).
	var rarest []int32
	first := true
	for _, r := range skel {
		if l := d.postings.get(uint64(r)<<32 | 0xFFFFFFFF); first || len(l) < len(rarest) {
			rarest, first = l, false
		}
	}
	var out []termForm
	for _, id := range rarest {
		w := d.word(id)
		if w.surface == "" || w.text == t || kanjiOnly(w.text) != skel {
			continue
		}
		same := false
		for _, f := range forms {
			same = same || f.kind == readingForm && f.text == w.reading
		}
		if !same || utf8.RuneCountInString(w.text) > maxBlockRunes {
			continue
		}
		out = append(out, termForm{text: w.text, kind: surfaceForm, split: d.splitOf(w), short: shortnessOf(w.text)})
	}
	return out
}

// kanjiOnly returns the kanji of s.
func kanjiOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if isHan(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// maxReadings caps the readings of one term.
const maxReadings = 12

// entryReadings returns the readings of the dictionary's entries spelt s:
// common nouns (not names: 新宿 is also read アラジュク as a name), and when
// part is set the prefixes and suffixes a compound is made of too.
func (d *dictionary) entryReadings(s string, part bool) []string {
	var out []string
	for _, id := range d.dict.Index.Search(s) {
		_, reading, has := d.entries.entry(id)
		pos := d.entries.pos(id)
		if !has || len(pos) < 2 {
			continue
		}
		p0, p1 := pos[0], pos[1]
		ok := p0 == "名詞" && p1 != "固有名詞"
		if part {
			ok = ok || p0 == "接頭詞"
		} else {
			ok = ok && p1 != "接尾"
		}
		if !ok {
			continue
		}
		if r := Normalize(reading); isKatakanaWord(r) && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// longVowelVariants returns the spelling with a final long-vowel mark
// dropped, or added when add, as Lucene's kuromoji katakana stemmer folds
// them: a trailing ー of a katakana word of four or more characters is
// optional (コーヒー, コーヒ); shorter words keep theirs (ビール is not ビル).
func longVowelVariants(s string, add bool) []string {
	rs := []rune(s)
	n := len(rs)
	run := 0
	for run < n && (0x30A1 <= rs[n-1-run] && rs[n-1-run] <= 0x30FA || rs[n-1-run] == 0x30FC) {
		run++
	}
	switch last := rs[n-1]; {
	case last == 0x30FC && run >= 4:
		return []string{string(rs[:n-1])}
	case add && run >= 3 && last != 0x30FC && last != 'ン' && last != 'ッ' && 0x30A1 <= last && last <= 0x30FA:
		return []string{s + "ー"}
	}
	return nil
}

// blockers returns the dictionary words that contain s at a place where the
// analyser does not split them: 居酒屋 for 酒屋, カフェオレ for カフェ, but not
// 生ビール for ビール (kanji meets katakana) nor 西新宿 for 新宿 (split).
func (d *dictionary) blockers(s string) []blockWord {
	n := utf8.RuneCountInString(s)
	var out []blockWord
	for _, id := range d.containing(s) {
		w := d.word(id)
		for from := 0; from < len(w.text); {
			i := strings.Index(w.text[from:], s)
			if i < 0 {
				break
			}
			i += from
			from = i + 1
			off := utf8.RuneCountInString(w.text[:i])
			if d.splitsAt(w, off, off+n) {
				continue
			}
			if utf8.RuneCountInString(w.text) <= maxBlockRunes {
				out = append(out, blockWord{w.text, d.splitOf(w)})
			}
			break
		}
	}
	return out
}

// straddlers returns strings made of a place name X that ends inside the
// kanji spelling s and the rest of s (東京 + 京都 → 東京都), where the
// analyser keeps X and does not begin s: in a query, if X begins at a clear
// boundary (the start, a space, other script), s is not a word there, so
// 京都 does not match 東京都. Marked anchored: see indexEntry. readingOut
// are the same strings read (トウキョウト, split トウキョウ|ト), for the
// caller to keep those that hold a reading of s across no split, so that
// とうきょうと does not trigger 京都 either.
//
// Place names are what people put before a keyword without a space (渋谷居酒屋),
// so they are the words that straddle one; other words are left out, as is
// the right side (京都会議 is 京都 会議), to keep the index small: telling
// those apart takes the analyser's view of the whole query.
func (d *dictionary) straddlers(s string) (out, readingOut []blockWord) {
	rs := []rune(s)
	if len(rs) < 2 || !allHan(s) {
		return nil, nil
	}
	for k := 1; k < len(rs); k++ {
		p, rest := string(rs[:k]), string(rs[k:])
		for _, id := range d.placesByLast[rs[k-1]] {
			w := d.word(id)
			if len(w.text) <= len(p) || !strings.HasSuffix(w.text, p) {
				continue
			}
			nx := utf8.RuneCountInString(w.text)
			whole := w.text + rest
			n := nx + len(rs) - k
			if n > maxBlockRunes {
				continue
			}
			toks := d.tok.Analyze(whole, tokenizer.Search)
			sp, joined := tokenSplits(toks, func(tk tokenizer.Token) (string, bool) { return Normalize(tk.Surface), true })
			if joined != whole {
				continue
			}
			sp |= ends(n)
			if !splitAt(sp, int32(nx)) || splitAt(sp, int32(nx-k)) {
				continue
			}
			out = append(out, blockWord{whole, sp | anchored})
			// The same trap typed in kana: とうきょうと holds キョウト, the
			// reading of 京都, where トウキョウ|ト does not split. Only for
			// common places: a reading is shared by every word that sounds
			// the same, and a small place's (草本 ソウホン) would keep
			// そうほんてん (総本店) from triggering 本店.
			if !w.bigPlace {
				continue
			}
			if rsp, rd := tokenSplits(toks, d.tokenReading); rd != "" {
				m := utf8.RuneCountInString(rd)
				if m <= maxBlockRunes {
					readingOut = append(readingOut, blockWord{rd, rsp | ends(m) | anchored})
				}
			}
		}
	}
	return out, readingOut
}

// anchored marks a blocking string that counts only where it begins at a
// clear boundary of the query.
const anchored = 1 << 63

// maxBlockRunes is the longest blocking string: offsets must fit below the
// anchored bit.
const maxBlockRunes = 62

func allHan(s string) bool {
	for _, r := range s {
		if !isHan(r) {
			return false
		}
	}
	return s != ""
}

// splitsAt reports whether w may be split at both rune offsets a and b.
func (d *dictionary) splitsAt(w lexWord, a, b int) bool {
	if w.surface != "" {
		if h := normalizeKeepHiragana(w.surface); utf8.RuneCountInString(h) == utf8.RuneCountInString(w.text) {
			sc := scriptSplits(h) | ends(utf8.RuneCountInString(w.text))
			if splitAt(sc, int32(a)) && splitAt(sc, int32(b)) {
				return true // without asking the analyser
			}
		}
	}
	sp := d.splitOf(w)
	return splitAt(sp, int32(a)) && splitAt(sp, int32(b))
}

// splitOf returns where the analyser, in search mode, splits a dictionary
// word (西新宿 → 西|新宿) or the spelling whose reading it is, plus where its
// script changes. Computed once per word (or twice, by a race of two
// analyses, which agree).
func (d *dictionary) splitOf(w lexWord) uint64 {
	e := &d.lex[w.id]
	d.splitMu.Lock()
	split, done := e.split, e.splitDone
	d.splitMu.Unlock()
	if done {
		return split
	}
	n := utf8.RuneCountInString(w.text)
	s := ends(n)
	if w.surface != "" {
		h := normalizeKeepHiragana(w.surface)
		toks := d.tok.Analyze(h, tokenizer.Search)
		if sp, joined := tokenSplits(toks, func(tk tokenizer.Token) (string, bool) { return Normalize(tk.Surface), true }); joined == w.text {
			s |= sp
		}
		if utf8.RuneCountInString(h) == n {
			s |= scriptSplits(h)
		}
	}
	if w.readingOf != "" {
		toks := d.tok.Analyze(normalizeKeepHiragana(w.readingOf), tokenizer.Search)
		if sp, r := tokenSplits(toks, d.tokenReading); r == w.text {
			s |= sp
		}
	}
	d.splitMu.Lock()
	e.split, e.splitDone = s, true
	d.splitMu.Unlock()
	return s
}

// analyzeNegatives analyses the words of a negative keyword: their own
// spelling only, with the dictionary words that block it.
func analyzeNegatives(terms []termSource) []termAnalysis {
	out := make([]termAnalysis, len(terms))
	for i, t := range terms {
		a := analyzeTerm(t)
		out[i] = termAnalysis{forms: a.forms[:1], blockers: a.surfaceBlockers}
	}
	return out
}
