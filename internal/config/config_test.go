package config

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func env(pairs ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDefaultsAreValid(t *testing.T) {
	c, err := Parse(nil, env())
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.DataDir != "./data" || c.Timezone != "Asia/Tokyo" || c.PublicURL != "http://localhost:8080" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.Location().String() != "Asia/Tokyo" {
		t.Fatalf("location %v", c.Location())
	}
}

// TestRatesMustBeFinite: NaN and infinite rates are refused, as text in
// the environment and as values.
func TestRatesMustBeFinite(t *testing.T) {
	for _, kv := range [][]string{
		{"NAVAD_RATE_PUBLISHER", "NaN"}, {"NAVAD_RATE_PUBLISHER", "+Inf"}, {"NAVAD_RATE_MANAGEMENT", "nan"},
		{"NAVAD_RATE_MANAGEMENT", "-inf"}, {"NAVAD_RATE_PUBLISHER", "0"}, {"NAVAD_RATE_PUBLISHER", "1e999"},
	} {
		if _, err := Parse(nil, env(kv...)); err == nil || !strings.Contains(err.Error(), kv[0]) && !strings.Contains(err.Error(), "rate") {
			t.Errorf("%s=%s: %v, want refused", kv[0], kv[1], err)
		}
	}
	c := Default()
	for _, r := range []float64{math.NaN(), math.Inf(1)} {
		c.RatePublisher = r
		if err := c.Validate(); err == nil {
			t.Errorf("rate %v validated", r)
		}
	}
}

// TestMaxUserWindows: 2,000,000 by default, set by environment or flag
// (the flag wins), refused below 1 or above MaxUserWindowsLimit.
func TestMaxUserWindows(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want int64
		ok   bool
	}{
		{nil, nil, 2_000_000, true},
		{nil, []string{"NAVAD_MAX_USER_WINDOWS", "10000000"}, 10_000_000, true},
		{[]string{"--max-user-windows", "500"}, []string{"NAVAD_MAX_USER_WINDOWS", "10000000"}, 500, true},
		{[]string{"--max-user-windows", "1000000000"}, nil, MaxUserWindowsLimit, true},
		{[]string{"--max-user-windows", "1000000001"}, nil, 0, false},
		{[]string{"--max-user-windows", "0"}, nil, 0, false},
		{nil, []string{"NAVAD_MAX_USER_WINDOWS", "lots"}, 0, false},
	} {
		c, err := Parse(tc.args, env(tc.env...))
		if (err == nil) != tc.ok || err == nil && c.MaxUserWindows != tc.want {
			t.Errorf("args %v, env %v: %d, %v; want ok %v, %d", tc.args, tc.env, c.MaxUserWindows, err, tc.ok, tc.want)
		}
		if err != nil && !tc.ok && !strings.Contains(err.Error(), "user windows") && !strings.Contains(err.Error(), "NAVAD_MAX_USER_WINDOWS") {
			t.Errorf("args %v, env %v: the error %q does not name the setting", tc.args, tc.env, err)
		}
	}
}

// TestDetailRetention: 35 days by default, 0 keeps the detail for good,
// and a retention shorter than the token lifetime and a day is refused.
func TestDetailRetention(t *testing.T) {
	for _, tc := range []struct {
		days, ttl string
		want      int
		ok        bool
	}{{"", "", 35, true}, {"0", "", 0, true}, {"2", "", 2, true}, {"1", "", 0, false}, {"3", "48h", 3, true}, {"2", "48h", 0, false}} {
		var kv []string
		if tc.days != "" {
			kv = append(kv, "NAVAD_DETAIL_RETENTION_DAYS", tc.days)
		}
		if tc.ttl != "" {
			kv = append(kv, "NAVAD_TOKEN_TTL", tc.ttl)
		}
		c, err := Parse(nil, env(kv...))
		if (err == nil) != tc.ok || err == nil && c.DetailRetention != tc.want {
			t.Errorf("days %q, ttl %q: %v, %v; want ok %v, %d days", tc.days, tc.ttl, c, err, tc.ok, tc.want)
		}
	}
}

