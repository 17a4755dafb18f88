package httpapi_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// TestPostAdsFieldNamesAreExact: POST /v1/ads ignores the fields navad does
// not know (API.md, DecisionRequest), and "N", "MODE" or "Q" are not n,
// mode and q. Go's JSON decoder matches member names without regard to case,
// so they used to be taken for the fields: an app's own "N" of 20 refused
// the request, and a "Q" after the q replaced the search.
func TestPostAdsFieldNamesAreExact(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	tests := []struct {
		name  string
		give  string
		want  int // ads: the world has two campaigns with a store near
		wantM string
	}{
		{"exact names", `{"lat":35.6909,"lng":139.7003,"q":"居酒屋","n":1,"mode":"car"}`, 1, "car"},
		{"an unknown N is ignored", `{"lat":35.6909,"lng":139.7003,"q":"居酒屋","N":20}`, 2, "walk"},
		{"an unknown MODE is ignored", `{"lat":35.6909,"lng":139.7003,"q":"居酒屋","MODE":"bicycle"}`, 2, "walk"},
		{"an unknown Mode does not set the mode", `{"lat":35.6909,"lng":139.7003,"q":"居酒屋","Mode":"car"}`, 2, "walk"},
		{"an unknown Q does not replace q", `{"lat":35.6909,"lng":139.7003,"q":"居酒屋","Q":"歯医者"}`, 2, "walk"},
		{"an unknown Uid is ignored", `{"lat":35.6909,"lng":139.7003,"q":"居酒屋","Uid":{"device":1}}`, 2, "walk"},
		{"a moDe after the mode does not replace it", `{"lat":35.6909,"lng":139.7003,"q":"居酒屋","mode":"walk","moDe":"car"}`, 2, "walk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", "/v1/ads", w.publisherKey, tt.give)
			if r.Status != 200 {
				t.Fatalf("status %d, want 200: %s", r.Status, r.Body)
			}
			var body adsBody
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatal(err)
			}
			if len(body.Ads) != tt.want {
				t.Fatalf("%d ads, want %d: %s", len(body.Ads), tt.want, r.Body)
			}
			for _, ad := range body.Ads {
				if ad.Route.Mode != tt.wantM {
					t.Fatalf("mode %q, want %q: %s", ad.Route.Mode, tt.wantM, r.Body)
				}
			}
		})
	}
	// A field without its exact name is missing, not taken.
	r := e.do("POST", "/v1/ads", w.publisherKey, `{"LAT":35.6909,"lng":139.7003,"q":"居酒屋"}`)
	if r.Status != 400 || r.errorCode(t) != "invalid_argument" {
		t.Fatalf("LAT for lat: status %d, want 400: %s", r.Status, r.Body)
	}
}

// TestPostAdsRefusesInvalidUTF8: a q or uid that is not UTF-8 is a 400
// naming the field on POST as on GET (API.md: JSON in UTF-8). Go's JSON
// decoder replaces each bad byte with U+FFFD, so a body sent in Shift_JIS
// was searched for as a string of replacement characters, or a uid of them
// shared one user's frequency caps among many.
func TestPostAdsRefusesInvalidUTF8(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	sjis := "\x8b\x8f\x8e\xf0\x89\xae" // 居酒屋 in Shift_JIS
	tests := []struct {
		name, give, field string
	}{
		{"q with a stray byte", "{\"lat\":35.6909,\"lng\":139.7003,\"q\":\"居酒屋\xff\"}", "q"},
		{"q in Shift_JIS", "{\"lat\":35.6909,\"lng\":139.7003,\"q\":\"" + sjis + "\"}", "q"},
		{"uid with a stray byte", "{\"lat\":35.6909,\"lng\":139.7003,\"q\":\"居酒屋\",\"uid\":\"u\xfe1\"}", "uid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", "/v1/ads", w.publisherKey, tt.give)
			if r.Status != 400 || r.errorCode(t) != "invalid_argument" {
				t.Fatalf("status %d, want 400: %s", r.Status, r.Body)
			}
			if !strings.Contains(string(r.Body), `"field":"`+tt.field+`"`) {
				t.Fatalf("the error does not name %s: %s", tt.field, r.Body)
			}
			// GET says the same of the same bytes.
			g := e.do("GET", "/v1/ads?lat=35.6909&lng=139.7003&q="+url.QueryEscape(sjis), w.publisherKey, nil)
			if g.Status != 400 {
				t.Fatalf("GET: status %d, want 400: %s", g.Status, g.Body)
			}
		})
	}
	// Unknown members are not read, whatever their bytes.
	r := e.do("POST", "/v1/ads", w.publisherKey, "{\"lat\":35.6909,\"lng\":139.7003,\"q\":\"居酒屋\",\"note\":\"\xff\"}")
	if r.Status != 200 {
		t.Fatalf("a bad byte in an unknown member: status %d, want 200: %s", r.Status, r.Body)
	}
}
