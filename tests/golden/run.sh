#!/bin/sh
# Golden tests of nnc's front end: expected diagnostics and IR dumps.
#
#   errors/NAME.nn  a bad model; errors/NAME.err is what `nnc NAME.nn -o OUT.c` must
#                   print on stderr, run inside errors/ so the file name in messages is
#                   just NAME.nn (OUT.c lies in a scratch folder: nothing is written for
#                   a model with errors)
#   ir/NAME.nn      a valid model; ir/NAME.ir is the stderr of
#                   `nnc NAME.nn --dump-ir --emit forward >/dev/null`, run inside ir/
#                   (the IR after every pass)
#
# Every expected file starts with the line `# exit N`, nnc's exit status (1 for errors in
# the model, 0 for the IR dumps), followed by the exact stderr.  If nnc prints anything on
# stdout for an error case, it is appended after a line `# stdout:` (expected: nothing).
# Each run is limited to 20 s, so a hang fails instead of blocking; a crash shows up as
# an exit status above 128.
#
# usage: tests/golden/run.sh NNC                 compare; exit 1 on any difference
#        tests/golden/run.sh --update NNC        rewrite every .err and .ir from NNC
# After --update, read every changed file (git diff) before keeping it: a golden is only
# worth what its review was.  To add a case, write errors/NAME.nn or ir/NAME.nn and run
# --update.  Prints `PASS|FAIL|UPDATED kind/NAME` per case (with a diff on failure) and
# ends with `N passed, M failed`.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/args.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc-golden.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
if command -v timeout >/dev/null 2>&1; then limit="timeout 20"; else limit=""; fi

passed=0
failed=0

# check KIND NAME EXPECTED: runs one case into $tmp/actual and compares or updates.
check() {
    kind=$1 name=$2 expected=$3
    rc=0
    rm -rf "$tmp/out" && mkdir "$tmp/out"
    if [ "$kind" = errors ]; then
        (cd "$here/errors" && $limit "$nnc" "$name.nn" -o "$tmp/out/$name.c") \
            >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
    else
        (cd "$here/ir" && $limit "$nnc" "$name.nn" --dump-ir --emit forward) \
            >/dev/null 2>"$tmp/stderr" || rc=$?
        : >"$tmp/stdout"
    fi
    {
        echo "# exit $rc"
        cat "$tmp/stderr"
        if [ -s "$tmp/stdout" ]; then
            echo "# stdout:"
            cat "$tmp/stdout"
        fi
    } >"$tmp/actual"
    if [ "$update" -eq 1 ]; then
        cp "$tmp/actual" "$expected"
        passed=$((passed + 1))
        echo "UPDATED $kind/$name"
    elif [ ! -f "$expected" ]; then
        failed=$((failed + 1))
        echo "FAIL $kind/$name: no expected file $kind/$(basename "$expected") (run with --update)"
    elif diff -u --label "expected $kind/$(basename "$expected")" --label "actual" \
            "$expected" "$tmp/actual" >"$tmp/diff"; then
        passed=$((passed + 1))
        echo "PASS $kind/$name"
    else
        failed=$((failed + 1))
        echo "FAIL $kind/$name"
        sed 's/^/    /' "$tmp/diff"
    fi
}

for f in "$here"/errors/*.nn; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .nn)
    check errors "$name" "$here/errors/$name.err"
done
for f in "$here"/ir/*.nn; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .nn)
    check ir "$name" "$here/ir/$name.ir"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
