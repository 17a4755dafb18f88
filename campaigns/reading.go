package campaigns

import (
	_ "embed"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ikawaha/kagome-dict/dict"
	"github.com/ikawaha/kagome-dict/ipa"
	"github.com/ikawaha/kagome/v2/tokenizer"
)

// dictionary is the IPA dictionary (through kagome v2) and navad's lexicon of
// its words. It serves keyword analysis only: queries are never analysed by
// kagome, which would take tens of microseconds per search.
//
// It is loaded once per process, lazily, by the first keyword that needs it,
// and shared; see docs/matching.md for what it costs.
type dictionary struct {
	dict    *dict.Dict // kagome's IPA dictionary, without its Contents and parts of speech (see ipaEntries)
	entries *entryTable
	tok     *tokenizer.Tokenizer // safe for concurrent use

	// lex is every uninflected dictionary word, by normalized spelling
	// and by reading (word reads one), its strings in lexText. postings
	// lists the words that contain a pair of runes (r1<<32 | r2) or a rune
	// (r<<32 | 0xFFFFFFFF), to find the words that contain a keyword
	// without a scan.
	lex      []lexEntry
	lexText  string
	postings postingIndex
	// placesByLast lists the place names of two or three kanji by their
	// last kanji, for straddlers.
	placesByLast map[rune][]int32
	kata         *kataLexicon
	romajiWords  *trie // phonetic keys of known words, for reading romaji; see buildRomajiWords
	user         dict.UserDictRecords
	splitMu      sync.Mutex // guards lexEntry.split and splitDone

	// Start-up costs, for docs/matching.md: loading kagome's IPA
	// dictionary, then all of it with the lexicon.
	analyserTime, loadTime time.Duration
}

// lexWord is a string the dictionary knows as a word: the normalized
// spelling of some entries, or the reading of some, or both.
type lexWord struct {
	id        int32  // in dictionary.lex
	text      string // normalized
	surface   string // a dictionary spelling that normalizes to text, or ""
	readingOf string // a dictionary spelling whose reading is text, or ""
	reading   string // the reading of surface

	place    bool // a place name (名詞,固有名詞,地域)
	bigPlace bool // a place name the dictionary rates common (see majorPlaceCost)
}

// lexEntry is a lexicon word as the dictionary keeps it: its four strings
// end to end in dictionary.lexText, from at. A quarter of a million words
// are then one array and one string, which a garbage collection marks as
// two objects, rather than a million strings it traces one by one.
type lexEntry struct {
	at                                     uint32 // text starts here in lexText
	textEnd, surfaceEnd, readingOfEnd, end uint32 // and ends, then surface, readingOf, reading
	place, bigPlace                        bool
	splitDone                              bool   // split is known
	split                                  uint64 // where kagome splits the word; see analysis.splitOf
}

// word returns lexicon word id.
func (d *dictionary) word(id int32) lexWord {
	e := &d.lex[id]
	return lexWord{
		id:        id,
		text:      d.lexText[e.at:e.textEnd],
		surface:   d.lexText[e.textEnd:e.surfaceEnd],
		readingOf: d.lexText[e.surfaceEnd:e.readingOfEnd],
		reading:   d.lexText[e.readingOfEnd:e.end],
		place:     e.place,
		bigPlace:  e.bigPlace,
	}
}

// keepLexicon keeps words as d.lex and d.lexText.
func (d *dictionary) keepLexicon(words []lexWord) {
	size := 0
	for i := range words {
		w := &words[i]
		size += len(w.text) + len(w.surface) + len(w.readingOf) + len(w.reading)
	}
	var b strings.Builder
	b.Grow(size)
	d.lex = make([]lexEntry, len(words))
	for i := range words {
		w := &words[i]
		e := &d.lex[i]
		e.at = uint32(b.Len())
		b.WriteString(w.text)
		e.textEnd = uint32(b.Len())
		b.WriteString(w.surface)
		e.surfaceEnd = uint32(b.Len())
		b.WriteString(w.readingOf)
		e.readingOfEnd = uint32(b.Len())
		b.WriteString(w.reading)
		e.end = uint32(b.Len())
		e.place, e.bigPlace = w.place, w.bigPlace
	}
	d.lexText = b.String()
}

// majorPlaceCost is the highest dictionary cost (kagome's word weight,
// lower for commoner words) of a place name whose reading blocks a
// keyword's reading it straddles (see straddlers): 東京 is 3003, 新宿 read
// シンジュク 3251, 横浜 5761, 梅田 6944, where the many small places that
// share a reading with common words (草本 ソウホン, 親和 シンワ) are over 8,000.
const majorPlaceCost = 7000

