# vigil — make targets. `make demo` and `make test` are all a newcomer needs.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# A count, not a duration: with -fuzztime 3s, Go 1.26's fuzz coordinator can
# report a spurious "context deadline exceeded" at the deadline on a loaded
# machine (golang/go#75804, fixed in Go 1.27); a count has no deadline.
FUZZTIME ?= 10000x

.PHONY: all build test vet unit race fuzz-smoke demo bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/vigil .

# The whole suite: vet, unit/golden/integration tests (embedded broker over
# TCP, crash tests with kill -9), the race detector over the packages that
# start goroutines, then each fuzz target briefly.
test: vet unit race fuzz-smoke

vet:
	$(GO) vet ./...
	@bad=$$($$($(GO) env GOROOT)/bin/gofmt -l $$(find . -name '*.go' -not -path './out/*')); if [ -n "$$bad" ]; then echo "gofmt would change: $$bad"; exit 1; fi

unit:
	$(GO) test -count=1 -timeout 12m ./...

# The race detector over every package whose code or tests start goroutines
# (the others' tests run in `unit`). In package main the crash tests and the
# live-values and make-demo tests are skipped: they run the real binary, not
# the test's code, and `unit` runs them. Measured on the 2-core CI machine
# (shared, Dec 2026): 3m30s with an empty build cache (every dependency
# compiled with -race), 57s with a warm one; `.ci/run` took ~7 min before.
RACE_PKGS ?= . ./broker ./conn ./engine ./firmware-sim/... ./gateway ./store ./ui
race:
	$(GO) test -race -count=1 -timeout 12m -skip '^(TestCrashRecovery|TestCrashRecoveryInProcess|TestLiveValuesWithStatelessRules|TestMakeDemoCtrlC)$$' $(RACE_PKGS)

# Each fuzz target for $(FUZZTIME) inputs beyond its seed corpus (which `unit` runs).
fuzz-smoke:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10x $$pkg >/tmp/vigil-fuzz.log 2>&1 || { cat /tmp/vigil-fuzz.log; exit 1; }; \
	  done; \
	done

# The binary runs the demo, not `go run`: go run exits 1 when Ctrl-C stops
# it, and make would report that as an error; vigil demo exits 0.
demo: build
	bin/vigil demo

# Speed, measured (numbers and machine in BENCHMARKS.md). End to end through
# a real broker over TCP, the pipeline with the journal on and off, recovery
# and checkpoints, each operator package on one core, then the ten-rule
# end-to-end runs of mk/bench.mk (throughput, latency, RSS; ~10 minutes).
BENCHCOUNT ?= 3
bench:
	$(GO) test -run '^$$' -bench 'EndToEnd' -benchtime 20000x -count $(BENCHCOUNT) ./gateway
	$(GO) test -run '^$$' -bench 'Pipeline' -benchtime 50000x -count $(BENCHCOUNT) ./gateway
	$(GO) test -run '^$$' -bench 'Checkpoint10k|Recovery' -benchtime 3x ./gateway
	$(GO) test -run '^$$' -bench . -benchtime 200000x -cpu 1 ./ingest ./engine
	$(GO) test -run '^$$' -bench 'Pattern3Steps|Absent' -benchtime 1000000x -cpu 1 ./cep
	$(GO) test -run '^$$' -bench 'Methods' -benchtime 1000000x -cpu 1 ./detect
	$(GO) test -run '^$$' -bench 'Sliding1h|Tumbling1m' -benchtime 500000x ./windows
	$(MAKE) bench-e2e

clean:
	rm -rf bin dist out

# eval (detector scores), e2e (Mosquitto, TLS, browser), release/deb/test-arm.
-include mk/*.mk
