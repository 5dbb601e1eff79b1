# Detector evaluation: scores every detect method on the NAB subset (and, once
# wired, the simulator's ground truth) and rewrites docs/detectors.md.
# NAB lives next to the repository in CI; override with `make eval NAB=...`.
NAB ?= ../shared/nab

.PHONY: eval
eval:
	$(GO) run ./cmd/vigil-eval -nab $(NAB) -out docs/detectors.md
