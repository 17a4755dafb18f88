package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// navadBinary is the navad binary the end-to-end tests start, built once
// for the whole test binary: each build takes seconds.
var navadBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func builtNavad(t *testing.T) string {
	t.Helper()
	b := &navadBinary
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "navad-e2e-")
		if b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "navad")
		cmd := exec.Command("go", "build", "-o", b.path, ".")
		cmd.Stderr = os.Stderr
		b.err = cmd.Run()
	})
	if b.err != nil {
		t.Fatalf("build: %v", b.err)
	}
	return b.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if navadBinary.dir != "" {
		_ = os.RemoveAll(navadBinary.dir)
	}
	os.Exit(code)
}
