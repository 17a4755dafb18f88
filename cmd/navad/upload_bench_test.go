package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/demo"
	"github.com/navad/navad/internal/storage/storagetest"
)

// BenchmarkUpload100kDuringDecisions is the measurement behind the "Store
// uploads" section of BENCHMARKS.md. The real navad binary, with the demo
// world, answers decisions around Shinjuku and Shibuya at a constant 1,000
// a second (vegeta, on the same machine) while an advertiser imports
// 100,000 stores with `navad import stores`. It reports how long the import
// took, the server's CPU time meanwhile, its peak memory, decision latency
// before and during the import, and the slowest of the stock writes another
// advertiser sends every 100 ms meanwhile. Two store lists: "chain", a brand's
// stores where shops are with three to six of its ten products
// (storagetest.MakeChainStores), and "spread", 2,000 products spread evenly
// over the country (storagetest.MakeStores), the worst case for the index.
//
//	go test -run '^$' -bench Upload100k -benchtime 1x ./cmd/navad/
func BenchmarkUpload100kDuringDecisions(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "navad")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatalf("build: %v", err)
	}
	for _, ds := range []struct {
		name   string
		stores func() []campaigns.Store
	}{
		{"chain", func() []campaigns.Store { return storagetest.MakeChainStores(100_000) }},
		{"spread", func() []campaigns.Store { return storagetest.MakeStores(100_000) }},
	} {
		b.Run(ds.name, func(b *testing.B) {
			file := filepath.Join(b.TempDir(), "stores.csv")
			var csv bytes.Buffer
			csv.WriteString("id,name,address,lat,lng,products\n")
			for _, s := range ds.stores() {
				fmt.Fprintf(&csv, "%s,%s,%s,%v,%v,%s\n", s.ID, s.Name, s.Address, s.Lat, s.Lng, strings.Join(s.Products, "|"))
			}
			if err := os.WriteFile(file, csv.Bytes(), 0o600); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				measureUpload(b, bin, file)
			}
		})
	}
}

