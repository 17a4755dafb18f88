// Package config holds navad's settings: one struct with defaults, read from
// NAVAD_* environment variables and command-line flags (flags win), and a
// Validate that reports every problem at once.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/navad/navad/internal/dashboard"
)

// Config is every setting of a navad server. docs/configuration.md lists
// them; keep the two in step.
type Config struct {
	Addr      string // NAVAD_ADDR
	AdminKey  string // NAVAD_ADMIN_KEY
	DataDir   string // NAVAD_DATA_DIR
	RedisURL  string // NAVAD_REDIS_URL
	PublicURL string // NAVAD_PUBLIC_URL
	Timezone  string // NAVAD_TIMEZONE
	Demo      bool   // --demo only: never from the environment

	LogFormat string // NAVAD_LOG_FORMAT: json or text
	LogLevel  string // NAVAD_LOG_LEVEL: debug, info, warn, error

	ReadTimeout       time.Duration // NAVAD_READ_TIMEOUT
	ReadHeaderTimeout time.Duration // NAVAD_READ_HEADER_TIMEOUT
	WriteTimeout      time.Duration // NAVAD_WRITE_TIMEOUT
	IdleTimeout       time.Duration // NAVAD_IDLE_TIMEOUT
	ShutdownTimeout   time.Duration // NAVAD_SHUTDOWN_TIMEOUT
	DecisionTimeout   time.Duration // NAVAD_DECISION_TIMEOUT
	MaxHeaderBytes    int           // NAVAD_MAX_HEADER_BYTES
	MaxBodyBytes      int64         // NAVAD_MAX_BODY_BYTES: store uploads
	MaxJSONBodyBytes  int64         // NAVAD_MAX_JSON_BODY_BYTES: every other body
	MaxUploadRows     int           // NAVAD_MAX_UPLOAD_ROWS
	MaxStockRows      int           // NAVAD_MAX_STOCK_ROWS
	MaxAds            int           // NAVAD_MAX_ADS: cap on ads per decision, 1-10

	TrackingSecret string        // NAVAD_TRACKING_SECRET; generated and stored when empty
	TokenTTL       time.Duration // NAVAD_TOKEN_TTL
	EventRetention int           // NAVAD_EVENT_RETENTION_DAYS
	// DetailRetention is how many business days reports by store and by
	// cell reach back (NAVAD_DETAIL_RETENTION_DAYS); 0 keeps them for good.
	DetailRetention int
	SpoolMaxEvents  int // NAVAD_SPOOL_MAX_EVENTS: with Redis, tracking events kept on disk during an outage
	// MaxUserWindows bounds the frequency caps' open per-user windows on
	// the embedded store (NAVAD_MAX_USER_WINDOWS): a table of 48 bytes a
	// window is reserved at start, 96 MB at the default 2,000,000. When
	// that many are open, a new user is served as if without uid. Redis
	// keeps its windows itself and ignores it.
	MaxUserWindows int64

	// Requests per second and burst per account (its keys share one
	// bucket), by role.
	RatePublisher  float64 // NAVAD_RATE_PUBLISHER
	RateManagement float64 // NAVAD_RATE_MANAGEMENT: admin, agency, advertiser, and publishers' calls other than decisions
	RateBurst      int     // NAVAD_RATE_BURST

	// The dashboard's optional base map (see internal/dashboard).
	DashboardTiles            string // NAVAD_DASHBOARD_TILES: tile URL template; empty for none
	DashboardTilesAttribution string // NAVAD_DASHBOARD_TILES_ATTRIBUTION

	// ProcsPerCPU is how many Go processors (GOMAXPROCS) the server runs
	// per CPU the runtime found (NAVAD_PROCS_PER_CPU, 1-8, default 2).
	// With one per CPU, a collection's mark worker or a flush to the
	// data file holds a processor for tens of milliseconds while the
	// decisions queued behind it wait; with two, the kernel shares the
	// CPUs among them instead. At a steady 5,000 decisions a second on
	// two cores beside the load driver, the p99 went from 5.7-11.3 ms to
	// 2.4-5.3 ms (median round 3.4 ms), for some 8% more CPU a request
	// (BENCHMARKS.md, "At a fixed rate"). 0 leaves the runtime's choice,
	// as does a GOMAXPROCS in the environment. Set, the count is fixed at
	// start: the runtime no longer follows a change of the container's
	// CPU limit.
	ProcsPerCPU int

	// HugePages moves the loaded index into huge pages (NAVAD_HUGE_PAGES,
	// default true; internal/hugepages says why).
	HugePages bool
}

