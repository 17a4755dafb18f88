package dashboard_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/navad/navad/internal/dashboard"
)

func newServer(t *testing.T, opt dashboard.Options) http.Handler {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	g := gin.New()
	if err := dashboard.Register(g, opt); err != nil {
		t.Fatalf("Register: %v", err)
	}
	return g
}

func get(t *testing.T, h http.Handler, method, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServesThePage(t *testing.T) {
	h := newServer(t, dashboard.Options{})
	tests := []struct {
		give     string
		status   int
		wantType string
		wantBody string
	}{
		{"/dashboard/", 200, "text/html", `<script src="app.js" defer></script>`},
		{"/dashboard/app.js", 200, "javascript", "sessionStorage"},
		{"/dashboard/style.css", 200, "text/css", ":focus-visible"},
		{"/dashboard/vendor/uplot/uPlot.iife.min.js", 200, "javascript", "uPlot"},
		{"/dashboard/vendor/uplot/LICENSE", 200, "text/plain", "MIT"},
		{"/dashboard/vendor/leaflet/leaflet.js", 200, "javascript", "Leaflet"},
		{"/dashboard/vendor/leaflet/LICENSE", 200, "text/plain", "BSD"},
		{"/dashboard/config.json", 200, "application/json", `{"tiles":null}`},
		// A file it does not have is the API's JSON error (API.md).
		{"/dashboard/nothing.js", 404, "application/json", `{"error":{"code":"not_found"`},
		{"/dashboard/vendor/", 404, "application/json", `"not_found"`},             // no directory listings
		{"/dashboard/../go.mod", 404, "", ""},                                      // cleaned to /go.mod: not ours (the router's 404)
		{"/dashboard/%2e%2e/dashboard.go", 404, "application/json", `"not_found"`}, // nothing outside static/
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			r := get(t, h, "GET", tt.give, nil)
			b := body(t, r)
			if r.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tt.status)
			}
			if tt.wantType == "" {
				return
			}
			if ct := r.Header.Get("Content-Type"); !strings.Contains(ct, tt.wantType) {
				t.Errorf("Content-Type %q, want %q", ct, tt.wantType)
			}
			if !strings.Contains(b, tt.wantBody) {
				t.Errorf("body lacks %q", tt.wantBody)
			}
			for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"} {
				if r.Header.Get(h) == "" {
					t.Errorf("no %s header", h)
				}
			}
		})
	}
}

func TestRedirectsToTheSlash(t *testing.T) {
	h := newServer(t, dashboard.Options{})
	r := get(t, h, "GET", "/dashboard", nil)
	if r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/dashboard/" {
		t.Fatalf("GET /dashboard: %d to %q, want 301 to /dashboard/", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestETagRevalidates(t *testing.T) {
	h := newServer(t, dashboard.Options{})
	r := get(t, h, "GET", "/dashboard/app.js", nil)
	tag := r.Header.Get("ETag")
	if tag == "" || r.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q: want a tag and no-cache", tag, r.Header.Get("Cache-Control"))
	}
	r = get(t, h, "GET", "/dashboard/app.js", http.Header{"If-None-Match": {tag}})
	if r.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: status %d, want 304", r.StatusCode)
	}
	r = get(t, h, "HEAD", "/dashboard/", nil)
	if r.StatusCode != http.StatusOK || body(t, r) != "" {
		t.Fatalf("HEAD /dashboard/: %d", r.StatusCode)
	}
}

func TestConfigHandsOverTheTiles(t *testing.T) {
	h := newServer(t, dashboard.Options{Tiles: "https://{s}.tile.example.com/{z}/{x}/{y}.png", TilesAttribution: "© Example <contributors>"})
	r := get(t, h, "GET", "/dashboard/config.json", nil)
	var cfg struct {
		Tiles *struct{ URL, Attribution string }
	}
	if err := json.Unmarshal([]byte(body(t, r)), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Tiles == nil || cfg.Tiles.URL != "https://{s}.tile.example.com/{z}/{x}/{y}.png" || cfg.Tiles.Attribution != "© Example <contributors>" {
		t.Fatalf("config %+v", cfg.Tiles)
	}
	csp := r.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "img-src 'self' data: https://*.tile.example.com;") {
		t.Errorf("CSP %q does not admit the tile server's images", csp)
	}
	if !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "script-src 'self';") {
		t.Errorf("CSP %q admits more than this server for scripts and API calls", csp)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		give    dashboard.Options
		wantErr string
	}{
		{dashboard.Options{}, ""},
		{dashboard.Options{Tiles: "https://tile.example.com/{z}/{x}/{y}.png"}, ""},
		{dashboard.Options{Tiles: "http://localhost:8081/{z}/{x}/{y}{r}.png", TilesAttribution: "me"}, ""},
		{dashboard.Options{Tiles: "tile.example.com/{z}/{x}/{y}.png"}, "absolute http or https"},
		{dashboard.Options{Tiles: "javascript:alert(1)//{z}/{x}/{y}"}, "absolute http or https"},
		{dashboard.Options{Tiles: "https://tile.example.com/{z}/{x}.png"}, "must contain {y}"},
		{dashboard.Options{TilesAttribution: "© nobody"}, "without a tile URL"},
	}
	for _, tt := range tests {
		t.Run(tt.give.Tiles, func(t *testing.T) {
			err := tt.give.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			if err := dashboard.Register(gin.New(), tt.give); err == nil {
				t.Fatalf("Register accepted %+v", tt.give)
			}
		})
	}
}

// TestPageLoadsNothingFromOutside checks that every file the page refers
// to is embedded, and that no file names another origin to load from:
// the page must work with no internet.
func TestPageLoadsNothingFromOutside(t *testing.T) {
	h := newServer(t, dashboard.Options{})
	page := body(t, get(t, h, "GET", "/dashboard/", nil))
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 6 {
		t.Fatalf("found only %d references in the page", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") {
			continue // inline, loads nothing
		}
		if strings.Contains(ref, "://") {
			if strings.HasPrefix(ref, "http") && !strings.Contains(page, `<link rel="stylesheet" href="`+ref) && !strings.Contains(page, `<script src="`+ref) {
				continue // a plain link a person may follow, not something loaded
			}
			t.Errorf("the page loads %s from another origin", ref)
			continue
		}
		if r := get(t, h, "GET", "/dashboard/"+ref, nil); r.StatusCode != http.StatusOK {
			t.Errorf("the page refers to %s: status %d", ref, r.StatusCode)
		}
	}
	// No stylesheet or script may import from elsewhere either.
	err := filepath.WalkDir("static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".css") || strings.HasSuffix(path, ".js")) {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if m := regexp.MustCompile(`@import|url\(\s*["']?(?:https?:)?//`).Find(b); m != nil {
			t.Errorf("%s loads from another origin: %s", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVendoredLibrariesKeepTheirLicences checks that each vendored library
// ships with its licence.
func TestVendoredLibrariesKeepTheirLicences(t *testing.T) {
	for _, lib := range []string{"uplot", "leaflet"} {
		b, err := os.ReadFile(filepath.Join("static", "vendor", lib, "LICENSE"))
		if err != nil || !strings.Contains(string(b), "Copyright") {
			t.Errorf("%s: licence missing or without its copyright line (%v)", lib, err)
		}
	}
}
