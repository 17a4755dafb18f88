package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

const importUsage = `usage: navad import stores --file FILE [--advertiser ID] [--server URL] [--key KEY] [--format csv|json|geojson]

Uploads a store list (CSV, a JSON array or a GeoJSON FeatureCollection, as
PUT /v1/stores takes it) in one all-or-nothing upload, streaming the file with
a progress bar, and prints a summary or every row the server rejected.

  --file        the store list; its format comes from the extension
                (.csv, .json, .geojson) unless --format says
  --advertiser  the advertiser the stores belong to; an advertiser's own key
                may leave it out, an agency or admin key must name it
  --server      navad's base URL (NAVAD_SERVER, default http://localhost:8080)
  --key         the API key (NAVAD_API_KEY)
  --format      csv, json or geojson
  --timeout     how long to wait for the whole upload (default 10m)
  --max-errors  most rejected rows to print, 0 for all (default 100)
`

// storeImport is one `navad import stores` run.
type storeImport struct {
	file, advertiser, server, key, format string
	timeout                               time.Duration
	maxErrors                             int
}

// runImport runs `navad import …` (args after "import"): it returns nil
// when the server stored the file, and an error otherwise, after printing
// what the server said. Progress goes to stderr, the summary to stdout.
func runImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprint(stdout, importUsage) // asked for: not an error
		return nil
	}
	if len(args) == 0 || args[0] != "stores" {
		fmt.Fprint(stderr, importUsage)
		return errors.New("import: what to import? only `navad import stores` exists")
	}
	im := storeImport{server: getenv("NAVAD_SERVER"), key: getenv("NAVAD_API_KEY")}
	if im.server == "" {
		im.server = "http://localhost:8080"
	}
	fs := flag.NewFlagSet("navad import stores", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&im.file, "file", "", "")
	fs.StringVar(&im.advertiser, "advertiser", "", "")
	fs.StringVar(&im.server, "server", im.server, "")
	fs.StringVar(&im.key, "key", im.key, "")
	fs.StringVar(&im.format, "format", "", "")
	fs.DurationVar(&im.timeout, "timeout", 10*time.Minute, "")
	fs.IntVar(&im.maxErrors, "max-errors", 100, "")
	var problems []string
	if err := fs.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, importUsage)
		return nil
	} else if err != nil {
		problems = append(problems, err.Error())
	} else if fs.NArg() > 0 {
		problems = append(problems, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	if im.file == "" {
		problems = append(problems, "--file is required")
	}
	// A zero or negative timeout would end the upload before it starts,
	// with nothing but "context deadline exceeded" to say why.
	if im.timeout <= 0 {
		problems = append(problems, fmt.Sprintf("--timeout must be positive, such as 10m, got %s", im.timeout))
	}
	if im.maxErrors < 0 {
		problems = append(problems, fmt.Sprintf("--max-errors must be 0 (all) or more, got %d", im.maxErrors))
	}
	if im.key == "" {
		problems = append(problems, "an API key is required: --key or NAVAD_API_KEY")
	}
	if u, err := url.Parse(im.server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("--server %q must be an http or https URL", im.server))
	}
	if im.format == "" && im.file != "" {
		im.format = formatOf(im.file)
		if im.format == "" {
			problems = append(problems, fmt.Sprintf("cannot tell the format of %s from its extension; use --format csv, json or geojson", im.file))
		}
	}
	if _, ok := contentTypes[im.format]; !ok && im.format != "" {
		problems = append(problems, fmt.Sprintf("--format must be csv, json or geojson, got %q", im.format))
	}
	if len(problems) > 0 {
		fmt.Fprint(stderr, importUsage)
		return errors.New("import: " + strings.Join(problems, "; "))
	}
	return im.run(ctx, stdout, stderr)
}

var contentTypes = map[string]string{
	"csv":     "text/csv; charset=utf-8",
	"json":    "application/json",
	"geojson": "application/geo+json",
}

func formatOf(file string) string {
	switch ext := strings.ToLower(filepath.Ext(file)); ext {
	case ".csv", ".txt":
		return "csv"
	case ".json":
		if strings.HasSuffix(strings.ToLower(file), ".geo.json") {
			return "geojson"
		}
		return "json"
	case ".geojson":
		return "geojson"
	}
	return ""
}

// importResult is what PUT /v1/stores answers.
type importResult struct {
	AdvertiserID string `json:"advertiser_id"`
	Stores       int    `json:"stores"`
	Error        *struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details []importDetail `json:"details"`
	} `json:"error"`
}

