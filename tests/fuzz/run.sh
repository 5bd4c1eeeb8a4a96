#!/usr/bin/env bash
# Runs the libFuzzer targets built by `make fuzz` (build/fuzz/bin/fuzz_<name>), each for
# FUZZ_SECONDS (default 30) over a working corpus in build/fuzz/corpus/<name> seeded from
# tests/fuzz/corpus/<name> (the committed seeds are only read). Prints one line per target and
# "fuzz: N passed, N failed". A failing input is saved as build/fuzz/artifacts/<name>-crash-*;
# replay it with build/fuzz/bin/fuzz_<name> <file>. Usage: tests/fuzz/run.sh NAME...
set -u
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-30}

# The longest input worth trying per target: what its parser sees in practice, small
# enough that a run of seconds explores it.
max_len() {
    case $1 in
        timefmt) echo 64 ;;
        import_split) echo 1024 ;;
        import) echo 2048 ;;
        *) echo 4096 ;;               # jsonscan, normalize
    esac
}

# fuzz_import keeps a store: in memory when /dev/shm is there, so fsync costs nothing.
tmp_parent=/dev/shm
[ -d "$tmp_parent" ] && [ -w "$tmp_parent" ] || tmp_parent=${TMPDIR:-/tmp}
tmp=$(mktemp -d "$tmp_parent/segd-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

mkdir -p build/fuzz/artifacts build/fuzz/logs
passed=0 failed=0
for name in "$@"; do
    bin=build/fuzz/bin/fuzz_$name
    seeds=tests/fuzz/corpus/$name
    work=build/fuzz/corpus/$name
    log=build/fuzz/logs/$name.log
    mkdir -p "$work"
    dict=()
    [ -f "tests/fuzz/fuzz_$name.dict" ] && dict=(-dict="tests/fuzz/fuzz_$name.dict")
    start=$SECONDS
    if TMPDIR=$tmp "$bin" -max_total_time="$seconds" -max_len="$(max_len "$name")" -timeout=20 \
        -print_final_stats=1 -artifact_prefix="build/fuzz/artifacts/$name-" "${dict[@]}" \
        "$work" "$seeds" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        echo "ok   $name: ${runs:-?} inputs in $((SECONDS - start)) s"
        passed=$((passed + 1))
    else
        echo "FAIL $name (log: $log)"
        pattern='ERROR|check failed|^  |runtime error|SUMMARY|Test unit written| in .* (src|tests)/'
        if grep -qE "$pattern" "$log"; then grep -E "$pattern" "$log" | head -30; else tail -n 15 "$log"; fi
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
