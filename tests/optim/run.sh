#!/bin/sh
# Optimizer and schedule conformance against PyTorch, in double precision.
#
# For every line `NAME BODY` of tests/optim/cases.txt this writes the model
#
#     model optim_NAME
#     input  x: [5]
#     target t: [3]
#     h    = tanh(dense(x, 4))
#     out  = dense(h, 3)
#     loss = mse(out, t)
#     train {
#       batch  = 8
#       epochs = 6
#       BODY                      (one statement a line: optimizer, schedule, weight_decay, clip_norm)
#     }
#
# to WORKDIR/NAME.nn, compiles it with  NNC NAME.nn --dtype f64 --exe -o WORKDIR/NAME,  trains
#     WORKDIR/NAME train --train ref/data.safetensors --load ref/init.safetensors
#                        --epochs 6 --seed 1 --save WORKDIR/NAME.out.safetensors
# (8 examples = one batch: each epoch is one optimizer step on the whole set, the schedule
# giving each epoch's rate) and compares the result with PyTorch's parameters after the
# same 6 steps, ref/NAME.safetensors, written by make_reference.py (run by hand with
# Debian's python3-torch; this test needs no Python):
#     COMPARE WORKDIR/NAME.out.safetensors ref/NAME.safetensors ref/init.safetensors
# which fails when the worst difference exceeds 1e-9 of the tensor's magnitude or of the
# change the steps made to it.
#
# usage: tests/optim/run.sh NNC COMPARE WORKDIR
# Prints `PASS NAME (max rel err X (of the change: Y))` or `FAIL NAME: <why>` per case and
# ends with `N passed, M failed`; exits 1 if any failed.  NNC_JOBS (default 2) sets how
# many cases build and run at once; WORKDIR/NAME.nn and WORKDIR/NAME.log keep each case's
# model, compiler and trainer output and comparison.  (The script runs itself as
# `run.sh --case NAME WORKDIR` for one case; NNC, COMPARE and REF come in the environment.)
set -eu

# One case: write the model, compile, train, compare; the outcome goes to
# WORKDIR/NAME.result ("PASS ..." or "FAIL ..."), the details to WORKDIR/NAME.log.
run_case() {
    name=$1
    w=$2
    body=$(awk -v n="$name" '$1 == n { sub(/^[^ \t]+[ \t]+/, ""); print; exit }' "$w/cases.list")
    log=$w/$name.log
    rm -f "$w/$name" "$w/$name.out.safetensors" "$w/$name.result" "$w/$name.cmp"
    {
        printf 'model optim_%s\n' "$name"
        printf 'input  x: [5]\ntarget t: [3]\n'
        printf 'h    = tanh(dense(x, 4))\nout  = dense(h, 3)\nloss = mse(out, t)\n'
        printf 'train {\n  batch  = 8\n  epochs = 6\n'
        printf '%s\n' "$body" | tr ';' '\n' | sed -e 's/^[[:space:]]*/  /'
        printf '}\n'
    } >"$w/$name.nn"
    if ! "$NNC" "$w/$name.nn" --dtype f64 --exe -o "$w/$name" >"$log" 2>&1; then
        echo "FAIL $name: does not compile: $(tail -n 3 "$log" | tr '\n' ' ')" >"$w/$name.result"
        return 0
    fi
    if ! "$w/$name" train --train "$REF/data.safetensors" --load "$REF/init.safetensors" \
            --epochs 6 --seed 1 --save "$w/$name.out.safetensors" >>"$log" 2>&1; then
        echo "FAIL $name: training failed: $(tail -n 3 "$log" | tr '\n' ' ')" >"$w/$name.result"
        return 0
    fi
    if [ ! -f "$REF/$name.safetensors" ]; then
        echo "FAIL $name: no reference $REF/$name.safetensors (run make_reference.py)" >"$w/$name.result"
        return 0
    fi
    if "$COMPARE" "$w/$name.out.safetensors" "$REF/$name.safetensors" "$REF/init.safetensors" \
            >"$w/$name.cmp" 2>&1; then
        echo "PASS $name ($(tail -n 1 "$w/$name.cmp"))" >"$w/$name.result"
    else
        echo "FAIL $name: $(tr '\n' ' ' <"$w/$name.cmp")" >"$w/$name.result"
    fi
    { echo "compare:"; cat "$w/$name.cmp"; } >>"$log"
}

if [ $# -eq 3 ] && [ "$1" = "--case" ]; then
    run_case "$2" "$3"
    exit 0
fi
if [ $# -ne 3 ]; then
    echo "usage: $0 NNC COMPARE WORKDIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$(pwd)" "$1" ;; esac; }
NNC=$(abs "$1")
COMPARE=$(abs "$2")
REF=$here/ref
export NNC COMPARE REF
mkdir -p "$3"
work=$(cd "$3" && pwd)
jobs=${NNC_JOBS:-2}

# The case lines without comments and blank lines: "NAME BODY".
sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/cases.txt" >"$work/cases.list"
awk '{ print $1 }' "$work/cases.list" >"$work/cases.names"
xargs -P "$jobs" -I{} sh "$here/run.sh" --case {} "$work" <"$work/cases.names" || true

pass=0
fail=0
while read -r name; do
    if [ -f "$work/$name.result" ]; then
        cat "$work/$name.result"
    else
        echo "FAIL $name: no result (see $work/$name.log)"
    fi
    if grep -q '^PASS' "$work/$name.result" 2>/dev/null; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
    fi
done <"$work/cases.names"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
