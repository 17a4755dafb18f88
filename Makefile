# navad: the two commands are `make demo` (or `go run ./cmd/navad --demo`)
# and `make test`. `make test` installs what the tests need first.

GO ?= go
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo >/dev/null && [ "$$(id -u)" != 0 ] && echo sudo)

DASHBOARD := internal/dashboard
RACE_SKIP := (/loadtest/(apiload|dataset|inproc|naive)|/internal/demo)$$

.PHONY: test deps vet fuzz demo bench build e2e

## test: install test dependencies, vet, fuzz each parser briefly, then run
## the whole suite twice: plainly, in full (allocation counts are asserted
## here), and under the race detector with -short: the race pass looks for
## data races, so tests that loop over large data volumes run fewer
## iterations there (they ran in full in the first pass), and tests named
## *Allocs, whose counts the detector's instrumentation inflates, run only
## in the first pass. The race pass leaves out the load-test harness's
## world generator and loaders and the demo world's loader (RACE_SKIP):
## their tests build worlds and load the keyword dictionary, which the
## detector slows twentyfold (18 s a test binary), two minutes of CPU for
## code that runs on one goroutine and whose product code is raced in its
## own packages; they run in the first pass. The other test binaries that
## analyse Japanese keywords (seven) read the keyword dictionary from a
## snapshot (NAVAD_DICT_SNAPSHOT, see campaigns/snapshot.go) written by a
## plain run of TestDictionarySnapshot between the passes: loading it from
## kagome's zipped tables takes 13-18 s a binary under the detector, the
## snapshot 2 s. That test, which checks the snapshot against a fresh
## load, is left out of the race pass with the *Allocs tests. So are, by
## -short, the tests that kill -9 or stop a navad binary they build (and
## boltstore's crash test): the binary runs without the detector, so the
## race pass could only run them again. Last, the dashboard's browser test.
test: deps vet fuzz
	$(GO) test -count=1 -timeout 10m ./...
	@snap=$$(mktemp -d) && trap 'rm -rf "$$snap"' EXIT && export NAVAD_DICT_SNAPSHOT="$$snap/dictionary.snap" && set -x && \
	$(GO) test -count=1 -run '^TestDictionarySnapshot$$' ./campaigns && \
	$(GO) test -race -short -count=1 -timeout 15m -skip 'Allocs$$|^TestDictionarySnapshot$$' $$($(GO) list ./... | grep -v -E '$(RACE_SKIP)')
	@$(MAKE) --no-print-directory e2e

## fuzz: run each fuzz target of the parsers for FUZZTIME (seed corpora in
## each package's testdata/fuzz; plain `go test` replays them too). A
## failing input is written to testdata/fuzz/<target>/: commit it with the
## fix. Go fuzzes one target per invocation, hence the loop. The tracking
## token parser is fuzzed as FuzzVerify. The budget is a count of
## executions, not a duration: with a duration, Go 1.26's fuzz coordinator
## can report a spurious "context deadline exceeded" when its deadline
## races a busy worker (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME ?= 20000x
FUZZ_TARGETS := \
	./internal/httpapi:FuzzDecisionQuery \
	./internal/httpapi:FuzzDecisionJSON \
	./campaigns:FuzzReadStoresCSV \
	./campaigns:FuzzReadStoresJSON \
	./campaigns:FuzzReadStoresGeoJSON \
	./campaigns:FuzzNormalize \
	./campaigns:FuzzHoursFromOSM \
	./internal/tracking:FuzzVerify
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg > /tmp/navad-fuzz.$$$$.log 2>&1 || { cat /tmp/navad-fuzz.$$$$.log; rm -f /tmp/navad-fuzz.$$$$.log; exit 1; }; \
		rm -f /tmp/navad-fuzz.$$$$.log; \
	done

## deps: install what the tests need when it is missing (Debian packages)
deps:
	@./.ci/deps

## e2e: the dashboard in a real browser: navad --demo, Debian's Chromium
## headless, driven by playwright-core from npm (installed when missing).
## Screenshots and the downloaded CSV land in $(DASHBOARD)/e2e/out.
e2e: deps $(DASHBOARD)/node_modules/.package-lock.json
	$(GO) build -o bin/navad ./cmd/navad
	cd $(DASHBOARD) && NAVAD_BIN=$(CURDIR)/bin/navad node --test --test-timeout=300000 e2e/dashboard.test.mjs

$(DASHBOARD)/node_modules/.package-lock.json: $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json
	cd $(DASHBOARD) && npm ci --no-audit --no-fund

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

## demo: run the server with the demo world on the embedded store
demo:
	$(GO) run ./cmd/navad --demo --log-format text

## build: build the navad binary into bin/
build:
	$(GO) build -o bin/navad ./cmd/navad

## bench: reproduce the headline numbers of BENCHMARKS.md (heavy: about 35 minutes
## and 5 GB of memory on 2 cores; never part of make test). The flat-out run
## has twenty short rounds: the mean of its per-round ratios, with a 95%
## interval, is the figure to judge navad against the baseline by.
LOAD := bin/navad-load
DATA := loadtest/out/data
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./internal/serving/ ./geo/ ./campaigns/ ./internal/tracking/ ./internal/httpapi/
	$(GO) test -run '^$$' -bench DecideNational -benchtime 200000x -timeout 30m ./loadtest/inproc/
	$(GO) build -o $(LOAD) ./loadtest/cmd/navad-load
	$(LOAD) decide -duration 20s -digest
	$(LOAD) decide -duration 20s -caps=false
	$(LOAD) decide -duration 20s -compare-yield
	$(LOAD) jitter -duration 10s
	test -f $(DATA)/navad.db || $(LOAD) load-bolt -data-dir $(DATA)
	$(LOAD) startup -data-dir $(DATA) -runs 3
	$(LOAD) run -data-dir $(DATA) -targets baseline,navad,naive -duration 6s -warmup 1s -rounds 20 -out loadtest/out/flat
	$(LOAD) run -data-dir $(DATA) -targets baseline,navad -rate 5000 -duration 30s -rounds 3 -out loadtest/out/rate5000
	GOMEMLIMIT=1300MiB $(LOAD) run -data-dir $(DATA) -targets navad -rate 4000 -duration 30s -rounds 2 -out loadtest/out/memlimit
	$(LOAD) run -data-dir $(DATA) -targets navad,navad-x2 -duration 15s -rounds 3 -out loadtest/out/x2
	$(LOAD) run -data-dir $(DATA) -targets baseline,navad,navad-redis -fresh-users -duration 15s -rounds 3 -out loadtest/out/redis
