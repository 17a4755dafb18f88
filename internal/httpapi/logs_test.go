package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/navad/navad/internal/httpapi"
	"github.com/navad/navad/internal/storage/boltstore"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newLoggedEnv returns an edge whose every log line, debug included, goes
// to the returned buffer as JSON.
func newLoggedEnv(t *testing.T) (*env, *syncBuffer) {
	t.Helper()
	logs := new(syncBuffer)
	store, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return newEnvOpts(t, store, httpapi.Options{}, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))), logs
}

// TestAccessLogHoldsNoFixOrKey: with every request logged (debug), the log
// carries the request ID and route of each, and never a coordinate, a
// search, or an API key, wherever the client put them.
func TestAccessLogHoldsNoFixOrKey(t *testing.T) {
	e, logs := newLoggedEnv(t)
	w := e.world()

	// Fixes and keys everywhere a client might put them.
	const lat, lng = "35.6912345", "139.7034567"
	fix := url.Values{"lat": {lat}, "lng": {lng}, "q": {"居酒屋"}, "acc": {"12.345"}, "uid": {"user-secret-uid"}}
	want := map[string]string{} // request ID → the route its access line must name
	call := func(status int, route, method, path, key string, body any) response {
		t.Helper()
		r := e.must(status, e.do(method, path, key, body))
		want[r.Header.Get("X-Request-Id")] = route
		return r
	}
	call(200, "/v1/ads", "GET", "/v1/ads?"+fix.Encode(), w.publisherKey, nil)
	call(200, "/v1/ads", "POST", "/v1/ads", w.publisherKey, `{"lat":`+lat+`,"lng":`+lng+`,"q":"居酒屋"}`)
	call(400, "/v1/ads", "GET", "/v1/ads?lat=91.7654321&lng="+lng+"&q=x", w.publisherKey, nil)
	call(401, "/v1/ads", "GET", "/v1/ads?"+fix.Encode(), "nvd_guessed_key_0123456789", nil)
	call(404, "unmatched", "GET", "/v1/nowhere?api_key="+w.advBKey+"&lat="+lat, w.advBKey, nil)
	call(400, "/v1/stores", "PUT", "/v1/stores", w.advBKey, `[{"id":"s","name":"s","lat":`+lat+`,"lng":"`+lng+`","products":["p"]}]`)
	rotated := call(201, "/v1/accounts/:id/keys", "POST", "/v1/accounts/"+w.advB+"/keys", w.advBKey, nil).json(t)["api_key"].(string)

	log := logs.String()
	for _, secret := range []string{
		lat, lng, "35.69", "139.70", "91.7654321", "12.345", "user-secret-uid", "居酒屋",
		adminKey, w.publisherKey, w.advBKey, w.agencyKey, rotated, "nvd_guessed_key_0123456789", "Bearer",
	} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
	// Every line is JSON; access lines carry the request ID of the answer
	// and the route pattern.
	routes := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON log line: %s", sc.Text())
		}
		if line["msg"] == "request" {
			rid, _ := line["request_id"].(string)
			routes[rid], _ = line["route"].(string)
		}
	}
	for id, route := range want {
		if routes[id] != route {
			t.Errorf("request %s: logged route %q, want %q", id, routes[id], route)
		}
	}
}

// TestClientGoneIsNoServerError: a request whose client has gone (its
// context cancelled before the store was reached) is answered 499, as
// proxies log a request the client closed, and logged at info, not as an
// internal error: a mobile client dropping its connection is not a fault
// of the server, and a 500 would set off the alert on any 5xx.
func TestClientGoneIsNoServerError(t *testing.T) {
	e, logs := newLoggedEnv(t)
	w := e.world()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, path := range []string{"/v1/campaigns", "/v1/stores"} {
		req := httptest.NewRequest("GET", path, nil).WithContext(ctx)
		req.Header.Set("Authorization", "Bearer "+w.advBKey)
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		if rec.Code != 499 {
			t.Errorf("GET %s, client gone: %d %s, want 499", path, rec.Code, rec.Body)
		}
	}
	if log := logs.String(); strings.Contains(log, `"level":"ERROR"`) || !strings.Contains(log, "client closed the request") {
		t.Errorf("the log has an error, or does not say the client left:\n%s", log)
	}
	// A live request still gets its answer.
	e.must(200, e.do("GET", "/v1/campaigns", w.advBKey, nil))
}
