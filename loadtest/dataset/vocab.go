package dataset

import "github.com/navad/navad/campaigns"

// The vocabulary of the generated world: what kinds of advertisers there
// are, where their stores stand, which keywords their campaigns bid on, and
// what people type into a navigation app's search box.

// industry is a kind of advertiser: a brewer's products are carried by
// restaurants and bid on 居酒屋, a confectioner's by convenience stores.
type industry struct {
	name        string // also the product ID stem
	advertisers int    // how many of the 200
	// osm are the OpenStreetMap categories whose points anchor its stores.
	osm []string
	// suffix names its brands (麦星ビール).
	suffix string
	// keywords are the industry's head words, with relative weights: half
	// its campaigns bid on one of them (besides the popular ones assigned
	// by popularTargets), and all build long-tail keywords from them.
	keywords []weighted
	// hours are its stores' opening hours, with weights; nil means always.
	hours []weightedHours
	// campaignHours, when set, is given to campaignHoursPct percent of its
	// campaigns (beer in the evening).
	campaignHours    campaigns.Hours
	campaignHoursPct int
}

type weighted struct {
	text   string
	weight int
}

type weightedHours struct {
	hours  campaigns.Hours
	weight int
}

func hours(from, to string) campaigns.Hours {
	return campaigns.Hours{{From: from, To: to}}
}

var (
	always      campaigns.Hours
	lunchDinner = hours("11:00", "23:00")
	evening     = hours("17:00", "02:00")
	daytime     = hours("07:00", "21:00")
	morning     = hours("06:00", "22:00")
	weekdays    = campaigns.Hours{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "08:00", To: "20:00"}, {Days: []string{"sat", "sun"}, From: "10:00", To: "18:00"}}
)

// industries add up to 200 advertisers.
var industries = []industry{
	{
		name: "beer", advertisers: 25, osm: []string{"restaurant"}, suffix: "ビール",
		keywords: []weighted{{"焼き鳥", 8}, {"飲み屋", 8}, {"ビール", 10}, {"生ビール", 6}, {"クラフトビール", 3}, {"ハイボール", 4}, {"焼肉", 5}, {"串カツ", 2}, {"ビアガーデン", 2}, {"もつ鍋", 2}},
		hours:    []weightedHours{{evening, 5}, {lunchDinner, 4}, {always, 1}},
		// Evening-only campaigns: served 17:00-24:00.
		campaignHours: hours("17:00", "24:00"), campaignHoursPct: 20,
	},
	{
		name: "sake", advertisers: 15, osm: []string{"restaurant", "convenience"}, suffix: "酒造",
		keywords: []weighted{{"日本酒", 10}, {"飲み屋", 6}, {"焼き鳥", 4}, {"酒屋", 6}, {"地酒", 4}, {"おでん", 3}, {"寿司", 4}},
		hours:    []weightedHours{{evening, 4}, {lunchDinner, 3}, {always, 3}},
	},
	{
		name: "drink", advertisers: 35, osm: []string{"convenience"}, suffix: "飲料",
		keywords: []weighted{{"コーヒー", 10}, {"缶コーヒー", 6}, {"自販機", 5}, {"お茶", 6}, {"コンビニ", 8}, {"ジュース", 4}, {"水", 2}, {"スポーツドリンク", 3}, {"エナジードリンク", 3}},
		hours:    []weightedHours{{always, 9}, {morning, 1}},
	},
	{
		name: "snack", advertisers: 30, osm: []string{"convenience"}, suffix: "製菓",
		keywords: []weighted{{"お菓子", 10}, {"スイーツ", 8}, {"コンビニ", 8}, {"チョコ", 5}, {"アイス", 5}, {"ケーキ", 3}, {"おやつ", 4}},
		hours:    []weightedHours{{always, 9}, {morning, 1}},
	},
	{
		name: "coffee", advertisers: 25, osm: []string{"cafe"}, suffix: "珈琲",
		keywords: []weighted{{"コーヒー", 10}, {"喫茶店", 8}, {"ラテ", 5}, {"抹茶ラテ", 2}, {"モーニング", 4}, {"スイーツ", 4}, {"ケーキ", 4}, {"パン", 3}, {"電源 カフェ", 2}},
		hours:    []weightedHours{{daytime, 7}, {weekdays, 2}, {always, 1}},
	},
	{
		name: "noodle", advertisers: 25, osm: []string{"restaurant"}, suffix: "製麺",
		keywords: []weighted{{"つけ麺", 6}, {"うどん", 6}, {"そば", 6}, {"餃子", 5}, {"中華", 5}, {"豚骨ラーメン", 3}, {"味噌ラーメン", 3}, {"担々麺", 2}},
		hours:    []weightedHours{{lunchDinner, 7}, {evening, 2}, {always, 1}},
	},
	{
		name: "food", advertisers: 45, osm: []string{"restaurant", "cafe"}, suffix: "フーズ",
		keywords: []weighted{{"ランチ", 10}, {"定食", 6}, {"牛丼", 4}, {"カレー", 6}, {"寿司", 5}, {"ハンバーガー", 5}, {"弁当", 6}, {"焼肉", 4}, {"パスタ", 3}, {"ピザ", 3}, {"テイクアウト", 4}},
		hours:    []weightedHours{{lunchDinner, 7}, {daytime, 2}, {always, 1}},
	},
}

