#!/usr/bin/env bash
# bench/bench.sh: the benchmark suite, one command.  It builds nnc (scripts/build.sh),
# compiles four models with nnc --exe (timing nnc and the C compiler), makes the character
# model's text, then for each thread count runs, one after the other, nnc's trainer, the
# PyTorch "idiomatic" loop (DataLoader) and the PyTorch "tuned" loop (index slices) of
#   mlp   examples/fashion_mlp.nn     batch 64   Fashion-MNIST   bench/fashion_mlp.py
#   cnn   examples/fashion_cnn.nn     batch 32   Fashion-MNIST   bench/fashion_cnn.py
#   wide  bench/wide_mlp.nn           batch 256  Fashion-MNIST   bench/wide_mlp.py
#   lstm  examples/charlm/charlm.nn   batch 64   word-list text  bench/charlm_lstm.py
# plus the GEMM-only bound of the two dense models (bench/gemm_bound.c), and prints the
# tables (epoch times, ratios, GFLOP/s, peak RSS against nnc's memory plan, accuracy,
# thread speedup, compile times; bench/table.py), also written to WORKDIR/table.md.
#
#   bench/bench.sh [THREADS...]          # default: 1 2
#   QUICK=1 bench/bench.sh 1             # development: 1 epoch on 6000 images / 1500 words
#   MODELS="mlp wide" bench/bench.sh 1 2
#
# Every run gets OPENBLAS_NUM_THREADS=N and OMP_NUM_THREADS=N (PyTorch also --threads N,
# i.e. torch.set_num_threads(N), and OMP_WAIT_POLICY=passive when N > 1: bench/README.md).
#
# Environment: MODELS (default "mlp cnn wide lstm"), EPOCHS_MLP (5), EPOCHS_CNN (2),
# EPOCHS_WIDE (2), EPOCHS_LSTM (2), SEED (0), QUICK (1: every epoch count 1 unless given,
# the first QUICK_TRAIN=6000 / QUICK_TEST=1000 Fashion-MNIST images, CHARLM_WORDS=1500 /
# CHARLM_TEST=200 words of text), PYTHON (/usr/bin/python3, Debian's python3-torch), DATA
# (/usr/share/datasets/fashion-mnist), CC (cc, for gemm_bound and peakrss), TORCH_ENV
# (extra VAR=VALUE settings for the PyTorch runs), NNC_ENV (the same for nnc's trainers,
# e.g. OMP_WAIT_POLICY=active on a machine of your own), WORKDIR (default a new temporary
# directory: trainers, logs, table.md), SKIP_BUILD (1: use build/nnc as it is).
set -eu -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=${QUICK:-0}
[ "$QUICK" = 1 ] && q=1 || q=
MODELS=${MODELS:-mlp cnn wide lstm}
EPOCHS_MLP=${EPOCHS_MLP:-${q:-5}}
EPOCHS_CNN=${EPOCHS_CNN:-${q:-2}}
EPOCHS_WIDE=${EPOCHS_WIDE:-${q:-2}}
EPOCHS_LSTM=${EPOCHS_LSTM:-${q:-2}}
SEED=${SEED:-0}
PYTHON=${PYTHON:-/usr/bin/python3}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
CC=${CC:-cc}
TORCH_ENV=${TORCH_ENV:-}
NNC_ENV=${NNC_ENV:-}
DICT=/usr/share/dict/american-english
[ $# -gt 0 ] || set -- 1 2
NNC=$ROOT/build/nnc
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in bench/

die() { echo "bench.sh: $*" >&2; exit 1; }
for n in "$@"; do
    case $n in ''|*[!0-9]*|0) die "thread count '$n' is not a positive integer" ;; esac
done
for m in $MODELS; do
    case $m in mlp|cnn|wide|lstm) ;; *) die "unknown model '$m' in MODELS (mlp cnn wide lstm)" ;; esac
done
for v in EPOCHS_MLP EPOCHS_CNN EPOCHS_WIDE EPOCHS_LSTM; do
    case ${!v} in ''|*[!0-9]*|0) die "$v=${!v} is not a positive integer" ;; esac
