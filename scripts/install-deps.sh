#!/usr/bin/env bash
# Installs what segd needs and is missing, on Debian 12, as root or through sudo.
# Usage: scripts/install-deps.sh build|test|fuzz
#   build: make, a C compiler, pkg-config and the -dev libraries segd links
#   test:  build's, plus cmocka and Node.js (from Debian when no node is installed)
#   fuzz:  build's, plus clang and its libFuzzer runtime (`make fuzz`)
# Checks before installing (command -v, dpkg -s) so a machine that already has a tool,
# such as a Node.js from another source, keeps it: `apt-get install npm` would conflict.
set -eu
what=${1:-build}

need=()
command -v make >/dev/null 2>&1 || need+=(make)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
for pkg in libmicrohttpd-dev libcjson-dev libutf8proc-dev libroaring-dev libsqlite3-dev \
           libsodium-dev libcurl4-openssl-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "$what" = test ]; then
    dpkg -s libcmocka-dev >/dev/null 2>&1 || need+=(libcmocka-dev)
    command -v node >/dev/null 2>&1 || need+=(nodejs)
fi
if [ "$what" = fuzz ]; then
    command -v clang >/dev/null 2>&1 || need+=(clang)
    # clang only recommends its runtime libraries (libclang_rt.fuzzer among them)
    dpkg -s libclang-rt-dev >/dev/null 2>&1 || need+=(libclang-rt-dev)
fi

if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "installing: ${need[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "error: need root or sudo to install ${need[*]}" >&2; exit 1; }
    sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
