package driver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a server under test, run as a child process so that it has
// its own runtime, heap and scheduler, as in production.
type Process struct {
	Name    string
	Addr    string // host:port it listens on
	LogPath string
	// Ready is how long the process took from exec to answering its
	// readiness URL with 200.
	Ready time.Duration

	cmd     *exec.Cmd
	log     *os.File
	started time.Time
	done    chan error
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start runs bin with args and extra environment, logging stdout and
// stderr to logDir/name.log. It does not wait for readiness (see
// WaitReady). The process is stopped by Stop, or killed if ctx ends first.
func Start(ctx context.Context, name, addr, logDir, bin string, args, env []string) (*Process, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a ^C to the driver reaches it only through Stop
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	p := &Process{Name: name, Addr: addr, LogPath: logPath, cmd: cmd, log: f, done: make(chan error, 1)}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.done <- cmd.Wait() }() // owned by p: Stop waits for it
	return p, nil
}

// PID returns the process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// WaitReady polls url until it answers 200, the process exits, or timeout
// passes, and records the time from exec to ready.
func (p *Process) WaitReady(ctx context.Context, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	return p.WaitFor(ctx, timeout, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// WaitFor calls probe every 20 ms until it returns nil, the process exits,
// or timeout passes, and records the time from exec to ready.
func (p *Process) WaitFor(ctx context.Context, timeout time.Duration, probe func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		if probe(ctx) == nil {
			p.Ready = time.Since(p.started)
			return nil
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited before it was ready (%v); see %s", p.Name, err, p.LogPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v; see %s", p.Name, timeout, p.LogPath)
		}
	}
}

// Stop asks the process to shut down (SIGTERM), waits up to 15 s, then
// kills it. It returns nil when the process exited by the signal.
func (p *Process) Stop() error {
	defer p.log.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == -1 {
			return nil // ended by the signal
		}
		return err
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop in 15s: killed", p.Name)
	}
}

// Memory is a process's resident memory, from /proc, in bytes: VmRSS and
// VmHWM (its peak), and VmRSS split into anonymous memory (the Go heap and
// runtime) and mapped files (for navad, the pages of the bbolt file it has
// read, which the kernel may drop and read again).
type Memory struct {
	RSS, Peak, Anon, File uint64
}

// Memory reads the process's current and peak resident set size.
func (p *Process) Memory() (Memory, error) {
	return ReadMemory(p.PID())
}

// ReadMemory reads VmRSS and VmHWM of a process.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("read memory: %w", err)
	}
	var m Memory
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = n << 10
		case "VmHWM":
			m.Peak = n << 10
		case "RssAnon":
			m.Anon = n << 10
		case "RssFile":
			m.File = n << 10
		}
	}
	return m, nil
}

// CPUTime returns the user and system CPU time the process and the
// children it waited for have used so far, from /proc/pid/stat.
func (p *Process) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID()))
	if err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, errors.New("read cpu time: short stat line")
	}
	// utime and stime, then cutime and cstime: the children the process
	// waited for, such as the fork in which Redis rewrites its
	// append-only file (left out, a rewrite during a round went uncounted).
	var ticks uint64
	for _, k := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseUint(f[k], 10, 64)
		ticks += v
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ticks) * time.Second / clkTck, nil
}

// LogField returns the value of field in the first JSON log line whose msg
// is msg, or "" (navad logs "index loaded" with "took").
func (p *Process) LogField(msg, field string) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != msg {
			continue
		}
		switch v := line[field].(type) {
		case nil:
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		default:
			return fmt.Sprint(v)
		}
	}
	return ""
}
