package httpapi_test

import (
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

// TestUIDLimitIsCharacters: uid is at most 128 characters, as the OpenAPI
// UID schema (maxLength counts characters) says. The server counted bytes,
// so a uid of 128 Japanese characters, which the document accepts, was a
// 400. Counting characters refuses nothing it took before: 128 bytes are
// never more than 128 characters.
func TestUIDLimitIsCharacters(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	tests := []struct {
		name, give string
		want       int
	}{
		{"128 ASCII", strings.Repeat("u", 128), 200},
		{"128 Japanese characters (384 bytes)", strings.Repeat("利", 128), 200},
		{"128 characters of four bytes", strings.Repeat("😀", 128), 200},
		{"129 ASCII", strings.Repeat("u", 129), 400},
		{"129 Japanese characters", strings.Repeat("利", 129), 400},
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