// MaxUserWindowsLimit is the most MaxUserWindows may be: a table of 48 GB,
// beyond any machine navad is meant for, so that a mistyped setting is
// refused rather than reserved.
const MaxUserWindowsLimit = 1_000_000_000

// Default returns the built-in settings.
func Default() Config {
	return Config{
		Addr:              ":8080",
		DataDir:           "./data",
		PublicURL:         "http://localhost:8080",
		Timezone:          "Asia/Tokyo",
		LogFormat:         "json",
		LogLevel:          "info",
		ReadTimeout:       30 * time.Second,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ShutdownTimeout:   15 * time.Second,
		DecisionTimeout:   50 * time.Millisecond,
		MaxHeaderBytes:    16 << 10,
		MaxBodyBytes:      64 << 20,
		MaxJSONBodyBytes:  1 << 20,
		MaxUploadRows:     200_000,
		MaxStockRows:      10_000,
		MaxAds:            10,
		HugePages:         true,
		ProcsPerCPU:       2,
		TokenTTL:          24 * time.Hour,
		EventRetention:    90,
		DetailRetention:   35,
		SpoolMaxEvents:    1_000_000,
		MaxUserWindows:    2_000_000,
		RatePublisher:     5000,
		RateManagement:    50,
		RateBurst:         200,
	}
}

