package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/navad/navad/loadtest/apiload"
	"github.com/navad/navad/loadtest/dataset"
)

// TestMain lets run start this test binary as its own servers: run starts
// serve-baseline by executing itself (driver.StartSelf) with the command
// as first argument.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && commands[os.Args[1]].run != nil {
		if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString("navad-load: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunNavadRedis runs the navad-redis target beside the baseline end to
// end on a tiny world: a real redis-server with its append-only file, the
// world written into it through the Redis backend, a real navad built from
// this checkout on it. One publisher's key comes from a keys.json (a world
// loaded with load-api), the others are the generated keys: every request
// must authenticate, and ads must come back, reserved against their caps in
// Redis.
func TestRunNavadRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds navad and starts servers")
	}
	world := []string{"-seed", "7", "-stores", "2000", "-campaigns", "200"}
	w, err := dataset.Generate(dataset.Config{Seed: 7, Stores: 2000, Advertisers: 200, Agencies: 20, Publishers: 5, Products: 2000, Campaigns: 200})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pub := w.Publishers[0].ID
	keysPath := filepath.Join(dir, "keys.json")
	b, _ := json.Marshal(apiload.Keys{IDs: map[string]string{pub: "pub_api"}, Keys: map[string]string{pub: "nvd_from_load_api_0123456789"}})
	if err := os.WriteFile(keysPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	args := append(world, "-targets", "baseline,navad-redis", "-keys", keysPath, "-kinds", "trigger",
		"-duration", "1s", "-warmup", "300ms", "-rounds", "1", "-requests", "500", "-connections", "8", "-out", out)
	gcPercent := debug.SetGCPercent(100)
	debug.SetGCPercent(gcPercent)
	forced := func() uint64 {
		m := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
		metrics.Read(m)
		return m[0].Value.Uint64()
	}
	forced0 := forced()
	var stdout, stderr bytes.Buffer
	if err := cmdRun(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	// The driver collected before it set its limit and again before each
	// target's round, so that its own collection never lands in one.
	if n := forced() - forced0; n < 1+2 {
		t.Errorf("%d forced collections in the run, want at least 3 (one, then one a target and round)", n)
	}

	var rep report
	if b, err := os.ReadFile(filepath.Join(out, "report.json")); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"baseline", "navad-redis"} {
		rs := rep.Results[name]
		if len(rs) != 1 {
			t.Fatalf("%s: %d results, want 1\n%s", name, len(rs), stderr.String())
		}
		if r := rs[0]; r.OK == 0 || r.OK != r.Requests {
			t.Fatalf("%s: %d of %d requests ok; first error %q\n%s", name, r.OK, r.Requests, r.FirstError, stderr.String())
		}
	}
	// Redis's CPU is split out, but over a measured window of 1 s it may
	// be under /proc's 10 ms resolution: with budget leases it does little
	// after the warm-up.
	if r := rep.Results["navad-redis"][0]; r.WithAds == 0 || r.ServerCPUPerReq <= 0 ||
		r.ProcessCPUPerReq["navad-redis"] <= 0 || r.ProcessCPUPerReq["redis-navad"] < 0 || len(r.ProcessCPUPerReq) != 2 {
		t.Errorf("navad-redis: %d of %d decisions with ads, server CPU %v/req (%v)", r.WithAds, r.OK, r.ServerCPUPerReq, r.ProcessCPUPerReq)
	}
	if info, err := os.ReadFile(filepath.Join(out, "redis-navad-info.txt")); err != nil || !strings.Contains(string(info), "cmdstat_evalsha:") {
		t.Errorf("Redis INFO after the run: %v, no cmdstat_evalsha", err)
	}
	if len(rep.Navad) != 1 || rep.Navad[0].Name != "navad-redis" || rep.Navad[0].RedisAfter == nil || rep.Navad[0].RedisLoad <= 0 || rep.Navad[0].Ready <= 0 {
		t.Errorf("navad entries %+v", rep.Navad)
	}
	// The driver collected only at its heap limit while it measured, and
	// gave the collector back its default afterwards.
	if rep.DriverHeap != 2048 {
		t.Errorf("driver heap %d MiB, want the default 2048", rep.DriverHeap)
	}
	if now := debug.SetGCPercent(gcPercent); now != gcPercent {
		t.Errorf("GC percent %d after the run, want %d restored", now, gcPercent)
	}
	for _, want := range []string{"navad-redis / baseline throughput:", "navad-redis: the world written into Redis in", "navad-redis server CPU/req by process: navad-redis ",
		"driver collecting at 2048 MiB", "navad-redis tail (median round): ", "(95% interval "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout.String())
		}
	}
	// navad ran on Redis, not on an embedded store...
	logs, err := os.ReadFile(filepath.Join(out, "navad-redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), `"store":"redis redis://127.0.0.1:`) {
		t.Errorf("navad-redis did not serve from Redis:\n%s", logs)
	}
	// ...and reserved the ads it served against their caps there: the
	// reservations are in Redis's append-only file.
	var aof []byte
	err = filepath.WalkDir(filepath.Join(out, "redis-navad"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		aof = append(aof, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(aof, []byte("{navad:caps:")) {
		t.Errorf("no cap reservation in Redis's append-only file (%d bytes)", len(aof))
	}
	t.Logf("%s", stderr.String())
}

// TestRunNavadBNeedsItsBinary: the navad-b target (an A/B test of two
// builds) is refused without its binary, and the binary without the
// target, before anything starts.
func TestRunNavadBNeedsItsBinary(t *testing.T) {
	for _, args := range [][]string{
		{"-targets", "baseline,navad,navad-b"},
		{"-targets", "baseline,navad", "-navad-b-bin", "/bin/true"},
	} {
		var stdout, stderr bytes.Buffer
		err := cmdRun(context.Background(), append(args, "-out", t.TempDir()), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "navad-b") {
			t.Errorf("run %v: error %v, want one about navad-b", args, err)
		}
	}
}
