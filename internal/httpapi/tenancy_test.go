package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/navad/navad/internal/catalog"
)

// tenants is a world of two agencies and three advertisers, each advertiser
// with one campaign and one store:
//
//	agency1 ── advA      (the agency under test manages A)
//	agency2 ── advC      (another agency's advertiser)
//	advB                 (a direct advertiser)
//	publisher
type tenants struct {
	agency1, agency1Key string
	agency2             string
	advA, advAKey       string
	advB, advBKey       string
	advC                string
	publisher, pubKey   string
	campaign            map[string]string // owner (A, B, C) → campaign ID
	advertiser          map[string]string // owner → advertiser ID
}

func (e *env) tenants() *tenants {
	e.t.Helper()
	w := &tenants{campaign: map[string]string{}, advertiser: map[string]string{}}
	var agency2Key string
	w.agency1, w.agency1Key = e.account(adminKey, map[string]any{"type": "agency", "name": "Agency One"})
	w.agency2, agency2Key = e.account(adminKey, map[string]any{"type": "agency", "name": "Agency Two"})
	w.advA, w.advAKey = e.account(w.agency1Key, map[string]any{"type": "advertiser", "name": "A"})
	w.advB, w.advBKey = e.account(adminKey, map[string]any{"type": "advertiser", "name": "B"})
	w.advC, _ = e.account(agency2Key, map[string]any{"type": "advertiser", "name": "C"})
	w.publisher, w.pubKey = e.account(adminKey, map[string]any{"type": "publisher", "name": "Navi"})
	w.advertiser = map[string]string{"A": w.advA, "B": w.advB, "C": w.advC}
	for _, owner := range []string{"A", "B", "C"} {
		adv := w.advertiser[owner]
		e.must(200, e.do("PUT", "/v1/stores?advertiser_id="+adv, adminKey, []map[string]any{
			{"id": "st-1", "name": "店 " + owner, "lat": 35.6905, "lng": 139.7005, "products": []string{"beer-350"}},
		}))
		w.campaign[owner] = e.must(201, e.do("POST", "/v1/campaigns", adminKey, beerCampaign(adv))).json(e.t)["id"].(string)
	}
	return w
}

// key returns the API key of a role ("" for none).
func (w *tenants) key(role string) string {
	return map[string]string{"admin": adminKey, "agency": w.agency1Key, "advA": w.advAKey, "advB": w.advBKey, "publisher": w.pubKey}[role]
}

// account returns the account ID a target names: an owner's advertiser, the
// agency, or the caller itself.
func (w *tenants) account(role, target string) string {
	switch target {
	case "agency":
		return w.agency1
	case "self":
		return map[string]string{"admin": "admin", "agency": w.agency1, "advA": w.advA, "advB": w.advB, "publisher": w.publisher, "none": w.advA}[role]
	}
	return w.advertiser[target]
}

var roles = []string{"admin", "agency", "advA", "advB", "publisher", "none"}

// policy is the expected status of each role on each target; "ok" stands for
// the endpoint's success status, "*" for any target not listed.
type policy map[string]map[string]int

const ok = 0

func (p policy) want(role, target string, success int) int {
	s, found := p[role][target]
	if !found {
		s = p[role]["*"]
	}
	if s == ok {
		return success
	}
	return s
}

