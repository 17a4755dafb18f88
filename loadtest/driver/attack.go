// Package driver runs navad's HTTP load tests: it starts the servers under
// test as processes of their own (navad, the bare-gin baseline, the naive
// Redis GEOSEARCH design), replays the generated searches against them with
// vegeta at a fixed rate or flat out, and records every latency in a
// histogram.
package driver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/navad/navad/loadtest/dataset"
	"github.com/navad/navad/loadtest/latency"
)

// Attack says how to load one target.
type Attack struct {
	// Rate is the requests per second to send; 0 sends flat out with
	// Connections requests in flight (a closed loop).
	Rate int
	// Duration is how long to measure; Warmup runs first, unmeasured.
	Duration, Warmup time.Duration
	// Connections is the concurrency: the fixed number of workers flat out,
	// the initial number at a fixed rate (vegeta adds workers when
	// responses are slow, so a fixed rate stays fixed).
	Connections int
	// Timeout bounds one request.
	Timeout time.Duration
	// MaxWorkers caps the workers at a fixed rate (0: 1024). A server
	// that cannot keep up then sees at most this many requests in flight
	// instead of thousands (which would take the driver's CPU from it);
	// the result shows the rate actually sent.
	MaxWorkers int
	// UIDSuffix is appended to every search's user key. The searches are
	// replayed from the first in every run, so without it a later round
	// serves the users of the first again, whose frequency windows then
	// exist already (cheaper, on Redis, than opening them); a suffix of
	// its own makes a round's users new.
	UIDSuffix string
	// ReadBuffer is the size of each connection's read buffer in bytes (0:
	// net/http's 4 KB). A three-ad answer of navad is some 4.5 KB with its
	// headers, so a 4 KB buffer reads it in two system calls; any size
	// that holds a whole answer reads it in one.
	ReadBuffer int
	// Meter, when set, is called just before the measured window's first
	// request, and the function it returns just after the window's last
	// answer: what a caller reads in the two (the servers' CPU time, the
	// driver's own) then covers the measured window alone, neither the
	// warm-up nor the building of the requests.
	Meter func() (stop func())
}

// Validate reports every problem at once.
func (a Attack) Validate() error {
	var p []string
	if a.Rate < 0 {
		p = append(p, "rate must not be negative")
	}
	if a.Duration <= 0 {
		p = append(p, "duration must be positive")
	}
	if a.Warmup < 0 {
		p = append(p, "warmup must not be negative")
	}
	if a.Connections < 1 {
		p = append(p, "connections must be at least 1")
	}
	if a.ReadBuffer < 0 {
		p = append(p, "read buffer must not be negative")
	}
	if len(p) > 0 {
		return fmt.Errorf("attack: %v", p)
	}
	return nil
}

// Requests is the replayed traffic: the searches, in order, and the API key
// of each publisher (indexed like World.Publishers).
type Requests struct {
	Searches []dataset.Request
	Keys     []string
}

// Result is what one attack on one target measured.
type Result struct {
	Target     string         `json:"target"`
	Rate       int            `json:"rate"` // asked for; 0 = flat out
	Requests   uint64         `json:"requests"`
	OK         uint64         `json:"ok"`
	Codes      map[int]uint64 `json:"codes"`
	FirstError string         `json:"first_error,omitempty"`
	Elapsed    time.Duration  `json:"elapsed_ns"`
	// Throughput is successful responses per second of the measured window;
	// Sent is requests sent per second (below Rate when the driver ran out
	// of workers because the server could not keep up).
	Throughput float64         `json:"throughput"`
	Sent       float64         `json:"sent"`
	Latency    latency.Summary `json:"latency"`
	// FromSchedule, at a fixed rate, times each request from when the
	// rate meant it to be sent (the window's start and its sequence
	// number) to the end of its answer: Latency runs from the actual send,
	// and leaves out how late the driver sent it (coordinated omission:
	// a request waiting for a worker, or the driver's own delays on the
	// shared cores).
	FromSchedule *latency.Summary `json:"latency_from_schedule,omitempty"`
	// WithAds counts responses holding at least one ad.
	WithAds uint64 `json:"with_ads"`
	// Tail is when the successful requests slower than 10 ms were sent,
	// by 250 ms of the measured window.
	Tail Tail `json:"tail"`
}

