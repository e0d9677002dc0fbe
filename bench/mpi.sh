#!/usr/bin/env bash
# mpi.sh — data-parallel training of the four bench models (bench/README.md, "The suite")
# under mpirun, against one process: the epoch time of
#   A  1 rank  x 1 thread   (`nnc M.nn --exe --mpi`, mpirun -np 1)
#   B  2 ranks x 1 thread   (the same program, mpirun -np 2: each rank half of every batch)
#   C  1 rank  x 2 threads  (the plain trainer, OPENBLAS_NUM_THREADS=2)
# alternated A B C in each of ROUNDS rounds, so that a busy moment of the shared machine
# falls on all three; the table gives min and median of B/A and B/C per model, the share
# of B's epoch spent summing the gradients (the trainer's closing `ranks:` line: the sum
# and any wait for the slower rank), what the sums alone cost (bench/allreduce.c: an
# MPI_Allreduce of the model's gradient block on 2 ranks, times the steps of an epoch:
# what overlapping them with the backward pass could save at most), and writes costs.csv (model, gradient bytes, global batch, 1-rank step seconds) for
# bench/cost_model.py, which docs/distributed.md's cost model is computed with.
#
#   bench/mpi.sh                         # all four models, 3 rounds; about 10 minutes
#   MODELS="mlp cnn" ROUNDS=5 bench/mpi.sh
#   NTRAIN=60000 bench/mpi.sh            # the whole training set (default: the first 12000)
#
# Knobs: MODELS, ROUNDS (3), NTRAIN (12000 Fashion-MNIST images), CHARLM_WORDS (1500 words
# of text for the LSTM), WORKDIR (default a new temporary directory), SKIP_BUILD=1.
set -eu -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODELS=${MODELS:-mlp cnn wide lstm}
ROUNDS=${ROUNDS:-3}
NTRAIN=${NTRAIN:-12000}
DATA=/usr/share/datasets/fashion-mnist
NNC=$ROOT/build/nnc
export CHARLM_WORDS=${CHARLM_WORDS:-1500} CHARLM_TEST=${CHARLM_TEST:-200}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1   # a root shell (CI, containers)
die() { echo "mpi.sh: $*" >&2; exit 1; }
command -v mpirun >/dev/null || die "mpirun not found (apt-get install openmpi-bin libopenmpi-dev, or scripts/deps.sh)"
WORKDIR=${WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/nnc-mpi.XXXXXX")}
mkdir -p "$WORKDIR"/{bin,logs}
WORKDIR=$(cd "$WORKDIR" && pwd)
echo "mpi.sh: work directory $WORKDIR; models $MODELS; $ROUNDS rounds"
[ "${SKIP_BUILD:-0}" = 1 ] || bash "$ROOT/scripts/build.sh" >"$WORKDIR/logs/build.log" 2>&1 ||
    die "scripts/build.sh failed: $WORKDIR/logs/build.log"

mpicc -O2 "$ROOT/bench/allreduce.c" -o "$WORKDIR/bin/allreduce" || die "mpicc failed on bench/allreduce.c"
python3 "$ROOT/bench/idx_head.py" "$DATA" "$WORKDIR/data" "$NTRAIN" 1000 >"$WORKDIR/logs/data.log"
case " $MODELS " in *" lstm "*)
    env NNC="$NNC" CHARLM_WORK="$WORKDIR/charlm" CHARLM_TEXT_ONLY=1 bash "$ROOT/examples/charlm/run.sh" \
        >"$WORKDIR/logs/charlm.log" 2>&1 || die "examples/charlm/run.sh failed" ;;
esac
source_of() { case $1 in mlp) echo examples/fashion_mlp.nn ;; cnn) echo examples/fashion_cnn.nn ;;
                         wide) echo bench/wide_mlp.nn ;; lstm) echo examples/charlm/charlm.nn ;;
                         *) die "unknown model '$1' (mlp cnn wide lstm)" ;; esac; }
