#!/bin/sh
# bench/run.sh: times nnc's generated trainer for examples/$MODEL.nn against the
# same model in PyTorch (bench/$MODEL.py) on Debian's Fashion-MNIST.  MODEL is
# fashion_mlp (default) or fashion_cnn (bench/run_cnn.sh); images are fed as they are in
# the IDX files, [N, 28, 28], to the model's [784] or [1, 28, 28] input.
#
#   bench/run.sh [THREADS...]          # default: 1 2
#
# For each thread count N it runs nnc's trainer, then the PyTorch script, one after the
# other, both with OPENBLAS_NUM_THREADS=N and OMP_NUM_THREADS=N (PyTorch also gets
# --threads N; both link the same OpenBLAS), the same number of epochs and the same
# seed.  It then prints a table of the median epoch training time (median over all
# epochs, the first one included), the ratio nnc/PyTorch and each final test accuracy.
#
# Environment: MODEL (default fashion_mlp), EPOCHS (default 5 for the MLP, 3 for the CNN), SEED (default 0), PYTHON (default /usr/bin/python3,
# Debian's python3-torch), DATA (default /usr/share/datasets/fashion-mnist),
# BUILD (nnc's CMake build directory; default build/), WORKDIR (where the trainer and
# the CSV logs go; default a fresh temporary directory), TORCH_ENV (extra VAR=VALUE
# settings for the PyTorch runs only, e.g. TORCH_ENV=OMP_WAIT_POLICY=passive, which
# stops PyTorch's spinning OpenMP threads from starving OpenBLAS's; see README.md).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${MODEL:-fashion_mlp}
case $MODEL in fashion_cnn) EPOCHS=${EPOCHS:-3} ;; *) EPOCHS=${EPOCHS:-5} ;; esac
SEED=${SEED:-0}
PYTHON=${PYTHON:-/usr/bin/python3}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
BUILD=${BUILD:-$ROOT/build}
TORCH_ENV=${TORCH_ENV:-}
WORKDIR=${WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/nnc-bench.XXXXXX")}
[ $# -gt 0 ] || set -- 1 2
mkdir -p "$WORKDIR"

for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz \
         t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    [ -r "$DATA/$f" ] || { echo "run.sh: missing $DATA/$f (apt install dataset-fashion-mnist)" >&2; exit 2; }
done
"$PYTHON" -c 'import torch, numpy' 2>/dev/null ||
    { echo "run.sh: $PYTHON cannot import torch and numpy (apt install python3-torch)" >&2; exit 2; }

# Build nnc and its runtime, then the trainer.
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" >/dev/null
log=$(cmake --build "$BUILD" -j2 --target nnc nnr 2>&1) || { printf '%s\n' "$log" >&2; exit 1; }
"$BUILD/nnc" "$ROOT/examples/$MODEL.nn" --exe -o "$WORKDIR/$MODEL"

# median of the `seconds` column (5th) of a CSV log
median() { tail -n +2 "$1" | cut -d, -f5 | sort -g |
           awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
# test accuracy of the last epoch (4th column of the last row)
final_acc() { tail -n 1 "$1" | awk -F, '{printf "%.4f\n", $4}'; }

echo "work directory: $WORKDIR   epochs: $EPOCHS   seed: $SEED${TORCH_ENV:+   PyTorch env: $TORCH_ENV}"
for n in "$@"; do
    echo "== threads $n: nnc"
    OPENBLAS_NUM_THREADS=$n OMP_NUM_THREADS=$n "$WORKDIR/$MODEL" train \
        --train x="$DATA/train-images-idx3-ubyte.gz" --train y="$DATA/train-labels-idx1-ubyte.gz" \
        --test x="$DATA/t10k-images-idx3-ubyte.gz" --test y="$DATA/t10k-labels-idx1-ubyte.gz" \
        --epochs "$EPOCHS" --seed "$SEED" --log "$WORKDIR/nnc-t$n.csv"
    echo "== threads $n: PyTorch"
    env OPENBLAS_NUM_THREADS=$n OMP_NUM_THREADS=$n $TORCH_ENV "$PYTHON" "$ROOT/bench/$MODEL.py" \
        --threads "$n" --epochs "$EPOCHS" --seed "$SEED" --data "$DATA" \
        --log "$WORKDIR/torch-t$n.csv"
done

echo
echo "$MODEL: median epoch training time over all $EPOCHS epochs (first included); seed $SEED${TORCH_ENV:+; PyTorch env: $TORCH_ENV}"
printf '%-8s %14s %14s %10s %10s %10s\n' threads "nnc s/epoch" "torch s/epoch" nnc/torch "nnc acc" "torch acc"
for n in "$@"; do
    a=$(median "$WORKDIR/nnc-t$n.csv"); b=$(median "$WORKDIR/torch-t$n.csv")
    printf '%-8s %14.3f %14.3f %10.2f %10s %10s\n' "$n" "$a" "$b" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN {print a / b}')" \
        "$(final_acc "$WORKDIR/nnc-t$n.csv")" "$(final_acc "$WORKDIR/torch-t$n.csv")"
done
