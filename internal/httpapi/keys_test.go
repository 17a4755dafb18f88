package httpapi_test

import "testing"

// TestRotateKeyReadsKeepOld: keep_old is read as the boolean the OpenAPI
// document declares. A spelling the server once read as false ("1", "True")
// revoked every older key of the account at once, the opposite of what the
// client asked; a value that is no boolean is a 400 and changes nothing.
func TestRotateKeyReadsKeepOld(t *testing.T) {
	tests := []struct {
		give     string
		want     int
		oldWorks bool
	}{
		{give: "keep_old=true", want: 201, oldWorks: true},
		{give: "keep_old=1", want: 201, oldWorks: true},
		{give: "keep_old=True", want: 201, oldWorks: true},
		{give: "keep_old=TRUE", want: 201, oldWorks: true},
		{give: "keep_old=false", want: 201, oldWorks: false},
		{give: "keep_old=0", want: 201, oldWorks: false},
		{give: "", want: 201, oldWorks: false},
		{give: "keep_old=maybe", want: 400, oldWorks: true},
		{give: "keep_old=", want: 400, oldWorks: true},
		{give: "keep_old=true&keep_old=false", want: 400, oldWorks: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			e := newEnv(t)
			id, oldKey := e.account(adminKey, map[string]any{"type": "advertiser", "name": "Brewer"})
			r := e.do("POST", "/v1/accounts/"+id+"/keys?"+tt.give, oldKey, nil)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.want, r.Body)
			}
			if tt.want == 400 {
				if code := r.errorCode(t); code != "invalid_argument" {
					t.Fatalf("code %q, want invalid_argument", code)
				}
			}
			old := e.do("GET", "/v1/accounts/"+id, oldKey, nil)
			if works := old.Status == 200; works != tt.oldWorks {
				t.Fatalf("old key works: %v, want %v (status %d)", works, tt.oldWorks, old.Status)
			}
			if tt.want == 201 {
				newKey := r.json(t)["api_key"].(string)
				e.must(200, e.do("GET", "/v1/accounts/"+id, newKey, nil))
			}
		})
	}
}