// popularTargets are the keywords shared by hundreds of campaigns at once
// (WORKLOAD.md, hard case 1): exactly this many campaigns of the listed
// industries bid on each.
var popularTargets = []struct {
	text       string
	campaigns  int
	industries []string
}{
	{"居酒屋", 480, []string{"beer", "sake", "food", "drink"}},
	{"カフェ", 420, []string{"coffee", "drink", "snack", "food"}},
	{"ラーメン", 360, []string{"noodle", "beer", "food", "snack"}},
}

// modifiers make long-tail keywords out of an industry's words (焼肉
// 食べ放題, コーヒー テイクアウト): each is bid on by a few campaigns only.
var modifiers = []string{"安い", "人気", "おすすめ", "深夜", "24時間", "個室", "一人", "食べ放題", "飲み放題",
	"禁煙", "テイクアウト", "持ち帰り", "朝", "昼", "夜", "駐車場あり", "新商品", "限定", "ポイント", "クーポン",
	"セール", "キャッシュレス", "家族", "デート", "子連れ"}

// negativeSets are what campaigns refuse to show on; one is drawn per
// campaign (the empty set too).
var negativeSets = [][]string{
	{},
	{"求人", "バイト"},
	{"求人", "バイト", "アルバイト"},
	{"閉店"},
	{"求人", "バイト", "閉店", "口コミ"},
}

// Match types and their weights: most advertisers bid broad.
var matchTypes = []struct {
	match  campaigns.MatchType
	weight int
}{{campaigns.Broad, 60}, {campaigns.Phrase, 25}, {campaigns.Exact, 15}}

// brandPrefixes name brands; with an industry's suffix and a number when
// they run out, every advertiser gets its own.
var brandPrefixes = []string{"青空", "麦星", "富士見", "桜坂", "日の出", "北斗", "若葉", "銀河", "黄金", "紅葉", "白鷺", "大和", "朝凪", "月光", "風林", "翠", "琥珀", "雷門", "海風", "山吹"}

