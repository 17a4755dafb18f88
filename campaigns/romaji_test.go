package campaigns

import "testing"

func TestRomajiToKana(t *testing.T) {
	tests := []struct {
		give, want string
	}{
		{"izakaya", "イザカヤ"},
		{"shinjuku", "シンジュク"},
		{"sinzyuku", "シンジュク"}, // Kunrei-shiki
		{"shimbun", "シンブン"},   // Hepburn m before b
		{"shinbun", "シンブン"},
		{"kitte", "キッテ"},
		{"matcha", "マッチャ"},
		{"mattya", "マッチャ"},
		{"onna", "オンナ"},
		{"konnnichiha", "コンニチハ"},
		{"kin'en", "キンエン"},
		{"kinen", "キネン"},
		{"ra-men", "ラーメン"},
		{"ohno", "オーノ"},
		{"fuji", "フジ"},
		{"huzi", "フジ"},
		{"tsukiji", "ツキジ"},
		{"tukizi", "ツキジ"},
		{"chuushajou", "チュウシャジョウ"},
		{"tyuusyazyou", "チュウシャジョウ"},
		{"vaiorin", "ヴァイオリン"},
		{"pan", "パン"},
		{"coffee", ""}, // c alone is not romaji
		{"bar", ""},    // nor a final r
		{"x", ""},
	}
	for _, tt := range tests {
		var got []rune
		ok := romajiToKana([]rune(tt.give), func(k rune, _ int) { got = append(got, k) })
		if !ok {
			got = nil
		}
		if string(got) != tt.want {
			t.Errorf("romajiToKana(%q) = %q (ok %v), want %q", tt.give, string(got), ok, tt.want)
		}
	}
}

func TestPhoneticKey(t *testing.T) {
	tests := []struct {
		give, want string
	}{
		{"トウキョウ", "トキョ"},
		{"トーキョー", "トキョ"},
		{"オオサカ", "オサカ"},
		{"ラーメン", "ラメン"},
		{"ラアメン", "ラメン"},
		{"センセイ", "センセイ"}, // Hepburn keeps ei
		{"ニイガタ", "ニガタ"},
		{"ハナヂ", "ハナジ"},
		{"ツヅク", "ツズク"},
		{"ビール", "ビル"},
		{"居酒屋", ""},
	}
	for _, tt := range tests {
		if got := phoneticKey(tt.give); got != tt.want {
			t.Errorf("phoneticKey(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestQueryRomaji(t *testing.T) {
	tests := []struct {
		give string
		want []string // phonetic keys of the romaji words
	}{
		{"izakaya", []string{"イザカヤ"}},
		{"Tōkyō", []string{"トキョ"}},
		{"TOHKYOH", []string{"トキョ"}},
		{"ramen-ya shinjuku", []string{"ラメン", "ヤ", "シンジュク"}},
		{"coffee 新宿 ramen", []string{"ラメン"}},
		{"新宿", nil},
	}
	for _, tt := range tests {
		var q Query
		q.Parse(tt.give)
		var got []string
		for _, w := range q.latin {
			got = append(got, string(q.key[q.keyStart[w.keyLo]:q.keyStart[w.keyHi]]))
		}
		if len(got) != len(tt.want) {
			t.Errorf("romaji of %q = %q, want %q", tt.give, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("romaji of %q = %q, want %q", tt.give, got, tt.want)
				break
			}
		}
	}
}

// TestRomajiSyllable checks the syllable array against the table it is
// built from, and that it refuses what the table does not hold.
func TestRomajiSyllable(t *testing.T) {
	for k, want := range romajiTable {
		if got, ok := romajiSyllable([]byte(k)); !ok || got != want {
			t.Errorf("romajiSyllable(%q) = %q, %v; want %q", k, got, ok, want)
		}
	}
	for _, k := range []string{"", "q", "kk", "xyz", "shaa", "KA", "k\x00", "\xff"} {
		if got, ok := romajiSyllable([]byte(k)); ok {
			t.Errorf("romajiSyllable(%q) = %q; want no syllable", k, got)
		}
	}
}
