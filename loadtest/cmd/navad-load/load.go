package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/loadtest/apiload"
	"github.com/navad/navad/loadtest/dataset"
)

func cmdGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gen", stderr)
	var wf worldFlags
	wf.register(fs)
	out := fs.String("out", "loadtest/out/files", "directory to write")
	format := fs.String("format", "json", "store list format: json (with opening hours) or csv (the API's CSV columns: no hours)")
	if err := parse(fs, args); err != nil {
		return err
	}
	start := time.Now()
	w, err := wf.generate(stderr)
	if err != nil {
		return err
	}
	m, err := dataset.WriteFiles(*out, w, dataset.Format(*format))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s in %v: %d accounts, %d store files, %d campaign files, %d stock files\n",
		*out, time.Since(start).Round(time.Millisecond), len(m.Accounts), len(m.Stores), len(m.Campaigns), len(m.Stock))
	fmt.Fprintf(stdout, "load it: navad-load load-api -url http://127.0.0.1:8080 -admin-key $NAVAD_ADMIN_KEY -dir %s\n", *out)
	return nil
}

func cmdStats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("stats", stderr)
	var wf worldFlags
	wf.register(fs)
	n := fs.Int("requests", 100_000, "searches to draw for the mix figures")
	if err := parse(fs, args); err != nil {
		return err
	}
	start := time.Now()
	w, err := wf.generate(stderr)
	if err != nil {
		return err
	}
	gen := time.Since(start)
	s := w.Stats()
	fmt.Fprintf(stdout, "generated in %v; fingerprint %s\n", gen.Round(time.Millisecond), w.Fingerprint())
	fmt.Fprintf(stdout, "stores %d (largest advertiser %d, smallest %d; %d within 800 m of Shinjuku station)\n",
		s.Stores, s.LargestAdvertiser, s.SmallestAdvertiser, s.StoresNearShinjuku)
	fmt.Fprintf(stdout, "advertisers %d, agencies %d, publishers %d, products %d, store-products %d, out of stock %d\n",
		s.Advertisers, s.Agencies, s.Publishers, s.Products, s.StoreProducts, s.OutOfStock)
	fmt.Fprintf(stdout, "campaigns %d (%d active); widest covers %d stores\n", s.Campaigns, s.ActiveCampaigns, s.LargestCampaignStores)
	fmt.Fprintf(stdout, "keywords bid on by the most campaigns:")
	for _, k := range s.TopKeywords(10) {
		fmt.Fprintf(stdout, " %s %d,", k.Keyword, k.Campaigns)
	}
	fmt.Fprintln(stdout)
	reqs := w.Requests(*n, 1)
	kinds := map[dataset.Kind]int{}
	for _, r := range reqs {
		kinds[r.Kind]++
	}
	fmt.Fprintf(stdout, "searches: %d drawn; %.1f%% trigger no campaign; families: trigger %d, neutral %d, blocked %d\n",
		len(reqs), 100*(1-w.TriggerShare(reqs)), kinds[dataset.Trigger], kinds[dataset.Neutral], kinds[dataset.Blocked])
	return nil
}

func cmdLoadBolt(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("load-bolt", stderr)
	var wf worldFlags
	wf.register(fs)
	dir := fs.String("data-dir", "loadtest/out/data", "embedded data dir to create (must not hold a navad.db yet)")
	if err := parse(fs, args); err != nil {
		return err
	}
	return loadBolt(ctx, &wf, *dir, stdout, stderr)
}

func loadBolt(ctx context.Context, wf *worldFlags, dir string, stdout, stderr io.Writer) error {
	if _, err := os.Stat(filepath.Join(dir, boltstore.FileName)); err == nil {
		return fmt.Errorf("%s already holds a store: remove it first", dir)
	}
	w, err := wf.generate(stderr)
	if err != nil {
		return err
	}
	st, err := boltstore.Open(dir)
	if err != nil {
		return err
	}
	start := time.Now()
	err = dataset.LoadCatalog(ctx, st, w, func(s string) {
		fmt.Fprintf(stderr, "  %v: %s\n", time.Since(start).Round(time.Millisecond), s)
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fi, _ := os.Stat(filepath.Join(dir, boltstore.FileName))
	fmt.Fprintf(stdout, "loaded %s in %v (%d MB); admin key %s, publisher key %s\n",
		dir, time.Since(start).Round(time.Millisecond), fi.Size()>>20, dataset.AdminKey, w.Key(w.Publishers[0].ID))
	return nil
}

func cmdLoadAPI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("load-api", stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "base URL of a running navad")
	key := fs.String("admin-key", os.Getenv("NAVAD_ADMIN_KEY"), "the server's admin key (default $NAVAD_ADMIN_KEY)")
	dir := fs.String("dir", "loadtest/out/files", "directory written by gen")
	par := fs.Int("parallel", 2, "uploads at once")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *key == "" {
		return fmt.Errorf("an admin key is required (-admin-key or NAVAD_ADMIN_KEY)")
	}
	start := time.Now()
	keys, err := apiload.Load(ctx, *url, *key, *dir, apiload.Options{
		Parallel: *par,
		Progress: func(s string) { fmt.Fprintf(stderr, "  %v: %s\n", time.Since(start).Round(time.Millisecond), s) },
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "loaded %s into %s in %v; %d accounts, keys in %s\n",
		*dir, *url, time.Since(start).Round(time.Millisecond), len(keys.IDs), filepath.Join(*dir, "keys.json"))
	return nil
}
