package campaigns

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ikawaha/kagome-dict/dict"
	"github.com/ikawaha/kagome/v2/tokenizer"
)

// TestEntryTable: the table of base forms and readings answers for every
// entry what kagome's contents held, uninflected or not, and nothing for
// entries without a reading or out of range.
func TestEntryTable(t *testing.T) {
	contents := [][]string{
		{"*", "*", "新宿", "シンジュク", "シンジュク"},
		{"五段・ラ行", "連用形", "走る", "ハシリ", "ハシリ"},
		{"*", "*"}, // no reading
		{"一段", "基本形", "", "", ""},
	}
	for i := range 200 { // past a word of bits
		contents = append(contents, []string{"*", "*", fmt.Sprint("語", i), fmt.Sprint("ゴ", i), ""})
	}
	names := []string{"名詞", "固有名詞", "地域", "動詞", "自立"}
	pos := dict.POSTable{NameList: names}
	for id := range contents {
		switch id % 3 {
		case 0:
			pos.POSs = append(pos.POSs, dict.POS{0, 1, 2})
		case 1:
			pos.POSs = append(pos.POSs, dict.POS{3, 4})
		default:
			pos.POSs = append(pos.POSs, dict.POS{})
		}
	}
	tab := newEntryTable(contents, pos)
	if len(tab.posList) != 3 {
		t.Fatalf("%d parts of speech kept, want the 3 distinct ones", len(tab.posList))
	}
	for id, p := range pos.POSs {
		var want []string
		for _, x := range p {
			want = append(want, names[x])
		}
		if got := tab.pos(id); !slices.Equal(got, want) {
			t.Fatalf("entry %d: part of speech %v, want %v", id, got, want)
		}
	}
	if tab.size() != len(contents) {
		t.Fatalf("size %d, want %d", tab.size(), len(contents))
	}
	for id, c := range contents {
		base, reading, ok := tab.entry(id)
		if want := len(c) > ipaReading; ok != want {
			t.Fatalf("entry %d: ok %v, want %v", id, ok, want)
		}
		if !ok {
			if tab.uninflected(id) {
				t.Fatalf("entry %d without a reading is uninflected", id)
			}
			continue
		}
		if base != c[ipaBase] || reading != c[ipaReading] {
			t.Fatalf("entry %d: %q %q, want %q %q", id, base, reading, c[ipaBase], c[ipaReading])
		}
		if want := c[ipaInflForm] == "*" || c[ipaInflForm] == "基本形"; tab.uninflected(id) != want {
			t.Fatalf("entry %d: uninflected %v, want %v", id, tab.uninflected(id), want)
		}
	}
	for _, id := range []int{-1, len(contents), 1 << 20} {
		if _, _, ok := tab.entry(id); ok || tab.uninflected(id) || tab.pos(id) != nil {
			t.Fatalf("entry %d out of range answered", id)
		}
	}
}

// TestDictionaryReadsItsTable: once loaded, kagome's own contents and
// parts of speech are gone and the readings and parts of speech of known
// words come from the table.
func TestDictionaryReadsItsTable(t *testing.T) {
	d := japaneseDictionary()
	if d.dict.Contents != nil || d.dict.POSTable.POSs != nil {
		t.Fatal("kagome's contents or parts of speech kept")
	}
	for word, want := range map[string][]string{
		"新宿":  {"名詞", "固有名詞", "地域", "一般"},
		"居酒屋": {"名詞", "一般", "*", "*"},
		"走る":  {"動詞", "自立", "*", "*"},
	} {
		toks := d.tok.Analyze(word, tokenizer.Normal)
		if len(toks) != 1 || toks[0].Class != tokenizer.KNOWN {
			t.Fatalf("%s: tokens %v, want one known word", word, toks)
		}
		if got := d.tokenPOS(toks[0]); !slices.Equal(got, want) {
			t.Fatalf("%s: part of speech %v, want %v", word, got, want)
		}
	}
	for word, want := range map[string]string{"新宿": "シンジュク", "居酒屋": "イザカヤ", "珈琲": "コーヒー"} {
		toks := d.tok.Analyze(word, tokenizer.Normal)
		if len(toks) != 1 || toks[0].Class != tokenizer.KNOWN {
			t.Fatalf("%s: tokens %v, want one known word", word, toks)
		}
		if r, ok := d.tokenReading(toks[0]); !ok || r != want {
			t.Fatalf("%s: reading %q %v, want %q", word, r, ok, want)
		}
	}
}

// TestPostingIndex: the lists are the words that hold each rune pair (and
// each rune), in word order, as a map of slices would hold them.
func TestPostingIndex(t *testing.T) {
	words := []lexWord{{text: "居酒屋"}, {text: "酒"}, {text: "酒屋"}, {text: "居間"}, {text: "屋"}, {text: "酒酒"}}
	want := map[uint64][]int32{}
	for i, w := range words {
		seen := map[uint64]bool{}
		prev := rune(-1)
		for _, r := range w.text {
			ks := []uint64{uint64(r)<<32 | 0xFFFFFFFF}
			if prev >= 0 {
				ks = append(ks, uint64(prev)<<32|uint64(r))
			}
			for _, k := range ks {
				if !seen[k] {
					seen[k] = true
					want[k] = append(want[k], int32(i))
				}
			}
			prev = r
		}
	}
	p := newPostingIndex(words)
	if len(p.at) != len(want) {
		t.Fatalf("%d lists, want %d", len(p.at), len(want))
	}
	for k, ids := range want {
		if got := p.get(k); !slices.Equal(got, ids) {
			t.Errorf("%x: %v, want %v", k, got, ids)
		}
	}
	if got := p.get(uint64('犬')<<32 | 0xFFFFFFFF); got != nil {
		t.Errorf("a rune no word has: %v", got)
	}
}

// TestKeepLexicon: the lexicon's words read back from its one string and
// array as they were built, empty strings and flags included, and a word's
// split is kept for it alone.
func TestKeepLexicon(t *testing.T) {
	words := []lexWord{
		{text: "居酒屋", surface: "居酒屋", reading: "イザカヤ"},
		{text: "イザカヤ", readingOf: "居酒屋"},
		{text: "新宿", surface: "新宿", readingOf: "新宿", reading: "シンジュク", place: true, bigPlace: true},
		{text: "x"},
		{text: "カフェ", surface: "カフェ", reading: "カフェ"},
	}
	for i := range words {
		words[i].id = int32(i)
	}
	d := &dictionary{}
	d.keepLexicon(words)
	if len(d.lex) != len(words) {
		t.Fatalf("%d words kept, want %d", len(d.lex), len(words))
	}
	for i, want := range words {
		if got := d.word(int32(i)); got != want {
			t.Errorf("word %d: %+v, want %+v", i, got, want)
		}
	}
	d.splitMu.Lock()
	d.lex[2].split, d.lex[2].splitDone = 0b101, true
	d.splitMu.Unlock()
	if got := d.splitOf(d.word(2)); got != 0b101 {
		t.Errorf("split of 新宿 %b, want the one kept, 101", got)
	}
	if d.lex[0].splitDone || d.lex[1].splitDone {
		t.Error("another word's split marked known")
	}
}
