package campaigns

import (
	"slices"
	"sync"
	"testing"
)

// matches reports whether query q triggers keyword text with match type m
// in an index holding only that keyword.
func matches(text string, m MatchType, query string) bool {
	ix := NewKeywordIndex([]KeywordRef{{Keyword{text, m}, 7}})
	var q Query
	q.Parse(query)
	return len(ix.Match(&q, nil)) > 0
}

func TestMatchTypes(t *testing.T) {
	tests := []struct {
		keyword string
		match   MatchType
		give    string
		want    bool
	}{
		// Folding: widths, case, kana.
		{"居酒屋", Exact, "居酒屋", true},
		{"イザカヤ", Exact, "ｲｻﾞｶﾔ", true},
		{"イザカヤ", Exact, "いざかや", true},
		{"いざかや", Exact, "イザカヤ", true},
		{"ｲｻﾞｶﾔ", Phrase, "いざかや", true},
		{"Cafe", Exact, "ＣＡＦＥ", true},
		// Exact: the whole query and nothing else.
		{"居酒屋", Exact, "居酒屋　新宿", false},
		{"居酒屋", Exact, " 居酒屋 ", true},
		{"新宿 居酒屋", Exact, "新宿　居酒屋", true},
		{"新宿 居酒屋", Exact, "新宿居酒屋", true},
		{"新宿 居酒屋", Exact, "新宿の居酒屋", true},
		{"新宿 居酒屋", Exact, "居酒屋 新宿", false},
		{"新宿 居酒屋", Exact, "新宿 居酒屋 安い", false},
		// Phrase: in order, at word boundaries, anything around.
		{"居酒屋", Phrase, "居酒屋　新宿", true},
		{"居酒屋", Phrase, "新宿 居酒屋", true},
		{"新宿 居酒屋", Phrase, "東京 新宿 居酒屋 安い", true},
		{"新宿 居酒屋", Phrase, "新宿の居酒屋", true},
		{"新宿 居酒屋", Phrase, "居酒屋 新宿", false},
		{"新宿 居酒屋", Phrase, "新宿 安い 居酒屋", false},
		// Broad: all words, any order.
		{"居酒屋", Broad, "居酒屋　新宿", true},
		{"新宿 居酒屋", Broad, "居酒屋 新宿", true},
		{"新宿 居酒屋", Broad, "新宿 安い 居酒屋", true},
		{"新宿 居酒屋", Broad, "新宿", false},
		// Latin words end at letters.
		{"cafe", Broad, "cafe shinjuku", true},
		{"cafe", Broad, "cafeteria", false},
		{"bar", Broad, "sportsbar", false},
		{"7-eleven", Broad, "７－Ｅｌｅｖｅｎ 新宿", true},
		// Short kana need a clear boundary.
		{"パン", Broad, "パン 新宿", true},
		{"パン", Broad, "パン屋", true},
		{"パン", Broad, "ジャパン", false},
	}
	for _, tt := range tests {
		if got := matches(tt.keyword, tt.match, tt.give); got != tt.want {
			t.Errorf("%s %s, query %q: matched %v, want %v", tt.match, tt.keyword, tt.give, got, tt.want)
		}
	}
}

func TestMatchGroupsCampaigns(t *testing.T) {
	var refs []KeywordRef
	for i := range 500 {
		refs = append(refs, KeywordRef{Keyword{"居酒屋", Broad}, uint32(i)})
	}
	refs = append(refs,
		KeywordRef{Keyword{"ｲｻﾞｶﾔ", Broad}, 1000}, // same word as イザカヤ
		KeywordRef{Keyword{"いざかや", Exact}, 1001},
		KeywordRef{Keyword{"新宿 居酒屋", Phrase}, 1002},
		KeywordRef{Keyword{"ラーメン", Broad}, 1003},
		KeywordRef{Keyword{"!!!", Broad}, 1004}, // nothing left: ignored
	)
	ix := NewKeywordIndex(refs)
	if len(ix.groups) != 5 {
		t.Errorf("got %d keyword groups, want 5", len(ix.groups))
	}
	var q Query
	q.Parse("新宿　居酒屋")
	got := ix.Match(&q, nil)
	if len(got) != 501 || !slices.Contains(got, 1002) || slices.Contains(got, 1003) {
		t.Errorf("新宿　居酒屋 triggered %d refs (1002: %v, 1003: %v), want the 500 broad and 1002",
			len(got), slices.Contains(got, 1002), slices.Contains(got, 1003))
	}
	q.Parse("ｲｻﾞｶﾔ")
	got = ix.Match(&q, got[:0])
	slices.Sort(got)
	if len(got) != 502 || got[500] != 1000 || got[501] != 1001 {
		t.Errorf("ｲｻﾞｶﾔ triggered %d refs, want the 500 of 居酒屋 by reading, 1000 and 1001", len(got))
	}
}

