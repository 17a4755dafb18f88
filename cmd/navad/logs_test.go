package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Bytes returns a copy of what was written.
func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// TestLogFormats: logs are JSON lines by default and logfmt-style text
// with --log-format text; either way the admin key never appears.
func TestLogFormats(t *testing.T) {
	tests := []struct {
		name string
		args []string
		line func(string) bool
	}{
		{"json by default", nil, func(l string) bool { return json.Valid([]byte(l)) }},
		{"text on request", []string{"--log-format", "text"}, func(l string) bool { return strings.HasPrefix(l, "time=") && strings.Contains(l, " msg=") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs lockedBuffer
			m := NewMain(&bytes.Buffer{}, &logs)
			args := append([]string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-level", "debug"}, tt.args...)
			if err := m.ParseFlags(args, env("NAVAD_ADMIN_KEY", adminKey)); err != nil {
				t.Fatal(err)
			}
			if err := m.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			c := client{t, "http://" + m.Addr()}
			c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "publisher", "name": "Navi"})
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			out := logs.String()
			sc := bufio.NewScanner(strings.NewReader(out))
			n := 0
			for sc.Scan() {
				n++
				if !tt.line(sc.Text()) {
					t.Errorf("line not in the format: %s", sc.Text())
				}
			}
			if n < 3 || !strings.Contains(out, "request_id") {
				t.Errorf("expected start, access and shutdown lines:\n%s", out)
			}
			if strings.Contains(out, adminKey) {
				t.Errorf("the log holds the admin key")
			}
		})
	}
}

// TestHugePagesLogged: once the index is loaded navad moves it into huge
// pages, on its own goroutine, and Close waits for that to finish and log;
// with --huge-pages=false it does not try.
func TestHugePagesLogged(t *testing.T) {
	for _, on := range []bool{true, false} {
		var logs lockedBuffer
		m := NewMain(&bytes.Buffer{}, &logs)
		args := []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--huge-pages=" + strconv.FormatBool(on)}
		if err := m.ParseFlags(args, env("NAVAD_ADMIN_KEY", adminKey)); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		out := logs.String()
		tried := strings.Contains(out, `"msg":"index in huge pages"`) || strings.Contains(out, `"msg":"huge pages not used"`)
		if tried != on {
			t.Errorf("--huge-pages=%v: tried %v; logs:\n%s", on, tried, out)
		}
	}
}