func measureUpload(b *testing.B, bin, file string) {
	addr := freeAddr(b)
	srv := exec.Command(bin, "--demo", "--addr", addr, "--data-dir", b.TempDir(), "--max-body-bytes", strconv.Itoa(256<<20))
	srv.Env = append(os.Environ(), "NAVAD_ADMIN_KEY="+adminKey, "NAVAD_LOG_LEVEL=warn")
	srv.Stdout, srv.Stderr = io.Discard, os.Stderr
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	base := "http://" + addr
	waitReady(b, base)
	advKey := createAdvertiser(b, base)

	// Decisions: fixes in the demo area, queries that trigger the demo
	// campaigns and one that triggers nothing.
	r := rand.New(rand.NewPCG(1, 1))
	hdr := http.Header{"Authorization": {"Bearer " + demo.PublisherKey}}
	var targets []vegeta.Target
	for range 256 {
		v := url.Values{
			"lat": {fmt.Sprintf("%.5f", demo.Area.MinLat+r.Float64()*(demo.Area.MaxLat-demo.Area.MinLat))},
			"lng": {fmt.Sprintf("%.5f", demo.Area.MinLng+r.Float64()*(demo.Area.MaxLng-demo.Area.MinLng))},
			"q":   {[]string{"居酒屋", "缶コーヒー", "歯医者", "焼き鳥"}[r.IntN(4)]},
		}
		targets = append(targets, vegeta.Target{Method: "GET", URL: base + "/v1/ads?" + v.Encode(), Header: hdr})
	}
	attacker := vegeta.NewAttacker(vegeta.Timeout(10*time.Second), vegeta.KeepAlive(true))
	results := attacker.Attack(vegeta.NewStaticTargeter(targets...), vegeta.Rate{Freq: 1000, Per: time.Second}, 0, "decisions")
	var (
		mu  sync.Mutex
		all []*vegeta.Result
		wg  sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for res := range results {
			mu.Lock()
			all = append(all, res)
			mu.Unlock()
		}
	}()

	// Another advertiser's point-of-sale feed, every 100 ms during the import.
	posKey := createAdvertiser(b, base)
	put(b, base+"/v1/stores", posKey, `[{"id":"pos-1","name":"POS","lat":35.69,"lng":139.70,"products":["x"]}]`)
	stopPOS, posDone := make(chan struct{}), make(chan []time.Duration)
	time.Sleep(5 * time.Second) // the baseline
	cpu0 := cpuTime(b, srv.Process.Pid)
	start := time.Now()
	go func() {
		var took []time.Duration
		for i := 0; ; i++ {
			select {
			case <-stopPOS:
				posDone <- took
				return
			case <-time.After(100 * time.Millisecond):
			}
			t0 := time.Now()
			put(b, base+"/v1/inventory", posKey, fmt.Sprintf(`[{"store_id":"pos-1","product_id":"x","in_stock":%v}]`, i%2 == 0))
			took = append(took, time.Since(t0))
		}
	}()
	var out, errOut bytes.Buffer
	err := run([]string{"import", "stores", "--file", file, "--server", base, "--key", advKey}, env(), &out, &errOut)
	took := time.Since(start)
	cpu := cpuTime(b, srv.Process.Pid) - cpu0
	close(stopPOS)
	pos := <-posDone
	if err != nil {
		b.Fatalf("import: %v\n%s", err, errOut.String())
	}
	time.Sleep(time.Second)
	attacker.Stop()
	wg.Wait()

	var before, during []time.Duration
	failed := 0
	for _, res := range all {
		switch {
		case res.Code != 200:
			failed++
		case res.Timestamp.Before(start):
			before = append(before, res.Latency)
		case res.Timestamp.Before(start.Add(took)):
			during = append(during, res.Latency)
		}
	}
	if failed > 0 || len(during) == 0 {
		b.Fatalf("%d of %d decisions failed; %d during the import", failed, len(all), len(during))
	}
	slices.Sort(before)
	slices.Sort(during)
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	b.ReportMetric(took.Seconds(), "upload-s")
	b.ReportMetric(cpu.Seconds(), "server-cpu-s")
	b.ReportMetric(float64(peakRSS(b, srv.Process.Pid))/(1<<20), "server-peak-MiB")
	b.ReportMetric(ms(pct(before, 50)), "before-p50-ms")
	b.ReportMetric(ms(pct(before, 99)), "before-p99-ms")
	b.ReportMetric(ms(pct(during, 50)), "during-p50-ms")
	b.ReportMetric(ms(pct(during, 99)), "during-p99-ms")
	b.ReportMetric(ms(during[len(during)-1]), "during-max-ms")
	b.ReportMetric(float64(len(during))/took.Seconds(), "during-decisions/s")
	slices.Sort(pos)
	if len(pos) > 0 {
		b.ReportMetric(ms(pos[len(pos)-1]), "stock-write-max-ms")
	}
	b.Logf("%s; %d decisions before, %d during, none failed", strings.TrimSpace(out.String()), len(before), len(during))
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}

func freeAddr(b testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(b testing.TB, base string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("navad did not become ready")
}

func createAdvertiser(b testing.TB, base string) string {
	req, _ := http.NewRequest("POST", base+"/v1/accounts", strings.NewReader(`{"type":"advertiser","name":"Chain"}`))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	i := bytes.Index(body, []byte(`"api_key":"`))
	if resp.StatusCode != 201 || i < 0 {
		b.Fatalf("create advertiser: %d %s", resp.StatusCode, body)
	}
	key := body[i+len(`"api_key":"`):]
	return string(key[:bytes.IndexByte(key, '"')])
}

func put(b testing.TB, url, key, body string) {
	req, _ := http.NewRequest("PUT", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		b.Errorf("PUT %s: %d %s", url, resp.StatusCode, msg)
	}
}

// cpuTime is the user and system CPU time of process pid so far, from
// /proc (Linux; clock ticks of 10 ms, the kernel's USER_HZ).
func cpuTime(b testing.TB, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// peakRSS is the peak resident memory of process pid, in bytes.
func peakRSS(b testing.TB, pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
