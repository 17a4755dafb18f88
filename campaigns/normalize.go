package campaigns

import (
	"bytes"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Normalize folds text the way people type it on phones, so that the
// spellings of one word compare equal:
//
//   - Unicode NFKC and full case folding: full-width ＩＺＡＫＡＹＡ and
//     half-width ｲｻﾞｶﾔ become izakaya and イザカヤ;
//   - hiragana becomes katakana (いざかや → イザカヤ), and the small ヵ and ヶ
//     become カ and ケ;
//   - a hyphen, minus sign or wave dash between two kana is a long-vowel mark
//     (ら〜めん, ラ-メン → ラーメン);
//   - white space (including the full-width space U+3000), control
//     characters, punctuation and symbols separate words, and runs of them
//     collapse into one ASCII space with none at either end. A hyphen,
//     apostrophe, full stop or ampersand between two Latin letters or digits
//     stays (7-eleven, mcdonald's, b&b).
//
// Invalid UTF-8 bytes separate words like punctuation. Normalize never
// panics and is idempotent: Normalize(Normalize(s)) == Normalize(s).
// It returns s itself, without allocating, when s is already normalized.
func Normalize(s string) string {
	n := normalizerPool.Get().(*normalizer)
	out := n.normalize(s, false)
	res := s
	if string(out) != s {
		res = string(out)
	}
	normalizerPool.Put(n)
	return res
}

// normalizeKeepHiragana is Normalize without the hiragana-to-katakana fold.
// The morphological analyser reads keywords in this form: it needs the
// hiragana to tell particles and okurigana from loanwords. The result has the
// same runes as Normalize's, except that hiragana stay hiragana.
func normalizeKeepHiragana(s string) string {
	n := normalizerPool.Get().(*normalizer)
	res := string(n.normalize(s, true))
	normalizerPool.Put(n)
	return res
}

var normalizerPool = sync.Pool{New: func() any { return new(normalizer) }}

// normalizer holds the buffers of one normalization, so that a reused
// normalizer (one per Query) allocates nothing for typical input.
// The zero value is ready to use; it is not safe for concurrent use.
type normalizer struct {
	runes []rune // stage 1 output: code points after NFKC and case folding
	out   []byte // stage 2 output: the normalized text
	outR  []rune // out as runes, so that Query.Parse need not decode it again
	// hira[i] reports whether the i-th rune of out was typed as hiragana (it
	// is katakana in out). Matching uses it to tell words typed in katakana,
	// which are loanwords, from kana spellings of native words.
	hira []bool

	// Slow path scratch.
	src, nfkc, folded, again, prev []byte
	prevHira                       []bool
	caser                          cases.Caser
	hasCaser                       bool
}

// normalize returns the normalized form of s in a buffer owned by n and valid
// until the next call.
func (n *normalizer) normalize(s string, keepHiragana bool) []byte {
	if n.fastRunes(s) {
		n.fold(keepHiragana)
		return n.out
	}
	n.slowRunes(s)
	n.fold(keepHiragana)
	// Folding kana and separators next to combining marks may, in rare
	// cases, give text that NFKC would change again. Repeat until nothing
	// changes, so that Normalize is idempotent. A repeat reads text whose
	// hiragana are folded already, so it keeps the first round's hira
	// flags when the text does not change.
	n.prevHira = append(n.prevHira[:0], n.hira...)
	for range 3 {
		n.prev = append(n.prev[:0], n.out...)
		if n.fastRunes(string(n.prev)) {
			break // text of the fast set is a fixed point of stage 2
		}
		n.slowRunes(string(n.prev))
		n.fold(keepHiragana)
		if bytes.Equal(n.prev, n.out) {
			n.hira = append(n.hira[:0], n.prevHira...)
			break
		}
		clear(n.hira) // the first round folded the hiragana
		n.prevHira = append(n.prevHira[:0], n.hira...)
	}
	return n.out
}

// fastRunes decodes s into n.runes, doing NFKC and case folding by table for
// the characters people type in Japanese and Latin searches (ASCII, kana,
// common kanji, full-width ASCII, half-width katakana). It reports false,
// leaving n.runes undefined, when s has any other character; then the slow
// path uses golang.org/x/text, which takes several microseconds.
func (n *normalizer) fastRunes(s string) bool {
	rs := n.runes[:0]
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			rs = append(rs, rune(c))
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError && size == 1 {
			rs = append(rs, ' ') // an invalid byte separates words
			continue
		}
		m, ok := fastRune(r)
		if !ok {
			return false
		}
		if m == halfwidthKana {
			m = halfwidth[r-0xFF61]
			if i < len(s) {
				if mark, msize := utf8.DecodeRuneInString(s[i:]); mark == 0xFF9E || mark == 0xFF9F {
					v := voiced(m, mark == 0xFF9F)
					if v == 0 {
						return false // NFKC keeps a combining mark here
					}
					m = v
					i += msize
				}
			}
			if m == 0x3099 || m == 0x309A {
				return false // a lone sound mark: NFKC keeps it combining
			}
		}
		rs = append(rs, m)
	}
	n.runes = rs
	return true
}