done

# ---- dependencies ------------------------------------------------------------------------
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz \
         t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    [ -r "$DATA/$f" ] || die "missing $DATA/$f (apt install dataset-fashion-mnist)"
done
case " $MODELS " in *" lstm "*) [ -r "$DICT" ] || die "missing $DICT (apt install wamerican)" ;; esac
[ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null || die "no Python interpreter $PYTHON (PYTHON=...)"
"$PYTHON" -c 'import torch, numpy' 2>/dev/null ||
    die "$PYTHON cannot import torch and numpy (apt install python3-torch python3-numpy)"
command -v "$CC" >/dev/null || die "no C compiler '$CC' (apt install gcc, or CC=...)"
case $(date +%N 2>/dev/null) in ''|*[!0-9]*) die "date +%N (GNU coreutils) is needed for the timings" ;; esac

WORKDIR=${WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/nnc-bench.XXXXXX")}
mkdir -p "$WORKDIR"/{bin,gen,logs,rss}
WORKDIR=$(cd "$WORKDIR" && pwd)
META=$WORKDIR/meta.txt
: >"$META"
meta() { echo "$*" >>"$META"; }
now_ns() { date +%s%N; }
# run LOG COMMAND...: the command's output into LOG; on failure, say what failed and show it
run() {
    local log=$1; shift
    if ! "$@" >"$log" 2>&1; then
        echo "bench.sh: failed: $*" >&2
        echo "bench.sh: last lines of $log:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
}
# median of the `seconds` column (5th) of a CSV log
median() { tail -n +2 "$1" | cut -d, -f5 | sort -g |
           awk '{v[NR]=$1} END {if (NR) print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "bench.sh: work directory $WORKDIR; threads $*; models $MODELS${q:+ (QUICK)}"

# ---- build -------------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "building nnc (scripts/build.sh) ..."
    run "$WORKDIR/logs/build.log" bash "$ROOT/scripts/build.sh"
fi
[ -x "$NNC" ] || die "$NNC is missing (scripts/build.sh did not make it)"
CBLAS_INC=$(sed -n 's/^CBLAS_INCLUDE_DIR:[A-Z]*=//p' "$ROOT/build/CMakeCache.txt" 2>/dev/null || true)
run "$WORKDIR/logs/helpers.log" "$CC" -std=c11 -O2 ${CBLAS_INC:+-I"$CBLAS_INC"} \
    "$ROOT/bench/gemm_bound.c" -o "$WORKDIR/bin/gemm_bound" -lopenblas
run "$WORKDIR/logs/helpers.log" "$CC" -std=c11 -O2 "$ROOT/bench/peakrss.c" -o "$WORKDIR/bin/peakrss"
PEAKRSS=$WORKDIR/bin/peakrss

# ---- the data ----------------------------------------------------------------------------
if [ -n "$q" ]; then
    QUICK_TRAIN=${QUICK_TRAIN:-6000} QUICK_TEST=${QUICK_TEST:-1000}
    run "$WORKDIR/logs/data.log" "$PYTHON" "$ROOT/bench/idx_head.py" "$DATA" "$WORKDIR/data" \
        "$QUICK_TRAIN" "$QUICK_TEST"
    DATA=$WORKDIR/data
    NTRAIN=$QUICK_TRAIN NTEST=$QUICK_TEST
    export CHARLM_WORDS=${CHARLM_WORDS:-1500} CHARLM_TEST=${CHARLM_TEST:-200}
else
    NTRAIN=60000 NTEST=10000
fi
case " $MODELS " in *" lstm "*)
    run "$WORKDIR/logs/charlm-text.log" env NNC="$NNC" CHARLM_WORK="$WORKDIR/charlm" \
        CHARLM_TEXT_ONLY=1 bash "$ROOT/examples/charlm/run.sh"
    for f in words.txt test.txt; do
        [ -s "$WORKDIR/charlm/$f" ] || die "examples/charlm/run.sh did not make $WORKDIR/charlm/$f"
    done ;;
esac

# ---- the models --------------------------------------------------------------------------
# model: source, PyTorch script, epochs, GEMM-bound layers and batch (dense models only)
source_of() { case $1 in mlp) echo examples/fashion_mlp.nn ;; cnn) echo examples/fashion_cnn.nn ;;
                         wide) echo bench/wide_mlp.nn ;; lstm) echo examples/charlm/charlm.nn ;; esac; }
