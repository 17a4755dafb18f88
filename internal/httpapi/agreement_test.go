package httpapi_test

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDocumentAndServerAgreeOnRequests: for each request, the server takes
// it (2xx) exactly when the OpenAPI document allows it. The suite's checker
// holds every accepted request to the document; this holds every refused
// one too, so that a client validating against the document is neither
// refused for a request the document allows nor told a refused one is fine.
func TestDocumentAndServerAgreeOnRequests(t *testing.T) {
	c, err := openAPI()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	w := e.world()
	const campaign = `{"name":"c","keywords":[{"text":"居酒屋","match":"broad"}],"product_id":"beer-350","creative":{"title":"t","landing_url":"https://example.com/"}`
	const store = `{"id":"s9","name":"店","lat":35.69,"lng":139.7,"products":["beer-350"]`
	const stock = `{"store_id":"shinjuku-1","product_id":"beer-350"`
	ads := "/v1/ads?lat=35.6909&lng=139.7003&q=%E5%B1%85%E9%85%92%E5%B1%8B"
	tests := []struct {
		name, method, path, body, contentType string
		ok                                    bool
	}{
		{"decision", "GET", ads, "", "", true},
		{"decision n=10", "GET", ads + "&n=10", "", "", true},
		{"decision n=0", "GET", ads + "&n=0", "", "", false},
		{"decision n=11", "GET", ads + "&n=11", "", "", false},
		{"decision lat=91", "GET", "/v1/ads?lat=91&lng=139.7&q=a", "", "", false},
		{"decision lng=-180.5", "GET", "/v1/ads?lat=35&lng=-180.5&q=a", "", "", false},
		{"decision acc=100000", "GET", ads + "&acc=100000", "", "", true},
		{"decision acc=250000", "GET", ads + "&acc=250000", "", "", true},
		{"decision acc=-1", "GET", ads + "&acc=-1", "", "", false},
		{"decision mode=bike", "GET", ads + "&mode=bike", "", "", false},
		{"decision q of spaces", "GET", "/v1/ads?lat=35&lng=139&q=%20%20", "", "", true},
		{"decision q empty", "GET", "/v1/ads?lat=35&lng=139&q=", "", "", false},
		{"decision without q", "GET", "/v1/ads?lat=35&lng=139", "", "", false},
		{"decision uid of 1024", "GET", ads + "&uid=" + strings.Repeat("u", 1024), "", "", true},
		{"decision uid of 1025", "GET", ads + "&uid=" + strings.Repeat("u", 1025), "", "", false},
		{"POST decision", "POST", "/v1/ads", `{"lat":35.6909,"lng":139.7003,"q":"居酒屋","n":10,"mode":"car","acc":5,"uid":"u"}`, "", true},
		{"POST decision n 0", "POST", "/v1/ads", `{"lat":35.6909,"lng":139.7003,"q":"居酒屋","n":0}`, "", false},
		{"POST decision q empty", "POST", "/v1/ads", `{"lat":35.6909,"lng":139.7003,"q":""}`, "", false},
		{"POST decision unknown member", "POST", "/v1/ads", `{"lat":35.6909,"lng":139.7003,"q":"居酒屋","app":{"v":1}}`, "", true},

		{"campaign", "POST", "/v1/campaigns", campaign + `}`, "", true},
		{"campaign radius_m 0 (the default)", "POST", "/v1/campaigns", campaign + `,"radius_m":0}`, "", true},
		{"campaign radius_m 50", "POST", "/v1/campaigns", campaign + `,"radius_m":50}`, "", true},
		{"campaign radius_m 49", "POST", "/v1/campaigns", campaign + `,"radius_m":49}`, "", false},
		{"campaign radius_m 5001", "POST", "/v1/campaigns", campaign + `,"radius_m":5001}`, "", false},
		{"campaign without keywords", "POST", "/v1/campaigns", strings.Replace(campaign, `{"text":"居酒屋","match":"broad"}`, ``, 1) + `}`, "", false},
		{"campaign keyword of another match", "POST", "/v1/campaigns", strings.Replace(campaign, `broad`, `fuzzy`, 1) + `}`, "", false},
		{"campaign empty negative keyword", "POST", "/v1/campaigns", campaign + `,"negative_keywords":[""]}`, "", false},
		{"campaign empty name", "POST", "/v1/campaigns", strings.Replace(campaign, `"name":"c"`, `"name":""`, 1) + `}`, "", false},
		{"campaign blank name", "POST", "/v1/campaigns", strings.Replace(campaign, `"name":"c"`, `"name":"  "`, 1) + `}`, "", false},
		{"campaign bad product_id", "POST", "/v1/campaigns", strings.Replace(campaign, `beer-350`, `beer 350`, 1) + `}`, "", false},
		{"campaign ftp landing URL", "POST", "/v1/campaigns", strings.Replace(campaign, `https://example.com/`, `ftp://example.com/`, 1) + `}`, "", false},
		{"campaign unknown member", "POST", "/v1/campaigns", campaign + `,"colour":"red"}`, "", false},
		{"campaign hours to 24:00", "POST", "/v1/campaigns", campaign + `,"hours":[{"days":["fri"],"from":"17:00","to":"24:00"}]}`, "", true},
		{"campaign hours from 25:00", "POST", "/v1/campaigns", campaign + `,"hours":[{"from":"25:00","to":"26:00"}]}`, "", false},
		{"campaign hours day Friday", "POST", "/v1/campaigns", campaign + `,"hours":[{"days":["Friday"],"from":"17:00","to":"20:00"}]}`, "", false},
		{"campaign priority 1001", "POST", "/v1/campaigns", campaign + `,"priority":1001}`, "", false},
		{"campaign bid_cpm -1", "POST", "/v1/campaigns", campaign + `,"bid_cpm":-1}`, "", false},
		{"campaign frequency_cap impressions 0", "POST", "/v1/campaigns", campaign + `,"frequency_cap":{"impressions":0,"per":"24h"}}`, "", false},
		{"campaign null optional members", "POST", "/v1/campaigns", campaign + `,"id":null,"status":null,"start":null,"end":null,"negative_keywords":null,"radius_m":null,"modes":null,"publishers":null,"hours":null,"priority":null,"bid_cpm":null,"budget":null,"frequency_cap":null}`, "", true},
		{"campaign patch", "PATCH", "/v1/campaigns/" + w.campB, `{"radius_m":1000,"frequency_cap":null}`, "application/merge-patch+json", true},
		{"campaign patch radius_m 49", "PATCH", "/v1/campaigns/" + w.campB, `{"radius_m":49}`, "application/merge-patch+json", false},
		{"campaign patch unknown member", "PATCH", "/v1/campaigns/" + w.campB, `{"colour":"red"}`, "application/merge-patch+json", false},

		{"stores", "PUT", "/v1/stores", `[` + store + `}]`, "", true},
		{"stores without lat", "PUT", "/v1/stores", `[` + strings.Replace(store, `"lat":35.69,`, ``, 1) + `}]`, "", false},
		{"stores lat null", "PUT", "/v1/stores", `[` + strings.Replace(store, `35.69`, `null`, 1) + `}]`, "", false},
		{"stores lat 91", "PUT", "/v1/stores", `[` + strings.Replace(store, `35.69`, `91`, 1) + `}]`, "", false},
		{"stores empty name", "PUT", "/v1/stores", `[` + strings.Replace(store, `"店"`, `""`, 1) + `}]`, "", false},
		{"stores no products", "PUT", "/v1/stores", `[` + strings.Replace(store, `["beer-350"]`, `[]`, 1) + `}]`, "", false},
		{"stores unknown member", "PUT", "/v1/stores", `[` + store + `,"colour":"red"}]`, "", false},
		{"stores null address and hours", "PUT", "/v1/stores", `[` + store + `,"address":null,"hours":null}]`, "", true},
		{"stores as text/plain", "PUT", "/v1/stores", `[` + store + `}]`, "text/plain", true},
		{"stores as CSV", "PUT", "/v1/stores", "id,name,lat,lng,products\ns9,店,35.69,139.7,beer-350\n", "text/csv", true},
		{"stores as application/csv", "PUT", "/v1/stores", "id,name,lat,lng,products\ns9,店,35.69,139.7,beer-350\n", "application/csv", true},
		{"stores as XML", "PUT", "/v1/stores", `<stores/>`, "application/xml", false},

		{"stock", "PUT", "/v1/inventory", `[` + stock + `,"in_stock":true}]`, "", true},
		{"stock quantity alone", "PUT", "/v1/inventory", `[` + stock + `,"quantity":3}]`, "", true},
		{"stock in_stock null with quantity", "PUT", "/v1/inventory", `[` + stock + `,"in_stock":null,"quantity":0}]`, "", true},
		{"stock neither in_stock nor quantity", "PUT", "/v1/inventory", `[` + stock + `}]`, "", false},
		{"stock negative quantity", "PUT", "/v1/inventory", `[` + stock + `,"quantity":-1}]`, "", false},
		{"stock bad store_id", "PUT", "/v1/inventory", `[{"store_id":"","product_id":"beer-350","in_stock":true}]`, "", false},
		{"stock unknown member", "PUT", "/v1/inventory", `[` + stock + `,"in_stock":true,"price":100}]`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := w.advBKey
			if strings.HasPrefix(tt.path, "/v1/ads") {
				key = w.publisherKey
			}
			var hdr []string
			if tt.contentType != "" {
				hdr = []string{"Content-Type", tt.contentType}
			}
			var body any
			if tt.body != "" {
				body = tt.body
			}
			r := e.do(tt.method, tt.path, key, body, hdr...)
			served := r.Status >= 200 && r.Status < 300
			if served != tt.ok || !served && r.Status != 400 {
				t.Errorf("the server answered %d, want ok=%v: %s", r.Status, tt.ok, r.Body)
			}
			req := httptest.NewRequest(tt.method, tt.path, bytes.NewReader([]byte(tt.body)))
			req.Header.Set("Authorization", "Bearer "+key)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			err := c.Request(req, []byte(tt.body))
			if (err == nil) != tt.ok {
				t.Errorf("the document allows it: %v, want %v (%v)", err == nil, tt.ok, err)
			}
		})
	}
}
