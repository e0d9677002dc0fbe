#!/usr/bin/env bash
# run.sh — the character model end to end: builds nnc and the runtime, compiles charlm.nn
# into a trainer program and, separately, into the C file that sample.c includes, makes
# the training text from Debian's word list, trains with --log, and samples 10 new words.
#
#   examples/charlm/run.sh [TRAINER OPTIONS...]        e.g. --epochs 5, --lr 0.001
#
# The training text is every 6th word of /usr/share/dict/american-english (package
# wamerican) without the possessives ("cat's"), in a fixed shuffled order: about 12,300
# words, 111,000 bytes, so 111,000 examples, and an epoch takes about 30 s on one core.
# 1,000 other words of the list (never trained on) are the test text.  Everything is
# written under WORK (below).  The run fails unless the loss falls below the uniform
# baseline ln K, K the number of distinct bytes in the training text.
#
# Environment:
#   NNC             an nnc already built (its directory must hold libnnr.a); default: build
#                   the repository into build/ (scripts/build.sh) and use build/nnc
#   CHARLM_WORK     where the files go (default: the build directory's charlm/)
#   CHARLM_EVERY    take every N-th word of the list (default 6)
#   CHARLM_WORDS    at most this many training words (default: all of them)
#   CHARLM_TEST     test words (default 1000; 0: no test text)
#   CHARLM_SAMPLES  words to sample (default 10)
#   CHARLM_TEXT_ONLY  when set and not empty: only write words.txt and test.txt into the
#                   work directory and exit (no build, no compile, no training; bench/bench.sh)
#   NNC_CC, NNC_CFLAGS  the C compiler and extra flags, for sample.c as for nnc --exe
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DICT=/usr/share/dict/american-english
EVERY=${CHARLM_EVERY:-6}
TEST_WORDS=${CHARLM_TEST:-1000}

TEXT_ONLY=${CHARLM_TEXT_ONLY:-}

if [ -z "${NNC:-}" ]; then
    [ -n "$TEXT_ONLY" ] || bash "$SRC/scripts/build.sh" >/dev/null
    NNC=$SRC/build/nnc
fi
NNC=$(realpath "$NNC")
BUILD=$(dirname "$NNC")
WORK=${CHARLM_WORK:-$BUILD/charlm}
[ -r "$DICT" ] || { echo "run.sh: $DICT is missing: apt-get install wamerican" >&2; exit 1; }
mkdir -p "$WORK/gen" && cd "$WORK"

# the trainer program (charlm, with charlm.c and charlm.h beside it), and sample.c against
# the generated C without the trainer's main()
if [ -z "$TEXT_ONLY" ]; then
    "$NNC" "$SRC/examples/charlm/charlm.nn" --exe -o charlm
    "$NNC" "$SRC/examples/charlm/charlm.nn" -o gen/charlm.c
    # (-O1: sampling is a few hundred single predictions, and the generated file compiles
    # three times faster than at -O2)
    # shellcheck disable=SC2086  # NNC_CFLAGS is a list of flags, as nnc --exe reads it
    ${NNC_CC:-cc} -std=c11 -O1 -fopenmp -Wall -Wextra ${NNC_CFLAGS:-} -I gen -I "$SRC/runtime" \
        "$SRC/examples/charlm/sample.c" gen/charlm.c "$BUILD/libnnr.a" -lopenblas -ljansson -lz -lm \
        -o sample
fi

# words.txt: every EVERY-th word, shuffled with a fixed seed so a word's predecessor says
# nothing about it (the list is sorted); test.txt: words from between those
words() {   # words OFFSET SEED
    awk -v k="$EVERY" -v r="$1" "NR % k == r && !/'/" "$DICT" |
        awk -v seed="$2" 'BEGIN { srand(seed) } { printf "%.9f\t%s\n", rand(), $0 }' |
        sort | cut -f2-
}
words 0 1 | head -n "${CHARLM_WORDS:-1000000000}" >words.txt
words $((EVERY / 2)) 2 | head -n "$TEST_WORDS" >test.txt
TEST=()
[ "$TEST_WORDS" -gt 0 ] && TEST=(--test-text test.txt)
distinct=$(LC_ALL=C od -An -v -tu1 words.txt | tr -s ' ' '\n' | grep . | sort -u | wc -l)
baseline=$(awk -v k="$distinct" 'BEGIN { printf "%.4f", log(k) }')
echo "training text: $(wc -l <words.txt) words, $(wc -c <words.txt) bytes, $distinct distinct" \
     "bytes (uniform baseline ln $distinct = $baseline; ln 256 = 5.5452)"
if [ -n "$TEXT_ONLY" ]; then
    echo "text only (CHARLM_TEXT_ONLY): $WORK/words.txt${TEST[*]:+ and $WORK/test.txt}"
    exit 0
fi

OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} \
    ./charlm train --text words.txt "${TEST[@]}" --log run.csv --save charlm.safetensors "$@"

echo
echo "loss per epoch (run.csv):"
column -s, -t run.csv 2>/dev/null || cat run.csv
echo
echo "${CHARLM_SAMPLES:-10} new words (temperature 0.8):"
./sample charlm.safetensors --words "${CHARLM_SAMPLES:-10}"

# the last epoch's loss (test loss when there is a test text) must beat the baseline
last=$(awk -F, -v t="$TEST_WORDS" 'NR > 1 { v = (t > 0 && $3 != "") ? $3 : $2 } END { print v }' run.csv)
if awk -v a="$last" -v b="$baseline" 'BEGIN { exit !(a < b) }'; then
    echo "final loss $last < baseline $baseline"
else
    echo "run.sh: final loss $last is not below the baseline $baseline" >&2
    exit 1
fi
