#!/usr/bin/env bash
# sizes.sh NNC WORKDIR — sizes past 2^31 never give wrong C (issue 22).
#
# The refusals of a dimension, a per-example count or a GEMM argument past INT_MAX are
# golden diagnostics (tests/golden/errors/sizes_*.nn); this script checks the rest:
#   - a model whose batch offsets pass 2^31 ([3, 1024, 1024] at batch 1024) gets 64-bit
#     offsets and counters exactly where they can pass it, and the file compiles with
#     gcc and clang -Wall -Wextra -Werror, with no -Wconversion warning on those lines;
#   - --max-memory refuses a plan over the limit (naming the total, the limit and the
#     largest tensors) and accepts one under it; 0 and none turn it off; a bad SIZE is a
#     usage error; --summary prints the plan's total instead of refusing;
#   - a trainer whose NAME_new cannot allocate (ulimit -v) says how many bytes it asked for.
# Prints PASS/FAIL per check and ends with `N passed, M failed`.
set -u
. "$(dirname "$0")/lib.sh"
NNC=$(realpath "$1")
WORK=$2
RUNTIME=$(cd "$(dirname "$0")/../runtime" && pwd)
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1

# ---- 64-bit offsets where BATCH x numel passes INT_MAX ----------------------------------
# x, h, s, c, t: 3,145,728 an example x 1024 > 2^31; p (1,048,576 x 1024 = 2^30) and
# m (1024 x 1024) stay int
cat >wide.nn <<'NN'
model wide
input x: [3, 1024, 1024]
label y: class(16)
param w: [3, 1024, 1024] = normal(std=0.01)
h = relu(x * w)
s = softmax(h)
c = concat(slice(s, axis=1, start=0, end=512), slice(h, axis=1, start=512), axis=1)
t = transpose(reshape(c, [3072, 1024]))
m = max(t, axis=1)
p = mean(c, axis=0)
q = sum(p, axis=0)
f = dense(q, 16) + dense(m, 16)
loss = cross_entropy(f, y) + sum(x * x)
train { batch = 1024 }
NN
check "wide model compiles (--max-memory none)" "$NNC" wide.nn -o wide.c --max-memory none
has() { grep -qF -- "$1" wide.c || { echo "missing in wide.c: $1"; return 1; }; }
hasnt() { ! grep -qF -- "$1" wide.c || { echo "unexpected in wide.c: $1"; grep -nF -- "$1" wide.c | head -3; return 1; }; }
check "batch offsets of [3, 1024, 1024] are 64-bit" has 'h[(int64_t)b * 3145728 + i] ='
check "no 32-bit offset of a 3145728-element example" hasnt ' b * 3145728'
check "rows of softmax over the batch: 64-bit counter" has 'for (int64_t r = 0; r < n * 3072; r++)'
check "transpose reads at 64-bit offsets" has 't[(int64_t)b * 3145728 + i * 3072 + j] = c[(int64_t)b * 3145728 + j * 1024 + i]'
check "a tensor whose batch fits keeps int offsets" has 'p_sum_to[b * 1048576 + j * 1024 + k]'
check "no int counter over n times a wide count" hasnt 'for (int r = 0; r < n * 3072;'

compilers=""
for cc in gcc clang; do command -v $cc >/dev/null && compilers="$compilers $cc"; done
for cc in $compilers; do
    flags="-std=c11 -fopenmp -D_POSIX_C_SOURCE=200809L -I$RUNTIME -c wide.c -o /dev/null"
    check "$cc -Wall -Wextra -Werror compiles the wide model" $cc $flags -Wall -Wextra -Werror
    $cc $flags -Wconversion >conv.$cc.log 2>&1
    # the warning lines of -Wconversion, with the source line each points at
    conv_on_wide_lines() {
        grep -E '^wide\.c:[0-9]+:[0-9]+: warning' conv.$cc.log | cut -d: -f2 | while read -r line; do
            sed -n "${line}p" wide.c
        done | grep -F 'int64_t' && return 1
        return 0
    }
    check "$cc -Wconversion: nothing on the 64-bit lines" conv_on_wide_lines
done

# ---- --max-memory -------------------------------------------------------------------
# the wide model's plan is about 152 GiB
refuses() {
    "$NNC" wide.nn -o refused.c "$@" 2>err.log
    local rc=$?
    cat err.log
    [ $rc -eq 1 ] && [ ! -e refused.c ] &&
        grep -q "wide.nn:1:7: error: the model's memory plan needs 152.2 GiB (163385651712 bytes), more than the limit of 16.0 GiB (17179869184 bytes, --max-memory 16G)" err.log &&
        grep -q "note: 'h' \[B, 3, 1024, 1024\] takes 12.0 GiB of the activations" err.log
}
check "--max-memory 16G refuses a 152 GiB plan, naming total, limit and largest tensors" refuses --max-memory 16G
check "--max-memory 200G accepts it" "$NNC" wide.nn -o ok.c --max-memory 200G
check "--max-memory 0 turns the limit off" "$NNC" wide.nn -o ok.c --max-memory 0
check "--max-memory=163385651712 (bytes, the plan's exact size) accepts it" "$NNC" wide.nn -o ok.c --max-memory=163385651712
check "--max-memory 163385651711 refuses it" sh -c '! "$1" wide.nn -o no.c --max-memory 163385651711' sh "$NNC"
summary() { "$NNC" wide.nn --summary --max-memory 1M | grep -F "total 163,385,651,712"; }
check "--summary prints the plan's total even over the limit" summary
bad_size() {
    "$NNC" wide.nn -o bad.c --max-memory 12X 2>err.log
    [ $? -eq 2 ] && grep -q "max-memory takes bytes, a size such as 512M or 16G, or none; not '12X'" err.log
}
check "--max-memory 12X is a usage error (exit 2)" bad_size

# ---- the trainer's out-of-memory message ----------------------------------------------
# 2,953,265,152 bytes (adam: params, grads, two state tensors, activations at batch 16384 with
# the chunks' partial sums of the bias gradients)
cat >oom.nn <<'NN'
model oom
input x: [4096]
target t: [4096]
h = dense(x, 4096)
h2 = dense(relu(h), 4096)
loss = mse(h2, t)
train { batch = 16384 }
NN
check "oom model builds" "$NNC" oom.nn --exe -o oom
echo 1 >x.csv   # data files exist: NAME_new fails before they are read
oom_message() {
    (ulimit -v 1000000 && ./oom "$@") 2>err.log
    local rc=$?
    cat err.log
    [ $rc -ne 0 ] && grep -qF "out of memory: model oom asked for 2953265152 bytes (parameters 134250496, gradients 134250496, optimizer state 268500992, activations for a batch of 16384: 2416263168)" err.log
}
if [ -n "${ASAN_OPTIONS:-}" ]; then
    echo "skip: ulimit -v under AddressSanitizer"
else
    check "a failed NAME_new names the bytes it asked for (init)" oom_message init --save p.safetensors
    check "a failed NAME_new names the bytes it asked for (train)" oom_message train --train x=x.csv t=x.csv
fi
finish
