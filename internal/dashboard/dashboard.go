// Package dashboard serves the agencies' report page at /dashboard/: plain
// files embedded in the binary (the page, its script and style, and the
// vendored uPlot and Leaflet with their licences), plus
// /dashboard/config.json, which hands the page the optional base-map tile
// URL.
//
// The page holds no data and no secret of its own. It calls the reports API
// from the browser with the API key the user types (kept in the tab's
// sessionStorage only), so it shows exactly what that key may see and
// nothing else; the files themselves need no key (API.md). Nothing is
// fetched from outside navad unless a tile URL is configured.
package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// Path is where the page is served.
const Path = "/dashboard/"

//go:embed static
var files embed.FS

// Options configure the page.
type Options struct {
	// Tiles is a base-map tile URL template such as
	// https://tile.example.com/{z}/{x}/{y}.png ({s} for a subdomain is
	// allowed). Empty means no base map: the hexagons are drawn over a
	// plain background with a graticule, and the page loads nothing from
	// outside navad.
	Tiles string
	// TilesAttribution is the plain-text credit the tile provider asks
	// for, shown in the map's corner.
	TilesAttribution string
}

// Validate reports every problem with o at once, or nil.
func (o Options) Validate() error {
	if o.Tiles == "" {
		if o.TilesAttribution != "" {
			return errors.New("dashboard tiles attribution is set without a tile URL")
		}
		return nil
	}
	var p []string
	u, err := url.Parse(strings.NewReplacer("{s}", "a", "{z}", "0", "{x}", "0", "{y}", "0", "{r}", "").Replace(o.Tiles))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p = append(p, fmt.Sprintf("dashboard tiles %q must be an absolute http or https URL", o.Tiles))
	}
	for _, v := range []string{"{z}", "{x}", "{y}"} {
		if !strings.Contains(o.Tiles, v) {
			p = append(p, fmt.Sprintf("dashboard tiles %q must contain %s", o.Tiles, v))
		}
	}
	if len(p) > 0 {
		return errors.New(strings.Join(p, "; "))
	}
	return nil
}

// Register adds the dashboard's routes to g: GET and HEAD /dashboard/ and
// the files under it, /dashboard/config.json, and a redirect from
// /dashboard. It fails on invalid options.
func Register(g gin.IRouter, opt Options) error {
	if err := opt.Validate(); err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	h, err := newHandler(opt)
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	redirect := func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, Path) }
	g.GET(strings.TrimSuffix(Path, "/"), redirect)
	g.HEAD(strings.TrimSuffix(Path, "/"), redirect)
	g.GET(Path+"*file", h.serve)
	g.HEAD(Path+"*file", h.serve)
	return nil
}

// handler serves the embedded files. Each gets a strong ETag, the hash of
// its content computed once at start, so that a browser revalidates
// cheaply after an upgrade changes a file (embedded files have no
// modification time to go by).
type handler struct {
	root   fs.FS
	etags  map[string]string // path in root → quoted ETag
	files  http.Handler
	config []byte
	csp    string
}

func newHandler(opt Options) (*handler, error) {
	root, err := fs.Sub(files, "static")
	if err != nil {
		return nil, err
	}
	h := &handler{root: root, etags: map[string]string{}, csp: contentSecurityPolicy(opt.Tiles)}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		h.etags[name] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.files = http.StripPrefix(strings.TrimSuffix(Path, "/"), http.FileServerFS(noListing{root}))
	h.config, err = configJSON(opt)
	if err != nil {
		return nil, err
	}
	return h, nil
}

func (h *handler) serve(c *gin.Context) {
	w := c.Writer
	w.Header().Set("Content-Security-Policy", h.csp)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-cache")
	file := strings.TrimPrefix(c.Param("file"), "/")
	if file == "config.json" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if c.Request.Method != http.MethodHead {
			_, _ = w.Write(h.config)
		}
		return
	}
	name := file
	if name == "" {
		name = "index.html"
	}
	tag, ok := h.etags[name]
	if !ok { // not one of the page's files: the API's JSON error, not net/http's text
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		if c.Request.Method != http.MethodHead {
			_, _ = w.Write(notFound)
		}
		return
	}
	// http.ServeContent answers If-None-Match from this header.
	w.Header().Set("ETag", tag)
	h.files.ServeHTTP(w, c.Request)
}

var notFound = []byte(`{"error":{"code":"not_found","message":"the dashboard has no such file"}}` + "\n")

// configJSON is /dashboard/config.json: what the page needs to know about
// this server that the API does not say.
func configJSON(opt Options) ([]byte, error) {
	type tiles struct {
		URL         string `json:"url"`
		Attribution string `json:"attribution"`
	}
	var cfg struct {
		Tiles *tiles `json:"tiles"` // null: no base map
	}
	if opt.Tiles != "" {
		cfg.Tiles = &tiles{URL: opt.Tiles, Attribution: opt.TilesAttribution}
	}
	return json.Marshal(cfg)
}

// contentSecurityPolicy allows the page its own files and the API, and
// images from the tile server if there is one: no inline script, no other
// origin, no framing.
func contentSecurityPolicy(tiles string) string {
	img := "'self' data:"
	if src := tileSource(tiles); src != "" {
		img += " " + src
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src " + img,
		"connect-src 'self'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

// tileSource returns the CSP source of a tile URL template: its scheme and
// host, with a {s} subdomain as a wildcard; the scheme alone when the host
// has another placeholder.
func tileSource(tiles string) string {
	if tiles == "" {
		return ""
	}
	scheme, rest, ok := strings.Cut(tiles, "://")
	if !ok {
		return ""
	}
	host, _, _ := strings.Cut(rest, "/")
	host = strings.Replace(host, "{s}.", "*.", 1)
	if strings.ContainsAny(host, "{}") || host == "" {
		return scheme + ":"
	}
	return scheme + "://" + host
}

// noListing hides directories other than the root, so that
// http.FileServer lists none of them.
type noListing struct{ fs.FS }

func (n noListing) Open(name string) (fs.File, error) {
	f, err := n.FS.Open(name)
	if err != nil || name == "." {
		return f, err
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		_ = f.Close()
		return nil, fs.ErrNotExist
	}
	return f, nil
}
