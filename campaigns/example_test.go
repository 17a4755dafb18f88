package campaigns_test

import (
	"fmt"
	"slices"

	"github.com/navad/navad/campaigns"
)

func ExampleNormalize() {
	for _, s := range []string{"ｲｻﾞｶﾔ", "いざかや", "居酒屋　新宿", "ＩＺＡＫＡＹＡ", "ら〜めん"} {
		fmt.Println(campaigns.Normalize(s))
	}
	// Output:
	// イザカヤ
	// イザカヤ
	// 居酒屋 新宿
	// izakaya
	// ラーメン
}

func ExampleKeywordIndex_Match() {
	ix := campaigns.NewKeywordIndex([]campaigns.KeywordRef{
		{Keyword: campaigns.Keyword{Text: "居酒屋", Match: campaigns.Broad}, Ref: 1},
		{Keyword: campaigns.Keyword{Text: "新宿 居酒屋", Match: campaigns.Phrase}, Ref: 2},
		{Keyword: campaigns.Keyword{Text: "居酒屋", Match: campaigns.Exact}, Ref: 3},
		{Keyword: campaigns.Keyword{Text: "酒屋", Match: campaigns.Broad}, Ref: 4},
	})
	var q campaigns.Query // reuse one per goroutine, or pool them
	var refs []uint32
	for _, search := range []string{"居酒屋", "新宿の居酒屋", "いざかや", "izakaya", "居酒屋 新宿", "酒屋", "歯医者"} {
		q.Parse(search)
		refs = ix.Match(&q, refs[:0])
		slices.Sort(refs)
		fmt.Println(search, refs)
	}
	// Output:
	// 居酒屋 [1 3]
	// 新宿の居酒屋 [1 2]
	// いざかや [1 3]
	// izakaya [1 3]
	// 居酒屋 新宿 [1]
	// 酒屋 [4]
	// 歯医者 []
}

func ExampleNegatives_Block() {
	neg := campaigns.CompileNegatives([]string{"バイト", "求人"})
	var q campaigns.Query
	for _, search := range []string{"居酒屋 バイト", "居酒屋ﾊﾞｲﾄ", "居酒屋 求人", "新宿の居酒屋"} {
		q.Parse(search)
		fmt.Println(search, neg.Block(&q))
	}
	// Output:
	// 居酒屋 バイト true
	// 居酒屋ﾊﾞｲﾄ true
	// 居酒屋 求人 true
	// 新宿の居酒屋 false
}

func ExampleQuery_Text() {
	var q campaigns.Query
	q.Parse("ｲｻﾞｶﾔ　ＳＨＩＮＪＵＫＵ")
	fmt.Println(q.Text())
	// Output:
	// イザカヤ shinjuku
}
