#!/usr/bin/env bash
# conformance.sh — compares nnc's loss and gradients with PyTorch's, with the project's
# own checker (tests/torch/check.py) on the project's own cases: tests/torch/cases.py,
# cnn_cases.py, rnn_cases.py, scan_cases.py, slice_cases.py, graph_cases.py (random
# graphs from a fixed seed) and attention_cases.py; the recurrent, scan and attention
# cases again in f64, where loss and every gradient must agree to 1e-6.  A development check run before resolving an issue,
# not part of the test suite: it needs Debian's python3-torch, which nnc does not.
#
#   NNC_BUILD=DIR        the build directory to use (default build; configured and
#                        built here, nnc and nnr only, when needed)
#   NNC_JOBS=N           cases checked at once (default: the number of CPUs)
#   NNC_EXTRA_CASES=...  more case files, space-separated, in the same format (default:
#                        the specification's cases, ../shared/conformance/cases.py, when a
#                        development checkout has them beside the repository; a clone
#                        does not, and runs without them)
# Exit status: 0 every case passed, 1 a case failed, 2 something needed is missing.
set -eu
cd "$(dirname "$0")/.."
build=${NNC_BUILD:-build}
jobs=${NNC_JOBS:-$(nproc)}
# The extras: a file named in NNC_EXTRA_CASES must exist; the default one is optional.
extras=""
for cases in ${NNC_EXTRA_CASES-../shared/conformance/cases.py}; do
    if [ -f "$cases" ]; then
        extras="$extras $cases"
    elif [ -n "${NNC_EXTRA_CASES+set}" ]; then
        echo "conformance.sh: NNC_EXTRA_CASES names $cases, which does not exist" >&2
        exit 2
    fi
done
if ! /usr/bin/python3 -c 'import numpy, torch' 2>/dev/null; then
    echo "conformance.sh: needs PyTorch and numpy for /usr/bin/python3: apt-get install python3-torch" >&2
    exit 2
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
    bash scripts/deps.sh
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target nnc nnr >/dev/null

check() { /usr/bin/python3 tests/torch/check.py -j "$jobs" "$@"; }
failed=""
for cases in tests/torch/cases.py tests/torch/cnn_cases.py tests/torch/rnn_cases.py \
             tests/torch/scan_cases.py tests/torch/slice_cases.py tests/torch/graph_cases.py \
             tests/torch/attention_cases.py; do
    check "$build/nnc" "$cases" || failed="$failed $cases"
done
# Recurrent layers, scans, functions, repeat, share= and attention again in double precision.
for cases in tests/torch/rnn_cases.py tests/torch/scan_cases.py tests/torch/attention_cases.py; do
    check --dtype f64 --tol 1e-6 "$build/nnc" "$cases" || failed="$failed $cases(f64)"
done
for cases in $extras; do
    check "$build/nnc" "$cases" || failed="$failed $cases"
done
if [ -n "$failed" ]; then
    echo "conformance.sh: failures in:$failed" >&2
    exit 1
fi
echo "conformance.sh: every case passed"
