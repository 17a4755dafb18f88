package httpapi

import (
	"bytes"
	"math"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/serving"
)

// checkDecision holds what a parsed decision request must satisfy whatever
// the input: a valid request within the API's bounds, or an Invalid error
// whose message is safe to send (valid UTF-8). Never a panic, never an
// internal error.
func checkDecision(t *testing.T, req serving.Request, err error, maxAds int) {
	t.Helper()
	if err != nil {
		if code := campaigns.ErrorCode(err); code != campaigns.Invalid {
			t.Fatalf("error code %q, want %q: %v", code, campaigns.Invalid, err)
		}
		if msg := campaigns.ErrorMessage(err); !utf8.ValidString(msg) || msg == "" {
			t.Fatalf("error message %q", msg)
		}
		return
	}
	switch {
	case math.IsNaN(req.Lat) || req.Lat < -90 || req.Lat > 90:
		t.Fatalf("lat %v accepted", req.Lat)
	case math.IsNaN(req.Lng) || req.Lng < -180 || req.Lng > 180:
		t.Fatalf("lng %v accepted", req.Lng)
	case !utf8.ValidString(req.Query) || req.Query == "" || utf8.RuneCountInString(req.Query) > maxQueryChars:
		t.Fatalf("q %q accepted", req.Query)
	case req.N < 1 || req.N > maxAds:
		t.Fatalf("n %d accepted with max %d", req.N, maxAds)
	case req.Mode != campaigns.Walk && req.Mode != campaigns.Car:
		t.Fatalf("mode %q accepted", req.Mode)
	case utf8.RuneCountInString(req.UID) > maxUIDChars || !utf8.ValidString(req.UID):
		t.Fatalf("uid %q accepted", req.UID)
	}
}

// asQuery writes an accepted request back as a GET query.
func asQuery(req serving.Request) string {
	v := url.Values{
		"lat":  {strconv.FormatFloat(req.Lat, 'g', -1, 64)},
		"lng":  {strconv.FormatFloat(req.Lng, 'g', -1, 64)},
		"q":    {req.Query},
		"n":    {strconv.Itoa(req.N)},
		"mode": {string(req.Mode)},
	}
	if req.UID != "" {
		v.Set("uid", req.UID)
	}
	return v.Encode()
}

// FuzzDecisionQuery drives the GET /v1/ads parser with arbitrary query
// strings. Seeds: testdata/fuzz/FuzzDecisionQuery and the f.Add calls.
func FuzzDecisionQuery(f *testing.F) {
	for _, s := range []string{
		"lat=35.6909&lng=139.7003&q=%E5%B1%85%E9%85%92%E5%B1%8B&n=3&mode=walk&acc=12&uid=u1",
		"lat=NaN&lng=Infinity&q=x",
		"lat=-0&lng=1e-320&q=%20&n=010",
		"lat=0x1p-2&lng=1_0&q=a&q=b&n=99999999999999999999",
		"lat=90&lng=-180&q=%FF%FE&mode=car&uid=%00",
		"q=" + url.QueryEscape(string(bytes.Repeat([]byte("あ"), 101))),
		"lat=35&lng=139&q=%E3%80%80&acc=-1",
		";;&&==",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		checkQueryAsParseQuery(t, raw)
		for _, maxAds := range []int{maxN, 3} {
			req, err := parseDecisionQuery(raw, maxAds)
			checkDecision(t, req, err, maxAds)
			if err != nil {
				continue
			}
			// Written back as a query, it parses to the same request.
			again, err := parseDecisionQuery(asQuery(req), maxAds)
			if err != nil || again != req {
				t.Fatalf("round trip: %+v, %v; want %+v", again, err, req)
			}
		}
	})
}

