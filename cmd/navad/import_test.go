package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/navad/navad/internal/storage/storagetest"
)

// importer runs `navad import stores` with args against a server and
// returns its stdout, stderr and error.
func importer(t *testing.T, env func(string) string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(append([]string{"import", "stores"}, args...), env, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func writeFile(t *testing.T, name string, body []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func chainCSV(n int, bad map[int]string) []byte {
	var b bytes.Buffer
	b.WriteString("\xEF\xBB\xBFid,name,address,lat,lng,products\r\n") // as Excel saves it
	for i, s := range storagetest.MakeChainStores(n) {
		lat := fmt.Sprint(s.Lat)
		if v, ok := bad[i]; ok {
			lat = v
		}
		fmt.Fprintf(&b, "%s,%s,%s,%s,%v,%s\r\n", s.ID, s.Name, s.Address, lat, s.Lng, strings.Join(s.Products, "|"))
	}
	return b.Bytes()
}

func storeCount(c client, key string) int {
	c.t.Helper()
	status, body := c.call("GET", "/v1/stores", key, nil)
	if status != 200 {
		c.t.Fatalf("list stores: %d %s", status, body)
	}
	var list struct{ Stores []json.RawMessage }
	if err := json.Unmarshal(body, &list); err != nil {
		c.t.Fatal(err)
	}
	return len(list.Stores)
}

// TestImportStores runs the importer against a running server: each format,
// the key from the flag or NAVAD_API_KEY, an agency naming the advertiser,
// and a file with bad rows, which are printed by number while nothing is
// stored.
// importWorld is a server with an agency and its advertiser "Chain", for
// the importer to import into.
type importWorld struct {
	c                        client
	server                   string
	agencyKey, advID, advKey string
}

func newImportWorld(t *testing.T) importWorld {
	m := startMain(t, t.TempDir())
	w := importWorld{server: "http://" + m.Addr()}
	w.c = client{t, w.server}
	agency := w.c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "agency", "name": "Agency"})
	w.agencyKey = agency["api_key"].(string)
	adv := w.c.must(201, "POST", "/v1/accounts", w.agencyKey, map[string]any{"type": "advertiser", "name": "Chain"})
	w.advID, w.advKey = adv["id"].(string), adv["api_key"].(string)
	return w
}

func TestImportStores(t *testing.T) {
	w := newImportWorld(t)
	c, server, agencyKey, advID, advKey := w.c, w.server, w.agencyKey, w.advID, w.advKey

	// CSV, with the advertiser's own key from the environment. The race
	// pass (-short) imports a tenth as many: the same path, where the
	// detector's instrumented parse of 20,000 rows took most of its 19 s.
	rows := 20_000
	if testing.Short() {
		rows = 2_000
	}
	csvFile := writeFile(t, "stores.csv", chainCSV(rows, nil))
	stdout, stderr, err := importer(t, env("NAVAD_API_KEY", advKey), "--file", csvFile, "--server", server)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if want := fmt.Sprintf("imported %d stores for advertiser %s from stores.csv", rows, advID); !strings.Contains(stdout, want) {
		t.Fatalf("summary: %q", stdout)
	}
	if !strings.Contains(stderr, "uploading stores.csv") || !strings.Contains(stderr, "100%") {
		t.Fatalf("no progress bar on stderr: %q", stderr)
	}
	if n := storeCount(c, advKey); n != rows {
		t.Fatalf("%d stores after the import", n)
	}

	// JSON and GeoJSON by extension, by an agency naming the advertiser.
	stores := storagetest.MakeChainStores(3)
	for i := range stores {
		stores[i].ID = fmt.Sprintf("json-%d", i)
	}
	asJSON, _ := json.Marshal(stores)
	geo := `{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"geo-1","name":"地図","products":["drink-01"]}}]}`
	for _, f := range []struct{ name, body, want string }{
		{"more.json", string(asJSON), "imported 3 stores"},
		{"more.geojson", geo, "imported 1 stores"},
	} {
		stdout, stderr, err := importer(t, env(), "--file", writeFile(t, f.name, []byte(f.body)), "--server", server, "--key", agencyKey, "--advertiser", advID)
		if err != nil || !strings.Contains(stdout, f.want) {
			t.Fatalf("%s: %v %q\n%s", f.name, err, stdout, stderr)
		}
	}
	// --format wins over the extension.
	_, stderr, err = importer(t, env(), "--file", writeFile(t, "stores.txt", chainCSV(2, nil)), "--format", "csv", "--server", server, "--key", advKey)
	if err != nil {
		t.Fatalf("--format csv: %v\n%s", err, stderr)
	}
	if n := storeCount(c, advKey); n != rows+4 {
		t.Fatalf("%d stores, want %d", n, rows+4)
	}

	// Bad rows: lines 3 and 1,002 (line 1 is the header), printed clearly;
	// nothing of the file is stored.
	badFile := writeFile(t, "bad.csv", chainCSV(5000, map[int]string{1: "north", 1000: "95"}))
	stdout, stderr, err = importer(t, env("NAVAD_API_KEY", advKey), "--file", badFile, "--server", server)
	if err == nil || stdout != "" {
		t.Fatalf("a file with bad rows imported: %v %q", err, stdout)
	}
	for _, want := range []string{"rejected bad.csv: 2 bad rows; nothing was stored", "  row 3: lat \"north\" is not a number", "  row 1002: lat must be between -90 and 90"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(err.Error(), "2 bad rows") {
		t.Errorf("error %v", err)
	}
	if n := storeCount(c, advKey); n != rows+4 {
		t.Fatalf("%d stores after a rejected import, want %d", n, rows+4)
	}

	// Many bad rows: the first --max-errors, and how many more.
	many := map[int]string{}
	for i := range 30 {
		many[i*10] = "x"
	}
	_, stderr, err = importer(t, env(), "--file", writeFile(t, "many.csv", chainCSV(300, many)), "--server", server, "--key", advKey, "--max-errors", "5")
	if err == nil || !strings.Contains(stderr, "30 bad rows") || strings.Count(stderr, "  row ") != 5 || !strings.Contains(stderr, "… and 25 more") {
		t.Fatalf("max errors: %v\n%s", err, stderr)
	}
}

func TestImportRefusals(t *testing.T) {
	m := startMain(t, t.TempDir(), "--max-body-bytes", "65536")
	server := "http://" + m.Addr()
	c := client{t, server}
	adv := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "advertiser", "name": "Chain"})
	other := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "advertiser", "name": "Other"})
	advKey := adv["api_key"].(string)
	small := writeFile(t, "small.csv", chainCSV(3, nil))
	tests := []struct {
		name string
		env  func(string) string
		args []string
		says []string
	}{
		{"no key", env(), []string{"--file", small, "--server", server}, []string{"NAVAD_API_KEY"}},
		{"no file", env("NAVAD_API_KEY", advKey), []string{"--server", server}, []string{"--file is required"}},
		{"missing file", env("NAVAD_API_KEY", advKey), []string{"--file", "/nonexistent/stores.csv", "--server", server}, []string{"no such file"}},
		{"unknown extension", env("NAVAD_API_KEY", advKey), []string{"--file", writeFile(t, "stores.xlsx", []byte("x")), "--server", server}, []string{"--format"}},
		{"bad server", env("NAVAD_API_KEY", advKey), []string{"--file", small, "--server", "localhost:1"}, []string{"--server"}},
		{"wrong key", env("NAVAD_API_KEY", "nvd_wrong"), []string{"--file", small, "--server", server}, []string{"401", "not valid"}},
		{"another advertiser", env("NAVAD_API_KEY", advKey), []string{"--file", small, "--server", server, "--advertiser", other["id"].(string)}, []string{"403"}},
		{"too large", env("NAVAD_API_KEY", advKey), []string{"--file", writeFile(t, "big.csv", chainCSV(2000, nil)), "--server", server}, []string{"larger than the server accepts", "nothing was stored"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := importer(t, tt.env, tt.args...)
			if err == nil || stdout != "" {
				t.Fatalf("succeeded: %q", stdout)
			}
			all := err.Error() + "\n" + stderr
			for _, want := range tt.says {
				if !strings.Contains(all, want) {
					t.Errorf("output lacks %q:\n%s", want, all)
				}
			}
		})
	}
	if n := storeCount(c, advKey); n != 0 {
		t.Fatalf("%d stores after refused imports", n)
	}
}

