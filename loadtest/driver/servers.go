package driver

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/loadtest/dataset"
)

//go:embed pprof_overlay.go.txt
var pprofOverlay []byte

// BuildNavad builds ./cmd/navad of the module in moduleDir into out. With
// pprof, the binary also serves net/http/pprof on $NAVAD_PPROF_ADDR: an
// overlay adds one file to package main for this build only, so that
// profiles are of the real server without changing its source.
func BuildNavad(ctx context.Context, moduleDir, out string, pprof bool) error {
	args := []string{"build", "-o", out}
	if pprof {
		tmp, err := os.MkdirTemp("", "navad-overlay-")
		if err != nil {
			return fmt.Errorf("build navad: %w", err)
		}
		defer os.RemoveAll(tmp)
		src := filepath.Join(tmp, "pprof.go")
		if err := os.WriteFile(src, pprofOverlay, 0o644); err != nil {
			return fmt.Errorf("build navad: %w", err)
		}
		overlay, _ := json.Marshal(map[string]map[string]string{
			"Replace": {filepath.Join(moduleDir, "cmd", "navad", "zz_loadtest_pprof.go"): src},
		})
		cfg := filepath.Join(tmp, "overlay.json")
		if err := os.WriteFile(cfg, overlay, 0o644); err != nil {
			return fmt.Errorf("build navad: %w", err)
		}
		args = append(args, "-overlay", cfg)
	}
	args = append(args, "./cmd/navad")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = moduleDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build navad: %w: %s", err, b)
	}
	return nil
}

// ModuleDir returns the directory of the main module (the navad checkout).
func ModuleDir(ctx context.Context) (string, error) {
	b, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find module: %w", err)
	}
	mod := strings.TrimSpace(string(b))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("find module: run from inside the navad checkout")
	}
	return filepath.Dir(mod), nil
}

// NavadOptions start a navad server.
type NavadOptions struct {
	Bin  string
	Name string // process name in logs: navad, navad-2
	// DataDir is the embedded store's directory; with RedisURL, the
	// directory of the replica's tracking spool (navad needs one).
	DataDir string
	// RedisURL, when set, runs navad on the Redis backend
	// (NAVAD_REDIS_URL): catalogue, caps and counters in Redis.
	RedisURL string
	Timezone string
	Pprof    bool // serve pprof on a free port (a binary built with pprof)
	LogDir   string
	// GOMAXPROCS, when positive, caps the process's Go scheduler.
	GOMAXPROCS int
}

// NavadProcess is a running navad and where to reach it.
type NavadProcess struct {
	*Process
	URL       string // http://127.0.0.1:port
	PprofAddr string
}

// StartNavad starts navad and waits until /readyz answers (up to 3
// minutes, for a national catalogue on a busy machine).
func StartNavad(ctx context.Context, o NavadOptions) (*NavadProcess, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env := []string{
		"NAVAD_ADDR=" + addr,
		"NAVAD_ADMIN_KEY=" + dataset.AdminKey,
		"NAVAD_LOG_LEVEL=info",
		"NAVAD_LOG_FORMAT=json",
		// Far above any load test, so that a publisher rate limit, once
		// enforced, never caps a benchmark.
		"NAVAD_RATE_PUBLISHER=10000000",
	}
	if o.DataDir != "" {
		env = append(env, "NAVAD_DATA_DIR="+o.DataDir)
	}
	if o.RedisURL != "" {
		env = append(env, "NAVAD_REDIS_URL="+o.RedisURL)
	}
	if o.Timezone != "" {
		env = append(env, "NAVAD_TIMEZONE="+o.Timezone)
	}
	if o.GOMAXPROCS > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(o.GOMAXPROCS))
	}
	np := &NavadProcess{URL: "http://" + addr}
	if o.Pprof {
		pport, err := FreePort()
		if err != nil {
			return nil, err
		}
		np.PprofAddr = "127.0.0.1:" + strconv.Itoa(pport)
		env = append(env, "NAVAD_PPROF_ADDR="+np.PprofAddr)
	}
	p, err := Start(ctx, o.Name, addr, o.LogDir, o.Bin, nil, env)
	if err != nil {
		return nil, err
	}
	np.Process = p
	if err := p.WaitReady(ctx, np.URL+"/readyz", 3*time.Minute); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return np, nil
}