var (
	// byID: a campaign named by its ID in the path. Another tenant's is 404,
	// the same as one that does not exist, so that IDs do not leak. A
	// publisher key is refused every management call (403) before any
	// lookup.
	byID = policy{
		"admin":     {"*": ok},
		"agency":    {"A": ok, "*": 404},
		"advA":      {"A": ok, "*": 404},
		"advB":      {"B": ok, "*": 404},
		"publisher": {"*": 403},
		"none":      {"*": 401},
	}
	// scoped: an advertiser named by advertiser_id. Naming another tenant's
	// is 403: which advertisers exist is no secret from agencies, and an
	// agency naming one it does not manage gets the same 403 as one that
	// does not exist.
	scoped = policy{
		"admin":     {"*": ok},
		"agency":    {"A": ok, "*": 403},
		"advA":      {"A": ok, "*": 403},
		"advB":      {"B": ok, "*": 403},
		"publisher": {"*": 403},
		"none":      {"*": 401},
	}
	// accountByID: an account is seen by itself, its agency and admin;
	// anyone else gets 404. Publishers see their own account.
	accountByID = policy{
		"admin":     {"*": ok},
		"agency":    {"A": ok, "agency": ok, "self": ok, "*": 404},
		"advA":      {"A": ok, "self": ok, "*": 404},
		"advB":      {"B": ok, "self": ok, "*": 404},
		"publisher": {"self": ok, "*": 404},
		"none":      {"*": 401},
	}
	// anyManager: a call that needs no object, open to every management role.
	anyManager = policy{
		"admin": {"*": ok}, "agency": {"*": ok}, "advA": {"*": ok}, "advB": {"*": ok},
		"publisher": {"*": 403}, "none": {"*": 401},
	}
	// ownAdvertiserOnly: advertiser_id left out, which only an advertiser's
	// own key may do; agency and admin must name one (400).
	ownAdvertiserOnly = policy{
		"admin": {"*": 400}, "agency": {"*": 400}, "advA": {"*": ok}, "advB": {"*": ok},
		"publisher": {"*": 403}, "none": {"*": 401},
	}
	// publishers: decisions are for publishers, and admin.
	publishers = policy{
		"admin": {"*": ok}, "publisher": {"*": ok}, "agency": {"*": 403}, "advA": {"*": 403}, "advB": {"*": 403},
		"none": {"*": 401},
	}
	anyone = policy{"admin": {"*": ok}, "agency": {"*": ok}, "advA": {"*": ok}, "advB": {"*": ok}, "publisher": {"*": ok}, "none": {"*": ok}}
)

// endpoint is one route of the API as the matrix calls it.
type endpoint struct {
	name    string
	method  string
	targets []string // "-" when the call names no object
	path    func(w *tenants, role, target string) string
	body    func(w *tenants, role, target string) any
	success int
	policy  policy
	// destroys marks calls that, when allowed, remove what later calls need
	// (the object, or the caller's key): those run on a world of their own.
	destroys bool
	// after checks the effect of an allowed call.
	after func(t *testing.T, e *env, w *tenants, role, target string, r response)
}

var owners = []string{"A", "B", "C"}

