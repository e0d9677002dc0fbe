#!/usr/bin/env bash
# conformance.sh — compares nnc's loss and gradients with PyTorch: the shared cases
# (../shared/conformance/cases.py) and nnc's own (tests/torch/cases.py, cnn_cases.py,
# rnn_cases.py, scan_cases.py, slice_cases.py, graph_cases.py: random graphs from a fixed
# seed), the recurrent and scan cases also in f64 against a tolerance of 1e-6.  Needs Debian's
# python3-torch; a development check run before resolving an issue, not part of the
# test suite (PyTorch is no dependency of nnc).
set -eu
cd "$(dirname "$0")/.."
checker=../shared/conformance/check.py
if [ ! -f "$checker" ]; then
    echo "conformance.sh: the specification's checker $checker is not beside this repository" >&2
    echo "(a development checkout has it; the tests of scripts/test.sh need nothing of it)" >&2
    exit 2
fi
bash scripts/build.sh >/dev/null
status=0
for cases in ../shared/conformance/cases.py tests/torch/cases.py tests/torch/cnn_cases.py tests/torch/rnn_cases.py \
             tests/torch/scan_cases.py tests/torch/slice_cases.py tests/torch/graph_cases.py; do
    /usr/bin/python3 "$checker" build/nnc "$cases" || status=1
done
# Recurrent layers, scans, functions, repeat and share= again in double precision, where
# loss and every gradient must agree with PyTorch to 1e-6 (issue 23's bar).
for cases in tests/torch/rnn_cases.py tests/torch/scan_cases.py; do
    NNC=build/nnc NNC_CONFORMANCE_TOL=1e-6 /usr/bin/python3 "$checker" tests/torch/nnc_f64 "$cases" || status=1
done
exit $status
