#!/usr/bin/env bash
# cc_check.sh — fuzzes the front end and checks that every model nnc accepts gives C that
# compiles cleanly: fuzz/run.sh's fuzz_frontend target (libFuzzer, ASan, UBSan) with
# NNC_FUZZ_CC set, so each accepted model's trainer C file and header are compiled with
# gcc -std=c99 and clang -std=c11, both -Wall -Wextra -Werror.  A model whose C does not
# compile stops the run like a crash, its reproducer in build-fuzz/artifacts/fuzz_frontend/.
#
#   bash fuzz/cc_check.sh [SECONDS]        default 1800 (the issue's 30 minutes)
#
# Prints fuzz/run.sh's PASS/FAIL line, then how many accepted models were compiled.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-1800}
B=${FUZZ_BUILD:-$root/build-fuzz}
mkdir -p "$B"
flags="-fopenmp -Wall -Wextra -Werror -I'$root/runtime' -c {} -o /dev/null"
export NNC_FUZZ_CC="gcc -std=c99 $flags && clang -std=c11 $flags"
export NNC_FUZZ_CC_STATS=$B/cc_check.count
rm -f "$NNC_FUZZ_CC_STATS"
bash fuzz/run.sh "$secs" fuzz_frontend
rc=$?
echo "cc_check: $(cat "$NNC_FUZZ_CC_STATS" 2>/dev/null || echo 0) accepted models compiled cleanly by gcc and clang"
exit $rc