func endpoints() []endpoint {
	campaignPath := func(suffix string) func(w *tenants, _, target string) string {
		return func(w *tenants, _, target string) string { return "/v1/campaigns/" + w.campaign[target] + suffix }
	}
	scopedPath := func(path string) func(w *tenants, _, target string) string {
		return func(w *tenants, _, target string) string {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			return path + sep + "advertiser_id=" + w.advertiser[target]
		}
	}
	fixed := func(path string) func(*tenants, string, string) string {
		return func(*tenants, string, string) string { return path }
	}
	accountPath := func(suffix string) func(w *tenants, role, target string) string {
		return func(w *tenants, role, target string) string {
			return "/v1/accounts/" + w.account(role, target) + suffix
		}
	}
	accounts := []string{"A", "B", "C", "agency", "self"}
	stock := func(*tenants, string, string) any {
		return []map[string]any{{"store_id": "st-1", "product_id": "beer-350", "in_stock": true}}
	}
	newStore := func(*tenants, string, string) any {
		return []map[string]any{{"id": "st-2", "name": "新店", "lat": 35.6906, "lng": 139.7006, "products": []string{"beer-350"}}}
	}
	shinjukuAds := "/v1/ads?" + shinjuku("居酒屋").Encode()
	return []endpoint{
		{name: "GET ads", method: "GET", targets: []string{"-"}, path: fixed(shinjukuAds), success: 200, policy: publishers},
		{name: "POST ads", method: "POST", targets: []string{"-"}, path: fixed("/v1/ads"), success: 200, policy: publishers,
			body: func(*tenants, string, string) any {
				return map[string]any{"lat": 35.6909, "lng": 139.7003, "q": "居酒屋"}
			}},
		{name: "healthz", method: "GET", targets: []string{"-"}, path: fixed("/healthz"), success: 200, policy: anyone},
		{name: "readyz", method: "GET", targets: []string{"-"}, path: fixed("/readyz"), success: 200, policy: anyone},

		{name: "create advertiser under agency1", method: "POST", targets: []string{"-"}, path: fixed("/v1/accounts"), success: 201,
			body: func(w *tenants, _, _ string) any {
				return map[string]any{"type": "advertiser", "name": "new", "agency_id": w.agency1}
			},
			policy: policy{"admin": {"*": ok}, "agency": {"*": ok}, "advA": {"*": 403}, "advB": {"*": 403}, "publisher": {"*": 403}, "none": {"*": 401}}},
		{name: "create advertiser under agency2", method: "POST", targets: []string{"-"}, path: fixed("/v1/accounts"), success: 201,
			body: func(w *tenants, _, _ string) any {
				return map[string]any{"type": "advertiser", "name": "new", "agency_id": w.agency2}
			},
			policy: policy{"admin": {"*": ok}, "agency": {"*": 403}, "advA": {"*": 403}, "advB": {"*": 403}, "publisher": {"*": 403}, "none": {"*": 401}}},
		{name: "create advertiser without agency", method: "POST", targets: []string{"-"}, path: fixed("/v1/accounts"), success: 201,
			body:   func(*tenants, string, string) any { return map[string]any{"type": "advertiser", "name": "new"} },
			policy: policy{"admin": {"*": ok}, "agency": {"*": ok}, "advA": {"*": 403}, "advB": {"*": 403}, "publisher": {"*": 403}, "none": {"*": 401}},
			after: func(t *testing.T, _ *env, w *tenants, role, _ string, r response) {
				want := ""
				if role == "agency" { // an agency's advertiser is its own
					want = w.agency1
				}
				if got, _ := r.json(t)["agency_id"].(string); got != want {
					t.Errorf("agency_id = %q, want %q", got, want)
				}
			}},
		{name: "create agency", method: "POST", targets: []string{"-"}, path: fixed("/v1/accounts"), success: 201,
			body:   func(*tenants, string, string) any { return map[string]any{"type": "agency", "name": "new"} },
			policy: policy{"admin": {"*": ok}, "agency": {"*": 403}, "advA": {"*": 403}, "advB": {"*": 403}, "publisher": {"*": 403}, "none": {"*": 401}}},
		{name: "create publisher", method: "POST", targets: []string{"-"}, path: fixed("/v1/accounts"), success: 201,
			body:   func(*tenants, string, string) any { return map[string]any{"type": "publisher", "name": "new"} },
			policy: policy{"admin": {"*": ok}, "agency": {"*": 403}, "advA": {"*": 403}, "advB": {"*": 403}, "publisher": {"*": 403}, "none": {"*": 401}}},
		{name: "GET account", method: "GET", targets: accounts, path: accountPath(""), success: 200, policy: accountByID},
		{name: "rotate key keeping the old", method: "POST", targets: accounts, path: accountPath("/keys?keep_old=true"), success: 201,
			policy: withAdminSelf(accountByID, 400)},
		{name: "rotate key", method: "POST", targets: accounts, path: accountPath("/keys"), success: 201,
			policy: withAdminSelf(accountByID, 400), destroys: true,
			after: func(t *testing.T, e *env, w *tenants, role, target string, r response) {
				key := r.json(t)["api_key"].(string)
				old := map[string]string{"A": w.advAKey, "B": w.advBKey, "agency": w.agency1Key, "self": w.key(role)}[target]
				if old != "" && e.do("GET", "/v1/accounts/"+w.account(role, target), old, nil).Status != 401 {
					t.Errorf("the old key still works after rotation")
				}
				if s := e.do("GET", "/v1/accounts/"+w.account(role, target), key, nil).Status; s != 200 {
					t.Errorf("the new key: GET own account %d", s)
				}
			}},
		{name: "revoke old keys", method: "DELETE", targets: accounts, path: accountPath("/keys/old"), success: 204,
			policy: withAdminSelf(accountByID, 400), destroys: true},

		{name: "create campaign", method: "POST", targets: owners, path: fixed("/v1/campaigns"), success: 201, policy: scoped,
			body: func(w *tenants, _, target string) any { return beerCampaign(w.advertiser[target]) }},
		{name: "list campaigns of an advertiser", method: "GET", targets: owners, path: scopedPath("/v1/campaigns"), success: 200, policy: scoped,
			after: func(t *testing.T, _ *env, w *tenants, _, target string, r response) {
				if !strings.Contains(string(r.Body), w.campaign[target]) {
					t.Errorf("the list lacks the advertiser's campaign: %s", r.Body)
				}
			}},
		{name: "list campaigns", method: "GET", targets: []string{"-"}, path: fixed("/v1/campaigns"), success: 200, policy: anyManager,
			after: func(t *testing.T, _ *env, w *tenants, role, _ string, r response) {
				visible := map[string][]string{"admin": {"A", "B", "C"}, "agency": {"A"}, "advA": {"A"}, "advB": {"B"}}[role]
				for _, o := range owners {
					if got := strings.Contains(string(r.Body), w.campaign[o]); got != slices.Contains(visible, o) {
						t.Errorf("%s's campaign listed: %v, want %v", o, got, !got)
					}
				}
			}},
		{name: "GET campaign", method: "GET", targets: owners, path: campaignPath(""), success: 200, policy: byID},
		{name: "PUT campaign", method: "PUT", targets: owners, path: campaignPath(""), success: 200, policy: byID,
			body: func(*tenants, string, string) any { return beerCampaign("") }},
		{name: "PATCH campaign", method: "PATCH", targets: owners, path: campaignPath(""), success: 200, policy: byID,
			body: func(*tenants, string, string) any { return map[string]any{"name": "renamed"} }},
		{name: "pause campaign", method: "POST", targets: owners, path: campaignPath("/pause"), success: 200, policy: byID},
		{name: "resume campaign", method: "POST", targets: owners, path: campaignPath("/resume"), success: 200, policy: byID},
		{name: "DELETE campaign", method: "DELETE", targets: owners, path: campaignPath(""), success: 204, policy: byID, destroys: true,
			after: func(t *testing.T, e *env, w *tenants, _, target string, _ response) {
				if s := e.do("GET", "/v1/campaigns/"+w.campaign[target], adminKey, nil).Status; s != 404 {
					t.Errorf("after DELETE: GET %d, want 404", s)
				}
			}},

		{name: "PUT stores", method: "PUT", targets: owners, path: scopedPath("/v1/stores"), body: newStore, success: 200, policy: scoped},
		{name: "GET stores", method: "GET", targets: owners, path: scopedPath("/v1/stores"), success: 200, policy: scoped},
		{name: "GET store", method: "GET", targets: owners, path: scopedPath("/v1/stores/st-1"), success: 200, policy: scoped},
		{name: "DELETE store", method: "DELETE", targets: owners, path: scopedPath("/v1/stores/st-1"), success: 204, policy: scoped, destroys: true,
			after: func(t *testing.T, e *env, w *tenants, _, target string, _ response) {
				if s := e.do("GET", "/v1/stores/st-1?advertiser_id="+w.advertiser[target], adminKey, nil).Status; s != 404 {
					t.Errorf("after DELETE: GET %d, want 404", s)
				}
			}},
		{name: "PUT inventory", method: "PUT", targets: owners, path: scopedPath("/v1/inventory"), body: stock, success: 200, policy: scoped},

		// Without advertiser_id the call acts for the key's own advertiser.
		{name: "PUT stores, own", method: "PUT", targets: []string{"-"}, path: fixed("/v1/stores"), body: newStore, success: 200, policy: ownAdvertiserOnly},
		{name: "GET stores, own", method: "GET", targets: []string{"-"}, path: fixed("/v1/stores"), success: 200, policy: ownAdvertiserOnly},
		{name: "GET store, own", method: "GET", targets: []string{"-"}, path: fixed("/v1/stores/st-1"), success: 200, policy: ownAdvertiserOnly},
		{name: "PUT inventory, own", method: "PUT", targets: []string{"-"}, path: fixed("/v1/inventory"), body: stock, success: 200, policy: ownAdvertiserOnly},
		{name: "create campaign, own", method: "POST", targets: []string{"-"}, path: fixed("/v1/campaigns"), success: 201, policy: ownAdvertiserOnly,
			body: func(*tenants, string, string) any { return beerCampaign("") }},
	}
}