// userDictText is navad's user dictionary, with the words the IPA
// dictionary lacks.
//
//go:embed userdict.txt
var userDictText string

// Contents columns of the IPA dictionary, after the part of speech.
const (
	ipaInflForm = ipa.InflectionalForm - ipa.POSHierarchy
	ipaBase     = ipa.BaseForm - ipa.POSHierarchy
	ipaReading  = ipa.Reading - ipa.POSHierarchy
)

var (
	dictOnce   sync.Once
	sharedDict atomic.Pointer[dictionary]
)

// ipaEntries returns the entry table of kagome's IPA dictionary d, built
// on the first call, which then drops d's Contents and its parts of speech
// (POSTable.POSs). kagome keeps an entry's features as a slice of strings
// and its part of speech as a slice of numbers: 2.8 million pointers and
// 590,000 objects that every garbage collection of the server would trace
// (7 of the 38 ms a collection of the national index took on one
// processor), for the base forms, readings and parts of speech that are
// all navad reads of them. The rest of the dictionary, which the tokenizer
// uses, stays. d is ipa.Dict()'s, shared by the process, so every
// dictionary loaded reads the one table.
//
// kagome's tokens of known words then have no features of their own:
// their Features, FeatureAt, POS and Reading would index the dropped
// slices. tokenReading and tokenPOS read the table instead.
func ipaEntries(d *dict.Dict) *entryTable {
	ipaOnce.Do(func() {
		ipaTable = newEntryTable(d.Contents, d.POSTable)
		d.Contents = nil
		d.POSTable.POSs = nil
	})
	return ipaTable
}

var (
	ipaOnce  sync.Once
	ipaTable *entryTable
)

// entryTable holds what navad reads of kagome's dictionary entries, by
// entry ID: the base form and the reading, end to end in one string,
// whether the entry is uninflected, and its part of speech.
type entryTable struct {
	text        string
	ends        []uint32 // entry id's base form ends at ends[2*id], its reading at ends[2*id+1]
	has, uninfl []uint64 // bit id: the entry has a base form and a reading; its inflected form is its base
	posOf       []uint16 // entry id's part of speech is posList[posOf[id]]
	posList     [][]string
}

// newEntryTable builds the table of entries with the given contents
// (features after the part of speech) and parts of speech, which kagome
// keeps by entry ID in pos.POSs. Parts of speech are few (some hundreds
// in the IPA dictionary), so each is kept once.
func newEntryTable(contents [][]string, pos dict.POSTable) *entryTable {
	n := len(contents)
	t := &entryTable{ends: make([]uint32, 0, 2*n), has: make([]uint64, (n+63)/64), uninfl: make([]uint64, (n+63)/64)}
	t.posOf = make([]uint16, len(pos.POSs))
	seen := map[string]uint16{}
	var key []byte
	for id, p := range pos.POSs {
		key = key[:0]
		for _, x := range p {
			key = append(key, byte(x>>8), byte(x))
		}
		i, ok := seen[string(key)]
		if !ok {
			if len(t.posList) > math.MaxUint16 {
				panic("campaigns: more parts of speech than an entry table holds")
			}
			i = uint16(len(t.posList))
			seen[string(key)] = i
			names := make([]string, len(p))
			for j, x := range p {
				if int(x) < len(pos.NameList) {
					names[j] = pos.NameList[x]
				}
			}
			t.posList = append(t.posList, names)
		}
		t.posOf[id] = i
	}
	var b strings.Builder
	for id, c := range contents {
		if len(c) > ipaReading {
			b.WriteString(c[ipaBase])
			t.ends = append(t.ends, uint32(b.Len()))
			b.WriteString(c[ipaReading])
			t.has[id/64] |= 1 << (id % 64)
			if f := c[ipaInflForm]; f == "*" || f == "基本形" {
				t.uninfl[id/64] |= 1 << (id % 64)
			}
		} else {
			t.ends = append(t.ends, uint32(b.Len()))
		}
		t.ends = append(t.ends, uint32(b.Len()))
	}
	t.text = b.String()
	return t
}

// entry returns entry id's base form and reading; ok is false when the
// entry has none, or there is no such entry.
func (t *entryTable) entry(id int) (base, reading string, ok bool) {
	if !bit(t.has, id) {
		return "", "", false
	}
	b0, b1 := piece(t.ends, 2*id)
	r0, r1 := piece(t.ends, 2*id+1)
	return t.text[b0:b1], t.text[r0:r1], true
}

