package campaigns

import (
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// benchVocabulary returns n common nouns of the dictionary (2 to 4
// characters, with kanji or katakana), deterministically.
func benchVocabulary(n int) []string {
	d := japaneseDictionary()
	seen := map[string]bool{}
	var all []string
	for id := range d.entries.size() {
		w, _, ok := d.entries.entry(id)
		if pos := d.entries.pos(id); !ok || len(pos) < 2 || pos[0] != "名詞" || pos[1] != "一般" {
			continue
		}
		if l := utf8.RuneCountInString(w); l < 2 || l > 4 || seen[w] || !hasJapanese(w) {
			continue
		}
		seen[w] = true
		all = append(all, w)
	}
	step := max(1, len(all)/n)
	var out []string
	for i := 0; i < len(all) && len(out) < n; i += step {
		out = append(out, all[i])
	}
	return out
}

// popularKeywords are bid on by hundreds of campaigns each.
var popularKeywords = []string{"居酒屋", "カフェ", "ラーメン", "コーヒー", "ビール", "焼き鳥", "飲み屋", "缶コーヒー", "自販機", "コンビニ", "ランチ", "寿司", "焼肉", "パン", "ピザ", "新宿 居酒屋", "渋谷 カフェ", "生ビール", "ドラッグストア", "弁当"}

// benchRefs returns the keywords of campaigns campaigns, each with perCampaign
// keywords: one popular one and the rest from a vocabulary of vocab words.
func benchRefs(campaigns, perCampaign, vocab int) []KeywordRef {
	words := benchVocabulary(vocab)
	rng := rand.New(rand.NewPCG(1, 2))
	types := []MatchType{Broad, Broad, Phrase, Exact}
	var refs []KeywordRef
	for c := range campaigns {
		refs = append(refs, KeywordRef{Keyword{popularKeywords[rng.IntN(len(popularKeywords))], types[rng.IntN(len(types))]}, uint32(c)})
		for range perCampaign - 1 {
			refs = append(refs, KeywordRef{Keyword{words[rng.IntN(len(words))], types[rng.IntN(len(types))]}, uint32(c)})
		}
	}
	return refs
}

var benchIndex = sync.OnceValue(func() *KeywordIndex { return NewKeywordIndex(benchRefs(10000, 3, 3000)) })

// benchQueries are searches as people type them on phones.
var benchQueries = []struct{ name, q string }{
	{"kanji", "居酒屋"},
	{"kanji_place", "新宿の居酒屋"},
	{"compound", "渋谷居酒屋"},
	{"hiragana", "いざかや"},
	{"halfwidth", "ﾗｰﾒﾝ　ｼﾌﾞﾔ"},
	{"romaji", "shinjuku izakaya"},
	{"romaji_compound", "shinjukuizakaya"},
	{"katakana", "コーヒーゼリー"},
	{"nothing", "歯医者"},
	{"nothing_long", "東京都新宿区西新宿二丁目の近くで安くて美味しいお店を探しています"},
	// At the API's 100-character limit: the worst a query can cost.
	{"max_sentence", maxQuery("新宿駅の近くで安くて美味しい居酒屋を探しています")},
	{"max_kana", maxQuery("しんじゅくえきのちかくでやすくておいしいいざかやをさがしています")},
	{"max_romaji", maxQuery("shinjuku eki no chikaku de yasukute oishii izakaya wo sagashiteimasu ")},
}

// maxQuery repeats s up to 100 characters, the longest query the API takes.
func maxQuery(s string) string {
	r := []rune(strings.Repeat(s, 100))
	return string(r[:100])
}

func BenchmarkParse(b *testing.B) {
	for _, bq := range benchQueries {
		b.Run(bq.name, func(b *testing.B) {
			var q Query
			b.ReportAllocs()
			for b.Loop() {
				q.Parse(bq.q)
			}
		})
	}
}

// BenchmarkMatch is the decision path's keyword work: analyse the query and
// find the campaigns it triggers in an index of 10,000 campaigns.
func BenchmarkMatch(b *testing.B) {
	ix := benchIndex()
	for _, bq := range benchQueries {
		b.Run(bq.name, func(b *testing.B) {
			var q Query
			dst := make([]uint32, 0, 4096)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				q.Parse(bq.q)
				dst = ix.Match(&q, dst[:0])
				n = len(dst)
			}
			b.ReportMetric(float64(n), "refs")
		})
	}
}

