package httpapi

import (
	"bytes"
	"math"
	"net/url"
	"strconv"
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
	case !utf8.ValidString(req.Query) || req.Query == "" || utf8.RuneCountInString(req.Query) > maxQueryChars || campaigns.Normalize(req.Query) == "":
		t.Fatalf("q %q accepted", req.Query)
	case req.N < 1 || req.N > maxAds:
		t.Fatalf("n %d accepted with max %d", req.N, maxAds)
	case req.Mode != campaigns.Walk && req.Mode != campaigns.Car:
		t.Fatalf("mode %q accepted", req.Mode)
	case len(req.UID) > maxUIDLen || !utf8.ValidString(req.UID):
		t.Fatalf("uid %q accepted", req.UID)
	}
}

// asQuery writes an accepted request back as a GET query.
func asQuery(req serving.Request) url.Values {
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
	return v
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
		qs, _ := url.ParseQuery(raw) // a partly bad query still yields values
		for _, maxAds := range []int{maxN, 3} {
			req, err := parseDecisionQuery(qs, maxAds)
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