// piece returns where piece i of a run of pieces end to end starts and
// ends, given where each ends.
func piece(ends []uint32, i int) (start, end uint32) {
	if i > 0 {
		start = ends[i-1]
	}
	return start, ends[i]
}

// uninflected reports whether entry id is a word's base form (or does not
// inflect).
func (t *entryTable) uninflected(id int) bool { return bit(t.uninfl, id) }

// pos returns entry id's part of speech (名詞, 固有名詞, 地域, ...), nil for
// no such entry. The caller must not modify it.
func (t *entryTable) pos(id int) []string {
	if id < 0 || id >= len(t.posOf) {
		return nil
	}
	return t.posList[t.posOf[id]]
}

// size returns how many entries the table holds.
func (t *entryTable) size() int { return max(len(t.posOf), len(t.ends)/2) }

func bit(set []uint64, i int) bool {
	return i >= 0 && i/64 < len(set) && set[i/64]&(1<<(i%64)) != 0
}

// japaneseDictionary returns the shared dictionary, loading it on first use.
func japaneseDictionary() *dictionary {
	dictOnce.Do(func() { sharedDict.Store(loadDictionary()) })
	return sharedDict.Load()
}

// LoadDictionary loads the dictionary that keyword analysis uses, unless it
// is loaded already: 1–2 s of CPU and about 86 MB, paid by the first
// campaign analysed otherwise. A server starting from a large catalogue
// calls it on a goroutine of its own first, so that the load overlaps
// reading the catalogue instead of following it. Safe for concurrent use;
// callers that need the dictionary wait for a load in progress.
func LoadDictionary() { japaneseDictionary() }

// loadDictionary loads the dictionary: from the snapshot named by
// DictionarySnapshotEnv when that is set (see there), from kagome's
// embedded IPA dictionary otherwise.
func loadDictionary() *dictionary {
	if path := os.Getenv(DictionarySnapshotEnv); path != "" {
		return dictionaryFrom(path)
	}
	return loadFresh()
}

// loadFresh loads kagome's IPA dictionary and builds navad's tables and
// lexicon on it.
func loadFresh() *dictionary {
	t0 := time.Now()
	d := &dictionary{dict: ipa.Dict()}
	d.entries = ipaEntries(d.dict)
	d.buildAnalyser()
	d.analyserTime = time.Since(t0)
	d.buildLexicon()
	d.buildRomajiWords()
	d.loadTime = time.Since(t0)
	return d
}

// buildAnalyser builds d's user dictionary (userdict.txt) and its
// tokenizer on d.dict.
func (d *dictionary) buildAnalyser() {
	records, err := dict.NewUserDicRecords(strings.NewReader(userDictText))
	if err != nil {
		panic("campaigns: userdict.txt: " + err.Error()) // embedded; a test reads it
	}
	user, err := records.NewUserDict()
	if err != nil {
		panic("campaigns: userdict.txt: " + err.Error())
	}
	tok, err := tokenizer.New(d.dict, tokenizer.OmitBosEos(), tokenizer.UserDict(user))
	if err != nil {
		panic("campaigns: IPA dictionary: " + err.Error()) // embedded; cannot fail
	}
	d.user = records
	d.tok = tok
}

