package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/navad/navad/internal/httpapi"
	"github.com/navad/navad/internal/storage/boltstore"
)

// rawDo sends a request straight to the handler, without the OpenAPI check
// of env.do: a fuzzer's bodies are mostly ones the document rejects, and
// what is checked here is the server's answer alone.
func (e *env) rawDo(t *testing.T, method, path, key, contentType string, body []byte) response {
	req := httptest.NewRequestWithContext(context.Background(), method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// checkManaged holds what every management answer must satisfy whatever
// the input: no 5xx, and an error in API.md's shape.
func checkManaged(t *testing.T, r response) {
	t.Helper()
	if r.Status >= 500 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if r.Status >= 400 {
		r.errorCode(t)
	}
}

// fuzzEnv is one edge shared by a fuzz target's inputs, with a world in it.
func fuzzEnv(f *testing.F) (*env, world) {
	store, err := boltstore.Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = store.Close() })
	e := newEnvOpts(f, store, httpapi.Options{}, nil)
	return e, e.world()
}

// FuzzStoreUpload drives PUT /v1/stores with arbitrary bodies in each
// format: never a 5xx, and a rejected upload leaves the stores as they were.
func FuzzStoreUpload(f *testing.F) {
	for _, s := range []struct {
		ct   string
		body string
	}{
		{"text/csv", "id,name,lat,lng,products\ns1,S,35.69,139.70,beer-350\n"},
		{"text/csv", "\xef\xbb\xbfid,name,address,lat,lng,products\ns1,S,,NaN,Inf,p|q\n\ns2,\"a\nb\",x,1,2,p\n"},
		{"application/json", `[{"id":"s1","name":"S","lat":35.69,"lng":139.70,"products":["beer-350"],"hours":[{"days":["sun"],"from":"22:00","to":"02:00"}]}]`},
		{"application/json", `[{"id":"s1","name":"S","lat":1,"lng":2,"products":["p"]},{"id":"s1","name":"S","lat":1,"lng":2,"products":["p"]}]`},
		{"application/geo+json", `{"type":"FeatureCollection","features":[{"type":"Feature","id":7,"geometry":{"type":"Point","coordinates":[139.7,35.69]},"properties":{"name":"S","products":"p|q"}}]}`},
		{"", `{"type":"FeatureCollection","features":[]}`},
	} {
		f.Add(s.ct, []byte(s.body))
	}
	e, w := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		e.t = t
		before := e.must(200, e.rawDo(t, "GET", "/v1/stores", w.advBKey, "", nil)).Body
		r := e.rawDo(t, "PUT", "/v1/stores", w.advBKey, ct, body)
		checkManaged(t, r)
		if r.Status != 200 {
			if after := e.must(200, e.rawDo(t, "GET", "/v1/stores", w.advBKey, "", nil)).Body; !bytes.Equal(before, after) {
				t.Fatalf("a rejected upload (%d %s) changed the stores", r.Status, r.Body)
			}
		}
	})
}

// FuzzCampaignPatch drives PATCH /v1/campaigns/{id} with arbitrary bodies:
// never a 5xx, a rejected patch leaves the campaign as it was, and an
// accepted one reads back as answered.
func FuzzCampaignPatch(f *testing.F) {
	for _, s := range []string{
		`{"status":"paused"}`,
		`{"name":"x","NAME":"y"}`,
		`{"creative":{"title":"t"},"budget":{"daily_impressions":5}}`,
		`{"frequency_cap":{"impressions":3,"per":"7d"}}`,
		`{"hours":[{"days":["fri"],"from":"17:00","to":"24:00"}],"start":"2026-11-01T00:00:00+09:00","end":"2026-10-01T00:00:00+09:00"}`,
		`{"keywords":[{"text":"居酒屋","match":"exact"}],"negative_keywords":null,"bid_cpm":1e9}`,
		`{"advertiſer_id":"x"}`,
	} {
		f.Add([]byte(s))
	}
	e, w := fuzzEnv(f)
	path := "/v1/campaigns/" + w.campB
	f.Fuzz(func(t *testing.T, body []byte) {
		e.t = t
		before := e.must(200, e.rawDo(t, "GET", path, w.advBKey, "", nil)).Body
		r := e.rawDo(t, "PATCH", path, w.advBKey, "application/merge-patch+json", body)
		checkManaged(t, r)
		after := e.must(200, e.rawDo(t, "GET", path, w.advBKey, "", nil)).Body
		switch {
		case r.Status != 200 && !bytes.Equal(before, after):
			t.Fatalf("a rejected patch (%d %s) changed the campaign", r.Status, r.Body)
		case r.Status == 200 && !jsonEqual(r.Body, after):
			t.Fatalf("the patch answered %s but the campaign reads %s", r.Body, after)
		}
		// Put the campaign back for the next input.
		if r.Status == 200 {
			e.must(200, e.rawDo(t, "PUT", path, w.advBKey, "application/json", before))
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
