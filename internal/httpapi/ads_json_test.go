package httpapi

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/navad/navad/geo"
	"github.com/navad/navad/internal/tracking"
)

// TestDecisionJSONMatchesEncodingJSON: the hand-written decision writer
// produces exactly what encoding/json produces for the same values, for
// realistic answers and for hostile strings and numbers.
func TestDecisionJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{
		"", "オススメ情報", "今夜は<b>一杯</b> & more", `quote " and \ backslash`, "line\nbreak\ttab\r\b\f",
		"\x00\x01\x1f\x7f", "bad utf8 \xff\xfe here", "\u2028\u2029", "emoji 🍺", "https://example.com/?a=1&b=<2>",
		"http://localhost:8080/v1/i/AWsHWTAIgvWjdR___wIgmAQIU6kUC291aHhvaDZ6OS4xFGNtcF9x",
		"<script>alert(1)</script>", "'; DROP TABLE campaigns; --",
	}
	floats := []float64{0, 35.6909, 139.7003, -33.8688, 1e-7, 1.5e-6, 123456789.123, 1e21, -1e22, 5e-324, math.MaxFloat64, 90, -180}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func() string {
		if r.IntN(4) == 0 {
			b := make([]byte, r.IntN(12))
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			return string(b)
		}
		return strs[r.IntN(len(strs))]
	}
	pickF := func() float64 {
		if r.IntN(3) == 0 {
			return (r.Float64() - 0.5) * 360
		}
		return floats[r.IntN(len(floats))]
	}
	for range 2000 {
		d := decisionJSON{RequestID: pick(), Ads: make([]adJSON, r.IntN(4))}
		for i := range d.Ads {
			a := &d.Ads[i]
			a.AdID, a.CampaignID, a.Label, a.Title, a.Text, a.ImageURL, a.LandingURL = pick(), pick(), pick(), pick(), pick(), pick(), pick()
			a.Store = storeJSON{ID: pick(), Name: pick(), Address: pick(), Lat: pickF(), Lng: pickF()}
			a.Route = routeJSON{Mode: pick(), Target: latLngJSON{Lat: pickF(), Lng: pickF()},
				DistanceM: r.IntN(10000) - 5, RouteDistanceM: r.IntN(20000), ETASeconds: r.IntN(3600),
				Links: linksJSON{Geo: pick(), GoogleMaps: pick()}}
			if r.IntN(3) > 0 {
				a.ImpressionURL, a.ClickURL, a.NavigateURL, a.VisitURL = pick(), pick(), pick(), pick()
			}
		}
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got := appendDecision(nil, &d)
		if string(got) != string(want) {
			t.Fatalf("got\n%s\nwant\n%s", got, want)
		}
		if !utf8.Valid(got) || !json.Valid(got) {
			t.Fatalf("invalid JSON: %s", got)
		}
	}
}