// buildLexicon collects the dictionary's uninflected words (nouns, and the
// base forms of the rest) by normalized spelling and by reading.
func (d *dictionary) buildLexicon() {
	// Sized for the IPA dictionary's words and readings (245,619 from its
	// 392,127 entries): grown from empty, the map and the slice took about
	// a quarter of the lexicon's build.
	hint := d.entries.size() * 2 / 3
	index := make(map[string]int32, hint)
	words := make([]lexWord, 0, hint)
	add := func(text string) *lexWord {
		i, ok := index[text]
		if !ok {
			i = int32(len(words))
			index[text] = i
			words = append(words, lexWord{id: i, text: text})
		}
		return &words[i]
	}
	kata := map[string]struct{}{}
	for id := range d.entries.size() {
		surface, reading, ok := d.entries.entry(id)
		pos := d.entries.pos(id)
		if !ok || len(pos) == 0 || !d.entries.uninflected(id) {
			continue
		}
		switch pos[0] {
		case "助詞", "助動詞", "記号", "フィラー", "その他":
			continue
		}
		proper := len(pos) > 1 && pos[1] == "固有名詞"
		text := Normalize(surface)
		if text == "" || strings.IndexByte(text, ' ') >= 0 {
			continue
		}
		w := add(text)
		if w.surface == "" {
			w.surface = surface
			w.reading = Normalize(reading)
		}
		if proper && len(pos) > 2 && pos[2] == "地域" {
			w.place = true
			w.bigPlace = w.bigPlace || id < len(d.dict.Morphs) && d.dict.Morphs[id].Weight <= majorPlaceCost
		}
		// Names of one kana and a long-vowel mark (ハー, ウー) are left out
		// of the katakana words: they turn up inside longer words (ハーバー,
		// ウーバー) far more often than before a product, and would make
		// those seem to end in バー. Other names stay (スナックユキ,
		// カフェマリー, ボブカット are a word and a name).
		person := proper && len(pos) > 2 && pos[2] == "人名" &&
			utf8.RuneCountInString(text) == 2 && strings.HasSuffix(text, "ー")
		if !person && isKatakanaWord(normalizeKeepHiragana(surface)) && utf8.RuneCountInString(text) >= 2 {
			kata[text] = struct{}{}
		}
		// Readings of names (ミサカヤマ) are left out: nobody types them in
		// kana, and there are many.
		if r := Normalize(reading); !proper && isKatakanaWord(r) {
			if w := add(r); w.readingOf == "" {
				w.readingOf = surface
			}
		}
	}
	for _, u := range d.user {
		if w := add(Normalize(u.Text)); w.surface == "" {
			w.surface = u.Text
			w.reading = Normalize(strings.Join(u.Yomi, ""))
		}
		if w := add(Normalize(strings.Join(u.Yomi, ""))); w.readingOf == "" {
			w.readingOf = u.Text
		}
	}
	d.postings = newPostingIndex(words)
	d.placesByLast = map[rune][]int32{}
	for i, w := range words {
		if n := utf8.RuneCountInString(w.text); w.place && n >= 2 && n <= 3 && allHan(w.text) {
			last, _ := utf8.DecodeLastRuneInString(w.text)
			d.placesByLast[last] = append(d.placesByLast[last], int32(i))
		}
	}
	d.kata = &kataLexicon{words: kata}
	for w := range kata {
		if n := utf8.RuneCountInString(w); n > d.kata.maxRunes {
			d.kata.maxRunes = n
		}
	}
	d.kata.maxRunes = min(d.kata.maxRunes, maxKataWord)
	d.keepLexicon(words)
}

// minRomajiWord is the fewest runes of a phonetic key that a known word
// needs to help read a romaji word: with words of one kana (蚊 カ, 胃 イ)
// almost anything could be read, and kaisha would be カ+イシャ (医者).
const minRomajiWord = 2

// buildRomajiWords builds d.romajiWords from the lexicon: the phonetic keys
// (see phoneticKey, each kana as kanaByte) of its words written in kana (ラーメン, the reading イザカヤ
// of 居酒屋) and of the readings of its place names (シンジュク), which
// people type in romaji before and after what they look for. Readings of
// other names are left out, as in the lexicon. Built on every load, from
// the snapshot too, as it is derived from the lexicon alone.
func (d *dictionary) buildRomajiWords() {
	seen := map[string]struct{}{}
	var keys []string
	add := func(kana string) {
		if !isKatakanaWord(kana) {
			return
		}
		k := phoneticKey(kana)
		if utf8.RuneCountInString(k) < minRomajiWord {
			return
		}
		k = kanaBytes(k)
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			keys = append(keys, k)
		}
	}
	for id := range d.lex {
		w := d.word(int32(id))
		add(w.text)
		if w.place {
			add(w.reading)
		}
	}
	d.romajiWords = newTrie(keys, make([]int32, len(keys)))
}

// romajiLexicon returns the phonetic keys of the dictionary's words, or
// nil when the dictionary was never needed (an index of Latin keywords
// only, which reads no romaji).
func romajiLexicon() *trie {
	if d := sharedDict.Load(); d != nil {
		return d.romajiWords
	}
	return nil
}

// postingIndex lists the words that contain a pair of runes (r1<<32 | r2)
// or a rune (r<<32 | 0xFFFFFFFF), each list in word order. The lists are
// pieces of one array, found through a map of numbers: 150,000 lists of
// their own would be as many objects, and pointers, for every garbage
// collection to trace.
type postingIndex struct {
	at  map[uint64]uint32 // key → its list's number n
	end []uint32          // list n is ids[end[n-1]:end[n]] (from 0 for n = 0)
	ids []int32
}

