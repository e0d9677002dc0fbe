#!/usr/bin/env bash
# scaling.sh NNC SRCDIR WORKDIR — nnc's time and output grow linearly with the model.
#
# Each family of generated models is compiled at size N and 2N in one run: 2N may take
# at most 3 times as long as N (plus 0.3 s of slack; CPU time, not the wall clock) and write at most
# 2.5 times the bytes.  The families are those that once grew exponentially or as a
# square (issue 22): elementwise calls nested N deep (relu, whose template names its
# input twice; abs, whose gradient does; a mix with tanh and sigmoid), N chained
# statements hK = f(hK-1), a sum of N terms of one tensor and one of N distinct
# parameters.  The largest model's C must compile warning-free (gcc and clang when
# present, with nnc's own flags).  Every nnc run is capped at 30 s and 4 GB, a sanity
# bound only: the ratios are the test.  Prints PASS/FAIL per check and
# `N passed, M failed`.
set -u
. "$(dirname "$0")/lib.sh"
NNC=$(realpath "$1")
SRC=$(realpath "$2")
WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1

# model FAMILY N: a model of that family and size on stdout
model() {
    local fam=$1 n=$2 e=x f k
    local fns=(relu abs tanh sigmoid)
    printf 'model s\ninput x: [16]\ntarget t: [16]\n'
    case $fam in
    nested_*)
        for ((k = 0; k < n; k++)); do
            case $fam in nested_relu) f=relu ;; nested_abs) f=abs ;; *) f=${fns[k % 4]} ;; esac
            e="$f($e)"
        done
        echo "h = dense($e, 16)" ;;
    chain_*)
        echo "h0 = dense(x, 16)"
        for ((k = 1; k <= n; k++)); do
            case $fam in chain_relu) f=relu ;; *) f=${fns[k % 4]} ;; esac
            echo "h$k = $f(h$((k - 1)))"
        done
        echo "h = h$n" ;;
    sum_same)
        echo "h0 = dense(x, 16)"
        printf 'h = h0'
        for ((k = 1; k < n; k++)); do printf ' + h0'; done
        echo ;;
    sum_params)
        for ((k = 1; k < n; k++)); do echo "param p$k: [16]"; done
        printf 'h = dense(x, 16)'
        for ((k = 1; k < n; k++)); do printf ' + p%d' "$k"; done
        echo ;;
    esac
    echo "loss = mse(h, t)"
}

# run FAMILY N: compiles the model; prints "ms bytes", or fails.  The time is nnc's CPU
# time (user + system, from /usr/bin/time: other programs on a busy machine slow the wall
# clock, not this); the wall clock where /usr/bin/time is missing.
run() {
    local m=$1_$2 t0 t1
    model "$1" "$2" >"$m.nn"
    # capped at 4 GB of address space, except under AddressSanitizer (scripts/test.sh
    # --sanitize sets ASAN_OPTIONS), whose shadow memory alone reserves terabytes
    local cap="ulimit -v 4000000;"
    [ -n "${ASAN_OPTIONS:-}" ] && cap=""
    set -- sh -c "$cap"' exec timeout 30 "$0" "$1" -o "$2"' "$NNC" "$m.nn" "$m.c"
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%U %S' -o "$m.time" "$@" >"$m.log" 2>&1 || return 1
        t1=$(awk '{ printf "%d", ($1 + $2) * 1000 }' "$m.time")
    else
        t0=$(date +%s%N)
        "$@" >"$m.log" 2>&1 || return 1
        t1=$((($(date +%s%N) - t0) / 1000000))
    fi
    echo "$t1 $(cat "$m.c" "$m.h" | wc -c)"
}

# scales FAMILY N: N and 2N, within the ratios
scales() {
    local fam=$1 n=$2 a b
    a=$(run "$fam" "$n") && b=$(run "$fam" $((2 * n))) || { fail "$fam: nnc failed at $n or $((2 * n))" "${fam}_$((2 * n)).log"; return; }
    set -- $a $b
    local msg="$fam $n -> $((2 * n)): $1 ms -> $3 ms, $2 -> $4 bytes"
    if [ "$3" -lt $((3 * $1 + 300)) ] && [ $((2 * $4)) -lt $((5 * $2)) ]; then pass "$msg"; else fail "$msg"; fi
}

scales nested_relu 50
scales nested_abs 50
scales nested_mixed 50
scales chain_relu 500
scales chain_mixed 500
scales sum_same 5000
scales sum_params 2500

# the largest models of three families compile warning-free, as nnc --exe compiles them (build.c)
for cc in gcc clang; do
    command -v $cc >/dev/null || continue
    for f in nested_mixed_100 chain_mixed_1000 sum_same_10000; do
        check "$f.c compiles with $cc -Wall -Wextra -Werror" \
            $cc -c -std=c11 -fopenmp -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -I"$SRC/runtime" "$f.c" -o "$f.o"
    done
done
finish
