#!/bin/sh
# bench/mlp_step.sh: where one training step of examples/fashion_mlp.nn goes, next to
# the least any float32 trainer using this OpenBLAS can take for its parts.  It builds
# nnc, generates the model's C, builds bench/mlp_step.c around it and bench/gemm_bound.c,
# then, at one thread (or THREADS):
#   - mlp_step: the trainer's epoch loop on Fashion-MNIST's 60,000 training images,
#     each step's parts timed (gather, forward, backward, update), the last of EPOCHS
#     epochs reported, and the update's floor (a square root and a division per
#     parameter, nothing else);
#   - gemm_bound --passes forward: the forward products alone; --passes all: the
#     GEMM-only bound (every product of backprop, dense).
# It prints microseconds per step.  With PYTORCH_S=seconds (PyTorch's epoch time from
# bench/run.sh or bench/bench.sh) it also prints the step that 0.33x PyTorch's epoch
# allows and what of it is left after the forward products and the update's floor.
#
#   bench/mlp_step.sh                  # about 20 s
#   PYTORCH_S=1.594 bench/mlp_step.sh
#
# Environment: EPOCHS (default 3), THREADS (default 1), DATA (default
# /usr/share/datasets/fashion-mnist), CC (default cc), WORKDIR (default a fresh
# temporary directory).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EPOCHS=${EPOCHS:-3}
THREADS=${THREADS:-1}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
CC=${CC:-cc}
WORKDIR=${WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/nnc-step.XXXXXX")}
mkdir -p "$WORKDIR"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz; do
    [ -r "$DATA/$f" ] || { echo "mlp_step.sh: missing $DATA/$f (apt install dataset-fashion-mnist)" >&2; exit 2; }
done

log=$(bash "$ROOT/scripts/build.sh" 2>&1) || { printf '%s\n' "$log" >&2; exit 1; }
CBLAS_INC=$(sed -n 's/^CBLAS_INCLUDE_DIR:[A-Z]*=//p' "$ROOT/build/CMakeCache.txt")
"$ROOT/build/nnc" "$ROOT/examples/fashion_mlp.nn" -o "$WORKDIR/fashion_mlp.c"
# the flags `nnc --exe` compiles a trainer with (README.md, "Building a trainer")
"$CC" -std=c11 -O3 -march=native -fno-math-errno -fopenmp -D_POSIX_C_SOURCE=200809L \
    -I"$ROOT/runtime" -I"$WORKDIR" ${CBLAS_INC:+-I"$CBLAS_INC"} -DMODEL_C='"fashion_mlp.c"' \
    "$ROOT/bench/mlp_step.c" -o "$WORKDIR/mlp_step" "$ROOT/build/libnnr.a" -lopenblas -ljansson -lz -lm
"$CC" -std=c11 -O2 ${CBLAS_INC:+-I"$CBLAS_INC"} "$ROOT/bench/gemm_bound.c" -o "$WORKDIR/gemm_bound" -lopenblas

export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
"$WORKDIR/mlp_step" "$DATA/train-images-idx3-ubyte.gz" "$DATA/train-labels-idx1-ubyte.gz" "$EPOCHS" \
    | tee "$WORKDIR/step.out"
for p in forward all; do
    "$WORKDIR/gemm_bound" --layers 784,256,128,10 --batch 64 --examples 60000 --epochs "$EPOCHS" \
        --passes $p > "$WORKDIR/bound-$p.out"
done

# gemm_bound's median epoch over its 938 steps, in microseconds per step
bound() { awk '/^seconds_per_epoch/ {printf "%.1f", $2 / 938 * 1e6}' "$WORKDIR/bound-$1.out"; }
part() { awk -v k="$1" '$1 == "part" && $2 == k {print $3}' "$WORKDIR/step.out"; }
echo
echo "fashion_mlp, $THREADS thread(s), microseconds per step of 64 images (938 steps an epoch)"
printf '%-44s %9s\n' "nnc: gather the batch" "$(part gather)" \
    "nnc: forward pass" "$(part forward)" \
    "nnc: backward pass" "$(part backward)" \
    "nnc: update (Adam)" "$(part update)" \
    "nnc: the step" "$(part step)" \
    "floor: the forward products (OpenBLAS)" "$(bound forward)" \
    "floor: the update (one sqrt, one division)" "$(part update_floor)" \
    "GEMM-only bound: every product, dense" "$(bound all)"
if [ -n "${PYTORCH_S:-}" ]; then
    awk -v t="$PYTORCH_S" -v f="$(bound forward)" -v u="$(part update_floor)" 'BEGIN {
        s = 0.33 * t / 938 * 1e6
        printf "%-44s %9.1f\n", "0.33x PyTorch'"'"'s " t " s epoch, a step", s
        printf "%-44s %9.1f\n", "  left for the backward pass and the data", s - f - u }'
fi
