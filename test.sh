#!/usr/bin/env bash
# Installs what the tests need and is missing, then `make test`: the sanitizer build and
# every test, ending with one line "N passed, N failed".
set -eu
cd "$(dirname "$0")"
scripts/install-deps.sh test
exec make -j"$(nproc)" test
