package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// schemaAccepts reports whether the OpenAPI document's component schema
// name accepts v (a value as encoding/json decodes it).
func schemaAccepts(t *testing.T, name string, v any) bool {
	t.Helper()
	c, err := openAPI()
	if err != nil {
		t.Fatal(err)
	}
	s := c.Doc().Components.Schemas[name]
	if s == nil || s.Value == nil {
		t.Fatalf("no schema %s", name)
	}
	return s.Value.VisitJSON(v) == nil
}

// TestUIDLimitIsCharacters: uid is at most 1024 characters, as the OpenAPI
// UID schema (maxLength counts characters) says. The server counted bytes,
// so a uid of that many Japanese characters, which the document accepts,
// was a 400. Counting characters refuses nothing it took before: n bytes
// are never more than n characters.
func TestUIDLimitIsCharacters(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	tests := []struct {
		name, give string
		want       int
	}{
		{"1024 ASCII", strings.Repeat("u", 1024), 200},
		{"1024 Japanese characters (3072 bytes)", strings.Repeat("利", 1024), 200},
		{"1024 characters of four bytes", strings.Repeat("😀", 1024), 200},
		{"1025 ASCII", strings.Repeat("u", 1025), 400},
		{"1025 Japanese characters", strings.Repeat("利", 1025), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := schemaAccepts(t, "UID", tt.give); got != (tt.want == 200) {
				t.Fatalf("the UID schema accepts it: %v; the test expects %d", got, tt.want)
			}
			v := shinjuku("居酒屋")
			v.Set("uid", tt.give)
			get := e.do("GET", adsPath(v), w.publisherKey, nil)
			post := e.do("POST", "/v1/ads", w.publisherKey, map[string]any{
				"lat": 35.6909, "lng": 139.7003, "q": "居酒屋", "uid": tt.give})
			for _, r := range []response{get, post} {
				if r.Status != tt.want {
					t.Fatalf("status %d, want %d: %s", r.Status, tt.want, r.Body)
				}
				if tt.want == 400 && !strings.Contains(string(r.Body), `"field":"uid"`) {
					t.Fatalf("the error does not name uid: %s", r.Body)
				}
			}
		})
	}
}

// TestSymbolQueryTriggersNothing: a query of symbols, emoji, punctuation
// or spaces alone is what a user typed (1 to 100 characters, API.md) and
// triggers nothing: a 200 with no ads, on GET as on POST, not a 400 the
// navigation app would count as its own error.
func TestSymbolQueryTriggersNothing(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	for _, q := range []string{"🍺", "!!", " ", "　", "・・・", "😀 😀"} {
		v := shinjuku(q)
		get := e.do("GET", adsPath(v), w.publisherKey, nil)
		post := e.do("POST", "/v1/ads", w.publisherKey, map[string]any{"lat": 35.6909, "lng": 139.7003, "q": q})
		for _, r := range []response{get, post} {
			if r.Status != 200 {
				t.Fatalf("q %q: status %d, want 200: %s", q, r.Status, r.Body)
			}
			var got struct {
				Ads []json.RawMessage `json:"ads"`
			}
			if err := json.Unmarshal(r.Body, &got); err != nil || got.Ads == nil || len(got.Ads) != 0 {
				t.Fatalf("q %q: %s, want \"ads\": []", q, r.Body)
			}
		}
	}
}

