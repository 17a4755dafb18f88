package driver

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/loadtest/baseline"
	"github.com/navad/navad/loadtest/dataset"
)

func TestEveningZone(t *testing.T) {
	tests := []struct {
		give time.Time
		hour int
		want string
	}{
		{time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC), 19, "Etc/GMT-9"},                     // 19:30 in Tokyo's offset
		{time.Date(2026, 11, 25, 19, 5, 0, 0, time.UTC), 19, "Etc/GMT"},                        // already evening in UTC
		{time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC), 19, "Etc/GMT+2"},                      // two hours behind
		{time.Date(2026, 11, 25, 12, 0, 0, 0, time.FixedZone("JST", 9*3600)), 20, "Etc/GMT+7"}, // 03:00 UTC: seven hours behind, not seventeen ahead
	}
	for _, tt := range tests {
		got := EveningZone(tt.give, tt.hour)
		if got != tt.want {
			t.Errorf("EveningZone(%v, %d) = %q, want %q", tt.give, tt.hour, got, tt.want)
		}
		loc, err := time.LoadLocation(got)
		if err != nil {
			t.Fatalf("%s is not a zone: %v", got, err)
		}
		if h := tt.give.In(loc).Hour(); h != tt.hour {
			t.Errorf("in %s it is %d o'clock, want %d", got, h, tt.hour)
		}
	}
}

func TestRunAgainstBaseline(t *testing.T) {
	srv := httptest.NewServer(baseline.Handler())
	defer srv.Close()
	reqs := Requests{
		Searches: []dataset.Request{{Lat: 35.69, Lng: 139.70, Query: "居酒屋", Mode: "walk"}, {Lat: 34.70, Lng: 135.50, Query: "駅", Mode: "car"}},
		Keys:     []string{"k"},
	}
	tests := []struct {
		name    string
		give    Attack
		wantMin uint64
		wantMax uint64
	}{
		{"fixed rate", Attack{Rate: 200, Duration: 500 * time.Millisecond, Connections: 2}, 80, 110},
		{"flat out", Attack{Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, Connections: 4}, 50, 1 << 30},
		{"flat out, 16 KB read buffer", Attack{Duration: 300 * time.Millisecond, Connections: 4, ReadBuffer: 16 << 10}, 50, 1 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), "baseline", []string{srv.URL}, reqs, tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK < tt.wantMin || res.OK > tt.wantMax || res.OK != res.Requests || res.Codes[200] != res.OK {
				t.Fatalf("%d of %d ok (codes %v, first error %q), want %d..%d", res.OK, res.Requests, res.Codes, res.FirstError, tt.wantMin, tt.wantMax)
			}
			if res.Latency.Count != res.OK || res.Latency.P50 <= 0 || res.Latency.P999 < res.Latency.P50 || res.Throughput <= 0 {
				t.Fatalf("latency %v, throughput %v", res.Latency, res.Throughput)
			}
		})
	}
	if _, err := Run(context.Background(), "x", nil, reqs, tests[0].give); err == nil {
		t.Error("no URL: want an error")
	}
	if _, err := Run(context.Background(), "x", []string{srv.URL}, reqs, Attack{}); err == nil {
		t.Error("zero attack: want an error")
	}
	if _, err := Run(context.Background(), "x", []string{srv.URL}, reqs, Attack{Duration: time.Second, Connections: 1, ReadBuffer: -1}); err == nil {
		t.Error("negative read buffer: want an error")
	}
}

