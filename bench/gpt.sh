#!/usr/bin/env bash
# bench/gpt.sh — the character GPT (examples/gpt/gpt.nn) side by side with the same model
# in PyTorch (bench/gpt.py): same text, same initial parameters (one file, written by nnc's
# `gpt init`), same batches in the same order, same AdamW and per-step warmup_cosine
# schedule.  For each thread count, nnc's trainer and the PyTorch script run one after the
# other (the order alternating between thread counts), each for EPOCHS epochs, and the
# table gives tokens per second (the median epoch), nnc's step time over PyTorch's (min
# and median over the epochs, each epoch of one against the same epoch of the other) and
# the two loss curves, epoch by epoch.
#
#   bench/gpt.sh [THREADS...]        default: 1 2
#
# Environment: NNC (default: build the repository and use build/nnc), EPOCHS (default 3),
# SEED (default 0), WORKDIR (default: a temporary directory, removed), PYTHON (default
# /usr/bin/python3, Debian's python3-torch).
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
EPOCHS=${EPOCHS:-3}
SEED=${SEED:-0}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=("$@")
[ ${#THREADS[@]} -gt 0 ] || THREADS=(1 2)
if [ -z "${NNC:-}" ]; then
    bash "$SRC/scripts/build.sh" >/dev/null
    NNC=$SRC/build/nnc
fi
NNC=$(realpath "$NNC")
if [ -n "${WORKDIR:-}" ]; then
    mkdir -p "$WORKDIR"
    WORK=$(cd "$WORKDIR" && pwd)
else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi

NNC=$NNC GPT_WORK=$WORK GPT_TEXT_ONLY=1 bash "$SRC/examples/gpt/run.sh" >/dev/null
cd "$WORK"
"$NNC" "$SRC/examples/gpt/gpt.nn" --exe -o gpt
./gpt init --seed "$SEED" --save init.safetensors
# the train block's optimizer and schedule, for the PyTorch side
nn=$SRC/examples/gpt/gpt.nn
batch=$(sed -n 's/^ *batch *= *\([0-9]*\).*/\1/p' "$nn")
lr=$(sed -n 's/.*adamw(lr=\([0-9.e-]*\).*/\1/p' "$nn")
wd=$(sed -n 's/.*adamw(.*weight_decay=\([0-9.e-]*\)).*/\1/p' "$nn")
warmup=$(sed -n 's/.*warmup_cosine(\([0-9]*\), *\([0-9]*\)).*/\1/p' "$nn")
tmax=$(sed -n 's/.*warmup_cosine(\([0-9]*\), *\([0-9]*\)).*/\2/p' "$nn")

run_nnc() {
    OPENBLAS_NUM_THREADS=$1 OMP_NUM_THREADS=$1 ./gpt train --text train.txt --load init.safetensors \
        --epochs "$EPOCHS" --seed "$SEED" --log "nnc-$1.csv" >"nnc-$1.out"
}
run_torch() {
    OPENBLAS_NUM_THREADS=$1 OMP_NUM_THREADS=$1 "$PYTHON" "$SRC/bench/gpt.py" --text train.txt \
        --init init.safetensors --threads "$1" --epochs "$EPOCHS" --seed "$SEED" --batch "$batch" \
        --lr "$lr" --weight-decay "$wd" --warmup "$warmup" --t-max "$tmax" --log "torch-$1.csv" >"torch-$1.out"
}
i=0
for t in "${THREADS[@]}"; do
    if [ $((i % 2)) -eq 0 ]; then run_nnc "$t"; run_torch "$t"; else run_torch "$t"; run_nnc "$t"; fi
    i=$((i + 1))
done

windows=$("$PYTHON" -c "import sys; sys.path.insert(0, '$SRC/bench'); from gpt import text_windows; print(len(text_windows('train.txt', 64)[0]))")
"$PYTHON" - "$windows" "${THREADS[@]}" <<'EOF'
import csv, statistics, sys
windows, threads = int(sys.argv[1]), sys.argv[2:]
tokens = windows * 64
def read(path, loss_col, sec_col):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [float(r[loss_col]) for r in rows], [float(r[sec_col]) for r in rows]
print(f"GPT, {windows} windows of 64 bytes ({tokens} tokens) an epoch\n")
print("| threads | nnc tokens/s | PyTorch tokens/s | nnc / PyTorch step time (min, median) |")
print("|---|---|---|---|")
curves = {}
for t in threads:
    nl, ns = read(f"nnc-{t}.csv", "train_loss", "seconds")
    tl, ts = read(f"torch-{t}.csv", "train_loss", "seconds")
    ratios = [a / b for a, b in zip(ns, ts)]
    print(f"| {t} | {tokens / statistics.median(ns):.0f} | {tokens / statistics.median(ts):.0f} | "
          f"{min(ratios):.3f}, {statistics.median(ratios):.3f} |")
    curves[t] = (nl, tl)
for t, (nl, tl) in curves.items():
    print(f"\ntraining loss per epoch, {t} thread(s):\n")
    print("| epoch | nnc | PyTorch |")
    print("|---|---|---|")
    for e, (a, b) in enumerate(zip(nl, tl), 1):
        print(f"| {e} | {a:.4f} | {b:.4f} |")
EOF
