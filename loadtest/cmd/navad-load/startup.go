package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/navad/navad/loadtest/driver"
)

func cmdStartup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("startup", stderr)
	dataDir := fs.String("data-dir", "loadtest/out/data", "embedded data dir holding the world (see load-bolt)")
	runs := fs.Int("runs", 3, "starts to measure; the median is reported")
	bin := fs.String("navad-bin", "", "navad binary (default: build ./cmd/navad into -out)")
	out := fs.String("out", "loadtest/out/startup", "directory for logs and the binary")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if *bin == "" {
		mod, err := driver.ModuleDir(ctx)
		if err != nil {
			return err
		}
		b, err := filepath.Abs(filepath.Join(*out, "navad"))
		if err != nil {
			return err
		}
		if err := driver.BuildNavad(ctx, mod, b, false); err != nil {
			return err
		}
		*bin = b
	}
	fmt.Fprintf(stdout, "navad start-up on %s (%s), load %s\n", *dataDir, dataSize(*dataDir), driver.LoadAverage())
	var ready, index []time.Duration
	var rss []uint64
	for i := range *runs {
		np, err := driver.StartNavad(ctx, driver.NavadOptions{Bin: *bin, Name: fmt.Sprintf("navad-start-%d", i+1), DataDir: *dataDir, LogDir: *out})
		if err != nil {
			return err
		}
		mem, _ := np.Memory()
		cpu, _ := np.CPUTime()
		stopErr := np.Stop()
		fmt.Fprintf(stdout, "  run %d: ready in %v (index loaded in %v), %v CPU; RSS %d MB (%d MB anonymous, %d MB of mapped file; peak %d MB); load %s\n",
			i+1, np.Ready.Round(time.Millisecond), np.IndexLoadTime(), cpu, mem.RSS>>20, mem.Anon>>20, mem.File>>20, mem.Peak>>20, driver.LoadAverage())
		if stopErr != nil {
			return stopErr
		}
		ready, index, rss = append(ready, np.Ready), append(index, np.IndexLoadTime()), append(rss, mem.RSS)
	}
	slices.Sort(ready)
	slices.Sort(index)
	slices.Sort(rss)
	m := len(ready) / 2
	fmt.Fprintf(stdout, "median: ready in %v, index loaded in %v, RSS %d MB\n", ready[m].Round(time.Millisecond), index[m], rss[m]>>20)
	return nil
}

func dataSize(dir string) string {
	fi, err := os.Stat(filepath.Join(dir, "navad.db"))
	if err != nil {
		return "no navad.db"
	}
	return fmt.Sprintf("%d MB", fi.Size()>>20)
}