// withAdminSelf is p, except that admin acting on its own account gets
// status: the admin key comes from the configuration, not from navad.
func withAdminSelf(p policy, status int) policy {
	out := policy{}
	for role, m := range p {
		out[role] = map[string]int{}
		for k, v := range m {
			out[role][k] = v
		}
	}
	out["admin"]["self"] = status
	return out
}

// TestTenancyMatrix calls every endpoint with every role (admin, the
// agency, its advertiser A, the direct advertiser B, a publisher, no key) on
// its own objects and on other tenants' (B's, A's, and C's under another
// agency), and checks each status against API.md: allowed is 2xx, another
// tenant's object by ID is 404 like a missing one, another tenant named by
// advertiser_id is 403, a role that may never call the endpoint is 403, no
// key is 401. A refused call must change nothing: the tenants' campaigns
// and stores are compared before and after it.
func TestTenancyMatrix(t *testing.T) {
	e := newEnv(t)
	shared := e.tenants()
	cells := 0
	for _, ep := range endpoints() {
		for _, role := range roles {
			for _, target := range ep.targets {
				want := ep.policy.want(role, target, ep.success)
				name := fmt.Sprintf("%s/%s/%s", ep.name, role, target)
				cells++
				t.Run(name, func(t *testing.T) {
					w := shared
					if ep.destroys && want < 300 {
						w = e.tenants()
					}
					var body any
					if ep.body != nil {
						body = ep.body(w, role, target)
					}
					before := w.state(e)
					r := e.do(ep.method, ep.path(w, role, target), w.key(role), body)
					if r.Status != want {
						t.Fatalf("%s %s: status %d, want %d: %s", ep.method, ep.path(w, role, target), r.Status, want, r.Body)
					}
					if want >= 400 {
						code := r.errorCode(t)
						if wantCode := map[int]string{400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied", 404: "not_found"}[want]; code != wantCode {
							t.Fatalf("code %q, want %q", code, wantCode)
						}
						if after := w.state(e); after != before {
							t.Fatalf("a refused call changed the world:\nbefore %s\nafter  %s", before, after)
						}
						return
					}
					if ep.after != nil {
						ep.after(t, e, w, role, target, r)
					}
				})
			}
		}
	}
	t.Logf("%d cells", cells)
}

