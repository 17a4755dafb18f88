package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/navad/navad/internal/httpapi"
)

// TestOpenAPIDocumentValidates: the served document is valid OpenAPI 3,
// describes every route the server has and every endpoint of API.md.
func TestOpenAPIDocumentValidates(t *testing.T) {
	c, err := openAPI() // loads, validates (kin-openapi) and builds a router
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	r := e.must(200, e.do("GET", "/openapi.json", "", nil))
	want, _ := httpapi.OpenAPI()
	if !bytes.Equal(r.Body, want) || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json does not serve the document (%s)", r.Header.Get("Content-Type"))
	}
	doc := c.Doc()
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	// Every route the server has (tracking and reports arrive from their
	// branches and are documented already).
	param := regexp.MustCompile(`:([a-z_]+)`)
	for _, rt := range e.server.Gin().Routes() {
		key := rt.Method + " " + param.ReplaceAllString(rt.Path, "{$1}")
		if !documented[key] {
			t.Errorf("route %s is not in the OpenAPI document", key)
		}
	}
	// Every endpoint of API.md, and the key rotation endpoints.
	for _, key := range []string{
		"GET /v1/ads", "POST /v1/ads",
		"POST /v1/accounts", "GET /v1/accounts/{id}", "POST /v1/accounts/{id}/keys", "DELETE /v1/accounts/{id}/keys/old",
		"POST /v1/campaigns", "GET /v1/campaigns", "GET /v1/campaigns/{id}", "PUT /v1/campaigns/{id}", "PATCH /v1/campaigns/{id}", "DELETE /v1/campaigns/{id}",
		"PUT /v1/stores", "GET /v1/stores", "GET /v1/stores/{id}", "DELETE /v1/stores/{id}", "PUT /v1/inventory",
		"GET /v1/i/{token}", "GET /v1/c/{token}", "GET /v1/n/{token}", "POST /v1/v/{token}",
		"GET /v1/reports", "GET /v1/reports/cells.geojson", "GET /dashboard/",
		"GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json",
	} {
		if !documented[key] {
			t.Errorf("API.md's %s is not in the OpenAPI document", key)
		}
	}
	// The unauthenticated endpoints say so; every other one needs a key.
	open := []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/dashboard", "/dashboard/", "/dashboard/config.json", "/dashboard/{file}", "/v1/i/{token}", "/v1/c/{token}", "/v1/n/{token}", "/v1/v/{token}"}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			public := op.Security != nil && len(*op.Security) == 0
			if public != slices.Contains(open, path) {
				t.Errorf("%s %s: public=%v", method, path, public)
			}
			if !public && op.Responses.Status(429) == nil {
				t.Errorf("%s %s: rate-limited but documents no 429", method, path)
			}
		}
	}
}

// TestOpenAPICheckCatchesDrift: the checker the suite runs rejects answers
// the document does not describe, so passing tests mean something.
func TestOpenAPICheckCatchesDrift(t *testing.T) {
	c, err := openAPI()
	if err != nil {
		t.Fatal(err)
	}
	store := `{"id":"s1","advertiser_id":"adv_1","name":"店","address":"","lat":35.6,"lng":139.7,"products":["beer"],"hours":[]}`
	tests := []struct {
		name, method, path string
		status             int
		body               string
		ok                 bool
	}{
		{"a documented answer", "GET", "/v1/stores/s1", 200, store, true},
		{"an undocumented field", "GET", "/v1/stores/s1", 200, strings.Replace(store, `"name"`, `"secret":1,"name"`, 1), false},
		{"a wrong type", "GET", "/v1/stores/s1", 200, strings.Replace(store, `35.6`, `"35.6"`, 1), false},
		{"a missing required field", "GET", "/v1/stores/s1", 200, strings.Replace(store, `"products":["beer"],`, ``, 1), false},
		{"an undocumented status", "GET", "/v1/stores/s1", 418, `{"error":{"code":"internal","message":"teapot"}}`, false},
		{"an error body of the wrong shape", "GET", "/v1/stores/s1", 404, `{"message":"no"}`, false},
		{"an unknown error code", "GET", "/v1/stores/s1", 404, `{"error":{"code":"nope","message":"no"}}`, false},
		{"an unknown path answered 200", "GET", "/v1/nothing", 200, `{}`, false},
		{"an unknown path answered with the error body", "GET", "/v1/nothing", 404, `{"error":{"code":"not_found","message":"no such endpoint"}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			h := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "X-Request-Id": {"r1"}}
			err := c.Check(req, nil, tt.status, h, []byte(tt.body))
			if (err == nil) != tt.ok {
				t.Fatalf("check: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestOpenAPINullableHasAType: in OpenAPI 3.0.3 `nullable` counts only
// beside a `type` in the same schema, so a nullable schema without one
// (the document wrote `{nullable: true, allOf: [{$ref: …}]}`) admits no
// null to a strict validator, while navad answers null there (a campaign
// without a frequency cap): every such answer failed a client's check.
// kin-openapi, which the suite validates with, is lenient about it.
func TestOpenAPINullableHasAType(t *testing.T) {
	doc, err := httpapi.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["nullable"] == true && v["type"] == nil {
				t.Errorf("%s: nullable without a type admits no null", path)
			}
			for k, c := range v {
				walk(path+"/"+k, c)
			}
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s/%d", path, i), c)
			}
		}
	}
	walk("#", root)
}
