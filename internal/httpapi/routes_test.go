package httpapi_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/navad/navad/internal/dashboard"
)

// TestEveryRouteIsDocumented: the routes of a complete engine (tracking,
// reports and the dashboard, as cmd/navad wires them) and the operations of
// the OpenAPI document are the same set, and every keyed operation
// documents the statuses any keyed call can get: 400 (an unreadable query),
// 401, 429, 500 and 503; every operation with a body, 413.
func TestEveryRouteIsDocumented(t *testing.T) {
	c, err := openAPI()
	if err != nil {
		t.Fatal(err)
	}
	te := newTrackedEnv(t)
	if err := dashboard.Register(te.server.Gin(), dashboard.Options{}); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`[:*]([a-z_]+)`)
	served := map[string]bool{}
	for _, rt := range te.server.Gin().Routes() {
		served[rt.Method+" "+param.ReplaceAllString(rt.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for path, item := range c.Doc().Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			documented[key] = true
			// The dashboard's files are one catch-all route.
			if strings.HasPrefix(path, "/dashboard/") {
				key = method + " /dashboard/{file}"
			}
			if !served[key] {
				t.Errorf("%s is in the OpenAPI document but not served", method+" "+path)
			}
			public := op.Security != nil && len(*op.Security) == 0
			want := []int{}
			if !public {
				want = append(want, 400, 401, 429, 500, 503)
			}
			if op.RequestBody != nil {
				want = append(want, 413)
			}
			for _, status := range want {
				if op.Responses.Status(status) == nil {
					t.Errorf("%s %s documents no %d", method, path, status)
				}
			}
		}
	}
	for key := range served {
		if !documented[key] {
			t.Errorf("route %s is not in the OpenAPI document", key)
		}
	}
	if !slices.Contains(c.Doc().Paths.Find("/v1/ads").Get.Tags, "decisions") {
		t.Error("GET /v1/ads lost its tag")
	}
}

// TestDashboardAndRareAnswersMatchTheDocument sends the suite's other tests
// do not send through the checker: the dashboard's routes, and a keyed GET
// whose query cannot be read.
func TestDashboardAndRareAnswersMatchTheDocument(t *testing.T) {
	te := newTrackedEnv(t)
	if err := dashboard.Register(te.server.Gin(), dashboard.Options{}); err != nil {
		t.Fatal(err)
	}
	r := te.must(301, te.do("GET", "/dashboard", "", nil))
	if r.Header.Get("Location") != "/dashboard/" {
		t.Errorf("Location %q", r.Header.Get("Location"))
	}
	te.must(301, te.do("HEAD", "/dashboard", "", nil))
	te.must(200, te.do("GET", "/dashboard/", "", nil))
	te.must(200, te.do("HEAD", "/dashboard/", "", nil))
	te.must(200, te.do("GET", "/dashboard/config.json", "", nil))
	te.must(200, te.do("GET", "/dashboard/app.js", "", nil))
	te.must(404, te.do("GET", "/dashboard/nothing.js", "", nil))
	w := te.world()
	te.must(400, te.do("GET", "/v1/accounts/"+w.advB+"?a=%zz", w.advBKey, nil))
}