// checkQueryAsParseQuery holds readDecisionQuery to url.ParseQuery: each
// field it reads has the first value ParseQuery gives (a partly bad query
// still yields values), it has no field ParseQuery lacks, and it marks a
// field repeated when ParseQuery gives it more than one value. Queries over
// url's parameter limit (10,000, a guard against its map growing) are left
// out: readDecisionQuery builds no map and reads them.
func checkQueryAsParseQuery(t *testing.T, raw string) {
	t.Helper()
	if strings.Count(raw, "&") >= 10_000 {
		return
	}
	qs, _ := url.ParseQuery(raw)
	got := readDecisionQuery(raw)
	for i, f := range decisionFields {
		want, ok := "", len(qs[f]) > 0
		if ok {
			want = qs[f][0]
		}
		if got.have[i] != ok || got.val[i] != want {
			t.Fatalf("query %q: %s = %q (present %v); url.ParseQuery gives %q (present %v)", raw, f, got.val[i], got.have[i], want, ok)
		}
		if got.twice[i] != (len(qs[f]) > 1) {
			t.Fatalf("query %q: %s repeated %v; url.ParseQuery gives it %d values", raw, f, got.twice[i], len(qs[f]))
		}
	}
}

// FuzzDecisionJSON drives the POST /v1/ads parser with arbitrary bodies;
// what it accepts, GET must accept as the same request.
func FuzzDecisionJSON(f *testing.F) {
	for _, s := range []string{
		`{"lat":35.6909,"lng":139.7003,"q":"居酒屋","n":3,"mode":"walk","acc":12,"uid":"u1"}`,
		`{"lat":35.6909,"lng":139.7003,"q":"居酒屋","lat":91}`,
		`{"lat":1e400,"lng":0,"q":"x"}`,
		`{"lat":"35","lng":139,"q":5}`,
		`{"lat":0,"lng":0,"q":"\ud800","extra":{"deep":[[[[]]]]}}`,
		`[{"lat":0}]`,
		`{"lat":0,"lng":0,"q":"x"} {"again":1}`,
		`{"lat":-0.0,"lng":180,"q":"<script>alert(1)</script>","n":10,"mode":"car"}`,
		`{"lat":0,"lng":0,"q":"x","n":3.0}`,
		"{\"q\":\"\xff\xfe\",\"lat\":0,\"lng\":0}",
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseDecisionJSON(bytes.NewReader(body), maxN)
		checkDecision(t, req, err, maxN)
		if err != nil {
			return
		}
		get, err := parseDecisionQuery(asQuery(req), maxN)
		if err != nil || get != req {
			t.Fatalf("GET disagrees with POST: %+v, %v; want %+v", get, err, req)
		}
	})
}

// TestReadDecisionQuery: the cases where reading only the decision's
// fields could part from url.ParseQuery: escaped keys, repeated fields,
// bad escapes before a good value, semicolons, '+' and empty pairs.
func TestReadDecisionQuery(t *testing.T) {
	for _, raw := range []string{
		"lat=35.6909&lng=139.7003&q=%E5%B1%85%E9%85%92%E5%B1%8B&n=3&mode=walk&acc=12&uid=u1",
		"l%61t=1&%71=%E3%81%82&lat=2",
		"q=%ZZ&q=second&q=third",
		"q=a;b&q=c&lat=1;&lat=2",
		"q=a+b&u%2Bid=x&uid=a%2Bb",
		"&&q&=&lat=&lng=%",
		"q=%E3%81&q%=x&%zz=1&mode=car",
		"",
	} {
		checkQueryAsParseQuery(t, raw)
	}
	q := readDecisionQuery("q=%ZZ&q=a+b&l%61t=35.5&n=2&n=3")
	if v, ok := q.get("q"); !ok || v != "a b" {
		t.Errorf("q = %q, %v; want \"a b\" (the first pair whose escapes are good)", v, ok)
	}
	if v, ok := q.get("lat"); !ok || v != "35.5" {
		t.Errorf("lat = %q, %v; want 35.5 from the escaped key", v, ok)
	}
	if v, _ := q.get("n"); v != "2" {
		t.Errorf("n = %q, want the first value 2", v)
	}
	if !q.twice[3] || q.twice[2] {
		t.Errorf("repeated n %v, q %v; want n only (the first q's escape is bad)", q.twice[3], q.twice[2])
	}
	if _, ok := q.get("uid"); ok {
		t.Error("uid found in a query without it")
	}
}
