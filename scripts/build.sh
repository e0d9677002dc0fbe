#!/usr/bin/env bash
# build.sh — configures and builds nnc, its runtime and its tests in ./build.
set -eu
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