// halfwidthKana marks a half-width katakana in fastRune's result.
const halfwidthKana = -1

// fastRune maps r as NFKC and case folding would, for the characters the fast
// path handles, and reports whether it is one of them.
func fastRune(r rune) (rune, bool) {
	switch {
	case 0x3041 <= r && r <= 0x3096, r == 0x309D, r == 0x309E: // hiragana
		return r, true
	case 0x30A1 <= r && r <= 0x30FE: // katakana, ・, ー, ヽ, ヾ
		return r, true
	case 0x4E00 <= r && r <= 0x9FFF, 0x3400 <= r && r <= 0x4DBF: // kanji
		return r, true
	case r == 0x3000: // ideographic space
		return ' ', true
	case 0x3001 <= r && r <= 0x3003, 0x3005 <= r && r <= 0x3007, 0x300C <= r && r <= 0x3011, r == 0x301C:
		return r, true // 、。〃 々〆〇 「」『』【】 〜
	case r == 0x2010, 0x2013 <= r && r <= 0x2015, r == 0x2212: // dashes, minus
		return r, true
	case 0xFF01 <= r && r <= 0xFF5E: // full-width ASCII
		r -= 0xFEE0
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r, true
	case 0xFF61 <= r && r <= 0xFF9F: // half-width katakana and marks
		return halfwidthKana, true
	}
	return 0, false
}

var (
	// halfwidth maps U+FF61..U+FF9F to what NFKC makes of each alone.
	halfwidth [0xFF9F - 0xFF61 + 1]rune
	// dakuten and handakuten map a katakana (index r-0x30A0) to its voiced
	// form (ガ, パ), or 0 where Unicode has none.
	dakuten, handakuten [0x60]rune
)

func init() {
	// Derived from x/text's NFKC and NFC tables rather than typed in, so
	// that the fast path agrees with the slow one by construction.
	for r := rune(0xFF61); r <= 0xFF9F; r++ {
		m := []rune(norm.NFKC.String(string(r)))
		if len(m) == 1 {
			halfwidth[r-0xFF61] = m[0]
		}
	}
	for r := rune(0x30A0); r < 0x3100; r++ {
		if m := []rune(norm.NFC.String(string(r) + "\u3099")); len(m) == 1 {
			dakuten[r-0x30A0] = m[0]
		}
		if m := []rune(norm.NFC.String(string(r) + "\u309A")); len(m) == 1 {
			handakuten[r-0x30A0] = m[0]
		}
	}
}

// voiced returns katakana k with a dakuten (or a handakuten when semi), or 0.
func voiced(k rune, semi bool) rune {
	if k < 0x30A0 || k >= 0x3100 {
		return 0
	}
	if semi {
		return handakuten[k-0x30A0]
	}
	return dakuten[k-0x30A0]
}

// slowRunes decodes s into n.runes after full NFKC and case folding with
// golang.org/x/text, repeated until stable. It allocates.
func (n *normalizer) slowRunes(s string) {
	if !n.hasCaser {
		n.caser = cases.Fold()
		n.hasCaser = true
	}
	// Invalid bytes separate words; replace them first, because NFKC
	// passes them through and case folding would turn them into U+FFFD.
	cur := n.src[:0]
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			cur = append(cur, ' ')
		case isInvisible(r):
			// Neither a word nor a space between words (☕️, 葛󠄀,
			// iza-kaya with a soft hyphen).
		default:
			cur = append(cur, s[i:i+size]...)
		}
		i += size
	}
	for range 4 {
		n.nfkc = norm.NFKC.Append(n.nfkc[:0], cur...)
		n.folded = n.foldCase(n.folded, n.nfkc)
		n.again = norm.NFKC.Append(n.again[:0], n.folded...)
		if bytes.Equal(n.again, cur) {
			break
		}
		cur = append(cur[:0], n.again...)
	}
	n.src = cur
	rs := n.runes[:0]
	for _, r := range string(n.again) {
		rs = append(rs, r)
	}
	n.runes = rs
}

// foldCase appends the full case folding of b to dst[:0].
func (n *normalizer) foldCase(dst, b []byte) []byte {
	dst = dst[:cap(dst)]
	if len(dst) < 2*len(b)+16 {
		dst = make([]byte, 2*len(b)+16)
	}
	for {
		n.caser.Reset()
		nDst, _, err := n.caser.Transform(dst, b, true)
		if err == nil {
			return dst[:nDst]
		}
		dst = make([]byte, 2*len(dst))
	}
}

