#!/usr/bin/env bash
# conformance.sh — compares nnc's loss and gradients with PyTorch on the shared cases
# (../shared/conformance).  Needs Debian's python3-torch; a development check run
# before resolving an issue, not part of the test suite (PyTorch is no dependency).
set -eu
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
exec /usr/bin/python3 ../shared/conformance/check.py build/nnc ../shared/conformance/cases.py "$@"
