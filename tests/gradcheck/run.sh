#!/bin/sh
# Gradient checks through generated code, in double precision (or GRADCHECK_DTYPE).
#
# For every model tests/gradcheck/NAME.nn (one small model per op or op family, each with
# a scalar per-example loss whose gradient is non-trivial), this compiles
#     NNC NAME.nn --dtype f64 --exe -o WORKDIR/NAME
# and runs the trainer's own check
#     WORKDIR/NAME gradcheck --samples 0 --seed K
# which draws params from the model's initializers and a random batch from seed K, and
# compares every element of every parameter gradient and of every `grad` input's gradient
# with a central finite difference under the dtype's default tolerance (README,
# "gradcheck"): it prints `gradcheck: PASS: ...` or `gradcheck: FAIL: ...` and exits 1 on
# a fail.
# K is 1 unless the model has a line `# seed: K` (fix one there if a case ever lands on
# a relu kink; the run is deterministic either way).
#
# usage: tests/gradcheck/run.sh NNC WORKDIR
# Prints `PASS NAME (worst err X against tolerance Y in TENSOR)` or `FAIL NAME: <output
# tail>` per model and ends
# with `N passed, M failed`; exits 1 if any failed.  There are no expected files: to add
# a case, drop a NAME.nn here.  NNC_JOBS (default 2) sets how many models compile at once;
# GRADCHECK_ONLY (file patterns) picks some of the models; GRADCHECK_CFLAGS are added to the
# NNC_CFLAGS that reach the C compiler; GRADCHECK_DTYPE (default f64) is nnc's --dtype.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 NNC WORKDIR" >&2
    exit 2
fi
nnc=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
mkdir -p "$work"
work=$(cd "$work" && pwd)
jobs=${NNC_JOBS:-2}
dtype=${GRADCHECK_DTYPE:-f64}
only=${GRADCHECK_ONLY:-*.nn}   # file patterns, e.g. "conv*.nn pool.nn" (ctest's sparse-path run)
if [ -n "${GRADCHECK_CFLAGS:-}" ]; then   # added to NNC_CFLAGS (the sanitizer run sets those)
    NNC_CFLAGS="${NNC_CFLAGS:-} $GRADCHECK_CFLAGS"
    export NNC_CFLAGS
fi

# Compile every model, $jobs at a time; each leaves WORKDIR/NAME.compile.log and, on
# success, the program WORKDIR/NAME.
for f in $(cd "$here" && ls $only); do
    f=$here/$f
    name=$(basename "$f" .nn)
    rm -f "$work/$name" "$work/$name.compile.log" "$work/$name.check.log"
    printf '%s\n' "$name"
done | xargs -n 1 -P "$jobs" sh -c \
    'cd "$1" && "$2" "$1/$5.nn" --dtype "$4" --exe -o "$3/$5" >"$3/$5.compile.log" 2>&1 || true' \
    sh "$here" "$nnc" "$work" "$dtype"

passed=0
failed=0
for f in $(cd "$here" && ls $only); do
    f=$here/$f
    name=$(basename "$f" .nn)
    seed=$(sed -n 's/^# seed: *\([0-9][0-9]*\).*/\1/p' "$f" | head -n 1)
    seed=${seed:-1}
    if [ ! -x "$work/$name" ]; then
        failed=$((failed + 1))
        echo "FAIL $name: nnc did not build it:"
        # the first errors (the C compiler's, if it got that far) and nnc's last line
        { grep -m 6 'error' "$work/$name.compile.log" || true; tail -n 1 "$work/$name.compile.log"; } |
            sed 's/^/    /'
        continue
    fi
    rc=0
    "$work/$name" gradcheck --samples 0 --seed "$seed" >"$work/$name.check.log" 2>&1 || rc=$?
    worst=$(sed -n 's/^gradcheck: PASS: .*; \(worst err .*\) (.*/\1/p' "$work/$name.check.log" | tail -n 1)
    if [ "$rc" -eq 0 ] && [ -n "$worst" ]; then
        passed=$((passed + 1))
        echo "PASS $name ($worst)"
    else
        failed=$((failed + 1))
        echo "FAIL $name: exit $rc, seed $seed:"
        tail -n 15 "$work/$name.check.log" | sed 's/^/    /'
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
