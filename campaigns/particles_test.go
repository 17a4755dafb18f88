package campaigns

import "testing"

// TestKeywordWithWoGaMatchesItself: an exact or phrase keyword written with
// the particle を or が, which keywordTerms splits at, matches a search typed
// exactly like it; only の と や で に へ were taken between words.
func TestKeywordWithWoGaMatchesItself(t *testing.T) {
	mustTrigger(t, []triggerCase{
		{"ビールを飲む", Exact, "ビールを飲む"},
		{"ビールを飲む", Phrase, "ビールを飲む 新宿"},
		{"ビールが飲める店", Exact, "ビールが飲める店"},
	})
}

// triggerCase is a keyword, its match type and a search that triggers it.
type triggerCase struct {
	kw string
	m  MatchType
	q  string
}

func mustTrigger(t *testing.T, cases []triggerCase) {
	t.Helper()
	for _, c := range cases {
		if !matches(c.kw, c.m, c.q) {
			t.Errorf("%s %q: search %q does not trigger it", c.m, c.kw, c.q)
		}
	}
}

// TestParticleBetweenHiraganaWords: a particle between two words typed in
// hiragana (新宿のらーめん, しんじゅくのいざかや) counts as one (docs/matching.md,
// section 5), as it does after kanji (新宿のラーメン) or with spaces
// (しんじゅく の いざかや); it needed a space or a change of script.
func TestParticleBetweenHiraganaWords(t *testing.T) {
	mustTrigger(t, []triggerCase{
		{"新宿 ラーメン", Phrase, "新宿のらーめん"},
		{"新宿 ラーメン", Exact, "新宿のらーめん"},
		{"新宿 居酒屋", Phrase, "しんじゅくのいざかや"},
		{"新宿の居酒屋", Exact, "しんじゅくのいざかや"},
	})
	// Inside katakana or Latin a particle's letter is part of a word.
	for _, c := range []struct {
		kw, q string
	}{
		{"サン ラーメン", "サンノラーメン"},
		{"ca fe", "canofe"},
	} {
		if matches(c.kw, Exact, c.q) {
			t.Errorf("exact %q triggered by %q", c.kw, c.q)
		}
	}
}

// TestVariationSelectors: variation selectors (U+FE0F after an emoji, an
// ideographic variation selector after a kanji) are invisible: they form no
// word of their own and do not stick to the word before. A keyword of ☕️
// alone was the selector, and matched any search with an emoji.
func TestVariationSelectors(t *testing.T) {
	if n := Normalize("☕\uFE0F"); n != "" {
		t.Errorf("Normalize(%+q) = %+q, want \"\" (a symbol only)", "☕\uFE0F", n)
	}
	if matches("☕\uFE0F", Broad, "❤\uFE0F 新宿") {
		t.Errorf("keyword ☕+U+FE0F is triggered by the search ❤+U+FE0F 新宿")
	}
	if !matches("コーヒー", Exact, "コーヒー☕\uFE0F") {
		t.Errorf("exact コーヒー not triggered by コーヒー☕+U+FE0F (it is by コーヒー☕)")
	}
	if !matches("葛飾区", Exact, "葛\U000E0100飾区") {
		t.Errorf("exact 葛飾区 not triggered by 葛飾区 written with an ideographic variation selector")
	}
	neg := CompileNegatives([]string{"👎\uFE0F"})
	var q Query
	q.Parse("居酒屋 ✨\uFE0F")
	if neg.Block(&q) {
		t.Errorf("negative 👎+U+FE0F blocks the search 居酒屋 ✨+U+FE0F")
	}
}

// TestUnicodeHyphenBetweenLatin: U+2010 HYPHEN and U+2212 MINUS SIGN
// between Latin letters or digits are the hyphen that stays (7-Eleven →
// 7-eleven), as the full-width － already was; they became a space, and the
// negative part-time did not block a search for part‐time jobs.
func TestUnicodeHyphenBetweenLatin(t *testing.T) {
	for _, s := range []string{"7\u2010Eleven", "7\u2212Eleven", "7\uFF0DEleven"} {
		if n := Normalize(s); n != "7-eleven" {
			t.Errorf("Normalize(%+q) = %+q, want 7-eleven", s, n)
		}
		if !matches("7-eleven", Exact, s) {
			t.Errorf("exact 7-eleven not triggered by %q", s)
		}
	}
	neg := CompileNegatives([]string{"part-time"})
	var q Query
	q.Parse("izakaya part\u2010time")
	if !neg.Block(&q) {
		t.Errorf("negative part-time does not block izakaya part+U+2010+time")
	}
}

// TestInvisibleCharacters: a soft hyphen or a zero-width character inside a
// word, as text copied from a web page carries, leaves the word whole; they
// split it, and "iza\u00ADkaya" did not match izakaya.
func TestInvisibleCharacters(t *testing.T) {
	for _, s := range []string{"iza\u00ADkaya", "iza\u200Bkaya", "iza\u200Dkaya", "\uFEFFizakaya", "iza\u2060kaya"} {
		if n := Normalize(s); n != "izakaya" {
			t.Errorf("Normalize(%+q) = %+q, want izakaya", s, n)
		}
		if !matches("居酒屋", Exact, s) {
			t.Errorf("exact 居酒屋 not triggered by %+q", s)
		}
	}
}