// TestProcsPerCPU: two Go processors per CPU by default, as set by
// NAVAD_PROCS_PER_CPU or the flag, none of navad's own (0) when the
// environment sets GOMAXPROCS, and out-of-range settings refused.
func TestProcsPerCPU(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want int
		ok   bool
	}{
		{nil, nil, 2, true},
		{nil, []string{"NAVAD_PROCS_PER_CPU", "1"}, 1, true},
		{nil, []string{"GOMAXPROCS", "3"}, 0, true},
		{nil, []string{"GOMAXPROCS", "3", "NAVAD_PROCS_PER_CPU", "4"}, 0, true},
		{[]string{"--procs-per-cpu", "3"}, []string{"GOMAXPROCS", "3"}, 3, true},
		{nil, []string{"NAVAD_PROCS_PER_CPU", "0"}, 0, true},
		{nil, []string{"NAVAD_PROCS_PER_CPU", "9"}, 0, false},
		{[]string{"--procs-per-cpu", "-1"}, nil, 0, false},
	} {
		c, err := Parse(tc.args, env(tc.env...))
		if (err == nil) != tc.ok || err == nil && c.ProcsPerCPU != tc.want {
			t.Errorf("args %v, env %v: %d, %v; want ok %v, %d", tc.args, tc.env, c.ProcsPerCPU, err, tc.ok, tc.want)
		}
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	c, err := Parse([]string{"--addr", "127.0.0.1:9999", "--demo"}, env(
		"NAVAD_ADDR", "127.0.0.1:7777",
		"NAVAD_DATA_DIR", "/tmp/navad-env",
		"NAVAD_READ_TIMEOUT", "3s",
		"NAVAD_ADMIN_KEY", "a-long-enough-admin-key",
	))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9999" {
		t.Errorf("addr %q: the flag should win", c.Addr)
	}
	if c.DataDir != "/tmp/navad-env" || c.ReadTimeout != 3*time.Second || c.AdminKey != "a-long-enough-admin-key" {
		t.Errorf("environment not applied: %+v", c)
	}
	if !c.Demo {
		t.Error("--demo not applied")
	}
}

func TestEveryProblemReportedAtOnce(t *testing.T) {
	_, err := Parse([]string{"--addr", "no-port", "--log-format", "xml", "extra"}, env(
		"NAVAD_TIMEZONE", "Mars/Olympus",
		"NAVAD_PUBLIC_URL", "ftp://example.com",
		"NAVAD_REDIS_URL", "http://user:secret@redis:6379",
		"NAVAD_ADMIN_KEY", "short",
		"NAVAD_WRITE_TIMEOUT", "forever",
		"NAVAD_MAX_UPLOAD_ROWS", "lots",
		"NAVAD_RATE_BURST", "0",
		"NAVAD_MAX_ADS", "11",
		"NAVAD_TOKEN_TTL", "48h",
		"NAVAD_DETAIL_RETENTION_DAYS", "2",
	))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{"no-port", "xml", "extra", "Mars/Olympus", "ftp://example.com", "redis url", "admin key", "NAVAD_WRITE_TIMEOUT", "NAVAD_MAX_UPLOAD_ROWS", "rate limits", "max ads", "detail retention must be 0 (for good) or at least 3 days"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "secret") {
		t.Errorf("error leaks the Redis password:\n%s", msg)
	}
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.RedisURL = "redis://app:hunter2@redis.internal:6379/0"
	if got := c.Redacted(); strings.Contains(got, "hunter2") || !strings.Contains(got, "redis.internal") {
		t.Fatalf("redacted %q", got)
	}
}

// TestRedisPasswordNeverInErrors: a Redis URL the validation refuses,
// whether Go can parse it or not, is named in the error without its
// password, which would otherwise go to standard error and the logs.
func TestRedisPasswordNeverInErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{"wrong scheme", "http://app:hunter2@redis.internal:6379"},
		{"bad escape in the path", "redis://app:hunter2@redis.internal:6379/%zz"},
		{"bad port", "redis://app:hunter2@redis.internal:port/0"},
		{"bad escape in the password", "redis://app:hunter2%zz@redis.internal:6379/0"},
		{"no user name", "rediss://:hunter2@redis.internal:6379/%"},
		{"unescaped slash in the password", "redis://app:hunter2/x@redis.internal:6379/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(nil, env("NAVAD_REDIS_URL", tt.give))
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); strings.Contains(msg, "hunter2") || !strings.Contains(msg, "redis url") || !strings.Contains(msg, "redis.internal") {
				t.Fatalf("error %q: want the URL named, without its password", msg)
			}
		})
	}
}

// TestHelp: -h and --help ask for the usage, not a start; the usage names
// every flag with its default.
func TestHelp(t *testing.T) {
	for _, give := range [][]string{{"-h"}, {"--help"}, {"--addr", ":9090", "-help"}} {
		if _, err := Parse(give, env()); !errors.Is(err, ErrHelp) {
			t.Errorf("Parse(%q) = %v, want ErrHelp", give, err)
		}
	}
	var b bytes.Buffer
	PrintUsage(&b)
	for _, want := range []string{"usage: navad", "-addr string", `(default ":8080")`, "-demo", "-procs-per-cpu int", "NAVAD_MAX_USER_WINDOWS"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("usage does not mention %q:\n%s", want, b.String())
		}
	}
}

