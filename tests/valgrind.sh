#!/usr/bin/env bash
# valgrind.sh NNC WORKDIR — nnc and a generated trainer run clean under valgrind.
#
# memcheck (--error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite) over
#   1. nnc compiling examples/fashion_mlp.nn with --exe (the trainer is built with
#      NNC_CFLAGS="-march=x86-64-v2 -g": valgrind cannot run AVX-512 code), and
#   2. that trainer training one epoch on the first 300 Fashion-MNIST test images
#      (a safetensors file written here), saving a checkpoint, then `eval` on it.
# No invalid read or write, no use of uninitialized values, no definite leak.
# Prints PASS/FAIL per run and ends with `N passed, M failed`.
set -u
. "$(dirname "$0")/lib.sh"
show_failure() {   # valgrind's findings first (exit status 9: it found errors), then the end
    echo "    exit status $last_status"
    grep -A12 "Invalid\|uninitialised\|definitely lost\|ERROR SUMMARY" "$1" | head -40 | sed 's/^/    /'
    tail -5 "$1" | sed 's/^/    /'
}
NNC=$(realpath "$1")
WORK=$2
SRC=$(cd "$(dirname "$0")/.." && pwd)
DATA=/usr/share/datasets/fashion-mnist
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
# set, so that the trainer does not run itself again outside valgrind (nnr_threads_passive)
export OMP_WAIT_POLICY=passive

if ! command -v valgrind >/dev/null; then
    echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2
    exit 2
fi
vg="valgrind --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite --quiet"

fashion_safetensors 300 data.safetensors
check "valgrind nnc examples/fashion_mlp.nn --exe" \
    env NNC_CFLAGS="-march=x86-64-v2 -g" $vg "$NNC" "$SRC/examples/fashion_mlp.nn" --exe -o fm
check "valgrind fm train (1 epoch, 300 examples)" \
    $vg ./fm train --train data.safetensors --epochs 1 --save ck.safetensors
check "valgrind fm eval" $vg ./fm eval --load ck.safetensors --test data.safetensors
finish
