#!/usr/bin/env bash
# bench/threads.sh: how much faster nnc's trainers train on two cores than on one, for
# the four models of the suite (bench/bench.sh), in its QUICK mode:
#   mlp   examples/fashion_mlp.nn     batch 64   the first 6000 Fashion-MNIST images
#   cnn   examples/fashion_cnn.nn     batch 32   the same
#   wide  bench/wide_mlp.nn           batch 256  the same
#   lstm  examples/charlm/charlm.nn   batch 64   1500 words of text (examples/charlm/run.sh)
# Each round trains every model for EPOCHS epochs at 1 thread and at 2
# (OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = N), the two one after the other, in turn
# 1-then-2 and 2-then-1 from one round to the next, so that a machine whose speed drifts
# (two cores shared with other work) weighs on both alike.  A run's time is the mean of
# its epochs' seconds after the first (the first warms the caches and the page tables up),
# from the trainer's --log CSV (training only: no loading, no test pass).
# Prints a markdown table: per model the least and the median epoch time at each count,
# and the speedup (1-thread time / 2-thread time) of each round's pair, least and median.
#
#   bench/threads.sh                      # ROUNDS=5
#   ROUNDS=9 MODELS="cnn wide" bench/threads.sh
#
# Environment: NNC (default build/nnc: run scripts/build.sh first), ROUNDS (5), EPOCHS (3),
# NNC_ENV (VAR=VALUE words for every run, e.g. GOMP_SPINCOUNT=10000 to fix the wait policy
# the trainer would otherwise choose from the machine's load: README.md, "Threads"),
# MODELS ("mlp cnn wide lstm"), DATA (/usr/share/datasets/fashion-mnist), PYTHON
# (/usr/bin/python3, for bench/idx_head.py), WORKDIR (default a new temporary directory).
set -eu -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NNC=${NNC:-$ROOT/build/nnc}
ROUNDS=${ROUNDS:-5}
EPOCHS=${EPOCHS:-3}
NNC_ENV=${NNC_ENV:-}
MODELS=${MODELS:-mlp cnn wide lstm}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
PYTHON=${PYTHON:-/usr/bin/python3}
die() { echo "threads.sh: $*" >&2; exit 2; }
[ -x "$NNC" ] || die "$NNC is not an executable nnc (scripts/build.sh, or NNC=...)"
for v in ROUNDS EPOCHS; do
    case ${!v} in ''|*[!0-9]*|0) die "$v=${!v} is not a positive integer" ;; esac
done
source_of() { case $1 in mlp) echo examples/fashion_mlp.nn ;; cnn) echo examples/fashion_cnn.nn ;;
                         wide) echo bench/wide_mlp.nn ;; lstm) echo examples/charlm/charlm.nn ;;
                         *) die "unknown model '$1' in MODELS (mlp cnn wide lstm)" ;; esac; }
for m in $MODELS; do source_of "$m" >/dev/null; done

WORKDIR=${WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/nnc-threads.XXXXXX")}
mkdir -p "$WORKDIR/logs"
cd "$WORKDIR"
"$PYTHON" "$ROOT/bench/idx_head.py" "$DATA" data 6000 1000 >logs/data.log 2>&1 ||
    die "bench/idx_head.py failed (see $WORKDIR/logs/data.log)"
case " $MODELS " in *" lstm "*)
    env NNC="$NNC" CHARLM_WORK="$WORKDIR/charlm" CHARLM_TEXT_ONLY=1 CHARLM_WORDS=1500 CHARLM_TEST=200 \
        bash "$ROOT/examples/charlm/run.sh" >logs/charlm-text.log 2>&1 ||
        die "examples/charlm/run.sh failed (see $WORKDIR/logs/charlm-text.log)" ;;
esac
for m in $MODELS; do
    "$NNC" "$ROOT/$(source_of "$m")" --exe -o "$m" >"logs/nnc-$m.log" 2>&1 ||
        die "nnc failed on $(source_of "$m") (see $WORKDIR/logs/nnc-$m.log)"
done

# train M T ROUND: one run; appends "M T seconds" to times.txt
train() {
    local m=$1 t=$2 r=$3 data
    if [ "$m" = lstm ]; then
        data=(--text charlm/words.txt)
    else
        data=(--train x=data/train-images-idx3-ubyte.gz --train y=data/train-labels-idx1-ubyte.gz)
    fi
    # shellcheck disable=SC2086  # NNC_ENV is a list of VAR=VALUE words
    env $NNC_ENV OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "./$m" train "${data[@]}" --epochs "$EPOCHS" \
        --log "logs/$m-t$t-r$r.csv" >"logs/$m-t$t-r$r.out" 2>&1 ||
        die "$m at $t thread(s) failed (see $WORKDIR/logs/$m-t$t-r$r.out)"
    echo "$m $t $(tail -n +2 "logs/$m-t$t-r$r.csv" | cut -d, -f5 |
        awk 'NR > 1 { s += $1; k++ } { last = $1 } END { printf "%.4f", k ? s / k : last }')" >>times.txt
}
: >times.txt
for r in $(seq "$ROUNDS"); do
    for m in $MODELS; do
        if [ $((r % 2)) = 1 ]; then train "$m" 1 "$r"; train "$m" 2 "$r"; else train "$m" 2 "$r"; train "$m" 1 "$r"; fi
    done
    echo "round $r of $ROUNDS done" >&2
done

echo "| model | 1 thread s/epoch (min, median) | 2 threads s/epoch (min, median) | speedup (min, median) |"
echo "|---|---|---|---|"
for m in $MODELS; do
    awk -v m="$m" '
        function median(a, n,   i, j, t) {   # a[1..n], sorted in place
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        $1 == m && $2 == 1 { one[++n1] = $3 }
        $1 == m && $2 == 2 { two[++n2] = $3 }
        END {
            for (i = 1; i <= n1; i++) ratio[i] = one[i] / two[i]
            m1 = median(one, n1); m2 = median(two, n2); mr = median(ratio, n1)
            printf "| %s | %.3f, %.3f | %.3f, %.3f | %.2fx, %.2fx |\n", m, one[1], m1, two[1], m2, ratio[1], mr
        }' times.txt
done
echo
echo "threads.sh: $ROUNDS rounds of $EPOCHS epoch(s)${NNC_ENV:+, $NNC_ENV}, $(nproc) CPUs; runs in $WORKDIR"
