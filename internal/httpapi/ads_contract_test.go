package httpapi_test

import (
	"encoding/json"
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
