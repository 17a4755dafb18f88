// Command navad-load generates navad's national-scale benchmark world, loads
// it, and measures navad (on its embedded store, or on Redis) against a bare
// gin server and against the naive one-GEOSEARCH-per-request design. BENCHMARKS.md records what it measured.
//
//	navad-load gen      -out DIR              write the world as public-API files
//	navad-load stats                          summarise the world and its searches
//	navad-load load-bolt -data-dir DIR        load the world straight into an embedded store
//	navad-load load-api -url URL -dir DIR     load the files through a running navad's API
//	navad-load decide                         in-process decisions: latency histogram, allocations
//	navad-load jitter                         the machine's own tail under decide's harness
//	navad-load startup  -data-dir DIR         navad's start-up time and memory with the world loaded
//	navad-load run      -data-dir DIR         HTTP load: navad (embedded or on Redis) vs the bare-gin baseline vs naive Redis
//
// serve-baseline and serve-naive run the comparison servers; run starts
// them itself. Every command takes -seed, -stores and -campaigns to size
// the world (the defaults are the national scale of WORKLOAD.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/navad/navad/loadtest/dataset"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "navad-load:", err)
		}
		os.Exit(1)
	}
}

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"gen":            {"write the world as files for the public API", cmdGen},
	"stats":          {"summarise the world and the search mix", cmdStats},
	"load-bolt":      {"load the world straight into an embedded (bbolt) data dir", cmdLoadBolt},
	"load-api":       {"load files written by gen through a running navad's public API", cmdLoadAPI},
	"decide":         {"measure in-process decisions (latency histogram, allocations)", cmdDecide},
	"jitter":         {"measure the machine's own tail: a fixed computation timed as decide times a decision", cmdJitter},
	"startup":        {"measure navad's start-up time and resident memory on a data dir", cmdStartup},
	"run":            {"HTTP load test: navad vs bare gin vs naive Redis GEOSEARCH", cmdRun},
	"serve-baseline": {"serve the bare gin baseline (started by run)", cmdServeBaseline},
	"serve-naive":    {"serve the naive GEOSEARCH design (started by run)", cmdServeNaive},
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || commands[args[0]].run == nil {
		usage(stderr)
		if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			return flag.ErrHelp
		}
		return fmt.Errorf("unknown command %q", args[0])
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return commands[args[0]].run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: navad-load <command> [flags]; commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-15s %s\n", n, commands[n].summary)
	}
}

// worldFlags are the flags that size the world, shared by every command.
type worldFlags struct {
	cfg dataset.Config
}

func (wf *worldFlags) register(fs *flag.FlagSet) {
	wf.cfg = dataset.Default()
	fs.Uint64Var(&wf.cfg.Seed, "seed", wf.cfg.Seed, "random seed of the world")
	fs.IntVar(&wf.cfg.Stores, "stores", wf.cfg.Stores, "stores in the world")
	fs.IntVar(&wf.cfg.Campaigns, "campaigns", wf.cfg.Campaigns, "campaigns in the world")
}

func (wf *worldFlags) generate(stderr io.Writer) (*dataset.World, error) {
	w, err := dataset.Generate(wf.cfg)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "world: seed %d, %d stores, %d campaigns, %d advertisers\n", wf.cfg.Seed, len(w.Stores), len(w.Campaigns), len(w.Advertisers))
	return w, nil
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("navad-load "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return nil
}