func TestProcessInfo(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	if err != nil || m.RSS == 0 || m.Peak < m.RSS || m.Anon == 0 || m.Anon > m.RSS {
		t.Fatalf("ReadMemory = %+v, %v", m, err)
	}
	dir := t.TempDir()
	p := &Process{LogPath: filepath.Join(dir, "navad.log")}
	log := `{"msg":"starting"}
not json
{"level":"INFO","msg":"index loaded","campaigns":3,"took":1500000000}
`
	if err := os.WriteFile(p.LogPath, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	np := &NavadProcess{Process: p}
	if got := np.IndexLoadTime(); got != 1500*time.Millisecond {
		t.Errorf("IndexLoadTime = %v, want 1.5s", got)
	}
	if got := p.LogField("index loaded", "campaigns"); got != "3" {
		t.Errorf("LogField = %q, want 3", got)
	}
	if got := p.LogField("missing", "took"); got != "" {
		t.Errorf("LogField of a missing line = %q", got)
	}
}

func TestStartRedis(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		give       RedisOptions
		wantAOF    string
		wantFsync  string
		wantLogAt  string
		wantDirSet bool
	}{
		{"no persistence", RedisOptions{}, "no", "", "redis.log", false},
		{"append-only file", RedisOptions{Name: "redis-aof", Dir: filepath.Join(dir, "aof")}, "yes", "everysec", "redis-aof.log", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			logDir := t.TempDir()
			p, addr, err := StartRedisWith(ctx, logDir, tt.give)
			if err != nil {
				t.Fatal(err)
			}
			stopped := false
			defer func() {
				if !stopped {
					_ = p.Stop()
				}
			}()
			if addr == "" || p.Ready <= 0 {
				t.Errorf("addr %q, ready %v", addr, p.Ready)
			}
			if cpu, err := p.CPUTime(); err != nil || cpu < 0 {
				t.Errorf("CPUTime = %v, %v", cpu, err)
			}
			if p.LogPath != filepath.Join(logDir, tt.wantLogAt) {
				t.Errorf("log at %s, want %s", p.LogPath, tt.wantLogAt)
			}
			c := redis.NewClient(&redis.Options{Addr: addr})
			defer c.Close()
			cfg, err := c.ConfigGet(ctx, "*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if cfg["appendonly"] != tt.wantAOF || (tt.wantFsync != "" && cfg["appendfsync"] != tt.wantFsync) || cfg["maxmemory-policy"] != "noeviction" {
				t.Errorf("appendonly %q, appendfsync %q, maxmemory-policy %q", cfg["appendonly"], cfg["appendfsync"], cfg["maxmemory-policy"])
			}
			if tt.wantDirSet && cfg["dir"] != tt.give.Dir {
				t.Errorf("dir %q, want %q", cfg["dir"], tt.give.Dir)
			}
			stopped = true
			if err := p.Stop(); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
	}
}

// TestRunUIDSuffix checks that a run's user-key suffix reaches the server
// on every search that has a user key, and on no other.
// TestRunUIDSuffix: with a UIDSuffix every request of a user carries it,
// and each pass over the searches has users of its own: a window longer
// than the searches replayed the round's own users, whose frequency
// windows its first pass had opened. A search without a user stays
// without one.
func TestRunUIDSuffix(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Query().Get("uid")]++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ads":[]}`))
	}))
	defer srv.Close()
	reqs := Requests{
		Searches: []dataset.Request{{Lat: 35.69, Lng: 139.70, Query: "居酒屋", Mode: "walk", UID: "u1"}, {Lat: 34.70, Lng: 135.50, Query: "駅", Mode: "car"}},
		Keys:     []string{"k"},
	}
	if _, err := Run(context.Background(), "suffix", []string{srv.URL}, reqs, Attack{Duration: 200 * time.Millisecond, Connections: 2, UIDSuffix: "-r2"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["u1-r2"] != 1 || seen["u1-r2-p1"] != 1 || seen[""] < 2 {
		t.Fatalf("user keys seen: %v, want u1-r2, u1-r2-p1, … once each, and none", seen)
	}
	for uid, n := range seen {
		if uid != "" && (n != 1 || !strings.HasPrefix(uid, "u1-r2")) {
			t.Fatalf("user %q seen %d times in one round; want each pass's user once", uid, n)
		}
	}
}

// TestRunTimesFromTheSchedule: at a fixed rate a server slower than the
// rate holds the driver's one worker, so requests go out late; from the
// send they look fast, from the schedule they are as late as they were.
func TestRunTimesFromTheSchedule(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		_, _ = w.Write([]byte(`{"ads":[]}`))
	}))
	defer srv.Close()
	reqs := Requests{Searches: []dataset.Request{{Lat: 35.69, Lng: 139.70, Query: "駅", Mode: "walk"}}, Keys: []string{"k"}}
	res, err := Run(context.Background(), "late", []string{srv.URL}, reqs,
		Attack{Rate: 400, Duration: 500 * time.Millisecond, Connections: 1, MaxWorkers: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := res.FromSchedule
	if s == nil || s.Count != res.OK {
		t.Fatalf("no latency from the schedule at a fixed rate: %+v", s)
	}
	// Due 400 a second, sent one at a time, each 10 ms: some 50 go out
	// in the half second, the last of them due 0.12 s in and sent about
	// 0.38 s late.
	if res.Latency.P99 > 100*time.Millisecond || s.P99 < 5*res.Latency.P99 || s.Max < 250*time.Millisecond {
		t.Fatalf("from the send p99 %v; from the schedule p99 %v, max %v: the lateness is not in it", res.Latency.P99, s.P99, s.Max)
	}
	flat, err := Run(context.Background(), "flat", []string{srv.URL}, reqs, Attack{Duration: 50 * time.Millisecond, Connections: 1})
	if err != nil {
		t.Fatal(err)
	}
	if flat.FromSchedule != nil {
		t.Fatalf("flat out has no schedule, but: %+v", flat.FromSchedule)
	}
}

func TestHasAds(t *testing.T) {
	tests := []struct {
		body string
		want bool
	}{
		{`{"request_id":"r1","ads":[{"ad_id":"r1.1"`, true},
		{`{"request_id":"r1","ads":[ {"ad_id":"r1.1"`, true},
		{`{"request_id":"r1","ads":[]}`, false},
		{`{"request_id":"r1","ads":[ ]}`, false},
		{`{"request_id":"r1","ads":[`, false},
		{`{"error":{"code":"invalid","message":"ads"}}`, false},
		{``, false},
	}
	for _, tt := range tests {
		if got := hasAds([]byte(tt.body)); got != tt.want {
			t.Errorf("hasAds(%s) = %v, want %v", tt.body, got, tt.want)
		}
	}
}

// TestRunCountsAnswersWithAds: answers far longer than the kept body are
// read whole (the connection is kept alive and every request succeeds),
// answers with ads are told from empty ones by their first bytes, and an
// error keeps the start of its message.
func TestRunCountsAnswersWithAds(t *testing.T) {
	ad := `{"ad_id":"r.1","campaign_id":"c","text":"` + strings.Repeat("x", 1500) + `"}`
	full := `{"request_id":"r","ads":[` + ad + "," + ad + "," + ad + `]}`
	var mu sync.Mutex
	conns := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("q") {
		case "居酒屋":
			_, _ = io.WriteString(w, full)
		case "駅":
			_, _ = io.WriteString(w, `{"request_id":"r","ads":[]}`)
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"code":"invalid","message":"`+strings.Repeat("q is bad; ", 100)+`"}}`)
		}
	}))
	defer srv.Close()
	keys := []string{"k"}
	attack := Attack{Duration: 300 * time.Millisecond, Connections: 2}
	both := Requests{Keys: keys, Searches: []dataset.Request{{Lat: 35.69, Lng: 139.70, Query: "居酒屋", Mode: "walk"}, {Lat: 34.70, Lng: 135.50, Query: "駅", Mode: "car"}}}
	res, err := Run(context.Background(), "ads", []string{srv.URL}, both, attack)
	if err != nil {
		t.Fatal(err)
	}
	// The two searches alternate, but the two workers' results may come
	// back in either order.
	if res.OK == 0 || res.OK != res.Requests || res.WithAds < res.OK/2-2 || res.WithAds > res.OK/2+2 {
		t.Fatalf("%d of %d ok, %d with ads (first error %q), want all ok and half with ads", res.OK, res.Requests, res.WithAds, res.FirstError)
	}
	mu.Lock()
	// An answer left unread would cost its connection: a new one nearly
	// every request. A worker may still dial a spare while its last
	// connection goes back to the pool.
	if len(conns) > 4 {
		t.Errorf("%d connections for 2 workers and %d requests: answers not read whole", len(conns), res.Requests)
	}
	mu.Unlock()
	bad := Requests{Keys: keys, Searches: []dataset.Request{{Lat: 35.69, Lng: 139.70, Query: "?", Mode: "walk"}}}
	res, err = Run(context.Background(), "bad", []string{srv.URL}, bad, attack)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 0 || res.Codes[400] == 0 || !strings.Contains(res.FirstError, `: {"error":{"code":"invalid","message":"q is bad;`) {
		t.Fatalf("%d ok, codes %v, first error %q", res.OK, res.Codes, res.FirstError)
	}
}

// TestTail: slow requests are counted by the window they were sent in,
// fast ones not at all, and the worst second is the span of consecutive
// windows holding the most.
func TestTail(t *testing.T) {
	tl := Tail{Over: 10 * time.Millisecond, Window: 250 * time.Millisecond}
	if s := tl.String(); s != "none over 10ms" {
		t.Errorf("empty tail: %q", s)
	}
	add := func(at time.Duration, n int, lat time.Duration) {
		for range n {
			tl.add(at, lat)
		}
	}
	add(-time.Millisecond, 1, 20*time.Millisecond) // sent before the window began
	add(100*time.Millisecond, 50, 5*time.Millisecond)
	add(100*time.Millisecond, 2, 10*time.Millisecond) // not over
	add(300*time.Millisecond, 3, 11*time.Millisecond)
	add(5*time.Second, 4, time.Second)
	add(5300*time.Millisecond, 5, 30*time.Millisecond)
	add(6100*time.Millisecond, 6, 30*time.Millisecond)
	want := make([]uint32, 25)
	want[0], want[1], want[20], want[21], want[24] = 1, 3, 4, 5, 6
	if !slices.Equal(tl.Counts, want) {
		t.Fatalf("counts %v, want %v", tl.Counts, want)
	}
	if n := tl.Total(); n != 19 {
		t.Errorf("total %d, want 19", n)
	}
	// [5.0 s, 6.0 s) holds 9; [5.25 s, 6.25 s) holds 11.
	if n, at := tl.Worst(time.Second); n != 11 || at != 5250*time.Millisecond {
		t.Errorf("worst second: %d from %v, want 11 from 5.25s", n, at)
	}
	if n, at := tl.Worst(0); n != 6 || at != 6*time.Second {
		t.Errorf("worst window: %d from %v, want 6 from 6s", n, at)
	}
	if s := tl.String(); s != "19 over 10ms in 5 windows of 250ms; 11 (58%) in the worst second, from +5.25s" {
		t.Errorf("summary %q", s)
	}
}

// TestRunRecordsTheTail: a run counts in its tail every answer slower
// than 10 ms.
func TestRunRecordsTheTail(t *testing.T) {
	var slow atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("q") == "遅い" {
			time.Sleep(15 * time.Millisecond)
			slow.Add(1)
		}
		_, _ = io.WriteString(w, `{"request_id":"r","ads":[]}`)
	}))
	defer srv.Close()
	reqs := Requests{Keys: []string{"k"}, Searches: []dataset.Request{
		{Lat: 35.69, Lng: 139.70, Query: "遅い", Mode: "walk"}, {Lat: 35.69, Lng: 139.70, Query: "駅", Mode: "walk"}}}
	res, err := Run(context.Background(), "tail", []string{srv.URL}, reqs, Attack{Duration: 300 * time.Millisecond, Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Every slow answer is in the tail; a fast one may be too, on a
	// loaded machine, but never more than were answered.
	if n := res.Tail.Total(); n == 0 || int64(n) < slow.Load()-2 || n > res.OK {
		t.Fatalf("tail of %d for %d slow answers of %d", n, slow.Load(), res.OK)
	}
	// A run without a slow answer reports an empty tail, not none.
	fast := Requests{Keys: []string{"k"}, Searches: reqs.Searches[1:]}
	res, err = Run(context.Background(), "fast", []string{srv.URL}, fast, Attack{Duration: 100 * time.Millisecond, Connections: 1})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(res.Tail); res.Tail.Total() == 0 && !strings.Contains(string(b), `"counts":[]`) {
		t.Errorf("empty tail as %s", b)
	}
}

// TestRunMetersTheMeasuredWindow: an attack's Meter brackets the measured
// window and nothing else: every request the server sees between its start
// and its stop is one of the result's, the warm-up's come before it, and
// the window runs on the warm-up's connections, all closed when Run returns.
func TestRunMetersTheMeasuredWindow(t *testing.T) {
	var served, opened, open atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = io.WriteString(w, `{"request_id":"r","ads":[]}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	defer srv.Close()
	reqs := Requests{Keys: []string{"k"}, Searches: []dataset.Request{{Lat: 35.69, Lng: 139.70, Query: "駅", Mode: "walk"}}}
	tests := []struct {
		name string
		give Attack
	}{
		{"flat out", Attack{Duration: 200 * time.Millisecond, Warmup: 200 * time.Millisecond, Connections: 4}},
		{"fixed rate", Attack{Rate: 400, Duration: 200 * time.Millisecond, Warmup: 200 * time.Millisecond, Connections: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			served.Store(0)
			var warm, measured, dialed int64
			a := tt.give
			a.Meter = func() func() {
				warm = served.Load()
				opened0 := opened.Load()
				return func() { measured, dialed = served.Load()-warm, opened.Load()-opened0 }
			}
			res, err := Run(context.Background(), "meter", []string{srv.URL}, reqs, a)
			if err != nil {
				t.Fatal(err)
			}
			if warm == 0 || measured != int64(res.Requests) || res.OK != res.Requests {
				t.Errorf("%d requests before the window, %d in it, want some and the result's %d", warm, measured, res.Requests)
			}
			// A worker may dial a spare while its last connection goes
			// back to the pool; a new client would dial all four. At a
			// fixed rate the pacer may add workers, and connections with
			// them, whenever answers come slowly (CI's race pass beside
			// other packages), so only flat out can tell the two apart.
			if a.Rate == 0 && dialed > 1 {
				t.Errorf("%d connections dialed in the measured window, want the warm-up's", dialed)
			}
			deadline := time.Now().Add(2 * time.Second)
			for open.Load() != 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := open.Load(); n != 0 {
				t.Errorf("%d connections left open after the run", n)
			}
		})
	}
}

// TestCPUTimeCountsChildren: the CPU of a child the process waited for
// counts in its CPU time: Redis rewrites its append-only file in a fork,
// and a rewrite during a round went uncounted.
func TestCPUTimeCountsChildren(t *testing.T) {
	p, err := Start(context.Background(), "forker", "", t.TempDir(), "/bin/sh",
		[]string{"-c", "( i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done ); sleep 30"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	// The parent only waits: whatever CPU time it shows is its child's.
	deadline := time.Now().Add(20 * time.Second)
	for {
		cpu, err := p.CPUTime()
		if err != nil {
			t.Fatal(err)
		}
		if cpu >= 200*time.Millisecond {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time %v after the child's loop: its CPU is not counted", cpu)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
