#!/bin/sh
# bench/stack_matmul.sh: the speed of a stack of products in generated code (`@` on
# [B=64, 4, 64, 32] @ [B, 4, 32, 64], bench/stack_matmul.nn) against one GEMM of the same
# multiply-adds.  It builds nnc, generates the model's C, builds bench/stack_matmul.c
# around it and prints GFLOP/s for each (see that file), at THREADS threads (default 1).
#
#   bench/stack_matmul.sh              # a few seconds
#   THREADS=2 bench/stack_matmul.sh
#
# Environment: THREADS, REPS (default 200), CC (default cc), WORKDIR (default a fresh
# temporary directory).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${THREADS:-1}
REPS=${REPS:-200}
CC=${CC:-cc}
WORKDIR=${WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/nnc-stack.XXXXXX")}
mkdir -p "$WORKDIR"

log=$(bash "$ROOT/scripts/build.sh" 2>&1) || { printf '%s\n' "$log" >&2; exit 1; }
CBLAS_INC=$(sed -n 's/^CBLAS_INCLUDE_DIR:[A-Z]*=//p' "$ROOT/build/CMakeCache.txt")
"$ROOT/build/nnc" "$ROOT/bench/stack_matmul.nn" -o "$WORKDIR/stack_matmul_model.c"
# the flags `nnc --exe` compiles a trainer with (README.md, "Building a trainer")
"$CC" -std=c11 -O3 -march=native -fno-math-errno -fopenmp -D_POSIX_C_SOURCE=200809L \
    -I"$ROOT/runtime" -I"$WORKDIR" ${CBLAS_INC:+-I"$CBLAS_INC"} -DMODEL_C='"stack_matmul_model.c"' \
    "$ROOT/bench/stack_matmul.c" -o "$WORKDIR/stack_matmul" "$ROOT/build/libnnr.a" -lopenblas -ljansson -lz -lm
OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS "$WORKDIR/stack_matmul" "$REPS"
