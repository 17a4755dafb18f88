package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeEvents stands in for the tracking branch's events store: it records
// when it was flushed and what the server looked like then.
type fakeEvents struct {
	mu          sync.Mutex
	flushes     int
	inFlight    int   // requests still running at the flush
	storeErr    error // the store's Ping at the flush: nil while open
	hadDeadline bool
}

func (f *fakeEvents) flusher(m *Main) Flusher {
	return FlusherFunc(func(ctx context.Context) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.flushes++
		f.inFlight = m.Metrics.InFlight()
		f.storeErr = m.Store.Ping(ctx)
		_, f.hadDeadline = ctx.Deadline()
		return nil
	})
}

// TestCloseDrainsInFlightAndFlushes: a request in flight when Close
// begins completes with 2xx; new connections are refused; pending events
// are flushed once, after the last request and before the store closes.
func TestCloseDrainsInFlightAndFlushes(t *testing.T) {
	m := startMain(t, t.TempDir())
	base := "http://" + m.Addr()
	c := client{t, base}
	adv := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "advertiser", "name": "Brewer"})
	advKey := adv["api_key"].(string)
	events := &fakeEvents{}
	m.Flushers = append(m.Flushers, events.flusher(m))

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
	events.mu.Lock()
	defer events.mu.Unlock()
	if events.flushes != 1 || events.inFlight != 0 || events.storeErr != nil || !events.hadDeadline {
		t.Fatalf("flush: %+v; want once, after the last request, before the store closed, with a deadline", events)
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
	if err == nil || !strings.Contains(err.Error(), "shutdown") {
		t.Fatalf("Close: %v; want the shutdown timeout reported", err)
	}
	if n := m.Metrics.InFlight(); n != 0 {
		t.Fatalf("Close returned with %d requests still being handled", n)
	}
}

// TestCloseReportsFlushErrors: a flusher that fails makes Close fail, and
// the other flushers still run.
func TestCloseReportsFlushErrors(t *testing.T) {
	m := startMain(t, t.TempDir())
	ran := false
	m.Flushers = []Flusher{
		FlusherFunc(func(context.Context) error { return fmt.Errorf("events store unreachable") }),
		FlusherFunc(func(context.Context) error { ran = true; return nil }),
	}
	err := m.Close()
	if err == nil || !strings.Contains(err.Error(), "events store unreachable") || !ran {
		t.Fatalf("Close: %v, second flusher ran: %v", err, ran)
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
