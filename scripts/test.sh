#!/usr/bin/env bash
# test.sh — builds everything and runs every test (ctest): CUnit unit tests of the
# compiler passes and the runtime, golden diagnostics and IR dumps, finite-difference
# gradient checks through generated code, optimizers against PyTorch's references, an
# interrupted-and-resumed training run, and end-to-end runs of the examples.
#
#   scripts/test.sh              the normal build (./build)
#   scripts/test.sh --sanitize   the same suite built with AddressSanitizer and
#                                UndefinedBehaviorSanitizer (./build-asan), generated
#                                trainers included (through NNC_CFLAGS)
set -eu
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--sanitize" ]; then
    shift
    bash scripts/deps.sh
    flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="$flags" >/dev/null
    cmake --build build-asan -j"$(nproc)"
    cd build-asan
    export NNC_CFLAGS="$flags -g -O1" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    exec ctest --output-on-failure -j"$(nproc)" "$@"
fi
bash scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