// state renders the tenants' campaigns and stores as admin sees them.
func (w *tenants) state(e *env) string {
	var b strings.Builder
	for _, o := range owners {
		adv := w.advertiser[o]
		for _, path := range []string{"/v1/campaigns?advertiser_id=" + adv, "/v1/stores?advertiser_id=" + adv} {
			r := e.do("GET", path, adminKey, nil)
			b.WriteString(path + " " + string(r.Body) + "\n")
		}
	}
	return b.String()
}

// TestNotFoundDoesNotLeak: another tenant's campaign or account answers
// exactly as one that does not exist, message included.
func TestNotFoundDoesNotLeak(t *testing.T) {
	e := newEnv(t)
	w := e.tenants()
	normalize := func(r response, id string) string {
		var body struct{ Error json.RawMessage }
		_ = json.Unmarshal(r.Body, &body)
		return fmt.Sprint(r.Status, " ", strings.ReplaceAll(string(body.Error), id, "ID"))
	}
	for _, tt := range []struct {
		name, method, path, missing string
		body                        any
	}{
		{"GET campaign", "GET", "/v1/campaigns/" + w.campaign["B"], "/v1/campaigns/cmp_nosuchcampaign", nil},
		{"PATCH campaign", "PATCH", "/v1/campaigns/" + w.campaign["B"], "/v1/campaigns/cmp_nosuchcampaign", map[string]any{"name": "x"}},
		{"PUT campaign", "PUT", "/v1/campaigns/" + w.campaign["B"], "/v1/campaigns/cmp_nosuchcampaign", beerCampaign("")},
		{"DELETE campaign", "DELETE", "/v1/campaigns/" + w.campaign["B"], "/v1/campaigns/cmp_nosuchcampaign", nil},
		{"pause campaign", "POST", "/v1/campaigns/" + w.campaign["B"] + "/pause", "/v1/campaigns/cmp_nosuchcampaign/pause", nil},
		{"GET account", "GET", "/v1/accounts/" + w.advB, "/v1/accounts/adv_nosuchaccount", nil},
		{"rotate key", "POST", "/v1/accounts/" + w.advB + "/keys", "/v1/accounts/adv_nosuchaccount/keys", nil},
		{"revoke old keys", "DELETE", "/v1/accounts/" + w.advB + "/keys/old", "/v1/accounts/adv_nosuchaccount/keys/old", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			theirs := e.do(tt.method, tt.path, w.advAKey, tt.body)
			missing := e.do(tt.method, tt.missing, w.advAKey, tt.body)
			idOf := func(p string) string { return strings.Split(strings.TrimPrefix(p, "/v1/"), "/")[1] }
			if a, b := normalize(theirs, idOf(tt.path)), normalize(missing, idOf(tt.missing)); a != b || theirs.Status != 404 {
				t.Fatalf("another tenant's object answers %s\na missing one answers  %s", a, b)
			}
		})
	}
	// A store ID is the advertiser's own: A asking for an ID that only B
	// has is simply not found in A's list.
	e.must(200, e.do("PUT", "/v1/stores", w.advBKey, []map[string]any{{"id": "only-b", "name": "b", "lat": 35.69, "lng": 139.70, "products": []string{"x"}}}))
	if r := e.do("GET", "/v1/stores/only-b", w.advAKey, nil); r.Status != 404 {
		t.Fatalf("A reading B's store ID in its own list: %d", r.Status)
	}
	// Decisions never mix tenants: A's campaign leads only to A's stores.
	r := e.must(200, e.do("GET", "/v1/ads?"+url.Values{"lat": {"35.6909"}, "lng": {"139.7003"}, "q": {"居酒屋"}, "n": {"10"}}.Encode(), w.pubKey, nil))
	var ads adsBody
	if err := json.Unmarshal(r.Body, &ads); err != nil || len(ads.Ads) != 3 {
		t.Fatalf("ads: %v %s", err, r.Body)
	}
}

