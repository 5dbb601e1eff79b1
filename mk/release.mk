# Releases (issue #9): binaries, .deb packages, and proof that both work on
# the architectures we ship. Included by the Makefile, which defines GO,
# VERSION, COMMIT and LDFLAGS.
#
#   make release    cgo-free, -trimpath binaries for linux/arm64, arm v7, arm v6
#                   and amd64 in dist/, with SHA256SUMS and a size table
#   make deb        .deb packages for arm64, armhf and amd64 in dist/ (nfpm)
#   make test-arm   the tests of ARM_PKGS under qemu user emulation, for
#                   arm64 and arm v7, and the arm v6 binary on an emulated ARM1176
#   make test-deb   installs the amd64 .deb into a throwaway root and checks it
#
# Needs: Debian packages qemu-user-static (test-arm), dpkg and systemd
# (test-deb: dpkg --root, systemd-sysusers, systemctl, systemd-analyze).

DIST          ?= dist
NFPM_VERSION  ?= v2.44.0
NFPM          ?= bin/tools/nfpm
QEMU_ARM64    ?= qemu-aarch64-static
QEMU_ARM      ?= qemu-arm-static
# Every package with tests except the browser test (ui needs chromium) and
# the crash test in package main (-short skips it: it kills real processes
# for minutes). ui's other tests run: -short skips only its browser test.
ARM_PKGS      ?= ./event/ ./ingest/ ./rules/ ./engine/ ./windows/ ./cep/ ./detect/ \
                 ./store/ ./broker/ ./conn/ ./gateway/ ./ui/ ./firmware-sim/ ./fleet/ ./internal/... .
# -trimpath as in the release builds, so the packages both compile (SQLite
# above all) come from the build cache the second time.
ARM_TESTFLAGS ?= -short -count=1 -timeout 15m -trimpath

# Timestamps inside the packages: the commit's, so a commit always builds
# the same bytes.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH

# A Debian version from VERSION (git describe): see packaging/debversion.sh.
DEB_VERSION ?= $(shell packaging/debversion.sh "$(VERSION)" "$(COMMIT)" "$(SOURCE_DATE_EPOCH)")

# GOOS/GOARCH/GOARM of each release binary, and its name in dist/.
RELEASE_BINS := $(DIST)/vigil_linux_arm64 $(DIST)/vigil_linux_armv7 \
                $(DIST)/vigil_linux_armv6 $(DIST)/vigil_linux_amd64
goarch = $(word 1,$(subst v, ,$(patsubst $(DIST)/vigil_linux_%,%,$1)))
goarm  = $(word 2,$(subst v, ,$(patsubst $(DIST)/vigil_linux_%,%,$1)))

.PHONY: release release-bins deb test-arm test-deb FORCE

release: release-bins
	@cd $(DIST) && sha256sum $(notdir $(RELEASE_BINS)) > SHA256SUMS
	@echo "vigil $(VERSION) (commit $(COMMIT)), $$($(GO) env GOVERSION)"
	@printf '%-22s %12s %9s %9s\n' binary bytes MiB 'gzip MiB'
	@for f in $(RELEASE_BINS); do \
	  s=$$(stat -c %s $$f); z=$$(gzip -9c $$f | wc -c); \
	  awk -v n=$$(basename $$f) -v s=$$s -v z=$$z \
	    'BEGIN { printf "%-22s %12d %9.1f %9.1f\n", n, s, s/1048576, z/1048576 }'; \
	done

release-bins: $(RELEASE_BINS)

# "arm" builds both v6 and v7 from one GOARCH: the pattern's v-suffix is GOARM.
# -buildvcs=false: the commit is stamped by LDFLAGS, and the bytes must not
# depend on whether a .git directory is present.
$(DIST)/vigil_linux_%: FORCE
	@mkdir -p $(DIST)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(call goarch,$@) GOARM=$(call goarm,$@) \
	  $(GO) build -trimpath -buildvcs=false -ldflags "$(LDFLAGS)" -o $@ .

# nfpm as a Go tool, pinned, installed outside the module so go.mod stays
# as it is (GOFLAGS cleared: -mod flags do not apply to pkg@version).
$(NFPM):
	GOFLAGS= GOOS= GOARCH= GOARM= GOBIN=$(abspath $(dir $(NFPM))) \
	  $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

