package campaigns

import (
	"strings"
	"unicode/utf8"
)

// Romaji is read by hand-written tables: no romaji library is available, and
// the job is small. One table reads the Hepburn (shi, chi, tsu, fu, ja,
// shimbun), Kunrei-shiki and Nihon-shiki (si, ti, tu, hu, zya, sinbun)
// systems and the way people type romaji into an IME (nn, xtu-less double
// consonants, ra-men), so a query need not say which it uses.
//
// Romaji spellings disagree most about long vowels (Tōkyō, Toukyou, Tokyo,
// Tohkyoh, Tookyoo) and ぢ/づ (ji, zu, di, du). So romaji is compared by a
// phonetic key of the kana it spells, which drops those differences: see
// phoneticKey. The key of a keyword is computed from its kana spelling or its
// reading when the index is built; the key of a query from its Latin words
// when it is parsed.

// romajiTable maps each romaji syllable to katakana. Where systems differ,
// all their spellings are listed.
var romajiTable = func() map[string]string {
	m := map[string]string{}
	add := func(list string) {
		for _, pair := range strings.Fields(list) {
			k, v, _ := strings.Cut(pair, ":")
			m[k] = v
		}
	}
	add(`a:ア i:イ u:ウ e:エ o:オ
	ka:カ ki:キ ku:ク ke:ケ ko:コ kya:キャ kyu:キュ kyo:キョ kye:キェ
	ga:ガ gi:ギ gu:グ ge:ゲ go:ゴ gya:ギャ gyu:ギュ gyo:ギョ gye:ギェ
	sa:サ si:シ shi:シ su:ス se:セ so:ソ sya:シャ sha:シャ syu:シュ shu:シュ syo:ショ sho:ショ sye:シェ she:シェ
	za:ザ zi:ジ ji:ジ zu:ズ ze:ゼ zo:ゾ zya:ジャ ja:ジャ jya:ジャ zyu:ジュ ju:ジュ jyu:ジュ zyo:ジョ jo:ジョ jyo:ジョ zye:ジェ je:ジェ jye:ジェ
	ta:タ ti:チ chi:チ tu:ツ tsu:ツ te:テ to:ト tya:チャ cha:チャ cya:チャ tyu:チュ chu:チュ cyu:チュ tyo:チョ cho:チョ cyo:チョ tye:チェ che:チェ
	tsa:ツァ tsi:ツィ tse:ツェ tso:ツォ thi:ティ thu:テュ twu:トゥ
	da:ダ di:ヂ du:ヅ de:デ do:ド dya:ヂャ dyu:ヂュ dyo:ヂョ dhi:ディ dhu:デュ dwu:ドゥ
	na:ナ ni:ニ nu:ヌ ne:ネ no:ノ nya:ニャ nyu:ニュ nyo:ニョ nye:ニェ
	ha:ハ hi:ヒ hu:フ fu:フ he:ヘ ho:ホ hya:ヒャ hyu:ヒュ hyo:ヒョ hye:ヒェ
	fa:ファ fi:フィ fe:フェ fo:フォ fya:フャ fyu:フュ fyo:フョ
	ba:バ bi:ビ bu:ブ be:ベ bo:ボ bya:ビャ byu:ビュ byo:ビョ
	pa:パ pi:ピ pu:プ pe:ペ po:ポ pya:ピャ pyu:ピュ pyo:ピョ
	ma:マ mi:ミ mu:ム me:メ mo:モ mya:ミャ myu:ミュ myo:ミョ
	ya:ヤ yu:ユ yo:ヨ ye:イェ
	ra:ラ ri:リ ru:ル re:レ ro:ロ rya:リャ ryu:リュ ryo:リョ
	wa:ワ wi:ウィ we:ウェ wo:ヲ
	va:ヴァ vi:ヴィ vu:ヴ ve:ヴェ vo:ヴォ`)
	return m
}()

