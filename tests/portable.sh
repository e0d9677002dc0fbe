#!/usr/bin/env bash
# portable.sh NNC WORKDIR — generated C is portable, warning-free C, and its header works
# from C++ (issue 24).
#
# Every example model and every gradient-check model is generated, then compiled by gcc
# and clang under -std=c99 and -std=c11 with -Wall -Wextra -pedantic -Werror.  gcc under
# C11 compiles for real at -O2 (code generation: the warnings gcc finds only by flow
# analysis, such as -Wmaybe-uninitialized, need the optimizer); the other three stop after
# the front end (-fsyntax-only: clang's warnings all come from it, and the language
# standard changes nothing the optimizer sees).  Each model's header is included in a C++17 translation unit, by g++
# and clang++ under the same flags.  Last, a C++ program links the Fashion MLP (its .c
# compiled as C, as it must be) and trains it for a step.  (-Wshadow is not clean: the
# convolution kernels name a loop variable like an outer one.)
set -u
. "$(dirname "$0")/lib.sh"
NNC=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
RUNTIME=$SRC/runtime
LIB=$(dirname "$NNC")/libnnr.a
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1

flags=(-Wall -Wextra -pedantic -Werror -fopenmp -I"$RUNTIME")
compilers=() cxx=()
for cc in gcc clang; do command -v $cc >/dev/null && compilers+=($cc); done
for cc in g++ clang++; do command -v $cc >/dev/null && cxx+=($cc); done
check "gcc and g++ are installed" command -v gcc g++

# the model's C prefix: what its header's NAME_info is declared as
prefix() { sed -n 's/^const nnr_model_info \*\([A-Za-z0-9_]*\)_info(void);.*/\1/p' "$1"; }

models=0
for f in "$SRC"/examples/*.nn "$SRC"/examples/*/*.nn "$SRC"/tests/gradcheck/*.nn; do
    name=$(basename "$f" .nn)
    [ -e "$name.c" ] && name=$name-$(basename "$(dirname "$f")")   # same name in two folders
    if ! (cd "$(dirname "$f")" && "$NNC" "$f" -o "$WORK/$name.c") >"$name.nnc.log" 2>&1; then
        fail "$name: nnc generates it" "$name.nnc.log"
        continue
    fi
    models=$((models + 1))
    bad="" log=""
    compile() {   # compile LOG WHAT COMMAND...: notes a failure, and the first one's log
        local out=$1 what=$2
        shift 2
        "$@" >"$out" 2>&1 && return
        bad="$bad $what"
        log=${log:-$out}
    }
    for cc in "${compilers[@]}"; do
        for std in c99 c11; do
            how=(-fsyntax-only)
            [ "$cc/$std" = gcc/c11 ] && how=(-O2 -c -o /dev/null)
            compile "$name.$cc.$std.log" "$cc/$std" $cc -std=$std "${flags[@]}" "${how[@]}" "$name.c"
        done
    done
    p=$(prefix "$name.h")
    printf '#include "%s.h"\nint main() { return %s_info() == nullptr; }\n' "$name" "$p" >"$name.cpp"
    for cc in "${cxx[@]}"; do
        compile "$name.$cc.log" "$cc/c++17" $cc -std=c++17 "${flags[@]}" -fsyntax-only "$name.cpp"
    done
    if [ -z "$bad" ]; then
        pass "$name: C99 and C11 (${compilers[*]}), its header in C++17 (${cxx[*]})"
    else
        fail "$name: warnings or errors under$bad" "$log"
    fi
done
check "at least 90 models were compiled (found $models)" [ "$models" -ge 90 ]

# a C++ program trains the Fashion MLP for one step through its header
cat >step.cpp <<'CPP'
#include "fashion_mlp.h"
#include <cmath>
#include <cstdio>
#include <vector>
int main() {
    fashion_mlp *m = fashion_mlp_new();
    if (!m) return 1;
    fashion_mlp_init(m, 1);
    std::vector<float> x(16 * 784);
    std::vector<int32_t> y(16);
    for (size_t i = 0; i < x.size(); i++) x[i] = (float)((i * 37) % 101) / 101.0f;
    for (size_t i = 0; i < y.size(); i++) y[i] = (int32_t)(i % 10);
    float before = fashion_mlp_loss_grad(m, 16, x.data(), y.data());
    for (int s = 0; s < 20; s++) fashion_mlp_train_step(m, 16, x.data(), y.data());
    float after = fashion_mlp_loss_grad(m, 16, x.data(), y.data());
    std::printf("loss %g -> %g\n", before, after);
    fashion_mlp_free(m);
    return std::isfinite(after) && after < before ? 0 : 1;
}
CPP
cxx_step() {   # NNC_CFLAGS: the sanitizer run's flags, which its libnnr.a was built with
    # shellcheck disable=SC2086  # flags, split into words
    gcc -std=c11 -O1 -fopenmp -D_POSIX_C_SOURCE=200809L ${NNC_CFLAGS:-} -I"$RUNTIME" -c fashion_mlp.c -o fashion_mlp.o &&
        g++ -std=c++17 -Wall -Wextra -pedantic -Werror ${NNC_CFLAGS:-} -I"$RUNTIME" -c step.cpp -o step.o &&
        g++ ${NNC_CFLAGS:-} step.o fashion_mlp.o "$LIB" -lopenblas -ljansson -lz -lm -fopenmp -o step &&
        OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 ./step
}
check "a C++17 program links the Fashion MLP and 20 steps lower its loss" cxx_step
finish
