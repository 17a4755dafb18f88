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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startHardened runs the real wiring with small limits and short read
// timeouts, so that hostile requests reach them quickly.
func startHardened(t *testing.T) *Main {
	t.Helper()
	m := NewMain(io.Discard, io.Discard)
	args := []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}
	if err := m.ParseFlags(args, env(
		"NAVAD_ADMIN_KEY", adminKey,
		"NAVAD_MAX_JSON_BODY_BYTES", "65536",
		"NAVAD_MAX_BODY_BYTES", "1048576",
		"NAVAD_MAX_HEADER_BYTES", "8192",
		"NAVAD_READ_HEADER_TIMEOUT", "1s",
		"NAVAD_READ_TIMEOUT", "5s",
		"NAVAD_RATE_MANAGEMENT", "10000", // this suite is not about rate limits
		"NAVAD_RATE_BURST", "10000",
	)); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// exchange is one raw request and what came back.
type exchange struct {
	status int
	header http.Header
	body   []byte
	err    error // the connection closed without an answer
}

// rawRequest writes an HTTP/1.1 request byte for byte: paths are not
// cleaned, headers not canonicalized, bodies not checked. hdr holds
// name/value pairs; Content-Length is added unless hdr sets it or
// Transfer-Encoding.
func rawRequest(method, target string, hdr []string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: navad.test\r\nConnection: close\r\n", method, target)
	framed := false
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", hdr[i], hdr[i+1])
		framed = framed || strings.EqualFold(hdr[i], "Content-Length") || strings.EqualFold(hdr[i], "Transfer-Encoding")
	}
	if body != nil && !framed {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// send writes raw on a new connection while reading the answer (a server
// may answer 413 before the body is in), then half-closes if asked.
func send(addr string, raw []byte, halfClose bool) exchange {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return exchange{err: err}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	go func() {
		_, _ = conn.Write(raw)
		if halfClose {
			_ = conn.(*net.TCPConn).CloseWrite()
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return exchange{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return exchange{status: resp.StatusCode, header: resp.Header, body: body}
}

// checkRawAPI validates an exchange against the OpenAPI document, reading
// the request back from the bytes that were sent.
func checkRawAPI(t *testing.T, raw []byte, ex exchange) {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return // not a request Go can read, so navad never saw it as one
	}
	reqBody, _ := io.ReadAll(req.Body)
	resp := &http.Response{StatusCode: ex.status, Header: ex.header}
	checkAPI(t, req, reqBody, resp, ex.body)
}

// hostile is one request of the adversarial suite.
type hostile struct {
	name      string
	raw       []byte
	halfClose bool                            // the client stops sending early
	want      int                             // the status, or 0 for any 4xx or inert 2xx/3xx
	check     func(t *testing.T, ex exchange) // more to hold, such as inert storage
}

func bearer(key string, more ...string) []string {
	return append([]string{"Authorization", "Bearer " + key}, more...)
}

func nested(open, close string, depth int, inner string) string {
	return strings.Repeat(open, depth) + inner + strings.Repeat(close, depth)
}

// TestAdversarialInput sends over fifty hostile requests to a real
// listening server. Each gets a 4xx or is handled inertly (stored as
// given, echoed back safely encoded), never a 5xx, and the server keeps
// answering decisions throughout. Answers navad writes are also checked
// against the OpenAPI document.
//
// One hostile request is left out on purpose: a Transfer-Encoding other
// than chunked is answered 501 by Go's net/http before any handler runs,
// as RFC 9112 §6.1 asks of a server that does not know the coding.
func TestAdversarialInput(t *testing.T) {
	m := startHardened(t)
	addr := m.Addr()
	c := client{t, "http://" + addr}
	adv := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "advertiser", "name": "Brewer"})
	rival := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "advertiser", "name": "Rival"})
	pub := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "publisher", "name": "Navi"})
	advID, advKey, pubKey := adv["id"].(string), adv["api_key"].(string), pub["api_key"].(string)
	c.must(200, "PUT", "/v1/stores", advKey, []map[string]any{
		{"id": "near", "name": "近い店", "lat": 35.6905, "lng": 139.7005, "products": []string{"beer"}},
	})
	campaign := func(name string) map[string]any {
		return map[string]any{
			"name": name, "keywords": []map[string]any{{"text": "居酒屋", "match": "broad"}},
			"product_id": "beer", "radius_m": 1000,
			"creative": map[string]any{"title": "乾杯", "landing_url": "https://example.com/"},
		}
	}
	campID := c.must(201, "POST", "/v1/campaigns", advKey, campaign("beer"))["id"].(string)
	decision := "/v1/ads?lat=35.6909&lng=139.7003&q=" + url.QueryEscape("居酒屋")

	// A publisher asks for ads all through the suite; every answer must be
	// a 200 with the ad.
	var canaryFailures, canaryCalls atomic.Int64
	var canaryLast atomic.Value
	stop := make(chan struct{})
	var canary sync.WaitGroup
	canary.Add(1)
	go func() {
		defer canary.Done()
		hc := &http.Client{Timeout: 30 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			req, _ := http.NewRequest("GET", "http://"+addr+decision, nil)
			req.Header.Set("Authorization", "Bearer "+pubKey)
			resp, err := hc.Do(req)
			canaryCalls.Add(1)
			if err != nil {
				canaryFailures.Add(1)
				canaryLast.Store(err.Error())
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// The suite adds campaigns on the same keyword, so which ads
			// come back varies; that some do must not.
			if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"campaign_id"`)) {
				canaryFailures.Add(1)
				canaryLast.Store(fmt.Sprintf("%d %.200s", resp.StatusCode, b))
			}
		}
	}()

	// Inertness checks read back through the API.
	getJSON := func(t *testing.T, path string) map[string]any {
		t.Helper()
		return c.must(200, "GET", path, advKey, nil)
	}
	roundTrips := func(path func(exchange) string, field, want string) func(*testing.T, exchange) {
		return func(t *testing.T, ex exchange) {
			t.Helper()
			if ex.status >= 300 {
				t.Fatalf("status %d: %s", ex.status, ex.body)
			}
			status, raw := c.call("GET", path(ex), advKey, nil)
			if status != 200 {
				t.Fatalf("read back: %d %s", status, raw)
			}
			for _, tag := range []string{"<script", "<img", "</"} {
				if bytes.Contains(raw, []byte(tag)) {
					t.Fatalf("the answer holds raw %q: %s", tag, raw)
				}
			}
			var got map[string]any
			if err := json.Unmarshal(raw, &got); err != nil || got[field] != want {
				t.Fatalf("stored %q as %v (%v)", want, got[field], err)
			}
		}
	}
	campaignPath := func(ex exchange) string {
		var m map[string]any
		_ = json.Unmarshal(ex.body, &m)
		id, _ := m["id"].(string)
		return "/v1/campaigns/" + id
	}
	storePath := func(id string) func(exchange) string {
		return func(exchange) string { return "/v1/stores/" + url.PathEscape(id) }
	}
	stillOwned := func(t *testing.T, _ exchange) {
		t.Helper()
		if got := getJSON(t, "/v1/campaigns/"+campID); got["advertiser_id"] != advID || got["name"] != "beer" {
			t.Fatalf("the campaign changed: %v", got)
		}
	}
	storesIntact := func(t *testing.T, _ exchange) {
		t.Helper()
		if got := getJSON(t, "/v1/stores/near"); got["name"] != "近い店" {
			t.Fatalf("the store changed: %v", got)
		}
	}
	noHeaderInjected := func(t *testing.T, ex exchange) {
		t.Helper()
		if ex.header.Get("Set-Cookie") != "" || ex.header.Get("X-Injected") != "" {
			t.Fatalf("a header was injected: %v", ex.header)
		}
	}

	const (
		script = `<script>alert(document.cookie)</script>`
		sql    = `'; DROP TABLE campaigns; --`
		imgXSS = `<img src=x onerror=alert(1)>`
	)
	jsonBody := func(v any) []byte { b, _ := json.Marshal(v); return b }
	big := func(n int) string { return strings.Repeat("x", n) }
	js := []string{"Content-Type", "application/json"}
	csv := []string{"Content-Type", "text/csv"}
	csvHeader := "id,name,address,lat,lng,products\n"
	jsonAuth := func(key string, more ...string) []string {
		return bearer(key, append(append([]string{}, js...), more...)...)
	}

	tests := []hostile{
		// Oversized bodies.
		{name: "decision body over the JSON limit", raw: rawRequest("POST", "/v1/ads", jsonAuth(pubKey), []byte(`{"lat":35.69,"lng":139.70,"q":"`+big(200<<10)+`"}`)), want: 413},
		{name: "campaign body over the JSON limit", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), jsonBody(campaign(big(200<<10)))), want: 413},
		{name: "account body over the JSON limit", raw: rawRequest("POST", "/v1/accounts", jsonAuth(adminKey), []byte(`{"type":"publisher","name":"`+big(100<<10)+`"}`)), want: 413},
		{name: "patch over the JSON limit", raw: rawRequest("PATCH", "/v1/campaigns/"+campID, jsonAuth(advKey), []byte(`{"name":"`+big(100<<10)+`"}`)), want: 413, check: stillOwned},
		{name: "JSON store upload over the body limit", raw: rawRequest("PUT", "/v1/stores", jsonAuth(advKey), []byte(`[{"id":"s","name":"`+big(2<<20)+`","lat":35,"lng":139,"products":["beer"]}]`)), want: 413, check: storesIntact},
		{name: "chunked CSV upload over the body limit", raw: rawRequest("PUT", "/v1/stores", bearer(advKey, "Content-Type", "text/csv", "Transfer-Encoding", "chunked"), chunked(csvHeader+strings.Repeat("s1,name,,35,139,beer\n", 100_000))), want: 413, check: storesIntact},
		{name: "stock batch over its limit", raw: rawRequest("PUT", "/v1/inventory", jsonAuth(advKey), []byte("["+strings.Repeat(`{"store_id":"near","product_id":"beer","in_stock":true},`, 60_000)+`{}]`)), want: 413},
		{name: "declared length far above what is sent", raw: rawRequest("POST", "/v1/ads", jsonAuth(pubKey, "Content-Length", "99999999999"), []byte(`{"lat":35`)), halfClose: true},
		{name: "body ends before its declared length", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey, "Content-Length", "500"), []byte(`{"name":"short"`)), halfClose: true, want: 400},

		// NaN, infinities and other numbers.
		{name: "lat NaN", raw: rawRequest("GET", "/v1/ads?lat=NaN&lng=139.7&q=x", bearer(pubKey), nil), want: 400},
		{name: "lng Infinity", raw: rawRequest("GET", "/v1/ads?lat=35&lng=Infinity&q=x", bearer(pubKey), nil), want: 400},
		{name: "lat -Inf", raw: rawRequest("GET", "/v1/ads?lat=-Inf&lng=139&q=x", bearer(pubKey), nil), want: 400},
		{name: "lat 1e400", raw: rawRequest("GET", "/v1/ads?lat=1e400&lng=139&q=x", bearer(pubKey), nil), want: 400},
		{name: "acc NaN", raw: rawRequest("GET", "/v1/ads?lat=35&lng=139&q=x&acc=nan", bearer(pubKey), nil), want: 400},
		{name: "hex-float coordinate", raw: rawRequest("GET", "/v1/ads?lat=0x1p5&lng=139&q=x", bearer(pubKey), nil), want: 400},
		{name: "underscores in a coordinate", raw: rawRequest("GET", "/v1/ads?lat=3_5&lng=139&q=x", bearer(pubKey), nil), want: 400},
		{name: "underflowing coordinate", raw: rawRequest("GET", "/v1/ads?lat=35&lng=1e-400&q=x", bearer(pubKey), nil), want: 200},
		{name: "POST lat NaN (not JSON)", raw: rawRequest("POST", "/v1/ads", jsonAuth(pubKey), []byte(`{"lat":NaN,"lng":139,"q":"x"}`)), want: 400},
		{name: "POST lat 1e999", raw: rawRequest("POST", "/v1/ads", jsonAuth(pubKey), []byte(`{"lat":1e999,"lng":139,"q":"x"}`)), want: 400},
		{name: "CSV store at NaN, Inf", raw: rawRequest("PUT", "/v1/stores", bearer(advKey, csv...), []byte(csvHeader+"s1,n,,NaN,Inf,beer\n")), want: 400, check: storesIntact},
		{name: "GeoJSON store at 1e999", raw: rawRequest("PUT", "/v1/stores", bearer(advKey, "Content-Type", "application/geo+json"), []byte(`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1e999,0]},"properties":{"id":"g","name":"g","products":["beer"]}}]}`)), want: 400},
		{name: "stock quantity beyond int64", raw: rawRequest("PUT", "/v1/inventory", jsonAuth(advKey), []byte(`[{"store_id":"near","product_id":"beer","quantity":1e30}]`)), want: 400},
		{name: "n beyond int64", raw: rawRequest("GET", "/v1/ads?lat=35&lng=139&q=x&n=99999999999999999999", bearer(pubKey), nil), want: 400},
		{name: "campaign radius 1e10", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), []byte(`{"name":"r","keywords":[{"text":"x","match":"broad"}],"product_id":"beer","radius_m":1e10,"creative":{"title":"t","landing_url":"https://e.com"}}`)), want: 400},
		{name: "campaign start in year 99999", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), []byte(`{"name":"y","start":"99999-01-01T00:00:00Z","keywords":[{"text":"x","match":"broad"}],"product_id":"beer","creative":{"title":"t","landing_url":"https://e.com"}}`)), want: 400},

		// Invalid UTF-8.
		{name: "q of invalid UTF-8", raw: rawRequest("GET", "/v1/ads?lat=35&lng=139&q=%FF%FE", bearer(pubKey), nil), want: 400},
		{name: "q of an overlong encoding", raw: rawRequest("GET", "/v1/ads?lat=35&lng=139&q=%C0%AF", bearer(pubKey), nil), want: 400},
		{name: "uid of invalid UTF-8", raw: rawRequest("GET", "/v1/ads?lat=35&lng=139&q=x&uid=%FF", bearer(pubKey), nil), want: 400},
		{name: "raw invalid UTF-8 in a JSON decision", raw: rawRequest("POST", "/v1/ads", jsonAuth(pubKey), []byte("{\"lat\":35.69,\"lng\":139.70,\"q\":\"\xff\xfe居酒屋\"}")), want: 400},
		{name: "raw invalid UTF-8 in a CSV store name", raw: rawRequest("PUT", "/v1/stores", bearer(advKey, csv...), []byte(csvHeader+"s1,\xff\xfe,,35,139,beer\n")), want: 400, check: storesIntact},
		{name: "Shift_JIS CSV", raw: rawRequest("PUT", "/v1/stores", bearer(advKey, "Content-Type", "text/csv; charset=shift_jis"), []byte(csvHeader+"s1,\x8b\x8f\x8e\xf0\x89\xae,,35,139,beer\n")), want: 400},
		{name: "invalid UTF-8 in the key", raw: rawRequest("GET", decision, []string{"Authorization", "Bearer nvd_\xff\xfe"}, nil), want: 401},
		{name: "invalid UTF-8 in an ID", raw: rawRequest("GET", "/v1/campaigns/%FF%FE", bearer(advKey), nil), want: 404},

		// Deeply nested and duplicate-key JSON.
		{name: "decision nested 60,000 deep", raw: rawRequest("POST", "/v1/ads", jsonAuth(pubKey), []byte(strings.Repeat("[", 60_000))), want: 400},
		{name: "campaign nested past the decoder's depth", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), []byte(`{"name":`+nested("[", "]", 20_000, "1")+`}`)), want: 400},
		{name: "stores nested past the decoder's depth", raw: rawRequest("PUT", "/v1/stores", jsonAuth(advKey), []byte(nested("[", "]", 20_000, ""))), want: 400, check: storesIntact},
		{name: "patch nested deep", raw: rawRequest("PATCH", "/v1/campaigns/"+campID, jsonAuth(advKey), []byte(`{"creative":`+nested(`{"a":`, "}", 9_000, "1")+`}`)), want: 400, check: stillOwned},
		{name: "duplicate lat, the last out of range", raw: rawRequest("POST", "/v1/ads", jsonAuth(pubKey), []byte(`{"lat":35.69,"lat":91,"lng":139.70,"q":"x"}`)), want: 400},
		{name: "LAT beside lat (a member is taken under its exact name only)", raw: rawRequest("POST", "/v1/ads", jsonAuth(pubKey), []byte(`{"LAT":91,"lat":35.69,"lng":139.70,"q":"居酒屋"}`)), want: 200},
		{name: "duplicate name in a campaign", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), []byte(`{"name":"first","name":"second","keywords":[{"text":"x","match":"broad"}],"product_id":"beer","creative":{"title":"t","landing_url":"https://e.com"}}`)), want: 400},
		{name: "status and Status in a campaign", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), []byte(`{"name":"n","status":"paused","Status":"active","keywords":[{"text":"x","match":"broad"}],"product_id":"beer","creative":{"title":"t","landing_url":"https://e.com"}}`)), want: 400},
		{name: "status twice in a patch, the last null", raw: rawRequest("PATCH", "/v1/campaigns/"+campID, jsonAuth(advKey), []byte(`{"status":"paused","status":null}`)), want: 400, check: stillOwned},
		{name: "in_stock twice in a stock row", raw: rawRequest("PUT", "/v1/inventory", jsonAuth(advKey), []byte(`[{"store_id":"near","product_id":"beer","in_stock":true,"in_stock":false}]`)), want: 400},
		{name: "a JSON body with a byte-order mark", raw: rawRequest("POST", "/v1/ads", jsonAuth(pubKey), []byte("\xef\xbb\xbf{\"lat\":35,\"lng\":139,\"q\":\"x\"}")), want: 400},

		// Script and SQL in names: stored as given, answered JSON-escaped.
		{name: "script in a campaign name", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), jsonBody(campaign(script))), want: 201, check: roundTrips(campaignPath, "name", script)},
		{name: "SQL in a campaign name", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), jsonBody(campaign(sql))), want: 201, check: roundTrips(campaignPath, "name", sql)},
		{name: "script in a store name (CSV)", raw: rawRequest("PUT", "/v1/stores", bearer(advKey, csv...), []byte(csvHeader+"xss,\""+imgXSS+"\",,35.6,139.7,beer\n")), want: 200, check: roundTrips(storePath("xss"), "name", imgXSS)},
		{name: "SQL in a store address (JSON)", raw: rawRequest("PUT", "/v1/stores", jsonAuth(advKey), jsonBody([]map[string]any{{"id": "sql", "name": "s", "address": sql, "lat": 35.6, "lng": 139.7, "products": []string{"beer"}}})), want: 200, check: roundTrips(storePath("sql"), "address", sql)},
		{name: "template and lookup strings in an account name", raw: rawRequest("POST", "/v1/accounts", jsonAuth(adminKey), []byte(`{"type":"publisher","name":"{{7*7}} ${jndi:ldap://x/a} %s%n"}`)), want: 201},
		{name: "bidi override and zero-width characters in a name", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), jsonBody(campaign("\u202egnp.exe\u200b"))), want: 201, check: roundTrips(campaignPath, "name", "\u202egnp.exe\u200b")},
		{name: "script as a store ID", raw: rawRequest("PUT", "/v1/stores", jsonAuth(advKey), jsonBody([]map[string]any{{"id": script, "name": "s", "lat": 35.6, "lng": 139.7, "products": []string{"beer"}}})), want: 400},
		{name: "script as the search", raw: rawRequest("GET", "/v1/ads?lat=35.69&lng=139.70&q="+url.QueryEscape(script), bearer(pubKey), nil), want: 200, check: func(t *testing.T, ex exchange) {
			if bytes.Contains(ex.body, []byte("<script")) {
				t.Fatalf("the decision echoes the script: %s", ex.body)
			}
		}},
		{name: "SQL as a keyword", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), jsonBody(map[string]any{"name": "k", "keywords": []map[string]any{{"text": `' OR 1=1 --`, "match": "exact"}}, "product_id": "beer", "creative": map[string]any{"title": "t", "landing_url": "https://e.com"}})), want: 201},
		{name: "a javascript: landing URL", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), []byte(`{"name":"j","keywords":[{"text":"x","match":"broad"}],"product_id":"beer","creative":{"title":"t","landing_url":"javascript:alert(1)"}}`)), want: 400},
		{name: "a data: image URL", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), []byte(`{"name":"d","keywords":[{"text":"x","match":"broad"}],"product_id":"beer","creative":{"title":"t","image_url":"data:text/html,<script>alert(1)</script>","landing_url":"https://e.com"}}`)), want: 400},
		{name: "a NUL in an account name", raw: rawRequest("POST", "/v1/accounts", jsonAuth(adminKey), []byte(`{"type":"publisher","name":"a\u0000b"}`)), want: 400},

		// Path tricks in IDs.
		{name: "dot-dot in the path", raw: rawRequest("GET", "/v1/campaigns/../accounts/admin", bearer(advKey), nil), want: 404},
		{name: "encoded dot-dot as an ID", raw: rawRequest("GET", "/v1/campaigns/%2e%2e", bearer(advKey), nil), want: 404},
		{name: "encoded traversal to another route", raw: rawRequest("GET", "/v1/campaigns/%2e%2e%2f%2e%2e%2faccounts%2fadmin", bearer(advKey), nil), want: 404},
		{name: "traversal as a store ID", raw: rawRequest("GET", "/v1/stores/..%2f..%2fetc%2fpasswd", bearer(advKey), nil), want: 404},
		{name: "traversal to the admin account", raw: rawRequest("GET", "/v1/accounts/..%2fadmin", bearer(advKey), nil), want: 404},
		{name: "deleting a store by dot-dot", raw: rawRequest("DELETE", "/v1/stores/%2e%2e", bearer(advKey), nil), want: 404, check: storesIntact},
		{name: "deleting a campaign by traversal", raw: rawRequest("DELETE", "/v1/campaigns/x%2f..%2f"+campID, bearer(advKey), nil), want: 404, check: stillOwned},
		{name: "a NUL in an ID", raw: rawRequest("GET", "/v1/campaigns/a%00b", bearer(advKey), nil), want: 404},
		{name: "CRLF injection in an ID", raw: rawRequest("GET", "/v1/campaigns/x%0d%0aSet-Cookie:%20a=b%0d%0aX-Injected:%201", bearer(advKey), nil), want: 404, check: noHeaderInjected},
		{name: "traversal in advertiser_id", raw: rawRequest("GET", "/v1/stores?advertiser_id=..%2f..%2fetc%2fpasswd", bearer(adminKey), nil)},
		{name: "a wildcard advertiser_id", raw: rawRequest("GET", "/v1/stores?advertiser_id=*", bearer(adminKey), nil)},
		{name: "another tenant as advertiser_id", raw: rawRequest("GET", "/v1/stores?advertiser_id="+rival["id"].(string), bearer(advKey), nil), want: 403},
		{name: "double slashes", raw: rawRequest("GET", "//v1//ads?lat=35&lng=139&q=x", bearer(pubKey), nil), want: 404},
		{name: "upper-case path", raw: rawRequest("GET", "/V1/ADS?lat=35&lng=139&q=x", bearer(pubKey), nil), want: 404},
		{name: "absolute-form target naming another host", raw: rawRequest("GET", "http://evil.example"+decision, bearer(pubKey), nil), want: 200},

		// Headers.
		{name: "a 100 KB header", raw: rawRequest("GET", decision, bearer(pubKey, "X-Padding", big(100<<10)), nil), want: 431},
		{name: "2,000 small headers", raw: rawRequest("GET", decision, manyHeaders(bearer(pubKey), 2000), nil), want: 431},
		{name: "a 6 KB key", raw: rawRequest("GET", decision, bearer("nvd_"+big(6<<10)), nil), want: 401},
		{name: "a key with a trailing word", raw: rawRequest("GET", decision, bearer(pubKey+" extra"), nil), want: 401},
		{name: "a NUL in a header value", raw: rawRequest("GET", decision, bearer(pubKey, "X-Evil", "a\x00b"), nil), want: 400},
		{name: "a header line without a colon", raw: rawRequest("GET", decision, bearer(pubKey, "X-Evil\r\nbroken-line", "1"), nil), want: 400},
		{name: "no Host header", raw: []byte("GET " + decision + " HTTP/1.1\r\nAuthorization: Bearer " + pubKey + "\r\nConnection: close\r\n\r\n"), want: 400},
		{name: "two different Content-Lengths", raw: rawRequest("POST", "/v1/ads", jsonAuth(pubKey, "Content-Length", "5", "Content-Length", "6"), []byte("{}")), want: 400},
		{name: "Content-Length and chunked together", raw: rawRequest("POST", "/v1/ads", jsonAuth(pubKey, "Content-Length", "4", "Transfer-Encoding", "chunked"), chunked(`{"lat":35.69,"lng":139.70,"q":"x"}`))},

		// Wrong content types.
		{name: "XML store upload", raw: rawRequest("PUT", "/v1/stores", bearer(advKey, "Content-Type", "application/xml"), []byte(`<stores><store id="x"/></stores>`)), want: 400},
		{name: "JSON sent as CSV", raw: rawRequest("PUT", "/v1/stores", bearer(advKey, csv...), []byte(`[{"id":"s","name":"n","lat":35,"lng":139,"products":["beer"]}]`)), want: 400, check: storesIntact},
		{name: "CSV sent as JSON", raw: rawRequest("PUT", "/v1/stores", jsonAuth(advKey), []byte(csvHeader+"s1,n,,35,139,beer\n")), want: 400},
		{name: "multipart campaign", raw: rawRequest("POST", "/v1/campaigns", bearer(advKey, "Content-Type", "multipart/form-data; boundary=x"), []byte("--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nbeer\r\n--x--\r\n")), want: 400},
		{name: "form-encoded decision", raw: rawRequest("POST", "/v1/ads", bearer(pubKey, "Content-Type", "application/x-www-form-urlencoded"), []byte("lat=35&lng=139&q=x")), want: 400},
		{name: "gzip body not announced as accepted", raw: rawRequest("PUT", "/v1/stores", bearer(advKey, "Content-Type", "text/csv", "Content-Encoding", "gzip"), []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03")), want: 400},
		{name: "a 4 KB Content-Type", raw: rawRequest("PUT", "/v1/stores", bearer(advKey, "Content-Type", "text/csv; "+strings.Repeat("a=b; ", 800)), []byte(csvHeader))}, // a header and no rows: nothing to store

		// Methods.
		{name: "TRACE", raw: rawRequest("TRACE", decision, bearer(pubKey), nil), want: 405},
		{name: "an invented method", raw: rawRequest("PROPFIND", "/v1/campaigns", bearer(advKey), nil), want: 405},
		{name: "a method with a NUL", raw: rawRequest("G\x00T", decision, bearer(pubKey), nil), want: 400},

		// Roles and tenants.
		{name: "an admin account through the API", raw: rawRequest("POST", "/v1/accounts", jsonAuth(adminKey), []byte(`{"type":"admin","name":"root"}`)), want: 400},
		{name: "a campaign for another tenant", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), jsonBody(func() map[string]any { m := campaign("steal"); m["advertiser_id"] = rival["id"]; return m }())), want: 403},
		{name: "moving a campaign by patch", raw: rawRequest("PATCH", "/v1/campaigns/"+campID, jsonAuth(advKey), []byte(`{"advertiser_id":"`+rival["id"].(string)+`"}`)), want: 400, check: stillOwned},
		{name: "a patch that is not an object", raw: rawRequest("PATCH", "/v1/campaigns/"+campID, jsonAuth(advKey), []byte(`[null]`)), want: 400, check: stillOwned},
		{name: "a store with 5,000 products", raw: rawRequest("PUT", "/v1/stores", jsonAuth(advKey), jsonBody([]map[string]any{{"id": "many", "name": "m", "lat": 35.6, "lng": 139.7, "products": strings.Split(strings.Repeat("p,", 4999)+"p", ",")}})), want: 400},
		{name: "a keyword of 10,000 characters", raw: rawRequest("POST", "/v1/campaigns", jsonAuth(advKey), jsonBody(map[string]any{"name": "k", "keywords": []map[string]any{{"text": strings.Repeat("あ", 10_000), "match": "broad"}}, "product_id": "beer", "creative": map[string]any{"title": "t", "landing_url": "https://e.com"}})), want: 400},
		{name: "1,000 repeated query parameters", raw: rawRequest("GET", decision+strings.Repeat("&q=x", 1000), bearer(pubKey), nil), want: 400}, // a field given twice is refused, however often
	}
	if len(tests) < 50 {
		t.Fatalf("only %d hostile requests", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := send(addr, tt.raw, tt.halfClose)
			t.Logf("status %d, connection error %v", ex.status, ex.err)
			switch {
			case ex.err != nil && tt.halfClose:
				// The server may drop a client that stops sending.
			case ex.err != nil:
				t.Fatalf("no answer: %v", ex.err)
			case ex.status >= 500:
				t.Fatalf("status %d: %s", ex.status, ex.body)
			case tt.want != 0 && ex.status != tt.want:
				t.Fatalf("status %d, want %d: %.300s", ex.status, tt.want, ex.body)
			default:
				checkRawAPI(t, tt.raw, ex)
				if ex.header.Get("X-Request-Id") != "" && ex.header.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("no nosniff header")
				}
			}
			if tt.check != nil {
				tt.check(t, ex)
			}
			// The server still answers.
			if status, b := c.call("GET", decision, pubKey, nil); status != 200 {
				t.Fatalf("after %s the server answers %d: %s", tt.name, status, b)
			}
		})
	}
	close(stop)
	canary.Wait()
	t.Logf("%d hostile requests; %d decisions alongside", len(tests), canaryCalls.Load())
	if f := canaryFailures.Load(); f > 0 {
		t.Fatalf("%d of %d decisions failed while the hostile requests ran; the last: %v", f, canaryCalls.Load(), canaryLast.Load())
	}
}

