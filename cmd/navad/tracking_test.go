package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/navad/navad/internal/redistest"
)

// trackedAd is what the tracking tests read of an ad: its tracking URLs'
// paths (under the default public URL, not the test server's) and where
// its store is.
type trackedAd struct {
	CampaignID                         string
	Impression, Click, Navigate, Visit string
	StoreLat, StoreLng                 float64
}

// decide asks for izakaya ads at lat, lng and returns them.
func decide(c client, pubKey string, lat, lng float64) []trackedAd {
	c.t.Helper()
	q := url.Values{"lat": {strconv.FormatFloat(lat, 'f', -1, 64)}, "lng": {strconv.FormatFloat(lng, 'f', -1, 64)}, "q": {"居酒屋"}}
	body := c.must(200, "GET", "/v1/ads?"+q.Encode(), pubKey, nil)
	var out []trackedAd
	for _, a := range body["ads"].([]any) {
		m := a.(map[string]any)
		st := m["store"].(map[string]any)
		ad := trackedAd{CampaignID: m["campaign_id"].(string), StoreLat: st["lat"].(float64), StoreLng: st["lng"].(float64)}
		for _, p := range []struct {
			dst   *string
			field string
		}{{&ad.Impression, "impression_url"}, {&ad.Click, "click_url"}, {&ad.Navigate, "navigate_url"}, {&ad.Visit, "visit_url"}} {
			raw, _ := m[p.field].(string)
			u, err := url.Parse(raw)
			// Under the listen address, or under the built-in default
			// when the server took a port the kernel picked (:0).
			if err != nil || !strings.HasPrefix(raw, c.base+"/v1/") && !strings.HasPrefix(raw, "http://localhost:8080/v1/") {
				c.t.Fatalf("%s %q is not under the public URL", p.field, raw)
			}
			*p.dst = u.Path
		}
		out = append(out, ad)
	}
	return out
}

// fire calls each tracking URL of ad once, the visit with the store's own
// position, and fails unless each is acknowledged.
func fire(c client, ad trackedAd) {
	c.t.Helper()
	c.must(204, "GET", ad.Impression, "", nil)
	if status := statusNoRedirect(c.t, c.base+ad.Click); status != 302 {
		c.t.Fatalf("click: status %d, want 302", status)
	}
	c.must(204, "GET", ad.Navigate, "", nil)
	c.must(204, "POST", ad.Visit, "", map[string]any{"lat": ad.StoreLat, "lng": ad.StoreLng + 0.0002, "acc": 12})
}

type totals struct {
	Served, Impressions, Clicks, Navigations, Visits float64
}

// reportTotals returns the admin's report totals from yesterday to
// tomorrow (the business day may turn during a test).
func reportTotals(c client) totals {
	c.t.Helper()
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	now := time.Now().In(tokyo)
	body := c.must(200, "GET", "/v1/reports?from="+now.AddDate(0, 0, -1).Format(time.DateOnly)+"&to="+now.AddDate(0, 0, 1).Format(time.DateOnly), adminKey, nil)
	b, _ := json.Marshal(body["totals"])
	var tot totals
	if err := json.Unmarshal(b, &tot); err != nil {
		c.t.Fatal(err)
	}
	return tot
}

// TestTrackingAcrossRestart: events and served counts acknowledged before a
// graceful restart are all there after it; the same tokens still verify
// (the generated secret is kept) and still count only once.
func TestTrackingAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir)
	c := client{t, "http://" + m.Addr()}
	pubKey, _ := seed(c)
	var ads []trackedAd
	for range 3 {
		ads = append(ads, decide(c, pubKey, 35.6909, 139.7003)...)
	}
	for _, ad := range ads[:2] {
		fire(c, ad)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := startMain(t, dir)
	c2 := client{t, "http://" + m2.Addr()}
	want := totals{Served: 3, Impressions: 2, Clicks: 2, Navigations: 2, Visits: 2}
	if got := reportTotals(c2); got != want {
		t.Fatalf("after restart %+v, want %+v", got, want)
	}
	for _, ad := range ads { // repeats of counted tokens and a new one
		fire(c2, ad)
	}
	want = totals{Served: 3, Impressions: 3, Clicks: 3, Navigations: 3, Visits: 3}
	if got := reportTotals(c2); got != want {
		t.Fatalf("after firing again %+v, want %+v", got, want)
	}
}

