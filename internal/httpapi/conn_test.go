package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/internal/httpapi"
)

// countingListener counts the writes made on the connections it accepts:
// the write system calls of a server on top of it.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// serveTCP serves h on a loopback port through a real net/http server, as
// cmd/navad does when held is true, and returns its URL and the count of
// its writes.
func serveTCP(t testing.TB, h http.Handler, held bool) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	writes := new(atomic.Int64)
	var ln net.Listener = countingListener{l, writes}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	if held {
		ln = httpapi.Listener(ln)
		srv.ConnContext = httpapi.ConnContext
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return "http://" + l.Addr().String(), writes
}

// TestDecisionLeavesInOneWrite checks that a decision larger than
// net/http's 4 KB connection buffer leaves in one write, and that the
// connection then serves its next requests as usual. Served without the
// listener, the same answer takes two writes: the test can tell.
func TestDecisionLeavesInOneWrite(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	long := beerCampaign("")
	long["name"] = "long"
	long["creative"] = map[string]any{"title": "乾杯", "text": strings.Repeat("ビール", 333), "landing_url": "https://example.com/beer"}
	e.must(201, e.do("POST", "/v1/campaigns", w.advBKey, long))
	path := adsPath(shinjuku("居酒屋"))

	for _, held := range []bool{true, false} {
		base, writes := serveTCP(t, e.handler, held)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		t.Cleanup(client.CloseIdleConnections)
		get := func(path, key string) (*http.Response, []byte) {
			t.Helper()
			req, err := http.NewRequest("GET", base+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return resp, body
		}
		// Twice on one kept-alive connection, then a small answer after.
		for i := range 2 {
			writes.Store(0)
			resp, body := get(path, w.publisherKey)
			var got struct {
				Ads []struct {
					CampaignID string `json:"campaign_id"`
				} `json:"ads"`
			}
			if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || len(got.Ads) != 3 {
				t.Fatalf("held %v, request %d: status %d, body %.300s", held, i, resp.StatusCode, body)
			}
			// One Date header, of now (httpDate's, once a second).
			if dates := resp.Header.Values("Date"); len(dates) != 1 {
				t.Fatalf("held %v: Date headers %q, want one", held, dates)
			} else if d, err := http.ParseTime(dates[0]); err != nil || time.Since(d).Abs() > 5*time.Second {
				t.Fatalf("held %v: Date %q is not now (%v)", held, dates[0], err)
			}
			if resp.ContentLength != int64(len(body)) || len(body) <= 4<<10 {
				t.Fatalf("held %v: Content-Length %d, body of %d bytes, want over 4 KB", held, resp.ContentLength, len(body))
			}
			n := writes.Load()
			if held && n != 1 {
				t.Errorf("held: the answer left in %d writes, want 1", n)
			}
			if !held && n < 2 {
				t.Errorf("not held: the answer left in %d writes; the test cannot tell the difference", n)
			}
		}
		writes.Store(0)
		if resp, body := get("/healthz", ""); resp.StatusCode != 200 || !strings.Contains(string(body), "ok") {
			t.Fatalf("held %v: healthz after decisions: %d %s", held, resp.StatusCode, body)
		}
		if n := writes.Load(); n != 1 {
			t.Errorf("held %v: healthz in %d writes", held, n)
		}
	}
}

// BenchmarkDecisionOverTCP measures a tracked three-ad decision of about
// 4.5 KB through a real net/http server on loopback and an HTTP client on
// eight kept-alive connections, both in this process: the answer's writes
// held and sent in one (as cmd/navad serves) or not, read by a client with
// net/http's 4 KB read buffer or a 16 KB one. ns/op is the wall time a
// request with both cores busy, client and server.
func BenchmarkDecisionOverTCP(b *testing.B) {
	te := newTrackedEnv(b)
	pubKey := benchWorldOf(b, te.handler, 3, strings.Repeat("ビール", 100))
	path := adsPath(shinjuku("居酒屋"))
	for _, held := range []bool{false, true} {
		for _, buf := range []int{4 << 10, 16 << 10} {
			name := map[bool]string{false: "written", true: "held"}[held] + "/read-buffer-" + strconv.Itoa(buf>>10) + "KB"
			b.Run(name, func(b *testing.B) {
				base, writes := serveTCP(b, te.handler, held)
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, ReadBufferSize: buf}}
				defer client.CloseIdleConnections()
				b.SetParallelism(4) // 8 clients on 2 cores
				b.ResetTimer()
				var flushed atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req, _ := http.NewRequest("GET", base+path, nil)
						req.Header.Set("Authorization", "Bearer "+pubKey)
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						n, _ := io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 || n <= 4<<10 {
							b.Errorf("status %d, %d bytes", resp.StatusCode, n)
							return
						}
						if flushed.Add(1)%1024 == 0 {
							_ = te.tracking.Flush(context.Background()) // as the flush loop does every second
						}
					}
				})
				b.ReportMetric(float64(writes.Load())/float64(b.N), "writes/op")
			})
		}
	}
}