// TestForeignAdvertiserRefusedBeforeTheBody: an upload or stock batch for
// an advertiser the key may not write to is a 403 whatever its body holds;
// a body with a bad row was a 400, so the answer depended on the body, and
// the body was read and parsed (up to the upload limit) for nothing.
func TestForeignAdvertiserRefusedBeforeTheBody(t *testing.T) {
	e := newEnv(t)
	w := e.tenants()
	for _, c := range []struct{ name, path, body string }{
		{"stores", "/v1/stores?advertiser_id=" + w.advC, `[{"id":"x","name":"n","products":["beer-350"]}]`},
		{"stock", "/v1/inventory?advertiser_id=" + w.advC, `[{"store_id":"st-1","product_id":"beer-350","in_stock":"no"}]`},
	} {
		r := e.do("PUT", c.path, w.agency1Key, c.body)
		if r.Status != 403 || !strings.Contains(string(r.Body), "permission_denied") {
			t.Errorf("%s: another agency's advertiser, a bad row: %d %s, want 403", c.name, r.Status, r.Body)
		}
	}
}

// TestWriteForAnAdvertiserAsksOnce: an agency's store upload and stock
// batch read the advertiser's account once, for the check made before the
// body is read; the write then goes to the advertiser found (checked
// again, it cost a point-of-sale feed a second store round trip a batch).
func TestWriteForAnAdvertiserAsksOnce(t *testing.T) {
	e := newEnv(t)
	w := e.tenants()
	const reads = `navad_storage_operation_duration_seconds_count{op="account",result="ok"}`
	for _, c := range []struct{ name, path, body string }{
		{"stores", "/v1/stores?advertiser_id=" + w.advA, `[{"id":"st-a","name":"A","lat":35.69,"lng":139.70,"products":["beer-350"]}]`},
		{"stock", "/v1/inventory?advertiser_id=" + w.advA, `[{"store_id":"st-a","product_id":"beer-350","in_stock":false}]`},
	} {
		before := e.scrape()[reads]
		e.must(200, e.do("PUT", c.path, w.agency1Key, c.body))
		if got := e.scrape()[reads] - before; got != 1 {
			t.Errorf("%s for an agency's advertiser read the account %v times, want 1", c.name, got)
		}
	}
}