script_of() { case $1 in mlp) echo fashion_mlp.py ;; cnn) echo fashion_cnn.py ;;
                         wide) echo wide_mlp.py ;; lstm) echo charlm_lstm.py ;; esac; }
epochs_of() { case $1 in mlp) echo "$EPOCHS_MLP" ;; cnn) echo "$EPOCHS_CNN" ;;
                         wide) echo "$EPOCHS_WIDE" ;; lstm) echo "$EPOCHS_LSTM" ;; esac; }
bound_of() { case $1 in mlp) echo "--layers 784,256,128,10 --batch 64" ;;
                         wide) echo "--layers 784,2048,2048,10 --batch 256" ;;
                         lstm) echo "--lstm 16,32,128,256 --batch 64" ;; esac; }

meta threads "$*"
meta models "$MODELS"
meta quick "${q:-0}"
meta seed "$SEED"
meta nnc_env "${NNC_ENV:-none}"
meta date "$(date -u +%Y-%m-%d)"
meta cpu "$(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)"

for m in $MODELS; do
    src=$ROOT/$(source_of "$m")
    [ -r "$src" ] || die "missing model file $src"
    echo "compiling $m ($(source_of "$m")) ..."
    # nnc alone (.nn -> .c): median of 5 runs
    ts=()
    for _ in 1 2 3 4 5; do
        t0=$(now_ns)
        run "$WORKDIR/logs/nnc-$m.log" "$NNC" "$src" -o "$WORKDIR/gen/$m.c"
        ts+=($(( $(now_ns) - t0 )))
    done
    nnc_ms=$(printf '%s\n' "${ts[@]}" | sort -n | sed -n 3p | awk '{printf "%.2f", $1 / 1e6}')
    # nnc --exe (nnc + the C compiler), -v prints the compiler command it runs ...
    t0=$(now_ns)
    run "$WORKDIR/logs/exe-$m.log" "$NNC" "$src" --exe -v -o "$WORKDIR/bin/$m"
    exe_ns=$(( $(now_ns) - t0 ))
    cc_cmd=$(grep -v '^nnc:' "$WORKDIR/logs/exe-$m.log" | tail -n 1)
    [ -n "$cc_cmd" ] || die "nnc --exe -v printed no compiler command (see $WORKDIR/logs/exe-$m.log)"
    # ... which is timed alone: the same command, the same flags (codegen/build.c)
    t0=$(now_ns)
    run "$WORKDIR/logs/cc-$m.log" bash -c "cd '$WORKDIR/bin' && $cc_cmd"
    cc_ns=$(( $(now_ns) - t0 ))
    meta "source.$m" "$(source_of "$m")"
    meta "nnc_ms.$m" "$nnc_ms"
    meta "exe_s.$m" "$(awk -v t="$exe_ns" 'BEGIN {printf "%.3f", t / 1e9}')"
    meta "cc_s.$m" "$(awk -v t="$cc_ns" 'BEGIN {printf "%.3f", t / 1e9}')"
    meta "c_lines.$m" "$(wc -l <"$WORKDIR/bin/$m.c")"
    meta "epochs.$m" "$(epochs_of "$m")"
    "$WORKDIR/bin/$m" summary >"$WORKDIR/summary-$m.txt" 2>&1 ||
        die "$WORKDIR/bin/$m summary failed (see $WORKDIR/summary-$m.txt)"
    grep -q 'memory plan (bytes):' "$WORKDIR/summary-$m.txt" ||
        echo "  ($m summary has no 'memory plan (bytes):' line: planned memory n/a)"
    if [ "$m" = lstm ]; then
        meta "examples.$m" "$(wc -c <"$WORKDIR/charlm/words.txt")"
        meta "test_examples.$m" "$(wc -c <"$WORKDIR/charlm/test.txt")"
    else
        meta "examples.$m" "$NTRAIN"
        meta "test_examples.$m" "$NTEST"
    fi
