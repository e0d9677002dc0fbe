#!/usr/bin/env bash
# run.sh — the character GPT end to end: builds nnc and the runtime, compiles gpt.nn into
# a trainer program and, separately, into the C file that sample.c includes, makes the
# training text from the licence texts Debian ships, trains with --log, and samples text.
#
#   examples/gpt/run.sh [TRAINER OPTIONS...]          e.g. --epochs 8, --lr 0.0005
#
# The training text is every licence under /usr/share/common-licenses (package base-files)
# but MPL-2.0, concatenated in name order (symbolic links skipped): 220,594 bytes of ASCII,
# 3,447 windows of 64 bytes, 108 steps of 32 windows an epoch.  MPL-2.0 (16,726 bytes,
# never trained on) is the test text.  Everything is written under WORK (below).
# The run fails unless the test loss ends below GPT_PASS_LOSS, 2.0 nats a byte by default:
# the uniform baseline over the text's 86 distinct bytes is ln 86 = 4.45, and the training
# text's byte frequencies alone give the test text 3.40.
#
# Environment:
#   NNC             an nnc already built (its directory must hold libnnr.a); default: build
#                   the repository into build/ (scripts/build.sh) and use build/nnc
#   GPT_WORK        where the files go (default: the build directory's gpt/)
#   GPT_SAMPLE      bytes to sample (default 300)
#   GPT_TRAIN_BYTES only the first N bytes of the training text (default: all of it; the
#                   ctest `gpt` trains on 40,000 for 2 epochs)
#   GPT_PASS_LOSS   the test loss the run must end below (default 2.0)
#   GPT_TEXT_ONLY   when set and not empty: only write train.txt and test.txt into the work
#                   directory and exit (bench/gpt.sh)
#   NNC_CC, NNC_CFLAGS  the C compiler and extra flags, for sample.c as for nnc --exe
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
LICENSES=/usr/share/common-licenses
TEXT_ONLY=${GPT_TEXT_ONLY:-}

if [ -z "${NNC:-}" ]; then
    [ -n "$TEXT_ONLY" ] || bash "$SRC/scripts/build.sh" >/dev/null
    NNC=$SRC/build/nnc
fi
NNC=$(realpath "$NNC")
BUILD=$(dirname "$NNC")
WORK=${GPT_WORK:-$BUILD/gpt}
[ -r "$LICENSES/GPL-3" ] || { echo "run.sh: $LICENSES is missing: apt-get install base-files" >&2; exit 1; }
mkdir -p "$WORK/gen" && cd "$WORK"

: >train.txt
for f in $(LC_ALL=C ls "$LICENSES"); do
    [ -L "$LICENSES/$f" ] || [ "$f" = MPL-2.0 ] || cat "$LICENSES/$f" >>train.txt
done
if [ -n "${GPT_TRAIN_BYTES:-}" ]; then
    head -c "$GPT_TRAIN_BYTES" train.txt >train.part && mv train.part train.txt
fi
cp "$LICENSES/MPL-2.0" test.txt
echo "training text: $(wc -c <train.txt) bytes; test text: $(wc -c <test.txt) bytes"
if [ -n "$TEXT_ONLY" ]; then
    echo "text only (GPT_TEXT_ONLY): $WORK/train.txt and $WORK/test.txt"
    exit 0
fi

"$NNC" "$SRC/examples/gpt/gpt.nn" --exe -o gpt
"$NNC" "$SRC/examples/gpt/gpt.nn" -o gen/gpt.c
# shellcheck disable=SC2086  # NNC_CFLAGS is a list of flags, as nnc --exe reads it
${NNC_CC:-cc} -std=c11 -O2 -fopenmp -Wall -Wextra ${NNC_CFLAGS:-} -I gen -I "$SRC/runtime" \
    "$SRC/examples/gpt/sample.c" gen/gpt.c "$BUILD/libnnr.a" -lopenblas -ljansson -lz -lm -o sample

OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} \
    ./gpt train --text train.txt --test-text test.txt --log run.csv --save gpt.safetensors "$@"

echo
echo "loss per epoch (run.csv, without its optimizer column):"
cut -d, -f1-6 run.csv | column -s, -t 2>/dev/null || cut -d, -f1-6 run.csv
echo
echo "${GPT_SAMPLE:-300} bytes sampled after \"This \" (temperature 0.8):"
./sample gpt.safetensors --bytes "${GPT_SAMPLE:-300}"

pass=${GPT_PASS_LOSS:-2.0}
last=$(awk -F, 'NR > 1 { v = $3 } END { print v }' run.csv)
if awk -v a="$last" -v b="$pass" 'BEGIN { exit !(a < b) }'; then
    echo "final test loss $last < $pass"
else
    echo "run.sh: final test loss $last is not below $pass" >&2
    exit 1
fi
