package campaigns

import (
	"testing"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		give, want string
	}{
		{"居酒屋", "居酒屋"},
		{"いざかや", "イザカヤ"},
		{"ｲｻﾞｶﾔ", "イザカヤ"},
		{"イザカヤ", "イザカヤ"},
		{"ＩＺＡＫＡＹＡ", "izakaya"},
		{"IzaKaya", "izakaya"},
		{"居酒屋　新宿", "居酒屋 新宿"},
		{"  居酒屋 \t\n　 新宿  ", "居酒屋 新宿"},
		{"居酒屋、新宿。", "居酒屋 新宿"},
		{"「居酒屋」", "居酒屋"},
		{"ﾗｰﾒﾝ", "ラーメン"},
		{"らーめん", "ラーメン"},
		{"ら〜めん", "ラーメン"},
		{"ラ～メン", "ラーメン"},
		{"ら-めん", "ラーメン"},
		{"ラーメン〜", "ラーメン"},
		{"ｶﾞｽﾄ", "ガスト"},
		{"ﾊﾟﾝ", "パン"},
		{"ｳﾞｨｰｶﾞﾝ", "ヴィーガン"},
		{"\u304b\u3099", "ガ"}, // か + combining dakuten
		{"ゔ", "ヴ"},
		{"一ヶ月", "一ケ月"},
		{"一ヵ月", "一カ月"},
		{"ra-men", "ra-men"},
		{"7-Eleven", "7-eleven"},
		{"７－ＥＬＥＶＥＮ", "7-eleven"},
		{"McDonald’s", "mcdonald's"},
		{"B&B", "b&b"},
		{"-cafe-", "cafe"},
		{"Straße", "strasse"},
		{"ＣＡＦÉ", "café"},
		{"①", "1"},
		{"㈱", "株"},
		{"\xff居酒屋\xfe新宿", "居酒屋 新宿"},
		{"\u200b", ""},
		{"", ""},
		{"!!!", ""},
		{"ビール🍺", "ビール"},
		{"２４時間", "24時間"},
	}
	for _, tt := range tests {
		if got := Normalize(tt.give); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.give, got, tt.want)
		}
		if got := Normalize(Normalize(tt.give)); got != tt.want {
			t.Errorf("Normalize(Normalize(%q)) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestNormalizeKeepHiragana(t *testing.T) {
	tests := []struct {
		give, want string
	}{
		{"焼き鳥", "焼き鳥"},
		{"ﾔｷﾄﾘ", "ヤキトリ"},
		{"ら〜めん", "らーめん"},
		{"ゕ", "か"},
		{"新宿の居酒屋", "新宿の居酒屋"},
	}
	for _, tt := range tests {
		got := normalizeKeepHiragana(tt.give)
		if got != tt.want {
			t.Errorf("normalizeKeepHiragana(%q) = %q, want %q", tt.give, got, tt.want)
		}
		// Same runes as Normalize but for the kana fold.
		if Normalize(got) != Normalize(tt.give) {
			t.Errorf("Normalize(normalizeKeepHiragana(%q)) = %q, want %q", tt.give, Normalize(got), Normalize(tt.give))
		}
	}
}

// TestFastPathAgrees checks the fast path's tables against x/text: every
// character it handles maps as NFKC and case folding would.
func TestFastPathAgrees(t *testing.T) {
	fold := cases.Fold()
	for r := rune(0); r <= 0xFFFF; r++ {
		m, ok := fastRune(r)
		if !ok || r < utf8.RuneSelf || r == 0x3000 {
			continue
		}
		want := norm.NFKC.String(fold.String(norm.NFKC.String(string(r))))
		var got string
		if m == halfwidthKana {
			got = string(halfwidth[r-0xFF61])
		} else {
			got = string(m)
		}
		if got != want {
			t.Errorf("fast path maps %U to %q, x/text to %q", r, got, want)
		}
	}
}

func TestNormalizeAllocs(t *testing.T) {
	for _, s := range []string{"居酒屋", "イザカヤ", "izakaya", "居酒屋 新宿"} {
		if n := testing.AllocsPerRun(100, func() { Normalize(s) }); n != 0 {
			t.Errorf("Normalize(%q) allocates %v times, want 0 for normalized text", s, n)
		}
	}
}
