#!/usr/bin/env bash
# Installs what is missing, builds segd, and runs it on http://127.0.0.1:8080 with its
# data in ./data (demo data is loaded into an empty store). Extra arguments go to segd serve.
set -eu
cd "$(dirname "$0")"
scripts/install-deps.sh build
make -j"$(nproc)" segd
exec make run RUN_ARGS="$*"