// fold is stage 2: it turns n.runes into n.out, folding kana and collapsing
// separators, and records which runes were hiragana.
func (n *normalizer) fold(keepHiragana bool) {
	out := n.out[:0]
	outR := n.outR[:0]
	hira := n.hira[:0]
	rs := n.runes
	space := false
	for i, r := range rs {
		k, h := r, false
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			// Letters and digits, the commonest runes of romaji, as they are.
		case 0x3041 <= r && r <= 0x3096, r == 0x309D, r == 0x309E:
			h = true
			switch {
			case r == 0x3095, r == 0x3096:
				k = smallKa(r+0x60, keepHiragana)
			case !keepHiragana:
				k = r + 0x60
			}
		case r == 0x30F5, r == 0x30F6:
			k = smallKa(r, false)
		case isHyphenLike(r):
			prev, next := runeAt(rs, i-1), runeAt(rs, i+1)
			switch {
			case isKana(prev) && isKana(next):
				k = 0x30FC
			case (r == '-' || r == 0x2010 || r == 0x2212) && isAlnum(prev) && isAlnum(next):
				k = '-' // HYPHEN and MINUS SIGN as the ASCII hyphen (7‐Eleven)
			default:
				k = -1
			}
		case r == '\'' || r == 0x2019 || r == '.' || r == '&':
			if r == 0x2019 {
				k = '\''
			}
			if !isAlnum(runeAt(rs, i-1)) || !isAlnum(runeAt(rs, i+1)) {
				k = -1
			}
		case isSeparator(r):
			k = -1
		}
		if k < 0 {
			space = len(out) > 0
			continue
		}
		if space {
			out = append(out, ' ')
			outR = append(outR, ' ')
			hira = append(hira, false)
			space = false
		}
		out = utf8.AppendRune(out, k)
		outR = append(outR, k)
		hira = append(hira, h)
	}
	n.out = out
	n.outR = outR
	n.hira = hira
}

// smallKa folds the small ヵ and ヶ (as in 一ヶ月) into カ and ケ, or into
// か and け when keeping hiragana.
func smallKa(r rune, hiragana bool) rune {
	k := rune(0x30AB) // カ
	if r == 0x30F6 {
		k = 0x30B1 // ケ
	}
	if hiragana {
		k -= 0x60
	}
	return k
}

func runeAt(rs []rune, i int) rune {
	if i < 0 || i >= len(rs) {
		return -1
	}
	return rs[i]
}

// isHyphenLike reports the dashes and waves that people type for a long
// vowel in kana, or as a hyphen in Latin words.
func isHyphenLike(r rune) bool {
	switch r {
	case '-', '~', 0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0x301C, 0x30A0, 0xFE63, 0x2053:
		return true
	}
	return false
}

// isInvisible reports the characters that change nothing a reader sees of a
// word: the variation selectors, which choose a glyph (emoji or text
// presentation, a kanji's variant), the soft hyphen, and the zero-width
// space, joiners and no-break space that text copied from web pages and
// documents carries.
func isInvisible(r rune) bool {
	switch {
	case 0xFE00 <= r && r <= 0xFE0F, 0xE0100 <= r && r <= 0xE01EF:
		return true
	case r == 0x00AD, 0x200B <= r && r <= 0x200D, r == 0x2060, r == 0xFEFF:
		return true
	}
	return false
}

// isKana reports hiragana, katakana and the long-vowel mark.
func isKana(r rune) bool {
	return 0x3041 <= r && r <= 0x3096 || 0x30A1 <= r && r <= 0x30FA || r == 0x30FC
}

// isHan reports kanji and the kanji-like marks 々, 〆 and 〇.
func isHan(r rune) bool {
	switch {
	case r < 0x3005:
		return false
	case r <= 0x3007, 0x4E00 <= r && r <= 0x9FFF:
		return true
	case 0x3040 <= r && r <= 0x30FF:
		return false // kana, the commonest case after kanji
	}
	return unicode.Is(unicode.Han, r)
}

// isAlnum reports letters and digits of alphabetic scripts: everything
// letter-like that is not kanji or kana.
func isAlnum(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || 'A' <= r && r <= 'Z'
	}
	if r < 0 || isKana(r) || isHan(r) || r == 0x30FC || (0x3040 <= r && r <= 0x30FF) {
		return false
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}

// isSeparator reports runes that are not part of any word: white space,
// controls, punctuation, symbols and anything else that is not a letter, a
// combining mark or a number.
func isSeparator(r rune) bool {
	if r < utf8.RuneSelf {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || 'A' <= r && r <= 'Z')
	}
	switch {
	case r == utf8.RuneError:
		return true
	case 0x3041 <= r && r <= 0x3096, 0x30A1 <= r && r <= 0x30FA, 0x4E00 <= r && r <= 0x9FFF:
		return false // kana and kanji, without a table search
	}
	return !(unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r))
}