// Searches: what people type, in three families. Trigger words come from the
// campaigns' own vocabulary, weighted by popularity; area words make
// two-word searches (新宿 居酒屋); neutral searches trigger no campaign at
// all and make up about a third of the traffic (WORKLOAD.md, hard case 5).
var (
	searchPopular = []weighted{{"居酒屋", 30}, {"カフェ", 25}, {"ラーメン", 25}}
	searchCommon  = []weighted{
		{"コーヒー", 10}, {"焼き鳥", 6}, {"コンビニ", 8}, {"ランチ", 8}, {"ビール", 5}, {"寿司", 4}, {"焼肉", 5},
		{"うどん", 3}, {"そば", 3}, {"カレー", 4}, {"スイーツ", 4}, {"お菓子", 2}, {"弁当", 3}, {"喫茶店", 3},
		{"飲み屋", 4}, {"つけ麺", 2}, {"餃子", 2}, {"ハンバーガー", 3}, {"牛丼", 3}, {"日本酒", 2}, {"パン", 2},
		{"定食", 2}, {"ケーキ", 2}, {"アイス", 2}, {"お茶", 1}, {"自販機", 1}, {"中華", 2}, {"クラフトビール", 1},
		{"豚骨ラーメン", 1}, {"抹茶ラテ", 1}, {"モーニング", 1}, {"テイクアウト", 1},
	}
	searchAreas   = []string{"新宿", "渋谷", "池袋", "梅田", "難波", "栄", "上野", "銀座", "近く", "駅前", "天神", "すすきの"}
	searchNeutral = []weighted{
		{"駅", 12}, {"歯医者", 6}, {"病院", 8}, {"銀行", 5}, {"郵便局", 5}, {"駐車場", 10}, {"公園", 5},
		{"市役所", 2}, {"区役所", 2}, {"図書館", 3}, {"ガソリンスタンド", 5}, {"美容院", 4}, {"交番", 2},
		{"コインランドリー", 3}, {"眼科", 2}, {"皮膚科", 2}, {"動物病院", 2}, {"ATM", 4}, {"トイレ", 6},
		{"新宿駅", 4}, {"東京駅", 4}, {"梅田駅", 2}, {"名古屋駅", 2}, {"ホテル", 5}, {"映画館", 3},
		{"本屋", 3}, {"花屋", 2}, {"クリーニング", 2}, {"ドラッグストア", 4}, {"薬局", 3}, {"ジム", 2},
		{"東京タワー", 1}, {"スカイツリー", 1}, {"大阪城", 1}, {"空港", 2}, {"バス停", 3}, {"タクシー乗り場", 2},
	}
	// searchBlocked are trigger words with a job-hunting or closure word:
	// they trigger campaigns that their negatives then block.
	searchBlocked = []string{"居酒屋 バイト", "カフェ 求人", "ラーメン バイト", "コンビニ 求人", "居酒屋 閉店"}
)

// metros are where stores cluster densely: within core km of the centre an
// OpenStreetMap point anchors many stores packed tight; within ring km
// somewhat more than elsewhere.
var metros = []struct {
	name          string
	lat, lng      float64
	coreKm, ringK float64
}{
	{"東京都", 35.6812, 139.7671, 12, 35},
	{"大阪府", 34.6937, 135.5023, 8, 25},
	{"愛知県", 35.1709, 136.8815, 6, 20},
}

// cities name the nearest big city of a store in its address.
var cities = []struct {
	name     string
	lat, lng float64
}{
	{"東京都新宿区", 35.6938, 139.7034}, {"東京都渋谷区", 35.6640, 139.6982}, {"東京都千代田区", 35.6940, 139.7536},
	{"東京都中央区", 35.6707, 139.7720}, {"東京都港区", 35.6581, 139.7516}, {"東京都豊島区", 35.7260, 139.7166},
	{"東京都台東区", 35.7127, 139.7800}, {"東京都世田谷区", 35.6464, 139.6533}, {"東京都八王子市", 35.6664, 139.3160},
	{"神奈川県横浜市", 35.4437, 139.6380}, {"神奈川県川崎市", 35.5308, 139.7029}, {"埼玉県さいたま市", 35.8617, 139.6455},
	{"千葉県千葉市", 35.6074, 140.1065}, {"大阪府大阪市北区", 34.7055, 135.4983}, {"大阪府大阪市中央区", 34.6813, 135.5100},
	{"京都府京都市", 35.0116, 135.7681}, {"兵庫県神戸市", 34.6901, 135.1955}, {"愛知県名古屋市", 35.1815, 136.9066},
	{"北海道札幌市", 43.0618, 141.3545}, {"宮城県仙台市", 38.2682, 140.8694}, {"広島県広島市", 34.3853, 132.4553},
	{"福岡県福岡市", 33.5904, 130.4017}, {"沖縄県那覇市", 26.2124, 127.6809}, {"新潟県新潟市", 37.9161, 139.0364},
	{"静岡県静岡市", 34.9756, 138.3828}, {"岡山県岡山市", 34.6551, 133.9195}, {"熊本県熊本市", 32.8031, 130.7079},
	{"鹿児島県鹿児島市", 31.5966, 130.5571}, {"長野県長野市", 36.6485, 138.1950}, {"石川県金沢市", 36.5613, 136.6562},
}
