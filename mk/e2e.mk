# End-to-end tests (issues #3, #8, #9): the real vigil binary against
# Mosquitto (plain, TLS + passwords, client certificates), broker restarts
# and upstream outages, hot reload, the crash test on Mosquitto, the embedded
# broker with TLS and users, the HTTP token, and the web UI in headless
# Chromium. Needs Debian's mosquitto and chromium (.ci/run installs them).
# Every broker is started by the tests on free 127.0.0.1 ports.
# Screenshots and the full log go to out/e2e/ (a CI artifact).
#   make e2e E2E_RUN=TestBrowser      one test only
GO          ?= go
E2E_RUN     ?= .
E2E_TIMEOUT ?= 8m
E2E_OUT     := out/e2e

.PHONY: e2e
e2e:
	@mkdir -p $(E2E_OUT)
	@for t in mosquitto mosquitto_passwd chromium; do \
	  command -v $$t >/dev/null 2>&1 || [ -x /usr/sbin/$$t ] || [ -x /usr/bin/$$t ] || \
	    { echo "e2e: FAIL: $$t not found (apt-get install mosquitto chromium)" >&2; exit 1; }; \
	done
	@echo "== e2e: $(GO) test -tags e2e ./e2e  (full log: $(E2E_OUT)/test.log)"
	@start=$$(date +%s); \
	{ GO="$(GO)" $(GO) vet -tags e2e ./e2e && \
	  GO="$(GO)" $(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -v -run '$(E2E_RUN)' ./e2e; \
	  echo $$? > $(E2E_OUT)/rc; } 2>&1 | tee $(E2E_OUT)/test.log; \
	rc=$$(cat $(E2E_OUT)/rc 2>/dev/null || echo 1); took=$$(( $$(date +%s) - start )); \
	if [ "$$rc" = 0 ]; then \
	  echo "== e2e: PASS in $${took}s (screenshots: $$(ls $(E2E_OUT)/*.png 2>/dev/null | tr '\n' ' '))"; \
	else \
	  echo "== e2e: FAIL in $${took}s:"; grep -E -- '--- FAIL|^FAIL|panic:' $(E2E_OUT)/test.log | sed 's/^/   /'; \
	  exit 1; \
	fi