func TestNegatives(t *testing.T) {
	neg := CompileNegatives([]string{"バイト", "求人", "cheap beer", "  "})
	tests := []struct {
		give string
		want bool
	}{
		{"居酒屋 バイト", true},
		{"居酒屋バイト", true},
		{"居酒屋 ﾊﾞｲﾄ", true},
		{"居酒屋 ばいと", true},
		{"居酒屋 求人 新宿", true},
		{"居酒屋", false},
		{"beer cheap", true},
		{"cheap", false},
		{"cheapbeer", false},
		{"", false},
	}
	for _, tt := range tests {
		var q Query
		q.Parse(tt.give)
		if got := neg.Block(&q); got != tt.want {
			t.Errorf("Block(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
	var zero Negatives
	var q Query
	q.Parse("バイト")
	if zero.Block(&q) {
		t.Error("zero Negatives blocked a query")
	}
}

func TestQueryText(t *testing.T) {
	var q Query
	for _, s := range []string{"居酒屋", "ｲｻﾞｶﾔ　新宿", "", "\xff"} {
		q.Parse(s)
		if got, want := q.Text(), Normalize(s); got != want {
			t.Errorf("Text after Parse(%q) = %q, want %q", s, got, want)
		}
	}
	var zero Query
	if zero.Text() != "" {
		t.Error("zero Query has text")
	}
}

func TestMatchAllocs(t *testing.T) {
	ix := NewKeywordIndex([]KeywordRef{
		{Keyword{"居酒屋", Broad}, 1},
		{Keyword{"新宿 居酒屋", Phrase}, 2},
		{Keyword{"ラーメン", Exact}, 3},
	})
	neg := CompileNegatives([]string{"バイト", "求人"})
	var q Query
	dst := make([]uint32, 0, 16)
	for _, s := range []string{"新宿の居酒屋", "ｲｻﾞｶﾔ　新宿", "らーめん", "歯医者"} {
		n := testing.AllocsPerRun(100, func() {
			q.Parse(s)
			dst = ix.Match(&q, dst[:0])
			neg.Block(&q)
		})
		if n != 0 {
			t.Errorf("Parse+Match+Block(%q) allocates %v times, want 0", s, n)
		}
	}
}

// TestConcurrentUse matches from several goroutines, each with its own
// Query, while another index is built; run with -race.
func TestConcurrentUse(t *testing.T) {
	ix := NewKeywordIndex([]KeywordRef{{Keyword{"居酒屋", Broad}, 1}, {Keyword{"ラーメン", Phrase}, 2}})
	neg := CompileNegatives([]string{"バイト"})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var q Query
			for _, s := range []string{"新宿の居酒屋", "らーめん", "居酒屋 バイト", "izakaya"} {
				q.Parse(s)
				if len(ix.Match(&q, nil)) == 0 {
					t.Errorf("%q triggered nothing", s)
				}
				neg.Block(&q)
			}
		})
	}
	wg.Go(func() {
		NewKeywordIndex([]KeywordRef{{Keyword{"焼き鳥", Broad}, 3}, {Keyword{"カフェ", Broad}, 4}})
	})
	wg.Wait()
}

// TestSlowPathKeepsHiragana checks that a query normalized by x/text (it
// holds a character outside the fast path's set: é, 𠮷) still tells words
// typed in hiragana from katakana. The repeat of the slow path read the
// hiragana already folded and reported none, so しんじゅくのいざかや and
// かけうどん were taken for katakana runs and missed.
func TestSlowPathKeepsHiragana(t *testing.T) {
	tests := []struct {
		keyword string
		match   MatchType
		give    string
	}{
		{"うどん", Broad, "かけうどん ñ"},
		{"うどん", Broad, "かけうどん 𠮷"},
		{"居酒屋", Broad, "しんじゅくのいざかや é"},
		{"新宿 居酒屋", Phrase, "しんじゅくのいざかや Ω"},
	}
	for _, tt := range tests {
		if !matches(tt.keyword, tt.match, tt.give) {
			t.Errorf("%s %s, query %q: not matched", tt.match, tt.keyword, tt.give)
		}
	}
}

// TestRomajiShortSpellingsAreWholeWords checks that a key of one or two
// kana (雨 read あめ, 缶 read かん, パン) counts in a romaji word only as
// the whole word, as its kana need a space or a change of script: neither
// other keywords of the index nor the dictionary's words may cut amerika
// into 雨 and 理科, nor shinkansen into 新, 缶 and 線. A longer key after a
// known word counts (panjamu holds ジャム after パン, as パンジャム does).
func TestRomajiShortSpellingsAreWholeWords(t *testing.T) {
	words := []string{"雨", "理科", "缶", "新", "線", "パン", "ジャム", "缶コーヒー", "新宿", "居酒屋"}
	var refs []KeywordRef
	for i, w := range words {
		refs = append(refs, KeywordRef{Keyword{w, Broad}, uint32(i)})
	}
	ix := NewKeywordIndex(refs)
	tests := []struct {
		give string
		want []string
	}{
		{"amerika", nil},
		{"shinkansen", nil},
		{"panjamu", []string{"ジャム"}},
		{"ame", []string{"雨"}},
		{"ame rika", []string{"理科", "雨"}},
		{"pan jamu", []string{"ジャム", "パン"}},
		{"kankohi", []string{"缶コーヒー"}},
		{"shinjukuizakaya", []string{"居酒屋", "新宿"}},
	}
	var q Query
	for _, tt := range tests {
		q.Parse(tt.give)
		var got []string
		for _, r := range ix.Match(&q, nil) {
			got = append(got, words[r])
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q triggered %v, want %v", tt.give, got, tt.want)
		}
	}
}
