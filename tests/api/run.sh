#!/usr/bin/env bash
# tests/api/run.sh NNC WORKDIR — the generated model API (docs/c-api.md) as applications
# use it.
#
# api_test.c runs on models of every kind: the Fashion MLP (f32), a model with an input, a
# label and a target (multi_loss, in f64 and f32), a class input (embedding), dropout,
# batchnorm's buffers, a scan (rnn) and a CNN of three inputs that share one set of weights
# (siamese): train_step against zero_grad+forward+backward+update bit for bit, gradient
# accumulation, the refusals, access by name.  Then std_predict.c checks that a checkpoint
# trained with --standardize predicts through stdmlp_predict exactly as `stdmlp predict`
# does, from the checkpoint, from its `export` and after stdmlp_save.
set -u
. "$(dirname "$0")/../lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
start_work "$1" "$2"
LIB=$(dirname "$NNC")/libnnr.a
CC=${CC:-cc}
# shellcheck disable=SC2206  # flags, split into words
CFLAGS=(-std=c11 -O1 -fopenmp -pthread -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror ${NNC_CFLAGS:-} -I. -I"$SRC/runtime")
# the generated C as `nnc --exe` compiles it (codegen/build.c): vectorized math (libmvec)
# rounds differently from the scalar functions, so bitwise comparisons with the trainer
# need the trainer's flags
# shellcheck disable=SC2206
MODEL_CFLAGS=(-std=c11 -O3 -march=native -fno-math-errno -fopenmp -D_POSIX_C_SOURCE=200809L ${NNC_CFLAGS:-}
              -I"$SRC/runtime")
LIBS=("$LIB" -lopenblas -ljansson -lz -lm -fopenmp)

# api MODEL.nn MEAN_SPLIT [NNC OPTIONS]: api_test.c against that model
api() {
    local nn=$1 split=$2 name
    shift 2
    name=$(basename "$nn" .nn)$(printf '%s' "$*" | tr -c 'a-z0-9' '_')
    if ! "$NNC" "$nn" "$@" -o "$name.c" >"$name.nnc.log" 2>&1; then
        fail "$name: nnc generates it" "$name.nnc.log"
        return
    fi
    local prefix count io=""
    prefix=$(sed -n 's/^const nnr_model_info \*\([A-Za-z0-9_]*\)_info(void);.*/\1/p' "$name.h")
    # the arguments of NAME_forward after n: one per io entry
    count=$(grep "^[a-z]* ${prefix}_forward(" "$name.h" | sed 's/.*int n//; s/[^,]//g' | tr -d '\n' | wc -c)
    for ((k = 0; k < count; k++)); do io="$io${io:+, }c[$k]"; done
    if ! { $CC "${MODEL_CFLAGS[@]}" -c "$name.c" -o "$name.o" &&
        $CC "${CFLAGS[@]}" -DMODEL="$prefix" -include "$name.h" "-DIO(c)=$io" -DMEAN_SPLIT="$split" \
            "$SRC/tests/api/api_test.c" "$name.o" "${LIBS[@]}" -o "$name.test"; } >"$name.cc.log" 2>&1; then
        fail "$name: the API test compiles against it" "$name.cc.log"
        return
    fi
    if ./"$name.test" >"$name.log" 2>&1; then
        pass "$name: $(grep -c '^PASS' "$name.log") API checks ($count io arguments)"
    else
        fail "$name: API checks" "$name.log"
    fi
}

api "$SRC/examples/fashion_mlp.nn" 1
api "$SRC/tests/gradcheck/multi_loss.nn" 1 --dtype f64
api "$SRC/tests/gradcheck/multi_loss.nn" 1
api "$SRC/tests/gradcheck/embedding.nn" 1
api "$SRC/tests/gradcheck/dropout.nn" 0
api "$SRC/tests/gradcheck/batchnorm.nn" 0 --dtype f64
api "$SRC/tests/gradcheck/rnn.nn" 1
api "$SRC/examples/siamese.nn" 1

# ---- input standardization: the application predicts as the trainer does ----
# 40 examples of three features on very different scales (the third near 1000)
awk 'BEGIN { srand(5); for (i = 0; i < 40; i++) { a = rand(); b = rand() * 0.01; c = 1000 + 50 * rand();
             printf "%.6f,%.6f,%.4f\n", a, b, c > "x.csv"; print (a + 100 * b > 0.8 ? 1 : 0) > "y.csv" } }'
check "the stdmlp trainer builds" "$NNC" "$SRC/tests/api/std.nn" --exe -o stdmlp
check "train --standardize saves a checkpoint" ./stdmlp train --train x=x.csv --train y=y.csv --standardize \
    --save ck.safetensors
check "predict from the checkpoint" ./stdmlp predict --load ck.safetensors --input x=x.csv --out pred.csv
check "export keeps it predicting the same" bash -c "./stdmlp export --load ck.safetensors --out params.safetensors &&
    ./stdmlp predict --load params.safetensors --input x=x.csv --out pred2.csv && cmp pred.csv pred2.csv"
if "$NNC" "$SRC/tests/api/std.nn" -o stdmlp.c >std.nnc.log 2>&1 &&
    { $CC "${MODEL_CFLAGS[@]}" -c stdmlp.c -o stdmlp.o &&
        $CC "${CFLAGS[@]}" "$SRC/tests/api/std_predict.c" stdmlp.o "${LIBS[@]}" -o std_predict; } >std.cc.log 2>&1; then
    if ./std_predict ck.safetensors params.safetensors x.csv pred.csv >std.log 2>&1; then
        pass "std_predict: $(grep -c '^PASS' std.log) checks: stdmlp_predict standardizes as \`stdmlp predict\` does"
    else
        fail "std_predict: the application's predictions" std.log
    fi
else
    fail "std_predict builds" "$(ls -t std.cc.log std.nnc.log 2>/dev/null | head -1)"
fi
finish
