# navad: the two commands are `make demo` (or `go run ./cmd/navad --demo`)
# and `make test`. `make test` installs what the tests need first.

GO ?= go
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo >/dev/null && [ "$$(id -u)" != 0 ] && echo sudo)

.PHONY: test deps vet demo bench build

## test: install test dependencies, then vet and run the whole suite with the race detector
test: deps vet
	$(GO) test -race -count=1 -timeout 15m ./...

## deps: install what the tests need when it is missing (Debian packages)
deps:
	@./.ci/deps

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

## demo: run the server with the demo world on the embedded store
demo:
	$(GO) run ./cmd/navad --demo --log-format text

## build: build the navad binary into bin/
build:
	$(GO) build -o bin/navad ./cmd/navad

## bench: reproduce the headline numbers of BENCHMARKS.md (heavy: about 25 minutes
## and 5 GB of memory on 2 cores; never part of make test)
LOAD := bin/navad-load
DATA := loadtest/out/data
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./internal/serving/ ./geo/ ./campaigns/
	$(GO) test -run '^$$' -bench DecideNational -benchtime 200000x -timeout 30m ./loadtest/inproc/
	$(GO) build -o $(LOAD) ./loadtest/cmd/navad-load
	test -f $(DATA)/navad.db || $(LOAD) load-bolt -data-dir $(DATA)
	$(LOAD) startup -data-dir $(DATA) -runs 3
	$(LOAD) run -data-dir $(DATA) -targets baseline,navad,naive -duration 15s -rounds 3 -out loadtest/out/flat
	$(LOAD) run -data-dir $(DATA) -targets navad -rate 5000 -duration 30s -rounds 3 -out loadtest/out/rate5000
	$(LOAD) run -data-dir $(DATA) -targets navad,navad-x2 -duration 15s -rounds 3 -out loadtest/out/x2
