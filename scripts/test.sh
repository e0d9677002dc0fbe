#!/usr/bin/env bash
# test.sh — builds everything and runs every test (ctest): CUnit unit tests of the
# compiler passes and the runtime, golden diagnostics and IR dumps, finite-difference
# gradient checks through generated code, and end-to-end runs of the examples.
set -eu
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