// Parse reads the environment (through getenv) over the defaults, then the
// flags in args over that, and validates the result. Every problem is
// reported in one error.
func Parse(args []string, getenv func(string) string) (Config, error) {
	c := Default()
	var problems []string
	env := func(name string, apply func(string) error) {
		if v := getenv(name); v != "" {
			if err := apply(v); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", name, err))
			}
		}
	}
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	dur := func(p *time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("not a duration such as 30s: %q", v)
			}
			*p = d
			return nil
		}
	}
	integer := func(p *int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("not an integer: %q", v)
			}
			*p = n
			return nil
		}
	}
	int64v := func(p *int64) func(string) error {
		return func(v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("not an integer: %q", v)
			}
			*p = n
			return nil
		}
	}
	boolean := func(p *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("not true or false: %q", v)
			}
			*p = b
			return nil
		}
	}
	float := func(p *float64) func(string) error {
		return func(v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Errorf("not a finite number: %q", v)
			}
			*p = f
			return nil
		}
	}

	env("NAVAD_ADDR", str(&c.Addr))
	env("NAVAD_ADMIN_KEY", str(&c.AdminKey))
	env("NAVAD_DATA_DIR", str(&c.DataDir))
	env("NAVAD_REDIS_URL", str(&c.RedisURL))
	env("NAVAD_PUBLIC_URL", str(&c.PublicURL))
	env("NAVAD_TIMEZONE", str(&c.Timezone))
	env("NAVAD_LOG_FORMAT", str(&c.LogFormat))
	env("NAVAD_LOG_LEVEL", str(&c.LogLevel))
	env("NAVAD_READ_TIMEOUT", dur(&c.ReadTimeout))
	env("NAVAD_READ_HEADER_TIMEOUT", dur(&c.ReadHeaderTimeout))
	env("NAVAD_WRITE_TIMEOUT", dur(&c.WriteTimeout))
	env("NAVAD_IDLE_TIMEOUT", dur(&c.IdleTimeout))
	env("NAVAD_SHUTDOWN_TIMEOUT", dur(&c.ShutdownTimeout))
	env("NAVAD_DECISION_TIMEOUT", dur(&c.DecisionTimeout))
	env("NAVAD_MAX_HEADER_BYTES", integer(&c.MaxHeaderBytes))
	env("NAVAD_MAX_BODY_BYTES", int64v(&c.MaxBodyBytes))
	env("NAVAD_MAX_JSON_BODY_BYTES", int64v(&c.MaxJSONBodyBytes))
	env("NAVAD_MAX_UPLOAD_ROWS", integer(&c.MaxUploadRows))
	env("NAVAD_MAX_STOCK_ROWS", integer(&c.MaxStockRows))
	env("NAVAD_MAX_ADS", integer(&c.MaxAds))
	env("NAVAD_TRACKING_SECRET", str(&c.TrackingSecret))
	env("NAVAD_TOKEN_TTL", dur(&c.TokenTTL))
	env("NAVAD_EVENT_RETENTION_DAYS", integer(&c.EventRetention))
	env("NAVAD_DETAIL_RETENTION_DAYS", integer(&c.DetailRetention))
	env("NAVAD_SPOOL_MAX_EVENTS", integer(&c.SpoolMaxEvents))
	env("NAVAD_MAX_USER_WINDOWS", int64v(&c.MaxUserWindows))
	env("NAVAD_RATE_PUBLISHER", float(&c.RatePublisher))
	env("NAVAD_RATE_MANAGEMENT", float(&c.RateManagement))
	env("NAVAD_RATE_BURST", integer(&c.RateBurst))
	env("NAVAD_DASHBOARD_TILES", str(&c.DashboardTiles))
	env("NAVAD_HUGE_PAGES", boolean(&c.HugePages))
	env("NAVAD_PROCS_PER_CPU", integer(&c.ProcsPerCPU))
	if getenv("GOMAXPROCS") != "" {
		c.ProcsPerCPU = 0 // the operator's own setting
	}
	env("NAVAD_DASHBOARD_TILES_ATTRIBUTION", str(&c.DashboardTilesAttribution))

	fs := flagSet(&c)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return c, ErrHelp
	} else if err != nil {
		problems = append(problems, err.Error())
	} else if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	publicSet := getenv("NAVAD_PUBLIC_URL") != ""
	fs.Visit(func(f *flag.Flag) { publicSet = publicSet || f.Name == "public-url" })
	if !publicSet {
		c.PublicURL = publicURLFor(c.Addr)
	}
	if err := c.Validate(); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return c, errors.New("configuration: " + strings.Join(problems, "; "))
	}
	return c, nil
}

// publicURLFor returns the base of the tracking URLs when none is set: the
// listen address, as a client on this machine reaches it (localhost for an
// address that listens on every interface). With no port or port 0 (one
// the kernel picks), the built-in default.
func publicURLFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Default().PublicURL
	}
	n, err := net.LookupPort("tcp", port) // a service name (http) as its number
	if err != nil || n == 0 {
		return Default().PublicURL
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	// An IPv6 zone (fe80::1%eth0) is written %25 in a URL (RFC 6874).
	return "http://" + net.JoinHostPort(strings.ReplaceAll(host, "%", "%25"), strconv.Itoa(n))
}

// ErrHelp is what Parse returns when the arguments ask for help (-h,
// --help): the caller prints PrintUsage's text instead of starting.
var ErrHelp = flag.ErrHelp