// TestRepeatedDecisionFieldIsRefused: a field given twice is a 400 naming
// it, on GET as on POST. GET took the first value and POST the last, so the
// same request asked two ways searched for different words; JSON leaves a
// repeated member's meaning to the reader (RFC 8259), and the OpenAPI
// checker read a repeat in a body as POST did but one in a query as GET
// did. Refusing it leaves no reading to disagree on.
func TestRepeatedDecisionFieldIsRefused(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	tests := []struct {
		name, get, post, field string
	}{
		{"q", "lat=35.6909&lng=139.7003&q=%E5%B1%85%E9%85%92%E5%B1%8B&q=%E6%AD%AF%E5%8C%BB%E8%80%85",
			`{"lat":35.6909,"lng":139.7003,"q":"居酒屋","q":"歯医者"}`, "q"},
		{"n, the same value twice", "lat=35.6909&lng=139.7003&q=a&n=3&n=3",
			`{"lat":35.6909,"lng":139.7003,"q":"a","n":3,"n":3}`, "n"},
		{"mode, under an escaped name", "lat=35.6909&lng=139.7003&q=a&mode=walk&m%6Fde=car",
			`{"lat":35.6909,"lng":139.7003,"q":"a","mode":"walk","m\u006fde":"car"}`, "mode"},
		{"lat", "lat=35.6909&lng=139.7003&lat=0&q=a",
			`{"lat":35.6909,"lng":139.7003,"lat":0,"q":"a"}`, "lat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			get := e.do("GET", "/v1/ads?"+tt.get, w.publisherKey, nil)
			post := e.do("POST", "/v1/ads", w.publisherKey, tt.post)
			for _, r := range []response{get, post} {
				if r.Status != 400 || r.errorCode(t) != "invalid_argument" {
					t.Fatalf("status %d, want 400: %s", r.Status, r.Body)
				}
				if !strings.Contains(string(r.Body), `{"field":"`+tt.field+`","message":"must be given once"}`) {
					t.Fatalf("the error does not say %s is repeated: %s", tt.field, r.Body)
				}
			}
		})
	}
	// A repeat of a member navad does not know, or inside one, is not read.
	r := e.do("POST", "/v1/ads", w.publisherKey, `{"lat":35.6909,"lng":139.7003,"q":"居酒屋","app":1,"app":2,"x":{"q":1,"q":2}}`)
	if r.Status != 200 {
		t.Fatalf("repeated unknown members: status %d, want 200: %s", r.Status, r.Body)
	}
	g := e.do("GET", "/v1/ads?lat=35.6909&lng=139.7003&q=%E5%B1%85%E9%85%92%E5%B1%8B&app=1&app=2", w.publisherKey, nil)
	if g.Status != 200 {
		t.Fatalf("GET with repeated unknown fields: status %d, want 200: %s", g.Status, g.Body)
	}
}

// TestPostAdsNIsAnyIntegralNumber: "n": 3.0 (or 3e0) is n 3, as the
// OpenAPI AdCount schema, type integer, accepts it: JSON Schema counts a
// number without a fraction as an integer however it is written, and a
// JavaScript client cannot tell 3 from 3.0. The server refused it.
func TestPostAdsNIsAnyIntegralNumber(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	tests := []struct {
		give    string
		want    int // status
		wantAds int
	}{
		{"1.0", 200, 1},
		{"1e0", 200, 1},
		{"10.000", 200, 2},
		{"1.5", 400, 0},
		{"0.0", 400, 0},
		{"1e300", 400, 0},
		{`"1"`, 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			var n any
			if err := json.Unmarshal([]byte(tt.give), &n); err != nil {
				t.Fatal(err)
			}
			if got := schemaAccepts(t, "AdCount", n); got != (tt.want == 200) {
				t.Fatalf("the AdCount schema accepts it: %v; the test expects %d", got, tt.want)
			}
			r := e.do("POST", "/v1/ads", w.publisherKey, `{"lat":35.6909,"lng":139.7003,"q":"居酒屋","n":`+tt.give+`}`)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.want, r.Body)
			}
			if tt.want == 400 {
				if !strings.Contains(string(r.Body), `"field":"n"`) {
					t.Fatalf("the error does not name n: %s", r.Body)
				}
				return
			}
			var body adsBody
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatal(err)
			}
			if len(body.Ads) != tt.wantAds {
				t.Fatalf("%d ads, want %d: %s", len(body.Ads), tt.wantAds, r.Body)
			}
		})
	}
}

