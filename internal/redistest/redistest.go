// Package redistest runs a real redis-server for tests: Debian's binary from
// PATH, on a free loopback port, with its files in a temporary directory, and
// stopped when the test ends. Tests can stop, kill and restart it to play a
// Redis outage. There is no fake: what passes here passes against Redis.
//
// When redis-server is missing the test fails (never skips), naming the
// command that installs it: `make deps`, which `make test` runs first.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process and the directory it keeps its
// append-only file in. Stop, Kill and Start may be called in any order from
// the test's goroutine; the process is gone when the test ends.
type Server struct {
	t       testing.TB
	bin     string
	dir     string
	port    int
	cluster bool
	fsync   string // appendfsync: everysec or always

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	logs *bytes.Buffer
}

// Start runs a redis-server configured as docker-compose.yml runs it in
// production (AOF on, appendfsync everysec, no RDB snapshots) and waits until
// it answers PING. It fails the test when redis-server is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false, "everysec")
}

// StartDurable runs a redis-server like Start but with appendfsync always:
// Redis fsyncs before it answers, so a SIGKILL of the server (Kill) can lose
// nothing it acknowledged. With everysec Redis may postpone even the write
// to the file while a slow fsync runs (and still answer), so a test that
// kills Redis and then counts acknowledged writes needs this.
func StartDurable(t testing.TB) *Server {
	t.Helper()
	return start(t, false, "always")
}

// EachMode runs test as a subtest on each way navad runs on Redis: a
// single node (Start) and a Redis Cluster (StartCluster), each server of
// its own.
func EachMode(t *testing.T, test func(t *testing.T, srv *Server)) {
	for _, m := range []struct {
		name  string
		start func(testing.TB) *Server
	}{{"single node", Start}, {"cluster", StartCluster}} {
		t.Run(m.name, func(t *testing.T) { test(t, m.start(t)) })
	}
}

// StartCluster runs a redis-server in cluster mode that owns all 16,384 hash
// slots: a one-node Redis Cluster. Redis checks slots on every multi-key
// command as a real cluster does (CROSSSLOT), so a backend that passes here
// keeps every atomic operation in one slot.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	s := start(t, true, "everysec")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("redistest: assign slots: %v", err)
	}
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return s
		}
		if ctx.Err() != nil {
			t.Fatalf("redistest: cluster did not come up: %v %q", err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func start(t testing.TB, cluster bool, fsync string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server is not installed (%v); run `make deps` "+
			"(or .ci/deps), which installs Debian's redis-server", err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), cluster: cluster, fsync: fsync}
	t.Cleanup(s.Kill)
	// A free port can be taken between choosing and binding it; try again.
	for attempt := 0; ; attempt++ {
		s.port = freePort(t)
		err := s.launch()
		if err == nil {
			return s
		}
		if attempt == 4 {
			t.Fatalf("redistest: %v", err)
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// launch starts the process on s.port and waits for PING.
func (s *Server) launch() error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--appendonly", "yes",
		"--appendfsync", s.fsync,
		"--save", "",
		"--daemonize", "no",
		"--logfile", "",
		"--loglevel", "warning",
	}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"))
	}
	cmd := exec.Command(s.bin, args...)
	logs := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { // owned by the Server: Kill and Stop wait for done
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done, s.logs = cmd, done, logs
	s.mu.Unlock()

	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server on port %d did not answer PING: %v: %s", s.port, err, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns the URL navad takes in NAVAD_REDIS_URL: redis://host:port for a
// single node, redis+cluster://host:port for a cluster.
func (s *Server) URL() string {
	if s.cluster {
		return "redis+cluster://" + s.Addr()
	}
	return "redis://" + s.Addr()
}

// Dir returns the directory holding the append-only file.
func (s *Server) Dir() string { return s.dir }

// Client returns a plain client for the test's own commands (FLUSHALL,
// inspection), closed when the test ends.
func (s *Server) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	if s.cluster {
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{s.Addr()}})
	} else {
		c = redis.NewClient(&redis.Options{Addr: s.Addr()})
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Flush empties every database: a fresh Redis for the next subtest.
func (s *Server) Flush(t testing.TB) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		t.Fatalf("redistest: flushall: %v", err)
	}
}

// Stop shuts Redis down the way an operator does (SIGTERM: the append-only
// file is flushed and fsynced) and waits for the process to exit.
func (s *Server) Stop() { s.signal(syscall.SIGTERM, 30*time.Second) }

// Kill ends Redis with SIGKILL, as a crash would, and waits for it. Writes
// Redis acknowledged are in its append-only file already (written before
// the reply; fsynced within a second). Safe to call when not running.
func (s *Server) Kill() { s.signal(syscall.SIGKILL, 30*time.Second) }

func (s *Server) signal(sig syscall.Signal, wait time.Duration) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Errorf("redistest: signal redis-server: %v", err)
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused server handles SIGTERM only once it runs
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		s.t.Errorf("redistest: redis-server ignored %v for %v", sig, wait)
	}
}

// Pause stops the Redis process without ending it (SIGSTOP), as a network
// partition or a stalled host looks to a client: connections stay open and
// nothing answers. Resume continues it.
func (s *Server) Pause() { s.signalRunning(syscall.SIGSTOP) }

// Resume continues a paused Redis (SIGCONT).
func (s *Server) Resume() { s.signalRunning(syscall.SIGCONT) }

func (s *Server) signalRunning(sig syscall.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("redistest: %v while not running", sig)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: signal redis-server: %v", err)
	}
}

// Restart starts Redis again on the same port and directory after Stop or
// Kill; it reloads its append-only file, so the data survives.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		s.t.Fatal("redistest: Restart while running; Stop or Kill first")
	}
	// The port was ours a moment ago; another process taking it now would
	// be a rare accident, reported as such.
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart: %v", err)
}