// IndexLoadTime returns how long navad said loading its index took (its
// JSON log writes durations in nanoseconds, its text log as "1.5s").
func (np *NavadProcess) IndexLoadTime() time.Duration {
	v := np.LogField("index loaded", "took")
	if ns, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(ns)
	}
	d, _ := time.ParseDuration(v)
	return d
}

// StartSelf runs this program again with a subcommand (the baseline and
// naive servers are subcommands of navad-load) and waits for url to answer.
func StartSelf(ctx context.Context, name, logDir, readyPath string, args ...string) (*Process, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := Start(ctx, name, addr, logDir, self, append(args, "-addr", addr), nil)
	if err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	if err := p.WaitReady(ctx, url+readyPath, 5*time.Minute); err != nil {
		_ = p.Stop()
		return nil, "", err
	}
	return p, url, nil
}

// StartRedis runs Debian's redis-server on a free loopback port, without
// persistence, and waits until it answers PING.
func StartRedis(ctx context.Context, logDir string) (*Process, string, error) {
	return StartRedisWith(ctx, logDir, RedisOptions{})
}

// RedisOptions start a redis-server.
type RedisOptions struct {
	// Name is the process name in logs (logDir/Name.log); default "redis".
	Name string
	// Dir, when set, turns the append-only file on in that directory,
	// fsynced once a second, as docker-compose.yml runs Redis in
	// production for navad. Empty: no persistence at all.
	Dir string
}

// StartRedisWith runs Debian's redis-server on a free loopback port as o
// says and waits until it answers PING.
func StartRedisWith(ctx context.Context, logDir string, o RedisOptions) (*Process, string, error) {
	if o.Name == "" {
		o.Name = "redis"
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", fmt.Errorf("start redis: redis-server not found (apt-get install -y redis-server): %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--protected-mode", "no", "--daemonize", "no", "--maxmemory-policy", "noeviction"}
	if o.Dir != "" {
		dir, err := filepath.Abs(o.Dir)
		if err != nil {
			return nil, "", fmt.Errorf("start redis: %w", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, "", fmt.Errorf("start redis: %w", err)
		}
		args = append(args, "--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec")
	} else {
		args = append(args, "--appendonly", "no")
	}
	p, err := Start(ctx, o.Name, addr, logDir, bin, args, nil)
	if err != nil {
		return nil, "", err
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if err := p.WaitFor(ctx, 30*time.Second, func(ctx context.Context) error { return rdb.Ping(ctx).Err() }); err != nil {
		_ = p.Stop()
		return nil, "", err
	}
	return p, addr, nil
}

// CopyDataDir copies the embedded store of src into a new directory dst, so
// that a second navad process can open it (bbolt locks its file).
func CopyDataDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o750); err != nil {
		return fmt.Errorf("copy data dir: %w", err)
	}
	in, err := os.Open(filepath.Join(src, boltstore.FileName))
	if err != nil {
		return fmt.Errorf("copy data dir: %w", err)
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(dst, boltstore.FileName))
	if err != nil {
		return fmt.Errorf("copy data dir: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy data dir: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy data dir: %w", err)
	}
	return nil
}

// EveningZone returns a fixed-offset zone (Etc/GMT±N) in which the time now
// reads hour o'clock, give or take the minutes. Schedules in the generated
// world are those of Japan's evening peak; a benchmark that runs at 06:00 in
// Tokyo would otherwise find the restaurants closed. Servers read every
// schedule in their business time zone, so giving them this zone puts them
// in the evening whatever the wall clock says.
func EveningZone(now time.Time, hour int) string {
	off := ((hour-now.UTC().Hour())%24 + 24) % 24
	if off > 14 {
		off -= 24
	}
	if off == 0 {
		return "Etc/GMT"
	}
	// POSIX-style names: Etc/GMT-9 is nine hours ahead of UTC.
	return fmt.Sprintf("Etc/GMT%+d", -off)
}