done

# ---- the runs ----------------------------------------------------------------------------
report() {   # report LABEL CSV: one line of what the run gave
    printf '    %-26s %8s s/epoch   final test accuracy %s\n' "$1" "$(median "$2")" \
        "$(tail -n 1 "$2" | cut -d, -f4)"
}

for n in "$@"; do
    blas=(OPENBLAS_NUM_THREADS="$n" OMP_NUM_THREADS="$n")
    torch_env=("${blas[@]}")
    [ "$n" -gt 1 ] && torch_env+=(OMP_WAIT_POLICY=passive)
    # shellcheck disable=SC2206  # TORCH_ENV is a list of VAR=VALUE words
    torch_env+=($TORCH_ENV)
    nnc_env=("${blas[@]}")
    # shellcheck disable=SC2206  # NNC_ENV is a list of VAR=VALUE words
    nnc_env+=($NNC_ENV)
    for m in $MODELS; do
        e=$(epochs_of "$m")
        if [ "$m" = lstm ]; then
            nnc_data=(--text "$WORKDIR/charlm/words.txt" --test-text "$WORKDIR/charlm/test.txt")
            torch_data=("${nnc_data[@]}")
        else
            nnc_data=(--train x="$DATA/train-images-idx3-ubyte.gz" --train y="$DATA/train-labels-idx1-ubyte.gz"
                      --test x="$DATA/t10k-images-idx3-ubyte.gz" --test y="$DATA/t10k-labels-idx1-ubyte.gz")
            torch_data=(--data "$DATA")
        fi
        echo "== $n thread(s), $m, $e epoch(s)"
        run "$WORKDIR/logs/nnc-$m-t$n.out" env "${nnc_env[@]}" "$PEAKRSS" "$WORKDIR/rss/nnc-$m-t$n.kb" \
            "$WORKDIR/bin/$m" train "${nnc_data[@]}" --epochs "$e" --seed "$SEED" \
            --log "$WORKDIR/logs/nnc-$m-t$n.csv"
        report "nnc" "$WORKDIR/logs/nnc-$m-t$n.csv"
        for variant in idiom:dataloader tuned:index; do
            name=${variant%%:*} loader=${variant#*:}
            run "$WORKDIR/logs/$name-$m-t$n.out" env "${torch_env[@]}" \
                "$PEAKRSS" "$WORKDIR/rss/$name-$m-t$n.kb" \
                "$PYTHON" "$ROOT/bench/$(script_of "$m")" --loader "$loader" --threads "$n" \
                --epochs "$e" --seed "$SEED" "${torch_data[@]}" \
                --log "$WORKDIR/logs/$name-$m-t$n.csv"
            report "PyTorch $name ($loader)" "$WORKDIR/logs/$name-$m-t$n.csv"
        done
        if b=$(bound_of "$m") && [ -n "$b" ]; then
            examples=$NTRAIN
            [ "$m" = lstm ] && examples=$(wc -c <"$WORKDIR/charlm/words.txt")
            # shellcheck disable=SC2086  # the model's options, split into words
            run "$WORKDIR/logs/bound-$m-t$n.out" env "${blas[@]}" "$WORKDIR/bin/gemm_bound" \
                $b --examples "$examples" --epochs 1
            printf '    %-26s %8s s/epoch\n' "GEMM bound" \
                "$(sed -n 's/^seconds_per_epoch //p' "$WORKDIR/logs/bound-$m-t$n.out")"
        fi
    done
done

echo
"$PYTHON" "$ROOT/bench/table.py" "$WORKDIR"
echo
echo "bench.sh: tables also in $WORKDIR/table.md; logs in $WORKDIR/logs"