// TestTimezone: an IANA zone is taken; one Go's time.LoadLocation accepts
// without being one ("" for UTC, "Local" for the host's zone) is refused,
// as a misspelt one is.
func TestTimezone(t *testing.T) {
	tests := []struct {
		give   []string
		want   string
		wantOK bool
	}{
		{give: nil, want: "Asia/Tokyo", wantOK: true},
		{give: []string{"--timezone", "UTC"}, want: "UTC", wantOK: true},
		{give: []string{"--timezone", "Europe/Paris"}, want: "Europe/Paris", wantOK: true},
		{give: []string{"--timezone", ""}},
		{give: []string{"--timezone", "Local"}},
		{give: []string{"--timezone", "Asia/Tokio"}},
	}
	for _, tt := range tests {
		c, err := Parse(tt.give, env())
		if tt.wantOK {
			if err != nil || c.Timezone != tt.want || c.Location().String() != tt.want {
				t.Errorf("%q: %q, %v; want %q", tt.give, c.Timezone, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "not an IANA time zone") {
			t.Errorf("%q: %v; want refused as not an IANA time zone", tt.give, err)
		}
	}
}

// TestPublicURL: the base of the tracking URLs is an absolute http(s) URL,
// with or without a path, and without a query or fragment, which would
// swallow the /v1/i/<token> appended to it.
func TestPublicURL(t *testing.T) {
	tests := []struct {
		give   string
		wantOK bool
	}{
		{give: "https://ads.example.com", wantOK: true},
		{give: "https://ads.example.com/", wantOK: true},
		{give: "https://example.com/navad", wantOK: true},
		{give: "http://127.0.0.1:8080", wantOK: true},
		{give: "ads.example.com"},
		{give: "ftp://ads.example.com"},
		{give: "https://ads.example.com/?src=navad"},
		{give: "https://ads.example.com/?"},
		{give: "https://ads.example.com/#top"},
		{give: "https://ads.example.com/#"},
	}
	for _, tt := range tests {
		_, err := Parse(nil, env("NAVAD_PUBLIC_URL", tt.give))
		if tt.wantOK && err != nil {
			t.Errorf("%q: %v", tt.give, err)
		}
		if !tt.wantOK && (err == nil || !strings.Contains(err.Error(), "public url")) {
			t.Errorf("%q: %v; want refused naming the public url", tt.give, err)
		}
	}
}

// TestPublicURLFollowsAddr: without a public URL of its own, the tracking
// URLs are under the address navad listens on, so that a server started on
// another port hands out URLs that reach it; one that is set is kept.
func TestPublicURLFollowsAddr(t *testing.T) {
	tests := []struct {
		args []string
		env  []string
		want string
	}{
		{want: "http://localhost:8080"},
		{args: []string{"--addr", "127.0.0.1:18181"}, want: "http://127.0.0.1:18181"},
		{env: []string{"NAVAD_ADDR", ":9090"}, want: "http://localhost:9090"},
		{args: []string{"--addr", "0.0.0.0:9090"}, want: "http://localhost:9090"},
		{args: []string{"--addr", "[::1]:9090"}, want: "http://[::1]:9090"},
		{args: []string{"--addr", "[::]:9090"}, want: "http://localhost:9090"},
		{args: []string{"--addr", "[fe80::1%eth0]:9090"}, want: "http://[fe80::1%25eth0]:9090"},
		{args: []string{"--addr", "ads.internal:9090"}, want: "http://ads.internal:9090"},
		{args: []string{"--addr", "127.0.0.1:0"}, want: "http://localhost:8080"},
		{args: []string{"--addr", "127.0.0.1:18181", "--public-url", "https://ads.example.com"}, want: "https://ads.example.com"},
		{args: []string{"--addr", "127.0.0.1:18181"}, env: []string{"NAVAD_PUBLIC_URL", "https://ads.example.com"}, want: "https://ads.example.com"},
	}
	for _, tt := range tests {
		c, err := Parse(tt.args, env(tt.env...))
		if err != nil {
			t.Fatalf("%v %v: %v", tt.args, tt.env, err)
		}
		if c.PublicURL != tt.want {
			t.Errorf("%v %v: public url %q, want %q", tt.args, tt.env, c.PublicURL, tt.want)
		}
	}
}

// TestAddrPort: a port that cannot be listened on is refused with the rest
// of the configuration, before anything loads, not at listen.
func TestAddrPort(t *testing.T) {
	for _, give := range []string{":8080", "127.0.0.1:0", "127.0.0.1:", "[::1]:65535", ":http"} {
		if _, err := Parse([]string{"--addr", give}, env()); err != nil {
			t.Errorf("%q: %v", give, err)
		}
	}
	for _, give := range []string{"127.0.0.1:99999", ":65536", ":-1", ":port-of-nothing"} {
		if _, err := Parse([]string{"--addr", give}, env()); err == nil || !strings.Contains(err.Error(), "port") {
			t.Errorf("%q: %v; want refused naming the port", give, err)
		}
	}
}