# The armhf package carries the arm v6 binary: Raspberry Pi OS's armhf is
# built for ARMv6 (Pi Zero and Pi 1), and a v6 binary runs on every later Pi.
DEBS := $(DIST)/vigil_$(DEB_VERSION)_arm64.deb $(DIST)/vigil_$(DEB_VERSION)_armhf.deb \
        $(DIST)/vigil_$(DEB_VERSION)_amd64.deb

deb: $(DEBS)
	@ls -l $(DEBS)

$(DIST)/vigil_$(DEB_VERSION)_arm64.deb: $(DIST)/vigil_linux_arm64 $(NFPM) FORCE
	sed "s|@BINARY@|$<|" packaging/nfpm.yaml > $(DIST)/nfpm-arm64.yaml
	DEB_ARCH=arm64 DEB_VERSION=$(DEB_VERSION) $(NFPM) package -f $(DIST)/nfpm-arm64.yaml -p deb -t $@
$(DIST)/vigil_$(DEB_VERSION)_armhf.deb: $(DIST)/vigil_linux_armv6 $(NFPM) FORCE
	sed "s|@BINARY@|$<|" packaging/nfpm.yaml > $(DIST)/nfpm-armhf.yaml
	DEB_ARCH=armhf DEB_VERSION=$(DEB_VERSION) $(NFPM) package -f $(DIST)/nfpm-armhf.yaml -p deb -t $@
$(DIST)/vigil_$(DEB_VERSION)_amd64.deb: $(DIST)/vigil_linux_amd64 $(NFPM) FORCE
	sed "s|@BINARY@|$<|" packaging/nfpm.yaml > $(DIST)/nfpm-amd64.yaml
	DEB_ARCH=amd64 DEB_VERSION=$(DEB_VERSION) $(NFPM) package -f $(DIST)/nfpm-amd64.yaml -p deb -t $@

# The test binaries are cross-compiled and run by go test through qemu-user
# (no binfmt_misc needed). arm v7 is where 64-bit atomics must be aligned.
# A failing run is run once more: what this stage is for (alignment, an
# instruction the CPU lacks) fails every time, while emulation, 10-20 times
# slower, has lost a race of the network tests now and then
# (TestRedeliveryAfterReconnect, TestForwarderSetsAsideBadTopic). The native
# run (make test) has no second try.
# Then the v6 release binary runs on an emulated ARM1176 (Pi Zero's CPU):
# qemu refuses any v7-only instruction there.
test-arm: $(DIST)/vigil_linux_armv6
	@command -v $(QEMU_ARM64) >/dev/null && command -v $(QEMU_ARM) >/dev/null || \
	  { echo "test-arm needs $(QEMU_ARM64) and $(QEMU_ARM): apt-get install qemu-user-static"; exit 1; }
	@echo "== linux/arm64 under $(QEMU_ARM64)"
	@s=$$(date +%s); arm() { CGO_ENABLED=0 GOARCH=arm64 $(GO) test $(ARM_TESTFLAGS) -exec $(QEMU_ARM64) $(ARM_PKGS); }; \
	  { arm || { echo "== linux/arm64: failed once under emulation; again"; arm; }; } && \
	  echo "== linux/arm64: PASS in $$(( $$(date +%s) - s ))s"
	@echo "== linux/arm v7 under $(QEMU_ARM)"
	@s=$$(date +%s); arm() { CGO_ENABLED=0 GOARCH=arm GOARM=7 $(GO) test $(ARM_TESTFLAGS) -exec $(QEMU_ARM) $(ARM_PKGS); }; \
	  { arm || { echo "== linux/arm v7: failed once under emulation; again"; arm; }; } && \
	  echo "== linux/arm v7: PASS in $$(( $$(date +%s) - s ))s"
	@echo "== linux/arm v6 binary on an ARM1176"
	QEMU_CPU=arm1176 packaging/smoke.sh "$(QEMU_ARM)" $(DIST)/vigil_linux_armv6

test-deb: $(DIST)/vigil_$(DEB_VERSION)_amd64.deb
	VIGIL_DEB=$(abspath $<) $(GO) test -count=1 -v -run 'TestDeb' ./packaging/
