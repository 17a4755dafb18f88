package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCloseDrainsInFlight: a request in flight when Close begins
// completes with 2xx; new connections are refused; what the request wrote
// is durable. (That the served counts tracking holds are flushed at Close
// is TestTrackingAcrossRestart's.)
func TestCloseDrainsInFlight(t *testing.T) {
	m := startMain(t, t.TempDir())
	base := "http://" + m.Addr()
	c := client{t, base}
	adv := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "advertiser", "name": "Brewer"})
	advKey := adv["api_key"].(string)

	// A store upload whose body arrives in two parts: the handler is
	// running, reading, when Close begins.
	pr, pw := io.Pipe()
	req, err := http.NewRequest("PUT", base+"/v1/stores", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+advKey)
	req.Header.Set("Content-Type", "application/json")
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{status: resp.StatusCode, body: string(b)}
	}()
	if _, err := io.WriteString(pw, `[{"id":"s1","name":"一号店","lat":35.6905,"lng":139.7005,"products":["beer"]},`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the upload to be in flight", func() bool { return m.Metrics.InFlight() == 1 })

	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	waitFor(t, "the listener to close", func() bool {
		conn, err := net.Dial("tcp", m.Addr())
		if err == nil {
			conn.Close()
			return false
		}
		return true
	})
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a request in flight", err)
	default:
	}

	// The rest of the body: the request completes normally.
	if _, err := io.WriteString(pw, `{"id":"s2","name":"二号店","lat":35.6930,"lng":139.7010,"products":["beer"]}]`); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	res := <-done
	if res.err != nil || res.status != 200 || !strings.Contains(res.body, `"stores":2`) {
		t.Fatalf("in-flight upload: status %d, err %v: %s", res.status, res.err, res.body)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}

	// What the drained request wrote is durable.
	m2 := startMain(t, m.Config.DataDir)
	c2 := client{t, "http://" + m2.Addr()}
	got := c2.must(200, "GET", "/v1/stores", advKey, nil)
	if n := len(got["stores"].([]any)); n != 2 {
		t.Fatalf("after restart: %d stores, want 2", n)
	}
}

// TestCloseEndsRequestsPastTheTimeout: a request still running when the
// shutdown timeout passes (an upload whose body stalls) has its connection
// closed, and Close returns only once its handler has, so that nothing it
// touches (tracking, caps, the store) is closed under it; Close reports the
// timeout. Before, Close went on to close everything while the handler ran.
func TestCloseEndsRequestsPastTheTimeout(t *testing.T) {
	m := startMain(t, t.TempDir(), "--shutdown-timeout", "200ms")
	base := "http://" + m.Addr()
	c := client{t, base}
	adv := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "advertiser", "name": "Brewer"})
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest("PUT", base+"/v1/stores", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adv["api_key"].(string))
	req.Header.Set("Content-Type", "application/json")
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := io.WriteString(pw, `[{"id":"s1","name":"一号店","lat":35.6905,"lng":139.7005,"products":["beer"]},`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the upload to be in flight", func() bool { return m.Metrics.InFlight() == 1 })
	err = m.Close()
	if err == nil || !strings.Contains(err.Error(), "NAVAD_SHUTDOWN_TIMEOUT (200ms)") {
		t.Fatalf("Close: %v; want the shutdown timeout reported", err)
	}
	if n := m.Metrics.InFlight(); n != 0 {
		t.Fatalf("Close returned with %d requests still being handled", n)
	}
}

// waitFor polls cond until it holds; the test's own timeout bounds it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