func newPostingIndex(words []lexWord) postingIndex {
	var buf []uint64
	keys := func(w string) []uint64 { // w's keys, each once
		buf = buf[:0]
		prev := rune(-1)
		for _, r := range w {
			buf = append(buf, uint64(r)<<32|0xFFFFFFFF)
			if prev >= 0 {
				buf = append(buf, uint64(prev)<<32|uint64(r))
			}
			prev = r
		}
		slices.Sort(buf)
		return slices.Compact(buf)
	}
	p := postingIndex{at: map[uint64]uint32{}}
	var count []uint32 // by list number
	for _, w := range words {
		for _, k := range keys(w.text) {
			n, ok := p.at[k]
			if !ok {
				n = uint32(len(count))
				p.at[k] = n
				count = append(count, 0)
			}
			count[n]++
		}
	}
	p.end = make([]uint32, len(count))
	total := uint32(0)
	for n, c := range count {
		total += c
		p.end[n] = total
	}
	p.ids = make([]int32, total)
	next := count // reused: where list n's next id goes, from its start
	for n := range next {
		next[n], _ = piece(p.end, n)
	}
	for i, w := range words {
		for _, k := range keys(w.text) {
			n := p.at[k]
			p.ids[next[n]] = int32(i)
			next[n]++
		}
	}
	return p
}

// get returns the list of key k, nil when no word has it.
func (p *postingIndex) get(k uint64) []int32 {
	n, ok := p.at[k]
	if !ok {
		return nil
	}
	start, end := piece(p.end, int(n))
	return p.ids[start:end:end]
}

// containing returns the ids of the dictionary words that contain s and are
// longer than s. It scans the words that share s's rarest pair of runes.
func (d *dictionary) containing(s string) []int32 {
	var best []int32
	first := true
	prev := rune(-1)
	try := func(k uint64) {
		if l := d.postings.get(k); first || len(l) < len(best) {
			best, first = l, false
		}
	}
	n := 0
	for _, r := range s {
		if prev >= 0 {
			try(uint64(prev)<<32 | uint64(r))
		}
		prev = r
		n++
	}
	if n == 1 {
		try(uint64(prev)<<32 | 0xFFFFFFFF)
	}
	var out []int32
	for _, i := range best {
		if w := d.word(i).text; len(w) > len(s) && strings.Contains(w, s) {
			out = append(out, i)
		}
	}
	return out
}

// isKatakanaWord reports whether s is all katakana (with ー), as loanwords
// are written.
func isKatakanaWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(0x30A1 <= r && r <= 0x30FA || r == 0x30FC) {
			return false
		}
	}
	return true
}

// maxKataWord caps the length of the katakana words used to split katakana
// compounds in queries, bounding the cost of a split.
const maxKataWord = 12

// kataLexicon knows the katakana words of the dictionary, to split the
// katakana compounds people type without spaces (コーヒーゼリー, カラオケバー)
// while keeping unknown words whole (バーミヤン does not contain バー).
type kataLexicon struct {
	words    map[string]struct{}
	maxRunes int
}

// kataWords returns the dictionary's katakana words, or nil when the
// dictionary was never needed (an index of Latin keywords only).
func kataWords() *kataLexicon {
	if d := sharedDict.Load(); d != nil {
		return d.kata
	}
	return nil
}

// maxKataRun caps the run of katakana that a query split examines.
const maxKataRun = 24

// splits reports whether a word may begin (left) or end (!left) between
// runes i-1 and i of a run of katakana typed as katakana: the rest of the
// run on that side must be made of dictionary words of two or more
// characters. Without a dictionary, a run has no inner boundaries.
func (k *kataLexicon) splits(q *Query, i int, left bool) bool {
	if k == nil {
		return false
	}
	lo, hi := i, i
	if left {
		for lo > 0 && q.info[lo]&spaceBefore == 0 && q.class(lo-1) == clsKata {
			lo--
		}
	} else {
		for hi < q.runes() && q.class(hi) == clsKata && (hi == i || q.info[hi]&spaceBefore == 0) {
			hi++
		}
	}
	if hi-lo > maxKataRun || hi-lo < 2 {
		return false
	}
	// reach[j-lo]: runes [lo, j) split into words.
	reach := q.reach[:0]
	for range hi - lo + 1 {
		reach = append(reach, false)
	}
	q.reach = reach
	reach[0] = true
	for j := lo; j < hi; j++ {
		if !reach[j-lo] {
			continue
		}
		for l := 2; l <= k.maxRunes && j+l <= hi; l++ {
			if _, ok := k.words[string(q.cmp[q.start[j]:q.start[j+l]])]; ok {
				reach[j+l-lo] = true
			}
		}
	}
	return reach[hi-lo]
}
