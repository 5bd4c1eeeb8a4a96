#!/usr/bin/env bash
# Runs every test runner of segd and prints one aggregated line "N passed, N failed".
# Arguments: the cmocka unit-test binaries; --unit-only skips the end-to-end tests.
# Unit tests run under ASan/UBSan; the end-to-end tests start the sanitizer build of segd.
set -u
cd "$(dirname "$0")/.."
unit_only=0
if [ "${1:-}" = "--unit-only" ]; then unit_only=1; shift; fi

passed=0 failed=0
log_dir=build/test-logs
mkdir -p "$log_dir"

for bin in "$@"; do
    name=$(basename "$bin")
    out="$log_dir/$name.log"
    if "$bin" >"$out" 2>&1; then status=0; else status=$?; fi
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
    p=${p:-0}; f=${f:-0}
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed or sanitizer report
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then echo "FAIL $name (log: $out)"; tail -40 "$out"; else echo "ok   $name: $p passed"; fi
done

if [ "$unit_only" -eq 0 ] && ls tests/e2e/*.test.mjs >/dev/null 2>&1; then
    out="$log_dir/e2e.log"
    export SEGD_BIN="$PWD/build/asan/segd"
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
    if node --test --test-reporter=tap tests/e2e/*.test.mjs >"$out" 2>&1; then status=0; else status=$?; fi
    p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$out" | tail -1)
    f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$out" | tail -1)
    p=${p:-0}; f=${f:-0}
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then echo "FAIL e2e (log: $out)"; grep -B2 -A30 '^not ok' "$out" | head -150; else echo "ok   e2e: $p passed"; fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