data_of() {
    if [ "$1" = lstm ]; then echo "--text $WORKDIR/charlm/words.txt"
    else echo "--train x=$WORKDIR/data/train-images-idx3-ubyte.gz --train y=$WORKDIR/data/train-labels-idx1-ubyte.gz"; fi
}
# the `seconds` column of a --log CSV's one row
secs() { tail -n 1 "$1" | cut -d, -f5; }

echo "model,config,round,seconds,comm_share" >"$WORKDIR/runs.csv"
echo "model,grad_bytes,batch,step_seconds" >"$WORKDIR/costs.csv"
echo "model,allreduce_us,steps" >"$WORKDIR/sums.csv"
for m in $MODELS; do
    src=$ROOT/$(source_of "$m")
    (cd "$(dirname "$src")" && "$NNC" "$(basename "$src")" --exe -o "$WORKDIR/bin/$m" &&
        "$NNC" "$(basename "$src")" --exe --mpi -o "$WORKDIR/bin/$m-mpi") >"$WORKDIR/logs/$m-build.log" 2>&1 ||
        die "nnc failed on $src: $WORKDIR/logs/$m-build.log"
    read -ra data <<<"$(data_of "$m")"
    for r in $(seq "$ROUNDS"); do
        for cfg in A B C; do
            log=$WORKDIR/logs/$m-$cfg-$r
            case $cfg in
            A) env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 mpirun -np 1 "$WORKDIR/bin/$m-mpi" train "${data[@]}" --epochs 1 --log "$log.csv" ;;
            B) env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 mpirun -np 2 --bind-to core "$WORKDIR/bin/$m-mpi" train "${data[@]}" --epochs 1 --log "$log.csv" ;;
            C) env OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 "$WORKDIR/bin/$m" train "${data[@]}" --epochs 1 --log "$log.csv" ;;
            esac >"$log.out" 2>&1 || die "$m $cfg failed: $log.out"
            share=$(sed -n 's/^ranks: summing.*(\([0-9.]*\)%)$/\1/p' "$log.out")
            echo "$m,$cfg,$r,$(secs "$log.csv"),${share:-}" >>"$WORKDIR/runs.csv"
            echo "$m $cfg round $r: $(secs "$log.csv") s${share:+ (gradient sums $share%)}"
        done
    done
    # the cost model's inputs: the gradient block's bytes (f32), batch, 1-rank step time
    params=$(sed -n 's/^#define [A-Z0-9_]*_PARAMS \([0-9]*\) .*/\1/p' "$WORKDIR/bin/$m.h")
    batch=$(sed -n 's/^#define [A-Z0-9_]*_BATCH \([0-9]*\) .*/\1/p' "$WORKDIR/bin/$m.h")
    n=$(grep -o 'training on [0-9]*' "$WORKDIR/logs/$m-A-1.out" | grep -o '[0-9]*$')
    steps=$(((n + batch - 1) / batch))
    best=$(awk -F, -v m="$m" '$1 == m && $2 == "A" {print $4}' "$WORKDIR/runs.csv" | sort -g | head -1)
    us=$(mpirun -np 2 "$WORKDIR/bin/allreduce" "$params" 500 | sed -n 's/.*: \([0-9.]*\) us per.*/\1/p')
    echo "$m: one allreduce of the $params-element gradient block on 2 ranks: $us us, $steps steps an epoch"
    echo "$m,$us,$steps" >>"$WORKDIR/sums.csv"
    echo "$m,$((params * 4)),$batch,$(awk -v s="$best" -v k="$steps" 'BEGIN {printf "%.6g", s / k}')" >>"$WORKDIR/costs.csv"
done
python3 "$ROOT/bench/mpi_table.py" "$WORKDIR/runs.csv" "$WORKDIR/sums.csv" | tee "$WORKDIR/table.md"
echo "mpi.sh: cost model inputs in $WORKDIR/costs.csv (bench/cost_model.py $WORKDIR/costs.csv)"