// romajiCode numbers a syllable of one to three lowercase letters, for
// romajiIndex; it reports false for anything longer or not a-z.
func romajiCode(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 3 {
		return 0, false
	}
	code := 0
	for _, c := range b {
		if c < 'a' || c > 'z' {
			return 0, false
		}
		code = code*27 + int(c-'a'+1)
	}
	return code, true
}

// romajiIndex is romajiTable as an array, looked up without hashing:
// romajiIndex[romajiCode(s)] is 1 + the position of s's kana in romajiKana,
// or 0 when s is not a syllable.
var romajiIndex, romajiKana = func() (*[27 * 27 * 27]uint8, []string) {
	var ix [27 * 27 * 27]uint8
	var kana []string
	for k, v := range romajiTable {
		code, ok := romajiCode([]byte(k))
		if !ok || len(kana) >= 255 {
			panic("romaji table: bad syllable " + k)
		}
		kana = append(kana, v)
		ix[code] = uint8(len(kana))
	}
	return &ix, kana
}()

// romajiSyllable returns the kana of syllable b, if it is one.
func romajiSyllable(b []byte) (string, bool) {
	code, ok := romajiCode(b)
	if !ok || romajiIndex[code] == 0 {
		return "", false
	}
	return romajiKana[romajiIndex[code]-1], true
}

// romajiVowels maps vowels, plain and long (macron, circumflex), to kana.
func romajiVowel(r rune) (kana rune, long, ok bool) {
	switch r {
	case 'a':
		return 'ア', false, true
	case 'i':
		return 'イ', false, true
	case 'u':
		return 'ウ', false, true
	case 'e':
		return 'エ', false, true
	case 'o':
		return 'オ', false, true
	case 'ā', 'â':
		return 'ア', true, true
	case 'ī', 'î':
		return 'イ', true, true
	case 'ū', 'û':
		return 'ウ', true, true
	case 'ē', 'ê':
		return 'エ', true, true
	case 'ō', 'ô':
		return 'オ', true, true
	}
	return 0, false, false
}

// plainVowel maps a vowel kana to its romaji letter.
var plainVowel = map[rune]rune{'ア': 'a', 'イ': 'i', 'ウ': 'u', 'エ': 'e', 'オ': 'o'}

func isRomajiVowel(r rune) bool {
	_, _, ok := romajiVowel(r)
	return ok
}