// TestTrackingSurvivesKill9: an event answered 204 or 302 is on disk, so a
// SIGKILL right after loses none.
func TestTrackingSurvivesKill9(t *testing.T) {
	bin := buildNavad(t)
	dir := t.TempDir()
	addr := freePort(t)
	cmd, _ := startProcess(t, bin, dir, addr)
	c := client{t, "http://" + addr}
	pubKey, _ := seed(c)
	var ads []trackedAd
	for range 4 {
		ads = append(ads, decide(c, pubKey, 35.6909, 139.7003)...)
	}
	for _, ad := range ads {
		fire(c, ad)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	addr2 := freePort(t)
	startProcess(t, bin, dir, addr2)
	c2 := client{t, "http://" + addr2}
	got := reportTotals(c2)
	if got.Impressions != 4 || got.Clicks != 4 || got.Navigations != 4 || got.Visits != 4 {
		t.Fatalf("after kill -9: %+v, want 4 of each event", got)
	}
	// Served counts are flushed every second; a kill may lose the last
	// second's (docs/tracking.md), never invent any.
	if got.Served > 4 {
		t.Fatalf("after kill -9: %v served, at most 4 were", got.Served)
	}
	fire(c2, ads[0])
	if again := reportTotals(c2); again.Impressions != 4 {
		t.Fatalf("a token counted before the kill counted again: %+v", again)
	}
}

// TestNoFixIsEverWritten runs a server with debug logging, sends it
// decisions and visits from distinctive positions (good, refused and
// malformed), reads reports of every kind, shuts it down, and then searches
// every byte it wrote (its data directory and its logs) for those
// positions: as text at several precisions, and as binary numbers. As a
// check that the search can find what is there, the stores' positions,
// which are kept, must be found.
func TestNoFixIsEverWritten(t *testing.T) {
	dir := t.TempDir()
	noFixWritten(t, []string{"--data-dir", dir}, []string{dir}, nil)
}

// TestNoFixIsEverWrittenOnRedis is the same search on Redis: through
// Redis's append-only file, and the replica's spool, which takes the
// visits of a Redis outage.
func TestNoFixIsEverWrittenOnRedis(t *testing.T) {
	srv := redistest.StartDurable(t)
	dir := t.TempDir()
	noFixWritten(t, []string{"--data-dir", dir, "--redis-url", srv.URL()}, []string{dir, srv.Dir()}, srv)
}

// noFixWritten runs the search for a server started with args, searching
// dirs. With srv, the visits are sent while Redis is down (so that they go
// through the spool), and Redis is back before the server stops.
func noFixWritten(t *testing.T, args, dirs []string, srv *redistest.Server) {
	var logs lockedBuffer
	m := NewMain(&logs, &logs)
	if err := m.ParseFlags(append([]string{"--addr", "127.0.0.1:0", "--log-level", "debug"}, args...), env("NAVAD_ADMIN_KEY", adminKey)); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	c := client{t, "http://" + m.Addr()}
	pubKey, campID := seed(c)
	// A campaign with caps, so that decisions with a uid write frequency
	// windows and delivery counts too.
	advID := c.must(200, "GET", "/v1/campaigns/"+campID, adminKey, nil)["advertiser_id"].(string)
	c.must(201, "POST", "/v1/campaigns", adminKey, map[string]any{
		"advertiser_id": advID, "name": "capped beer", "keywords": []map[string]any{{"text": "居酒屋", "match": "broad"}},
		"product_id": "beer", "radius_m": 1000,
		"creative":      map[string]any{"title": "乾杯", "landing_url": "https://example.com/capped"},
		"budget":        map[string]any{"daily_impressions": 1000},
		"frequency_cap": map[string]any{"impressions": 100, "per": "24h"},
	})
	const uid = "uid-8c1f5e2a9b7d4306" // the user key: never written either

	// Decision fixes near Shinjuku station, and arrival fixes by the store
	// "far" (35.6950, 139.7005), each with digits found nowhere else.
	decisions := [][2]float64{{35.6908731, 139.7002917}, {35.6911373, 139.7004461}, {35.6906297, 139.6998713}}
	arrivals := [][2]float64{{35.6950613, 139.7005827}, {35.6949177, 139.7004391}}
	refused := [][2]float64{{35.6987359, 139.7011573}} // 400 m away: 422
	var ads []trackedAd
	for _, f := range decisions {
		ads = append(ads, decide(c, pubKey, f[0], f[1])...)
		// The fix in a POST body and in a bad request's echo.
		c.must(200, "POST", "/v1/ads", pubKey, map[string]any{"lat": f[0], "lng": f[1], "q": "歯医者"})
		if got := c.must(200, "POST", "/v1/ads", pubKey, map[string]any{"lat": f[0], "lng": f[1], "q": "居酒屋", "uid": uid}); len(got["ads"].([]any)) != 2 {
			t.Fatalf("a decision with a uid: %v, want both campaigns' ads", got)
		}
		c.must(400, "GET", fmt.Sprintf("/v1/ads?lat=%v&lng=%v&q=", f[0], f[1]), pubKey, nil)
	}
	if srv != nil {
		srv.Kill()
	}
	for i, f := range arrivals {
		ad := ads[i]
		c.must(204, "POST", ad.Visit, "", map[string]any{"lat": f[0], "lng": f[1], "acc": 9.5})
		c.must(204, "POST", ad.Visit, "", map[string]any{"lat": f[0], "lng": f[1]}) // a repeat
	}
	for _, f := range refused {
		c.must(422, "POST", ads[2].Visit, "", map[string]any{"lat": f[0], "lng": f[1], "acc": 30})
		c.must(400, "POST", ads[2].Visit, "", map[string]any{"lat": f[0], "lng": f[1], "acc": -1})
		c.must(400, "POST", "/v1/v/forged"+ads[2].Visit[6:], "", map[string]any{"lat": f[0], "lng": f[1]})
	}
	if srv != nil {
		if m.Spool.Len() != 2 {
			t.Fatalf("%d visits spooled during the outage, want 2", m.Spool.Len())
		}
		srv.Restart()
		settle(t, m)
	}
	fire(c, ads[2])
	today := time.Now().In(m.Config.Location()).Format(time.DateOnly)
	for _, p := range []string{
		"/v1/reports?group_by=day,hour,campaign,publisher,store,cell&from=" + today,
		"/v1/reports?format=csv&bom=true&group_by=cell,store&from=" + today,
		"/v1/reports/cells.geojson?from=" + today,
	} {
		if status, body := c.call("GET", p, adminKey, nil); status != 200 {
			t.Fatalf("%s: %d %s", p, status, body)
		}
	}
	if got := reportTotals(c); got.Visits != 3 {
		t.Fatalf("%v visits, want 3", got.Visits)
	}
	// What a scraper reads.
	status, metricsText := c.call("GET", "/metrics", "", nil)
	if status != 200 || !bytes.Contains(metricsText, []byte("navad_decisions_total")) {
		t.Fatalf("/metrics: %d %.200s", status, metricsText)
	}
	// What goes to the client and comes back: the tracking tokens' bytes.
	var tokens []byte
	for _, ad := range ads {
		for _, u := range []string{ad.Impression, ad.Click, ad.Navigate, ad.Visit} {
			b, err := base64.RawURLEncoding.DecodeString(u[strings.LastIndexByte(u, '/')+1:])
			if err != nil {
				t.Fatalf("token of %s: %v", u, err)
			}
			tokens = append(tokens, b...)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	written := [][]byte{logs.Bytes(), metricsText, tokens}
	names := []string{"logs", "/metrics", "tracking tokens"}
	if srv != nil {
		// Every key and value Redis holds, read back by type (the
		// append-only file has what was written; this is what is kept).
		names, written = append(names, "redis keyspace"), append(written, redisKeyspace(t, srv))
		srv.Stop() // Redis writes out its append-only file
	}

	// Everything navad wrote.
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			names, written = append(names, path), append(written, b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(written) < 1+len(dirs) || len(logs.Bytes()) == 0 {
		t.Fatalf("nothing to search: files %v, %d bytes of logs", names, len(logs.Bytes()))
	}
	find := func(needle []byte) string {
		for i, w := range written {
			if bytes.Contains(w, needle) {
				return names[i]
			}
		}
		return ""
	}
	if where := find([]byte(uid)); where != "" {
		t.Errorf("the uid found in %s", where)
	}
	for _, group := range []struct {
		what  string
		fixes [][2]float64
	}{{"decision fix", decisions}, {"arrival fix", arrivals}, {"refused arrival fix", refused}} {
		for _, f := range group.fixes {
			for _, v := range f {
				for _, needle := range encodings(v) {
					if where := find(needle); where != "" {
						t.Errorf("%s %v found in %s as %q", group.what, v, where, needle)
					}
				}
			}
		}
	}
	// The control: stores are kept, and the search finds them.
	if find(binary.LittleEndian.AppendUint64(nil, math.Float64bits(35.6950))) == "" {
		t.Fatal("the search cannot even find a store's position, which is stored")
	}
	// The other sources searched, each on something it holds: tokens the
	// store's position in micro-degrees, /metrics the decisions made.
	if !bytes.Contains(tokens, binary.BigEndian.AppendUint32(nil, uint32(int32(35.6950*1e6)))) {
		t.Fatal("the tokens' bytes do not even hold the store's position")
	}
}

// redisKeyspace returns every key srv holds and every value under it, read
// with SCAN and the reads of each type, scores and stream fields as text.
func redisKeyspace(t *testing.T, srv *redistest.Server) []byte {
	t.Helper()
	ctx := t.Context()
	rc := srv.Client(t)
	var out bytes.Buffer
	keys := 0
	iter := rc.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		keys++
		out.WriteString(key + "\n")
		typ, err := rc.Type(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		var vals []string
		switch typ {
		case "string":
			v, err := rc.Get(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			vals = []string{v}
		case "hash":
			m, err := rc.HGetAll(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range m {
				vals = append(vals, k, v)
			}
		case "list":
			if vals, err = rc.LRange(ctx, key, 0, -1).Result(); err != nil {
				t.Fatal(err)
			}
		case "set":
			if vals, err = rc.SMembers(ctx, key).Result(); err != nil {
				t.Fatal(err)
			}
		case "zset":
			zs, err := rc.ZRangeWithScores(ctx, key, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, z := range zs {
				vals = append(vals, fmt.Sprint(z.Member), strconv.FormatFloat(z.Score, 'g', -1, 64))
			}
		case "stream":
			msgs, err := rc.XRange(ctx, key, "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, msg := range msgs {
				for k, v := range msg.Values {
					vals = append(vals, k, fmt.Sprint(v))
				}
			}
		default:
			t.Fatalf("key %q of type %s: the search does not read it", key, typ)
		}
		for _, v := range vals {
			out.WriteString(v + "\n")
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if keys == 0 {
		t.Fatal("Redis holds no keys to search")
	}
	return out.Bytes()
}

// encodings returns the ways a coordinate could be written: decimal text
// to 5, 6 and 7 places (and as formatted by Go), float64 and float32 in
// both byte orders, and integer micro- and 10⁻⁷ degrees.
func encodings(v float64) [][]byte {
	var out [][]byte
	for _, prec := range []int{5, 6, 7} {
		out = append(out, []byte(strconv.FormatFloat(v, 'f', prec, 64)))
	}
	out = append(out, []byte(strconv.FormatFloat(v, 'g', -1, 64)))
	out = append(out,
		binary.LittleEndian.AppendUint64(nil, math.Float64bits(v)),
		binary.BigEndian.AppendUint64(nil, math.Float64bits(v)),
		binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(v))),
		binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(v))),
	)
	for _, scale := range []float64{1e6, 1e7} {
		n := uint32(int32(math.Round(v * scale)))
		out = append(out, binary.LittleEndian.AppendUint32(nil, n), binary.BigEndian.AppendUint32(nil, n))
	}
	return out
}

// statusNoRedirect GETs u and returns the status, not following redirects.
func statusNoRedirect(t *testing.T, u string) int {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