// flagSet returns the server's flags, bound to c's fields with c's values
// as their defaults.
func flagSet(c *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("navad", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (NAVAD_ADDR)")
	fs.StringVar(&c.AdminKey, "admin-key", c.AdminKey, "the admin account's API key (NAVAD_ADMIN_KEY)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "where the embedded store keeps its files; with Redis, the tracking spool (NAVAD_DATA_DIR)")
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "redis://, rediss://, redis+cluster:// or rediss+cluster:// URL: use Redis as the shared store (NAVAD_REDIS_URL)")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "base of the tracking URLs handed to clients (NAVAD_PUBLIC_URL); unset, http:// and the listen address")
	fs.StringVar(&c.Timezone, "timezone", c.Timezone, "business time zone for schedules and report days (NAVAD_TIMEZONE)")
	fs.BoolVar(&c.Demo, "demo", false, "load the demo world around Shinjuku and Shibuya and print its keys")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text (NAVAD_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (NAVAD_LOG_LEVEL)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long shutdown waits for requests in flight (NAVAD_SHUTDOWN_TIMEOUT)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest store upload body (NAVAD_MAX_BODY_BYTES)")
	fs.StringVar(&c.DashboardTiles, "dashboard-tiles", c.DashboardTiles, "base-map tile URL template for /dashboard/, such as https://tile.example.com/{z}/{x}/{y}.png; none by default (NAVAD_DASHBOARD_TILES)")
	fs.BoolVar(&c.HugePages, "huge-pages", c.HugePages, "once the index is loaded, move it into huge pages where the kernel allows, for faster decisions (NAVAD_HUGE_PAGES)")
	fs.Int64Var(&c.MaxUserWindows, "max-user-windows", c.MaxUserWindows, "most open per-user frequency-cap windows on the embedded store, 48 bytes each reserved at start (NAVAD_MAX_USER_WINDOWS)")
	fs.IntVar(&c.ProcsPerCPU, "procs-per-cpu", c.ProcsPerCPU, "Go processors (GOMAXPROCS) per CPU, 1-8; 0 leaves the runtime's choice, as GOMAXPROCS in the environment does (NAVAD_PROCS_PER_CPU)")
	fs.StringVar(&c.DashboardTilesAttribution, "dashboard-tiles-attribution", c.DashboardTilesAttribution, "the tile provider's credit line (NAVAD_DASHBOARD_TILES_ATTRIBUTION)")
	return fs
}

// PrintUsage writes the server's flags, with their defaults, to w.
func PrintUsage(w io.Writer) {
	c := Default()
	fs := flagSet(&c)
	fs.SetOutput(w)
	fmt.Fprint(w, `usage: navad [flags]
       navad import stores --file FILE [--advertiser ID] [--server URL] [--key KEY]

Every flag but --demo has a NAVAD_* environment variable, which the flag
overrides; docs/configuration.md lists every setting, those without a flag too.

`)
	fs.PrintDefaults()
}

// Validate reports every problem with c at once, or nil.
func (c *Config) Validate() error {
	var p []string
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		p = append(p, fmt.Sprintf("addr %q is not host:port", c.Addr))
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		// Refused now rather than at listen, after a national index has
		// loaded.
		p = append(p, fmt.Sprintf("addr %q: the port must be a number from 0 to 65535", c.Addr))
	}
	if c.AdminKey != "" && len(c.AdminKey) < 16 {
		p = append(p, "admin key must be at least 16 characters")
	}
	if c.DataDir == "" {
		p = append(p, "data dir is required (the embedded store, or with Redis the tracking spool)")
	}
	if c.RedisURL != "" {
		// Go's parse error quotes the whole URL, password and all: it is
		// not passed on.
		if u, err := url.Parse(c.RedisURL); err != nil {
			p = append(p, fmt.Sprintf("redis url %q is not a URL (a character in the password or path may need %%-escaping)", redact(c.RedisURL)))
		} else if u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "redis+cluster" && u.Scheme != "rediss+cluster" {
			p = append(p, fmt.Sprintf("redis url %q must start with redis://, rediss:// (one node), redis+cluster:// or rediss+cluster:// (Redis Cluster)", redact(c.RedisURL)))
		}
	}
	// Tracking URLs are the public URL with /v1/i/<token> and so on
	// appended: a query or fragment would swallow that path.
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p = append(p, fmt.Sprintf("public url %q must be an absolute http or https URL", c.PublicURL))
	} else if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(c.PublicURL, "#") {
		p = append(p, fmt.Sprintf("public url %q must have no query or fragment: tracking paths are appended to it", c.PublicURL))
	}
	// time.LoadLocation takes "" for UTC and "Local" for whatever zone the
	// host is set to: neither names a business time zone, and "Local"
	// could differ between replicas sharing Redis.
	if _, err := time.LoadLocation(c.Timezone); err != nil || c.Timezone == "" || c.Timezone == "Local" {
		p = append(p, fmt.Sprintf("timezone %q is not an IANA time zone such as Asia/Tokyo or UTC", c.Timezone))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		p = append(p, fmt.Sprintf("log format %q must be json or text", c.LogFormat))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p = append(p, fmt.Sprintf("log level %q must be debug, info, warn or error", c.LogLevel))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"read timeout", c.ReadTimeout}, {"read header timeout", c.ReadHeaderTimeout},
		{"write timeout", c.WriteTimeout}, {"idle timeout", c.IdleTimeout},
		{"shutdown timeout", c.ShutdownTimeout}, {"decision timeout", c.DecisionTimeout},
		{"token ttl", c.TokenTTL},
	} {
		if d.v <= 0 {
			p = append(p, d.name+" must be positive")
		}
	}
	if c.MaxHeaderBytes < 1024 {
		p = append(p, "max header bytes must be at least 1024")
	}
	if c.MaxBodyBytes < 1024 || c.MaxJSONBodyBytes < 1024 {
		p = append(p, "body limits must be at least 1024 bytes")
	}
	if c.MaxUploadRows < 1 || c.MaxStockRows < 1 {
		p = append(p, "row limits must be at least 1")
	}
	if c.MaxAds < 1 || c.MaxAds > 10 {
		p = append(p, fmt.Sprintf("max ads %d must be between 1 and 10 (the API's bound on n)", c.MaxAds))
	}
	if c.TrackingSecret != "" && len(c.TrackingSecret) < 32 {
		p = append(p, "tracking secret must be at least 32 characters")
	}
	if c.EventRetention < 1 {
		p = append(p, "event retention must be at least 1 day")
	}
	// A day's tokens count until the token lifetime after it ends: its
	// detail is purged only once nothing can add to it.
	if minDays := 1 + int((c.TokenTTL+24*time.Hour-1)/(24*time.Hour)); c.TokenTTL > 0 && c.DetailRetention != 0 && c.DetailRetention < minDays {
		p = append(p, fmt.Sprintf("detail retention must be 0 (for good) or at least %d days (the token lifetime and a day)", minDays))
	}
	if c.ProcsPerCPU < 0 || c.ProcsPerCPU > 8 {
		p = append(p, fmt.Sprintf("procs per cpu %d must be between 0 and 8", c.ProcsPerCPU))
	}
	if c.SpoolMaxEvents < 1 {
		p = append(p, "spool max events must be at least 1")
	}
	if c.MaxUserWindows < 1 || c.MaxUserWindows > MaxUserWindowsLimit {
		p = append(p, fmt.Sprintf("max user windows %d must be between 1 and %d", c.MaxUserWindows, MaxUserWindowsLimit))
	}
	// Written so that NaN, which compares false with everything, fails.
	if !(c.RatePublisher > 0) || !(c.RateManagement > 0) || math.IsInf(c.RatePublisher, 0) || math.IsInf(c.RateManagement, 0) || c.RateBurst < 1 {
		p = append(p, "rate limits must be positive")
	}
	if err := c.Dashboard().Validate(); err != nil {
		p = append(p, err.Error())
	}
	if len(p) > 0 {
		return errors.New(strings.Join(p, "; "))
	}
	return nil
}

// Dashboard returns the dashboard's options.
func (c *Config) Dashboard() dashboard.Options {
	return dashboard.Options{Tiles: c.DashboardTiles, TilesAttribution: c.DashboardTilesAttribution}
}

// Location returns the business time zone. Validate has checked it.
func (c *Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// redact hides a password in a URL so that it can be logged. A URL Go
// cannot parse is cut by hand: everything of its authority up to the last
// '@' (the user information) is masked.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		rest, scheme := raw, ""
		if i := strings.Index(raw, "://"); i >= 0 {
			scheme, rest = raw[:i+3], raw[i+3:]
		}
		authority := rest
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			authority = rest[:i]
		}
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			return scheme + "xxxxx" + rest[at:]
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			// An '@' past a '/', '?' or '#' that Go could not parse: the
			// password may hold one of those characters unescaped.
			return scheme + "xxxxx" + rest[at:]
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Redacted returns the Redis URL fit for a log line.
func (c *Config) Redacted() string { return redact(c.RedisURL) }