// romajiToKana reads the romaji word w (lowercase) and calls emit for each
// kana with the index in w of the letter where its syllable starts. A
// hyphen after a vowel is a long-vowel mark (ra-men); after n, or doubled,
// it separates syllables. It reports false when w is not romaji (English
// words mostly are not: coffee is コッフェエ, but cafe fails on c).
func romajiToKana(w []rune, emit func(k rune, at int)) bool {
	at := func(i int) rune {
		if i < len(w) {
			return w[i]
		}
		return 0
	}
	var last rune // the last kana emitted
	put := func(k rune, i int) {
		emit(k, i)
		last = k
	}
	for i := 0; i < len(w); {
		c, next := w[i], at(i+1)
		if k, _, ok := romajiVowel(c); ok {
			put(k, i)
			i++
			continue
		}
		switch {
		case c == '-':
			if vowelOf(last) != 0 {
				put('ー', i)
			}
			i++
			continue
		case c == '\'':
			i++
			continue
		case c == 'n' && next == '\'':
			put('ン', i)
			i += 2
			continue
		case c == 'n' && next == 'n':
			// nn is ン as typed into an IME; before a vowel the second n
			// begins the next syllable, as Hepburn writes おんな onna.
			put('ン', i)
			if n2 := at(i + 2); isRomajiVowel(n2) || n2 == 'y' {
				i++
			} else {
				i += 2
			}
			continue
		case c == 'n' && !isRomajiVowel(next) && next != 'y':
			put('ン', i)
			i++
			continue
		case c == 'm' && (next == 'b' || next == 'm' || next == 'p'):
			put('ン', i) // Hepburn shimbun, tempura
			i++
			continue
		case c == next && c >= 'a' && c <= 'z' && !isRomajiVowel(c):
			put('ッ', i) // kitte
			i++
			continue
		case c == 't' && next == 'c' && at(i+2) == 'h':
			put('ッ', i) // matcha
			i++
			continue
		case c == 'h' && vowelOf(last) == 'o' && !isRomajiVowel(next) && next != 'y':
			put('ー', i) // passport Hepburn: Ohno, Satoh
			i++
			continue
		}
		matched := false
		for l := min(3, len(w)-i); l >= 2; l-- {
			var buf [3]byte
			ok := true
			for j := range l {
				r := w[i+j]
				if r >= utf8.RuneSelf {
					ok = false
					break
				}
				buf[j] = byte(r)
			}
			if !ok {
				continue
			}
			if k, found := romajiSyllable(buf[:l]); found {
				for _, r := range k {
					put(r, i)
				}
				i += l
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	return true
}

// vowelOf returns the vowel (a, i, u, e, o) a katakana ends in, or 0 for ン,
// ッ, ー and anything else.
func vowelOf(k rune) rune {
	if k < 0x30A1 || k > 0x30FA {
		return 0
	}
	return kanaVowels[k-0x30A1]
}

// kanaVowels lists the vowel of each katakana from ァ (U+30A1) to ヺ (U+30FA).
var kanaVowels = func() [0x30FA - 0x30A1 + 1]rune {
	var t [0x30FA - 0x30A1 + 1]rune
	rows := map[rune]string{
		'a': "ァアカガサザタダナハバパマャヤラヮワヵヷ",
		'i': "ィイキギシジチヂニヒビピミリヰヸ",
		'u': "ゥウクグスズッツヅヌフブプムュユルヴ",
		'e': "ェエケゲセゼテデネヘベペメレヱヶヹ",
		'o': "ォオコゴソゾトドノホボポモョヨロヲヺ",
	}
	for v, ks := range rows {
		for _, k := range ks {
			t[k-0x30A1] = v
		}
	}
	t['ッ'-0x30A1] = 0
	return t
}()

// keyRune folds kana that romaji cannot tell apart.
func keyRune(k rune) rune {
	switch k {
	case 'ヂ':
		return 'ジ'
	case 'ヅ':
		return 'ズ'
	case 'ヲ':
		return 'オ'
	case 'ヰ':
		return 'イ'
	case 'ヱ':
		return 'エ'
	}
	return k
}

// isPlainVowel reports the full-size vowel kana.
func isPlainVowel(k rune) bool {
	switch k {
	case 'ア', 'イ', 'ウ', 'エ', 'オ':
		return true
	}
	return false
}

// appendKey appends kana k to the phonetic key key, dropping what romaji
// spellings disagree on: ー, a vowel that lengthens the one before it
// (アア, イイ, ウウ, エエ, オオ, and ウ after an o: トウキョウ → トキョ), and the
// ぢ/じ, づ/ず distinctions. ei stays: Hepburn writes sensei. It reports
// whether k was kept.
func appendKey(key []rune, k rune) ([]rune, bool) {
	k = keyRune(k)
	if k == 'ー' {
		return key, false
	}
	if isPlainVowel(k) && len(key) > 0 {
		pv, v := vowelOf(key[len(key)-1]), vowelOf(k)
		if pv == v || k == 'ウ' && pv == 'o' {
			return key, false
		}
	}
	return append(key, k), true
}

// kanaByte numbers a katakana rune of a phonetic key (ァ to ヺ) as one
// byte, for romajiWords, whose walks then take a step per kana rather
// than three.
func kanaByte(k rune) byte { return byte(k - 0x30A0) }

// kanaBytes returns the phonetic key key with each rune as kanaByte.
func kanaBytes(key string) string {
	b := make([]byte, 0, len(key)/3)
	for _, r := range key {
		b = append(b, kanaByte(r))
	}
	return string(b)
}

// phoneticKeySplit returns the phonetic key of a katakana string, with the
// rune offsets of split (as in termForm) moved to the key's.
func phoneticKeySplit(kana string, split uint64) (string, uint64) {
	var key []rune
	var ks uint64
	i := int32(0)
	for _, r := range kana {
		if !isKana(r) {
			return "", 0
		}
		if splitAt(split, i) && len(key) < 63 {
			ks |= 1 << len(key)
		}
		key, _ = appendKey(key, r)
		i++
	}
	if splitAt(split, i) && len(key) < 63 {
		ks |= 1 << len(key)
	}
	return string(key), ks
}

// phoneticKey returns the phonetic key of a katakana string, or "" when it
// has anything but kana.
func phoneticKey(kana string) string {
	key, _ := phoneticKeySplit(kana, 0)
	return key
}

// latinToken is a word of Latin letters in a query that reads as romaji: its
// runes [s, e) of the compact text and its phonetic key q.key[keyLo:keyHi]
// (as rune indexes into q.keyStart).
type latinToken struct {
	s, e         int32
	keyLo, keyHi int32
}

// parseRomaji reads the query's Latin words as romaji, filling q.latin,
// q.key, q.keyStart and q.keyAt.
func (q *Query) parseRomaji() {
	q.latin = q.latin[:0]
	q.key = q.key[:0]
	q.keyKana = q.keyKana[:0]
	q.keyStart = q.keyStart[:0]
	q.keyAt = q.keyAt[:0]
	n := q.runes()
	for i := 0; i < n; {
		if q.class(i) != clsAlnum {
			i++
			continue
		}
		// A word ends at a space, at other script, and at a hyphen that is
		// not a long vowel (ramen-ya).
		j := i + 1
		for j < n && q.class(j) == clsAlnum && q.info[j]&spaceBefore == 0 && !q.hyphenBreak(j) {
			j++
		}
		q.romajiWord(int32(i), int32(j))
		i = j
		if i < n && q.hyphenBreak(i) {
			i++
		}
	}
	q.keyStart = append(q.keyStart, int32(len(q.key)))
}

// hyphenBreak reports a hyphen at rune i that follows a consonant.
func (q *Query) hyphenBreak(i int) bool {
	if q.cmp[q.start[i]] != '-' || i == 0 {
		return false
	}
	prev, _ := utf8.DecodeRune(q.cmp[q.start[i-1]:])
	return !isRomajiVowel(prev)
}

// romajiWord reads runes [s, e) of the compact text as romaji.
func (q *Query) romajiWord(s, e int32) {
	// w is the word with each long vowel (ō) written as vowel and hyphen
	// (o-), and pos the rune of cmp each letter of w comes from.
	w, pos := q.kana[:0], q.kanaAt[:0]
	for i := s; i < e; i++ {
		r, _ := utf8.DecodeRune(q.cmp[q.start[i]:])
		if k, long, ok := romajiVowel(r); ok && long {
			w = append(w, plainVowel[k], '-')
			pos = append(pos, i, i)
			continue
		}
		w = append(w, r)
		pos = append(pos, i)
	}
	q.kana, q.kanaAt = w, pos
	keyLo, keyLen, byteLen := len(q.keyStart), len(q.keyStart), len(q.key)
	var key []rune = q.keyRunes[:0]
	ok := romajiToKana(w, func(k rune, at int) {
		var kept bool
		key, kept = appendKey(key, k)
		if kept {
			q.keyStart = append(q.keyStart, int32(len(q.key)))
			q.key = utf8.AppendRune(q.key, key[len(key)-1])
			q.keyKana = append(q.keyKana, kanaByte(key[len(key)-1]))
			q.keyAt = append(q.keyAt, pos[at])
		}
	})
	q.keyRunes = key
	if !ok || len(q.keyStart) == keyLen {
		q.keyStart = q.keyStart[:keyLen]
		q.keyAt = q.keyAt[:keyLen]
		q.key = q.key[:byteLen]
		q.keyKana = q.keyKana[:keyLen]
		return
	}
	q.latin = append(q.latin, latinToken{s: s, e: e, keyLo: int32(keyLo), keyHi: int32(len(q.keyStart))})
}

// scanRomaji finds the phonetic keys of the index's terms in the query's
// romaji words. A word must be read whole, as known words in a row: a key
// found inside it counts only where the rest of the word reads as words
// of the dictionary (shinjukuizakaya is シンジュク+イザカヤ, 新宿 and 居酒屋), so
// that kaisha (会社) does not contain isha (医者). A key may run on into
// the next word (kan kohi is 缶コーヒー). The dictionary, not the other
// keywords of the index, decides what is a word: whether a keyword
// matches depends on it and the query alone, in whatever index it sits.
func (ix *KeywordIndex) scanRomaji(q *Query) {
	if len(q.latin) == 0 || ix.romaji.empty() {
		return
	}
	// Words separated only by spaces are read together.
	for g := 0; g < len(q.latin); {
		h := g + 1
		for h < len(q.latin) && q.latin[h].s == q.latin[h-1].e {
			h++
		}
		ix.scanRomajiWords(q, q.latin[g:h])
		g = h
	}
}

// romajiBlock is a key of the romaji trie that blocks some terms (entry
// ix.entries[entry]) found at key runes [s, e).
type romajiBlock struct {
	s, e, entry int32
}

// scanRomajiWords scans adjacent romaji words.
func (ix *KeywordIndex) scanRomajiWords(q *Query, words []latinToken) {
	t := ix.romaji
	lo, hi := int(words[0].keyLo), int(words[len(words)-1].keyHi)
	end := int(q.keyStart[hi])
	first := len(q.hits)
	q.romajiBlocks = q.romajiBlocks[:0]
	for p := lo; p < hi; p++ {
		node := uint32(0)
		for b := int(q.keyStart[p]); b < end; b++ {
			var ok bool
			node, ok = t.child(node, q.key[b])
			if !ok {
				break
			}
			v := t.valueAt(node)
			if v < 0 {
				continue
			}
			e := q.keyRuneAt(p, b+1)
			en := &ix.entries[v]
			for f := en.formLo; f < en.formHi; f++ {
				if ix.romajiUsable(q, f, int32(p), int32(e), words) {
					q.hits = append(q.hits, hit{term: ix.forms[f].term, form: f, s: int32(p), e: int32(e)})
				}
			}
			if en.blockHi > en.blockLo && !spansWords(words, int32(p), int32(e)) {
				q.romajiBlocks = append(q.romajiBlocks, romajiBlock{int32(p), int32(e), v})
			}
		}
	}
	found := q.hits[first:]
	if len(found) == 0 {
		return
	}
	// A hit counts where known words lead to it from the start of a word
	// and from it to the end of one: fwd[p] if words read from a word's
	// start reach key rune lo+p, bwd[p] if words read from there reach a
	// word's end. A hit spanning a whole word needs no dictionary.
	n := hi - lo
	reach := q.reach[:0]
	for range 2 * (n + 1) {
		reach = append(reach, false)
	}
	q.reach = reach
	fwd, bwd := reach[:n+1], reach[n+1:]
	for _, w := range words {
		fwd[int(w.keyLo)-lo] = true
		bwd[int(w.keyHi)-lo] = true
	}
	inner := false // whether some hit is not a whole word (or words)
	for _, h := range found {
		if !fwd[int(h.s)-lo] || !bwd[int(h.e)-lo] {
			inner = true
			break
		}
	}
	if inner {
		q.knownWordEdges(ix.romajiWords, words)
		for p := range n {
			if fwd[p] {
				for _, e := range q.edges[q.edgeAt[p]:q.edgeAt[p+1]] {
					fwd[int(e)-lo] = true
				}
			}
		}
		for p := n - 1; p >= 0; p-- {
			for _, e := range q.edges[q.edgeAt[p]:q.edgeAt[p+1]] {
				if bwd[int(e)-lo] {
					bwd[p] = true
					break
				}
			}
		}
	}
	kept := first
	for _, h := range found {
		// A hit inside a word must not begin or sit inside a longer
		// known word (shinjuku holds no シーン, read シン, nor ジュ): it
		// may end one, as 新宿 ends 西新宿.
		if inner && q.cover[int(h.s)-lo] > h.e {
			continue
		}
		if !fwd[int(h.s)-lo] || !bwd[int(h.e)-lo] || ix.romajiBlocked(q, h) {
			continue
		}
		// To runes of the compact text: a word begins where the one
		// before it ends, as spaces take no room there.
		h.s = q.keyAt[h.s]
		if int(h.e) == hi {
			h.e = words[len(words)-1].e
		} else {
			h.e = q.keyAt[h.e]
		}
		q.hits[kept] = h
		kept++
	}
	q.hits = q.hits[:kept]
}

// spansWords reports whether key runes [s, e) run on into another word: a
// blocking word must be typed whole, as pan jamu holds no パンジー.
func spansWords(words []latinToken, s, e int32) bool {
	for _, w := range words {
		if s < w.keyLo && w.keyLo < e {
			return true
		}
	}
	return false
}

// romajiBlocked reports whether a key found in the query blocks hit h (in
// key runes) of its term: it covers h and is not split at both its ends.
func (ix *KeywordIndex) romajiBlocked(q *Query, h hit) bool {
	for _, b := range q.romajiBlocks {
		if !covers(b.s, b.e, h.s, h.e) {
			continue
		}
		en := &ix.entries[b.entry]
		for _, tb := range ix.romajiBlocks[en.blockLo:en.blockHi] {
			if tb.term == h.term && blocksAt(tb.split, b.s, h.s, h.e) {
				return true
			}
		}
	}
	return false
}

// keyRuneAt returns the key rune that starts at byte b of q.key, or the
// number of key runes when b is its end, looking from key rune p on.
func (q *Query) keyRuneAt(p, b int) int {
	e := p + 1
	for int(q.keyStart[e]) < b {
		e++
	}
	return e
}

// knownWordEdges finds the words of lex (phonetic keys of dictionary
// words, see buildRomajiWords) in the romaji words words, each inside
// one of them: q.edges[q.edgeAt[p]:q.edgeAt[p+1]] are the key runes where
// those that begin at key rune lo+p end (lo the first word's first), and
// q.cover[p] the furthest any that begins at or before it reaches. A nil
// lex knows no words.
func (q *Query) knownWordEdges(lex *trie, words []latinToken) {
	lo, hi := int(words[0].keyLo), int(words[len(words)-1].keyHi)
	q.edges, q.edgeAt, q.cover = q.edges[:0], q.edgeAt[:0], q.cover[:0]
	cover := int32(lo)
	w := 0
	for p := lo; p < hi; p++ {
		q.edgeAt = append(q.edgeAt, int32(len(q.edges)))
		for int(words[w].keyHi) <= p {
			w++
		}
		if lex != nil {
			node := uint32(0)
			for k := p; k < int(words[w].keyHi); k++ {
				var ok bool
				node, ok = lex.child(node, q.keyKana[k])
				if !ok {
					break
				}
				if lex.valueAt(node) >= 0 {
					q.edges = append(q.edges, int32(k+1))
					cover = max(cover, int32(k+1))
				}
			}
		}
		q.cover = append(q.cover, cover)
	}
	q.edgeAt = append(q.edgeAt, int32(len(q.edges)))
	q.cover = append(q.cover, cover)
}

// romajiUsable reports whether form f found at key runes [s, e) may count: a
// reading needs a query without kanji, and a key of a short spelling (one
// or two kana, as あめ for 雨) must be a whole word, or amerika would be 雨
// and 理科 in an index that holds both.
func (ix *KeywordIndex) romajiUsable(q *Query, f uint32, s, e int32, words []latinToken) bool {
	form := &ix.forms[f]
	if form.kind.readingOnly() && q.hasKanji {
		return false
	}
	if form.short == notShort {
		return true
	}
	for _, w := range words {
		if w.keyLo == s && w.keyHi == e {
			return true
		}
	}
	return false
}