// keptBody is how many bytes of each response the driver keeps (vegeta's
// MaxBody; the rest is read and discarded): enough for an error's message
// and to tell an answer with ads from one without (hasAds). Keeping whole
// bodies, and counting the ads in each, cost the driver some 13 µs of CPU
// per 4 KB answer (io.ReadAll growing its buffer, then bytes.Count), a
// cost only the target with the larger answers paid.
const keptBody = 512

// adsOpen is how a decision answer's ads array starts (API.md: request_id
// first, then ads).
var adsOpen = []byte(`"ads":[`)

// hasAds reports whether a kept body is an answer whose ads array holds
// at least one ad.
func hasAds(body []byte) bool {
	i := bytes.Index(body, adsOpen)
	if i < 0 {
		return false
	}
	rest := bytes.TrimLeft(body[i+len(adsOpen):], " \t\r\n")
	return len(rest) > 0 && rest[0] == '{'
}

// Run attacks the target's base URLs (round robin: one per process) with
// the requests, after a warm-up, and returns the measured window's result.
func Run(ctx context.Context, name string, baseURLs []string, reqs Requests, a Attack) (*Result, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if len(baseURLs) == 0 || len(reqs.Searches) == 0 {
		return nil, fmt.Errorf("run %s: no URL or no requests", name)
	}
	targets := make([]vegeta.Target, len(reqs.Searches))
	headers := make([]map[string][]string, len(reqs.Keys))
	for i, k := range reqs.Keys {
		headers[i] = map[string][]string{"Authorization": {"Bearer " + k}}
	}
	for i := range reqs.Searches {
		s := &reqs.Searches[i]
		if a.UIDSuffix != "" && s.UID != "" {
			fresh := *s
			fresh.UID += a.UIDSuffix
			s = &fresh
		}
		targets[i] = vegeta.Target{
			Method: "GET",
			URL:    baseURLs[i%len(baseURLs)] + s.Path(),
			Header: headers[s.Publisher],
		}
	}
	// With UIDSuffix, each pass over the searches has users of its own:
	// a window longer than the searches (a fixed rate, or a fast target)
	// replayed the pass's (user, search) pairs, whose frequency windows
	// its first pass had opened. The user key is the URL's last parameter
	// (url.Values sorts them), so the pass goes on its end.
	fresh := make([]bool, len(targets))
	if a.UIDSuffix != "" {
		for i := range reqs.Searches {
			uid := reqs.Searches[i].UID
			if fresh[i] = uid != ""; fresh[i] && !strings.HasSuffix(targets[i].URL, "uid="+url.QueryEscape(uid+a.UIDSuffix)) {
				return nil, fmt.Errorf("run %s: the user key is not the last parameter of %s", name, targets[i].URL)
			}
		}
	}
	var next atomic.Uint64
	n := uint64(len(targets))
	targeter := func(t *vegeta.Target) error {
		k := next.Add(1) - 1
		*t = targets[k%n]
		if p := k / n; p > 0 && fresh[k%n] {
			t.URL += "-p" + strconv.FormatUint(p, 10)
		}
		return nil
	}
	// One client for the warm-up and the measured window, so that the
	// window starts on the warm-up's connections, closed when the run
	// ends: left open, each run's connections stayed idle in both the
	// driver and the server until the server's idle timeout (120 s), and
	// were closed then, in the middle of a later target's round.
	// vegeta's own client, but for the read buffer (vegeta has no option
	// for it); the options of attack configure it as they would vegeta's.
	client := &http.Client{Transport: &http.Transport{
		DialContext:    (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		ReadBufferSize: a.ReadBuffer,
	}}
	defer client.CloseIdleConnections()
	if a.Warmup > 0 {
		if _, err := attack(ctx, name, client, targeter, a, a.Warmup); err != nil {
			return nil, err
		}
		if a.UIDSuffix != "" {
			// The window starts at the next pass: in the warm-up's last
			// one, a user searching on both sides of the cut would find
			// the windows the warm-up opened.
			next.Store((next.Load() + n - 1) / n * n)
		}
	}
	stop := func() {}
	if a.Meter != nil {
		stop = a.Meter()
	}
	res, err := attack(ctx, name, client, targeter, a, a.Duration)
	stop()
	if err != nil {
		return nil, err
	}
	return res, nil
}

func attack(ctx context.Context, name string, client *http.Client, targeter vegeta.Targeter, a Attack, d time.Duration) (*Result, error) {
	timeout := a.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	opts := []func(*vegeta.Attacker){
		vegeta.Client(client),
		vegeta.Workers(uint64(a.Connections)),
		vegeta.Connections(a.Connections),
		vegeta.KeepAlive(true),
		vegeta.Timeout(timeout),
		vegeta.Redirects(vegeta.NoFollow),
		vegeta.MaxBody(keptBody),
	}
	pacer := vegeta.Pacer(vegeta.ConstantPacer{Freq: a.Rate, Per: time.Second})
	if a.Rate > 0 {
		maxWorkers := a.MaxWorkers
		if maxWorkers <= 0 {
			maxWorkers = 1024
		}
		maxWorkers = max(maxWorkers, a.Connections)
		// Keep a connection per worker: with fewer idle connections
		// than workers, a burst would close and reopen connections,
		// and the driver's CPU would go to TCP handshakes.
		opts = append(opts, vegeta.MaxWorkers(uint64(maxWorkers)), vegeta.Connections(maxWorkers))
	}
	if a.Rate == 0 {
		// Flat out: no pacing, a fixed number of workers each with one
		// request in flight.
		opts = append(opts, vegeta.MaxWorkers(uint64(a.Connections)))
		pacer = vegeta.ConstantPacer{}
	}
	atk := vegeta.NewAttacker(opts...)
	res := &Result{Target: name, Rate: a.Rate, Codes: map[int]uint64{}, Tail: Tail{Over: tailOver, Window: tailWindow, Counts: []uint32{}}}
	var h, hs latency.Histogram
	var first, last time.Time
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	start := time.Now()
	for r := range atk.Attack(targeter, pacer, d, name) {
		res.Requests++
		res.Codes[int(r.Code)]++
		if first.IsZero() || r.Timestamp.Before(first) {
			first = r.Timestamp
		}
		if end := r.End(); end.After(last) {
			last = end
		}
		if r.Error != "" || r.Code != 200 {
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("%d %s: %s", r.Code, r.Error, truncate(r.Body, 200))
			}
			continue
		}
		res.OK++
		h.Record(r.Latency)
		if a.Rate > 0 {
			// vegeta's pacer is due to send request Seq at Seq/Rate
			// seconds into the attack, which began just after start.
			due := start.Add(time.Duration(r.Seq * uint64(time.Second) / uint64(a.Rate)))
			hs.Record(max(r.Latency, r.End().Sub(due)))
		}
		res.Tail.add(r.Timestamp.Sub(start), r.Latency)
		if hasAds(r.Body) {
			res.WithAds++
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.Elapsed = last.Sub(first)
	if res.Elapsed > 0 {
		res.Throughput = float64(res.OK) / res.Elapsed.Seconds()
		res.Sent = float64(res.Requests) / res.Elapsed.Seconds()
	}
	res.Latency = h.Summary()
	if a.Rate > 0 {
		s := hs.Summary()
		res.FromSchedule = &s
	}
	return res, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// Median returns the result with the median throughput of several rounds;
// of an even number, the faster of the middle two (a round's latencies and
// CPU go with its throughput, so it cannot average two).
func Median(rs []*Result) *Result {
	if len(rs) == 0 {
		return nil
	}
	s := append([]*Result(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].Throughput < s[j].Throughput })
	return s[len(s)/2]
}
