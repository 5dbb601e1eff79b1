#!/usr/bin/env bash
# smoke.sh RUNNER BINARY: runs a release binary through RUNNER (a qemu-user
# binary, or "" to run it natively) and checks that it works end to end:
# version, check, every golden replay case byte for byte, and `vigil demo`
# (embedded broker, SQLite, engine, web UI) until its first alert.
# Used by `make test-arm` with QEMU_CPU=arm1176 for the arm v6 binary, which
# makes qemu refuse any instruction a Pi Zero lacks. Run from the repo root.
set -euo pipefail
runner=$1 bin=$2
v() { if [ -n "$runner" ]; then "$runner" "$bin" "$@"; else "$bin" "$@"; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "-- version"
v version | tee "$tmp/version"
grep -q "linux/" "$tmp/version"

echo "-- check"
v check examples/demo-rules.yaml
v check testdata/check/contract.good.yaml

echo "-- replay golden cases"
n=0
for d in testdata/replay/*/; do
	v replay --rules "$d/rules.yaml" "$d/input.jsonl" >"$tmp/got.jsonl" 2>/dev/null
	if ! cmp -s "$tmp/got.jsonl" "$d/want.jsonl"; then
		echo "replay $d differs from want.jsonl:" >&2
		diff "$d/want.jsonl" "$tmp/got.jsonl" >&2 || true
		exit 1
	fi
	n=$((n + 1))
done
echo "$n cases identical"

echo "-- demo until the first alert"
mkdir "$tmp/state"
if [ -n "$runner" ]; then set -- "$runner" "$bin"; else set -- "$bin"; fi
"$@" demo -http 127.0.0.1:0 -listen 127.0.0.1:0 -seed 1 -state "$tmp/state" >"$tmp/demo.out" 2>"$tmp/demo.err" &
pid=$!
for _ in $(seq 90); do
	grep -q "CRITICAL\|WARNING\|INFO" "$tmp/demo.out" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 1
done
kill -INT "$pid" 2>/dev/null || true
rc=0
wait "$pid" || rc=$?
cat "$tmp/demo.out"
if ! grep -q "CRITICAL\|WARNING\|INFO" "$tmp/demo.out"; then
	echo "demo: no alert within 90 s" >&2
	cat "$tmp/demo.err" >&2
	exit 1
fi
if [ "$rc" != 0 ]; then
	echo "demo: exit status $rc after SIGINT" >&2
	cat "$tmp/demo.err" >&2
	exit 1
fi
test -s "$tmp/state/vigil.db" || { echo "demo: no state database" >&2; exit 1; }
echo "ok: $bin"