// TestCampaignKeepsItsOwner: no PATCH or PUT moves a campaign to another
// advertiser or renames it, however the key is spelt: Go's JSON decoder
// matches keys without regard to case, Unicode folding included, so
// "advertiſer_id" (a long s) once passed the check for advertiser_id and
// moved the campaign into another account.
func TestCampaignKeepsItsOwner(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	for _, patch := range []string{
		`{"advertiſer_id": "` + w.advA + `"}`,
		`{"Advertiser_ID": "` + w.advA + `"}`,
		`{"ID": "cmp_stolen"}`,
		`{"ıd": "cmp_stolen"}`,
	} {
		r := e.do("PATCH", "/v1/campaigns/"+w.campB, w.advBKey, patch)
		if r.Status != 400 || r.errorCode(t) != "invalid_argument" {
			t.Errorf("PATCH %s: %d %s, want 400", patch, r.Status, r.Body)
		}
	}
	c := e.must(200, e.do("GET", "/v1/campaigns/"+w.campB, w.advBKey, nil)).json(t)
	if c["advertiser_id"] != w.advB || c["id"] != w.campB {
		t.Fatalf("the campaign is now %v of %v", c["id"], c["advertiser_id"])
	}
	e.must(404, e.do("GET", "/v1/campaigns/cmp_stolen", adminKey, nil))
}

// TestPatchKeepsLargeNumbers: a PATCH of one field leaves every other as
// it was, numbers beyond float64's 2^53 included.
func TestPatchKeepsLargeNumbers(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	const big = "9007199254740993" // 2^53 + 1
	e.must(200, e.do("PATCH", "/v1/campaigns/"+w.campB, w.advBKey, `{"budget": {"total_impressions": `+big+`}}`))
	e.must(200, e.do("PATCH", "/v1/campaigns/"+w.campB, w.advBKey, `{"name": "renamed"}`))
	r := e.must(200, e.do("GET", "/v1/campaigns/"+w.campB, w.advBKey, nil))
	if !strings.Contains(string(r.Body), `"total_impressions":`+big) || !strings.Contains(string(r.Body), `"name":"renamed"`) {
		t.Fatalf("after two patches: %s", r.Body)
	}
}

// TestConcurrentKeyRotationsKeepEveryKey: rotations of one account's key
// that keep the old keys, at once, each hand out a key that works (each
// read the keys and wrote them back with its own added, and one write
// could drop another's key).
func TestConcurrentKeyRotationsKeepEveryKey(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	const n = 8
	keys := make([]string, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := e.do("POST", "/v1/accounts/"+w.advB+"/keys?keep_old=true", adminKey, nil)
			statuses[i] = r.Status
			var body struct {
				Key string `json:"api_key"`
			}
			_ = json.Unmarshal(r.Body, &body)
			keys[i] = body.Key
		})
	}
	wg.Wait()
	for i, k := range append(keys, w.advBKey) {
		if i < n && statuses[i] != 201 {
			t.Fatalf("rotation %d: %d", i, statuses[i])
		}
		if r := e.do("GET", "/v1/stores", k, nil); r.Status != 200 {
			t.Errorf("key %d of %d no longer works: %d", i+1, n+1, r.Status)
		}
	}
}

