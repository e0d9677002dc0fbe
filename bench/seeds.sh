#!/bin/sh
# bench/seeds.sh: final test accuracy of examples/fashion_mlp.nn over several seeds, for
# nnc's trainer and for PyTorch (bench/fashion_mlp.py) with the same glorot init, and
# for PyTorch with its own default nn.Linear init.  Answers "does nnc train as well as
# PyTorch?", where one seed alone cannot (seed-to-seed spread is about half a point).
#
#   bench/seeds.sh [SEEDS...]          # default: 0 1 2 3 4
#
# Environment: EPOCHS (default 5), THREADS (default 1; sets OPENBLAS_NUM_THREADS,
# OMP_NUM_THREADS and --threads), PYTHON, DATA, BUILD, WORKDIR as in bench/run.sh,
# TORCH_INIT_SEEDS (seeds for the PyTorch-default-init runs; default: the same seeds).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EPOCHS=${EPOCHS:-5}
THREADS=${THREADS:-1}
PYTHON=${PYTHON:-/usr/bin/python3}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
BUILD=${BUILD:-$ROOT/build}
WORKDIR=${WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/nnc-seeds.XXXXXX")}
[ $# -gt 0 ] || set -- 0 1 2 3 4
TORCH_INIT_SEEDS=${TORCH_INIT_SEEDS:-$*}
mkdir -p "$WORKDIR"
export OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS"

[ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" >/dev/null
log=$(cmake --build "$BUILD" -j2 --target nnc nnr 2>&1) || { printf '%s\n' "$log" >&2; exit 1; }
"$BUILD/nnc" "$ROOT/examples/fashion_mlp.nn" --exe -o "$WORKDIR/fashion_mlp"

final_acc() { tail -n 1 "$1" | awk -F, '{printf "%.4f\n", $4}'; }
# mean and sample standard deviation of the numbers on stdin
stats() { awk '{s+=$1; q+=$1*$1; n++} END {m=s/n; v=(n>1)?(q-n*m*m)/(n-1):0; if (v<0) v=0;
                printf "mean %.4f  sd %.4f  n %d", m, sqrt(v), n}'; }

echo "work directory: $WORKDIR   epochs: $EPOCHS   threads: $THREADS"
for s in "$@"; do
    "$WORKDIR/fashion_mlp" train \
        --train x="$DATA/train-images-idx3-ubyte.gz" --train y="$DATA/train-labels-idx1-ubyte.gz" \
        --test x="$DATA/t10k-images-idx3-ubyte.gz" --test y="$DATA/t10k-labels-idx1-ubyte.gz" \
        --epochs "$EPOCHS" --seed "$s" --log "$WORKDIR/nnc-s$s.csv" >/dev/null
    "$PYTHON" "$ROOT/bench/fashion_mlp.py" --threads "$THREADS" --epochs "$EPOCHS" \
        --seed "$s" --data "$DATA" --log "$WORKDIR/torch-s$s.csv" >/dev/null
    echo "seed $s: nnc $(final_acc "$WORKDIR/nnc-s$s.csv")  torch(glorot) $(final_acc "$WORKDIR/torch-s$s.csv")"
done
for s in $TORCH_INIT_SEEDS; do
    "$PYTHON" "$ROOT/bench/fashion_mlp.py" --threads "$THREADS" --epochs "$EPOCHS" \
        --seed "$s" --data "$DATA" --init pytorch --log "$WORKDIR/torchinit-s$s.csv" >/dev/null
    echo "seed $s: torch(pytorch init) $(final_acc "$WORKDIR/torchinit-s$s.csv")"
done

echo
printf '%-22s' "seed"; for s in "$@"; do printf '%8s' "$s"; done; echo
printf '%-22s' "nnc"; for s in "$@"; do printf '%8s' "$(final_acc "$WORKDIR/nnc-s$s.csv")"; done
echo "   $(for s in "$@"; do final_acc "$WORKDIR/nnc-s$s.csv"; done | stats)"
printf '%-22s' "torch, glorot init"; for s in "$@"; do printf '%8s' "$(final_acc "$WORKDIR/torch-s$s.csv")"; done
echo "   $(for s in "$@"; do final_acc "$WORKDIR/torch-s$s.csv"; done | stats)"
printf '%-22s' "seed"; for s in $TORCH_INIT_SEEDS; do printf '%8s' "$s"; done; echo
printf '%-22s' "torch, pytorch init"; for s in $TORCH_INIT_SEEDS; do printf '%8s' "$(final_acc "$WORKDIR/torchinit-s$s.csv")"; done
echo "   $(for s in $TORCH_INIT_SEEDS; do final_acc "$WORKDIR/torchinit-s$s.csv"; done | stats)"