// TestPostAdsRefusesLoneSurrogates: a JSON escape of half a UTF-16 pair
// ("\ud800") in q or uid stands for no character; Go's decoder made it
// U+FFFD and searched or capped with that, while the same text sent as
// bytes (ED A0 80, invalid UTF-8) was a 400 naming the field, on POST and
// GET. Now both are refused; a whole escaped pair, or an escaped U+FFFD,
// is taken.
func TestPostAdsRefusesLoneSurrogates(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	tests := []struct {
		name, q, uid string
		want         int
		field        string
	}{
		{"a lone high surrogate in q", `居酒屋\ud800`, "u1", 400, "q"},
		{"a lone low surrogate in q", `\uDC00居酒屋`, "u1", 400, "q"},
		{"a high surrogate before a letter", `\ud83d\u0041居酒屋`, "u1", 400, "q"},
		{"a lone surrogate in uid", `居酒屋`, `u\ud800`, 400, "uid"},
		{"an escaped backslash before u", `居酒屋\\ud800`, "u1", 200, ""},
		{"a whole pair", `居酒屋\ud83c\udf7a`, `\ud83d\ude00`, 200, ""},
		{"an escaped U+FFFD", `居酒屋\ufffd`, "u1", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", "/v1/ads", w.publisherKey, `{"lat":35.6909,"lng":139.7003,"q":"`+tt.q+`","uid":"`+tt.uid+`"}`)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.want, r.Body)
			}
			if tt.want == 400 && !strings.Contains(string(r.Body), `{"field":"`+tt.field+`","message":"must be valid UTF-8"}`) {
				t.Fatalf("the error does not name %s: %s", tt.field, r.Body)
			}
		})
	}
	// The surrogate's bytes, on GET: refused, as before.
	g := e.do("GET", "/v1/ads?lat=35.6909&lng=139.7003&q=%E5%B1%85%ED%A0%80", w.publisherKey, nil)
	if g.Status != 400 || !strings.Contains(string(g.Body), `"field":"q"`) {
		t.Fatalf("GET: status %d, want 400 naming q: %s", g.Status, g.Body)
	}
}

// TestNullOptionalMembersAreAbsent: null for an optional member means the
// member is left out, as the server has always read it (a visit with
// "acc": null is checked as one without acc; a decision with "n": null
// gets the default n). The OpenAPI document said those members were not
// nullable, so apps that serialise a missing value as null were sending
// requests it refused though the server took them; it now says nullable.
func TestNullOptionalMembersAreAbsent(t *testing.T) {
	te := newTrackedEnv(t)
	w := te.world()
	for _, tt := range []struct {
		schema string
		give   map[string]any
	}{
		{"VisitClaim", map[string]any{"lat": 35.6905, "lng": 139.7005, "acc": nil}},
		{"DecisionRequest", map[string]any{"lat": 35.6909, "lng": 139.7003, "q": "居酒屋", "n": nil, "mode": nil, "acc": nil, "uid": nil}},
	} {
		if !schemaAccepts(t, tt.schema, tt.give) {
			t.Errorf("the %s schema refuses %v", tt.schema, tt.give)
		}
	}
	ad := te.ads(w.publisherKey)[0]
	te.must(204, te.do("POST", path(t, ad.VisitURL), "", `{"lat":35.6905,"lng":139.7005,"acc":null}`))
	r := te.must(200, te.do("POST", "/v1/ads", w.publisherKey,
		`{"lat":35.6909,"lng":139.7003,"q":"居酒屋","n":null,"mode":null,"acc":null,"uid":null}`))
	var body adsBody
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Ads) != 2 || body.Ads[0].Route.Mode != "walk" {
		t.Fatalf("nulls not read as absent (2 ads on foot wanted): %s", r.Body)
	}
	// A required member is still required: null is not a fix.
	te.must(400, te.do("POST", "/v1/ads", w.publisherKey, `{"lat":null,"lng":139.7003,"q":"居酒屋"}`))
}