// TestKeptKeysAreBounded: rotations that keep the old keys stop at
// catalog.MaxAccountKeys with a 409 that says what to do, every key still
// working; once the old keys are revoked, rotations go on.
func TestKeptKeysAreBounded(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	path := "/v1/accounts/" + w.advB + "/keys"
	keys := []string{w.advBKey}
	for len(keys) < catalog.MaxAccountKeys {
		r := e.must(201, e.do("POST", path+"?keep_old=true", adminKey, nil))
		keys = append(keys, r.json(t)["api_key"].(string))
	}
	r := e.do("POST", path+"?keep_old=true", adminKey, nil)
	if r.Status != 409 || r.errorCode(t) != "conflict" || !strings.Contains(string(r.Body), "keys/old") {
		t.Fatalf("rotation past %d keys: %d %s, want 409 naming keys/old", catalog.MaxAccountKeys, r.Status, r.Body)
	}
	for i, k := range keys {
		if r := e.do("GET", "/v1/stores", k, nil); r.Status != 200 {
			t.Errorf("key %d of %d stopped working after the refused rotation: %d", i+1, len(keys), r.Status)
		}
	}
	e.must(204, e.do("DELETE", path+"/old", adminKey, nil))
	newest := keys[len(keys)-1]
	e.must(200, e.do("GET", "/v1/stores", newest, nil))
	e.must(401, e.do("GET", "/v1/stores", keys[0], nil))
	e.must(201, e.do("POST", path+"?keep_old=true", adminKey, nil))
}

// TestPatchFieldNamesAreCaseSensitive: a merge patch member spelt in
// another case than the field ("NAME" for "name") is refused. Go's JSON
// decoder matches names without regard to case, so the merged document
// held both spellings and the one that came last won: such a patch was
// ignored, or applied, silently.
func TestPatchFieldNamesAreCaseSensitive(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	path := "/v1/campaigns/" + w.campB
	before := e.must(200, e.do("GET", path, w.advBKey, nil)).json(t)
	for patch, field := range map[string]string{
		`{"NAME": "renamed"}`:                  "NAME",
		`{"Name": null}`:                       "Name",
		`{"name": "a", "Name": "b"}`:           "Name",
		`{"creative": {"TITLE": "new title"}}`: "creative.TITLE",
	} {
		r := e.do("PATCH", path, w.advBKey, patch)
		if r.Status != 400 || r.errorCode(t) != "invalid_argument" || !strings.Contains(string(r.Body), `"field":"`+field+`"`) {
			t.Errorf("PATCH %s: %d %s, want 400 naming %s", patch, r.Status, r.Body, field)
		}
	}
	after := e.must(200, e.do("GET", path, w.advBKey, nil)).json(t)
	if after["name"] != before["name"] || fmt.Sprint(after["creative"]) != fmt.Sprint(before["creative"]) {
		t.Fatalf("refused patches changed the campaign: %v → %v", before, after)
	}
	// The canonical spelling still merges, keeping the object's other members.
	e.must(200, e.do("PATCH", path, w.advBKey, `{"creative": {"title": "new title"}}`))
	c := e.must(200, e.do("GET", path, w.advBKey, nil)).json(t)
	cr, _ := c["creative"].(map[string]any)
	old, _ := before["creative"].(map[string]any)
	if cr["title"] != "new title" || cr["landing_url"] != old["landing_url"] {
		t.Fatalf("creative after a canonical patch: %v", cr)
	}
}

// TestDeletedCampaignIDIsNotGivenAgain: a campaign created with the ID of a
// deleted one, by any advertiser, is a 409. Budgets and frequency windows
// are counted by campaign ID, so such a campaign started with the deleted
// one's counts: a total budget at or under them never served.
func TestDeletedCampaignIDIsNotGivenAgain(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	c := beerCampaign("")
	c["id"] = "cmp_spring"
	e.must(201, e.do("POST", "/v1/campaigns", w.advBKey, c))
	e.must(409, e.do("POST", "/v1/campaigns", w.advBKey, c))
	e.must(204, e.do("DELETE", "/v1/campaigns/cmp_spring", w.advBKey, nil))
	for _, key := range []string{w.advBKey, w.advAKey} {
		r := e.do("POST", "/v1/campaigns", key, c)
		if r.Status != 409 || r.errorCode(t) != "conflict" || !strings.Contains(string(r.Body), "deleted") {
			t.Fatalf("creating a deleted campaign's ID: %d %s, want 409 saying it was deleted", r.Status, r.Body)
		}
	}
	e.must(404, e.do("GET", "/v1/campaigns/cmp_spring", adminKey, nil))
	c["id"] = "cmp_spring_2"
	e.must(201, e.do("POST", "/v1/campaigns", w.advBKey, c))
}
