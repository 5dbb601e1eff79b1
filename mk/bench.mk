# End-to-end speed with the ten rules of cmd/vigil-load/rules10.yaml
# (results and machine: BENCHMARKS.md). Included by the Makefile, which
# defines GO, LDFLAGS, BENCHCOUNT and the `build` target.
#
#   make bench-e2e                  everything below, BENCHCOUNT (3) times each
#   make bench-e2e E2E_SECONDS=20   longer latency runs
#
# 1. In process, real broker over TCP: throughput with publishers at QoS 0
#    and QoS 1, journal on and off (BenchmarkE2EThroughput), and
#    publish → upstream-alert latency at 5,000 msg/s (BenchmarkE2ELatency),
#    each with vigil subscribing to a broker (ingest=sub) and with vigil's
#    embedded broker ingested in-process (ingest=inproc);
#    VIGIL_E2E_INGEST=sub or inproc runs one.
# 2. The real binaries as subprocesses (cmd/vigil-load): `vigil run` with its
#    embedded broker (in-process ingest), loaded by firmware-sim: throughput as fast as the
#    simulator publishes, then paced at E2E_RATES (1,000 devices, -speed 1:
#    what is processed and what is lost at each offered rate), and RSS with
#    10,000 devices after a warm-up.
# Nothing here asserts a number; the machine is whatever runs it.

E2E_MSGS    ?= 100000
E2E_SECONDS ?= 15
E2E_RSS_DEVICES ?= 10000
# Paced offered rates: each device's interval for 1,000 devices
# (100ms = 10,000 msg/s … 20ms = 50,000 msg/s).
E2E_RATES   ?= 100ms 50ms 33ms 20ms

.PHONY: bench-e2e bench-e2e-go bench-e2e-load bench-e2e-mem
bench-e2e: bench-e2e-go bench-e2e-load

bench-e2e-go:
	$(GO) test -run '^$$' -bench 'E2EThroughput' -benchtime $(E2E_MSGS)x -count $(BENCHCOUNT) ./gateway
	VIGIL_E2E_SECONDS=$(E2E_SECONDS) $(GO) test -run '^$$' -bench 'E2ELatency' -benchtime 1x -count $(BENCHCOUNT) -timeout 30m ./gateway

bench-e2e-load: build
	$(GO) build -trimpath -o bin/firmware-sim ./firmware-sim/cmd/firmware-sim
	@set -e; for q in 0 1; do for j in true false; do for i in $$(seq $(BENCHCOUNT)); do \
	  echo "== vigil-load -mode throughput -qos $$q -journal=$$j ($$i)"; \
	  $(GO) run ./cmd/vigil-load -mode throughput -qos $$q -journal=$$j; \
	done; done; done
	@set -e; for q in 1 0; do for r in $(E2E_RATES); do \
	  echo "== vigil-load -mode throughput -speed 1 -rate $$r -qos $$q"; \
	  $(GO) run ./cmd/vigil-load -mode throughput -speed 1 -sim-duration 10s -devices 1000 -rate $$r -qos $$q; \
	done; done
	@set -e; for i in $$(seq $(BENCHCOUNT)); do \
	  echo "== vigil-load -mode rss -devices $(E2E_RSS_DEVICES) ($$i)"; \
	  $(GO) run ./cmd/vigil-load -mode rss -devices $(E2E_RSS_DEVICES); \
	done

# What the ten rules hold for 10,000 devices after E2E_MINUTES of event time
# (Go heap in use; about a minute of CPU).
E2E_MINUTES ?= 15
bench-e2e-mem:
	VIGIL_E2E_MINUTES=$(E2E_MINUTES) $(GO) test -run '^$$' -bench 'E2EStateMemory10k' -benchtime 1x -timeout 30m ./gateway

# The Pi's budget (issue #17): vigil's CPU, the bytes it writes to disk per
# message and its fsyncs a second, at steady rates through the embedded
# broker and through Mosquitto, with the two rules of
# cmd/vigil-load/rules2.yaml (a filter sent upstream, a per-device 10 s
# average). Each run: 10 s idle, 10 s warm-up, 20 s measured. Needs Debian's
# strace (fsyncs are counted by `strace --seccomp-bpf`) and mosquitto.
#   make bench-budget                     1k, 10k and 50k msg/s, both brokers, QoS 0
#   make bench-budget BUDGET_QOS=1        the same at QoS 1
BUDGET_RATES  ?= 1s 100ms 20ms
BUDGET_INGEST ?= embedded mosquitto
BUDGET_QOS    ?= 0
.PHONY: bench-budget
bench-budget: build
	$(GO) build -trimpath -o bin/firmware-sim ./firmware-sim/cmd/firmware-sim
	$(GO) build -trimpath -o bin/vigil-load ./cmd/vigil-load
	@set -e; for i in $(BUDGET_INGEST); do for r in $(BUDGET_RATES); do \
	  echo "== vigil-load -mode budget -ingest $$i -rate $$r -qos $(BUDGET_QOS)"; \
	  bin/vigil-load -mode budget -rules cmd/vigil-load/rules2.yaml -devices 1000 -rate $$r -qos $(BUDGET_QOS) -ingest $$i -warmup 10s -measure 20s | grep RESULT; \
	done; done