// TestImportCountsBadRowsNotProblems checks what the importer says when the
// server's details are not one per row: a CSV header with two problems (an
// unknown column and a missing one, as the OpenStreetMap extract's header
// id,category,name,lat,lng has) is one bad row, and an agency key without
// --advertiser is a problem of the command, not a bad row of the file.
func TestImportCountsBadRowsNotProblems(t *testing.T) {
	w := newImportWorld(t)
	c, server, agencyKey, advKey := w.c, w.server, w.agencyKey, w.advKey

	osmHeader := writeFile(t, "pois.csv", []byte("id,category,name,lat,lng\nconv-00001,convenience,セブン-イレブン,43.759836,142.4041092\n"))
	_, stderr, err := importer(t, env("NAVAD_API_KEY", advKey), "--file", osmHeader, "--server", server)
	if err == nil {
		t.Fatal("a file without products imported")
	}
	for _, want := range []string{"rejected pois.csv: 1 bad row;", `  row 1: unknown column "category"`, `  row 1: the header lacks the column "products"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(err.Error(), "has 1 bad row;") {
		t.Errorf("error %v, want 1 bad row", err)
	}

	_, stderr, err = importer(t, env("NAVAD_API_KEY", agencyKey), "--file", writeFile(t, "stores.csv", chainCSV(3, nil)), "--server", server)
	if err == nil {
		t.Fatal("an agency's import without --advertiser succeeded")
	}
	all := err.Error() + "\n" + stderr
	if strings.Contains(all, "bad row") || !strings.Contains(all, "advertiser_id") || !strings.Contains(all, "--advertiser") {
		t.Errorf("an agency key without --advertiser: %s", all)
	}
	if n := storeCount(c, advKey); n != 0 {
		t.Fatalf("%d stores after refused imports", n)
	}
}

// TestImportRefusesBadFlags: a flag value the importer cannot use is
// refused before anything is read or sent, naming the flag.
func TestImportRefusesBadFlags(t *testing.T) {
	file := writeFile(t, "stores.csv", chainCSV(1, nil))
	// Nothing listens on port 1: a run that got as far as uploading
	// fails with a connection error that names no flag.
	base := []string{"--file", file, "--server", "http://127.0.0.1:1", "--key", "nvd_any"}
	tests := []struct {
		give []string
		want string
	}{
		{give: []string{"--timeout", "0s"}, want: "--timeout must be positive"},
		{give: []string{"--timeout", "-1m"}, want: "--timeout must be positive"},
		{give: []string{"--max-errors", "-1"}, want: "--max-errors must be 0 (all) or more"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			stdout, stderr, err := importer(t, env(), append(append([]string{}, base...), tt.give...)...)
			if err == nil || stdout != "" {
				t.Fatalf("succeeded: %q", stdout)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			if !strings.Contains(stderr, "usage: navad import stores") {
				t.Errorf("no usage on stderr:\n%s", stderr)
			}
		})
	}
}

// TestImportSaysWhenNothingWasStored: only a 4xx means the upload was
// refused and nothing stored. A 5xx may come after the stores were written
// (a 503 from Redis, a proxy's 502 or 504 while navad commits), so the
// importer says the outcome is unknown and that importing the file again
// is safe, where it used to say nothing was stored.
func TestImportSaysWhenNothingWasStored(t *testing.T) {
	navadError := func(code, msg string) string {
		return `{"error":{"code":"` + code + `","message":"` + msg + `"}}`
	}
	tests := []struct {
		name   string
		status int
		body   string
		stored string // "nothing" or "unknown"
	}{
		{"503 from navad", 503, navadError("unavailable", "the store is unavailable"), "unknown"},
		{"500 from navad", 500, navadError("internal", "internal error"), "unknown"},
		{"a proxy's 502 page", 502, "<html><body>502 Bad Gateway</body></html>", "unknown"},
		{"a proxy's 504 page", 504, "<html><body>504 Gateway Time-out</body></html>", "unknown"},
		{"429", 429, navadError("rate_limited", "too many requests"), "nothing"},
		{"403", 403, navadError("permission_denied", "not yours"), "nothing"},
		{"409", 409, navadError("conflict", "conflict"), "nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			stdout, stderr, err := importer(t, env("NAVAD_API_KEY", "nvd_any"), "--file", writeFile(t, "stores.csv", chainCSV(3, nil)), "--server", srv.URL)
			if err == nil || stdout != "" {
				t.Fatalf("succeeded: %q", stdout)
			}
			all := err.Error() + "\n" + stderr
			unknown := strings.Contains(all, "outcome is unknown") && strings.Contains(all, "again is safe")
			nothing := strings.Contains(all, "nothing was stored")
			if tt.stored == "unknown" && (!unknown || nothing) || tt.stored == "nothing" && (unknown || !nothing) {
				t.Fatalf("want %q stored:\n%s", tt.stored, all)
			}
		})
	}
}