// importDetail is one problem the server found: a row of the file, or a
// field of the request.
type importDetail struct {
	Row     int    `json:"row"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (im *storeImport) run(ctx context.Context, stdout, stderr io.Writer) error {
	f, err := os.Open(im.file)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	size := info.Size()
	name := filepath.Base(im.file)

	// The file is streamed: the bar counts bytes as the HTTP client reads
	// them, and nothing but a read buffer is held in memory.
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("uploading "+name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetRenderBlankState(true),
	)
	body := progressbar.NewReader(f, bar)

	endpoint := strings.TrimRight(im.server, "/") + "/v1/stores"
	q := url.Values{"format": {im.format}}
	if im.advertiser != "" {
		q.Set("advertiser_id", im.advertiser)
	}
	ctx, cancel := context.WithTimeout(ctx, im.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, endpoint+"?"+q.Encode(), &body)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", contentTypes[im.format])
	req.Header.Set("Authorization", "Bearer "+im.key)
	req.Header.Set("User-Agent", "navad-import")

	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	_ = bar.Finish()
	fmt.Fprintln(stderr)
	if err != nil {
		return fmt.Errorf("import: upload %s to %s: %w", name, im.server, err)
	}
	defer resp.Body.Close()
	var res importResult
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("import: read the answer: %w", err)
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		if !refused(resp.StatusCode) { // a proxy's 502 or 504 page, say
			fmt.Fprintf(stderr, "the server answered %s\n%s\n", resp.Status, outcomeUnknown)
		}
		return fmt.Errorf("import: the server answered %s, not navad's JSON: %.200s", resp.Status, raw)
	}
	took := time.Since(start)

	if resp.StatusCode == http.StatusOK {
		fmt.Fprintf(stdout, "imported %d stores for advertiser %s from %s (%s) in %s\n",
			res.Stores, res.AdvertiserID, name, humanBytes(size), took.Round(10*time.Millisecond))
		return nil
	}
	msg := resp.Status
	var details []importDetail
	if res.Error != nil {
		msg, details = res.Error.Message, res.Error.Details
	}
	switch resp.StatusCode {
	case http.StatusBadRequest:
		// A row may have several problems (a CSV header: an unknown column
		// and a missing one), so bad rows are counted apart from the lines
		// printed. A detail without a row is about the request, not the
		// file: advertiser_id missing or wrong.
		var rows []string
		bad := make(map[int]bool)
		for _, d := range details {
			if d.Row > 0 {
				rows = append(rows, fmt.Sprintf("  row %d: %s", d.Row, d.Message))
				bad[d.Row] = true
			}
		}
		if len(bad) == 0 {
			if slices.ContainsFunc(details, func(d importDetail) bool { return d.Field == "advertiser_id" }) {
				msg += " (--advertiser)"
			}
			fmt.Fprintf(stderr, "the server rejected %s: %s\nnothing was stored\n", name, msg)
			return fmt.Errorf("import: %s rejected: %s", name, msg)
		}
		n := len(bad)
		fmt.Fprintf(stderr, "the server rejected %s: %d bad %s; nothing was stored\n", name, n, plural(n, "row", "rows"))
		shown := rows
		if im.maxErrors > 0 && len(rows) > im.maxErrors {
			shown = rows[:im.maxErrors]
		}
		fmt.Fprintln(stderr, strings.Join(shown, "\n"))
		if len(shown) < len(rows) {
			fmt.Fprintf(stderr, "  … and %d more (--max-errors 0 prints all)\n", len(rows)-len(shown))
		}
		return fmt.Errorf("import: %s has %d bad %s; fix %s and import the whole file again",
			name, n, plural(n, "row", "rows"), plural(n, "it", "them"))
	case http.StatusRequestEntityTooLarge:
		fmt.Fprintf(stderr, "%s (%s) is larger than the server accepts: %s\nnothing was stored\n", name, humanBytes(size), msg)
		return fmt.Errorf("import: %s is too large for the server (its NAVAD_MAX_BODY_BYTES)", name)
	}
	if !refused(resp.StatusCode) {
		fmt.Fprintf(stderr, "the server answered %s: %s\n%s\n", resp.Status, msg, outcomeUnknown)
		return fmt.Errorf("import: %s: %s; whether %s was stored is unknown, and importing it again is safe", resp.Status, msg, name)
	}
	fmt.Fprintf(stderr, "the server answered %s: %s\nnothing was stored\n", resp.Status, msg)
	return fmt.Errorf("import: %s: %s", resp.Status, msg)
}

// refused reports whether an answer with status code means that the upload
// was refused and nothing of it stored: a 4xx. A 5xx does not: on Redis a
// 503 can come after every store was written, and a proxy's 502 or 504
// while navad commits. Nor does any other answer navad does not give.
func refused(code int) bool {
	return code >= 400 && code < 500
}

// outcomeUnknown is what the importer says when an answer is not refused.
const outcomeUnknown = "the outcome is unknown: the stores may have been stored before the error.\n" +
	"Importing the same file again is safe: an upload adds or replaces stores by ID."

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