// TestSlowClients: connections that trickle their headers or body are
// closed by the server's read timeouts, while other clients are served.
func TestSlowClients(t *testing.T) {
	m := startHardened(t)
	addr := m.Addr()
	c := client{t, "http://" + addr}
	pub := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "publisher", "name": "Navi"})
	pubKey := pub["api_key"].(string)
	decision := "/v1/ads?lat=35.6909&lng=139.7003&q=x"

	// Fifty connections that send half a request line and headers, and
	// one that sends its headers and a tenth of its body.
	var conns []net.Conn
	for range 50 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET "+decision+" HTTP/1.1\r\nHost: navad.test\r\nAuthori"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	slowBody, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slowBody.Close()
	if _, err := io.WriteString(slowBody, "POST /v1/ads HTTP/1.1\r\nHost: navad.test\r\nAuthorization: Bearer "+pubKey+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"lat\":"); err != nil {
		t.Fatal(err)
	}
	conns = append(conns, slowBody)

	// Everyone else is served meanwhile.
	for range 20 {
		if status, b := c.call("GET", decision, pubKey, nil); status != 200 {
			t.Fatalf("a normal client got %d while slow clients wait: %s", status, b)
		}
	}
	// Each slow connection is answered with a 4xx or closed; none hangs
	// and none is answered with a 5xx.
	for i, conn := range conns {
		_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		b, err := io.ReadAll(conn)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("slow connection %d is still open after a minute", i)
		}
		if len(b) > 0 {
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
			if err == nil && resp.StatusCode >= 500 {
				t.Fatalf("slow connection %d answered %d", i, resp.StatusCode)
			}
		}
	}
	if status, _ := c.call("GET", decision, pubKey, nil); status != 200 {
		t.Fatalf("after the slow clients: %d", status)
	}
}

// chunked encodes body in the chunked transfer coding, 4 KB a chunk.
func chunked(body string) []byte {
	var b bytes.Buffer
	for len(body) > 0 {
		n := min(len(body), 4096)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

// manyHeaders returns hdr with n more small headers.
func manyHeaders(hdr []string, n int) []string {
	for i := range n {
		hdr = append(hdr, fmt.Sprintf("X-H%d", i), "v")
	}
	return hdr
}