func BenchmarkNegativesBlock(b *testing.B) {
	few := CompileNegatives([]string{"バイト", "求人", "アルバイト", "中古"})
	many := make([]string, 1000)
	words := benchVocabulary(1000)
	copy(many, words)
	lots := CompileNegatives(many)
	for _, bc := range []struct {
		name string
		neg  Negatives
	}{{"4", few}, {"1000", lots}} {
		for _, q := range []string{"居酒屋 バイト", "新宿の居酒屋"} {
			b.Run(bc.name+"/"+q, func(b *testing.B) {
				var qq Query
				qq.Parse(q)
				b.ReportAllocs()
				for b.Loop() {
					bc.neg.Block(&qq)
				}
			})
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	for _, s := range []string{"居酒屋", "ｲｻﾞｶﾔ　新宿", "Ｃａｆé"} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Normalize(s)
			}
		})
	}
}

// BenchmarkNewKeywordIndex builds the index of 10,000 campaigns with three
// keywords each, with the analysis cache warm (as on every rebuild after
// the first).
func BenchmarkNewKeywordIndex(b *testing.B) {
	refs := benchRefs(10000, 3, 3000)
	NewKeywordIndex(refs)
	b.ReportAllocs()
	for b.Loop() {
		NewKeywordIndex(refs)
	}
}

// TestDictionaryCost reports what the dictionary costs at start-up. Run it
// alone, in a fresh process, for the numbers in docs/matching.md:
//
//	go test -run TestDictionaryCost -v ./campaigns/
func TestDictionaryCost(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the dictionary")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := loadFresh()
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	if len(d.lex) == 0 || heap <= 0 {
		t.Fatalf("dictionary: %d lexicon words, heap %+.0f bytes", len(d.lex), heap)
	}
	t.Logf("dictionary: kagome IPA loaded in %v, with navad's lexicon in %v; heap %.0f MB; %d lexicon words, %d katakana words",
		d.analyserTime.Round(time.Millisecond), d.loadTime.Round(time.Millisecond), heap/1e6, len(d.lex), len(d.kata.words))
}

// TestIndexBuildCost reports what building the index of 10,000 campaigns
// with three keywords each costs: first with every keyword analysed (cold
// cache), then again (warm, as on every rebuild). Run it alone for the
// numbers in docs/matching.md.
func TestIndexBuildCost(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the dictionary")
	}
	refs := benchRefs(10000, 3, 3000)
	distinct := map[string]bool{}
	for _, r := range refs {
		distinct[r.Keyword.Text] = true
	}
	t1 := time.Now()
	ix := NewKeywordIndex(refs)
	cold := time.Since(t1)
	t2 := time.Now()
	NewKeywordIndex(refs)
	warm := time.Since(t2)
	var blockers int
	for _, e := range ix.entries {
		if e.split != 0 {
			blockers++
		}
	}
	t.Logf("index of %d refs, %d distinct keywords, %d groups, %d terms: first build %v, rebuild %v",
		len(refs), len(distinct), len(ix.groups), len(ix.terms), cold.Round(time.Millisecond), warm.Round(time.Millisecond))
	t.Logf("tries %.1f MB: %d entries (%d blocking words), %d spellings",
		float64(ix.main.bytes()+ix.romaji.bytes())/1e6, len(ix.entries), blockers, len(ix.forms))
}
