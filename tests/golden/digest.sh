#!/bin/sh
# Everything nnc writes, as SHA-256 digests checked in: a refactoring of the compiler
# must leave every output byte for byte as it was.
#
# For every model of examples/ (charlm/ included), tests/gradcheck/, tests/golden/ and
# fuzz/regressions/fuzz_frontend/, in both dtypes (f32, f64), this runs nnc once per
# output and digests the exit status, stderr, stdout and every file written:
#   c         nnc M -o model.c                        (model.c and model.h)
#   exe       nnc M --exe -o model, NNC_CC=true       (the C file with main(), its header;
#                                                      `true` stands in for the C compiler)
#   summary   nnc M --summary
#   graph     nnc M --graph -o -
#   forward, backward, update, infer
#             nnc M --emit PASS
#   ir        nnc M --dump-ir --emit forward          (the IR after every pass, on stderr)
# A model nnc refuses gets only the `c` line: its diagnostics and exit status.  Each run
# is inside the repository root with the model's path relative to it, so paths named in
# comments and messages are the same on every machine.
#
# usage: tests/golden/digest.sh NNC                compare with tests/golden/digest.txt
#        tests/golden/digest.sh --update NNC       rewrite digest.txt from NNC
# Run --update only when a change of the generated code is meant, and read the generated
# C of a few changed lines before committing the new digest.txt: the file says *that*
# outputs changed; `git diff` of the C says how.  Prints the lines that differ (expected
# and actual) and ends with `N outputs, M differ`.
set -eu

modes="c exe summary graph forward backward update infer ir"

# record MODEL DTYPE MODE FILE: one output's record (exit status, stderr, stdout, the
# files written) into FILE; prints the exit status
record() {
    model=$1 dtype=$2 mode=$3 rec=$4 o=$4.out
    mkdir "$o"
    rc=0
    case $mode in
        c)       "$nnc" "$model" --dtype "$dtype" -o "$o/model.c" ;;
        exe)     NNC_CC=true "$nnc" "$model" --dtype "$dtype" --exe -o "$o/model" ;;
        summary) "$nnc" "$model" --dtype "$dtype" --summary ;;
        graph)   "$nnc" "$model" --dtype "$dtype" --graph -o - ;;
        ir)      "$nnc" "$model" --dtype "$dtype" --dump-ir --emit forward ;;
        *)       "$nnc" "$model" --dtype "$dtype" --emit "$mode" ;;
    esac >"$rec.stdout" 2>"$rec.stderr" </dev/null || rc=$?
    {
        echo "exit $rc"
        echo "stderr:" && cat "$rec.stderr"
        echo "stdout:" && cat "$rec.stdout"
        for f in "$o"/model.c "$o"/model.h; do
            if [ -f "$f" ]; then echo "file ${f##*/}:" && cat "$f"; fi
        done
    } >"$rec"
    rm -rf "$o" "$rec.stdout" "$rec.stderr"
    echo "$rc"
}

# One model (its index in the sorted list and its path): a record per dtype and output in
# $tmp/rec/INDEX.DTYPE.MODE.  Run by xargs, several models at once.
if [ "${DIGEST_WORKER:-}" = 1 ]; then
    nnc=$1 tmp=$2 index=$3 model=$4
    for dtype in f32 f64; do
        [ "$(record "$model" "$dtype" c "$tmp/rec/$index.$dtype.c")" = 0 ] || continue
        for mode in ${modes#c }; do
            record "$model" "$dtype" "$mode" "$tmp/rec/$index.$dtype.$mode" >/dev/null
        done
    done
    exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
. "$here/args.sh"
root=$(cd "$here/../.." && pwd)
expected=$here/digest.txt
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc-digest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
cd "$root"

ls examples/*.nn examples/*/*.nn tests/gradcheck/*.nn tests/golden/errors/*.nn \
   tests/golden/ir/*.nn fuzz/regressions/fuzz_frontend/*.nn 2>/dev/null | LC_ALL=C sort |
    awk '{ printf "%05d %s\n", NR, $0 }' >"$tmp/models"
mkdir "$tmp/rec"
DIGEST_WORKER=1 xargs -P "${NNC_JOBS:-2}" -L 1 sh "$here/digest.sh" "$nnc" "$tmp" <"$tmp/models" \
    || { echo "FAIL: a worker failed"; exit 1; }
# the records' digests, in the order of the models, then dtypes and outputs as run
(cd "$tmp/rec" && sha256sum -- *) >"$tmp/sums"
awk -v modes="$modes" '
    BEGIN { n = split(modes, m, " "); for (i = 1; i <= n; i++) rank[m[i]] = i }
    FNR == NR { model[$1] = $2; next }
    { split($2, k, "."); printf "%s %s %d %s %s %s %s\n", k[1], k[2], rank[k[3]], $1, model[k[1]], k[2], k[3] }
' "$tmp/models" "$tmp/sums" | LC_ALL=C sort -k1,1 -k2,2 -k3,3n | cut -d" " -f4- >"$tmp/actual"

total=$(wc -l <"$tmp/actual")
if [ "$update" -eq 1 ]; then
    cp "$tmp/actual" "$expected"
    echo "UPDATED tests/golden/digest.txt: $total outputs"
    exit 0
fi
if [ ! -f "$expected" ]; then
    echo "FAIL: no tests/golden/digest.txt (run $0 --update NNC)"
    exit 1
fi
if diff "$expected" "$tmp/actual" >"$tmp/diff"; then
    echo "$total outputs, 0 differ"
    exit 0
fi
grep '^[<>]' "$tmp/diff" | sed 's/^</expected/; s/^>/actual  /'
echo "$total outputs, $(grep -c '^>' "$tmp/diff" || true) differ"
exit 1