// TestJSONStringMatchesEncodingJSON holds appendJSONString's fast paths
// (eight plain ASCII bytes at once, three-byte UTF-8 without decoding) to
// encoding/json on long strings built from pieces at the edges of both:
// every byte to escape at every offset of a word, and lead bytes E0, ED
// and E2 (U+2028, U+2029) with valid, invalid and cut-off continuations.
func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	pieces := []string{
		"abcdefgh", "https://example.com/maps?api=1", "x", "1234567",
		`"`, `\`, "<", ">", "&", "\x00", "\x1f", " ", "\x7f", "~",
		"乾杯", "ビール", "\u2028", "\u2029", "\u2027", "\u202a", "\uffff", "\ufffd",
		"\xe0\xa0\x80", "\xe0\x80\x80", "\xed\x9f\xbf", "\xed\xa0\x80", "\xe2\x80", "\xe3\x81", "\xe3",
		"\xef\xbf\xbf", "\xf0\x9f\x8d\xba", "\xc3\xa9", "\xc3", "\x80", "\xff",
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		var s []byte
		for range r.IntN(12) {
			s = append(s, pieces[r.IntN(len(pieces))]...)
		}
		want, err := json.Marshal(string(s))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, string(s)); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	}
}

func TestDecisionJSONAllocs(t *testing.T) {
	d := decisionJSON{RequestID: "abc", Ads: []adJSON{{AdID: "abc.1", Title: "乾杯", ImpressionURL: "http://x/v1/i/AAAA"},
		{AdID: "abc.2", Route: routeJSON{Target: latLngJSON{Lat: 35.69, Lng: 139.7}, Links: linksJSON{ofTarget: true, drive: true}}}}}
	b := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { b = appendDecision(b[:0], &d) }); n != 0 {
		t.Fatalf("%v allocations, want 0", n)
	}
}

// TestTrackingURLsFromToken checks that an ad's URLs written from its token
// (the decision path) are the URLs tracking.Service.Serve builds, escaped
// as encoding/json escapes them, for bases that need escaping too.
func TestTrackingURLsFromToken(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for _, base := range []string{"http://localhost:8080", "https://ads.example.jp/navad", "https://x.example/a&b<c>", "https://例え.jp/広告"} {
		for range 50 {
			tok := make([]byte, 20+r.IntN(150))
			for i := range tok {
				tok[i] = b64[r.IntN(len(b64))]
			}
			a := adJSON{AdID: "r.1", Title: "乾杯"}
			a.ImpressionURL = base + tracking.ImpressionPath + string(tok)
			a.ClickURL = base + tracking.ClickPath + string(tok)
			a.NavigateURL = base + tracking.NavigatePath + string(tok)
			a.VisitURL = base + tracking.VisitPath + string(tok)
			want, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			fromStrings := appendAd(nil, &a, "")
			if string(fromStrings) != string(want) {
				t.Fatalf("from strings:\n%s\nwant\n%s", fromStrings, want)
			}
			b := adJSON{AdID: "r.1", Title: "乾杯", token: tok}
			if got := appendAd(nil, &b, jsonEscaped(base)); string(got) != string(want) {
				t.Fatalf("from the token:\n%s\nwant\n%s", got, want)
			}
		}
	}
}

// BenchmarkAppendDecision writes a three-ad answer as the national
// benchmark's are: Japanese creative and store names, ASCII URLs, and the
// tracking tokens.
func BenchmarkAppendDecision(b *testing.B) {
	ad := adJSON{
		AdID: "orgwbru71.1", CampaignID: "cmp-00042-beer", Label: AdLabel,
		Title: "今夜はデモビールで乾杯", Text: "近くのお店で生ビールが飲めます。キンキンに冷えた一杯をどうぞ",
		ImageURL: "https://cdn.example.com/creative/beer-350-summer.png", LandingURL: "https://example.com/demo-beer?utm_source=navad",
		Store: storeJSON{ID: "store-0012345", Name: "謝朋殿 粥餐庁 京王モール店", Address: "東京都新宿区西新宿1丁目1-4", Lat: 35.6900288, Lng: 139.6988707},
		Route: routeJSON{Mode: "walk", Target: latLngJSON{Lat: 35.6900288, Lng: 139.6988707}, DistanceM: 156, RouteDistanceM: 203, ETASeconds: 180,
			Links: linksJSON{Geo: "geo:35.690029,139.698871", GoogleMaps: "https://www.google.com/maps/dir/?api=1&destination=35.690029%2C139.698871&travelmode=walking"}},
		token: []byte("AWsIkHcIgvWjdZ___wIgli0IU6K3C29yZ3dicnU3MS4xEWRlbW8tYmVlci1pemFrYXlhCWRlbW8tYmVlcglkZW1vLW5hdmkKcmVzdC0wOTUxOUumGGWzdYB2mgpOUWj94fk"),
	}
	d := decisionJSON{RequestID: "orgwbru71", Ads: []adJSON{ad, ad, ad}, linkBase: "http://localhost:8080"}
	buf := make([]byte, 0, 8<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendDecision(buf[:0], &d)
	}
	b.SetBytes(int64(len(buf)))
}

// TestLinksOfTargetMatchStrings: the links appendAd writes from the route's
// target are the bytes it writes for the strings geo makes of it (which
// TestDecisionJSONMatchesEncodingJSON holds to encoding/json), walking and
// driving, at the edges of the coordinates and at random.
func TestLinksOfTargetMatchStrings(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	places := [][2]float64{{90, 139.7}, {-90, -12.5}, {0, 0}, {-0.0000004, 180}, {35.6909004999, -180}, {35.69, 139.7003}}
	for range 2000 {
		places = append(places, [2]float64{r.Float64()*180 - 90, r.Float64()*360 - 180})
	}
	for _, p := range places {
		for _, drive := range []bool{false, true} {
			a := adJSON{AdID: "r.1", Route: routeJSON{Mode: "walk", Target: latLngJSON{Lat: p[0], Lng: p[1]},
				Links: linksJSON{ofTarget: true, drive: drive}}}
			got := appendAd(nil, &a, "")
			maps := geo.GoogleMapsWalkURL
			if drive {
				maps = geo.GoogleMapsDriveURL
			}
			var err error
			a.Route.Links = linksJSON{}
			if a.Route.Links.Geo, err = geo.GeoURI(p[0], p[1]); err != nil {
				t.Fatal(err)
			}
			if a.Route.Links.GoogleMaps, err = maps(p[0], p[1]); err != nil {
				t.Fatal(err)
			}
			if want := appendAd(nil, &a, ""); string(got) != string(want) {
				t.Fatalf("%v drive %v: got\n%s\nwant\n%s", p, drive, got, want)
			}
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
		}
	}
}

// TestDecisionQueryAllocs: reading a GET decision's query allocates only
// the unescaped copies of escaped values (here q's), nothing a field.
func TestDecisionQueryAllocs(t *testing.T) {
	tests := []struct {
		give string
		want float64
	}{
		{"lat=35.6909&lng=139.7003&q=izakaya&n=3&mode=walk&acc=12&uid=u1", 0},
		{"lat=35.6909&lng=139.7003&q=%E5%B1%85%E9%85%92%E5%B1%8B&n=3&mode=walk&acc=12&uid=" + strings.Repeat("u", 128), 1},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, func() { _, _ = parseDecisionQuery(tt.give, maxN) }); n != tt.want {
			t.Errorf("%s: %v allocations, want %v", tt.give, n, tt.want)
		}
	}
}
