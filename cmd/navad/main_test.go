package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/navad/navad/internal/demo"
	"github.com/navad/navad/internal/httpapi/apicheck"
)

const adminKey = "e2e-admin-key-0123456789"

func env(pairs ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return func(k string) string { return m[k] }
}

// startMain runs the real wiring in-process on a free loopback port.
func startMain(t testing.TB, dataDir string, args ...string) *Main {
	t.Helper()
	m := NewMain(io.Discard, io.Discard)
	args = append([]string{"--addr", "127.0.0.1:0", "--data-dir", dataDir}, args...)
	if err := m.ParseFlags(args, env("NAVAD_ADMIN_KEY", adminKey)); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

type client struct {
	t    *testing.T
	base string
}

func (c client) call(method, path, key string, body any) (int, []byte) {
	c.t.Helper()
	var raw []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		raw = b
	}
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(raw))
	if err != nil {
		c.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	checkAPI(c.t, req, raw, resp, b)
	return resp.StatusCode, b
}

// openAPI is the checker every end-to-end exchange goes through.
var openAPI = sync.OnceValues(apicheck.Load)

// checkAPI fails the test when an exchange does not match the OpenAPI
// document the server serves.
func checkAPI(t *testing.T, req *http.Request, reqBody []byte, resp *http.Response, body []byte) {
	t.Helper()
	c, err := openAPI()
	if err != nil {
		t.Errorf("OpenAPI document: %v", err)
		return
	}
	if err := c.Check(req, reqBody, resp.StatusCode, resp.Header, body); err != nil {
		t.Errorf("%s %s does not match the OpenAPI document: %v\nbody: %.500s", req.Method, req.URL.Path, err, body)
	}
}

func (c client) must(want int, method, path, key string, body any) map[string]any {
	c.t.Helper()
	status, b := c.call(method, path, key, body)
	if status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return m
}

// seed writes a small world and returns the publisher key and campaign ID.
func seed(c client) (pubKey, campaignID string) {
	adv := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "advertiser", "name": "Brewer"})
	pub := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "publisher", "name": "Navi"})
	advKey := adv["api_key"].(string)
	c.must(200, "PUT", "/v1/stores", advKey, []map[string]any{
		{"id": "near", "name": "近い店", "lat": 35.6905, "lng": 139.7005, "products": []string{"beer"}},
		{"id": "far", "name": "遠い店", "lat": 35.6950, "lng": 139.7005, "products": []string{"beer"}},
	})
	camp := c.must(201, "POST", "/v1/campaigns", advKey, map[string]any{
		"name": "beer", "keywords": []map[string]any{{"text": "居酒屋", "match": "broad"}},
		"product_id": "beer", "radius_m": 1000,
		"creative": map[string]any{"title": "乾杯", "landing_url": "https://example.com/"},
	})
	c.must(200, "PUT", "/v1/inventory", advKey, []map[string]any{{"store_id": "near", "product_id": "beer", "in_stock": false}})
	return pub["api_key"].(string), camp["id"].(string)
}

func adStore(c client, pubKey string) string {
	c.t.Helper()
	m := c.must(200, "GET", "/v1/ads?lat=35.6909&lng=139.7003&q="+url.QueryEscape("居酒屋"), pubKey, nil)
	ads := m["ads"].([]any)
	if len(ads) != 1 {
		c.t.Fatalf("got %d ads, want 1: %v", len(ads), m)
	}
	return ads[0].(map[string]any)["store"].(map[string]any)["id"].(string)
}

func TestRestartServesWhatItServedBefore(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir)
	c := client{t, "http://" + m.Addr()}
	pubKey, campID := seed(c)
	if got := adStore(c, pubKey); got != "far" {
		t.Fatalf("before restart: store %q, want far (near is out of stock)", got)
	}
	before := c.must(200, "GET", "/v1/campaigns/"+campID, adminKey, nil)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := startMain(t, dir)
	c2 := client{t, "http://" + m2.Addr()}
	if got := adStore(c2, pubKey); got != "far" {
		t.Fatalf("after restart: store %q, want far", got)
	}
	after := c2.must(200, "GET", "/v1/campaigns/"+campID, adminKey, nil)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("campaign changed across restart:\n%v\n%v", before, after)
	}
}

