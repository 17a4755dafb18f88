package campaigns

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// FuzzNormalize checks that Normalize never panics, is idempotent, returns
// valid UTF-8 with single spaces between words, and agrees with a Query's
// text. Seeds are in testdata/fuzz/FuzzNormalize.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"居酒屋　新宿", "ｲｻﾞｶﾔ", "ら〜めん", "\xff\xfe", "か\u3099", "Straße", "7-Eleven"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(s)
		if again := Normalize(n); again != n {
			t.Fatalf("Normalize not idempotent: %q → %q → %q", s, n, again)
		}
		if !utf8.ValidString(n) {
			t.Fatalf("Normalize(%q) = %q, not UTF-8", s, n)
		}
		if strings.HasPrefix(n, " ") || strings.HasSuffix(n, " ") || strings.Contains(n, "  ") {
			t.Fatalf("Normalize(%q) = %q: stray spaces", s, n)
		}
		if k := normalizeKeepHiragana(s); Normalize(k) != n {
			t.Fatalf("Normalize(normalizeKeepHiragana(%q)) = %q, want %q", s, Normalize(k), n)
		}
		// The fast path must agree with x/text wherever it answers.
		var fast, slow normalizer
		if fast.fastRunes(s) {
			fast.fold(false)
			slow.slowRunes(s)
			slow.fold(false)
			if !bytes.Equal(fast.out, slow.out) {
				t.Fatalf("fast path %q, x/text %q for %q", fast.out, slow.out, s)
			}
		}
		var q Query
		q.Parse(s)
		if q.Text() != n {
			t.Fatalf("Query.Text() = %q, Normalize = %q", q.Text(), n)
		}
	})
}

// fuzzIndex is an index of keywords of every kind, and negatives, for
// FuzzMatch.
var fuzzIndex = sync.OnceValues(func() (*KeywordIndex, Negatives) {
	var refs []KeywordRef
	for i, k := range []string{"居酒屋", "酒屋", "新宿 居酒屋", "ラーメン", "コーヒー", "バー", "パン", "歯医者",
		"東京", "京都", "缶コーヒー", "生ビール", "cafe", "7-eleven", "焼き鳥", "新宿の居酒屋", "い", "a"} {
		for j, m := range []MatchType{Exact, Phrase, Broad} {
			refs = append(refs, KeywordRef{Keyword{k, m}, uint32(3*i + j)})
		}
	}
	return NewKeywordIndex(refs), CompileNegatives([]string{"バイト", "求人", "酒屋", "居酒屋 求人", "a"})
})

// FuzzMatch checks that query analysis, matching and negatives never panic
// on any input, and that a reused Query matches as a fresh one does. Seeds
// are in testdata/fuzz/FuzzMatch.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"新宿の居酒屋", "izakaya", "shinjukuizakaya", "ra-men", "kin'en", "ｺｰﾋｰｾﾞﾘｰ", "n'", "-", "ー"} {
		f.Add(s)
	}
	var reused Query
	f.Fuzz(func(t *testing.T, s string) {
		ix, neg := fuzzIndex()
		var q Query
		q.Parse(s)
		got := ix.Match(&q, nil)
		neg.Block(&q)
		reused.Parse(s)
		again := ix.Match(&reused, nil)
		if len(got) != len(again) {
			t.Fatalf("query %q: fresh Query triggers %d refs, reused one %d", s, len(got), len(again))
		}
	})
}

// FuzzKeyword checks that keyword analysis and index building never panic
// on any keyword text. Seeds are in testdata/fuzz/FuzzKeyword.
func FuzzKeyword(f *testing.F) {
	for _, s := range []string{"居酒屋", "新宿の居酒屋", "ｺｰﾋｰ", "い", "\xff"} {
		f.Add(s, "居酒屋")
	}
	f.Fuzz(func(t *testing.T, keyword, query string) {
		ix := NewKeywordIndex([]KeywordRef{{Keyword{keyword, Broad}, 1}, {Keyword{keyword, Exact}, 2}})
		neg := CompileNegatives([]string{keyword})
		var q Query
		q.Parse(query)
		ix.Match(&q, nil)
		neg.Block(&q)
		// A keyword triggers on its own text (exact), unless nothing is left.
		q.Parse(keyword)
		if Normalize(keyword) != "" && len(ix.Match(&q, nil)) == 0 {
			t.Fatalf("keyword %q does not match itself", keyword)
		}
	})
}