// TestProcsPerCPU: the server runs the configured number of Go processors
// per CPU the runtime found, and with 0 leaves the count alone.
func TestProcsPerCPU(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	startMain(t, t.TempDir(), "--procs-per-cpu", "3")
	if got := runtime.GOMAXPROCS(0); got != 3*runtimeProcs {
		t.Fatalf("GOMAXPROCS %d with 3 per CPU, want %d", got, 3*runtimeProcs)
	}
	runtime.GOMAXPROCS(runtimeProcs + 1)
	startMain(t, t.TempDir(), "--procs-per-cpu", "0")
	if got := runtime.GOMAXPROCS(0); got != runtimeProcs+1 {
		t.Fatalf("GOMAXPROCS %d with 0 per CPU, want it left at %d", got, runtimeProcs+1)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	err := run([]string{"--addr", "nonsense", "--timezone", "Mars/Olympus"}, env("NAVAD_PUBLIC_URL", "ftp://x", "NAVAD_READ_TIMEOUT", "soon"), io.Discard, io.Discard)
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"addr", "Mars/Olympus", "public url", "NAVAD_READ_TIMEOUT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

// TestHelpPrintsUsage: --help prints the flags and exits 0 rather than
// failing as a bad configuration.
func TestHelpPrintsUsage(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--help"}, env(), &out, io.Discard); err != nil {
		t.Fatalf("--help: %v", err)
	}
	if !strings.Contains(out.String(), "usage: navad") || !strings.Contains(out.String(), "-data-dir") {
		t.Fatalf("--help printed:\n%s", out.String())
	}
}

func TestImportHelpPrintsUsage(t *testing.T) {
	for _, args := range [][]string{{"import", "stores", "--help"}, {"import", "stores", "-h"}, {"import", "--help"}, {"import", "-h"}} {
		var out bytes.Buffer
		if err := run(args, env(), &out, io.Discard); err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		if !strings.Contains(out.String(), "navad import stores") || !strings.Contains(out.String(), "--advertiser") {
			t.Fatalf("%s printed:\n%s", strings.Join(args, " "), out.String())
		}
	}
	// Without what to import it is a mistake, not a request for help.
	if err := run([]string{"import"}, env(), io.Discard, io.Discard); err == nil {
		t.Fatal("navad import alone succeeded")
	}
}

func TestDemoServesBeerNearShinjuku(t *testing.T) {
	var out bytes.Buffer
	m := NewMain(&out, io.Discard)
	if err := m.ParseFlags([]string{"--demo", "--addr", "127.0.0.1:0"}, env()); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !strings.Contains(out.String(), demo.PublisherKey) || !strings.Contains(out.String(), "OpenStreetMap") {
		t.Fatalf("demo banner lacks the key or the attribution:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "'http://"+m.Addr()+"/v1/ads?") {
		t.Fatalf("demo banner's request is not at the address navad listens on (%s):\n%s", m.Addr(), out.String())
	}
	c := client{t, "http://" + m.Addr()}
	for q, campaign := range map[string]string{"居酒屋": "demo-beer-izakaya", "缶コーヒー": "demo-coffee-break"} {
		body := c.must(200, "GET", "/v1/ads?lat=35.6909&lng=139.7003&q="+url.QueryEscape(q), demo.PublisherKey, nil)
		ads := body["ads"].([]any)
		if len(ads) != 1 || ads[0].(map[string]any)["campaign_id"] != campaign {
			t.Fatalf("%s: %v", q, body)
		}
	}
	body := c.must(200, "GET", "/v1/ads?lat=35.6909&lng=139.7003&q="+url.QueryEscape("歯医者"), demo.PublisherKey, nil)
	if len(body["ads"].([]any)) != 0 {
		t.Fatalf("歯医者 got an ad: %v", body)
	}
}

// buildNavad builds the real binary once per test binary (build_test.go).
// With -short, which only make test's race pass sets, the test is left to
// the plain pass, where it ran in full: the binary is built without the
// race detector, so that the race pass could not check it, only spend half
// a minute running it again.
func buildNavad(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the navad binary, built without the race detector: left to make test's plain pass")
	}
	return builtNavad(t)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcess runs the binary, with args after its address and data
// directory, and waits until /readyz answers.
func startProcess(t *testing.T, bin, dir, addr string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--addr", addr, "--data-dir", dir}, args...)...)
	cmd.Env = append(os.Environ(), "NAVAD_ADMIN_KEY="+adminKey)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd, &logs
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("navad did not become ready:\n%s", logs.String())
	return nil, nil
}

// TestKill9AfterAcknowledgement: a 2xx means durable, so SIGKILL right
// after it loses nothing.
func TestKill9AfterAcknowledgement(t *testing.T) {
	bin := buildNavad(t)
	dir := t.TempDir()
	addr := freePort(t)
	cmd, _ := startProcess(t, bin, dir, addr)
	c := client{t, "http://" + addr}
	pubKey, campID := seed(c)
	// The last write before the kill: pause, then kill at once.
	c.must(200, "POST", "/v1/campaigns/"+campID+"/pause", adminKey, nil)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	addr2 := freePort(t)
	startProcess(t, bin, dir, addr2)
	c2 := client{t, "http://" + addr2}
	got := c2.must(200, "GET", "/v1/campaigns/"+campID, adminKey, nil)
	if got["status"] != "paused" {
		t.Fatalf("after kill -9: status %v, want paused", got["status"])
	}
	body := c2.must(200, "GET", "/v1/ads?lat=35.6909&lng=139.7003&q="+url.QueryEscape("居酒屋"), pubKey, nil)
	if n := len(body["ads"].([]any)); n != 0 {
		t.Fatalf("paused campaign served after restart: %v", body)
	}
	c2.must(200, "POST", "/v1/campaigns/"+campID+"/resume", adminKey, nil)
	if got := adStore(c2, pubKey); got != "far" {
		t.Fatalf("stock lost across kill -9: store %q, want far", got)
	}
}

// TestSIGTERMShutsDownGracefully: the process finishes and exits 0.
func TestSIGTERMShutsDownGracefully(t *testing.T) {
	bin := buildNavad(t)
	addr := freePort(t)
	cmd, logs := startProcess(t, bin, t.TempDir(), addr)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("navad did not exit after SIGTERM")
	}
	sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
	found := false
	for sc.Scan() {
		found = found || strings.Contains(sc.Text(), "shutting down")
	}
	if !found {
		t.Fatalf("no shutdown log line:\n%s", logs.String())
	}
}

// scrape returns the unlabelled series of base's /metrics.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = v
		}
	}
	return out
}
